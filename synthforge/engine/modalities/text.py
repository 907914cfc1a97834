"""Text: seed documents (text, label and metadata columns) → a causal LM → every drawn document through the filters
(memorisation, near-duplicates, degenerate output, PII, label consistency), then Great Expectations (not null, label
set, length range) → graded by TSTR, augmentation uplift, memorisation and embedding detection against the holdout.
"""

import html
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from synthforge.data.sources import read_seed
from synthforge.data.split import holdout_split
from synthforge.engine.modality import Graded, Seed, report_fit
from synthforge.engine.shards import Shard, ShardStats, Verdict, counts_for
from synthforge.engine.text_select import FLUENCY_BAR, select_text_family
from synthforge.engine.workspace import user_expectations, write_suite
from synthforge.errors import UserError
from synthforge.families.causal_lm import CausalLMGenerator, check_base_model, check_params, check_sampling
from synthforge.quality import expectations as ex
from synthforge.quality.text_filters import FilterConfig, LabelJudge, TextFilters
from synthforge.quality.text_selection import choose
from synthforge.randomness import FIT_SEED_STREAM, JUDGE_SEED_STREAM, SPLIT_SEED_STREAM, derive_seed
from synthforge.recipe.schema import TEXT_FAMILIES, Recipe
from synthforge.sinks.files import read_parts, write_json

SELECTION_FILE = "selection.json"  # family: auto's candidates and scores, beside the chosen model
FIRST_KEEP_RATE = 0.9  # share of a first draw expected to survive the filters, until measured


class TextAcceptor:
    """The filters, then Great Expectations on what they kept. Remembers the shard's kept documents to drop repeats
    (within a shard: shards are independent, so any executor writes the same documents) and the first drafts of
    each group as drawn (graded unfiltered in the report)."""
    first_keep_rate = FIRST_KEEP_RATE

    def __init__(self, filters: TextFilters, suite_json: dict, text_column: str, label_column: str | None):
        self.filters, self.suite_json = filters, suite_json
        self.text_column, self.label_column = text_column, label_column
        self._suite = None

    @property
    def pool(self) -> float:
        return self.filters.config.pool

    def __getstate__(self):
        return {**self.__dict__, "_suite": None}

    def start(self, shard: Shard) -> None:
        self.filters.forget()

    def accept(self, batch: pd.DataFrame, stats: ShardStats, group: int, wanted: int) -> Verdict:
        texts = batch[self.text_column].tolist()
        labels = batch[self.label_column].tolist() if self.label_column else None
        drafts = stats.extra.setdefault("drafts", [])
        room = wanted - sum(1 for d in drafts if d[2] == group)
        drafts += [[t, lab, group] for t, lab in zip(texts[:max(0, room)], (labels or [None] * len(texts)))]
        res = self.filters.apply(texts, labels)
        stats.extra["masked"] = dict(Counter(stats.extra.get("masked", {})) + res.masked)
        stats.extra["memorised"] = stats.extra.get("memorised", 0) + res.memorised
        frame = batch.copy()
        frame[self.text_column] = res.texts
        keep, failed, table_failures = res.keep.copy(), Counter(res.dropped), []
        if keep.any():
            if self._suite is None:
                self._suite = ex.suite_from_json(self.suite_json)
            idx = keep.nonzero()[0]
            v = ex.validate(self._suite, frame.iloc[idx])
            keep[idx[~v.valid]] = False
            failed.update(v.failed)
            table_failures = v.table_failures
        return Verdict(keep=keep, frame=frame, failed=dict(failed), table_failures=table_failures)

    def finish(self, rows: pd.DataFrame, shard: Shard, stats: ShardStats, folder: Path) -> pd.DataFrame:
        """From a pool, the documents each group wants, chosen by the judge (and diversity); else all rows."""
        if self.pool <= 1 or rows.empty:
            return rows
        keep = []
        for conditions, wanted in shard.groups or (((), shard.rows),):
            mine = np.ones(len(rows), dtype=bool)
            for col, value in conditions:
                mine &= rows[col].astype(str).to_numpy() == str(value)
            idx = np.flatnonzero(mine)
            label = dict(conditions).get(self.label_column) if self.label_column else None
            picked = choose(rows[self.text_column].iloc[idx].tolist(), label, wanted, self.filters.judge,
                            self.filters.config.diversity)
            keep += idx[picked].tolist()
        stats.extra["pool"] = len(rows)
        return rows.iloc[sorted(keep)].reset_index(drop=True)


