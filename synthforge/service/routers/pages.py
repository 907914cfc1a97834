"""The web pages: server-rendered (Jinja), same origin only, no external requests. A person signs in with an API
key (the browser keeps only a random session cookie, HttpOnly and SameSite=Strict); every form carries the session's
CSRF token, and the page's scripts send it as `X-CSRF-Token` to the API (which accepts the cookie for that)."""

import secrets
from pathlib import Path

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from synthforge.recipe.schema import TABULAR_FAMILIES
from synthforge.service import auth
from synthforge.service.auth import Principal
from synthforge.service.deps import DB, SESSION_COOKIE, owned, owned_query
from synthforge.service.models import FINAL_STATES, Dataset, Job
from synthforge.service.routers.jobs import create_job
from synthforge.service.routers.recipes import shipped
from synthforge.service.schemas import DatasetOut, JobIn, JobOut

HERE = Path(__file__).resolve().parent.parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
SIGNIN_COOKIE = "sf_signin"  # the sign-in form's CSRF token (double submit): there is no session yet

router = APIRouter(prefix="/ui", include_in_schema=False)


class SignIn(Exception):
    """No valid session: the page redirects to the sign-in form."""


def viewer(request: Request, session: Session = DB) -> tuple[Principal, str]:
    cookie = request.cookies.get(SESSION_COOKIE)
    found = auth.session_principal(session, cookie) if cookie else None
    if found is None:
        raise SignIn()
    return found


def _csrf_ok(sent: str, expected: str) -> None:
    if not sent or not auth.same(sent, expected):
        raise HTTPException(403, "missing or wrong CSRF token")


@router.get("/signin", response_class=HTMLResponse)
def signin_form(request: Request, error: str = ""):
    token = secrets.token_urlsafe(24)
    response = templates.TemplateResponse(request, "signin.html", {"csrf": token, "error": error})
    response.set_cookie(SIGNIN_COOKIE, token, httponly=True, samesite="strict", path="/ui",
                        secure=request.url.scheme == "https")
    return response


@router.post("/signin")
def signin(request: Request, key: str = Form(..., max_length=200), csrf: str = Form(...), session: Session = DB):
    _csrf_ok(csrf, request.cookies.get(SIGNIN_COOKIE, ""))
    who = auth.verify_key(session, key.strip(), request.app.state.verified_keys)
    if who is None:
        return RedirectResponse("/ui/signin?error=invalid", status_code=303)
    token, _ = auth.open_session(session, who, request.app.state.settings.session_hours)
    response = RedirectResponse("/ui", status_code=303)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", path="/",
                        max_age=int(request.app.state.settings.session_hours * 3600),
                        secure=request.url.scheme == "https")
    response.delete_cookie(SIGNIN_COOKIE, path="/ui")
    return response


