"""In-memory augmentation for notebooks and pipelines, for every modality: fit on what the caller holds and return
validated synthetic data shaped like it.

    augment(df, 1000, target="Status", balance=True)           # a table: rows with df's columns and dtypes
    augment(texts, 600, labels=ratings, balance=True)            # text: a frame of text (+ label) columns
    augment(images, 200, labels=classes)  # images: uint8 (n, h, w[, c]) arrays or a folder → a frame of image arrays

The same modality objects as `synthforge run` do the fitting and the accepting (Great Expectations for rows, the
text filters, the near-copy check), through the same shard loop; there is no holdout and no report: grade the
result with `synthforge.evaluate` or a recipe run when it matters.
"""

import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console

from synthforge.data.profile import Profile
from synthforge.engine.modality import Seed
from synthforge.engine.shards import counts_for, generate_shard, plan_shards
from synthforge.errors import UserError
from synthforge.families import tabular_families as tf
from synthforge.families.identifiers import GeneratedColumns
from synthforge.quality import expectations as ex
from synthforge.randomness import FIT_SEED_STREAM, derive_seed
from synthforge.recipe import parse_recipe


def augment(data, n: int, *, target: str | None = None, labels=None, balance: bool = False,
            family: str | None = None, params: dict | None = None, random_seed: int = 0, max_rounds: int = 5,
            time_budget: float | None = None, progress: bool = False):
    """`n` synthetic items like `data`: a DataFrame gives rows (every column of `data`, in its order and dtype; ids
    and personal data generated fresh; `target` names the column `balance=True` spreads evenly); a list or Series of
    strings gives documents (with `labels`, one per text, they are generated per label); uint8 image arrays or an
    image folder give images (with `labels`). `family` as a recipe's `generator.family` (default: autoregressive
    for tables, auto for texts and images). Quiet unless `progress=True`."""
    if n <= 0:
        raise UserError(f"n: must be > 0, got {n}")
    started = time.perf_counter()
    say = (lambda m: print(f"augment: {m} ({time.perf_counter() - started:.0f}s)", file=sys.stderr)) if progress \
        else (lambda m: None)
    if isinstance(data, pd.DataFrame):
        if labels is not None:
            raise UserError("labels: for a table, name the label column with target=")
        return _table(data, n, target, balance, family or "autoregressive", params, random_seed, max_rounds, say)
    if _is_texts(data):
        return _texts(list(data), labels, n, balance, family, params, random_seed, max_rounds, time_budget, say)
    if isinstance(data, (str, Path, np.ndarray)):
        return _images(data, labels, n, balance, family, params, random_seed, max_rounds, time_budget, say)
    raise UserError(f"data: a DataFrame (rows), a list of strings (texts) or uint8 image arrays / an image folder; "
                    f"got {type(data).__name__}")


def _is_texts(data) -> bool:
    return isinstance(data, (list, tuple, pd.Series)) and len(data) > 0 and all(isinstance(t, str) for t in data)


def _table(df, n, target, balance, family, params, random_seed, max_rounds, say) -> pd.DataFrame:
    from synthforge.engine.modalities.tabular import TabularAcceptor

    if balance and target is None:
        raise UserError("balance=True needs target=<column>")
    profile = Profile.from_frame(df, target=target)
    data = profile.prepare(df)
    groups = counts_for(target, list(pd.unique(data[target].dropna())), n, balance=True) if balance else None
    params = dict(params or {})
    if balance and family == "autoregressive":
        params.setdefault("order", [target])  # the target drawn first: balanced by construction, no rejection
    tf.check_params(family, params)
    say(f"fitting {family} on {len(data)} rows x {data.shape[1]} columns")
    gen = tf.make(family, profile, params, random_state=derive_seed(random_seed, FIT_SEED_STREAM)).fit(data)
    say("sampling and validating")
    acceptor = TabularAcceptor(ex.suite_json(ex.build_suite("augment", profile.metric_kinds(), data)),
                               GeneratedColumns.fit(df, profile, seed=random_seed))
    out, _ = generate_shard(gen, acceptor, plan_shards(n, n, random_seed, groups)[0], max_rounds)
    say(f"{len(out)} rows")
    return like(out, df, profile)


def _recipe(modality: str, seed: dict, n: int, balance: bool, family, params, random_seed: int, time_budget):
    generator: dict[str, Any] = {"params": dict(params or {})}
    if family is not None:
        generator["family"] = family
    if time_budget is not None:
        generator["time_budget"] = time_budget
    output: dict[str, Any] = {"rows": n}
    if balance:
        output["conditions"] = {"column": "label", "balance": True}
    return parse_recipe({"name": "augment", "modality": modality, "seed": {"source": "memory", **seed},
                         "generator": generator, "output": output, "random_seed": random_seed})


