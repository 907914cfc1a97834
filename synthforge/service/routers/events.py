"""A job's progress events: a list (polling) and a server-sent-events stream that resumes after `Last-Event-ID`
and ends once the job has ended and every event is sent."""

import time

import anyio
from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import func, select
from sse_starlette.sse import EventSourceResponse

from synthforge.service.auth import Principal
from synthforge.service.deps import DB, owned, scope
from synthforge.service.models import FINAL_STATES, Job, JobEvent
from synthforge.service.schemas import EventOut

router = APIRouter(prefix="/jobs", tags=["events"])


def _after(factory, job_id: str, last: int) -> tuple[list[EventOut], str]:
    with factory() as s:
        rows = s.scalars(select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.id > last)
                         .order_by(JobEvent.id).limit(500)).all()
        return [EventOut.model_validate(r) for r in rows], s.scalar(select(Job.state).where(Job.id == job_id))


def _head(factory, job_id: str) -> tuple[int, str | None]:
    """(the newest event id, the job's state), read in one snapshot: a final state with nothing newer than what a
    stream sent means it has sent everything."""
    with factory() as s, s.begin():
        newest = s.scalar(select(func.max(JobEvent.id)).where(JobEvent.job_id == job_id)) or 0
        return newest, s.scalar(select(Job.state).where(Job.id == job_id))


class Heads:
    """Each watched job's newest event id and state, read at most once per `poll` seconds whoever asks: ten streams
    of one job cost one small query per poll between them (each stream then reads only what is new for it),
    instead of two queries per stream per poll."""

    def __init__(self, factory, poll: float):
        self.factory, self.poll = factory, poll
        self._seen: dict[str, tuple[float, int, str | None]] = {}
        self._locks: dict[str, anyio.Lock] = {}

    async def get(self, job_id: str) -> tuple[int, str | None]:
        if (hit := self._fresh(job_id)) is not None:
            return hit
        async with self._locks.setdefault(job_id, anyio.Lock()):
            if (hit := self._fresh(job_id)) is not None:  # another stream read it while this one waited
                return hit
            head = await anyio.to_thread.run_sync(_head, self.factory, job_id)
            if len(self._seen) > 1000:  # forget jobs nobody asked about lately
                self._seen = {k: v for k, v in self._seen.items() if time.monotonic() - v[0] < 60}
                self._locks = {k: v for k, v in self._locks.items() if k in self._seen or k == job_id}
            self._seen[job_id] = (time.monotonic(), *head)
            return head

    def _fresh(self, job_id: str) -> tuple[int, str | None] | None:
        hit = self._seen.get(job_id)
        return hit[1:] if hit and time.monotonic() - hit[0] < self.poll else None


@router.get("/{job_id}/events", response_model=list[EventOut])
def list_events(job_id: str, request: Request, after: int = Query(0, ge=0), who: Principal = Depends(scope("read")),
                session=DB):
    owned(session, Job, job_id, who)
    return _after(request.app.state.sessions, job_id, after)[0]


@router.get("/{job_id}/stream", response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def stream(job_id: str, request: Request, who: Principal = Depends(scope("read"))):
    factory = request.app.state.sessions

    def check():
        with factory() as s:
            owned(s, Job, job_id, who)

    await anyio.to_thread.run_sync(check)  # 404 before the stream starts
    header = request.headers.get("last-event-id", "0")
    last = int(header) if header.isdigit() else 0
    poll, heads = request.app.state.settings.poll_seconds, request.app.state.event_heads

    async def events():
        nonlocal last
        while True:
            newest, state = await heads.get(job_id)
            if newest > last:
                batch, _ = await anyio.to_thread.run_sync(_after, factory, job_id, last)
                for e in batch:
                    last = e.id
                    yield {"id": str(e.id), "event": e.kind, "data": e.model_dump_json()}
                if batch:
                    continue
            if state in FINAL_STATES or state is None:
                return
            await anyio.sleep(poll)

    return EventSourceResponse(events(), ping=15)