class Text:
    name, unit = "text", "documents"

    def check(self, recipe: Recipe) -> None:
        if recipe.generator.family not in ("auto", *TEXT_FAMILIES):
            raise UserError(f"generator.family: {recipe.generator.family!r} does not generate text; use one of "
                            f"{', '.join(TEXT_FAMILIES)}")
        check_base_model(family_params(recipe))
        check_sampling(recipe.output.sampling)
        filters = FilterConfig.from_recipe(recipe.quality.filters)
        if not recipe.seed.text_column:
            raise UserError("seed.text_column: required for a text run (the column holding the documents)")
        if filters.label_consistency is not None and not recipe.seed.label_column:
            raise UserError("quality.filters.label_consistency: needs seed.label_column")

    def load(self, recipe: Recipe, base_dir: Path | None) -> Seed:
        params = family_params(recipe)
        seed = read_seed(recipe.seed.source, recipe.seed.format, base_dir, recipe.seed.max_rows)
        frame, notes = prepare(seed.frame, recipe, params.condition_columns)
        train, holdout = split_text(frame, recipe)
        label = recipe.seed.label_column
        groups = condition_groups(recipe, train, [c for c in [label, *params.condition_columns] if c])
        suite(recipe, train, [c for c in [label, *params.condition_columns] if c])  # the user's expectations
        labels = [f"{label}: " + ", ".join(f"{k} {v}" for k, v in train[label].value_counts().items())] \
            if label else []
        return Seed(path=seed.path, sha256=seed.sha256, train=train, holdout=holdout,
                    rows=recipe.output.rows if groups is None else sum(groups.values()), groups=groups,
                    summary=f"{len(frame)} seed documents ({len(train)} train, {len(holdout)} held out)",
                    manifest={"path": str(seed.path), "sha256": seed.sha256, "rows": len(seed.frame),
                              "columns": seed.frame.shape[1]},
                    notes=notes, details=labels, state=frame)

    def fit(self, recipe: Recipe, seed: Seed, *, device: str, checkpoints: Path, console: Console
            ) -> CausalLMGenerator:
        params = family_params(recipe)
        if device == "mps":
            device = "cpu"  # the sampling loop's torch.Generator lives on the CPU; MPS would gain little here
        checkpoints.mkdir(parents=True, exist_ok=True)
        if (checkpoints / "state.json").exists():
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
                    report_fit(p)  # the service's job events: one per epoch (every step would flood them)

            def make(family: str, values: dict, budget: float, random_state: int, ckpt=None) -> CausalLMGenerator:
                sampling = check_sampling(recipe.output.sampling)
                if family == "prompted":  # no null prefix to guide away from: auto's prompted candidate is unguided
                    sampling = sampling.model_copy(update={"guidance": 1.0})
                return CausalLMGenerator(check_params(values, family), text_column=recipe.seed.text_column,
                                         label_column=recipe.seed.label_column,
                                         sampling=sampling, device=device,
                                         time_budget=budget, random_state=random_state, checkpoint_dir=ckpt,
                                         on_progress=on_progress)

            if recipe.generator.family == "auto":
                gen, cands = select_text_family(
                    seed.train, params=recipe.generator.params, make=make, text_column=recipe.seed.text_column,
                    label_column=recipe.seed.label_column, device=device, time_budget=recipe.generator.time_budget,
                    random_seed=recipe.random_seed, console=console,
                    run_documents=int(seed.rows * FilterConfig.from_recipe(recipe.quality.filters).pool),
                    fluency_bar=fluency_bar(recipe.quality.gates))
                gen.selection_ = [c.row() for c in cands]
                console.print(f"  auto chose {gen.model_name}: {next(c.why for c in cands if c.chosen)}")
                return gen
            gen = make(recipe.generator.family, recipe.generator.params, recipe.generator.time_budget,
                       derive_seed(recipe.random_seed, FIT_SEED_STREAM), checkpoints)
            gen.fit(seed.train)
        info = gen.fit_info_
        if params.mode == "prompt":
            console.print(f"  {gen.model_name}: no training, {info['train_docs']} seed documents as examples")
            return gen
        best = f", best epoch {info['best_epoch']}" if info["best_epoch"] is not None else ""  # none without val
        console.print(f"  trained {gen.model_name}: {info['epochs']} epochs, {info['steps']} steps, stopped by "
                      f"{info['stopped']}{best} ({info['train_seconds']:.0f}s)")
        return gen

    def load_model(self, folder: Path, *, device: str) -> CausalLMGenerator:
        gen = CausalLMGenerator.load(folder, trusted=True, device=device)  # trusted: this run wrote it
        if (folder / SELECTION_FILE).exists():
            gen.selection_ = json.loads((folder / SELECTION_FILE).read_text())
        return gen

    def save_model(self, generator: CausalLMGenerator, folder: Path) -> None:
        generator.save(folder)
        if getattr(generator, "selection_", None):
            write_json(Path(folder) / SELECTION_FILE, generator.selection_)

    def acceptor(self, recipe: Recipe, seed: Seed, generator: CausalLMGenerator, work: Path) -> TextAcceptor:
        text_col, label_col = recipe.seed.text_column, recipe.seed.label_column
        s = ex.suite_json(suite(recipe, seed.train, generator.columns))
        write_suite(work, "suite.json", s, seed.train, user_expectations(recipe))
        fcfg = FilterConfig.from_recipe(recipe.quality.filters)
        judge = None
        if label_col and (fcfg.label_consistency is not None or fcfg.pool > 1):
            judge = LabelJudge(seed.train[text_col].tolist(), seed.train[label_col].tolist(),
                               derive_seed(recipe.random_seed, JUDGE_SEED_STREAM) % (2**31),
                               features=tuple(fcfg.judge.split("+")))
        return TextAcceptor(TextFilters(fcfg, seed.state[text_col].tolist(), judge), s, text_col, label_col)

    def meta(self, generator: CausalLMGenerator) -> dict:
        return {"model": generator.model_name}

    def evaluate(self, recipe: Recipe, seed: Seed, generator: CausalLMGenerator, work: Path,
                 stats: list[ShardStats], *, metric_seed: int) -> Graded:
        from synthforge.quality.text_metrics import evaluate_text, text_section

        text_col, label_col = recipe.seed.text_column, recipe.seed.label_column
        fcfg = FilterConfig.from_recipe(recipe.quality.filters)
        synthetic = read_parts(work)
        filt = summarise(stats)
        if len(synthetic) == 0:
            raise UserError(f"quality.filters: no synthetic document passed the filters and validation in "
                            f"{recipe.quality.max_rounds} rounds; dropped: {filt['dropped']}")
        drafts = pd.DataFrame([d[:2] for s in stats for d in s.extra.get("drafts", [])],
                              columns=[text_col, label_col or "_"])
        quality = evaluate_text(seed.train, seed.holdout, synthetic, text_column=text_col, label_column=label_col,
                                seed_docs=seed.state[text_col].tolist(), memorisation_ngram=fcfg.memorisation_ngram,
                                filters=filt, random_seed=metric_seed, drafts=drafts if label_col else None,
                                generator_base=getattr(generator, "base_", None))  # picks the fluency judge
        model = {"name": generator.model_name, "fit": generator.fit_info_, "history": generator.history_,
                 "sampling": generator.sampling_config.model_dump(mode="json")}
        return Graded(metrics=quality.metrics, rows_written=len(synthetic),
                      sections={"text": text_section(quality, model),
                                "selection": getattr(generator, "selection_", None) or []},
                      notes=list(quality.notes),
                      validation={"expectations": "expectations/suite.json"},
                      run={"model": generator.model_name},
                      manifest={"model": generator.model_name, "base_model": getattr(generator, "base_", None),
                                "precision": generator.fit_info_.get("precision", "fp32"),
                                "generation": {"tokens": filt["tokens"], "seconds": filt["seconds"],
                                               "tokens_per_second": filt["tokens_per_s"]}})


