"""Executors run the shards. `local` runs them in this process; `ray` (ray_executor.py) fans them out. Both call
the same `generate_shard`, and shard seeds never depend on the executor, so both write the same rows."""

from pathlib import Path

from rich.progress import Progress

from synthforge.engine.shards import Shard, ShardStats, committed, generate_shard, write_shard


def run_local(generator, suite, shards: list[Shard], folder: Path, max_rounds: int, meta: dict[str, str],
              progress: Progress | None = None) -> list[ShardStats]:
    stats = []
    task = progress.add_task("generate + validate", total=sum(s.rows for s in shards)) if progress else None
    for shard in shards:
        done = committed(folder, shard)
        if done is None:
            df, done = generate_shard(generator, suite, shard, max_rounds)
            write_shard(folder, shard, df, done, meta)
        stats.append(done)
        if progress:
            progress.advance(task, shard.rows)
    return stats
