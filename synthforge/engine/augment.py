"""In-memory augmentation for notebooks and pipelines: fit on a DataFrame, return validated synthetic rows."""

import pandas as pd

from synthforge.data.profile import Profile
from synthforge.engine.shards import generate_shard, plan_shards
from synthforge.errors import UserError
from synthforge.families.sdv_tabular import SDVGenerator
from synthforge.quality import expectations as ex
from synthforge.randomness import derive_seed


def augment(df: pd.DataFrame, n: int, *, target: str | None = None, balance: bool = False,
            family: str = "gaussian_copula", params: dict | None = None, random_seed: int = 0,
            max_rounds: int = 5) -> pd.DataFrame:
    """`n` synthetic rows like `df` (its modelled columns). With `balance=True`, the rows are split evenly over the
    values of `target`, which is how a rare class gets filled in."""
    if n <= 0:
        raise UserError(f"n: must be > 0, got {n}")
    if balance and target is None:
        raise UserError("balance=True needs target=<column>")
    profile = Profile.from_frame(df, target=target)
    data = profile.prepare(df)
    counts = None
    if balance:
        values = list(pd.unique(data[target].dropna()))
        counts = {((target, v.item() if hasattr(v, "item") else v),): n // len(values) + (i < n % len(values))
                  for i, v in enumerate(values)}
    gen = SDVGenerator(family, profile, params, random_state=derive_seed(random_seed, 5)).fit(data)
    suite = ex.build_suite("augment", profile.metric_kinds(), data, primary_key=profile.primary_key)
    shards = plan_shards(n, n, random_seed, counts)
    out, _ = generate_shard(gen, suite, shards[0], max_rounds)
    return out
