"""The database tables (SQLAlchemy 2). The schema itself is made by the Alembic migrations in migrations/versions;
these classes only map it. Ids are random (`new_id`), never counters, except job events, whose id is the order a
stream resumes from (`Last-Event-ID`) and is only ever read through the job it belongs to."""

import secrets
from datetime import datetime, timezone

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JOB_STATES = ("queued", "running", "succeeded", "failed_gates", "failed", "cancelled")
FINAL_STATES = ("succeeded", "failed_gates", "failed", "cancelled")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(12)}"


def now() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("tn"))
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("key"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(32), unique=True)  # public: the key's lookup handle
    hash: Mapped[str] = mapped_column(String(200))  # argon2 of the whole key
    name: Mapped[str] = mapped_column(String(100), default="")
    scopes: Mapped[str] = mapped_column(String(200))  # space-separated: read write admin
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Dataset(Base):
    __tablename__ = "datasets"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ds"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))  # the client's file name: shown, never joined into a path
    format: Mapped[str] = mapped_column(String(16))  # csv | parquet | jsonl | images | tables (the last two: a zip)
    storage_key: Mapped[str] = mapped_column(String(200))  # server-generated file (a zip's: folder) name
    bytes: Mapped[int] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column(Integer)
    columns: Mapped[list] = mapped_column(JSON)  # a zip's: its classes (images) or its tables
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("job"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"), index=True)
    recipe_name: Mapped[str] = mapped_column(String(200))  # the shipped recipe, or the uploaded recipe's name
    recipe: Mapped[dict] = mapped_column(JSON)  # resolved and confined by the server: exactly what runs
    state: Mapped[str] = mapped_column(String(16), index=True, default="queued")
    stage: Mapped[str] = mapped_column(String(32), default="")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)  # one line
    attempt: Mapped[int] = mapped_column(Integer, default=0)  # claims so far; >1 means resumed after a restart
    resume: Mapped[int] = mapped_column(Integer, default=0)  # 1: the next claim continues the .partial folder
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cancel_requested: Mapped[int] = mapped_column(Integer, default=0)
    rows: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    @property
    def modality(self) -> str:
        """What the job makes (the server resolved it when the job was submitted): tabular, text, image, relational."""
        stated = (self.recipe or {}).get("modality")
        return stated if stated in ("tabular", "text", "image", "relational") else "tabular"

    @property
    def tables(self) -> list[str]:
        """A relational job's tables: one download each."""
        return list(((self.recipe or {}).get("seed") or {}).get("tables") or {})


class JobEvent(Base):
    __tablename__ = "job_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    kind: Mapped[str] = mapped_column(String(32))  # state | stage | fit | shards
    data: Mapped[dict] = mapped_column(JSON)


class WebSession(Base):
    """A signed-in browser: the cookie holds a random token, the table only its sha256 (a leaked table signs no one
    in); the CSRF token is the session's own."""
    __tablename__ = "web_sessions"
    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
