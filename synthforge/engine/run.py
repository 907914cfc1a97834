"""One run, start to finish: seed → profile → fit → sample + validate (in shards) → grade → write → manifest.

Every stage writes into the workspace's `.partial` folder; the manifest comes last and the folder is renamed into
place only then, so a killed run never leaves something that looks finished, and `resume=True` picks up the saved
model and the committed shards.
"""

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from synthforge.data.profile import Profile
from synthforge.data.sources import read_seed
from synthforge.engine import workspace as wsp
from synthforge.engine.executors import run_local
from synthforge.engine.manifest import Timings, versions
from synthforge.engine.modality import resolve_modality
from synthforge.engine.shards import ShardStats, plan_shards
from synthforge.errors import GateFailed, UserError
from synthforge.families.device import resolve_device
from synthforge.families import tabular_families as tf
from synthforge.families.identifiers import GENERATED_FILE, GeneratedColumns
from synthforge.quality import expectations as ex
from synthforge.quality.gates import check_gates, report_status
from synthforge.quality.identifiers import grade_identifiers
from synthforge.quality.report_model import ColumnReport, GateResult, Report
from synthforge.randomness import derive_seed
from synthforge.recipe.schema import Recipe
from synthforge.sinks.files import write_json, write_text

SPLIT_SEED_STREAM, METRIC_SEED_STREAM, FIT_SEED_STREAM = 3, 4, 5


@dataclass(frozen=True)
class RunResult:
    folder: Path
    status: str  # passed | failed | no_gates
    report: Report
    manifest: dict

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
        """The full report.html of the run (open `folder / "report.html"` in a browser for the same page)."""
        return (Path(self.folder) / "report.html").read_text(encoding="utf-8")

    def __repr__(self) -> str:
        rows = self.manifest.get("rows")
        return f"RunResult({str(self.folder)!r}, status={self.status}, rows={rows}, {self.report!r})"

    def _repr_html_(self) -> str:
        return self.report._repr_html_()


def read_output(folder: Path) -> pd.DataFrame:
    parts = sorted((Path(folder) / "data").glob("part-*.parquet"))
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True) if parts else pd.DataFrame()


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


