"""Jobs: submit (a shipped recipe or an uploaded YAML, plus overrides, against a dataset), list, poll, cancel,
delete. The runner (runner.py) starts them; this router only writes rows."""

from fastapi import APIRouter, Depends, HTTPException, Request
from sqlalchemy import update
from sqlalchemy.orm import Session

from synthforge.errors import UserError
from synthforge.service import jobspec, limits
from synthforge.service.auth import Principal
from synthforge.service.deps import DB, owned, owned_query, read, scope
from synthforge.service.models import FINAL_STATES, Dataset, Job, JobEvent, now, new_id
from synthforge.service.schemas import JobIn, JobOut

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.post("", response_model=JobOut, status_code=201)
def submit(body: JobIn, request: Request, who: Principal = Depends(scope("write")), session: Session = DB):
    return create_job(session, who, request, body)


def create_job(session: Session, who: Principal, request: Request, body: JobIn) -> Job:
    """The job row for a submission (the API's and the pages'), its recipe confined to the tenant; 400 one line."""
    ds = owned(session, Dataset, body.dataset_id, who)
    storage, settings = request.app.state.storage, request.app.state.settings
    if limits.active_jobs(session, who.tenant_id) >= settings.max_active_jobs:
        raise HTTPException(429, f"quota: {settings.max_active_jobs} jobs queued or running at a time; wait for one "
                                 "to end or cancel one")
    try:
        name, recipe = jobspec.build(body.recipe, body.recipe_yaml, body.overrides,
                                     storage.dataset_path(who.tenant_id, ds.storage_key), settings.max_rows,
                                     settings.execution, dataset_format=ds.format)
    except UserError as e:
        raise HTTPException(400, " ".join(str(e).split())) from None
    job = Job(id=new_id("job"), tenant_id=who.tenant_id, dataset_id=ds.id, recipe_name=name, recipe=recipe,
              state="queued", stage="", attempt=0, resume=0, cancel_requested=0)
    session.add(job)
    session.add(JobEvent(job_id=job.id, kind="state", data={"state": "queued"}))
    session.flush()
    return job


@router.get("", response_model=list[JobOut])
async def list_jobs(request: Request, who: Principal = Depends(scope("read"))):
    return read(request, lambda s: s.scalars(owned_query(Job, who).order_by(Job.created_at.desc())).all())


@router.get("/{job_id}", response_model=JobOut)
async def get_job(job_id: str, request: Request, who: Principal = Depends(scope("read"))):
    return read(request, lambda s: owned(s, Job, job_id, who))


@router.post("/{job_id}/cancel", response_model=JobOut)
def cancel(job_id: str, who: Principal = Depends(scope("write")), session: Session = DB):
    """A queued job ends cancelled at once; a running one when its process has stopped (seconds)."""
    job = owned(session, Job, job_id, who)
    if job.state in FINAL_STATES:
        return job
    session.execute(update(Job).where(Job.id == job.id).values(cancel_requested=1))
    ended = session.execute(update(Job).where(Job.id == job.id, Job.state == "queued")
                            .values(state="cancelled", finished_at=now())).rowcount
    if ended:
        session.add(JobEvent(job_id=job.id, kind="state", data={"state": "cancelled"}))
    session.flush()
    session.refresh(job)
    return job


@router.post("/{job_id}/retry", response_model=JobOut)
def retry(job_id: str, who: Principal = Depends(scope("write")), session: Session = DB):
    """A failed or cancelled job back to the queue; its next process continues the partial run (the pipeline's
    resume: the fitted model and committed shards are kept)."""
    job = owned(session, Job, job_id, who)
    if job.state not in ("failed", "cancelled"):
        raise HTTPException(409, f"job {job_id!r} is {job.state}; only a failed or cancelled job is retried")
    session.execute(update(Job).where(Job.id == job.id, Job.state == job.state)
                    .values(state="queued", resume=1, cancel_requested=0, error=None, finished_at=None))
    session.add(JobEvent(job_id=job.id, kind="state", data={"state": "queued", "resume": True, "reason": "retry"}))
    session.flush()
    session.refresh(job)
    return job


@router.delete("/{job_id}", status_code=204)
def delete(job_id: str, request: Request, who: Principal = Depends(scope("write")), session: Session = DB):
    """A finished job: its row, its events and its folder (data, report, the partial run)."""
    job = owned(session, Job, job_id, who)
    if job.state not in FINAL_STATES:
        raise HTTPException(409, f"job {job_id!r} is {job.state}; cancel it first")
    storage = request.app.state.storage
    session.query(JobEvent).filter(JobEvent.job_id == job.id).delete()
    session.delete(job)
    session.flush()
    storage.remove(storage.job_dir(who.tenant_id, job.id))
