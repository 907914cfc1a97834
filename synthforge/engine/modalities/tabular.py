"""Tables: a profiled seed, a tabular family (or `auto` choosing one), Great Expectations per drawn batch, ids and
personal data generated fresh, graded by fidelity / detection / privacy / utility against the holdout."""

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rich.console import Console

from synthforge.data.profile import Profile
from synthforge.data.sources import read_seed
from synthforge.data.split import holdout_split
from synthforge.engine.modality import Graded, Seed, report_fit
from synthforge.engine.workspace import PRIVATE, user_expectations, write_released_suite, write_suite
from synthforge.engine.shards import Shard, ShardStats, Verdict, counts_for
from synthforge.errors import UserError
from synthforge.families import tabular_families as tf
from synthforge.families.identifiers import GENERATED_FILE, GeneratedColumns
from synthforge.quality import expectations as ex
from synthforge.quality.identifiers import grade_identifiers
from synthforge.quality.report_model import ColumnReport
from synthforge.randomness import FIT_SEED_STREAM, GENERATED_SEED_STREAM, SPLIT_SEED_STREAM, derive_seed
from synthforge.recipe.schema import Recipe
from synthforge.sinks.files import read_parts, write_json

SELECTION_FILE = "selection.json"


@dataclass
class TabularModel:
    """The fitted family, how its generated columns (ids, personal data) are made, and how the family was chosen."""
    generator: object
    generated: GeneratedColumns
    selection: list[dict]

    @property
    def family(self) -> str:
        return self.generator.family

    @property
    def fit_info_(self) -> dict:
        return getattr(self.generator, "fit_info_", {}) or {}

    def sample(self, n: int, *, seed: int, conditions=None) -> pd.DataFrame:
        return self.generator.sample(n, seed=seed, conditions=conditions)

    def save(self, folder: Path) -> None:
        self.generator.save(folder)
        self.generated.save(Path(folder) / GENERATED_FILE)
        write_json(Path(folder) / SELECTION_FILE, self.selection)

    @classmethod
    def load(cls, folder: Path, *, device: str = "cpu") -> "TabularModel":
        folder = Path(folder)
        return cls(tf.load(folder, trusted=True, device=device),  # trusted: only a run's own model folder
                   GeneratedColumns.load(folder / GENERATED_FILE), json.loads((folder / SELECTION_FILE).read_text()))


class TabularAcceptor:
    """Great Expectations on every drawn batch; the kept rows get their generated columns, numbered from the shard's
    first row. Carries the suite as JSON (it crosses to Ray workers) and builds it once per process."""
    first_keep_rate = 1.0
    pool = 1.0

    def __init__(self, suite_json: dict, generated: GeneratedColumns | None):
        self.suite_json, self.generated, self._suite = suite_json, generated, None

    def __getstate__(self):
        return {**self.__dict__, "_suite": None}

    def secrets(self) -> dict:
        """The key and digests guarding the generated columns, which a pickle of this acceptor leaves out."""
        return {"": self.generated.secret()} if self.generated is not None and self.generated.guarded else {}

    def arm(self, secrets: dict, model) -> None:
        """On a Ray worker: guarded as on the driver (the model's own generated columns are never filled here)."""
        if self.generated is not None and "" in secrets:
            self.generated.arm(*secrets[""])

    def start(self, shard: Shard) -> None:
        pass

    def accept(self, batch: pd.DataFrame, stats: ShardStats, group: int, wanted: int) -> Verdict:
        if self._suite is None:
            self._suite = ex.suite_from_json(self.suite_json)
        v = ex.validate(self._suite, batch)
        return Verdict(keep=v.valid, frame=batch, failed=v.failed, table_failures=v.table_failures)

    def finish(self, rows: pd.DataFrame, shard: Shard, stats: ShardStats, folder: Path) -> pd.DataFrame:
        if self.generated is None or not len(rows):
            return rows
        return self.generated.fill(rows, start=shard.start, seed=derive_seed(shard.seed, GENERATED_SEED_STREAM))


