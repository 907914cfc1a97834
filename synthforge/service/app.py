"""The FastAPI application: settings, database, storage and the worker pool wired together, the routers mounted,
security headers on every response, and errors as one line (never a stack trace)."""

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from synthforge.service.auth import VerifiedKeys
from synthforge.service.database import make_engine, migrate, session_factory
from synthforge.service.limits import RateLimiter
from synthforge.service.middleware import SecurityHeaders
from synthforge.service.routers.events import Heads
from synthforge.service.runner import Runner
from synthforge.service.settings import Settings
from synthforge.service.storage import Storage

log = logging.getLogger("synthforge.service")

def create_app(settings: Settings, *, run_jobs: bool = True) -> FastAPI:
    settings.data.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    migrate(engine)
    sessions = session_factory(engine)
    storage = Storage(settings.data)
    runner = Runner(settings, sessions, storage)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if run_jobs:
            runner.start()
        try:
            yield
        finally:
            if run_jobs:
                runner.stop()
            engine.dispose()

    # no /docs or /redoc: they load their scripts from a CDN, and the service makes no external requests;
    # /openapi.json is served
    app = FastAPI(title="synthforge", version=_version(), lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Synthetic data from a small seed, as a service: datasets, jobs, results.")
    app.state.settings, app.state.sessions, app.state.storage, app.state.runner = settings, sessions, storage, runner
    app.state.verified_keys = VerifiedKeys()
    app.state.event_heads = Heads(sessions, settings.poll_seconds)
    app.state.rate_limiter = RateLimiter(settings.rate_per_minute, settings.rate_burst)
    audit = _audit_log(settings.data / "audit.log")

    app.add_middleware(SecurityHeaders, audit=audit)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return JSONResponse({"detail": _one_line(exc.detail)}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return JSONResponse({"detail": _one_line(f"{where}: {first.get('msg')}{more}")}, status_code=422)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    @app.get("/health", tags=["health"])
    def health() -> dict:
        return {"status": "ok"}

    from synthforge.service.routers import admin, datasets, events, jobs, me, pages, recipes, results

    for module in (me, admin, datasets, recipes, jobs, results, events):
        app.include_router(module.router)
    pages.mount(app)
    return app


def _audit_log(path) -> logging.Logger:
    """The audit log: one line per request made with a key, appended to <data>/audit.log."""
    logger = logging.getLogger(f"synthforge.audit.{path}")
    if not logger.handlers:
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


def _one_line(detail) -> str:
    return " ".join(str(detail).split())


def _version() -> str:
    from synthforge import __version__

    return __version__
