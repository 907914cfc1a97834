"""The worker pool: up to `workers` job processes on this machine, fed from the jobs table.

The table is the single source of truth. A queued job is claimed with one conditional UPDATE (`state = queued`),
so two loops (or two servers on one database) never start it twice; its process ends it with another conditional
UPDATE (worker.py). At start, jobs a dead server left `running` go back to the queue marked `resume`, and their
next process continues the run's `.partial` folder through the pipeline's own resume (the model and the committed
shards are kept). Cancel: SIGTERM to the job's process group, SIGKILL after a grace period."""

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from synthforge.service.database import transaction
from synthforge.service.models import Job, JobEvent, now
from synthforge.service.settings import Settings
from synthforge.service.storage import Storage

log = logging.getLogger("synthforge.service")


@dataclass
class _Running:
    job_id: str
    attempt: int
    proc: subprocess.Popen
    term_sent: float | None = None
    log: object = field(default=None)


class Runner:
    def __init__(self, settings: Settings, factory: sessionmaker[Session], storage: Storage):
        self.settings, self.factory, self.storage = settings, factory, storage
        self.running: dict[str, _Running] = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="synthforge-runner", daemon=True)
        self.swept = 0.0  # monotonic time of the last retention sweep

    def start(self) -> None:
        self.recover()
        self.thread.start()

    def stop(self) -> None:
        """Server shutdown: stop the loop and the job processes; their jobs stay `running` and resume next start."""
        self.stopping.set()
        self.thread.join(timeout=10)
        for r in list(self.running.values()):
            _signal(r.proc, signal.SIGKILL)
            r.proc.wait(timeout=10)

    def recover(self) -> int:
        """Jobs a dead server left running go back to the queue, to resume from their committed work."""
        with transaction(self.factory) as s:
            stale = s.scalars(select(Job).where(Job.state == "running")).all()
            for job in stale:
                if job.cancel_requested:
                    _end(s, job.id, job.attempt, "cancelled", None)
                    continue
                s.execute(update(Job).where(Job.id == job.id, Job.state == "running")
                          .values(state="queued", resume=1, pid=None))
                s.add(JobEvent(job_id=job.id, kind="state", data={"state": "queued", "resume": True,
                                                                   "reason": "server restarted"}))
        return len(stale)

    def _loop(self) -> None:
        while not self.stopping.wait(self.settings.poll_seconds):
            try:
                self.tick()
            except Exception:  # a database hiccup must not end the pool; the next tick tries again
                log.exception("runner tick failed")

    def tick(self) -> None:
        self._reap()
        self._cancel()
        if self.settings.retention_days and time.monotonic() - self.swept > 60:
            from synthforge.service.retention import sweep

            self.swept = time.monotonic()
            sweep(self.factory, self.storage, self.settings.retention_days)
        while len(self.running) < self.settings.workers and not self.stopping.is_set():
            if not self._claim():
                break

    def _claim(self) -> bool:
        with transaction(self.factory) as s:
            job = s.scalars(select(Job).where(Job.state == "queued").order_by(Job.created_at).limit(1)).first()
            if job is None:
                return False
            attempt = job.attempt + 1
            claimed = s.execute(update(Job).where(Job.id == job.id, Job.state == "queued")
                                .values(state="running", attempt=attempt, started_at=job.started_at or now(),
                                        stage="starting")).rowcount
            if not claimed:
                return True  # someone else took it: look again
            tenant_id, job_id = job.tenant_id, job.id
        folder = self.storage.job_dir(tenant_id, job_id)
        folder.mkdir(parents=True, exist_ok=True)
        logfile = open(folder / "job.log", "ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "SYNTHFORGE_JOB_NICE": str(self.settings.job_nice)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "synthforge.service.worker", job_id, str(attempt), self.settings.database_url,
             str(os.getpid()), str(folder)],
            stdin=subprocess.DEVNULL, stdout=logfile, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            cwd=folder)
        self.running[job_id] = _Running(job_id, attempt, proc, log=logfile)
        with transaction(self.factory) as s:
            s.execute(update(Job).where(Job.id == job_id, Job.attempt == attempt).values(pid=proc.pid))
        return True

    def _reap(self) -> None:
        for job_id, r in list(self.running.items()):
            code = r.proc.poll()
            if code is None:
                continue
            del self.running[job_id]
            r.log.close()
            with transaction(self.factory) as s:
                job = s.get(Job, job_id)
                if job is None or job.state != "running" or job.attempt != r.attempt:
                    continue  # the process ended its job itself
                if job.cancel_requested:
                    _end(s, job_id, r.attempt, "cancelled", None)
                else:
                    _end(s, job_id, r.attempt, "failed", f"the job's process ended without a result (exit {code})")

    def _cancel(self) -> None:
        if not self.running:
            return
        with self.factory() as s:
            wanted = set(s.scalars(select(Job.id).where(Job.id.in_(list(self.running)),
                                                        Job.cancel_requested == 1)).all())
        for job_id in wanted:
            r = self.running.get(job_id)
            if r is None:
                continue
            if r.term_sent is None:
                _signal(r.proc, signal.SIGTERM)
                r.term_sent = time.monotonic()
            elif time.monotonic() - r.term_sent > self.settings.cancel_grace_seconds:
                _signal(r.proc, signal.SIGKILL)


def _end(s: Session, job_id: str, attempt: int, state: str, error: str | None) -> None:
    done = s.execute(update(Job).where(Job.id == job_id, Job.state == "running", Job.attempt == attempt)
                     .values(state=state, error=error, finished_at=now(), pid=None)).rowcount
    if done:
        s.add(JobEvent(job_id=job_id, kind="state", data={"state": state, "error": error}))


def _signal(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # the job's whole group: a run's own helpers go with it
    except (ProcessLookupError, PermissionError):
        pass
