"""The service tests' fixtures: a server per module, the credit seed as CSV. Skipped without the `service` extra."""

from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sse_starlette")

from service.helpers import Postgres, Server  # noqa: E402


@pytest.fixture(scope="session")
def credit_seed_csv(tmp_path_factory) -> Path:
    import pandas as pd

    from synthforge.data.examples import materialise

    path = tmp_path_factory.mktemp("seed") / "credit.csv"
    pd.read_parquet(materialise("credit_data")).to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    """PostgreSQL started with pg_ctl for the `postgres` runs: `python -m pytest -n 0 -m postgres tests/service`."""
    import shutil

    pytest.importorskip("psycopg")
    if shutil.which("pg_ctl") is None or shutil.which("initdb") is None:
        pytest.skip("PostgreSQL (pg_ctl, initdb) not installed")
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="synthforge-pg-"))  # pytest's folders are root-only; postgres runs as itself
    pg = Postgres(folder).start()
    yield pg
    pg.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=[pytest.mark.slow,
                                                                                    pytest.mark.postgres])])
def server(request, tmp_path_factory):
    """One `synthforge serve` per module: on SQLite (the default suite), or on PostgreSQL (-m postgres)."""
    database = request.getfixturevalue("postgres").database() if request.param == "postgres" else None
    s = Server(tmp_path_factory.mktemp("service") / "data", database=database).start()
    yield s
    s.stop()