def _memory_seed(train, rows: int, groups, state) -> Seed:
    return Seed(path=Path("<memory>"), sha256="", train=train, holdout=None, rows=rows, groups=groups,
                summary=f"{len(train)} items in memory", manifest={}, state=state)


def _texts(texts, labels, n, balance, family, params, random_seed, max_rounds, time_budget, say) -> pd.DataFrame:
    from synthforge.engine.modalities.text import TEXT, condition_groups, prepare

    if balance and labels is None:
        raise UserError("balance=True needs labels= (one per text)")
    frame = pd.DataFrame({"text": texts, **({"label": list(labels)} if labels is not None else {})})
    recipe = _recipe("text", {"text_column": "text", **({"label_column": "label"} if labels is not None else {})},
                     n, balance, family, params, random_seed, time_budget)
    TEXT.check(recipe)
    frame, _ = prepare(frame, recipe, ())
    groups = condition_groups(recipe, frame, ["label"] if labels is not None else [])
    seed = _memory_seed(frame, n, groups, frame)
    with tempfile.TemporaryDirectory() as tmp:
        say(f"training a causal LM on {len(frame)} texts")
        gen = TEXT.fit(recipe, seed, device="cpu", checkpoints=Path(tmp) / "checkpoints", console=_quiet())
        say("sampling and filtering")
        out, _ = generate_shard(gen, TEXT.acceptor(recipe, seed, gen, Path(tmp)),
                                plan_shards(n, n, random_seed, groups)[0], max_rounds)
    say(f"{len(out)} texts")
    return out.reindex(columns=list(frame.columns)).reset_index(drop=True)  # what came in: text (+ label)


def _images(data, labels, n, balance, family, params, random_seed, max_rounds, time_budget, say) -> pd.DataFrame:
    from synthforge.data.images import ImageSet, read_image_seed
    from synthforge.engine.modalities.image import IMAGE, label_counts

    if isinstance(data, np.ndarray):
        arrays = data[..., None] if data.ndim == 3 else data
        if arrays.dtype != np.uint8 or arrays.ndim != 4:
            raise UserError(f"data: images as uint8 (n, h, w) or (n, h, w, c); got {data.dtype} {data.shape}")
        train = ImageSet(arrays, None if labels is None else np.asarray([str(v) for v in labels], dtype=object))
    else:
        if labels is not None:
            raise UserError("labels: an image folder takes its labels from its subfolders")
        train = read_image_seed(str(data), random_seed=random_seed).data
    recipe = _recipe("image", {}, n, balance, family, params, random_seed, time_budget)
    IMAGE.check(recipe)
    counts = label_counts(recipe, train, "label")
    groups = None if counts is None else {(("label", c),): k for c, k in counts.items()}
    seed = _memory_seed(train, n, groups, {"base_dir": None, "label_column": "label"})
    with tempfile.TemporaryDirectory() as tmp:
        say(f"training a diffusion UNet on {len(train)} images")
        gen = IMAGE.fit(recipe, seed, device="cpu", checkpoints=Path(tmp) / "checkpoints", console=_quiet())
        say("sampling and dropping near-copies")
        acceptor = IMAGE.acceptor(recipe, seed, gen, Path(tmp))
        acceptor.write = False
        out, _ = generate_shard(gen, acceptor, plan_shards(n, n, random_seed, groups)[0], max_rounds)
    say(f"{len(out)} images")
    return out.reset_index(drop=True)


def _quiet() -> Console:
    return Console(stderr=True, quiet=True)


def like(out: pd.DataFrame, df: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """`out` with `df`'s columns, order and dtypes; the columns left out of the model come back empty, said once."""
    left_out = {c.name: c.dropped for c in profile.columns if c.dropped}
    if left_out:
        why = "; ".join(f"{name}: {reason}" for name, reason in left_out.items())
        warnings.warn(f"augment: columns {list(left_out)} are not modelled ({why}); "
                      "they are empty in the synthetic rows", stacklevel=4)
    out = out.reindex(columns=df.columns)
    for col in df.columns:
        if out[col].dtype != df[col].dtype:
            try:
                out[col] = out[col].astype(df[col].dtype)
            except (TypeError, ValueError):  # e.g. missing values in an int column: keep the wider dtype
                pass
    return out
