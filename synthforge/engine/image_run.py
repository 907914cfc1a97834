"""One image run: seed images → split → fit (or fine-tune) a diffusion model → sample in shards, dropping near-copies
of training images → PNGs + metadata → offline image metrics → report → manifest.

Mirrors the tabular run (engine/run.py): everything is built in the workspace's `.partial` folder and renamed into
place after the manifest. `--resume` continues training from the last checkpoint (`checkpoints/`), reuses a saved
model (`model/`) and skips shards already committed. Output layout (a Hugging Face `imagefolder`):

    images/<label>/<id>.png     one PNG per image (written under a temporary name, then renamed)
    metadata.parquet            file_name, label, seed, model, sampling_steps, ... (file_name relative to the folder)
    data/part-*.parquet         the same rows per shard (what RunResult.data() reads)
"""

import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from synthforge.data.images import ImageSeed, ImageSet, read_image_seed, read_png, safe_folder_name, to_png
from synthforge.engine import workspace as wsp
from synthforge.engine.manifest import Timings, versions
from synthforge.engine.run import (FIT_SEED_STREAM, METRIC_SEED_STREAM, SPLIT_SEED_STREAM, RunResult,
                                   finish_run, torch_setup)
from synthforge.engine.shards import Shard, ShardStats, committed, plan_shards
from synthforge.errors import UserError
from synthforge.families.diffusion import DiffusionGenerator, parse_filters, parse_params, parse_sampling
from synthforge.quality.gates import check_gates, report_status
from synthforge.quality.image_metrics import evaluate_images, loss_plot, near_copies
from synthforge.quality.report_model import GateResult, Report
from synthforge.randomness import derive_seed
from synthforge.recipe.schema import Recipe
from synthforge.sinks.files import write_bytes, write_json, write_parquet

METADATA = "metadata.parquet"


def run(recipe: Recipe, *, out: str | Path | None = None, overwrite: bool = False, resume: bool = False,
        base_dir: Path | None = None, console: Console | None = None) -> RunResult:
    console = console or Console(stderr=True, quiet=True)
    timings = Timings()
    started = datetime.now(timezone.utc)
    threads, device = torch_setup(recipe)
    # every family parameter is checked before anything is read or trained
    params = parse_params(recipe.generator.params)
    sampling = parse_sampling(recipe.output.sampling)
    filters = parse_filters(recipe.quality.filters)
    label_column = recipe.seed.label_column or "label"

    with timings.stage("load"):
        seed, train, holdout, split_note, counts = load_seed(recipe, base_dir)
    size, channels = seed.data.images.shape[1], seed.data.images.shape[3]

    ws = wsp.open_run(recipe, seed.sha256, out, overwrite=overwrite, resume=resume, base_dir=base_dir)
    console.print(f"[bold]synthforge[/] {recipe.name}: {len(seed.data)} images {size}×{size}×{channels} "
                  f"({len(train)} train, {len(holdout)} held out) from {seed.path} → {ws.final}", soft_wrap=True)  # a path is never wrapped mid-way
    seed_info = {"path": str(seed.path), "images": len(seed.data), "image_size": size, "channels": channels,
                 "classes": list(train.classes), "train": len(train), "holdout": len(holdout), "split": split_note,
                 "skipped": seed.skipped, "skipped_examples": list(seed.skipped_examples), "notes": list(seed.notes)}
    write_json(ws.path("seed.json"), seed_info)

    with timings.stage("fit"):
        generator = fit_generator(recipe, params, sampling, train, size, channels, label_column, device, ws,
                                  base_dir, console)

    groups = None if counts is None else {((label_column, c),): n for c, n in counts.items()}
    rows = recipe.output.rows if counts is None else sum(counts.values())
    shards = plan_shards(rows, recipe.execution.shard_rows, recipe.random_seed, groups)
    folders = label_folders(train.classes)
    meta = {"recipe": recipe.name, "random_seed": recipe.random_seed, "family": generator.family}
    with timings.stage("generate"):
        stats = generate(recipe, generator, shards, train, filters.near_copy_distance, folders, ws, meta,
                         label_column, console)

    with timings.stage("evaluate"):
        table = merge_metadata(ws.work, shards)
        synthetic = read_images(ws.work, table, channels, label_column)
        report = grade(recipe, seed, train, holdout, synthetic, stats, generator, filters.near_copy_distance,
                       split_note, threads, device)
    write_parquet(ws.path(METADATA), table, meta)

    manifest = {
        "seed": {"path": str(seed.path), "sha256": seed.sha256, "images": len(seed.data),
                 "skipped": seed.skipped},
        "rows": int(len(table)), "images": int(len(table)),
        "family": generator.family, "device": device, "precision": generator.fit_stats_.get("precision", "fp32"),
        "world_size": 1, "threads": threads, "executor": "local", "shards": len(shards), "versions": _versions(),
    }
    report.run.update({"seconds": timings.seconds, "device": device, "family": generator.family})
    return finish_run(ws, recipe, report, manifest, started, timings, console, f"{len(table)} images")


