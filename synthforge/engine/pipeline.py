"""One run, start to finish, for every modality: open the workspace → load the seed and split it → fit (or, on
resume, load the saved model) → shards, local or on Ray → accept / resample → write → evaluate → gates → report and
manifest → rename into place.

What differs between tables, text and images comes from the run's `Modality` (engine/modality.py); everything here
is written once. Every stage writes into the workspace's `.partial` folder; the manifest comes last and the folder
is renamed into place only then, so a killed run never leaves something that looks finished, and `resume=True`
picks up the saved model and the committed shards.
"""

import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from synthforge.engine import workspace as wsp
from synthforge.engine.executors import run_local
from synthforge.engine.manifest import Timings, versions
from synthforge.engine.modalities import MODALITIES, resolve
from synthforge.engine.modality import FIT_PROGRESS, Modality, Seed
from synthforge.engine.shards import ShardStats, plan_shards
from synthforge.errors import GateFailed
from synthforge.families.device import resolve_device
from synthforge.families.generator import Generator
from synthforge.families.lm_models import remote_code_allowed
from synthforge.quality.expectations import drop_examples
from synthforge.quality.gates import check_gates, report_status
from synthforge.quality.report_model import GateResult, Report
from synthforge.randomness import METRIC_SEED_STREAM, derive_seed
from synthforge.recipe.schema import Recipe
from synthforge.sinks.files import read_parts, write_json, write_text



@dataclass(frozen=True)
class RunResult:
    folder: Path
    status: str  # passed | failed | no_gates
    report: Report
    manifest: dict
    notes: tuple[str, ...] = ()  # for the console: report.notes with the seed values they quote as examples

    @property
    def passed(self) -> bool:
        return self.status != "failed"

    def data(self) -> pd.DataFrame:
        return read_output(self.folder)

    def summary(self) -> pd.DataFrame:
        """metric / value / baseline / gate / passed, one row per metric."""
        return self.report.summary()

    def to_dict(self) -> dict:
        return {"folder": str(self.folder), "status": self.status, "report": self.report.to_dict(),
                "manifest": self.manifest}

    def report_html(self) -> str:
        """The full report.html of the run (open `folder / "report.html"` in a browser for the same page; a
        differentially private run's is in its private folder: `manifest["files"]["report"]`)."""
        where = (self.manifest.get("files") or {}).get("report")
        return (Path(where) if where else Path(self.folder) / "report.html").read_text(encoding="utf-8")

    def __repr__(self) -> str:
        rows = self.manifest.get("rows")
        return f"RunResult({str(self.folder)!r}, status={self.status}, rows={rows}, {self.report!r})"

    def _repr_html_(self) -> str:
        return self.report._repr_html_()


read_output = read_parts  # the run's rows, as `RunResult.data()` reads them


def default_threads() -> int:
    # Measured on 2 cores: CTGAN epochs ran 0.48 s with 1 torch thread vs 0.76 s with 2 while another process
    # shared the CPU (docs/scaling.md). Leave a core for everything else unless the machine is big.
    cores = os.cpu_count() or 1
    return 1 if cores <= 2 else min(cores - 1, 16)


def torch_setup(recipe: Recipe) -> tuple[int, str]:
    """Every family's torch threads (set deliberately: see default_threads) and device."""
    import torch

    threads = recipe.execution.threads or default_threads()
    torch.set_num_threads(threads)
    return threads, resolve_device(recipe.generator.device)


def prepare(recipe: Recipe, base_dir: Path | None = None) -> tuple[Modality, Seed]:
    """The pipeline up to fitting: the modality's checks, then its seed read and split. `synthforge validate` is
    this and nothing more."""
    modality = MODALITIES[resolve(recipe, base_dir)]
    modality.check(recipe)
    if recipe.execution.executor == "ray":
        from synthforge.engine.ray_executor import check_address

        check_address(recipe.execution.ray_address)
    return modality, modality.load(recipe, base_dir)


