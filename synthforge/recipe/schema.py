"""The typed recipe. Every key is checked; unknown keys are errors; a recipe is data and can never run code."""

import re
from pathlib import PurePath
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# ours first (Apache-2.0); then SDV's, under the Business Source License 1.1 (docs/licences.md)
TABULAR_FAMILIES = ("autoregressive", "gaussian_copula", "tvae", "ctgan", "copulagan")
AUTO_CANDIDATES = ("autoregressive",)  # the families `auto` tries unless the recipe lists its own
TEXT_FAMILIES = ("causal_lm", "prompted")
IMAGE_FAMILIES = ("diffusion",)
FAMILIES = ("auto", *TABULAR_FAMILIES, *TEXT_FAMILIES, *IMAGE_FAMILIES)
MODALITIES = ("auto", "tabular", "text", "image", "relational")
COLUMN_KINDS = ("numerical", "categorical", "datetime", "boolean", "id", "pii", "text")

# Gate keys and the metric each one bounds; kept here (the lowest layer) so a typo in a recipe fails at load time.
GATE_KEYS = (
    "min_quality", "min_column_shapes", "min_pair_trends", "max_detection_auc",
    "max_dcr_share", "max_exact_copies", "max_exact_copies_excess", "min_nndr", "min_utility",
    "max_value_leak_excess",
    # full-train copy checks and attacks (synthforge/quality/privacy.py, membership.py)
    "max_close_share_excess", "max_near_copy_excess", "max_mia_auc", "max_inference_risk",
    # text family (synthforge/quality/text_metrics.py)
    "min_text_utility", "min_augmentation_gain", "max_memorisation", "max_memorisation_raw", "min_distinct_2",
    "max_self_bleu", "max_embedding_auc", "max_perplexity_ratio", "max_nonword_excess",
    # image family (synthforge/quality/image_metrics.py)
    "min_conditional_accuracy", "max_frechet_distance", "max_kid", "min_precision", "min_recall", "min_density",
    "min_coverage", "max_near_copy_share", "max_image_close_share_excess",
    # relational (synthforge/quality/relational.py)
    "min_fk_resolved", "min_children_per_parent", "min_order_holds", "min_gap_similarity",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sequence(_Strict):
    """A child table's rows are events of one entity (its foreign key), in the order of a column."""
    entity: str
    order_by: str


class TableSeed(_Strict):
    """One table of a relational seed (`seed.tables.NAME`)."""
    source: str = Field(description="path to CSV/Parquet/JSONL, or example://NAME")
    format: Literal["auto", "csv", "parquet", "jsonl"] = "auto"
    primary_key: str | None = None
    foreign_keys: dict[str, str] = Field(default_factory=dict, description="column → parent_table.primary_key")
    sequence: Sequence | None = None
    drop: tuple[str, ...] = ()
    max_rows: int | None = Field(default=None, gt=0)
    target: str | None = Field(default=None, description="a column of this table that a downstream model predicts "
                               "from the row joined with its parents' columns: TSTR utility and augmentation uplift")
    copy_rows: bool = Field(default=False, alias="copy", description="a lookup table of reference data (airlines, "
                            "airports): its rows kept as they are, keys renumbered; not for private data")
    orphans: Literal["refuse", "drop", "keep"] = Field(
        default="refuse", description="rows whose foreign key is in no parent row: an error; left out (counted in "
        "the report); or kept: learned and generated as rows of no parent, their foreign key empty")


class SeedSpec(_Strict):
    source: str | None = Field(default=None, description="path to CSV/Parquet/JSONL, or example://NAME")
    tables: dict[str, TableSeed] = Field(default_factory=dict, description="relational: several tables and their "
                                         "keys, instead of one source")
    format: Literal["auto", "csv", "parquet", "jsonl"] = "auto"
    target: str | None = None
    drop: tuple[str, ...] = ()
    primary_key: str | None = None
    columns: dict[str, Literal[COLUMN_KINDS]] = Field(default_factory=dict, description="kind overrides per column")
    max_rows: int | None = Field(default=None, gt=0)
    text_column: str | None = Field(default=None, description="text family: the documents")
    label_column: str | None = Field(default=None, description="text/image families: the label to condition on")
    split_column: str | None = Field(default=None, description="column whose value 'test' marks held-out rows")
    image_size: int | None = Field(default=None, gt=0, le=1024, description="image family: side in pixels")
    channels: Literal[1, 3] | None = Field(default=None, description="image family: 1 grey, 3 RGB")

    @model_validator(mode="after")
    def _one_source(self):
        if (self.source is None) == (not self.tables):
            raise ValueError("give either source (one table, text or images) or tables (relational), not both")
        return self


class GeneratorSpec(_Strict):
    family: Literal[FAMILIES] = "auto"
    params: dict[str, Any] = Field(default_factory=dict)
    candidates: tuple[Literal[TABULAR_FAMILIES], ...] = AUTO_CANDIDATES
    time_budget: float = Field(default=240.0, gt=0, le=7 * 24 * 3600,
                               description="cap on fitting, in CPU seconds (tables) or the family's own unit")
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"

    @field_validator("candidates")
    @classmethod
    def _nonempty(cls, v):
        if not v:
            raise ValueError("needs at least one family")
        return v


class Conditions(_Strict):
    column: str
    balance: bool = False
    counts: dict[str, int] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_mode(self):
        if self.balance == bool(self.counts):
            raise ValueError("set either balance: true or counts: {value: rows}")
        if any(c < 0 for c in self.counts.values()):
            raise ValueError("counts must be >= 0")
        return self


class OutputSpec(_Strict):
    rows: int = Field(default=1000, gt=0, le=1_000_000_000)
    folder: str | None = None
    private_folder: str | None = Field(default=None, description="where the fitted model, the exact expectation suite "
                                       "and the exact profile go (they hold seed values); default: <folder>.private")
    keep_private: bool = Field(default=True, description="false: the private part is deleted when the run ends (no "
                               "model to reuse); the shareable folder is the same either way")
    format: Literal["parquet"] = "parquet"
    conditions: Conditions | None = None
    sampling: dict[str, Any] = Field(default_factory=dict, description="text/image families: sampling parameters, "
                                     "checked by the family")


class Expectation(_Strict):
    """One Great Expectations expectation, by its snake_case name, with its keyword arguments."""

    type: str
    kwargs: dict[str, Any] = Field(default_factory=dict)


class QualitySpec(_Strict):
    auto_expectations: bool = Field(default=True, description="derive a suite from the seed")
    expectations: tuple[Expectation, ...] = ()
    gates: dict[Literal[GATE_KEYS], Annotated[float, Field(allow_inf_nan=False)]] = Field(default_factory=dict)
    holdout_fraction: float = Field(default=0.2, gt=0, lt=0.9)
    max_rounds: int = Field(default=5, ge=1, le=100)
    metric_rows: int = Field(default=50_000, gt=100, description="seeded cap on rows used by the quality metrics")
    filters: dict[str, Any] = Field(default_factory=dict, description="text/image families: memorisation, PII, "
                                    "degenerate-output filters, checked by the family")


class ExecutionSpec(_Strict):
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    shard_rows: int = Field(default=50_000, gt=0)
    threads: int | None = Field(default=None, gt=0, le=1024, description="torch threads; default: the cores we have")


class Recipe(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    vertical: str = "general"
    modality: Literal[MODALITIES] = "auto"
    licence: Literal["any", "permissive"] = Field(
        default="any", description="permissive: never use a backend under the Business Source License (SDV)")
    random_seed: int = Field(default=0, ge=0, lt=2**32)
    seed: SeedSpec
    generator: GeneratorSpec = Field(default_factory=GeneratorSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
    quality: QualitySpec = Field(default_factory=QualitySpec)
    execution: ExecutionSpec = Field(default_factory=ExecutionSpec)


# Every name a recipe turns into a path segment (the recipe's name, the output folder's own name, table names) matches
# this one pattern: no separator, no `..`, no leading dot, no empty name, at most 64 characters (issue 32 item 6).
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def unsafe_name(value: str) -> bool:
    return not SAFE_NAME.fullmatch(str(value)) or ".." in str(value)


def check_paths(recipe: Recipe) -> None:
    """The recipe's path segments, checked before anything is read or written: ValueError names the field.
    `output.folder` is a path the recipe chooses (relative to the recipe's folder, `../runs/NAME` as the shipped
    recipes write), so only its own last segment, the folder synthforge creates and may later replace, must be safe."""
    bad = []
    if unsafe_name(recipe.name):
        bad.append(("name", recipe.name))
    for field in ("folder", "private_folder"):
        value = getattr(recipe.output, field)
        if value is not None and unsafe_name(PurePath(value).name):
            bad.append((f"output.{field}", value))
    bad += [(f"seed.tables.{name}", name) for name in recipe.seed.tables if unsafe_name(name)]
    if bad:
        field, value = bad[0]
        raise ValueError(f"{field}: {value!r} is not a safe name for a path (letters, digits, '_', '.', '-', at most "
                         "64, starting with a letter or digit, no '..')")
