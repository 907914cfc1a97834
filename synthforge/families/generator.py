"""The one protocol every family implements: tables, text and images plug into the same engine through it.

Habits borrowed from scikit-learn: `__init__` only stores; `fit` computes and returns self; learned state ends in
`_`; `sample` refuses an unfitted generator. Randomness comes in as an explicit seed per call, so a shard sampled
in any process gives the same rows.

* `fit(data, *, progress=None)`: `data` is what the family learns from (a DataFrame for tables and text, an ImageSet
  for images). `progress`, when given, is called with one dict per training step or epoch (whichever the family
  counts): keys such as "epoch", "epochs", "step", "steps", "loss", "val_loss", "elapsed" (seconds) and "budget"
  (the time budget or None); a family passes the keys it knows, and a caller reads them with `.get`.
* `fit_info_`: what fitting measured, a JSON-able dict with at least "seconds" (and "epochs" or "steps" where the
  family counts them). The one name for it in every family.
* `sample(n, *, seed, conditions=None)`: n rows as a DataFrame; `conditions` fixes column values for all of them.
  A family may put what the call cost into `df.attrs` as numbers (e.g. "tokens", "seconds"); the engine sums them
  per shard.
* `save(folder)` / `load(folder, *, trusted=False, device="cpu")`: a folder with a generator.json naming the family;
  `trusted` allows formats that could run code (only for a folder this run wrote), `device` is where it runs.
"""

from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

import pandas as pd

Progress = Callable[[dict[str, Any]], None]


@runtime_checkable
class Generator(Protocol):
    family: str
    fit_info_: dict[str, Any]

    def fit(self, data: Any, *, progress: Progress | None = None) -> "Generator":
        """Learn from `data`; `progress` gets a dict per step or epoch. Returns self."""
        ...

    def sample(self, n: int, *, seed: int, conditions: dict[str, Any] | None = None) -> pd.DataFrame:
        """n rows; `conditions` fixes column values for all of them (conditional sampling)."""
        ...

    def save(self, folder: Path) -> None: ...

    @classmethod
    def load(cls, folder: Path, *, trusted: bool = False, device: str = "cpu") -> "Generator": ...


class NotFittedError(RuntimeError):
    pass