def run(recipe: Recipe, *, out: str | Path | None = None, overwrite: bool = False, resume: bool = False,
        base_dir: Path | None = None, console: Console | None = None, private_out: str | Path | None = None,
        trust_remote_code: bool = False, progress: Callable[[str], None] | None = None,
        fit_progress: Callable[[dict], None] | None = None) -> RunResult:
    """`private_out`: where the private part (model, exact suite and profile) goes instead of `<folder>.private`.
    `trust_remote_code`: a base model's folder may run its own Python (never a recipe key; named in the manifest).
    `progress(stage)` as each stage starts (load, fit, evaluate, report): the service's events; raising from it
    stops the run there (its cancel check). `fit_progress(report)`: each training report of the family (per epoch,
    or per step for a family that counts steps), for the families whose modality passes them on (tables, images,
    relational tables)."""
    console, progress = console or Console(stderr=True, quiet=True), progress or (lambda stage: None)
    progress("load")
    timings = Timings()
    started = datetime.now(timezone.utc)
    with timings.stage("load"):
        modality, seed = prepare(recipe, base_dir)
    ws = wsp.open_run(recipe, seed.sha256, out, overwrite=overwrite, resume=resume, base_dir=base_dir,
                      private_out=private_out)
    threads, device = torch_setup(recipe)  # torch (seconds to import) only once the seed and the folder are fine
    console.print(f"[bold]synthforge[/] {recipe.name}: {seed.summary} from {seed.path} → {ws.final}",
                  soft_wrap=True)  # a path is never wrapped mid-way
    for name, content in seed.files.items():  # what was read holds seed values: the private part
        write_json(ws.private(name), content)
    for name, content in seed.shared.items():
        write_json(ws.path(name), content)

    progress("fit")
    listening = FIT_PROGRESS.set(fit_progress)
    try:
        with remote_code_allowed(trust_remote_code):
            generator, shards, stats = fit_and_generate(modality, recipe, seed, device, ws, timings, console)
    finally:
        FIT_PROGRESS.reset(listening)

    progress("evaluate")
    with timings.stage("evaluate"):
        graded = modality.evaluate(recipe, seed, generator, ws.work, stats,
                                   metric_seed=derive_seed(recipe.random_seed, METRIC_SEED_STREAM))
        report, validation = grade(recipe, modality, seed, stats, graded)
    write_json(ws.path("expectations", "result.json"), validation)

    fit_info = getattr(generator, "fit_info_", {}) or {}
    manifest = {"seed": seed.manifest, "modality": modality.name, "rows": graded.rows_written,
                "family": generator.family, "device": device, "precision": fit_info.get("precision", "fp32"),
                "world_size": 1, "threads": threads, "executor": recipe.execution.executor, "shards": len(shards),
                "trust_remote_code": trust_remote_code, "versions": versions(), **graded.manifest}
    report.run.update({"seconds": timings.seconds, "device": device, "family": generator.family, "threads": threads,
                       **graded.run})
    progress("report")
    said = [*seed.notes, *graded.notes]  # what grade() noted, in the same order, before examples were dropped
    return finish_run(ws, recipe, report, manifest, started, timings, console,
                      f"{graded.rows_written} {modality.unit}", notes=(*said, *report.notes[len(said):]))


def fit_and_generate(modality: Modality, recipe: Recipe, seed: Seed, device: str, ws: wsp.Workspace,
                     timings: Timings, console: Console) -> tuple[Generator, list, list[ShardStats]]:
    """The fitted model and every shard committed in the workspace: all of a run but grading. A run stopped after
    this (killed, or fitted on another machine: benchmarks/text_gpu.py) is graded by `resume`."""
    with timings.stage("fit"):
        generator = fit_or_resume(modality, recipe, seed, device, ws, console)
    acceptor = modality.acceptor(recipe, seed, generator, ws.work)
    shards = plan_shards(seed.rows, recipe.execution.shard_rows, recipe.random_seed, seed.groups)
    meta = {"recipe": recipe.name, "random_seed": recipe.random_seed, "family": generator.family,
            **modality.meta(generator)}
    with timings.stage("generate"):
        stats = execute(modality, recipe, generator, acceptor, shards, ws, meta, device, console)
    return generator, shards, stats


def fit_or_resume(modality: Modality, recipe: Recipe, seed: Seed, device: str, ws: wsp.Workspace,
                  console: Console) -> Generator:
    """The model this run saved (resume), or a new one fitted, saved under a temporary name and renamed into place;
    the per-epoch checkpoints a killed fit left are the family's to resume from, and go once the model is saved."""
    model_dir = ws.private("model")
    if (model_dir / "generator.json").exists():
        console.print("  resuming with the model already fitted in this run")
        return modality.load_model(model_dir, device=device)
    checkpoints = ws.path("checkpoints")
    generator = modality.fit(recipe, seed, device=device, checkpoints=checkpoints, console=console)
    tmp = model_dir.with_name("model.tmp")  # in the private part, beside model/
    shutil.rmtree(tmp, ignore_errors=True)
    modality.save_model(generator, tmp)
    os.replace(tmp, model_dir)
    shutil.rmtree(checkpoints, ignore_errors=True)
    return generator


def execute(modality: Modality, recipe: Recipe, generator, acceptor, shards, ws: wsp.Workspace, meta: dict,
            device: str, console: Console) -> list[ShardStats]:
    if recipe.execution.executor == "ray":
        from synthforge.engine.ray_executor import run_ray

        # workers sample on the CPU: one core each (a GPU run samples here, where the model is)
        return run_ray(modality.name, ws.private("model"), acceptor, shards, ws.work, recipe.quality.max_rounds,
                       meta, address=recipe.execution.ray_address, console=console, device="cpu")
    with Progress(TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total} {task.fields[unit]}"), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        return run_local(generator, acceptor, shards, ws.work, recipe.quality.max_rounds, meta, progress,
                         modality.unit)


