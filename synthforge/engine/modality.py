"""What a modality (tables, text, images) tells the one pipeline (pipeline.py): everything that differs between them,
and nothing the pipeline does for all of them (workspace, fit-or-resume, shards, executors, gates, manifest).

A modality module (engine/modalities/<name>.py) exposes one object with these members; the registry
(engine/modalities/__init__.py) names them. Modality modules never import the pipeline.
"""

from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from rich.console import Console

from synthforge.engine.shards import Acceptor, ShardStats
from synthforge.families.generator import Generator
from synthforge.recipe.schema import Recipe

# pipeline.run's `fit_progress` for the length of one fit (the service's per-epoch events). A context variable, not a
# parameter of `Modality.fit`: one hook reaches every modality's family without changing the modalities' signature.
FIT_PROGRESS: ContextVar[Callable[[dict], None] | None] = ContextVar("synthforge_fit_progress", default=None)


def report_fit(report: dict) -> None:
    """A family's training report (an epoch or a step: the dict its `fit(progress=...)` gets) to whoever listens."""
    listener = FIT_PROGRESS.get()
    if listener is not None:
        listener(report)


@dataclass
class Seed:
    """The seed as a modality read it: split into train and holdout, with the groups to generate."""
    path: Path
    sha256: str
    train: Any
    holdout: Any
    rows: int  # how many to generate in all
    groups: dict | None  # ((column, value),) → rows when output.conditions (or labels) fix them
    summary: str  # one line: what was read, for the console and `synthforge validate`
    manifest: dict  # the manifest's "seed" entry
    notes: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)  # more lines for `synthforge validate`
    state: Any = None  # what the modality keeps of its seed (profile, full frame, image seed)
    files: dict[str, Any] = field(default_factory=dict)  # JSON of what was read (profile): the private part only
    shared: dict[str, Any] = field(default_factory=dict)  # JSON for the shareable folder (a coarsened profile)


@dataclass
class Graded:
    """What a modality measured on the written output: metrics for the gates, its typed report section(s)."""
    metrics: dict[str, float | None]
    sections: dict[str, Any]  # Report field → value: tabular= / text= / image=
    rows_written: int
    notes: list[str] = field(default_factory=list)
    validation: dict = field(default_factory=dict)  # added to the pipeline's validation summary
    run: dict = field(default_factory=dict)  # added to report.run
    manifest: dict = field(default_factory=dict)  # added to the manifest


class Modality(Protocol):
    name: str
    unit: str  # rows | documents | images

    def check(self, recipe: Recipe) -> None:
        """Family, params, sampling, filters and executor: checked before anything is read or trained."""

    def load(self, recipe: Recipe, base_dir: Path | None) -> Seed: ...

    def fit(self, recipe: Recipe, seed: Seed, *, device: str, checkpoints: Path, console: Console) -> Generator:
        """A fitted generator; a killed fit resumes from what the family left in `checkpoints`."""

    def load_model(self, folder: Path, *, device: str) -> Generator: ...

    def save_model(self, generator: Generator, folder: Path) -> None: ...

    def acceptor(self, recipe: Recipe, seed: Seed, generator, work: Path) -> Acceptor:
        """The per-batch accept/reject rules; writes what it is built from (the expectation suite) into `work`."""

    def meta(self, generator) -> dict:
        """Keys stamped on every written part besides recipe, seed and family."""

    def evaluate(self, recipe: Recipe, seed: Seed, generator, work: Path, stats: list[ShardStats], *,
                 metric_seed: int) -> Graded: ...
