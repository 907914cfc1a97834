"""Several tables joined by keys (a parent and its children, a child's events in order) on the autoregressive engine
(families/relational.py): the root table's rows are what the shard loop draws, each carrying its subtree (its
children, their children); Great Expectations checks every table, a rejected row takes its descendants with it and
its root is drawn again; the output is one folder of parts per table, graded per table and per relationship.

Output: data/<table>/part-*.parquet for every table (keys fresh, every foreign key resolving).

Shards are groups of root rows, on the local executor or Ray alike. Side tables (a child's second parents, e.g.
airlines) are drawn once per run from the model's own seed, the same in every shard and process, validated once and
written with the first shard.
"""

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console

from synthforge.data.profile import Profile
from synthforge.data.sources import read_seed
from synthforge.data.split import holdout_split
from synthforge.engine.modality import Graded, Seed, report_fit
from synthforge.engine.shards import Shard, ShardStats, Verdict
from synthforge.engine.workspace import write_suite
from synthforge.errors import UserError
from synthforge.families.relational import (SIDE_STREAM, RelationalGenerator, TableSpec, foreign_keys, parse_schema,
                                            tree)
from synthforge.quality import expectations as ex
from synthforge.randomness import FIT_SEED_STREAM, GENERATED_SEED_STREAM, SPLIT_SEED_STREAM, derive_seed
from synthforge.recipe.schema import Recipe

SUBTREE, ROOT = "__subtree", "__root"
KEY_RANGE = 10**9  # keys of a child table in shard k are numbered from k × this


class RelationalModel:
    """The fitted tables, drawn root row by root row: `sample(n)` gives n root rows, each with its subtree in an
    object column (so a rejected root drops its children with it, whatever the loop does with the frame). Keys
    link the rows of one draw; the acceptor numbers them for good once a shard's rows are kept."""

    def __init__(self, generator: RelationalGenerator):
        self.generator = generator
        self.family = "relational"
        self.root = generator.specs[0].name
        self._sides: dict | None = None

    def sides(self) -> dict[str, pd.DataFrame]:
        """The side tables of every draw: one seed of the model's own, so every shard and process draws the same."""
        if self._sides is None:
            self._sides = self.generator.sample_sides(derive_seed(self.generator.random_state, SIDE_STREAM))
        return self._sides

    @property
    def fit_info_(self) -> dict:
        return getattr(self.generator, "fit_info_", {})

    def sample(self, n: int, *, seed: int, conditions=None) -> pd.DataFrame:
        tables = self.generator.sample({self.root: n}, seed=seed, sides=self.sides())
        return with_subtrees(tables, tree(self.generator.specs))

    def save(self, folder: Path) -> None:
        self.generator.save(folder)

    @classmethod
    def load(cls, folder: Path) -> "RelationalModel":
        return cls(RelationalGenerator.load(folder))


def with_subtrees(tables: dict[str, pd.DataFrame], specs: list[TableSpec]) -> pd.DataFrame:
    """The root table with one more column: per root row, {table: its rows} for every descendant table."""
    root = specs[0].name
    positions = {root: np.arange(len(tables[root]))}
    for s in specs[1:]:  # parents first: each row's root is its parent's root
        parent = tables[s.parent]
        where = pd.Series(np.arange(len(parent)), index=parent[s.parent_key].to_numpy())
        at = where.reindex(tables[s.name][s.foreign_key].to_numpy()).to_numpy(dtype=float)
        orphan = np.isnan(at)  # rows of no parent (orphans: keep) are spread over the roots, so a rejected root
        at[orphan] = np.arange(orphan.sum()) % max(1, len(parent))  # takes only its share of them
        positions[s.name] = positions[s.parent][at.astype(int)] if len(parent) else np.zeros(len(at), dtype=int)
    subtrees = [{} for _ in range(len(tables[root]))]
    for s in specs[1:]:
        frame = tables[s.name]
        for r, idx in pd.Series(positions[s.name]).groupby(positions[s.name]).indices.items():
            subtrees[r][s.name] = frame.iloc[idx]
    out = tables[root].copy()
    out[SUBTREE] = subtrees
    return out


def split_subtrees(rows: pd.DataFrame, specs: list[TableSpec], columns: dict[str, list[str]]
                   ) -> dict[str, pd.DataFrame]:
    """The tables back from root rows with their subtrees."""
    out = {specs[0].name: rows.drop(columns=[SUBTREE]).reset_index(drop=True)}
    for s in specs[1:]:
        parts = [t[s.name] for t in rows[SUBTREE] if s.name in t]
        out[s.name] = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns[s.name])
    return out


