"""In-memory augmentation for notebooks and pipelines: fit on a DataFrame, return validated synthetic rows with the
frame's own columns and dtypes, so `pd.concat([df, augment(df, n)])` changes nothing but the row count."""

import sys
import time
import warnings

import pandas as pd

from synthforge.data.profile import Profile
from synthforge.engine.shards import generate_shard, plan_shards
from synthforge.errors import UserError
from synthforge.families import tabular_families as tf
from synthforge.families.identifiers import GeneratedColumns
from synthforge.quality import expectations as ex
from synthforge.randomness import derive_seed


def augment(df: pd.DataFrame, n: int, *, target: str | None = None, balance: bool = False,
            family: str = "autoregressive", params: dict | None = None, random_seed: int = 0,
            max_rounds: int = 5, progress: bool = False) -> pd.DataFrame:
    """`n` synthetic rows like `df`: every column of `df`, in its order and dtype. Ids and personal data (emails,
    names, phones) are generated fresh; a column no family can model (free text) comes back empty, with a warning
    naming it. With `balance=True`, the rows are split evenly over the values of `target`, which is how a rare class
    gets filled in. Quiet unless `progress=True`."""
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
    params = dict(params or {})
    if balance and family == "autoregressive":
        params.setdefault("order", [target])  # the target drawn first: balanced by construction, no rejection
    tf.check_params(family, params)
    started = time.perf_counter()
    say = (lambda m: print(f"augment: {m} ({time.perf_counter() - started:.0f}s)", file=sys.stderr)) if progress \
        else (lambda m: None)
    say(f"fitting {family} on {len(data)} rows x {data.shape[1]} columns")
    gen = tf.make(family, profile, params, random_state=derive_seed(random_seed, 5)).fit(data)
    say("sampling and validating")
    suite = ex.build_suite("augment", profile.metric_kinds(), data)
    shards = plan_shards(n, n, random_seed, counts)
    generated = GeneratedColumns.fit(df, profile, seed=random_seed)
    out, _ = generate_shard(gen, suite, shards[0], max_rounds, generated)
    say(f"{len(out)} rows")
    return like(out, df, profile)


def like(out: pd.DataFrame, df: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """`out` with `df`'s columns, order and dtypes; the columns left out of the model come back empty, said once."""
    left_out = {c.name: c.dropped for c in profile.columns if c.dropped}
    if left_out:
        why = "; ".join(f"{name}: {reason}" for name, reason in left_out.items())
        warnings.warn(f"augment: columns {list(left_out)} are not modelled ({why}); "
                      "they are empty in the synthetic rows", stacklevel=3)
    out = out.reindex(columns=df.columns)
    for col in df.columns:
        if out[col].dtype != df[col].dtype:
            try:
                out[col] = out[col].astype(df[col].dtype)
            except (TypeError, ValueError):  # e.g. missing values in an int column: keep the wider dtype
                pass
    return out
