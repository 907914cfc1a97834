"""Generation is cut into shards whose count and seeds derive from the recipe and the row count alone, never from
the number of workers, so every executor writes the same rows. One shard = draw, accept or reject, draw again for
what was rejected (a bounded number of rounds), finish the rows kept, write one Parquet part under a temporary name.

The loop is the same for every modality; what differs is the `Acceptor` a modality hands in: Great Expectations for
rows, text filters then Great Expectations for documents, the near-copy check for images. An acceptor keeps no state
from one shard to the next (`start` resets it), so a shard gives the same rows on any worker, in any order.
"""

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from synthforge.errors import UserError
from synthforge.randomness import SHARD_SEED_STREAM, derive_seed
from synthforge.sinks.files import write_json, write_parquet

OVERSAMPLE = 1.1  # a draw after the first asks for this much more than the measured keep rate says it needs
MAX_DRAW = 20  # never ask for more than this many times what is still needed in one draw
MIN_KEEP_RATE = 0.05


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


def counts_for(column: str, values: list, rows: int, *, balance: bool, counts: dict[str, int] | None = None,
               shares: list[float] | None = None) -> dict[tuple[tuple[str, Any], ...], int]:
    """Rows per value of a conditioned column, as shard groups: `balance` spreads `rows` evenly, `counts` (keyed by
    the value's text) is taken as given, else `shares` split `rows` by largest remainder (they add up exactly).
    Every modality turns `output.conditions` into groups here."""
    if counts:
        unknown = [k for k in counts if k not in {str(v) for v in values}]
        if unknown:
            raise UserError(f"output.conditions.counts: {unknown[0]!r} is not a value of {column}; values are "
                            f"{', '.join(sorted(map(str, values)))}")
        return {((column, _plain(v)),): counts[str(v)] for v in values if counts.get(str(v), 0) > 0}
    weights = np.ones(len(values)) if balance or shares is None else np.asarray(shares, dtype=float)
    exact = weights / weights.sum() * rows
    n = np.floor(exact).astype(int)
    n[np.argsort(-(exact - n), kind="stable")[:rows - n.sum()]] += 1
    return {((column, _plain(v)),): int(k) for v, k in zip(values, n) if k > 0}


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


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
    extra: dict[str, Any] = field(default_factory=dict)  # what a modality counts besides (masked PII, tokens, ...)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Verdict:
    """An acceptor's answer for one drawn batch: which rows to keep, the batch after fixes made in place (masked
    PII), and why the others were rejected (reason → rows)."""
    keep: np.ndarray
    frame: pd.DataFrame
    failed: dict[str, int] = field(default_factory=dict)
    table_failures: list[str] = field(default_factory=list)


class Acceptor(Protocol):
    """An acceptor that fills generated columns (tables) also has `secrets()` (the key and digests that keep seed
    values out, which its pickle leaves out) and `arm(secrets, model)`: engine/ray_executor.py hands the first to
    each worker in memory and calls the second there."""
    first_keep_rate: float  # the share of a first draw expected to be kept (1.0: ask for exactly what is needed)
    pool: float  # keep this many times the rows wanted per group; `finish` chooses which (1.0: no choice)

    def start(self, shard: Shard) -> None:
        """Forget what the last shard kept (dedupe state): shards are independent."""

    def accept(self, batch: pd.DataFrame, stats: ShardStats, group: int, wanted: int) -> Verdict: ...

    def finish(self, rows: pd.DataFrame, shard: Shard, stats: ShardStats, folder: Path) -> pd.DataFrame:
        """The kept rows as written: generated columns added (tables), PNGs written and their metadata (images),
        the best of a pool chosen (text)."""
        ...


def draw_size(need: int, sampled: int, kept: int, first_keep_rate: float) -> int:
    rate = kept / sampled if sampled else first_keep_rate
    if rate >= 1:
        return need
    return min(need * MAX_DRAW, max(need, math.ceil(need / max(rate, MIN_KEEP_RATE) * OVERSAMPLE)))


def generate_shard(generator, acceptor: Acceptor, shard: Shard, max_rounds: int, folder: Path | None = None
                   ) -> tuple[pd.DataFrame, ShardStats]:
    """The shard's rows: per condition group, drawn, accepted or rejected, drawn again for what is missing (at most
    `max_rounds` draws) until the group has `acceptor.pool` times the rows it wants, then finished by the acceptor
    (which chooses the rows to keep from a pool)."""
    stats = ShardStats(index=shard.index, requested=shard.rows)
    failed: Counter = Counter()
    frames = []
    acceptor.start(shard)
    for g, (conditions, wanted) in enumerate(shard.groups or (((), shard.rows),)):
        need, sampled, kept = math.ceil(wanted * acceptor.pool), 0, 0
        for round_ in range(max_rounds):
            if need <= 0:
                break
            n = draw_size(need, sampled, kept, acceptor.first_keep_rate)
            batch = generator.sample(n, seed=derive_seed(shard.seed, g, round_), conditions=dict(conditions) or None)
            _add_costs(stats.extra, batch.attrs)
            verdict = acceptor.accept(batch, stats, g, wanted)
            failed.update(verdict.failed)
            stats.table_failures.extend(t for t in verdict.table_failures if t not in stats.table_failures)
            good = verdict.frame[verdict.keep]
            sampled, kept = sampled + len(batch), kept + len(good)
            stats.sampled += len(batch)
            stats.invalid += len(batch) - len(good)
            stats.rounds = max(stats.rounds, round_ + 1)
            take = good.head(need)
            frames.append(take)
            need -= len(take)
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    rows = acceptor.finish(rows, shard, stats, Path(folder) if folder is not None else Path("."))
    stats.rows = len(rows)
    stats.failed = dict(failed)
    return rows, stats


def _add_costs(extra: dict, attrs: dict) -> None:
    """What a family says a draw cost (`DataFrame.attrs`, e.g. tokens and seconds), summed over the shard."""
    for k, v in attrs.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            extra[k] = round(extra.get(k, 0) + v, 6)


def part_paths(shard: Shard, tables) -> list[str]:
    """The parts a shard of several tables writes, relative to the run folder (its stats name them)."""
    return [f"data/{name}/{shard.name}.parquet" for name in tables]


def write_shard(folder: Path, shard: Shard, df: pd.DataFrame | dict[str, pd.DataFrame], stats: ShardStats,
                meta: dict[str, str]) -> None:
    """Stats first, then the part: a part on disk always has its stats beside it. Several tables (relational):
    one part per table under data/<table>/, then the stats, which name the parts and mark the shard done."""
    meta = {**meta, "shard": shard.index, "shard_seed": shard.seed}
    if isinstance(df, dict):
        stats.extra["parts"] = part_paths(shard, df)
        for name, frame in df.items():
            write_parquet(folder / "data" / name / f"{shard.name}.parquet", frame, {**meta, "table": name})
        write_json(folder / "shards" / f"{shard.name}.json", stats.to_dict())
        return
    write_json(folder / "shards" / f"{shard.name}.json", stats.to_dict())
    write_parquet(folder / "data" / f"{shard.name}.parquet", df, meta)


def committed(folder: Path, shard: Shard) -> ShardStats | None:
    path = folder / "shards" / f"{shard.name}.json"
    if not path.exists():
        return None
    stats = ShardStats(**json.loads(path.read_text()))
    parts = stats.extra.get("parts") or [f"data/{shard.name}.parquet"]
    return stats if all((folder / p).exists() for p in parts) else None
