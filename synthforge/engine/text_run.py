"""A text run, start to finish: seed documents → fit a causal LM → sample, filter, validate (in shards) → grade →
write → manifest. Same workspace, shards, sinks and manifest as the tabular run (run.py); its own stages.

Filters (memorisation, near-duplicates, degenerate output, PII, label consistency) run on every generated document
before anything is written; then the Great Expectations suite (not null, label set, length range) validates what is
left. A shard asks for more documents, round after round, until it has its count or `quality.max_rounds` is spent.
"""

import html
import json
import math
import os
import shutil
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from synthforge.data.sources import read_seed
from synthforge.engine import workspace as wsp
from synthforge.engine.manifest import Timings, versions
from synthforge.engine.run import (FIT_SEED_STREAM, finish_run, METRIC_SEED_STREAM, SPLIT_SEED_STREAM, RunResult,
                                   read_output, split, torch_setup)
from synthforge.engine.shards import Shard, ShardStats, committed, plan_shards, write_shard
from synthforge.errors import UserError
from synthforge.families.causal_lm import CausalLMGenerator, check_base_model, check_params, check_sampling
from synthforge.families.text_filters import FilterConfig, LabelJudge, TextFilters
from synthforge.quality import expectations as ex
from synthforge.quality.gates import check_gates, report_status
from synthforge.quality.report_model import GateResult, Report
from synthforge.quality.text_metrics import evaluate_text
from synthforge.randomness import derive_seed
from synthforge.recipe.schema import Recipe
from synthforge.sinks.files import write_json

JUDGE_SEED_STREAM = 6
FIRST_KEEP_RATE = 0.9  # share of a first round expected to survive the filters, until measured (rounds top up)


def run(recipe: Recipe, *, out: str | Path | None = None, overwrite: bool = False, resume: bool = False,
        base_dir: Path | None = None, console: Console | None = None) -> RunResult:
    console = console or Console(stderr=True, quiet=True)
    timings = Timings()
    started = datetime.now(timezone.utc)
    threads, device = torch_setup(recipe)
    if device == "mps":
        device = "cpu"  # the sampling loop's torch.Generator lives on the CPU; MPS would gain little at these sizes
    if recipe.generator.family not in ("auto", "causal_lm"):
        raise UserError(f"generator.family: {recipe.generator.family!r} does not generate text; use causal_lm")
    if recipe.execution.executor != "local":
        raise UserError("execution.executor: text runs use the local executor (the model is trained in this "
                        "process); set executor: local")
    params = check_params(recipe.generator.params)
    sampling = check_sampling(recipe.output.sampling)
    fcfg = FilterConfig.from_recipe(recipe.quality.filters)
    check_base_model(params)
    text_col, label_col = recipe.seed.text_column, recipe.seed.label_column
    if not text_col:
        raise UserError("seed.text_column: required for a text run (the column holding the documents)")

    with timings.stage("load"):
        seed = read_seed(recipe.seed.source, recipe.seed.format, base_dir, recipe.seed.max_rows)
        frame, notes = prepare(seed.frame, recipe, params.condition_columns)
        train, holdout = split_text(frame, recipe)
        counts = condition_counts(recipe, train, [c for c in [label_col, *params.condition_columns] if c])

    ws = wsp.open_run(recipe, seed.sha256, out, overwrite=overwrite, resume=resume, base_dir=base_dir)
    console.print(f"[bold]synthforge[/] {recipe.name}: {len(frame)} seed documents ({len(train)} train, "
                  f"{len(holdout)} held out) from {seed.path} → {ws.final}", soft_wrap=True)  # a path is never wrapped mid-way

    with timings.stage("fit"):
        generator = fit_generator(recipe, params, sampling, train, device, ws, console)

    columns = [c for c in [text_col, *generator.columns]]
    suite = build_suite(recipe, train, text_col, generator.columns)
    write_json(ws.path("expectations", "suite.json"), ex.suite_json(suite))
    judge = None
    if fcfg.label_consistency is not None:
        if not label_col:
            raise UserError("quality.filters.label_consistency: needs seed.label_column")
        judge = LabelJudge(train[text_col].tolist(), train[label_col].tolist(),
                           derive_seed(recipe.random_seed, JUDGE_SEED_STREAM) % (2**31))
    filters = TextFilters(fcfg, frame[text_col].tolist(), judge)

    shards = plan_shards(recipe.output.rows if counts is None else sum(counts.values()),
                         recipe.execution.shard_rows, recipe.random_seed, counts)
    meta = {"recipe": recipe.name, "random_seed": recipe.random_seed, "family": generator.family,
            "model": generator.model_name}
    with timings.stage("generate"):
        stats, extra = execute(generator, filters, suite, shards, ws, meta, recipe.quality.max_rounds, label_col,
                               columns, console)

    with timings.stage("evaluate"):
        synthetic = read_output(ws.work)
        filt = summarise_filters(stats, extra, generator)
        if len(synthetic) == 0:
            raise UserError(f"quality.filters: no synthetic document passed the filters and validation in "
                            f"{recipe.quality.max_rounds} rounds; dropped: {filt['dropped']}")
        drafts = pd.DataFrame([d for e in extra for d in e.get("drafts", [])], columns=[text_col, label_col or "_"])
        quality = evaluate_text(train, holdout, synthetic, text_column=text_col, label_column=label_col,
                                seed_docs=frame[text_col].tolist(), memorisation_ngram=fcfg.memorisation_ngram,
                                filters=filt, random_seed=derive_seed(recipe.random_seed, METRIC_SEED_STREAM),
                                drafts=drafts if label_col else None)
        report, validation = grade(recipe, quality, stats, synthetic, train, holdout, notes, generator)
    write_json(ws.path("expectations", "result.json"), validation)

    manifest = {
        "seed": {"path": str(seed.path), "sha256": seed.sha256, "rows": len(seed.frame),
                 "columns": seed.frame.shape[1]},
        "rows": int(len(synthetic)), "family": generator.family,
        "model": generator.model_name, "device": device,
        "precision": generator.fit_info_.get("precision", "fp32"), "world_size": 1, "threads": threads,
        "executor": "local", "shards": len(shards), "versions": {**versions(), **generator_versions()},
        "generation": {"tokens": filt["tokens"], "seconds": filt["seconds"], "tokens_per_second": filt["tokens_per_s"]},
    }
    report.run.update({"seconds": timings.seconds, "device": device, "family": generator.family,
                       "model": generator.model_name})
    return finish_run(ws, recipe, report, manifest, started, timings, console, f"{len(synthetic)} documents")


