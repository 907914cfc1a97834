"""Datasets: a seed uploaded as the request body (streamed, capped, content-checked: a table, or a zip of images or
of tables, extracted), listed, read, deleted."""

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from synthforge.errors import UserError
from synthforge.service import limits
from synthforge.service.auth import Principal
from synthforge.service.deps import DB, owned, owned_query, scope
from synthforge.service.models import Dataset, Job
from synthforge.service.schemas import DatasetOut
from synthforge.service.storage import TooLarge

router = APIRouter(prefix="/datasets", tags=["datasets"])


@router.post("", response_model=DatasetOut, status_code=201,
             openapi_extra={"requestBody": {"content": {"text/csv": {}, "application/octet-stream": {},
                                                        "application/zip": {}},
                                            "required": True}})
async def upload(request: Request, name: str = Query("data.csv", max_length=200, description="a label; never a path"),
                 who: Principal = Depends(scope("write"))):
    """The body is the file, sent as it is (`curl --data-binary @seed.csv`): CSV, Parquet, JSON lines, or a zip of
    images (one folder per class) or of tables (one file per table, for a relational recipe)."""
    settings, storage = request.app.state.settings, request.app.state.storage

    def room() -> int:
        with request.app.state.sessions() as s:
            return settings.max_stored_bytes - limits.stored_bytes(s, who.tenant_id)

    left = await anyio.to_thread.run_sync(room)
    limit = min(settings.max_upload_bytes, max(left, 0))
    why = (f"upload over the cap of {settings.max_upload_bytes} bytes" if limit == settings.max_upload_bytes else
           f"quota: this tenant may store {settings.max_stored_bytes} bytes and has {max(left, 0)} left")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise HTTPException(413, why)
    try:
        stored = await storage.save_upload(who.tenant_id, request.stream(), limit,
                                           max_members=settings.max_zip_members,
                                           max_unzipped=min(settings.max_unzipped_bytes, max(left, 0)))
    except TooLarge as e:
        raise HTTPException(413, str(e) or why) from None
    except UserError as e:
        raise HTTPException(400, str(e)) from None
    row = Dataset(tenant_id=who.tenant_id, name=name, format=stored.format, storage_key=stored.key,
                  bytes=stored.bytes, rows=stored.rows, columns=stored.columns, sha256=stored.sha256)
    try:
        with request.app.state.sessions() as session, session.begin():
            session.add(row)
    except Exception:
        storage.remove(storage.dataset_path(who.tenant_id, stored.key))  # no file without its row
        raise
    return row


@router.get("", response_model=list[DatasetOut])
def list_datasets(who: Principal = Depends(scope("read")), session: Session = DB):
    return session.scalars(owned_query(Dataset, who).order_by(Dataset.created_at.desc())).all()


@router.get("/{dataset_id}", response_model=DatasetOut)
def get_dataset(dataset_id: str, who: Principal = Depends(scope("read")), session: Session = DB):
    return owned(session, Dataset, dataset_id, who)


@router.delete("/{dataset_id}", status_code=204)
def delete_dataset(dataset_id: str, request: Request, who: Principal = Depends(scope("write")),
                   session: Session = DB):
    ds = owned(session, Dataset, dataset_id, who)
    if session.scalar(select(Job.id).where(Job.dataset_id == ds.id).limit(1)):
        raise HTTPException(409, f"dataset {dataset_id!r} has jobs; delete them first")
    storage = request.app.state.storage
    session.delete(ds)
    session.flush()
    storage.remove(storage.dataset_path(who.tenant_id, ds.storage_key))
