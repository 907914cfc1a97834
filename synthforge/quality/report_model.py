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
    exact_copy_excess: Metric | None = None
    nndr: Metric
    utility: Metric | None = None
    augmentation_gain: Metric | None = None  # uplift.py: mean over draws, 95 % interval in detail
    augmentation_gain_lower: Metric | None = None
    notes: list[str] = Field(default_factory=list)
    compared: list[str] = Field(default_factory=list)  # the columns the metrics above compared
    identifiers: list[dict] = Field(default_factory=list)  # ids and PII: format, uniqueness, leaks (identifiers.py)

    def metrics(self) -> dict[str, Metric]:
        """Flat metric name -> Metric (what gates look up)."""
        out = {}
        for field in ("column_shapes", "pair_trends", "overall", "detection_auc",
                      "exact_copy_share", "exact_copy_excess", "dcr_share", "nndr", "utility",
                      "augmentation_gain", "augmentation_gain_lower"):
            metric = getattr(self, field)
            if metric is not None:
                out[field] = metric
        return out

    def summary(self):
        """metric / value / baseline (what honest real data or chance scores) as a small DataFrame."""
        return _summary_frame(self.metrics(), [])

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")

    def __repr__(self) -> str:
        return _short_repr("TabularQuality", self.metrics(), self.notes)

    __str__ = __repr__

    def _repr_html_(self) -> str:
        from .html import render_summary

        return render_summary(Report(title="synthforge quality", created="", status="no_gates", tabular=self))


class GateResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    gate: str
    metric: str
    threshold: float
    value: float | None
    passed: bool


class ColumnReport(BaseModel):
    """What the run decided for one seed column: its kind and how it was generated (or why it was left out)."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: str
    treatment: str


class Report(BaseModel):
    title: str
    created: str
    status: Literal["passed", "failed", "no_gates"]
    gates: list[GateResult] = Field(default_factory=list)
    tabular: TabularQuality | None = None
    sections: dict[str, dict] = Field(default_factory=dict)
    selection: list[dict] = Field(default_factory=list)
    columns: list[ColumnReport] = Field(default_factory=list)
    validation: dict = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    run: dict = Field(default_factory=dict)

    def metrics(self) -> dict[str, Metric]:
        """Every metric of the report, whatever the modality."""
        if self.tabular is not None:
            return self.tabular.metrics()
        out = {}
        for section in self.sections.values():
            for name, m in (section.get("metrics") or {}).items():
                out[name] = Metric(**m)
        return out

    def summary(self):
        """metric / value / baseline / gate / passed as a small DataFrame."""
        return _summary_frame(self.metrics(), self.gates)

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")

    def __repr__(self) -> str:
        failed = [g.gate for g in self.gates if not g.passed]
        return (f"Report({self.title!r}, status={self.status}" + (f", failed={failed}" if failed else "") + ", "
                + _short_repr("", self.metrics(), [])[1:])

    __str__ = __repr__

    def _repr_html_(self) -> str:
        from .html import render_summary

        return render_summary(self)


# what a metric is read against: real held-out data's own score, or chance
_BASELINES = {"detection_auc": 0.5, "dcr_share": 0.5, "utility": 1.0, "text_utility": 1.0, "exact_copy_excess": 0.0,
              "augmentation_gain": 0.0, "embedding_auc": 0.5}


def _baseline(m: Metric):
    if m.name in ("exact_copy_share", "near_copy_share"):  # what real unseen rows or images score
        return m.detail.get("holdout_share")
    return _BASELINES.get(m.name)


def _summary_frame(metrics: dict[str, Metric], gates: list[GateResult]):
    import pandas as pd

    by_metric = {g.metric: g for g in gates}
    rows = []
    for name, m in metrics.items():
        g = by_metric.get(name)
        interval = m.detail.get("ci95")
        rows.append({"metric": name, "value": m.value, "ci95": tuple(interval) if interval else None,
                     "baseline": _baseline(m), "gate": g.gate if g else None,
                     "threshold": g.threshold if g else None, "passed": g.passed if g else None})
    return pd.DataFrame(rows, columns=["metric", "value", "ci95", "baseline", "gate", "threshold", "passed"])


def _short_repr(name: str, metrics: dict[str, Metric], notes: list[str]) -> str:
    parts = [f"{k}={m.value:.4g}" for k, m in metrics.items() if isinstance(m.value, (int, float))][:12]
    more = f", {len(notes)} notes" if notes else ""
    return f"{name}({', '.join(parts)}{more})"
