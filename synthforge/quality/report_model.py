"""Pydantic models of the quality report. The HTML page is rendered from these models only."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

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
    close_share_excess: Metric | None = None  # privacy.py: full-train distances against the holdout's own
    near_copy_excess: Metric | None = None
    mia_auc: Metric | None = None  # membership.py: the stronger of two membership-inference attacks
    singling_out_risk: Metric | None = None  # anonymeter, the holdout as control
    linkability_risk: Metric | None = None
    inference_risk: Metric | None = None
    utility: Metric | None = None
    augmentation_gain: Metric | None = None  # uplift.py: mean over draws, 95 % interval in detail
    augmentation_gain_lower: Metric | None = None
    quality_vs_holdout: Metric | None = None  # fidelity.py: against the holdout, real_reference in detail
    detection_auc_vs_holdout: Metric | None = None  # detection.py: against the holdout, real_reference in detail
    notes: list[str] = Field(default_factory=list)
    compared: list[str] = Field(default_factory=list)  # the columns the metrics above compared
    identifiers: list[dict] = Field(default_factory=list)  # ids and PII: format, uniqueness, leaks (identifiers.py)
    value_leak_excess: Metric | None = None  # per modelled column: synthetic vs holdout share of seed values

    def metrics(self) -> dict[str, Metric]:
        """Flat metric name -> Metric (what gates look up)."""
        out = {}
        for field in ("column_shapes", "pair_trends", "overall", "detection_auc",
                      "exact_copy_share", "exact_copy_excess", "dcr_share", "nndr", "close_share_excess",
                      "near_copy_excess", "mia_auc", "singling_out_risk", "linkability_risk", "inference_risk",
                      "utility", "augmentation_gain", "augmentation_gain_lower", "value_leak_excess",
                      "quality_vs_holdout", "detection_auc_vs_holdout"):
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


def _finite(value):
    """JSON has no infinity: unbounded metric ranges are written as null (and read back as ±inf)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _unbounded(metrics):
    """Metrics read back from report.json: a null range end is unbounded."""
    if isinstance(metrics, dict):
        for m in metrics.values():
            if isinstance(m, dict):
                m.update({k: (-math.inf if k == "lower" else math.inf) for k in ("lower", "upper")
                          if k in m and m[k] is None})
    return metrics


