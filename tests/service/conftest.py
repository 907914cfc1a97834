"""The service tests' fixtures: a server per module, the credit seed as CSV. Skipped without the `service` extra."""

from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sse_starlette")

from service.helpers import Server  # noqa: E402


@pytest.fixture(scope="session")
def credit_seed_csv(tmp_path_factory) -> Path:
    import pandas as pd

    from synthforge.data.examples import materialise

    path = tmp_path_factory.mktemp("seed") / "credit.csv"
    pd.read_parquet(materialise("credit_data")).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("service") / "data").start()
    yield s
    s.stop()
