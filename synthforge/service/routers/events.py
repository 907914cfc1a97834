"""A job's progress events: a list (polling) and a server-sent-events stream that resumes after `Last-Event-ID`
and ends once the job has ended and every event is sent."""

import anyio
from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select
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
    poll = request.app.state.settings.poll_seconds

    async def events():
        nonlocal last
        while True:
            batch, state = await anyio.to_thread.run_sync(_after, factory, job_id, last)
            for e in batch:
                last = e.id
                yield {"id": str(e.id), "event": e.kind, "data": e.model_dump_json()}
            if not batch and state in FINAL_STATES or state is None:
                return
            if not batch:
                await anyio.sleep(poll)

    return EventSourceResponse(events(), ping=15)