class _Section(BaseModel):
    """A modality's section of the report: statistics only (numbers, lists of numbers, short strings). The HTML
    page draws every plot from these; nothing here is an image."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metrics: dict[str, Metric] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)

    @field_validator("metrics", mode="before")
    @classmethod
    def _read_ranges(cls, v):
        return _unbounded(v)

    @field_serializer("metrics", mode="wrap")
    def _write_ranges(self, v, handler, info):
        out = handler(v)
        return _finite(out) if info.mode == "json" else out


class TextModel(BaseModel):
    """The language model that wrote the documents: its name, fit figures, per-epoch losses and sampling settings."""

    model_config = ConfigDict(frozen=True)

    name: str | None = None
    fit: dict = Field(default_factory=dict)
    history: list[dict] = Field(default_factory=list)  # [{"epoch", "train_loss", "val_loss"?, ...}]
    sampling: dict = Field(default_factory=dict)


class TextSection(_Section):
    """text_metrics.TextQuality plus the model (text_metrics.text_section builds it)."""

    samples: dict[str, list[str]] = Field(default_factory=dict)
    lengths: dict = Field(default_factory=dict)  # histogram edges/shares, summary, ks
    vocabulary: dict = Field(default_factory=dict)  # jsd, types, tokens, top words, rank-frequency
    diversity: dict = Field(default_factory=dict)
    embedding: dict = Field(default_factory=dict)  # centroid cosines, detection AUC, 2-D PCA coordinates
    memorisation: dict = Field(default_factory=dict)
    utility: dict = Field(default_factory=dict)
    filters: dict = Field(default_factory=dict)
    labels: dict = Field(default_factory=dict)
    fluency: dict = Field(default_factory=dict)  # judge, perplexity, non-words, worst documents (fluency.py)
    model: TextModel = Field(default_factory=TextModel)


class PixelGrid(BaseModel):
    """Small uint8 images the page draws as a mosaic: `rows` of images, each image its raw uint8 pixels in row-major
    (height, width, channels) order, base64-encoded (a list of numbers per pixel made report.json megabytes)."""

    model_config = ConfigDict(frozen=True)

    height: int = 0
    width: int = 0
    channels: int = 1
    row_labels: list[str] = Field(default_factory=list)
    rows: list[list[str]] = Field(default_factory=list)


class ImageTraining(BaseModel):
    """How the image model was trained; `losses` is the smoothed loss, at `loss_steps` when those are known."""

    model_config = ConfigDict(frozen=True)

    steps: int | None = None
    seconds: float | None = None
    clock: str | None = None
    stopped_by: str | None = None
    images_seen: int | None = None
    final_loss: float | None = None
    resumed_from_step: int | None = None
    parameters: int | None = None
    precision: str | None = None
    device: str | None = None
    train_images: int | None = None
    base_model: str | None = None
    model: dict = Field(default_factory=dict)
    sampling: dict = Field(default_factory=dict)
    losses: list[float] = Field(default_factory=list)
    loss_steps: list[int] = Field(default_factory=list)


class ImageSection(_Section):
    """image_metrics.ImageQuality's statistics plus training (image_metrics.image_section builds it)."""

    summary: dict[str, float | None] = Field(default_factory=dict)  # metric name -> value, rounded
    per_class: list[dict] = Field(default_factory=list)
    closest_pairs: list[dict] = Field(default_factory=list)
    memorisation: str = ""
    samples: PixelGrid = Field(default_factory=PixelGrid)  # synthetic images, one row per class
    nearest: PixelGrid = Field(default_factory=PixelGrid)  # closest pairs: row 0 synthetic, row 1 training
    training: ImageTraining | None = None


class RelationalSection(BaseModel):
    """Several tables: each table's own quality, and what holds between them (keys, children per parent, order of
    events). `metrics` are the ones gates read: the worst table's and the worst relationship's."""

    model_config = ConfigDict(frozen=True)

    metrics: dict[str, Metric] = Field(default_factory=dict)
    tables: dict[str, TabularQuality] = Field(default_factory=dict)
    rows: dict[str, dict] = Field(default_factory=dict)  # table → rows real (train, holdout) and synthetic
    relationships: list[dict] = Field(default_factory=list)
    joined: dict[str, TabularQuality] = Field(default_factory=dict)  # child table joined with its parents' columns


class Report(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str
    created: str
    status: Literal["passed", "failed", "no_gates"]
    gates: list[GateResult] = Field(default_factory=list)
    tabular: TabularQuality | None = None
    text: TextSection | None = None
    image: ImageSection | None = None
    relational: RelationalSection | None = None
    selection: list[dict] = Field(default_factory=list)
    columns: list[ColumnReport] = Field(default_factory=list)
    validation: dict = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    run: dict = Field(default_factory=dict)

    def metrics(self) -> dict[str, Metric]:
        """Every metric of the report, whatever the modality."""
        out = dict(self.tabular.metrics()) if self.tabular is not None else {}
        for section in (self.text, self.image, self.relational):
            if section is not None:
                out.update(section.metrics)
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
              "augmentation_gain": 0.0, "embedding_auc": 0.5, "close_share_excess": 0.0, "near_copy_excess": 0.0,
              "mia_auc": 0.5, "singling_out_risk": 0.0, "linkability_risk": 0.0, "inference_risk": 0.0,
              "image_close_share_excess": 0.0}


def _baseline(m: Metric):
    if "real_reference" in m.detail:  # graded against the holdout: what the real training rows score there
        return m.detail["real_reference"]
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
