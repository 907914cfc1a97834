"""The Ray executor: one task per shard, on a local Ray or a cluster.

Each task loads the generator this run saved through its modality (once per worker process), takes the run's
acceptor (expectations, text filters or the near-copy check) from Ray's object store, draws and accepts its shard
exactly as the local executor does (`generate_shard`, same shard seeds) and writes its part under a pending name; the
driver commits parts as they finish and returns the shard stats in shard order. Shards already committed (a resumed
run) are never submitted.

Generated ids and personal data are never a seed value on a worker either: the model a worker loads from disk holds
no digest of the seed's values, and a pickled acceptor leaves out the secret key and digests that guard them
(families/identifiers.py), so the driver hands both over apart, in memory (`_run` says how), and each task arms its
acceptor and its model with them before drawing.

Address: the `address` argument (recipe `execution.ray_address`, `--ray-address`), else `RAY_ADDRESS`, else a
Ray this process already started (`ray.init` before calling), else a local Ray with one CPU per core, started here
and shut down at the end. Workers must see the run folder at the same path (one machine, or a shared filesystem on
a cluster; docs/scaling.md).

Ray is imported only in this module: it takes seconds.
"""

import os
import warnings
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from synthforge.engine.executors import clean_pending, commit_pending, write_pending
from synthforge.engine.shards import Shard, ShardStats, committed
from synthforge.errors import UserError

# per worker process: the generator of the run it last served, and that run's guard against seed values (memory only)
_WORKER_CACHE: dict[str, tuple] = {}


def run_ray(modality: str, model_dir: Path, acceptor, shards: list[Shard], folder: Path, max_rounds: int,
            meta: dict[str, str], *, address: str | None = None, console: Console | None = None,
            device: str = "cpu") -> list[ShardStats]:
    try:
        import ray
    except ImportError:
        raise UserError("execution.executor: 'ray' needs Ray; install it with pip install 'synthforge[scale]'"
                        ) from None
    folder, model_dir = Path(folder).absolute(), Path(model_dir).absolute()
    clean_pending(folder)
    stats: dict[int, ShardStats | None] = {s.index: committed(folder, s) for s in shards}
    todo = [s for s in shards if stats[s.index] is None]
    if todo:
        started_here = _connect(ray, address)
        try:
            _run(ray, modality, model_dir, acceptor, device, todo, folder, max_rounds, meta, stats,
                 sum(s.rows for s in shards), sum(s.rows for s in shards if stats[s.index] is not None),
                 console or Console(stderr=True, quiet=True))
        finally:
            if started_here:
                ray.shutdown()
        clean_pending(folder)  # attempts Ray retried or cancelled
    return [stats[s.index] for s in shards]


def _connect(ray, address: str | None) -> bool:
    """Connect to (or start) Ray; True when this call did, so the caller shuts it down."""
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    kwargs = {"logging_level": "ERROR", "log_to_driver": False}
    if address:
        _check_reachable(address)
        try:
            ray.init(address=address, **kwargs)
        except ConnectionError as e:
            raise UserError(f"execution.ray_address: no Ray cluster at {address!r} ({_first_line(e)}); start one "
                            "with `ray start --head` or leave the address out for a local Ray") from None
    else:
        ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, **kwargs)
    return True