def check(recipe: Recipe, base_dir: Path | None = None) -> str:
    """What `synthforge validate` needs for a text recipe: every key and the seed checked, nothing trained."""
    params = check_params(recipe.generator.params)
    check_sampling(recipe.output.sampling)
    FilterConfig.from_recipe(recipe.quality.filters)
    check_base_model(params)
    if not recipe.seed.text_column:
        raise UserError("seed.text_column: required for a text run (the column holding the documents)")
    seed = read_seed(recipe.seed.source, recipe.seed.format, base_dir, recipe.seed.max_rows)
    frame, notes = prepare(seed.frame, recipe, params.condition_columns)
    train, holdout = split_text(frame, recipe)
    columns = [c for c in [recipe.seed.label_column, *params.condition_columns] if c]
    condition_counts(recipe, train, columns)
    build_suite(recipe, train, recipe.seed.text_column, columns)
    labels = (f"; {recipe.seed.label_column}: " + ", ".join(f"{k} {v}" for k, v in
                                                           train[recipe.seed.label_column].value_counts().items())
              if recipe.seed.label_column else "")
    return "\n".join([f"ok: {len(frame)} documents ({len(train)} train, {len(holdout)} held out) from {seed.path}"
                      f"{labels}", *(f"  {n}" for n in notes)])


# ---------------------------------------------------------------------- seed


