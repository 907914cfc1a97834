"""One job in its own process: `python -m synthforge.service.worker JOB_ID ATTEMPT DATABASE_URL PARENT_PID JOB_FOLDER`.

It runs the same `pipeline.run` the CLI runs, with the job's confined recipe, into the job's folder (resuming the
`.partial` a killed attempt left when the job says so), writes progress events into the database, and ends the job
with one conditional UPDATE (`state = running AND attempt = ours`), so a job ends exactly once whoever else looks
at it. It dies with the server (PR_SET_PDEATHSIG), so a server killed with SIGKILL leaves no job running behind
its back; the restarted server resumes it. SIGTERM (cancel) stops the run like Ctrl-C stops the CLI.

Events: `stage` as each stage starts, `fit` per training epoch (or, for a family that reports steps, at most one a
second), `shards` as shards are committed. The downloads are made here, once the run is done: the rows as one
Parquet file (a table or text), one Parquet file per table (relational), the images and their metadata as one zip."""

import json
import signal
import sys
import threading
import traceback
from pathlib import Path

from sqlalchemy import update

from synthforge.service.database import make_engine, session_factory, transaction
from synthforge.service.models import Job, JobEvent, now

EXIT_CANCELLED = 143


def _die_with_parent(parent_pid: int) -> None:
    import os

    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: a restarted server still refuses to run a job twice (the workspace lock)
    if os.getppid() != parent_pid:  # the server died before prctl took effect
        sys.exit(EXIT_CANCELLED)
    # below the server: with the cores full of training, a poll still answers in milliseconds (docs/service.md)
    os.nice(int(os.environ.get("SYNTHFORGE_JOB_NICE", "0")))


class _Terminated(KeyboardInterrupt):
    pass


def _terminate(signum, frame):
    raise _Terminated()


def main(argv: list[str]) -> int:
    job_id, attempt, url, parent, folder = argv[0], int(argv[1]), argv[2], int(argv[3]), Path(argv[4])
    _die_with_parent(parent)
    signal.signal(signal.SIGTERM, _terminate)
    factory = session_factory(make_engine(url))
    with transaction(factory) as s:
        job = s.get(Job, job_id)
        if job is None or job.state != "running" or job.attempt != attempt:
            return 0  # claimed by someone else meanwhile, or cancelled: nothing to do
        recipe_data, resume = job.recipe, bool(job.resume)

    def event(kind: str, **data) -> None:
        with transaction(factory) as s:
            s.add(JobEvent(job_id=job_id, kind=kind, data=data))
            if kind == "stage":
                s.execute(update(Job).where(Job.id == job_id, Job.attempt == attempt).values(stage=data["stage"]))

    def finish(state: str, error: str | None = None, rows: int | None = None) -> None:
        with transaction(factory) as s:
            done = s.execute(update(Job).where(Job.id == job_id, Job.state == "running", Job.attempt == attempt)
                             .values(state=state, error=error, rows=rows, finished_at=now(), pid=None)).rowcount
            if done:
                s.add(JobEvent(job_id=job_id, kind="state", data={"state": state, "error": error, "rows": rows}))

    out = folder / "out"
    watcher = _ShardWatcher(out.with_name("out.partial"), event)
    event("state", state="running", attempt=attempt, resumed=resume)
    try:
        state, error, rows = _run(recipe_data, out, resume, folder, lambda stage: event("stage", stage=stage),
                                  watcher, _FitEvents(event))
    except _Terminated:
        return EXIT_CANCELLED  # the server sees the cancel it asked for and records it
    except KeyboardInterrupt:
        return EXIT_CANCELLED
    except Exception:
        (folder / "error.log").write_text(traceback.format_exc())  # for the operator; the API shows one line
        state, error, rows = "failed", "internal error (the server's log has the details)", None
    finally:
        watcher.stop()
    if state in ("succeeded", "failed_gates"):
        _downloads(recipe_data.get("modality"), out, folder)
    finish(state, error, rows)
    return 0


