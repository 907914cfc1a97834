"""The retention period: jobs that ended more than `retention_days` ago go, with their events and their folder
(data, report, the partial run); then datasets older than that which no job uses any more. Run by the worker pool
once a minute; off unless SYNTHFORGE_RETENTION_DAYS is set."""

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from synthforge.service.database import transaction
from synthforge.service.models import FINAL_STATES, Dataset, Job, JobEvent, now
from synthforge.service.storage import Storage


def sweep(factory: sessionmaker[Session], storage: Storage, days: float) -> tuple[int, int]:
    """(jobs, datasets) deleted. Rows first, then files: a crash in between leaves files without rows (swept by
    nothing, but never a row pointing at nothing)."""
    cutoff = now() - timedelta(days=days)
    with transaction(factory) as s:
        jobs = s.execute(select(Job.id, Job.tenant_id).where(Job.state.in_(FINAL_STATES),
                                                             Job.finished_at < cutoff)).all()
        ids = [j for j, _ in jobs]
        if ids:
            s.execute(delete(JobEvent).where(JobEvent.job_id.in_(ids)))
            s.execute(delete(Job).where(Job.id.in_(ids)))
        used = select(Job.dataset_id)
        datasets = s.execute(select(Dataset.id, Dataset.tenant_id, Dataset.storage_key).where(
            Dataset.created_at < cutoff, Dataset.id.not_in(used))).all()
        if datasets:
            s.execute(delete(Dataset).where(Dataset.id.in_([d for d, _, _ in datasets])))
    for job_id, tenant_id in jobs:
        storage.remove(storage.job_dir(tenant_id, job_id))
    for _, tenant_id, key in datasets:
        storage.remove(storage.dataset_path(tenant_id, key))
    return len(jobs), len(datasets)