def family_params(recipe: Recipe):
    """`generator.params` checked for the recipe's family (auto: causal_lm, whose default is the scratch model)."""
    family = recipe.generator.family
    return check_params(recipe.generator.params, "causal_lm" if family == "auto" else family)


def summarise(stats: list[ShardStats]) -> dict:
    """What the filters did over the whole run (the report's filter table)."""
    dropped, masked = Counter(), Counter()
    for s in stats:
        dropped.update(s.failed)
        masked.update(s.extra.get("masked", {}))
    tokens = int(sum(s.extra.get("tokens", 0) for s in stats))
    seconds = sum(s.extra.get("seconds", 0.0) for s in stats)
    return {"sampled": sum(s.sampled for s in stats), "kept": sum(s.rows for s in stats),
            "requested": sum(s.requested for s in stats), "rounds": max((s.rounds for s in stats), default=0),
            "dropped": dict(dropped.most_common()), "masked": dict(masked.most_common()),
            "memorised": sum(s.extra.get("memorised", 0) for s in stats), "tokens": tokens,
            "seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 1) if seconds else None}


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
    out[s.text_column] = out[s.text_column].map(lambda t: html.unescape(str(t)).replace("\r\n", "\n").strip()
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
    return holdout_split(df, recipe.quality.holdout_fraction, derive_seed(recipe.random_seed, SPLIT_SEED_STREAM),
                         "documents")


def condition_groups(recipe: Recipe, train: pd.DataFrame, columns: list[str]) -> dict | None:
    cond = recipe.output.conditions
    if cond is None:
        return None
    if cond.column not in columns:
        raise UserError(f"output.conditions.column: {cond.column!r} is not conditioned on; choose "
                        f"{' or '.join(columns) or 'a seed.label_column first'}")
    return counts_for(cond.column, sorted(train[cond.column].astype(str).unique()), recipe.output.rows,
                      balance=cond.balance, counts=cond.counts)


def suite(recipe: Recipe, train: pd.DataFrame, columns: list[str]):
    """Not null, label (and metadata) sets from the seed, text length within the seed's range, plus the recipe's."""
    text_col = recipe.seed.text_column
    lengths = train[text_col].str.len()
    kinds = {text_col: "text", **{c: "categorical" for c in columns}}
    user = (("expect_column_value_lengths_to_be_between",
             {"column": text_col, "min_value": int(lengths.min()), "max_value": int(lengths.max())}),
            ("expect_column_values_to_not_be_null", {"column": text_col}),
            *((e.type, dict(e.kwargs)) for e in recipe.quality.expectations))
    return ex.build_suite(f"{recipe.name}_suite", kinds, train[[text_col, *columns]],
                          auto=recipe.quality.auto_expectations, user=user)


TEXT = Text()


def fluency_bar(gates: dict | None) -> tuple[float, float]:
    """What `auto` holds its candidates to: the recipe's own fluency gates, else issue 33's bar."""
    gates = gates or {}
    return (float(gates.get("max_perplexity_ratio", FLUENCY_BAR[0])),
            float(gates.get("max_nonword_excess", FLUENCY_BAR[1])))