def _run(recipe_data: dict, out: Path, resume: bool, folder: Path, progress, watcher, fit_progress
         ) -> tuple[str, str | None, int | None]:
    from synthforge.engine import workspace
    from synthforge.engine.pipeline import run
    from synthforge.errors import GateFailed, UserError
    from synthforge.recipe.load import parse_recipe

    if resume and workspace.is_complete(out) and not out.with_name("out.partial").exists():
        manifest = json.loads((out / workspace.MANIFEST).read_text())  # finished before the server died
        if manifest.get("status") == "withheld":  # a DP run: its verdict is in the private manifest
            manifest = json.loads((out.with_name(out.name + ".private") / workspace.MANIFEST).read_text())
        return ("failed_gates" if manifest.get("status") == "failed" else "succeeded"), None, manifest.get("rows")
    try:
        recipe = parse_recipe(recipe_data, source="recipe")
        watcher.start()
        result = run(recipe, out=out, resume=resume, overwrite=not resume, base_dir=folder, progress=progress,
                     fit_progress=fit_progress)
        return "succeeded", None, result.manifest.get("rows")
    except GateFailed as e:
        rows = e.result.manifest.get("rows") if e.result is not None else None
        return "failed_gates", " ".join(str(e).split()).split(" (output kept")[0], rows
    except UserError as e:
        return "failed", " ".join(str(e).replace(str(folder.parents[1]), "<storage>").split()), None
    except OSError as e:
        return "failed", f"storage error: {e.strerror}", None


class _ShardWatcher:
    """Per-shard progress without touching the executors: the count of committed shards in the run's folder."""

    def __init__(self, partial: Path, event):
        self.partial, self.event, self.stopped = partial, event, threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()

    def _loop(self) -> None:
        seen = -1
        while not self.stopped.wait(1.0):
            try:
                n = sum(1 for _ in (self.partial / "shards").glob("*.json"))
            except OSError:
                continue
            if n != seen and n > 0:
                seen = n
                try:
                    self.event("shards", committed=n)
                except Exception:
                    pass


class _FitEvents:
    """The family's training reports as `fit` events: every epoch's (they are what a user waits on, seconds to
    minutes apart), a step's at most once a second (a diffusion model reports every step: hundreds a minute)."""

    KEYS = ("epoch", "epochs", "step", "steps", "loss", "val_loss", "elapsed", "table", "rows", "seconds")

    def __init__(self, event, min_interval: float = 1.0):
        self.event, self.min_interval, self.last = event, min_interval, float("-inf")

    def __call__(self, report: dict) -> None:
        import math
        import time

        now = time.monotonic()
        if "epoch" not in report and "table" not in report and now - self.last < self.min_interval:
            return
        self.last = now
        data = {}
        for k in self.KEYS:  # numbers and names only: a JSON column (no NaN), nothing from the seed
            v = report.get(k)
            if isinstance(v, float) and math.isfinite(v):
                data[k] = round(v, 6)
            elif isinstance(v, (int, str)) and not isinstance(v, bool):
                data[k] = v
        if data:
            self.event("fit", **data)


def _downloads(modality: str | None, out: Path, folder: Path) -> None:
    """What the results routes serve, made once: data.parquet, tables/<name>.parquet, or images.zip."""
    if modality == "relational":
        for table in sorted(p for p in (out / "data").iterdir() if p.is_dir()):
            (folder / "tables").mkdir(exist_ok=True)
            _single_parquet(table, folder / "tables" / f"{table.name}.parquet")
    elif modality == "image":
        _images_zip(out, folder / "images.zip")
    else:
        _single_parquet(out / "data", folder / "data.parquet")


def _images_zip(out: Path, target: Path) -> None:
    """The generated PNGs (images/<label>/<id>.png) and metadata.parquet, as the run wrote them. Stored, not
    deflated: PNG is compressed already."""
    import zipfile

    tmp = target.with_name(f".{target.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for path in sorted((out / "images").rglob("*.png")):
            zf.write(path, path.relative_to(out).as_posix())
        if (out / "metadata.parquet").is_file():  # not the manifest: it names the server's folders
            zf.write(out / "metadata.parquet", "metadata.parquet")
    tmp.replace(target)


def _single_parquet(data: Path, target: Path) -> None:
    """The run's parts as one Parquet file, for one download (temporary name, then renamed)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = sorted(data.glob("part-*.parquet"))
    if not parts:
        return
    table = pa.concat_tables([pq.read_table(p) for p in parts])
    tmp = target.with_name(f".{target.name}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(target)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
