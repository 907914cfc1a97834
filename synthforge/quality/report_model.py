"""Pydantic models of the quality report. The HTML page is rendered from these models only."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ColumnKind = Literal["numerical", "categorical", "datetime", "boolean"]
COLUMN_KINDS: tuple[str, ...] = ("numerical", "categorical", "datetime", "boolean")


class Metric(BaseModel):
    """One number with its definition, range and the data it was computed on."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: float | None
    definition: str
    version: str = "1"
    lower: float
    upper: float
    higher_is_better: bool | None
    computed_on: dict = Field(default_factory=dict)
    detail: dict = Field(default_factory=dict)


class TabularQuality(BaseModel):
    model_config = ConfigDict(frozen=True)

    column_shapes: Metric
    pair_trends: Metric
    overall: Metric
    detection_auc: Metric
    exact_copy_share: Metric
    dcr_share: Metric
    nndr: Metric
    utility: Metric | None = None
    notes: list[str] = Field(default_factory=list)

    def metrics(self) -> dict[str, Metric]:
        """Flat metric name -> Metric (what gates look up)."""
        out = {}
        for field in ("column_shapes", "pair_trends", "overall", "detection_auc",
                      "exact_copy_share", "dcr_share", "nndr", "utility"):
            metric = getattr(self, field)
            if metric is not None:
                out[field] = metric
        return out


class GateResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    gate: str
    metric: str
    threshold: float
    value: float | None
    passed: bool


class Report(BaseModel):
    title: str
    created: str
    status: Literal["passed", "failed", "no_gates"]
    gates: list[GateResult] = Field(default_factory=list)
    tabular: TabularQuality | None = None
    sections: dict[str, dict] = Field(default_factory=dict)
    selection: list[dict] = Field(default_factory=list)
    validation: dict = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    run: dict = Field(default_factory=dict)