@router.post("/signout")
def signout(request: Request, csrf: str = Form(...), me=Depends(viewer), session: Session = DB):
    _csrf_ok(csrf, me[1])
    auth.close_session(session, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/ui/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("", response_class=HTMLResponse)
def home(request: Request, me=Depends(viewer), session: Session = DB):
    who, csrf = me
    datasets = [DatasetOut.model_validate(d) for d in
                session.scalars(owned_query(Dataset, who).order_by(Dataset.created_at.desc())).all()]
    jobs = [JobOut.model_validate(j) for j in
            session.scalars(owned_query(Job, who).order_by(Job.created_at.desc())).all()]
    return templates.TemplateResponse(request, "home.html", {
        "csrf": csrf, "datasets": datasets, "jobs": jobs, "recipes": shipped(),
        "families": ("auto", *TABULAR_FAMILIES), "error": request.query_params.get("error", ""),
        "admin": who.allows("admin")})


@router.post("/jobs")
def start_job(request: Request, csrf: str = Form(...), dataset_id: str = Form(..., max_length=40),
              recipe: str = Form(..., max_length=200), rows: int = Form(1000, gt=0), family: str = Form("auto"),
              me=Depends(viewer), session: Session = DB):
    who, expected = me
    _csrf_ok(csrf, expected)
    if not who.allows("write"):
        raise HTTPException(403, "this key lacks the 'write' scope")
    overrides = {"output.rows": rows}
    if family != "auto":
        overrides["generator.family"] = family
    try:
        job = create_job(session, who, request, JobIn(dataset_id=dataset_id, recipe=recipe, overrides=overrides))
    except HTTPException as e:
        if e.status_code != 400:
            raise
        from urllib.parse import quote

        return RedirectResponse(f"/ui?error={quote(str(e.detail))}", status_code=303)
    return RedirectResponse(f"/ui/jobs/{job.id}", status_code=303)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(job_id: str, request: Request, me=Depends(viewer), session: Session = DB):
    who, csrf = me
    job = JobOut.model_validate(owned(session, Job, job_id, who))
    return templates.TemplateResponse(request, "job.html", {
        "csrf": csrf, "job": job, "final": job.state in FINAL_STATES,
        "has_results": job.state in ("succeeded", "failed_gates")})


@router.post("/jobs/{job_id}/cancel")
def cancel_job(job_id: str, csrf: str = Form(...), me=Depends(viewer), session: Session = DB):
    from synthforge.service.routers.jobs import cancel

    who, expected = me
    _csrf_ok(csrf, expected)
    if not who.allows("write"):
        raise HTTPException(403, "this key lacks the 'write' scope")
    cancel(job_id, who, session)
    return RedirectResponse(f"/ui/jobs/{job_id}", status_code=303)


def _admin(me) -> tuple[Principal, str]:
    who, csrf = me
    if not who.allows("admin"):
        raise HTTPException(403, "this key lacks the 'admin' scope")
    return who, csrf


def _admin_page(request: Request, session: Session, csrf: str, new_key: str | None = None):
    from sqlalchemy import select

    from synthforge.service.models import ApiKey, Tenant
    from synthforge.service.schemas import KeyOut, TenantOut

    tenants = [TenantOut.model_validate(t) for t in session.scalars(select(Tenant).order_by(Tenant.created_at))]
    keys = [KeyOut.model_validate(k) for k in session.scalars(select(ApiKey).order_by(ApiKey.created_at))]
    return templates.TemplateResponse(request, "admin.html", {"csrf": csrf, "tenants": tenants, "keys": keys,
                                                              "new_key": new_key})


@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request, me=Depends(viewer), session: Session = DB):
    return _admin_page(request, session, _admin(me)[1])


@router.post("/admin/tenants")
def admin_new_tenant(request: Request, csrf: str = Form(...), name: str = Form(..., max_length=100),
                     me=Depends(viewer), session: Session = DB):
    from sqlalchemy import select

    from synthforge.service.models import Tenant
    from synthforge.service.schemas import TenantIn

    _csrf_ok(csrf, _admin(me)[1])
    try:
        body = TenantIn(name=name)
    except ValueError:
        raise HTTPException(400, "tenant name: letters, digits, '_', '.', '-' only") from None
    if session.scalar(select(Tenant.id).where(Tenant.name == body.name)) is None:
        auth.create_tenant(session, body.name)
    return RedirectResponse("/ui/admin", status_code=303)


@router.post("/admin/keys", response_class=HTMLResponse)
def admin_new_key(request: Request, csrf: str = Form(...), tenant_id: str = Form(..., max_length=40),
                  name: str = Form("", max_length=100), scope: str = Form("write"), me=Depends(viewer),
                  session: Session = DB):
    """The new key on the page that made it, once (the response is not cached: Cache-Control no-store)."""
    from synthforge.service.models import Tenant

    _csrf_ok(csrf, _admin(me)[1])
    if session.get(Tenant, tenant_id) is None:
        raise HTTPException(404, f"no tenant {tenant_id!r}")
    scopes = {"read": ["read"], "write": ["read", "write"], "admin": ["admin"]}.get(scope)
    if scopes is None:
        raise HTTPException(400, "scope: read, write or admin")
    made = auth.create_key(session, tenant_id, scopes, name)
    return _admin_page(request, session, me[1], new_key=made.secret)


def mount(app) -> None:
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.exception_handler(SignIn)
    async def to_signin(request: Request, exc: SignIn):
        return RedirectResponse("/ui/signin", status_code=303)

    @app.get("/", include_in_schema=False)
    def root():
        return RedirectResponse("/ui", status_code=303)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon():
        return Response(status_code=204)