def run(recipe: Recipe, *, out: str | Path | None = None, overwrite: bool = False, resume: bool = False,
        base_dir: Path | None = None, console: Console | None = None) -> RunResult:
    console = console or Console(stderr=True, quiet=True)
    modality = resolve_modality(recipe, base_dir)
    if modality != "tabular":
        # text and image runs share the workspace, shards, sinks and report, with their own stages
        from importlib import import_module

        runner = import_module(f"synthforge.engine.{modality}_run")
        return runner.run(recipe, out=out, overwrite=overwrite, resume=resume, base_dir=base_dir, console=console)
    timings = Timings()
    started = datetime.now(timezone.utc)
    check_family(recipe)
    if recipe.execution.executor == "ray":
        from synthforge.engine.ray_executor import check_address

        check_address(recipe.execution.ray_address)

    with timings.stage("load"):
        seed = read_seed(recipe.seed.source, recipe.seed.format, base_dir, recipe.seed.max_rows)
        profile = Profile.from_frame(seed.frame, overrides=recipe.seed.columns, target=recipe.seed.target,
                                     drop=recipe.seed.drop, primary_key=recipe.seed.primary_key)
        data = profile.prepare(seed.frame)
        if data.shape[1] == 0:
            raise UserError(f"seed.source: no column of {seed.path.name} can be modelled "
                            f"({'; '.join(profile.notes())})")
        train, holdout = split(data, recipe.quality.holdout_fraction, derive_seed(recipe.random_seed,
                                                                                  SPLIT_SEED_STREAM))
        condition_counts = conditions_to_counts(recipe, profile, train)

    ws = wsp.open_run(recipe, seed.sha256, out, overwrite=overwrite, resume=resume, base_dir=base_dir)
    threads, device = torch_setup(recipe)  # torch (seconds to import) only once the seed and the folder are fine
    console.print(f"[bold]synthforge[/] {recipe.name}: {len(seed.frame)} seed rows × {seed.frame.shape[1]} columns "
                  f"from {seed.path} → {ws.final}", soft_wrap=True)  # a path is never wrapped mid-way
    write_json(ws.path("profile.json"), profile.model_dump(mode="json"))

    # SDV's fit has no progress callback; a spinner with the elapsed time shows the run is alive
    with timings.stage("fit"), console.status(f"fitting on {len(train)} rows (budget "
                                              f"{recipe.generator.time_budget:.0f}s)"):
        generator, selection, generated = fit_generator(recipe, profile, seed.frame, train, device, ws, console)

    kinds = profile.metric_kinds()
    suite = ex.build_suite(f"{recipe.name}_suite", kinds, train, auto=recipe.quality.auto_expectations,
                           user=tuple((e.type, dict(e.kwargs)) for e in recipe.quality.expectations))
    write_json(ws.path("expectations", "suite.json"), ex.suite_json(suite))

    shards = plan_shards(recipe.output.rows, recipe.execution.shard_rows, recipe.random_seed, condition_counts)
    meta = {"recipe": recipe.name, "random_seed": recipe.random_seed, "family": generator.family}
    with timings.stage("generate"):
        stats = execute(recipe, generator, suite, shards, ws, meta, console, generated)

    with timings.stage("evaluate"):
        synthetic = read_output(ws.work)
        report, validation = grade(recipe, profile, train, holdout, synthetic, stats, selection, kinds,
                                   len(suite.expectations))
        report.columns = column_reports(profile, generator)
        report.tabular = report.tabular.model_copy(
            update={"identifiers": grade_identifiers(seed.frame, synthetic, profile.generated_columns())})
    write_json(ws.path("expectations", "result.json"), validation)

    manifest = {
        "seed": {"path": str(seed.path), "sha256": seed.sha256, "rows": len(seed.frame),
                 "columns": seed.frame.shape[1]},
        "rows": int(len(synthetic)), "family": generator.family,
        "device": device, "precision": "fp32", "world_size": 1,  # SDV trains in fp32 on one device
        "threads": threads,
        "executor": recipe.execution.executor, "shards": len(shards), "versions": versions(),
    }
    dp_spent = getattr(generator, "dp_spent_", None)  # differential privacy: the ε the training spent
    if dp_spent:
        manifest["differential_privacy"] = dp_spent
        report.run["differential_privacy"] = dp_spent
    report.run.update({"seconds": timings.seconds, "device": device, "family": generator.family})
    return finish_run(ws, recipe, report, manifest, started, timings, console, f"{len(synthetic)} rows")


def finish_run(ws: wsp.Workspace, recipe: Recipe, report: Report, manifest: dict, started: datetime,
               timings: Timings, console: Console, what: str) -> RunResult:
    """Report, then manifest (last: it marks the run complete), then the folder renamed into place; every family
    ends its run here, passing what its manifest adds to the common keys. A failed gate raises GateFailed with the
    kept result."""
    manifest = {"complete": True, "status": report.status, "recipe": recipe.model_dump(mode="json"),
                "recipe_sha256": ws.recipe_hash, "random_seed": recipe.random_seed, **manifest,
                "started": started.isoformat(timespec="seconds"), "timings": timings.seconds,
                "failing_gates": [g.model_dump() for g in report.gates if not g.passed]}
    write_json(ws.path("report.json"), report.model_dump(mode="json"))
    from synthforge.quality.html import render_html  # matplotlib: imported once there is a report to draw

    write_text(ws.path("report.html"), render_html(report))
    write_json(ws.path(wsp.MANIFEST), manifest)
    folder = wsp.commit(ws)
    result = RunResult(folder=folder, status=report.status, report=report, manifest=manifest)
    label = {"passed": "[green]passed", "failed": "[red]failed", "no_gates": "[yellow]done, no gates"}[report.status]
    console.print(f"{label}[/]: {what} in {folder} ({sum(timings.seconds.values()):.0f}s)")
    if not result.passed:
        failing = failing_gates(report)
        raise GateFailed(f"quality gate failed: {failing} (output kept in {folder})", result)
    return result


def failing_gates(report: Report) -> str:
    """`min_quality: 0.6388 vs 0.75; ...`: each failed gate with its value and threshold."""
    return "; ".join(f"{g.gate}: {_fmt(g.value)} vs {g.threshold:g}" for g in report.gates if not g.passed)