def prepare(df: pd.DataFrame, recipe: Recipe, condition_columns: tuple[str, ...]) -> tuple[pd.DataFrame, list[str]]:
    """The text, label, metadata and split columns; HTML entities unescaped; rows without text left out."""
    s = recipe.seed
    wanted = [c for c in [s.text_column, s.label_column, *condition_columns, s.split_column] if c]
    where = {s.text_column: "seed.text_column", s.label_column: "seed.label_column",
             s.split_column: "seed.split_column",
             **{c: "generator.params.condition_columns" for c in condition_columns}}
    for col in wanted:
        if col not in df.columns:
            raise UserError(f"{where[col]}: {col!r} is not a column of the seed; columns are {', '.join(df.columns)}")
    out = df[list(dict.fromkeys(wanted))].copy()
    text = out[s.text_column]
    out[s.text_column] = text.map(lambda t: html.unescape(str(t)).replace("\r\n", "\n").strip()
                                  if pd.notna(t) else "")
    notes = []
    empty = out[s.text_column].str.len() == 0
    if empty.any():
        notes.append(f"{int(empty.sum())} seed rows without text were left out")
    keep = ~empty
    for col in [c for c in [s.label_column, *condition_columns] if c]:
        missing = out[col].isna()
        if (missing & keep).any():
            notes.append(f"{int((missing & keep).sum())} seed rows without {col} were left out")
        keep &= ~missing
        out[col] = out[col].astype(str)
    out = out[keep].reset_index(drop=True)
    if len(out) < 10:
        raise UserError(f"seed.source: {len(out)} documents is too few to learn from and to keep a holdout; "
                        "give at least 10")
    return out, notes


def split_text(df: pd.DataFrame, recipe: Recipe) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The split column's 'test' rows are the holdout when the recipe names one; else a seeded random share."""
    col = recipe.seed.split_column
    if col:
        test = df[col].astype(str).str.lower() == "test"
        if not test.any() or test.all():
            raise UserError(f"seed.split_column: {col!r} needs both 'test' rows (held out) and other rows "
                            f"(training); values are {', '.join(map(str, df[col].unique()[:8]))}")
        return df[~test].reset_index(drop=True), df[test].reset_index(drop=True)
    return split(df, recipe.quality.holdout_fraction, derive_seed(recipe.random_seed, SPLIT_SEED_STREAM))