class Tabular:
    name, unit = "tabular", "rows"

    def check(self, recipe: Recipe) -> None:
        """The family (or every auto candidate) is allowed by the recipe's licence and its params are its own."""
        gen = recipe.generator
        if gen.family == "auto":
            if "dp" in gen.params:  # auto passes no params to its candidates: the run would not be private at all
                raise UserError("generator.params.dp: a differentially private run names its family "
                                "(family: autoregressive); under auto the candidates would train without DP")
            for family in gen.candidates:
                tf.check_licence(family, recipe.licence, "generator.candidates")
        else:
            tf.check_licence(gen.family, recipe.licence)
            tf.check_params(gen.family, gen.params)

    def load(self, recipe: Recipe, base_dir: Path | None) -> Seed:
        seed = read_seed(recipe.seed.source, recipe.seed.format, base_dir, recipe.seed.max_rows)
        profile = Profile.from_frame(seed.frame, overrides=recipe.seed.columns, target=recipe.seed.target,
                                     drop=recipe.seed.drop, primary_key=recipe.seed.primary_key)
        data = profile.prepare(seed.frame)
        if data.shape[1] == 0:
            raise UserError(f"seed.source: no column of {seed.path.name} can be modelled "
                            f"({'; '.join(profile.notes())})")
        train, holdout = holdout_split(data, recipe.quality.holdout_fraction,
                               derive_seed(recipe.random_seed, SPLIT_SEED_STREAM))
        groups = condition_groups(recipe, profile, train)
        rows = recipe.output.rows if groups is None else sum(groups.values())
        if recipe.quality.expectations:  # the user's own expectations: checked now, not after the fit
            suite(recipe, profile, train)
        return Seed(path=seed.path, sha256=seed.sha256, train=train, holdout=holdout, rows=rows, groups=groups,
                    summary=f"{len(seed.frame)} seed rows × {seed.frame.shape[1]} columns",
                    manifest={"path": str(seed.path), "sha256": seed.sha256, "rows": len(seed.frame),
                              "columns": seed.frame.shape[1]},
                    notes=profile.notes(),
                    details=[f"{c.name}: {c.kind}{' (left out: ' + c.dropped + ')' if c.dropped else ''}"
                             for c in profile.columns],
                    state=(profile, seed.frame), files={"profile.json": profile.model_dump(mode="json")},
                    # a DP run's shareable profile comes from the DP codec, once fitted (acceptor)
                    shared={} if is_dp(recipe) else {"profile.json": shareable_profile(profile, seed.frame)})

    def fit(self, recipe: Recipe, seed: Seed, *, device: str, checkpoints: Path, console: Console) -> TabularModel:
        from synthforge.engine.select import epochs_of, select_family  # scikit-learn: once there is something to fit

        profile, frame = seed.state
        family = recipe.generator.family
        with console.status(f"fitting on {len(seed.train)} rows (budget {recipe.generator.time_budget:.0f}s)"):
            if family == "auto":
                candidates = recipe.generator.candidates
                gen, chosen = select_family(candidates, profile, seed.train, device=device,
                                            time_budget=recipe.generator.time_budget,
                                            random_seed=recipe.random_seed,
                                            params={f: family_params(recipe, f) for f in candidates},
                                            console=console)
                selection = [c.row() for c in chosen]
            else:
                console.print(f"  fitting {family}")
                params = family_params(recipe, family)
                gen = tf.make(family, profile, params, device=device,
                              time_budget=recipe.generator.time_budget if "epochs" not in params else None,
                              random_state=derive_seed(recipe.random_seed, FIT_SEED_STREAM)
                              ).fit(seed.train, progress=report_fit)
                selection = [{"family": family, "licence": tf.licence_of(family), "score": None,
                              "fit_seconds": gen.fit_seconds_, "epochs": epochs_of(gen), "chosen": True,
                              "why": "named in the recipe"}]
        return TabularModel(gen, GeneratedColumns.fit(frame, profile, seed=recipe.random_seed), selection)

    def load_model(self, folder: Path, *, device: str) -> TabularModel:
        return TabularModel.load(folder, device=device)

    def save_model(self, model: TabularModel, folder: Path) -> None:
        model.save(folder)

    def acceptor(self, recipe: Recipe, seed: Seed, model: TabularModel, work: Path) -> TabularAcceptor:
        profile, _ = seed.state
        if is_dp(recipe):  # suite and shareable profile from the DP codec's released statistics, not the rows
            from synthforge.families.tabular_dp import released, released_profile

            stats = released(model.generator.codec_)
            s = ex.suite_json(ex.released_suite(f"{recipe.name}_suite", stats, auto=recipe.quality.auto_expectations,
                                                user=user_expectations(recipe), columns=list(seed.train.columns)))
            write_released_suite(work, "suite.json", s)
            write_json(work / "profile.json", released_profile(profile, stats))
        else:
            s = ex.suite_json(suite(recipe, profile, seed.train))
            write_suite(work, "suite.json", s, seed.train, user_expectations(recipe))
        # the seed's values as keyed digests under a fresh in-memory key (never saved; a resumed run rebuilds them)
        return TabularAcceptor(s, model.generated.guard(seed.state[1]))

    def meta(self, model: TabularModel) -> dict:
        return {}

    def evaluate(self, recipe: Recipe, seed: Seed, model: TabularModel, work: Path, stats: list[ShardStats], *,
                 metric_seed: int) -> Graded:
        from synthforge.quality.evaluate import evaluate_tables

        profile, frame = seed.state
        synthetic = read_parts(work)
        if len(synthetic) == 0:
            failed = sorted({k for s in stats for k in s.failed} | {t for s in stats for t in s.table_failures})
            raise UserError(f"quality.expectations: no synthetic row passed validation in "
                            f"{max((s.rounds for s in stats), default=0)} rounds; failing: {', '.join(failed)}")
        kinds = profile.metric_kinds()
        target = recipe.seed.target if recipe.seed.target in kinds else None
        tab = evaluate_tables(seed.train, synthetic, kinds=kinds, holdout=seed.holdout, target=target,
                              random_seed=metric_seed, max_rows=recipe.quality.metric_rows)
        tab = tab.model_copy(update={"identifiers": grade_identifiers(frame, synthetic,
                                                                       profile.generated_columns())})
        run = {"rows_used": {
            "fit": "the training rows",
            "selection": "a validation split carved from the training rows"
                         if len(model.selection) > 1 else "none (one family, no choice)",
            "fidelity, detection": "synthetic vs the training rows",
            "privacy, utility, augmentation gain": "the holdout rows, never seen by fitting or choosing"}}
        manifest = {}
        dp_spent = getattr(model.generator, "dp_spent_", None)  # differential privacy: the ε the training spent
        if dp_spent:
            manifest["differential_privacy"] = run["differential_privacy"] = dp_spent
        exact = json.loads((work / PRIVATE / "expectations" / "suite.json").read_text())
        n_suite = len(exact.get("expectations", []))
        return Graded(metrics=tab.metrics(), rows_written=len(synthetic),
                      sections={"tabular": tab, "selection": model.selection,
                                "columns": column_reports(profile, model.generator)},
                      validation={"expectations": {"suite": "expectations/suite.json", "count": n_suite}},
                      run=run, manifest=manifest)


