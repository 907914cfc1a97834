"""Tenants and their API keys: the admin scope only. A key's secret is in the response that makes it, once."""

from fastapi import APIRouter, Depends, HTTPException
from sqlalchemy import select
from sqlalchemy.orm import Session

from synthforge.service import auth
from synthforge.service.deps import DB, scope
from synthforge.service.models import ApiKey, Tenant, now
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
def revoke_key(key_id: str, session: Session = DB):
    key = session.get(ApiKey, key_id)
    if key is None:
        raise HTTPException(404, f"no key {key_id!r}")
    key.revoked_at = key.revoked_at or now()
    return key