def condition_counts(recipe: Recipe, train: pd.DataFrame, columns: list[str]) -> dict | None:
    cond = recipe.output.conditions
    if cond is None:
        return None
    if cond.column not in columns:
        raise UserError(f"output.conditions.column: {cond.column!r} is not conditioned on; choose "
                        f"{' or '.join(columns) or 'a seed.label_column first'}")
    values = sorted(train[cond.column].astype(str).unique())
    rows = recipe.output.rows
    if cond.balance:
        counts = {v: rows // len(values) + (1 if i < rows % len(values) else 0) for i, v in enumerate(values)}
    else:
        unknown = [k for k in cond.counts if k not in values]
        if unknown:
            raise UserError(f"output.conditions.counts: {unknown[0]!r} is not a value of {cond.column}; values are "
                            f"{', '.join(values)}")
        counts = {k: n for k, n in cond.counts.items() if n > 0}
    return {((cond.column, v),): n for v, n in counts.items() if n > 0}


# ---------------------------------------------------------------------- fit


def fit_generator(recipe: Recipe, params, sampling, train: pd.DataFrame, device: str, ws: wsp.Workspace,
                  console: Console) -> CausalLMGenerator:
    model_dir = ws.path("model")
    if (model_dir / "generator.json").exists():
        console.print("  resuming with the model already trained in this run")
        return CausalLMGenerator.load(model_dir, trusted=True)  # trusted: this run wrote it
    ckpt = ws.path("checkpoints")
    ckpt.mkdir(parents=True, exist_ok=True)
    if (ckpt / "state.json").exists():
        console.print("  resuming training from the last epoch's checkpoint")
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task(f"training {params.mode}", total=None, info="")

        def on_progress(p: dict) -> None:
            done = p["elapsed"] / p["budget"] if p.get("budget") else p["step"] / p["steps"]
            val = f" val {p['val_loss']:.3f}" if p.get("val_loss") is not None else ""
            progress.update(task, total=1.0, completed=min(1.0, done),
                            info=f"epoch {p['epoch']}/{p['epochs']} step {p['step']} loss {p['loss']:.3f}{val}")
            if p.get("epoch_done"):
                console.print(f"  epoch {p['epoch']}: train loss {p['loss']:.3f}{val} ({p['elapsed']:.0f}s)")

        gen = CausalLMGenerator(params, text_column=recipe.seed.text_column, label_column=recipe.seed.label_column,
                                sampling=sampling, device=device, time_budget=recipe.generator.time_budget,
                                random_state=derive_seed(recipe.random_seed, FIT_SEED_STREAM), checkpoint_dir=ckpt,
                                on_progress=on_progress)
        gen.fit(train)
    info = gen.fit_info_
    best = f", best epoch {info['best_epoch']}" if info["best_epoch"] is not None else ""  # none without validation
    console.print(f"  trained {gen.model_name}: {info['epochs']} epochs, {info['steps']} steps, stopped by "
                  f"{info['stopped']}{best} ({info['train_seconds']:.0f}s)")
    tmp = model_dir.with_name("model.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    gen.save(tmp)
    os.replace(tmp, model_dir)
    shutil.rmtree(ckpt, ignore_errors=True)  # the model is saved; the per-epoch checkpoints were for resuming
    return gen


def build_suite(recipe: Recipe, train: pd.DataFrame, text_col: str, columns: list[str]):
    """Not null, label (and metadata) sets from the seed, text length within the seed's range, plus the recipe's."""
    lengths = train[text_col].str.len()
    kinds = {text_col: "text", **{c: "categorical" for c in columns}}
    user = (("expect_column_value_lengths_to_be_between",
             {"column": text_col, "min_value": int(lengths.min()), "max_value": int(lengths.max())}),
            ("expect_column_values_to_not_be_null", {"column": text_col}),
            *((e.type, dict(e.kwargs)) for e in recipe.quality.expectations))
    return ex.build_suite(f"{recipe.name}_suite", kinds, train[[text_col, *columns]],
                          auto=recipe.quality.auto_expectations, user=user)


# ---------------------------------------------------------------------- generate


def execute(generator, filters: TextFilters, suite, shards: list[Shard], ws: wsp.Workspace, meta: dict,
            max_rounds: int, label_col: str | None, columns: list[str], console: Console
            ) -> tuple[list[ShardStats], list[dict]]:
    stats, extras = [], []
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} docs"),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("generate + filter + validate", total=sum(s.rows for s in shards))
        for shard in shards:
            done = committed(ws.work, shard)
            extra_path = ws.path("shards", f"{shard.name}.text.json")
            if done is not None and extra_path.exists():
                filters.commit(pd.read_parquet(ws.path("data", f"{shard.name}.parquet"))[columns[0]])
                extra = json.loads(extra_path.read_text())
            else:
                df, done, extra = generate_shard(generator, filters, suite, shard, max_rounds, label_col,
                                                 lambda k: progress.advance(task, k))
                write_json(extra_path, extra)  # before the part, like the stats: a part always has both beside it
                write_shard(ws.work, shard, df, done, meta)
            stats.append(done)
            extras.append(extra)
            progress.update(task, completed=sum(s.rows for s in stats))
    return stats, extras


def generate_shard(generator, filters: TextFilters, suite, shard: Shard, max_rounds: int, label_col: str | None,
                   advance=lambda k: None) -> tuple[pd.DataFrame, ShardStats, dict]:
    stats = ShardStats(index=shard.index, requested=shard.rows)
    failed, masked = Counter(), Counter()
    memorised = 0
    drafts: list[list] = []  # the first drafts of each condition group as generated: graded unfiltered in the report
    tokens0, seconds0 = generator.generated_tokens_, generator.generation_seconds_
    frames = []
    for g, (conditions, wanted) in enumerate(shard.groups or (((), shard.rows),)):
        need, sampled, kept = wanted, 0, 0
        group_drafts: list[list] = []
        for round_ in range(max_rounds):
            if need <= 0:
                break
            rate = kept / sampled if sampled else FIRST_KEEP_RATE
            n = min(need * 20, max(need, math.ceil(need / max(rate, 0.05) * 1.1)))
            df = generator.sample(n, seed=derive_seed(shard.seed, g, round_), conditions=dict(conditions) or None)
            sampled += len(df)
            labels = df[label_col].tolist() if label_col else None
            room = wanted - len(group_drafts)
            group_drafts += [[t, lab] for t, lab in zip(df[generator.text_column].tolist()[:room],
                                                        (labels or [None] * len(df))[:room])]
            res = filters.apply(df[generator.text_column].tolist(), labels)
            failed.update(res.dropped)
            masked.update(res.masked)
            memorised += res.memorised
            df[generator.text_column] = res.texts
            df = df[res.keep].reset_index(drop=True)
            stats.invalid += n - len(df)
            if len(df):
                v = ex.validate(suite, df)
                failed.update(v.failed)
                stats.table_failures.extend(t for t in v.table_failures if t not in stats.table_failures)
                stats.invalid += v.rows_invalid
                df = df[v.valid]
            keep = df.head(need)
            kept += len(df)
            frames.append(keep)
            need -= len(keep)
            advance(len(keep))
            stats.sampled += n
            stats.rounds = max(stats.rounds, round_ + 1)
        drafts += group_drafts
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    stats.rows = len(out)
    stats.failed = dict(failed)
    extra = {"masked": dict(masked), "memorised": memorised, "drafts": drafts,
             "tokens": int(generator.generated_tokens_ - tokens0),
             "seconds": round(generator.generation_seconds_ - seconds0, 3)}
    return out, stats, extra


def summarise_filters(stats: list[ShardStats], extras: list[dict], generator) -> dict:
    dropped: Counter = Counter()
    masked: Counter = Counter()
    for s in stats:
        dropped.update(s.failed)
    for e in extras:
        masked.update(e.get("masked", {}))
    sampled = sum(s.sampled for s in stats)
    tokens = sum(e.get("tokens", 0) for e in extras)
    seconds = sum(e.get("seconds", 0.0) for e in extras)
    return {"sampled": sampled, "kept": sum(s.rows for s in stats), "requested": sum(s.requested for s in stats),
            "rounds": max((s.rounds for s in stats), default=0), "dropped": dict(dropped.most_common()),
            "masked": dict(masked.most_common()), "memorised": sum(e.get("memorised", 0) for e in extras),
            "tokens": tokens, "seconds": round(seconds, 2),
            "tokens_per_s": round(tokens / seconds, 1) if seconds else None}


# ---------------------------------------------------------------------- grade


def grade(recipe: Recipe, quality, stats: list[ShardStats], synthetic: pd.DataFrame, train, holdout,
          notes: list[str], generator) -> tuple[Report, dict]:
    requested = sum(s.requested for s in stats)
    validation = {"expectations": "suite.json", "rows_requested": requested, "rows_valid": int(len(synthetic)),
                  "rows_sampled": sum(s.sampled for s in stats), "rows_dropped": sum(s.invalid for s in stats),
                  "rounds": max((s.rounds for s in stats), default=0), "dropped_by_reason": quality.filters["dropped"],
                  "table_failures": sorted({t for s in stats for t in s.table_failures}),
                  "shards": [s.to_dict() for s in stats]}
    gates = check_gates(quality.metrics, dict(recipe.quality.gates))
    notes = list(notes) + list(quality.notes)
    if len(synthetic) < requested:
        gates.append(GateResult(gate="rows", metric="valid_rows", threshold=requested, value=len(synthetic),
                                passed=False))
        notes.append(f"only {len(synthetic)} of {requested} documents passed the filters and validation in "
                     f"{validation['rounds']} rounds; dropped: {quality.filters['dropped']}")
    section = quality.model_dump(mode="json")
    section["model"] = {"name": generator.model_name, "fit": generator.fit_info_, "history": generator.history_,
                        "sampling": generator.sampling_config.model_dump(mode="json")}
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    report = Report(title=f"synthforge · {recipe.name}", created=created,
                    status=report_status(gates), gates=gates, sections={"text": section},
                    validation={k: v for k, v in validation.items() if k != "shards"}, notes=notes,
                    run={"recipe": recipe.name, "vertical": recipe.vertical, "rows": int(len(synthetic)),
                         "seed_rows_train": len(train), "seed_rows_holdout": len(holdout),
                         "random_seed": recipe.random_seed})
    return report, validation


def generator_versions() -> dict:
    from importlib import metadata

    out = {}
    for name in ("transformers", "tokenizers", "peft", "sentence-transformers"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out
