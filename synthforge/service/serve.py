"""`synthforge serve`: settings from the environment and flags, the database migrated, the first admin key printed
once, then uvicorn on 127.0.0.1 unless told otherwise."""

import sys

from synthforge.service.settings import Settings


def admin_key(settings: Settings, force: bool) -> str | None:
    """A new admin key when the database has none (first start) or on `force`; None otherwise."""
    from synthforge.service import auth
    from synthforge.service.database import make_engine, migrate, session_factory, transaction

    settings.data.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    migrate(engine)
    try:
        with transaction(session_factory(engine)) as s:
            made = auth.bootstrap_admin(s, force=force)
            return made.secret if made else None
    finally:
        engine.dispose()


def serve(settings: Settings, *, create_admin_key: bool = False) -> None:
    key = admin_key(settings, create_admin_key)
    if key:
        # printed once, here, and stored only as a hash; the operator keeps it (e.g. in SYNTHFORGE_API_KEY)
        print(f"admin API key (shown once; keep it): {key}", file=sys.stderr, flush=True)
    if create_admin_key:
        return
    import uvicorn

    from synthforge.service.app import create_app

    app = create_app(settings)
    print(f"synthforge serving on http://{settings.host}:{settings.port} (data: {settings.data.resolve()})",
          file=sys.stderr, flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", server_header=False)
