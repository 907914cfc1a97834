"""The seed split into the rows a generator learns from and the rows kept back to grade it (never seen by fitting,
choosing a family or filtering)."""

import numpy as np
import pandas as pd

from synthforge.errors import UserError


def holdout_split(df: pd.DataFrame, holdout_fraction: float, seed: int, what: str = "rows"
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded random holdout; the rows keep their seed order on both sides."""
    if len(df) < 10:
        raise UserError(f"seed.source: {len(df)} {what} is too few to learn from and to keep a holdout; "
                        f"give at least 10 {what}")
    order = np.random.default_rng(seed).permutation(len(df))
    n_hold = max(1, int(round(len(df) * holdout_fraction)))
    return (df.iloc[np.sort(order[n_hold:])].reset_index(drop=True),
            df.iloc[np.sort(order[:n_hold])].reset_index(drop=True))
