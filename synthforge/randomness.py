"""The one entry point for randomness: every random choice derives from the recipe's `random_seed`.

Shard seeds come from (random_seed, shard index) through numpy's SeedSequence, never from the worker count, so any
executor produces the same rows.
"""

import numpy as np


def check_random_state(seed: int | np.random.Generator | None) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def derive_seed(random_seed: int, *path: int) -> int:
    """A 31-bit seed for a sub-task (stage, shard, round), stable across processes and machines."""
    ss = np.random.SeedSequence([int(random_seed), *[int(p) for p in path]])
    return int(ss.generate_state(1, dtype=np.uint32)[0] >> 1)


# The streams a run's stages draw from (derive_seed(random_seed, STREAM, ...)): apart, so that changing one stage
# (more rounds, another split) leaves every other stage's randomness as it was.
SHARD_SEED_STREAM, SELECT_SEED_STREAM, SPLIT_SEED_STREAM, METRIC_SEED_STREAM = 1, 2, 3, 4
FIT_SEED_STREAM, JUDGE_SEED_STREAM, GENERATED_SEED_STREAM = 5, 6, 7