class RelationalAcceptor:
    """Every table's suite on the drawn rows; a failing row is dropped with its descendants, a failing root (or a
    root whose subtree lost rows) is drawn again."""
    first_keep_rate = 1.0
    pool = 1.0

    def __init__(self, suites: dict[str, dict], specs: list[TableSpec], columns: dict[str, list[str]],
                 generated: dict, sides: dict[str, pd.DataFrame]):
        self.suites, self.columns, self.generated = suites, columns, generated
        self.specs = tree(specs)
        self._built: dict = {}
        # side tables: validated once; a child pointing at a side row that failed is dropped, its root drawn again
        self.sides, self.side_failed = {}, {}
        for s in specs:
            if s.side:
                frame = sides[s.name][columns[s.name]]
                v = ex.validate(self._suite(s.name), frame)
                self.sides[s.name] = frame[v.valid].reset_index(drop=True)
                self.side_failed.update({f"{s.name}: {k}": n for k, n in v.failed.items()})
        self.side_keys = {s.name: set(self.sides[s.name][s.primary_key]) for s in specs if s.side}

    def _suite(self, name: str):
        if name not in self._built:
            self._built[name] = ex.suite_from_json(self.suites[name])
        return self._built[name]

    def __getstate__(self):
        return {**self.__dict__, "_built": {}}

    def secrets(self) -> dict:
        """table -> the key and digests guarding its generated columns, which a pickle of this acceptor leaves out."""
        return {name: g.secret() for name, g in self.generated.items() if g.guarded}

    def arm(self, secrets: dict, model: RelationalModel) -> None:
        """On a Ray worker: this acceptor and the model it loaded from disk guarded as on the driver. The model too,
        since it fills generated columns as it draws: the tables without a key keep those values, and the side
        tables' keys must be those the driver drew, or the children linked to them would not resolve."""
        for name, (key, digests) in secrets.items():
            self.generated[name].arm(key, digests)
            model.generator.fitted_[name].generated.arm(key, digests)

    def start(self, shard: Shard) -> None:
        pass

    def accept(self, batch: pd.DataFrame, stats: ShardStats, group: int, wanted: int) -> Verdict:
        tables = split_subtrees(batch, self.specs, self.columns)
        tables[self.specs[0].name] = tables[self.specs[0].name].assign(**{ROOT: np.arange(len(batch))})
        failed, table_failures, bad_roots = {}, [], set()
        for s in self.specs:
            frame = tables[s.name]
            ok = np.ones(len(frame), dtype=bool)
            if len(frame):
                v = ex.validate(self._suite(s.name), frame.drop(columns=[c for c in (ROOT,) if c in frame]))
                ok = v.valid.copy()
                failed.update({f"{s.name}: {k}": n for k, n in v.failed.items()})
                table_failures += [f"{s.name}: {t}" for t in v.table_failures]
            if s.parent is not None and len(frame):  # a row whose parent was dropped goes with it
                ok &= (frame[s.foreign_key].isin(set(tables[s.parent][s.parent_key]))
                       | (frame[s.foreign_key].isna() & s.keep_orphans)).to_numpy()
            for fk, side, _ in s.links:  # and a row whose side parent failed its suite
                if len(frame):
                    ok &= (frame[fk].isin(self.side_keys[side]) | (frame[fk].isna() & s.keep_orphans)).to_numpy()
            if s.parent is None:
                bad_roots |= set(np.flatnonzero(~ok))
            elif (~ok).any():
                # the root of a dropped child is drawn again: its children per parent would be wrong otherwise
                root_of = _roots(batch, s.name)
                bad_roots |= set(root_of[~ok].tolist())
            tables[s.name] = frame[ok]
        keep = np.ones(len(batch), dtype=bool)
        keep[list(bad_roots)] = False
        return Verdict(keep=keep, frame=batch, failed=failed, table_failures=table_failures)

    def finish(self, rows: pd.DataFrame, shard: Shard, stats: ShardStats, folder: Path) -> dict[str, pd.DataFrame]:
        """The shard's tables with their keys numbered for good: the root table's from the shard's first row (as a
        table's ids are), every other table's from a range of its own per shard, so no two shards share a key;
        each foreign key follows its parent's new key (keys of different draws may coincide, so a key is looked
        up together with its root row)."""
        tables = split_subtrees(rows, self.specs, self.columns)
        roots = {self.specs[0].name: np.arange(len(rows))}
        renamed: dict[str, dict] = {}
        for i, s in enumerate(self.specs):
            frame = tables[s.name]
            if s.name != self.specs[0].name:
                roots[s.name] = _roots(rows, s.name)
                if s.foreign_key in frame and s.parent in renamed:
                    new = renamed[s.parent]
                    frame = frame.assign(**{s.foreign_key: [None if pd.isna(k) else new[(r, k)] for r, k in
                                                            zip(roots[s.name], frame[s.foreign_key])]})
            if s.primary_key is not None and len(frame):
                start = shard.start if i == 0 else shard.index * KEY_RANGE
                filled = self.generated[s.name].fill(frame.reset_index(drop=True), start=start,
                                                     seed=derive_seed(shard.seed, GENERATED_SEED_STREAM, i))
                renamed[s.name] = dict(zip(zip(roots[s.name], frame[s.primary_key]), filled[s.primary_key]))
                frame = frame.reset_index(drop=True).assign(
                    **{c: filled[c] for c in self.generated[s.name].columns if c in frame.columns})
            tables[s.name] = frame.reset_index(drop=True)
        if shard.index == 0:  # drawn once per run: written with the first shard
            tables.update(self.sides)
            stats.extra.update({f"side rows failed: {k}": n for k, n in self.side_failed.items()})
        return tables