def shareable_profile(profile: Profile, frame: pd.DataFrame) -> dict:
    """profile.json for the shareable folder: kinds and reasons as they are, numeric minima and maxima rounded outward
    and category lists kept by the shareable suite's rule (quality/expectations.py), text and date extremes left out.
    The exact profile stays in the private folder."""
    d = profile.model_dump(mode="json")
    for c in d["columns"]:
        for key, up in (("minimum", False), ("maximum", True)):
            v = c.get(key)
            c[key] = ex.outward(v, up) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
        if c.get("categories") is not None:
            released = (ex.releasable_values(frame[c["name"]])
                        if not c.get("generated") and c["kind"] in ("categorical", "boolean") else None)
            c["categories"] = sorted(str(v) for v in released) if released else None
        if c.get("warning"):  # "... (e.g. <a seed value>) ..." / "e.g. <value> in data row N": the example goes
            c["warning"] = ex.drop_examples(c["warning"])
    d["shareable"] = ex.SHARE_RULE
    return d


def is_dp(recipe: Recipe) -> bool:
    """A differentially private run (tabular_dp.py): its shareable folder holds only what ε covers (workspace.py)."""
    return recipe.generator.family == "autoregressive" and "dp" in recipe.generator.params


def suite(recipe: Recipe, profile: Profile, train: pd.DataFrame):
    return ex.build_suite(f"{recipe.name}_suite", profile.metric_kinds(), train, auto=recipe.quality.auto_expectations,
                          user=tuple((e.type, dict(e.kwargs)) for e in recipe.quality.expectations))


def condition_groups(recipe: Recipe, profile: Profile, train: pd.DataFrame) -> dict | None:
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
    return counts_for(cond.column, list(pd.unique(train[cond.column].dropna())), recipe.output.rows,
                      balance=cond.balance, counts=cond.counts)


def family_params(recipe: Recipe, family: str) -> dict:
    """The recipe's params for a family (auto: none), with what the run needs of it: the autoregressive model puts
    the conditioned column first, so `balance` and `counts` are drawn, not rejected."""
    params = dict(recipe.generator.params) if recipe.generator.family == family else {}
    cond = recipe.output.conditions
    if family == "autoregressive" and cond is not None and "order" not in params:
        params["order"] = [cond.column]
    return params


def column_reports(profile: Profile, generator) -> list[ColumnReport]:
    """Per seed column: its kind, the grid the profile found, and what the family did with it."""
    codec = getattr(getattr(generator, "codec_", None), "describe", lambda: {})()
    rows = []
    for c in profile.columns:
        if c.dropped:
            treatment = f"left out: {c.dropped}"
        elif c.generated:
            treatment = f"generated: {c.generated_as()} (why: {c.reason})"
        else:
            parts = [c.grid, codec.get(c.name)]
            treatment = "; ".join(p for p in parts if p) or f"modelled by {generator.family}"
        rows.append(ColumnReport(name=c.name, kind=c.kind, treatment=treatment))
    return rows


TABULAR = Tabular()