def load_seed(recipe: Recipe, base_dir: Path | None):
    """The seed images, their train/holdout split (and how it was made) and the per-label counts to generate."""
    seed = read_image_seed(recipe.seed.source, base=base_dir, image_size=recipe.seed.image_size,
                           channels=recipe.seed.channels, label_column=recipe.seed.label_column,
                           split_column=recipe.seed.split_column, drop=recipe.seed.drop,
                           max_rows=recipe.seed.max_rows, random_seed=recipe.random_seed)
    train, holdout, split_note = split_images(seed, recipe.quality.holdout_fraction,
                                              derive_seed(recipe.random_seed, SPLIT_SEED_STREAM))
    return seed, train, holdout, split_note, label_counts(recipe, train, recipe.seed.label_column or "label")


def check(recipe: Recipe, base_dir: Path | None = None) -> str:
    """What `synthforge validate` needs for an image recipe: every parameter and the seed checked, nothing trained."""
    parse_params(recipe.generator.params)
    parse_sampling(recipe.output.sampling)
    parse_filters(recipe.quality.filters)
    seed, train, holdout, split_note, counts = load_seed(recipe, base_dir)
    _, size, _, channels = seed.data.images.shape
    lines = [f"ok: {recipe.name}: {len(seed.data)} images {size}×{size}×{channels} from {seed.path}; {split_note}",
             f"  classes: {', '.join(train.classes) or '(unlabelled)'}",
             f"  to generate: {', '.join(f'{c} {n}' for c, n in counts.items()) if counts else recipe.output.rows}"]
    return "\n".join(lines + [f"  note: {n}" for n in seed.notes])


# ---------------------------------------------------------------- seed → train / holdout, label counts


def split_images(seed: ImageSeed, holdout_fraction: float, split_seed: int) -> tuple[ImageSet, ImageSet, str]:
    """The seed's own test split when it has one; otherwise a seeded split, stratified by label when possible."""
    data = seed.data
    if seed.test is not None and seed.test.any() and not seed.test.all():
        return (data.take(np.flatnonzero(~seed.test)), data.take(np.flatnonzero(seed.test)),
                f"held out: the seed's own test split ({int(seed.test.sum())} images)")
    if len(data) < 10:
        raise UserError(f"seed.source: {len(data)} usable images are too few to learn from and to keep a holdout; "
                        "give at least 10")
    n_hold = max(1, int(round(len(data) * holdout_fraction)))
    order = np.arange(len(data))
    stratified = False
    if data.labels is not None:
        from sklearn.model_selection import train_test_split

        try:
            tr, ho = train_test_split(order, test_size=n_hold, stratify=data.labels, random_state=split_seed)
            stratified = True
        except ValueError:  # a class with one image, or fewer held-out images than classes
            pass
    if not stratified:
        perm = np.random.default_rng(split_seed).permutation(len(data))
        tr, ho = perm[n_hold:], perm[:n_hold]
    train, holdout = data.take(np.sort(tr)), data.take(np.sort(ho))
    if data.labels is not None and set(train.classes) != set(data.classes):
        raise UserError("seed.source: a class has all its images in the holdout; give every class at least two "
                        f"images (classes: {', '.join(data.classes)})")
    how = "stratified by label" if stratified else "random"
    return train, holdout, f"held out: {n_hold} of {len(data)} images ({how}, quality.holdout_fraction " \
                           f"{holdout_fraction:g})"


def label_counts(recipe: Recipe, train: ImageSet, label_column: str) -> dict[str, int] | None:
    """Images per label: output.conditions (balance or counts) or the training split's label shares."""
    cond, rows = recipe.output.conditions, recipe.output.rows
    if train.labels is None:
        if cond is not None:
            raise UserError("output.conditions: the seed has no labels (set seed.label_column, or use one subfolder "
                            "per class)")
        return None
    classes = train.classes
    if cond is not None and cond.column != label_column:
        raise UserError(f"output.conditions.column: images are conditioned on their label {label_column!r}; got "
                        f"{cond.column!r}")
    if cond is not None and cond.counts:
        unknown = [k for k in cond.counts if k not in classes]
        if unknown:
            raise UserError(f"output.conditions.counts: {unknown[0]!r} is not a class; classes: {', '.join(classes)}")
        return {c: cond.counts[c] for c in classes if cond.counts.get(c, 0) > 0}
    if cond is not None and cond.balance:
        shares = np.ones(len(classes))
    else:
        shares = np.array([(train.labels == c).sum() for c in classes], dtype=float)
    # largest remainder: the counts add up to `rows` exactly
    exact = shares / shares.sum() * rows
    counts = np.floor(exact).astype(int)
    counts[np.argsort(-(exact - counts), kind="stable")[:rows - counts.sum()]] += 1
    return {c: int(n) for c, n in zip(classes, counts) if n > 0}


