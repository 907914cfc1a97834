"""Generation is cut into shards whose count and seeds derive from the recipe and the row count alone, never from
the number of workers, so every executor writes the same rows. One shard = sample, validate, resample the invalid
rows for a bounded number of rounds, write one Parquet part under a temporary name."""

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from synthforge.randomness import derive_seed
from synthforge.sinks.files import write_json, write_parquet

SHARD_SEED_STREAM = 1  # keeps shard seeds apart from the seeds of other stages
GENERATED_SEED_STREAM = 7


@dataclass(frozen=True)
class Shard:
    index: int
    rows: int
    seed: int
    start: int = 0  # the row number of the shard's first row (generated ids continue from it)
    groups: tuple[tuple[tuple[tuple[str, Any], ...], int], ...] = ()  # ((conditions), rows) when conditioned

    @property
    def name(self) -> str:
        return f"part-{self.index:05d}"


def plan_shards(rows: int, shard_rows: int, random_seed: int,
                condition_counts: dict[tuple[tuple[str, Any], ...], int] | None = None) -> list[Shard]:
    count = max(1, math.ceil(rows / shard_rows))
    sizes = _split(rows, count)
    per_group = {g: _split(n, count) for g, n in (condition_counts or {}).items()}
    shards, start = [], 0
    for i, size in enumerate(sizes):
        groups = tuple((g, split[i]) for g, split in per_group.items() if split[i] > 0)
        if condition_counts:
            size = sum(n for _, n in groups)
        shards.append(Shard(index=i, rows=size, seed=derive_seed(random_seed, SHARD_SEED_STREAM, i), start=start,
                            groups=groups))
        start += size
    return shards


def _split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


@dataclass
class ShardStats:
    index: int
    requested: int
    rows: int = 0
    sampled: int = 0
    rounds: int = 0
    invalid: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    table_failures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def generate_shard(generator, suite, shard: Shard, max_rounds: int, generated=None
                   ) -> tuple[pd.DataFrame, ShardStats]:
    """The shard's rows: sampled, validated, resampled; then the generated columns (ids, personal data) added to the
    rows kept, numbered from the shard's first row."""
    from synthforge.quality.expectations import validate

    stats = ShardStats(index=shard.index, requested=shard.rows)
    failed: Counter = Counter()
    groups = shard.groups or (((), shard.rows),)
    frames = []
    for g, (conditions, wanted) in enumerate(groups):
        need, invalid_rate = wanted, 0.0
        for round_ in range(max_rounds):
            if need <= 0:
                break
            # ask for a little more than needed once we know how many rows fail validation
            n = max(need, math.ceil(need / max(1e-3, 1 - invalid_rate) * 1.05)) if round_ else need
            df = generator.sample(n, seed=derive_seed(shard.seed, g, round_), conditions=dict(conditions) or None)
            v = validate(suite, df)
            failed.update(v.failed)
            stats.table_failures.extend(t for t in v.table_failures if t not in stats.table_failures)
            stats.sampled += len(df)
            stats.invalid += v.rows_invalid
            stats.rounds = max(stats.rounds, round_ + 1)
            invalid_rate = v.rows_invalid / max(1, len(df))
            keep = df[v.valid].head(need)
            frames.append(keep)
            need -= len(keep)
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if generated is not None and len(out):
        out = generated.fill(out, start=shard.start, seed=derive_seed(shard.seed, GENERATED_SEED_STREAM))
    stats.rows = len(out)
    stats.failed = dict(failed)
    return out, stats


def write_shard(folder: Path, shard: Shard, df: pd.DataFrame, stats: ShardStats, meta: dict[str, str]) -> None:
    """Stats first, then the part: a part on disk always has its stats beside it."""
    write_json(folder / "shards" / f"{shard.name}.json", stats.to_dict())
    write_parquet(folder / "data" / f"{shard.name}.parquet", df, {**meta, "shard": shard.index,
                                                                  "shard_seed": shard.seed})


def committed(folder: Path, shard: Shard) -> ShardStats | None:
    part = folder / "data" / f"{shard.name}.parquet"
    stats = folder / "shards" / f"{shard.name}.json"
    if part.exists() and stats.exists():
        return ShardStats(**json.loads(stats.read_text()))
    return None
