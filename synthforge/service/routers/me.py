"""Who the caller is: its tenant and key (never the secret)."""

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy.orm import Session

from synthforge.service.auth import Principal
from synthforge.service.deps import DB, principal
from synthforge.service.models import ApiKey, Tenant


class MeOut(BaseModel):
    tenant_id: str
    tenant: str
    key_id: str
    key_prefix: str
    scopes: list[str]


router = APIRouter(tags=["me"])


@router.get("/me", response_model=MeOut)
def me(who: Principal = Depends(principal), session: Session = DB):
    key = session.get(ApiKey, who.key_id)
    return MeOut(tenant_id=who.tenant_id, tenant=session.get(Tenant, who.tenant_id).name, key_id=who.key_id,
                 key_prefix=key.prefix, scopes=sorted(who.scopes))