def label_folders(classes: tuple[str, ...]) -> dict[str, str]:
    """Label → folder name under images/, unique even when two labels clean up to the same name."""
    out, used = {}, set()
    for c in classes or ("",):
        name = safe_folder_name(c) if c else ""
        base, k = name, 1
        while name in used:
            k += 1
            name = f"{base}_{k}"
        used.add(name)
        out[c] = name
    return out


# ---------------------------------------------------------------- fit


def fit_generator(recipe: Recipe, params, sampling, train: ImageSet, size: int, channels: int, label_column: str,
                  device: str, ws: wsp.Workspace, base_dir: Path | None, console: Console) -> DiffusionGenerator:
    model_dir = ws.path("model")
    if (model_dir / "generator.json").exists():
        console.print("  resuming with the model already trained in this run")
        return DiffusionGenerator.load(model_dir, device=device)
    checkpoints = ws.path("checkpoints")
    gen = DiffusionGenerator(params, sampling, image_size=size, channels=channels, label_column=label_column,
                             device=device, time_budget=recipe.generator.time_budget,
                             random_state=derive_seed(recipe.random_seed, FIT_SEED_STREAM),
                             checkpoint_dir=checkpoints, base_dir=base_dir)
    total = params.max_steps if params.max_steps is not None else recipe.generator.time_budget
    unit = "steps" if params.max_steps is not None else "s"
    console.print(f"  training a diffusion UNet on {device} for up to "
                  f"{total:g} {unit}{' (fine-tuning ' + params.base_model + ')' if params.base_model else ''}")
    with Progress(TextColumn("  training"), BarColumn(), TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("fit", total=total, info="")

        def report(s: dict) -> None:
            done = s["step"] if params.max_steps is not None else min(s["elapsed"], total)
            progress.update(task, completed=done, info=f"step {s['step']} · loss {s['loss']:.4f}")

        gen.fit(train, progress=report)
    st = gen.fit_stats_
    console.print(f"  trained {st['steps']} steps in {st['seconds']:.0f}s (stopped by {st['stopped_by']}; "
                  f"loss {st['final_loss']})")
    tmp = model_dir.with_name("model.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    gen.save(tmp)
    os.replace(tmp, model_dir)
    shutil.rmtree(checkpoints, ignore_errors=True)  # the saved model supersedes them
    return gen


# ---------------------------------------------------------------- generate


def generate(recipe: Recipe, generator: DiffusionGenerator, shards: list[Shard], train: ImageSet, threshold: float,
             folders: dict[str, str], ws: wsp.Workspace, meta: dict, label_column: str,
             console: Console) -> list[ShardStats]:
    if recipe.execution.executor != "local":
        console.print("  images are sampled locally (execution.executor applies to tables)")
    total = sum(s.rows for s in shards)
    stats = []
    with Progress(TextColumn("  sampling"), BarColumn(), TextColumn("{task.completed}/{task.total} images"),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("sample", total=total)
        for shard in shards:
            done = committed(ws.work, shard)
            if done is None:
                done = generate_shard(generator, shard, train, threshold, folders, ws, meta, label_column,
                                      recipe.quality.max_rounds, lambda n: progress.advance(task, n))
            else:
                progress.advance(task, done.rows)
            stats.append(done)
    return stats


def generate_shard(generator: DiffusionGenerator, shard: Shard, train: ImageSet, threshold: float,
                   folders: dict[str, str], ws: wsp.Workspace, meta: dict, label_column: str, max_rounds: int,
                   advance) -> ShardStats:
    """Sample each label's images, drop near-copies of training images and sample again (bounded rounds), write
    the PNGs, then the shard's metadata part and stats (the part marks the shard done)."""
    stats = ShardStats(index=shard.index, requested=shard.rows)
    groups = shard.groups or (((), shard.rows),)
    rows, k = [], 0
    for g, (conditions, wanted) in enumerate(groups):
        need, drop_rate = wanted, 0.0
        for round_ in range(max_rounds):
            if need <= 0:
                break
            n = need if round_ == 0 else int(np.ceil(need / max(1e-3, 1 - drop_rate) * 1.05))
            df = generator.sample(n, seed=derive_seed(shard.seed, g, round_), conditions=dict(conditions) or None)
            copies = near_copies(np.stack(df["image"].to_list()), train.images, threshold)
            stats.sampled += len(df)
            stats.invalid += int(copies.sum())
            stats.rounds = max(stats.rounds, round_ + 1)
            drop_rate = float(copies.mean())
            keep = df[~copies].head(need)
            for _, r in keep.iterrows():
                label = r[label_column] if generator.labelled_ else ""
                folder = folders.get(label, "")
                image_id = f"{shard.index:05d}-{k:06d}"
                k += 1
                name = f"images/{folder}/{image_id}.png" if folder else f"images/{image_id}.png"
                write_bytes(ws.path(name), to_png(r["image"]))  # temporary name, then renamed
                row = {"file_name": name}
                if generator.labelled_:
                    row[label_column] = label
                row |= {"seed": int(r["seed"]), "shard": shard.index, "model": "model/",
                        "scheduler": generator.sampling.scheduler, "sampling_steps": generator.sampling.steps,
                        "guidance_scale": generator.sampling.guidance_scale}
                rows.append(row)
            advance(len(keep))
            need -= len(keep)
    if stats.invalid:
        stats.failed = {"near_copy": stats.invalid}
    stats.rows = len(rows)
    df = pd.DataFrame(rows, columns=_columns(generator, label_column))
    write_json(ws.path("shards", f"{shard.name}.json"), stats.to_dict())
    write_parquet(ws.path("data", f"{shard.name}.parquet"), df, {**meta, "shard": shard.index,
                                                                 "shard_seed": shard.seed})
    return stats


def _columns(generator: DiffusionGenerator, label_column: str) -> list[str]:
    return ["file_name", *([label_column] if generator.labelled_ else []), "seed", "shard", "model", "scheduler",
            "sampling_steps", "guidance_scale"]


def merge_metadata(work: Path, shards: list[Shard]) -> pd.DataFrame:
    parts = [pd.read_parquet(work / "data" / f"{s.name}.parquet") for s in shards]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def read_images(work: Path, table: pd.DataFrame, channels: int, label_column: str) -> ImageSet:
    if len(table) == 0:
        raise UserError("quality.filters.near_copy_distance: every sampled image was a near-copy of a training "
                        "image; lower the threshold or train longer")
    images = np.stack([read_png(work / f, channels) for f in table["file_name"]])
    labels = table[label_column].to_numpy(dtype=object) if label_column in table.columns else None
    return ImageSet(images, labels, tuple(table["file_name"]))


# ---------------------------------------------------------------- grade


def grade(recipe: Recipe, seed: ImageSeed, train: ImageSet, holdout: ImageSet, synthetic: ImageSet,
          stats: list[ShardStats], generator: DiffusionGenerator, threshold: float, split_note: str, threads: int,
          device: str) -> Report:
    requested = sum(s.requested for s in stats)
    sampled, dropped = sum(s.sampled for s in stats), sum(s.invalid for s in stats)
    quality = evaluate_images(train, holdout, synthetic, random_seed=derive_seed(recipe.random_seed,
                                                                                 METRIC_SEED_STREAM),
                              near_copy_distance=threshold, near_copies_dropped=dropped, sampled=sampled,
                              max_images=recipe.quality.metric_rows)
    gates = check_gates(quality.metrics(), dict(recipe.quality.gates))
    notes = [*seed.notes, *generator.base_notes_, *quality.notes]  # the CLI prints these as warnings
    if len(synthetic) < requested:
        gates.append(GateResult(gate="rows", metric="images_written", threshold=requested, value=len(synthetic),
                                passed=False))
        notes.append(f"only {len(synthetic)} of {requested} images were kept: {dropped} near-copies were dropped in "
                     f"{max(s.rounds for s in stats)} rounds")
    st = generator.fit_stats_
    training = {k: st.get(k) for k in ("steps", "seconds", "clock", "stopped_by", "images_seen", "final_loss",
                                       "resumed_from_step", "parameters", "precision", "device", "train_images",
                                       "base_model")}
    training |= {"model": generator.params.model_dump(mode="json"), "loss curve": loss_plot(st.get("losses", [])),
                 "sampling": generator.sampling.model_dump(mode="json")}
    validation = {"images_requested": requested, "images_written": len(synthetic), "images_sampled": sampled,
                  "near_copies_dropped": dropped, "near_copy_distance": threshold,
                  "rounds": max((s.rounds for s in stats), default=0), "seed_files_skipped": seed.skipped,
                  "shards": [s.to_dict() for s in stats]}
    return Report(title=f"synthforge · {recipe.name}", created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  status=report_status(gates), gates=gates,
                  sections={"images": quality.section(), "training": training},
                  validation=validation, notes=notes,
                  run={"recipe": recipe.name, "vertical": recipe.vertical, "modality": "image",
                       "images": len(synthetic), "seed_images_train": len(train), "seed_images_holdout": len(holdout),
                       "split": split_note,
                       "random_seed": recipe.random_seed, "threads": threads})


def _versions() -> dict:
    from importlib import metadata

    out = versions()
    for name in ("diffusers", "pillow", "safetensors"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out
