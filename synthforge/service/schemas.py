"""Request and response models: what the API says, never an ORM object, never a hash. A key's secret appears in
exactly one response, `KeyCreated`, when it is made."""

from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from synthforge.service.auth import SCOPES


# every time is UTC; SQLite hands times back without their zone, so it is put back here
UTC = Annotated[datetime, AfterValidator(lambda t: t if t.tzinfo else t.replace(tzinfo=timezone.utc))]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class TenantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")


class TenantOut(_Out):
    id: str
    name: str
    created_at: UTC


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="", max_length=100)
    scopes: list[Literal[SCOPES]] = Field(default_factory=lambda: ["read", "write"], min_length=1)
    expires_in_days: float | None = Field(default=None, gt=0, le=3650)


class KeyOut(_Out):
    id: str
    tenant_id: str
    prefix: str
    name: str
    scopes: str
    created_at: UTC
    expires_at: UTC | None
    revoked_at: UTC | None
    last_used_at: UTC | None


class KeyCreated(KeyOut):
    key: str = Field(description="the API key: shown this once, stored only as an argon2 hash")


class DatasetOut(_Out):
    id: str
    name: str
    format: str = Field(description="csv, parquet, jsonl; images or tables (a zip, extracted)")
    bytes: int = Field(description="as stored: a zip's files unzipped")
    rows: int = Field(description="rows; a zip of images: images; a zip of tables: rows of every table")
    columns: list[str] = Field(description="a table's columns; a zip's classes (images) or tables")
    sha256: str
    created_at: UTC


class RecipeOut(BaseModel):
    name: str
    vertical: str
    modality: str
    description: str


class JobIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset_id: str = Field(max_length=40)
    recipe: str | None = Field(default=None, max_length=200, description="a shipped recipe: NAME or example://NAME")
    recipe_yaml: str | None = Field(default=None, description="a recipe of your own, as YAML text")
    overrides: dict[str, Any] = Field(default_factory=dict, description="dotted keys, e.g. {\"output.rows\": 500}")


class JobOut(_Out):
    id: str
    dataset_id: str
    recipe_name: str
    modality: str = Field(description="tabular, text, image or relational: which downloads it has")
    tables: list[str] = Field(default_factory=list, description="a relational job's tables: data.parquet?table=NAME")
    state: Literal["queued", "running", "succeeded", "failed_gates", "failed", "cancelled"]
    stage: str
    error: str | None
    attempt: int
    rows: int | None
    cancel_requested: bool
    created_at: UTC
    started_at: UTC | None
    finished_at: UTC | None


class EventOut(_Out):
    id: int
    at: UTC
    kind: str
    data: dict[str, Any]
