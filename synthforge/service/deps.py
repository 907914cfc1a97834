"""The dependencies every route goes through: the database session, the caller (`Principal`, from a Bearer key or
a browser session), the scope check, and `owned`: the one place an object is looked up by id, always together with
the caller's tenant, so a route cannot forget it. Another tenant's object and a missing one are the same 404."""

from collections.abc import Callable, Iterator
from typing import TypeVar

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from synthforge.service import auth
from synthforge.service.auth import Principal

SESSION_COOKIE = "sf_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
T = TypeVar("T")


def db(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        with session.begin():
            yield session


# committed when the route function returns, before the response is sent: a client that reads a 201 and asks again
# at once must find the row (the default, "request", commits after the response)
DB = Depends(db, scope="function")


async def principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    who = request.app.state.verified_keys.principal(header[7:].strip()) if header.lower().startswith("bearer ") \
        else None
    if who is None:
        who = await run_in_threadpool(_checked, request)
    wait = request.app.state.rate_limiter.take(who.key_id)
    if wait:
        raise HTTPException(429, "too many requests for this key; slow down",
                            headers={"Retry-After": str(max(1, round(wait)))})
    request.state.principal = who  # for the audit log
    return who


def _checked(request: Request) -> Principal:
    # its own short transaction (it records the key's last use): a long request, an upload or an event stream,
    # must not hold the database's write lock
    with request.app.state.sessions() as session, session.begin():
        return _principal(request, session)


def _principal(request: Request, session: Session) -> Principal:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        found = auth.verify_key(session, header[7:].strip(), request.app.state.verified_keys)
        if found is None:
            raise HTTPException(401, "invalid, revoked or expired API key", headers={"WWW-Authenticate": "Bearer"})
        return found
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        found = auth.session_principal(session, cookie)
        if found is not None:
            who, csrf = found
            if request.method not in SAFE_METHODS and not auth.same(request.headers.get(CSRF_HEADER, ""), csrf):
                raise HTTPException(403, "missing or wrong CSRF token")
            return who
    raise HTTPException(401, "an API key is needed: Authorization: Bearer <key>",
                        headers={"WWW-Authenticate": "Bearer"})


def scope(name: str):
    async def check(who: Principal = Depends(principal)) -> Principal:  # async: no thread hop for a set lookup
        if not who.allows(name):
            raise HTTPException(403, f"this key lacks the {name!r} scope")
        return who

    return check


def read(request: Request, query: Callable[[Session], T]) -> T:
    """`query(session)` in one read transaction, run on the event loop itself, for the routes clients poll (a job's
    status, the job list). A read here is one or two indexed SELECTs that never wait for a lock (SQLite in WAL mode:
    readers do not wait for writers; PostgreSQL: MVCC), ~0.1-0.3 ms; handing it to a worker thread instead (what a
    sync route does, three times: open, route, commit) cost more than the query in GIL hand-offs. Measured with 50
    clients while 2 jobs ran on 2 cores (benchmarks/service.py, docs/service.md): server CPU 14.3 → 8.7 s, the
    jobs' wall time ×1.31 → ×1.03, p99 52 → 16 ms. Writes, and anything that may wait, stay on worker threads."""
    with request.app.state.sessions() as session, session.begin():
        return query(session)


def owned_query(model, who: Principal) -> Select:
    """`SELECT model WHERE tenant_id = the caller's`: every list and lookup of a tenant's objects starts here."""
    return select(model).where(model.tenant_id == who.tenant_id)


def owned(session: Session, model: type[T], object_id: str, who: Principal) -> T:
    found = session.scalars(owned_query(model, who).where(model.id == object_id)).first()
    if found is None:
        raise HTTPException(404, f"no {model.__tablename__[:-1]} {object_id!r}")
    return found
