"""Tenants and their API keys: the admin scope only. A key's secret is in the response that makes it, once."""

from fastapi import APIRouter, Depends, HTTPException, Request
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from synthforge.service import auth, limits
from synthforge.service.auth import Principal
from synthforge.service.deps import DB, principal, scope
from synthforge.service.models import ApiKey, Dataset, Job, JobEvent, Tenant, WebSession, now
from synthforge.service.schemas import KeyCreated, KeyIn, KeyOut, TenantIn, TenantOut

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(scope("admin"))])


@router.post("/tenants", response_model=TenantOut, status_code=201)
def create_tenant(body: TenantIn, session: Session = DB):
    if session.scalar(select(Tenant.id).where(Tenant.name == body.name)):
        raise HTTPException(409, f"a tenant named {body.name!r} exists")
    return auth.create_tenant(session, body.name)


@router.get("/tenants", response_model=list[TenantOut])
def list_tenants(session: Session = DB):
    return session.scalars(select(Tenant).order_by(Tenant.created_at)).all()


@router.delete("/tenants/{tenant_id}", status_code=204)
def delete_tenant(tenant_id: str, request: Request, who: Principal = Depends(principal), session: Session = DB):
    """A tenant and everything it owns: keys (and so their sessions), jobs with their events, datasets, and its
    folder (uploads, job outputs, partial runs). Refused while one of its jobs is queued or running."""
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise HTTPException(404, f"no tenant {tenant_id!r}")
    if tenant_id == who.tenant_id:
        raise HTTPException(409, "a key cannot delete its own tenant")
    if limits.active_jobs(session, tenant_id):
        raise HTTPException(409, f"tenant {tenant_id!r} has jobs queued or running; cancel them first")
    jobs = select(Job.id).where(Job.tenant_id == tenant_id)
    session.execute(delete(JobEvent).where(JobEvent.job_id.in_(jobs)))
    session.execute(delete(Job).where(Job.tenant_id == tenant_id))
    session.execute(delete(Dataset).where(Dataset.tenant_id == tenant_id))
    keys = select(ApiKey.id).where(ApiKey.tenant_id == tenant_id)
    request.app.state.verified_keys.forget(session.scalars(keys).all())
    session.execute(delete(WebSession).where(WebSession.key_id.in_(keys)))
    session.execute(delete(ApiKey).where(ApiKey.tenant_id == tenant_id))
    session.delete(tenant)
    session.flush()
    storage = request.app.state.storage
    storage.remove(storage.tenant(tenant_id))


@router.post("/tenants/{tenant_id}/keys", response_model=KeyCreated, status_code=201)
def create_key(tenant_id: str, body: KeyIn, session: Session = DB):
    if session.get(Tenant, tenant_id) is None:
        raise HTTPException(404, f"no tenant {tenant_id!r}")
    made = auth.create_key(session, tenant_id, list(body.scopes), body.name, body.expires_in_days)
    return KeyCreated.model_validate({**KeyOut.model_validate(made.row).model_dump(), "key": made.secret})


@router.get("/tenants/{tenant_id}/keys", response_model=list[KeyOut])
def list_keys(tenant_id: str, session: Session = DB):
    return session.scalars(select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.created_at)).all()


@router.delete("/keys/{key_id}", response_model=KeyOut)
def revoke_key(key_id: str, request: Request, session: Session = DB):
    key = session.get(ApiKey, key_id)
    if key is None:
        raise HTTPException(404, f"no key {key_id!r}")
    key.revoked_at = key.revoked_at or now()
    request.app.state.verified_keys.forget([key.id])
    return key