def grade(recipe: Recipe, modality: Modality, seed: Seed, stats: list[ShardStats], graded) -> tuple[Report, dict]:
    """The gates over the modality's metrics, plus one the same for every modality: every requested row written."""
    requested = sum(s.requested for s in stats)
    failed: dict[str, int] = {}
    for s in stats:
        for k, v in s.failed.items():
            failed[k] = failed.get(k, 0) + v
    rounds = max((s.rounds for s in stats), default=0)
    validation = {"rows_requested": requested, "rows_valid": graded.rows_written,
                  "rows_sampled": sum(s.sampled for s in stats), "rows_dropped": sum(s.invalid for s in stats),
                  "rounds": rounds, "failed": dict(sorted(failed.items(), key=lambda kv: -kv[1])),
                  "table_failures": sorted({t for s in stats for t in s.table_failures}), **graded.validation,
                  "shards": [s.to_dict() for s in stats]}
    gates = check_gates(graded.metrics, dict(recipe.quality.gates))
    # the report is shareable: a note keeps what it says about a column, not the seed value it quoted as an example
    notes = [drop_examples(n) for n in (*seed.notes, *graded.notes)]
    if graded.rows_written < requested:
        gates.append(GateResult(gate="rows", metric="valid_rows", threshold=requested, value=graded.rows_written,
                                passed=False))
        notes.append(f"only {graded.rows_written} of {requested} {modality.unit} passed in {rounds} rounds; "
                     f"rejected: {failed or validation['table_failures']}")
    report = Report(title=f"synthforge · {recipe.name}", created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    status=report_status(gates), gates=gates, notes=notes, **graded.sections,
                    validation={k: v for k, v in validation.items() if k != "shards"},
                    run={"recipe": recipe.name, "vertical": recipe.vertical, "modality": modality.name,
                         "rows": graded.rows_written, "seed_rows_train": len(seed.train),
                         "seed_rows_holdout": len(seed.holdout), "random_seed": recipe.random_seed})
    return report, validation


def finish_run(ws: wsp.Workspace, recipe: Recipe, report: Report, manifest: dict, started: datetime,
               timings: Timings, console: Console, what: str, notes: tuple[str, ...] = ()) -> RunResult:
    """Report, then manifest (last: it marks the run complete), then the folder renamed into place. A failed gate
    raises GateFailed with the kept result."""
    manifest = {"complete": True, "status": report.status,
                "recipe": recipe.model_dump(mode="json", by_alias=True),
                "recipe_sha256": ws.recipe_hash, "random_seed": recipe.random_seed, **manifest,
                "started": started.isoformat(timespec="seconds"), "timings": timings.seconds,
                "cpu_timings": timings.cpu_seconds,
                "failing_gates": [g.model_dump() for g in report.gates if not g.passed],
                "files": files_note(ws, dp="differential_privacy" in manifest)}
    # a differentially private run: the report (graded on the raw rows) and the full manifest are private
    place = ws.private if "differential_privacy" in manifest else ws.path
    write_json(place("report.json"), report.model_dump(mode="json"))
    from synthforge.quality.html import render_html  # matplotlib: imported once there is a report to draw

    write_text(place("report.html"), render_html(report))
    if "differential_privacy" in manifest:
        write_json(ws.private(wsp.MANIFEST), manifest)
        write_json(ws.path(wsp.MANIFEST), wsp.dp_shareable_manifest(manifest))
    else:
        write_json(ws.path(wsp.MANIFEST), manifest)
    folder = wsp.commit(ws)
    result = RunResult(folder=folder, status=report.status, report=report, manifest=manifest,
                       notes=tuple(notes) or tuple(report.notes))
    label = {"passed": "[green]passed", "failed": "[red]failed", "no_gates": "[yellow]done, no gates"}[report.status]
    console.print(f"{label}[/]: {what} in {folder} ({sum(timings.seconds.values()):.0f}s)")
    if "differential_privacy" in manifest and manifest["files"].get("report"):
        console.print(f"  report (graded on the raw rows, private): {manifest['files']['report']}", soft_wrap=True)
    if not result.passed:
        raise GateFailed(f"quality gate failed: {failing_gates(report)} (output kept in {folder})", result)
    return result


def files_note(ws: wsp.Workspace, dp: bool = False) -> dict:
    """The manifest's word on which files may be handed on and which may not (README, "What a run writes")."""
    if dp:
        return wsp.dp_files_note(ws)
    return {"shareable": str(ws.final), "private": str(ws.private_final) if ws.private_final else None,
            "shareable_holds": "data, report.json/html, expectations/ (a shareable suite: bounds rounded outward, "
                               "rare or many categories left out), profile.json (the same rule), recipe.yaml, "
                               "manifest.json",
            "private_holds": "model/ (the fitted generator: codec, frequencies, digests, shots, weights), "
                             "expectations/ (the exact suite), profile.json (the exact profile), seed files; it "
                             "holds seed values: never share it" if ws.private_final else
                             "nothing kept (output.keep_private: false / --no-model)"}


def failing_gates(report: Report) -> str:
    """`min_quality: 0.6388 vs 0.75; ...`: each failed gate with its value and threshold."""
    return "; ".join(f"{g.gate}: {_fmt(g.value)} vs {g.threshold:g}" for g in report.gates if not g.passed)


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4g}"