def split(df: pd.DataFrame, holdout_fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    if len(df) < 10:
        raise UserError(f"seed.source: {len(df)} rows is too few to learn from and to keep a holdout; "
                        "give at least 10 rows")
    order = np.random.default_rng(seed).permutation(len(df))
    n_hold = max(1, int(round(len(df) * holdout_fraction)))
    return (df.iloc[np.sort(order[n_hold:])].reset_index(drop=True),
            df.iloc[np.sort(order[:n_hold])].reset_index(drop=True))


def conditions_to_counts(recipe: Recipe, profile: Profile, train: pd.DataFrame) -> dict | None:
    cond = recipe.output.conditions
    if cond is None:
        return None
    kinds = profile.kinds()
    if cond.column not in kinds:
        raise UserError(f"output.conditions.column: {cond.column!r} is not a modelled column; choose one of "
                        f"{', '.join(kinds)}")
    if kinds[cond.column] not in ("categorical", "boolean"):
        raise UserError(f"output.conditions.column: {cond.column!r} is {kinds[cond.column]}; conditions need a "
                        "categorical or boolean column")
    values = list(pd.unique(train[cond.column].dropna()))
    by_text = {str(v): v for v in values}
    rows = recipe.output.rows
    if cond.balance:
        counts = {v: rows // len(values) + (1 if i < rows % len(values) else 0) for i, v in enumerate(values)}
    else:
        unknown = [k for k in cond.counts if k not in by_text]
        if unknown:
            raise UserError(f"output.conditions.counts: {unknown[0]!r} is not a value of {cond.column}; values are "
                            f"{', '.join(sorted(by_text))}")
        counts = {by_text[k]: n for k, n in cond.counts.items() if n > 0}
    return {((cond.column, _plain(v)),): n for v, n in counts.items()}


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def check_family(recipe: Recipe) -> None:
    """The family (or every auto candidate) is allowed by the recipe's licence and its params are its own."""
    gen = recipe.generator
    if gen.family == "auto":
        for family in gen.candidates:
            tf.check_licence(family, recipe.licence, "generator.candidates")
    else:
        tf.check_licence(gen.family, recipe.licence)
        tf.check_params(gen.family, gen.params)


def family_params(recipe: Recipe, family: str) -> dict:
    """The recipe's params for a family (auto: none), with what the run needs of it: the autoregressive model puts
    the conditioned column first, so `balance` and `counts` are drawn, not rejected."""
    params = dict(recipe.generator.params) if recipe.generator.family == family else {}
    cond = recipe.output.conditions
    if family == "autoregressive" and cond is not None and "order" not in params:
        params["order"] = [cond.column]
    return params


def fit_generator(recipe: Recipe, profile: Profile, seed_frame: pd.DataFrame, train, device: str,
                  ws: wsp.Workspace, console: Console):
    """The fitted (or, on resume, saved) generator, its selection table, and how generated columns are made."""
    model_dir = ws.path("model")
    if (model_dir / "generator.json").exists():
        console.print("  resuming with the model already fitted in this run")
        gen = tf.load(model_dir, trusted=True, device=device)  # trusted: this run wrote it
        selection = json.loads((model_dir / "selection.json").read_text())
        return gen, selection, GeneratedColumns.load(model_dir / GENERATED_FILE)
    from synthforge.engine.select import epochs_of, select_family  # scikit-learn: once there is something to fit

    family = recipe.generator.family
    if family == "auto":
        candidates = recipe.generator.candidates
        gen, chosen = select_family(candidates, profile, train, device=device,
                                    time_budget=recipe.generator.time_budget, random_seed=recipe.random_seed,
                                    params={f: family_params(recipe, f) for f in candidates},
                                    console=console)
        selection = [c.row() for c in chosen]
    else:
        console.print(f"  fitting {family}")
        params = family_params(recipe, family)
        gen = tf.make(family, profile, params, device=device,
                      time_budget=recipe.generator.time_budget if "epochs" not in params else None,
                      random_state=derive_seed(recipe.random_seed, FIT_SEED_STREAM)).fit(train)
        selection = [{"family": family, "licence": tf.licence_of(family), "score": None,
                      "fit_seconds": gen.fit_seconds_, "epochs": epochs_of(gen), "chosen": True,
                      "why": "named in the recipe"}]
    tmp = model_dir.with_name("model.tmp")
    generated = GeneratedColumns.fit(seed_frame, profile, seed=recipe.random_seed)
    gen.save(tmp)
    generated.save(tmp / GENERATED_FILE)
    write_json(tmp / "selection.json", selection)
    os.replace(tmp, model_dir)
    return gen, selection, generated


def execute(recipe: Recipe, generator, suite, shards, ws: wsp.Workspace, meta: dict, console: Console,
            generated: GeneratedColumns | None = None) -> list[ShardStats]:
    if recipe.execution.executor == "ray":
        from synthforge.engine.ray_executor import run_ray

        return run_ray(ws.path("model"), suite, shards, ws.work, recipe.quality.max_rounds, meta,
                       address=recipe.execution.ray_address, console=console)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} rows"),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        return run_local(generator, suite, shards, ws.work, recipe.quality.max_rounds, meta, progress, generated)


def column_reports(profile: Profile, generator) -> list[ColumnReport]:
    """Per seed column: its kind, the grid the profile found, and what the family did with it."""
    codec = getattr(getattr(generator, "codec_", None), "describe", lambda: {})()
    rows = []
    for c in profile.columns:
        if c.dropped:
            treatment = f"left out: {c.dropped}"
        elif c.generated:
            treatment = f"generated: {c.generated_as()}"
        else:
            parts = [c.grid, codec.get(c.name)]
            treatment = "; ".join(p for p in parts if p) or f"modelled by {generator.family}"
        rows.append(ColumnReport(name=c.name, kind=c.kind, treatment=treatment))
    return rows


def grade(recipe: Recipe, profile: Profile, train, holdout, synthetic, stats: list[ShardStats], selection,
          kinds, expectations: int) -> tuple[Report, dict]:
    requested = sum(s.requested for s in stats)
    failed: dict[str, int] = {}
    for s in stats:
        for k, v in s.failed.items():
            failed[k] = failed.get(k, 0) + v
    table_failures = sorted({t for s in stats for t in s.table_failures})
    validation = {"expectations": {"suite": "expectations/suite.json", "count": expectations,
                                   "failing": sorted(failed) + table_failures},
                  "rows_requested": requested, "rows_valid": int(len(synthetic)),
                  "rows_sampled": sum(s.sampled for s in stats), "rows_dropped": sum(s.invalid for s in stats),
                  "rounds": max((s.rounds for s in stats), default=0), "failed": failed,
                  "table_failures": table_failures, "shards": [s.to_dict() for s in stats]}
    notes = profile.notes()
    target = recipe.seed.target if recipe.seed.target in kinds else None
    if len(synthetic) == 0:
        raise UserError(f"quality.expectations: no synthetic row passed validation in {validation['rounds']} "
                        f"rounds; failing: {', '.join(failed) or ', '.join(table_failures)}")
    metric_seed = derive_seed(recipe.random_seed, METRIC_SEED_STREAM)
    from synthforge.quality.evaluate import evaluate_tables

    tab = evaluate_tables(train, synthetic, kinds=kinds, holdout=holdout, target=target, random_seed=metric_seed,
                          max_rows=recipe.quality.metric_rows)
    gates = check_gates(tab.metrics(), dict(recipe.quality.gates))
    if len(synthetic) < requested:
        gates.append(GateResult(gate="rows", metric="valid_rows", threshold=requested, value=len(synthetic),
                                passed=False))
        notes.append(f"only {len(synthetic)} of {requested} rows passed validation in {validation['rounds']} rounds;"
                     f" failing expectations: {failed or table_failures}")
    status = report_status(gates)
    report = Report(title=f"synthforge · {recipe.name}", created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    status=status, gates=gates, tabular=tab, selection=selection, validation=validation,
                    notes=notes, run={"recipe": recipe.name, "vertical": recipe.vertical, "rows": int(len(synthetic)),
                                      "seed_rows_train": len(train), "seed_rows_holdout": len(holdout),
                                      "random_seed": recipe.random_seed,
                                      "rows_used": {
                                          "fit": "the training rows",
                                          "selection": "a validation split carved from the training rows"
                                                       if selection else "none (one family, no choice)",
                                          "fidelity, detection": "synthetic vs the training rows",
                                          "privacy, utility, augmentation gain": "the holdout rows, never seen by "
                                                                                 "fitting or choosing"}})
    return report, validation


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4g}"
