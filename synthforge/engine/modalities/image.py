"""Images: a folder, an image table or a bundled example → a diffusion UNet (trained, or fine-tuned from a saved one)
→ every drawn image checked against the training images (near-copies dropped) → PNGs + metadata → offline image
metrics against the holdout.

Output layout (a Hugging Face `imagefolder`):

    images/<label>/<id>.png     one PNG per image (written under a temporary name, then renamed)
    metadata.parquet            file_name, label, seed, model, sampling_steps, ... (file_name relative to the folder)
    data/part-*.parquet         the same rows per shard (what RunResult.data() reads)
"""

from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from synthforge.data.images import ImageSeed, ImageSet, read_image_seed, read_png, safe_folder_name, to_png
from synthforge.engine.modality import Graded, Seed, report_fit
from synthforge.engine.shards import Shard, ShardStats, Verdict, counts_for
from synthforge.errors import UserError
from synthforge.families.diffusion import DiffusionGenerator, parse_filters, parse_params, parse_sampling
from synthforge.quality.image_metrics import near_copies
from synthforge.randomness import FIT_SEED_STREAM, SPLIT_SEED_STREAM, derive_seed
from synthforge.recipe.schema import Recipe
from synthforge.sinks.files import read_parts, write_bytes, write_parquet

METADATA = "metadata.parquet"


class ImageAcceptor:
    """Drops near-copies of training images; writes the kept images as PNGs and returns their metadata rows."""
    first_keep_rate = 1.0
    pool = 1.0

    def __init__(self, train_images: np.ndarray, threshold: float, folders: dict[str, str], label_column: str,
                 labelled: bool, sampling: dict):
        self.train_images, self.threshold, self.folders = train_images, threshold, folders
        self.label_column, self.labelled, self.sampling = label_column, labelled, sampling
        self.write = True  # False (in-memory augmentation): the kept images come back as arrays, nothing written

    def start(self, shard: Shard) -> None:
        pass

    def accept(self, batch: pd.DataFrame, stats: ShardStats, group: int, wanted: int) -> Verdict:
        copies = near_copies(np.stack(batch["image"].to_list()), self.train_images, self.threshold)
        return Verdict(keep=~copies, frame=batch, failed={"near_copy": int(copies.sum())} if copies.any() else {})

    def finish(self, rows: pd.DataFrame, shard: Shard, stats: ShardStats, folder: Path) -> pd.DataFrame:
        if not self.write:
            return rows.reindex(columns=["image", *([self.label_column] if self.labelled else []), "seed"])
        out = []
        for k, r in enumerate(rows.to_dict("records")):
            label = r[self.label_column] if self.labelled else ""
            sub = self.folders.get(label, "")
            image_id = f"{shard.index:05d}-{k:06d}"
            name = f"images/{sub}/{image_id}.png" if sub else f"images/{image_id}.png"
            write_bytes(Path(folder) / name, to_png(r["image"]))  # temporary name, then renamed
            row = {"file_name": name, **({self.label_column: label} if self.labelled else {})}
            out.append(row | {"seed": int(r["seed"]), "shard": shard.index, "model": "model/", **self.sampling})
        columns = ["file_name", *([self.label_column] if self.labelled else []), "seed", "shard", "model",
                   *self.sampling]
        return pd.DataFrame(out, columns=columns)