def _roots(batch: pd.DataFrame, table: str) -> np.ndarray:
    """For each row of `table` in the order split_subtrees lists them, the position of its root row."""
    return np.concatenate([np.full(len(t[table]), r) for r, t in enumerate(batch[SUBTREE]) if table in t]
                          or [np.zeros(0, dtype=int)])


class Relational:
    name, unit = "relational", "root rows"

    def check(self, recipe: Recipe) -> None:
        if recipe.generator.family not in ("auto", "autoregressive"):
            raise UserError(f"generator.family: {recipe.generator.family!r} does not generate related tables; use "
                            "auto (the autoregressive engine)")
        if recipe.output.conditions is not None:
            raise UserError("output.conditions: not supported for relational runs yet")
        specs = parse_schema(schema_of(recipe))
        root = specs[0].name
        for name, t in recipe.seed.tables.items():
            if t.orphans != "refuse" and not t.foreign_keys:
                raise UserError(f"seed.tables.{name}.orphans: {name} has no foreign key, so no orphans")
            if t.max_rows is not None and name != root:
                raise UserError(f"seed.tables.{name}.max_rows: only the root table ({root}) can be cut; its "
                                "children follow it")
            if t.sequence is not None and t.sequence.entity not in t.foreign_keys:
                raise UserError(f"seed.tables.{name}.sequence.entity: {t.sequence.entity!r} must be a foreign key "
                                f"of {name} ({', '.join(t.foreign_keys) or 'none'})")

    def load(self, recipe: Recipe, base_dir: Path | None) -> Seed:
        specs = parse_schema(schema_of(recipe))
        root = specs[0].name
        tables, paths, hashes, notes, keys = {}, {}, {}, [], {}
        for s in specs:
            t = recipe.seed.tables[s.name]
            seed = read_seed(t.source, t.format, base_dir)
            frame = seed.frame.drop(columns=[c for c in t.drop if c in seed.frame.columns])
            paths[s.name], hashes[s.name] = str(seed.path), seed.sha256
            tables[s.name] = frame.reset_index(drop=True)
            if s.primary_key is not None:
                if s.primary_key not in frame.columns:
                    raise UserError(f"seed.tables.{s.name}.primary_key: {s.primary_key!r} is not a column; columns "
                                    f"are {', '.join(map(str, frame.columns))}")
                keys[s.name] = set(frame[s.primary_key])  # before any cut: what makes a row an orphan
        if recipe.seed.tables[root].max_rows:
            keep = np.random.default_rng(derive_seed(recipe.random_seed, SPLIT_SEED_STREAM, 1)).permutation(
                len(tables[root]))[:recipe.seed.tables[root].max_rows]
            tables[root] = tables[root].iloc[np.sort(keep)].reset_index(drop=True)
            notes.append(f"{root}: a seeded {len(tables[root])} of its rows (seed.tables.{root}.max_rows), with "
                         "their children")
        for s in specs:  # children of rows left out go with them; orphans as the recipe says
            if not foreign_keys(s):
                continue
            frame = tables[s.name]
            for col in (s.order_by, *(fk for fk, _, _ in foreign_keys(s))):
                if col is not None and col not in frame.columns:
                    raise UserError(f"seed.tables.{s.name}: column {col!r} is not in the table; columns are "
                                    f"{', '.join(map(str, frame.columns))}")
            known = np.ones(len(frame), dtype=bool)
            for fk, parent, pk in foreign_keys(s):
                linked = frame[fk].isin(set(tables[parent][pk]))
                orphans = ~frame[fk].isin(keys[parent])  # not the children of rows cut by max_rows
                policy = recipe.seed.tables[s.name].orphans
                if orphans.any() and policy != "refuse":
                    notes.append(f"{s.name}: {int(orphans.sum())} of {len(frame)} rows ({orphans.mean():.1%}) have a "
                                 f"{fk} in no {parent} row; " + (
                                     "left out" if policy == "drop" else
                                     f"kept: generated as rows of no {parent}, {fk} empty") +
                                 f" (seed.tables.{s.name}.orphans: {policy})")
                    if policy == "keep":
                        linked |= orphans
                elif orphans.any():
                    raise UserError(f"seed.tables.{s.name}.foreign_keys: {orphans.mean():.1%} of {fk!r} values are in "
                                    f"no {parent} row (e.g. {frame[fk][orphans].iloc[0]!r}); set "
                                    f"seed.tables.{s.name}.orphans: drop to leave those rows out")
                known &= linked.to_numpy()
            tables[s.name] = frame[known].reset_index(drop=True)
        for name, t in recipe.seed.tables.items():
            if t.target is not None and t.target not in tables[name].columns:
                raise UserError(f"seed.tables.{name}.target: {t.target!r} is not a column of {name}; columns are "
                                f"{', '.join(map(str, tables[name].columns))}")
        train, holdout = split_tables(tables, specs, recipe.quality.holdout_fraction,
                                      derive_seed(recipe.random_seed, SPLIT_SEED_STREAM))
        digest = hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()
        sizes = ", ".join(f"{n} {len(f):,}" for n, f in tables.items())
        return Seed(path=Path(paths[root]), sha256=digest, train=train, holdout=holdout, rows=recipe.output.rows,
                    groups=None, summary=f"{len(tables)} tables ({sizes} rows)",
                    manifest={"tables": {n: {"path": paths[n], "sha256": hashes[n], "rows": len(tables[n]),
                                             "columns": tables[n].shape[1]} for n in tables}},
                    notes=notes, details=[describe(s) for s in specs],
                    state={"specs": specs, "columns": {n: list(map(str, f.columns)) for n, f in tables.items()}})

    def fit(self, recipe: Recipe, seed: Seed, *, device: str, checkpoints: Path, console: Console
            ) -> RelationalModel:
        gen = RelationalGenerator(schema_of(recipe), dict(recipe.generator.params),
                                  random_state=derive_seed(recipe.random_seed, FIT_SEED_STREAM),
                                  time_budget=recipe.generator.time_budget)
        with console.status(f"fitting {len(seed.train)} tables (budget {recipe.generator.time_budget:.0f} CPU s)"):
            def report(p: dict) -> None:
                console.print(f"  fitted {p['table']}: {p['rows']:,} rows in {p['seconds']:.0f} CPU s")
                report_fit(p)

            gen.fit(seed.train, progress=report)
        return RelationalModel(gen)

    def load_model(self, folder: Path, *, device: str) -> RelationalModel:
        return RelationalModel.load(folder)

    def save_model(self, model: RelationalModel, folder: Path) -> None:
        model.save(folder)

    def acceptor(self, recipe: Recipe, seed: Seed, model: RelationalModel, work: Path) -> RelationalAcceptor:
        specs = seed.state["specs"]
        suites = {}
        for s in specs:
            frame = seed.train[s.name]
            profile = Profile.from_frame(frame, primary_key=s.primary_key)
            keys = {s.primary_key, *(fk for fk, _, _ in foreign_keys(s))} - {None}
            kinds = {c: k for c, k in profile.metric_kinds().items() if c not in keys}
            suites[s.name] = ex.suite_json(ex.build_suite(f"{recipe.name}_{s.name}_suite", kinds, frame,
                                                          auto=recipe.quality.auto_expectations))
            write_suite(work, f"{s.name}.suite.json", suites[s.name], frame)
        # a model loaded from disk (resume) holds no digests of the seed's values (identifiers.py keeps them in
        # memory only): guard every table's generated columns again from the seed this run has read, its held-out
        # rows included (a seed value is one whichever side of the split it fell on)
        generated = {n: f.generated.guard(pd.concat([seed.train[n], seed.holdout[n]], ignore_index=True))
                     for n, f in model.generator.fitted_.items()}
        return RelationalAcceptor(suites, specs, seed.state["columns"], generated, model.sides())

    def meta(self, model: RelationalModel) -> dict:
        return {}

    def evaluate(self, recipe: Recipe, seed: Seed, model: RelationalModel, work: Path, stats: list[ShardStats], *,
                 metric_seed: int) -> Graded:
        from synthforge.quality.relational import relational_section

        specs = seed.state["specs"]
        synthetic = {s.name: _read_table(work, s.name, seed.state["columns"][s.name]) for s in specs}
        root = specs[0].name
        if len(synthetic[root]) == 0:
            raise UserError(f"quality.expectations: no {root} row passed validation in "
                            f"{max((s.rounds for s in stats), default=0)} rounds")
        section = relational_section(seed.train, seed.holdout, synthetic, specs, random_seed=metric_seed,
                                     max_rows=recipe.quality.metric_rows,
                                     targets={n: t.target for n, t in recipe.seed.tables.items() if t.target})
        return Graded(metrics=section.metrics, rows_written=len(synthetic[root]), sections={"relational": section},
                      validation={"expectations": [f"expectations/{s.name}.suite.json" for s in specs],
                                  "tables": {n: len(f) for n, f in synthetic.items()}},
                      run={"tables": {n: len(f) for n, f in synthetic.items()},  # rows per table, not tables
                           "seed_rows_train": {n: len(f) for n, f in seed.train.items()},
                           "seed_rows_holdout": {n: len(f) for n, f in seed.holdout.items()}},
                      manifest={"tables": {n: len(f) for n, f in synthetic.items()}})


