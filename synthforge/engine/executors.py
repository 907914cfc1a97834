"""Executors run the shards. `local` runs them in this process; `ray` (ray_executor.py) fans them out. Both call
the same `generate_shard`, and shard seeds never depend on the executor, so both write the same rows.

A remote worker writes its part under a hidden pending name (`data/.pending-part-00003-<attempt>.parquet`, which
`pandas.read_parquet(folder)` skips) and the driver commits it: stats first, then the part renamed into place, the
same order as `write_shard`, so a part on disk always has its stats beside it and a killed run at worst redoes the
shards it had not committed.
"""

import os
import uuid
from pathlib import Path

from rich.progress import Progress

from synthforge.engine.shards import Acceptor, Shard, ShardStats, committed, generate_shard, write_shard
from synthforge.sinks.files import write_json, write_parquet

PENDING_PREFIX = ".pending-"


def run_local(generator, acceptor: Acceptor, shards: list[Shard], folder: Path, max_rounds: int,
              meta: dict[str, str], progress: Progress | None = None, unit: str = "rows") -> list[ShardStats]:
    clean_pending(folder)  # what a killed run of any executor left half-written
    stats = []
    task = progress.add_task("generate + validate", total=sum(s.rows for s in shards), unit=unit) \
        if progress else None
    for shard in shards:
        done = committed(folder, shard)
        if done is None:
            df, done = generate_shard(generator, acceptor, shard, max_rounds, folder)
            write_shard(folder, shard, df, done, meta)
        stats.append(done)
        if progress:
            progress.advance(task, shard.rows)
    return stats


def write_pending(folder: Path, shard: Shard, df, meta: dict[str, str]) -> Path | dict[str, Path]:
    """A worker's part (one per table for several tables) under a name of its own attempt; nothing reads it until
    `commit_pending` renames it."""
    attempt = uuid.uuid4().hex[:12]
    meta = {**meta, "shard": shard.index, "shard_seed": shard.seed}
    if isinstance(df, dict):
        return {name: write_parquet(Path(folder) / "data" / name / f"{PENDING_PREFIX}{shard.name}-{attempt}.parquet",
                                    frame, {**meta, "table": name}) for name, frame in df.items()}
    return write_parquet(Path(folder) / "data" / f"{PENDING_PREFIX}{shard.name}-{attempt}.parquet", df, meta)


def commit_pending(folder: Path, shard: Shard, pending: Path | dict[str, Path], stats: ShardStats) -> None:
    """Stats, then the part renamed into place; several tables: the parts, then the stats (which name them)."""
    folder = Path(folder)
    if isinstance(pending, dict):
        for name, path in pending.items():
            os.replace(path, folder / "data" / name / f"{shard.name}.parquet")
        write_json(folder / "shards" / f"{shard.name}.json", stats.to_dict())
        return
    write_json(folder / "shards" / f"{shard.name}.json", stats.to_dict())
    os.replace(pending, folder / "data" / f"{shard.name}.parquet")


def clean_pending(folder: Path) -> int:
    """Remove parts that a killed run's workers wrote but never committed (and half-written temporaries), in data/
    and in its per-table folders."""
    removed = 0
    data = Path(folder) / "data"
    for p in [*data.glob(".*"), *data.glob("*/.*")] if data.is_dir() else ():
        if p.name.startswith(PENDING_PREFIX) or ".tmp" in p.name:
            p.unlink(missing_ok=True)
            removed += 1
    return removed