class Image:
    name, unit = "image", "images"

    def check(self, recipe: Recipe) -> None:
        parse_params(recipe.generator.params)
        parse_sampling(recipe.output.sampling)
        parse_filters(recipe.quality.filters)

    def load(self, recipe: Recipe, base_dir: Path | None) -> Seed:
        seed = read_image_seed(recipe.seed.source, base=base_dir, image_size=recipe.seed.image_size,
                               channels=recipe.seed.channels, label_column=recipe.seed.label_column,
                               split_column=recipe.seed.split_column, drop=recipe.seed.drop,
                               max_rows=recipe.seed.max_rows, random_seed=recipe.random_seed)
        train, holdout, split_note = split_images(seed, recipe.quality.holdout_fraction,
                                                  derive_seed(recipe.random_seed, SPLIT_SEED_STREAM))
        label_column = recipe.seed.label_column or "label"
        counts = label_counts(recipe, train, label_column)
        groups = None if counts is None else {((label_column, c),): n for c, n in counts.items()}
        _, size, _, channels = seed.data.images.shape
        return Seed(path=seed.path, sha256=seed.sha256, train=train, holdout=holdout,
                    rows=recipe.output.rows if counts is None else sum(counts.values()), groups=groups,
                    summary=f"{len(seed.data)} images {size}×{size}×{channels} ({len(train)} train, "
                            f"{len(holdout)} held out)",
                    manifest={"path": str(seed.path), "sha256": seed.sha256, "images": len(seed.data),
                              "skipped": seed.skipped},
                    notes=list(seed.notes),
                    details=[split_note, f"classes: {', '.join(train.classes) or '(unlabelled)'}",
                             "to generate: " + (', '.join(f'{c} {n}' for c, n in counts.items()) if counts
                                                else str(recipe.output.rows))],
                    state={"seed": seed, "split": split_note, "base_dir": base_dir, "label_column": label_column},
                    files={"seed.json": {
                        "path": str(seed.path), "images": len(seed.data), "image_size": size, "channels": channels,
                        "classes": list(train.classes), "train": len(train), "holdout": len(holdout),
                        "split": split_note, "skipped": seed.skipped, "skipped_examples": list(seed.skipped_examples),
                        "notes": list(seed.notes)}})

    def fit(self, recipe: Recipe, seed: Seed, *, device: str, checkpoints: Path, console: Console
            ) -> DiffusionGenerator:
        params = parse_params(recipe.generator.params)
        _, size, _, channels = seed.train.images.shape
        gen = DiffusionGenerator(params, parse_sampling(recipe.output.sampling), image_size=size, channels=channels,
                                 label_column=seed.state["label_column"], device=device,
                                 time_budget=recipe.generator.time_budget,
                                 random_state=derive_seed(recipe.random_seed, FIT_SEED_STREAM),
                                 checkpoint_dir=checkpoints, base_dir=seed.state["base_dir"])
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
                report_fit({**s, "steps": params.max_steps})

            gen.fit(seed.train, progress=report)
        st = gen.fit_info_
        console.print(f"  trained {st['steps']} steps in {st['seconds']:.0f}s (stopped by {st['stopped_by']}; "
                      f"loss {st['final_loss']})")
        return gen

    def load_model(self, folder: Path, *, device: str) -> DiffusionGenerator:
        return DiffusionGenerator.load(folder, trusted=True, device=device)

    def save_model(self, generator: DiffusionGenerator, folder: Path) -> None:
        generator.save(folder)

    def acceptor(self, recipe: Recipe, seed: Seed, generator: DiffusionGenerator, work: Path) -> ImageAcceptor:
        s = generator.sampling
        return ImageAcceptor(seed.train.images, parse_filters(recipe.quality.filters).near_copy_distance,
                             label_folders(seed.train.classes), seed.state["label_column"], generator.labelled_,
                             {"scheduler": s.scheduler, "sampling_steps": s.steps,
                              "guidance_scale": s.guidance_scale})

    def meta(self, generator: DiffusionGenerator) -> dict:
        return {}

    def evaluate(self, recipe: Recipe, seed: Seed, generator: DiffusionGenerator, work: Path,
                 stats: list[ShardStats], *, metric_seed: int) -> Graded:
        from synthforge.quality.image_metrics import evaluate_images, image_section

        image_seed: ImageSeed = seed.state["seed"]
        threshold = parse_filters(recipe.quality.filters).near_copy_distance
        table = read_parts(work)
        if len(table) == 0:
            raise UserError("quality.filters.near_copy_distance: every sampled image was a near-copy of a training "
                            "image; lower the threshold or train longer")
        channels = image_seed.data.images.shape[3]
        label_column = seed.state["label_column"]
        synthetic = ImageSet(np.stack([read_png(work / f, channels) for f in table["file_name"]]),
                             table[label_column].to_numpy(dtype=object) if label_column in table.columns else None,
                             tuple(table["file_name"]))
        sampled, dropped = sum(s.sampled for s in stats), sum(s.invalid for s in stats)
        quality = evaluate_images(seed.train, seed.holdout, synthetic, random_seed=metric_seed,
                                  near_copy_distance=threshold, near_copies_dropped=dropped, sampled=sampled,
                                  max_images=recipe.quality.metric_rows)
        st = generator.fit_info_
        training = {k: st.get(k) for k in ("steps", "seconds", "clock", "stopped_by", "images_seen", "final_loss",
                                           "resumed_from_step", "parameters", "precision", "device", "train_images",
                                           "base_model")}
        training |= {"model": generator.params.model_dump(mode="json"), "losses": list(st.get("losses", [])),
                     "sampling": generator.sampling.model_dump(mode="json")}
        write_parquet(work / METADATA, table, {"recipe": recipe.name, "random_seed": recipe.random_seed,
                                               "family": generator.family})
        return Graded(metrics=quality.metrics(), rows_written=len(table),
                      sections={"image": image_section(quality, training)},
                      notes=[*generator.base_notes_, *quality.notes],
                      validation={"near_copies_dropped": dropped, "near_copy_distance": threshold,
                                  "seed_files_skipped": image_seed.skipped},
                      run={"images": len(table), "split": seed.state["split"]},
                      manifest={"images": len(table), "precision": st.get("precision", "fp32")})


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
    cond = recipe.output.conditions
    if train.labels is None:
        if cond is not None:
            raise UserError("output.conditions: the seed has no labels (set seed.label_column, or use one subfolder "
                            "per class)")
        return None
    if cond is not None and cond.column != label_column:
        raise UserError(f"output.conditions.column: images are conditioned on their label {label_column!r}; got "
                        f"{cond.column!r}")
    classes = list(train.classes)
    groups = counts_for(label_column, classes, recipe.output.rows, balance=cond is not None and cond.balance,
                        counts=cond.counts if cond is not None else None,
                        shares=[(train.labels == c).sum() for c in classes])
    return {g[0][1]: n for g, n in groups.items()}


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


IMAGE = Image()