def _read_table(work: Path, name: str, columns: list[str]) -> pd.DataFrame:
    parts = sorted((work / "data" / name).glob("part-*.parquet"))
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True) if parts else \
        pd.DataFrame(columns=columns)


def schema_of(recipe: Recipe) -> dict[str, dict]:
    """`seed.tables` as families/relational.py reads it."""
    return {name: {"primary_key": t.primary_key, "foreign_keys": dict(t.foreign_keys),
                   "sequence": {"entity": t.sequence.entity, "order_by": t.sequence.order_by} if t.sequence else None,
                   "orphans": t.orphans, "copy": t.copy_rows}
            for name, t in recipe.seed.tables.items()}


def describe(s: TableSpec) -> str:
    links = "".join(f", {fk} → {parent}.{pk}" for fk, parent, pk in foreign_keys(s))
    return f"{s.name}: key {s.primary_key or '(none)'}{links}" + (f", events in {s.order_by} order" if s.order_by
                                                                  else "") + (", drawn once (a side table)" if s.side
                                                                              else "")


def split_tables(tables: dict[str, pd.DataFrame], specs: list[TableSpec], fraction: float, seed: int
                 ) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """Root rows split at random; every other row goes where its parent went; a side table is all training rows
    (every child's second parent must be there to learn from; a lookup table has no held-out rows)."""
    root = specs[0]
    train, holdout = {}, {}
    train[root.name], holdout[root.name] = holdout_split(tables[root.name], fraction, seed)
    for s in specs:
        if s.side:
            train[s.name], holdout[s.name] = tables[s.name], tables[s.name].iloc[:0]
    rng = np.random.default_rng(seed)
    for s in tree(specs)[1:]:
        frame = tables[s.name]
        held = frame[s.foreign_key].isin(set(holdout[s.parent][s.parent_key]))
        orphan = ~frame[s.foreign_key].isin(set(tables[s.parent][s.parent_key]))  # orphans: keep; split at random
        held |= orphan & (rng.random(len(frame)) < fraction)
        train[s.name], holdout[s.name] = frame[~held].reset_index(drop=True), frame[held].reset_index(drop=True)
    return train, holdout


RELATIONAL = Relational()
