"""A finished job's files: the rows as one Parquet file (a table or text; `?table=NAME` for each table of a
relational job), the images and their metadata as one zip (an image job), report.html, report.json, manifest.json."""

from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, Response
from sqlalchemy.orm import Session

from synthforge.service.auth import Principal
from synthforge.service.deps import DB, owned, scope
from synthforge.service.models import Job

router = APIRouter(prefix="/jobs", tags=["results"])

# the report is ours and self-contained; its inline styles and scripts are allowed, nothing from elsewhere
REPORT_CSP = ("default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
              "font-src data:; frame-ancestors 'self'")


def _file(request: Request, session: Session, who: Principal, job_id: str, relative: str,
          private_too: bool = False) -> Path:
    """A result file of the tenant's own job. `private_too`: a differentially private run keeps its report in the
    private folder (computed from the raw rows, outside ε: engine/workspace.py); the tenant is the seed's owner, so
    its report is served from there, never to anyone else."""
    job = owned(session, Job, job_id, who)
    if job.state not in ("succeeded", "failed_gates"):
        raise HTTPException(409, f"job {job_id!r} is {job.state}; results come when it has succeeded or failed_gates")
    folder = request.app.state.storage.job_dir(who.tenant_id, job.id)
    path = folder / relative
    if private_too and not path.is_file():
        path = folder / relative.replace("out/", "out.private/", 1)
    if not path.is_file():
        raise HTTPException(404, f"job {job_id!r} has no {Path(relative).name}")
    return path


@router.get("/{job_id}/data.parquet", response_class=FileResponse)
def data(job_id: str, request: Request, table: str | None = Query(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$",
                                                                   description="a relational job's table"),
         who: Principal = Depends(scope("read")), session: Session = DB):
    job = owned(session, Job, job_id, who)
    if job.modality == "relational":
        if table not in job.tables:
            raise HTTPException(400, f"table: a relational job's rows are one file per table; ask for ?table= one "
                                     f"of {', '.join(job.tables)}")
        path = _file(request, session, who, job_id, f"tables/{table}.parquet")
        return FileResponse(path, media_type="application/vnd.apache.parquet", filename=f"{job_id}-{table}.parquet")
    if table is not None:
        raise HTTPException(400, f"table: job {job_id!r} is a {job.modality} job, not relational; leave table out")
    if job.modality == "image":
        raise HTTPException(404, f"job {job_id!r} made images: GET /jobs/{job_id}/images.zip")
    path = _file(request, session, who, job_id, "data.parquet")
    return FileResponse(path, media_type="application/vnd.apache.parquet", filename=f"{job_id}.parquet")


@router.get("/{job_id}/images.zip", response_class=FileResponse)
def images(job_id: str, request: Request, who: Principal = Depends(scope("read")), session: Session = DB):
    """An image job's PNGs (`images/<label>/<id>.png`) and `metadata.parquet` (file_name, label, seed, ...)."""
    path = _file(request, session, who, job_id, "images.zip")
    return FileResponse(path, media_type="application/zip", filename=f"{job_id}-images.zip")


@router.get("/{job_id}/report.html", response_class=FileResponse)
def report_html(job_id: str, request: Request, who: Principal = Depends(scope("read")),
                session: Session = DB):
    path = _file(request, session, who, job_id, "out/report.html", private_too=True)
    return FileResponse(path, media_type="text/html; charset=utf-8", headers={"Content-Security-Policy": REPORT_CSP})


@router.get("/{job_id}/report.json", response_class=FileResponse)
def report_json(job_id: str, request: Request, who: Principal = Depends(scope("read")),
                session: Session = DB):
    return FileResponse(_file(request, session, who, job_id, "out/report.json", private_too=True),
                        media_type="application/json")


@router.get("/{job_id}/manifest.json")
def manifest(job_id: str, request: Request, who: Principal = Depends(scope("read")), session: Session = DB):
    """The run's manifest, with the server's folders taken out of its paths (the seed reads `datasets/<key>`)."""
    text = _file(request, session, who, job_id, "out/manifest.json").read_text(encoding="utf-8")
    tenant = str(request.app.state.storage.tenant(who.tenant_id))
    return Response(text.replace(tenant + "/", ""), media_type="application/json")