def check_address(address: str | None) -> None:
    """Before any fitting: a run told to use a cluster that is not there fails now, not after minutes of work."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        _check_reachable(address)


def _check_reachable(address: str) -> None:
    """Fail in seconds on a HOST:PORT nobody listens on (Ray itself retries for minutes)."""
    import re
    import socket

    m = re.fullmatch(r"(?:ray://)?\[?([\w.:-]+?)\]?:(\d+)", address.strip())
    if not m:
        return  # "auto", "local" and friends: Ray's own resolution
    try:
        socket.create_connection((m.group(1), int(m.group(2))), timeout=5).close()
    except OSError as e:
        raise UserError(f"execution.ray_address: nothing answers at {address} ({e.strerror or e}); start a cluster "
                        "with `ray start --head` or leave the address out for a local Ray") from None


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def _run(ray, modality: str, model_dir: Path, acceptor, device: str, todo: list[Shard], folder: Path, max_rounds: int,
         meta: dict, stats: dict, total_rows: int, done_rows: int, console: Console) -> None:
    from ray.exceptions import RayTaskError

    task = ray.remote(num_cpus=1)(_shard_task)
    acceptor_ref = ray.put(acceptor)  # without the key and the digests: GeneratedColumns leaves them out of a pickle
    # The guard against seed values, handed over apart. The key (32 bytes per table) is a plain task argument: Ray
    # inlines arguments under 100 KiB into the task itself, held in memory by the driver and the worker, never put
    # in the shared-memory object store, which is what Ray spills to disk when it fills. The digests (32 bytes per
    # distinct seed value: too many to inline) are one object in that store, which may be spilled, but without the
    # key a keyed digest cannot be tested against a dictionary of likely values (issue 32 item 3), so a spilled
    # copy tells at most how many distinct values a column has. Not chosen: workers recomputing the digests from the
    # seed (on a cluster they see the run folder, not necessarily the seed, and each would read and split it again).
    secrets = acceptor.secrets() if hasattr(acceptor, "secrets") else {}
    keys = {name: key for name, (key, _) in secrets.items()}
    digests = [ray.put({name: d for name, (_, d) in secrets.items()})] if secrets else []  # in a list: not resolved
    # before the task runs, so a worker fetches it once per run (`_guard`), not once per shard
    # keep the queue bounded (a million-shard run submits as the cluster frees up, not all at once)
    window = max(4, 2 * int(ray.cluster_resources().get("CPU", 1)))
    queue, in_flight = list(todo), {}
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} rows"),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        bar = progress.add_task("generate + validate (ray)", total=total_rows, completed=done_rows)
        try:
            while queue or in_flight:
                while queue and len(in_flight) < window:
                    shard = queue.pop(0)
                    in_flight[task.remote(modality, str(model_dir), device, acceptor_ref, keys, digests, shard,
                                          max_rounds, meta, str(folder))] = shard
                # a timeout, so Ctrl-C is handled between waits
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=0.5)
                for ref in ready:
                    shard = in_flight.pop(ref)
                    try:
                        st, pending = ray.get(ref)
                    except RayTaskError as e:
                        if isinstance(e.cause, UserError):
                            raise e.cause from None
                        raise
                    result = ShardStats(**st)
                    commit_pending(folder, shard, {k: Path(v) for k, v in pending.items()}
                                   if isinstance(pending, dict) else Path(pending), result)
                    stats[shard.index] = result
                    progress.advance(bar, shard.rows)
        except BaseException:
            for ref in in_flight:  # not force: that would kill the (warm) worker processes
                ray.cancel(ref)
            raise


def _shard_task(modality: str, model_dir: str, device: str, acceptor, keys: dict, digests: list, shard: Shard,
                max_rounds: int, meta: dict, folder: str) -> tuple[dict, str | dict]:
    """Runs on a Ray worker: one CPU, so one thread for torch and for numpy's BLAS."""
    from threadpoolctl import threadpool_limits

    from synthforge.engine.shards import generate_shard, part_paths

    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        generator = _load(modality, model_dir, device)
        if keys:  # before any draw: the model fills generated columns as it draws (relational), the acceptor too
            acceptor.arm(_guard(keys, digests), generator)
        df, st = generate_shard(generator, acceptor, shard, max_rounds, Path(folder))
        pending = write_pending(Path(folder), shard, df, meta)
        if isinstance(df, dict):  # several tables: the stats name their parts (write_shard does the same)
            st.extra["parts"] = part_paths(shard, df)
    return st.to_dict(), {k: str(v) for k, v in pending.items()} if isinstance(pending, dict) else str(pending)


def _guard(keys: dict, digests: list) -> dict:
    """name -> (key, digests) of this run, the digests fetched once per worker process and run (kept in memory)."""
    stamp = tuple(sorted(keys.items()))
    if _WORKER_CACHE.get("guard", (None,))[0] != stamp:
        import ray

        _WORKER_CACHE["guard"] = (stamp, ray.get(digests[0]))
    held = _WORKER_CACHE["guard"][1]
    return {name: (key, held[name]) for name, key in keys.items()}


def _load(modality: str, model_dir: str, device: str):
    """The run's generator, loaded once per worker process (and again when the model folder changes)."""
    from synthforge.engine.modalities import MODALITIES

    stamp = os.stat(Path(model_dir) / "generator.json").st_mtime_ns
    key = (modality, model_dir, stamp, device)
    if _WORKER_CACHE.get("key", (None,))[0] != key:
        _WORKER_CACHE.clear()
        import torch

        torch.set_num_threads(1)
        generator = MODALITIES[modality].load_model(Path(model_dir), device=device)  # this run's own model
        _WORKER_CACHE["key"] = (key, generator)
    return _WORKER_CACHE["key"][1]
