"""The service's one settings object: environment first (SYNTHFORGE_*), then the `synthforge serve` flags, then
defaults. Built once by whoever starts the service and passed down; nothing reads the environment at import."""

import os
from pathlib import Path

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

ENV_PREFIX = "SYNTHFORGE_"


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    data: Path = Field(default=Path("synthforge-data"), description="storage folder: uploads, job outputs, the "
                       "default SQLite database")
    database: str | None = Field(default=None, description="SQLAlchemy URL; default sqlite:///<data>/synthforge.db")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    executor: str = Field(default="local", description="where a job's shards run: local (in the job's process), "
                          "or ray / ray://HOST:PORT / HOST:PORT (an existing Ray cluster, the pipeline's Ray executor)")
    workers: int = Field(default=1, ge=1, le=64, description="job processes at a time on this machine")
    max_upload_bytes: int = Field(default=200 * 1024 * 1024, gt=0)
    max_unzipped_bytes: int = Field(default=2 * 1024**3, gt=0, description="a zip upload's files, unzipped")
    max_zip_members: int = Field(default=20_000, gt=0, description="files in a zip upload")
    max_rows: int = Field(default=1_000_000, gt=0, description="cap on output.rows a job may ask for")
    rate_per_minute: int = Field(default=1200, gt=0, description="requests per minute per API key")
    rate_burst: int = Field(default=200, gt=0, description="requests a key may make at once before the rate applies")
    max_active_jobs: int = Field(default=20, gt=0, description="per tenant: jobs queued or running at a time")
    max_stored_bytes: int = Field(default=5 * 1024**3, gt=0, description="per tenant: uploaded bytes kept")
    retention_days: float | None = Field(default=None, gt=0, description="delete ended jobs and unused datasets "
                                         "older than this (off by default)")
    session_hours: float = Field(default=12.0, gt=0, description="web sign-in cookie lifetime")
    poll_seconds: float = Field(default=0.5, gt=0, description="how often the runner looks for queued jobs")
    cancel_grace_seconds: float = Field(default=3.0, ge=0, description="SIGTERM, then SIGKILL after this")
    job_nice: int = Field(default=10, ge=0, le=19, description="job processes' CPU niceness: the API answers first "
                                                              "when jobs fill the cores")

    @field_validator("executor")
    @classmethod
    def _executor(cls, v: str) -> str:
        if v in ("local", "ray") or re.fullmatch(r"(ray://)?[\w.-]+:\d+", v):
            return v
        raise ValueError(f"{v!r}: expected local, ray, or a Ray cluster's HOST:PORT")

    @property
    def execution(self) -> dict:
        """The `execution` section the server writes into every job's recipe (a recipe's own is replaced)."""
        if self.executor == "local":
            return {"executor": "local", "threads": 1}
        address = None if self.executor == "ray" else self.executor
        return {"executor": "ray", "ray_address": address, "threads": 1}

    @property
    def database_url(self) -> str:
        return self.database or f"sqlite:///{(self.data / 'synthforge.db').resolve()}"

    @classmethod
    def from_env(cls, environ: dict | None = None, **overrides) -> "Settings":
        """SYNTHFORGE_DATA, SYNTHFORGE_DATABASE, SYNTHFORGE_WORKERS, ... then `overrides` (flags; None is skipped)."""
        environ = os.environ if environ is None else environ
        values = {}
        for name in cls.model_fields:
            raw = environ.get(ENV_PREFIX + name.upper())
            if raw is not None and raw != "":
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)
