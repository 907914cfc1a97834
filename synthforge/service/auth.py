"""API keys: `sf_<prefix>_<secret>`, shown once; the database keeps the public prefix (the lookup handle) and an
argon2 hash of the whole key. A key has scopes (read, write, admin), may expire, and is revoked by setting
`revoked_at`. Every route reaches the caller's tenant through `Principal`, built here and nowhere else."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from synthforge.service.models import ApiKey, Tenant, WebSession, now

SCOPES = ("read", "write", "admin")
KEY_PREFIX = "sf_"
_hasher = PasswordHasher()  # argon2id, the library's defaults (RFC 9106 low-memory profile)
# verified when a prefix is unknown, so a wrong prefix costs the same time as a wrong secret
_DUMMY_HASH = _hasher.hash("synthforge-dummy-key")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, its tenant and scopes. Routes take this, never a tenant id from the client."""
    key_id: str
    tenant_id: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


@dataclass(frozen=True)
class NewKey:
    row: ApiKey
    secret: str  # the whole key: returned to its creator once, stored nowhere


def create_key(session: Session, tenant_id: str, scopes: list[str], name: str = "",
               expires_in_days: float | None = None) -> NewKey:
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise ValueError(f"scopes: {bad or scopes!r} not valid; choose from {', '.join(SCOPES)}")
    prefix = secrets.token_hex(6)
    secret = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    expires = now() + timedelta(days=expires_in_days) if expires_in_days else None
    row = ApiKey(tenant_id=tenant_id, prefix=prefix, hash=_hasher.hash(secret), name=name,
                 scopes=" ".join(sorted(set(scopes))), expires_at=expires)
    session.add(row)
    session.flush()
    return NewKey(row=row, secret=secret)


class VerifiedKeys:
    """Keys argon2 has accepted lately, by the sha256 of the whole key, for `ttl` seconds: argon2 costs ~0.1-1 s of
    CPU by design, too much for every poll. Within `fresh` seconds of its last check against the database a key's
    principal is answered from here (no database round trip: the poll-heavy routes' largest cost,
    benchmarks/service.py); after that a hit still reads the key's row, so a change made by another process takes
    effect within `fresh` seconds. Revocation and deletion through this server take effect on the next request:
    `forget` drops the key and remembers its id, so a check that read the row before the revocation committed cannot
    put it back. Held by the app (one per process), never module-global."""

    def __init__(self, ttl: float = 300.0, size: int = 10_000, fresh: float = 10.0):
        self.ttl, self.size, self.fresh = ttl, size, fresh
        self._seen: dict[str, tuple[str, float, Principal, float, datetime | None]] = {}
        self._gone: set[str] = set()

    def get(self, secret: str) -> str | None:
        import time

        hit = self._seen.get(_sha(secret))
        return hit[0] if hit and hit[1] > time.monotonic() else None

    def principal(self, secret: str) -> Principal | None:
        """The key's principal when this process checked the key against the database less than `fresh` s ago."""
        import time

        hit = self._seen.get(_sha(secret))
        if not hit or hit[3] <= time.monotonic() or hit[0] in self._gone:
            return None
        expires = hit[4]
        return hit[2] if expires is None or _aware(expires) > now() else None

    def put(self, secret: str, row: ApiKey, who: Principal) -> None:
        import time

        if row.id in self._gone:
            return
        if len(self._seen) >= self.size:
            self._seen.clear()
        t = time.monotonic()
        self._seen[_sha(secret)] = (row.id, t + self.ttl, who, t + self.fresh, row.expires_at)

    def forget(self, key_ids) -> None:
        """These keys were revoked or deleted: never answer for them again."""
        self._gone.update(key_ids)
        self._seen = {k: v for k, v in self._seen.items() if v[0] not in self._gone}


def verify_key(session: Session, secret: str, cache: VerifiedKeys | None = None) -> Principal | None:
    """The key's principal, or None for a malformed, unknown, wrong, revoked or expired key (one answer for all)."""
    parts = secret.split("_") if secret.startswith(KEY_PREFIX) else []
    row = None
    if len(parts) >= 3:
        row = session.scalar(select(ApiKey).where(ApiKey.prefix == parts[1]))
    if not (cache is not None and row is not None and cache.get(secret) == row.id):
        try:
            _hasher.verify(row.hash if row is not None else _DUMMY_HASH, secret)
        except (VerificationError, InvalidHashError):
            return None
    if row is None or not usable(row):
        return None
    who = Principal(key_id=row.id, tenant_id=row.tenant_id, scopes=frozenset(row.scopes.split()))
    if cache is not None:
        cache.put(secret, row, who)
    if row.last_used_at is None or now() - _aware(row.last_used_at) > timedelta(minutes=1):
        row.last_used_at = now()  # to the minute: a write per request would serialise every poll on SQLite
    return who


def usable(row: ApiKey) -> bool:
    return row.revoked_at is None and (row.expires_at is None or _aware(row.expires_at) > now())


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)  # SQLite hands back naive datetimes


def create_tenant(session: Session, name: str) -> Tenant:
    tenant = Tenant(name=name)
    session.add(tenant)
    session.flush()
    return tenant


def bootstrap_admin(session: Session, force: bool = False) -> NewKey | None:
    """The first admin key (tenant `admin`), made when the database has no key at all, or on `force`
    (`synthforge serve --create-admin-key`); None when there are keys already and no force."""
    if not force and session.scalar(select(ApiKey.id).limit(1)) is not None:
        return None
    tenant = session.scalar(select(Tenant).where(Tenant.name == "admin")) or create_tenant(session, "admin")
    return create_key(session, tenant.id, ["admin"], name="bootstrap admin")


# --- browser sessions -------------------------------------------------------------------------------------------

def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(session: Session, principal: Principal, hours: float) -> tuple[str, str]:
    """(cookie token, CSRF token) for a browser that signed in with a key."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    session.add(WebSession(token_sha256=_sha(token), key_id=principal.key_id, csrf=csrf,
                           expires_at=now() + timedelta(hours=hours)))
    return token, csrf


def session_principal(session: Session, token: str) -> tuple[Principal, str] | None:
    """The principal and CSRF token of a cookie; None once expired or when its key is revoked or expired."""
    ws = session.get(WebSession, _sha(token))
    if ws is None or _aware(ws.expires_at) <= now():
        return None
    key = session.get(ApiKey, ws.key_id)
    if key is None or not usable(key):
        return None
    return Principal(key_id=key.id, tenant_id=key.tenant_id, scopes=frozenset(key.scopes.split())), ws.csrf


def close_session(session: Session, token: str) -> None:
    ws = session.get(WebSession, _sha(token))
    if ws is not None:
        session.delete(ws)


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
