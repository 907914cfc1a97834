"""The one protocol every family implements (tables now; text and images plug into the same engine).

Habits borrowed from scikit-learn: `__init__` only stores; `fit` computes and returns self; learned state ends in
`_`; `sample` refuses an unfitted generator. Randomness comes in as an explicit seed per call, so a shard sampled
in any process gives the same rows.
"""

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pandas as pd


@runtime_checkable
class Generator(Protocol):
    family: str

    def fit(self, data: pd.DataFrame) -> "Generator": ...

    def sample(self, n: int, *, seed: int, conditions: dict[str, Any] | None = None) -> pd.DataFrame:
        """n rows; `conditions` fixes column values for all of them (conditional sampling)."""
        ...

    def save(self, folder: Path) -> None: ...

    @classmethod
    def load(cls, folder: Path, *, trusted: bool = False) -> "Generator": ...


class NotFittedError(RuntimeError):
    pass
