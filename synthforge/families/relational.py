"""Parent and child tables, and per-entity event sequences, on the autoregressive engine (tabular_ar.py).

A child row is generated the way the engine fills a conditioned column: the parent's columns lead the child model's
column order and are fixed, row by row, to the synthetic parent's values (`ARGenerator.sample(context=...)`), so
every child is drawn given its own parent, with no rejection. How many children a parent has is one more column of
the parent's own model (`__n_<child>`), learned jointly with the parent's other columns: a plane's number of flights
depends on its type and year as much as its seats do. Keys are generated fresh (identifiers.py: the seed's format,
never a seed key) and every foreign key points at a generated parent, so referential integrity holds by
construction. A `sequence` child (events of an entity, e.g. flights of a plane ordered by `time_hour`) has each
entity's rows put in the order of that column after drawing, so the order holds for every entity.

A child may have more parents than the one it is generated under (flights → planes, and → airlines): such a
second parent is a table of its own (no foreign key, no children under it: a lookup table such as airlines or
airports), a *side* table. Side tables are drawn once per run (`sample_sides`, as many rows as the seed's), and the
child's model learns its side parent's columns as columns of its own (`link.<fk>.<column>`, including how many
children that parent has, `__n_<child>__<fk>`); a generated child row then points at the generated side row nearest
to the values it drew (`match_rows`), so which airline flies a plane follows the plane, and big airlines get many
flights. A lookup table of reference data may be kept as it is instead (`copy: true`: rows unchanged, keys
renumbered; its real children-per-row are then the weights). The tree itself (each table under one parent, the
parent under its own, up to one root table) is what the shard loop draws; engine/modalities/relational.py runs it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthforge.data.profile import Profile
from synthforge.errors import UserError
from synthforge.families.identifiers import GENERATED_FILE, GeneratedColumns
from synthforge.families.tabular_ar import ARGenerator
from synthforge.randomness import derive_seed

COUNT_PREFIX = "__n_"
PARENT_PREFIX = "parent."
LINK_PREFIX = "link."
SIDE_STREAM = 7  # seed stream of the side tables (drawn once per run)


@dataclass(frozen=True)
class TableSpec:
    name: str
    primary_key: str | None = None
    parent: str | None = None  # the table this one's foreign key points at
    foreign_key: str | None = None  # column of this table
    parent_key: str | None = None  # column of the parent (its primary key)
    order_by: str | None = None  # a sequence: children of one parent ordered by this column
    keep_orphans: bool = False  # rows whose foreign key is in no parent row: learned and generated with no parent
    links: tuple = ()  # (foreign key, side table, its primary key) for each parent besides `parent`
    side: bool = False  # a side table: drawn once per run, only linked to
    copy: bool = False  # a side table of reference data: its rows kept as they are, keys renumbered


def parse_schema(schema: dict[str, dict]) -> list[TableSpec]:
    """`{table: {primary_key, foreign_keys: {col: "parent.col"}, sequence: {entity, order_by}}}` -> specs: the tree
    (its root first, parents before children), then the side tables. A table's parent is its sequence's entity, else
    its first foreign key; its other foreign keys must point at side tables. Errors name the table and key."""
    keys: dict[str, list[tuple[str, str, str]]] = {}
    for name, spec in schema.items():
        keys[name] = []
        for col, target in dict(spec.get("foreign_keys") or {}).items():
            parent, _, pk = str(target).partition(".")
            if parent not in schema or not pk:
                raise UserError(f"seed.tables.{name}.foreign_keys.{col}: {target!r} is not <table>.<column> of a "
                                f"table in seed.tables ({', '.join(schema)})")
            if schema[parent].get("primary_key") != pk:
                raise UserError(f"seed.tables.{name}.foreign_keys.{col}: {target!r} must be the primary key of "
                                f"{parent}")
            keys[name].append((col, parent, pk))
    main: dict[str, tuple | None] = {}
    for name, spec in schema.items():
        sequence = spec.get("sequence") or {}
        if sequence.get("order_by") and not keys[name]:
            raise UserError(f"seed.tables.{name}.sequence: a sequence needs a foreign key to its entity's table")
        main[name] = next((k for k in keys[name] if k[0] == sequence.get("entity")), keys[name][0] if keys[name]
                          else None)
    has_children = {m[1] for m in main.values() if m}
    linked = {(name, k) for name in schema for k in keys[name] if k != main[name]}
    sides = {k[1] for _, k in linked}
    for name, (col, parent, _) in sorted(linked):
        if main[parent] is not None or parent in has_children:
            raise UserError(f"seed.tables.{name}.foreign_keys.{col}: a second parent must be a table with no foreign "
                            f"key and no children of its own (a lookup table such as airlines); {parent} has "
                            f"{'a foreign key' if main[parent] else 'children'}")
    specs = {}
    for name, spec in schema.items():
        fk, parent, pk = main[name] or (None, None, None)
        specs[name] = TableSpec(name, spec.get("primary_key"), parent, fk, pk,
                                (spec.get("sequence") or {}).get("order_by"), spec.get("orphans") == "keep",
                                tuple(k for k in keys[name] if k != main[name]), name in sides,
                                bool(spec.get("copy")))
        if specs[name].copy and not specs[name].side:
            raise UserError(f"seed.tables.{name}.copy: only a lookup table (a second parent of another table, with "
                            "no foreign key and no children of its own) can be copied")
    ordered, seen = [], set(sides)
    while len(ordered) < len(specs) - len(sides):
        ready = [s for s in specs.values() if s.name not in seen and (s.parent is None or s.parent in seen)]
        if not ready:
            raise UserError(f"seed.tables: the foreign keys form a cycle among {sorted(set(specs) - seen)}")
        ordered += ready
        seen |= {s.name for s in ready}
    roots = [s.name for s in ordered if s.parent is None]
    if len(roots) != 1:
        raise UserError(f"seed.tables: one root table (no foreign key, not only a second parent) expected; got "
                        f"{', '.join(roots) or 'none'}")
    return ordered + [specs[n] for n in schema if n in sides]


def tree(specs: list[TableSpec]) -> list[TableSpec]:
    """The tables the shard loop draws: the root first, then every table under it, parents first."""
    return [s for s in specs if not s.side]


def foreign_keys(spec: TableSpec) -> list[tuple[str, str, str]]:
    """Every (foreign key, parent table, parent key) of a table: its parent's first, then its side tables'."""
    return ([(spec.foreign_key, spec.parent, spec.parent_key)] if spec.parent else []) + list(spec.links)


def _check_keys(specs: list[TableSpec], tables: dict[str, pd.DataFrame]) -> None:
    for s in specs:
        frame = tables[s.name]
        for col in (s.primary_key, s.order_by, *(fk for fk, _, _ in foreign_keys(s))):
            if col is not None and col not in frame.columns:
                raise UserError(f"seed.tables.{s.name}: column {col!r} is not in the table; columns are "
                                f"{', '.join(map(str, frame.columns))}")
        if s.primary_key and not frame[s.primary_key].is_unique:
            raise UserError(f"seed.tables.{s.name}.primary_key: {s.primary_key!r} has repeated values")
        for fk, parent, pk in foreign_keys(s):
            orphans = ~frame[fk].isin(set(tables[parent][pk])) & frame[fk].notna()
            if orphans.any() and not s.keep_orphans:
                raise UserError(f"seed.tables.{s.name}.foreign_keys: {orphans.mean():.1%} of {fk!r} values are not "
                                f"in {parent}.{pk} (e.g. {frame[fk][orphans].iloc[0]!r})")


def _children(specs: list[TableSpec], name: str) -> list[TableSpec]:
    return [s for s in specs if s.parent == name]


def _with_counts(specs: list[TableSpec], tables: dict[str, pd.DataFrame], spec: TableSpec) -> pd.DataFrame:
    """The table plus one count column per child table (children per row of this table), and for a side table one
    per foreign key pointing at it (`__n_<child>__<fk>`)."""
    frame = tables[spec.name].reset_index(drop=True).copy()
    for child in _children(specs, spec.name):
        counts = tables[child.name][child.foreign_key].value_counts()
        frame[COUNT_PREFIX + child.name] = frame[spec.primary_key].map(counts).fillna(0).astype("int64")
    for child in specs:
        for fk, parent, _ in child.links:
            if parent == spec.name:
                counts = tables[child.name][fk].value_counts()
                frame[f"{COUNT_PREFIX}{child.name}__{fk}"] = \
                    frame[spec.primary_key].map(counts).fillna(0).astype("int64")
    return frame


def _link_columns(fitted: "_Fitted", fk: str) -> dict[str, str]:
    """A side table's modelled columns (its counts included) as the linking child learns them: prefixed -> own."""
    return {f"{LINK_PREFIX}{fk}.{c}": c for c in fitted.profile.kinds()}


def match_rows(wanted: pd.DataFrame, candidates: pd.DataFrame, kinds: dict[str, str], rng: np.random.Generator,
               weights: np.ndarray | None = None, neighbours: int = 32) -> np.ndarray:
    """For each wanted row, the position of a candidate row near it in `kinds`' columns, or -1 where every wanted
    value is missing (a row of no parent). Categories must match first (one-hot, weighted far above numbers), then
    numbers are near (scaled by the candidates' spread). `weights`: how big each candidate is (e.g. its drawn number
    of children): the wanted rows whose categories a group of candidates has are shared over that group in
    proportion to the weights, nearest first (each row claims, in random order, the nearest of its `neighbours`
    nearest with room left); without weights every row takes its nearest. The child's draws decide how many rows go
    to each kind of parent (they were learned from many rows); the parents' weights only split them."""
    from sklearn.neighbors import NearestNeighbors  # BSD; exact nearest neighbours in a few dimensions

    n = len(wanted)
    if len(candidates) == 0:
        return np.full(n, -1)
    cols = [c for c in kinds if c in candidates.columns and c in wanted.columns]
    both = pd.concat([candidates[cols], wanted[cols]], ignore_index=True)
    numbers, categories = [np.zeros((len(both), 1))], [np.zeros((len(both), 1))]
    for c in cols:
        if kinds[c] in ("numerical", "datetime"):
            if kinds[c] == "numerical":
                x = pd.to_numeric(both[c], errors="coerce").to_numpy(dtype=float)
            else:  # seconds; a missing time stays missing (NaT as int64 would be a huge number)
                t = pd.to_datetime(both[c], errors="coerce")
                x = (t - t.min()).dt.total_seconds().to_numpy(dtype=float)
            ref = x[:len(candidates)]
            known = np.isfinite(ref).any()
            scale = np.nanstd(ref) if known and np.nanstd(ref) > 0 else 1.0
            z = (x - (np.nanmean(ref) if known else 0.0)) / scale
            numbers += [np.nan_to_num(z), np.isnan(z).astype(float)]
        else:
            categories.append(pd.get_dummies(both[c].astype("string"), dummy_na=True).to_numpy(dtype=float))
    cat = np.column_stack(categories)
    x = np.column_stack([100.0 * cat, *numbers])
    m = len(candidates)
    k = min(neighbours, m)
    near = NearestNeighbors(n_neighbors=k).fit(x[:m]).kneighbors(x[m:], return_distance=False)
    if weights is None:
        out = near[:, 0]
    else:
        _, group = np.unique(cat[:m], axis=0, return_inverse=True)
        group = group.ravel()
        w = np.clip(np.nan_to_num(np.asarray(weights, dtype=float)), 0, None)
        demand = np.bincount(group[near[:, 0]], minlength=group.max() + 1)
        total = np.bincount(group, weights=w, minlength=group.max() + 1)
        share = np.where(total[group] > 0, w / np.where(total[group] > 0, total[group], 1),
                         1.0 / np.bincount(group)[group])
        left = np.ceil(share * demand[group] * 1.05)
        out = np.full(n, -1)
        priority = rng.permutation(n)
        for r in range(k):
            todo = np.flatnonzero(out < 0)
            if not len(todo):
                break
            want = near[todo, r]
            order = np.lexsort((priority[todo], want))  # by candidate, then by each row's turn
            took = want[order]
            rank = np.arange(len(took)) - np.searchsorted(took, took)
            ok = rank < left[took]
            out[todo[order[ok]]] = took[ok]
            left -= np.bincount(took[ok], minlength=m)
        out = np.where(out < 0, near[:, 0], out)
    missing = wanted[cols].isna().all(axis=1).to_numpy() if cols else np.zeros(n, dtype=bool)
    return np.where(missing, -1, out)


@dataclass
class _Fitted:
    spec: TableSpec
    profile: Profile
    generator: ARGenerator | None  # None: a copied lookup table
    generated: GeneratedColumns
    context: list[str] = field(default_factory=list)  # parent columns leading the child model (prefixed)


class RelationalGenerator:
    """fit(tables) / sample(rows of the root tables) / save / load over a tree of tables."""

    family = "relational"

    def __init__(self, schema: dict[str, dict], params: dict[str, Any] | None = None, random_state: int = 0,
                 time_budget: float | None = None):
        self.schema = schema
        self.specs = parse_schema(schema)
        self.params = dict(params or {})
        self.random_state = random_state
        self.time_budget = time_budget  # CPU seconds for all tables, shared by their row counts

    def fit(self, tables: dict[str, pd.DataFrame], *, progress=None) -> "RelationalGenerator":
        import time

        started = time.process_time()
        missing = [s.name for s in self.specs if s.name not in tables]
        if missing:
            raise UserError(f"seed.tables: no data for {missing}")
        _check_keys(self.specs, tables)
        self.fitted_: dict[str, _Fitted] = {}
        self.copies_: dict[str, pd.DataFrame] = {}
        self.real_rows_ = {s.name: len(tables[s.name]) for s in self.specs}
        self.columns_ = {s.name: [str(c) for c in tables[s.name].columns] for s in self.specs}
        # rows of a child with no parent row (orphans: keep), per row with a parent: how many to draw besides
        self.orphans_ = {}
        for s in self.specs:
            if s.parent is not None and s.keep_orphans:
                share = float((~tables[s.name][s.foreign_key].isin(set(tables[s.parent][s.parent_key]))).mean())
                self.orphans_[s.name] = share / (1 - share) if share < 1 else 0.0
        # side tables first: a child learns its side parents' columns
        order = sorted(range(len(self.specs)), key=lambda i: not self.specs[i].side)
        for at, i in enumerate(order):
            spec = self.specs[i]
            frame = _with_counts(self.specs, tables, spec)
            context: list[str] = []
            if spec.parent is not None:
                parent = self.fitted_[spec.parent]
                modelled = [c for c in parent.profile.kinds() if not c.startswith((PARENT_PREFIX, LINK_PREFIX))]
                ptable = _with_counts(self.specs, tables, parent.spec)
                ctx = ptable.set_index(spec.parent_key)[modelled].add_prefix(PARENT_PREFIX)
                joined = ctx.reindex(frame[spec.foreign_key].to_numpy()).reset_index(drop=True)
                context = list(joined.columns)
                frame = pd.concat([joined, frame.drop(columns=[spec.foreign_key])], axis=1)
            linked = []
            for fk, side, pk in spec.links:  # a side parent's columns, drawn right after the parent's
                names = _link_columns(self.fitted_[side], fk)
                own = _with_counts(self.specs, tables, self.fitted_[side].spec)
                values = own.set_index(pk)[list(names.values())].reindex(frame[fk].to_numpy())
                values.columns = list(names)
                linked += list(names)
                frame = pd.concat([frame.drop(columns=[fk]), values.reset_index(drop=True)], axis=1)
            profile = Profile.from_frame(frame, primary_key=spec.primary_key)
            if spec.copy:  # reference data: nothing to learn; its rows (and children per row) as they are
                generated = GeneratedColumns.fit(frame, profile, seed=derive_seed(self.random_state, 100 + i))
                self.copies_[spec.name] = frame
                self.fitted_[spec.name] = _Fitted(spec, profile, None, generated, [])
                continue
            data = profile.prepare(frame)
            lead = context + [c for c in linked if c in profile.kinds()]
            params = {**self.params, "order": lead} if lead else dict(self.params)
            budget = None
            if self.time_budget is not None:  # what is left, shared by the rows still to fit
                left = self.time_budget - (time.process_time() - started)
                rows_left = sum(self.real_rows_[self.specs[j].name] for j in order[at:])
                # a small table's share by rows would be eaten by fixed costs (torch's first steps), and where it
                # stops would depend on the machine: it gets at least a tenth of what is left (30 s at most);
                # what it does not use passes on to the rest
                budget = max(1.0, left * self.real_rows_[spec.name] / rows_left, min(0.1 * left, 30.0))
            gen = ARGenerator(profile, params, time_budget=budget,
                              random_state=derive_seed(self.random_state, i)).fit(data)
            generated = GeneratedColumns.fit(frame, profile, seed=derive_seed(self.random_state, 100 + i))
            self.fitted_[spec.name] = _Fitted(spec, profile, gen, generated, context)
            if progress is not None:
                progress({"table": spec.name, "rows": len(frame), "seconds": gen.fit_seconds_})
        self.fit_info_ = {"seconds": time.process_time() - started, "clock": "cpu",
                          "tables": {n: f.generator.fit_info_ for n, f in self.fitted_.items() if f.generator}}
        return self

    def sample_sides(self, seed: int) -> dict[str, pd.DataFrame]:
        """The side tables, as many rows as the seed's, keys numbered from 0 (with their count columns, which the
        linking children are matched on)."""
        if not hasattr(self, "fitted_"):
            raise UserError("sample() called before fit()")
        out = {}
        for i, spec in enumerate(self.specs):
            if spec.side:
                f = self.fitted_[spec.name]
                s = derive_seed(seed, SIDE_STREAM, i)
                if spec.copy:  # every value kept but the key, which is renumbered like any generated key
                    rows = self.copies_[spec.name].reset_index(drop=True)
                    out[spec.name] = f.generated.fill(rows.drop(columns=[spec.primary_key]), start=0, seed=s) \
                        .assign(**{c: rows[c] for c in rows.columns if c != spec.primary_key})
                else:
                    out[spec.name] = f.generated.fill(f.generator.sample(self.real_rows_[spec.name], seed=s)
                                                      .reset_index(drop=True), start=0, seed=s)
        return out

    def sample(self, rows: dict[str, int] | None = None, *, seed: int, start: dict[str, int] | None = None,
               sides: dict[str, pd.DataFrame] | None = None) -> dict[str, pd.DataFrame]:
        """Synthetic tables: `rows` of the root table (default: as many as the seed); children as the counts say;
        side tables as `sides` gives them (`sample_sides`; default: drawn with this seed). Generated keys of each
        table are numbered from `start[table]` (default 0), so calls that give disjoint ranges never repeat a key."""
        start = dict(start or {})
        if not hasattr(self, "fitted_"):
            raise UserError("sample() called before fit()")
        rows = dict(rows or {})
        sides = self.sample_sides(seed) if sides is None else sides
        out: dict[str, pd.DataFrame] = dict(sides)
        internal: dict[str, pd.DataFrame] = {}  # with the count columns, for the children's context
        for i, spec in enumerate(tree(self.specs)):
            f = self.fitted_[spec.name]
            s = derive_seed(seed, i)
            if spec.parent is None:
                frame = f.generator.sample(int(rows.get(spec.name, self.real_rows_[spec.name])), seed=s)
                keys = None
            else:
                parents = internal[spec.parent]
                counts = parents[COUNT_PREFIX + spec.name].clip(lower=0).astype(int).to_numpy()
                idx = np.repeat(np.arange(len(parents)), counts)
                modelled = [c.removeprefix(PARENT_PREFIX) for c in f.context]
                ctx = parents.iloc[idx][modelled].add_prefix(PARENT_PREFIX).reset_index(drop=True)
                frame = f.generator.sample(len(idx), seed=s, context=ctx) if len(idx) else \
                    pd.DataFrame(columns=f.generator.codec_.columns)
                keys = parents[spec.parent_key].to_numpy(dtype=object)[idx]
                n_orphans = int(round(len(idx) * self.orphans_.get(spec.name, 0.0)))
                if n_orphans:  # drawn with an unknown parent (every parent column missing), as the seed's were
                    unknown = pd.DataFrame({c: [None] * n_orphans for c in ctx.columns})
                    orphans = f.generator.sample(n_orphans, seed=derive_seed(s, 1), context=unknown)
                    frame = pd.concat([frame, orphans], ignore_index=True)
                    keys = np.concatenate([keys, np.full(n_orphans, None, dtype=object)])
                frame = frame.drop(columns=[c for c in f.context if c in frame.columns])
            linked = {}  # foreign key -> the side row's key
            for j, (fk, side, pk) in enumerate(spec.links):
                names = _link_columns(self.fitted_[side], fk)
                wanted = frame[[c for c in names if c in frame.columns]].rename(columns=names)
                count = f"{COUNT_PREFIX}{spec.name}__{fk}"  # a side row's drawn number of children: its weight
                weights = pd.to_numeric(sides[side][count], errors="coerce").to_numpy() if count in sides[side] \
                    else None
                at = match_rows(wanted, sides[side], self.fitted_[side].profile.kinds(),
                                np.random.default_rng(derive_seed(s, 2, j)), weights)
                side_keys = sides[side][pk].to_numpy(dtype=object)
                frame = frame.drop(columns=[c for c in names if c in frame.columns])
                linked[fk] = np.where(at >= 0, side_keys[np.maximum(at, 0)] if len(side_keys) else None, None)
            frame = f.generated.fill(frame.reset_index(drop=True), start=int(start.get(spec.name, 0)), seed=s)
            frame = frame.assign(**linked)
            if keys is not None:
                frame.insert(0, spec.foreign_key, keys)
                if spec.order_by:
                    frame = order_within(frame, spec.foreign_key, spec.order_by)
            internal[spec.name] = frame
            out[spec.name] = frame[[c for c in frame.columns if not c.startswith(COUNT_PREFIX)]]
        return {name: df[[c for c in self.columns_[name] if c in df.columns]] for name, df in out.items()}

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        for name, f in self.fitted_.items():
            (folder / name).mkdir(parents=True, exist_ok=True)
            if f.generator is not None:
                f.generator.save(folder / name)
            else:  # a copied lookup table: its rows and profile
                self.copies_[name].to_parquet(folder / name / "rows.parquet")
                (folder / name / "profile.json").write_text(f.profile.model_dump_json())
            f.generated.save(folder / name / GENERATED_FILE)
        (folder / "generator.json").write_text(json.dumps({
            "family": self.family, "schema": self.schema, "params": self.params, "random_state": self.random_state,
            "real_rows": self.real_rows_, "columns": self.columns_, "orphans": self.orphans_,
            "context": {n: f.context for n, f in self.fitted_.items()},
            "specs": [asdict(s) for s in self.specs]}, indent=2))

    @classmethod
    def load(cls, folder: Path) -> "RelationalGenerator":
        folder = Path(folder)
        config = json.loads((folder / "generator.json").read_text())
        self = cls(config["schema"], config["params"], config["random_state"])
        self.real_rows_, self.columns_ = config["real_rows"], config["columns"]
        self.orphans_ = config.get("orphans", {})
        self.fitted_ = {}
        self.copies_ = {}
        for spec in self.specs:
            generated = GeneratedColumns.load(folder / spec.name / GENERATED_FILE)
            if spec.copy:
                self.copies_[spec.name] = pd.read_parquet(folder / spec.name / "rows.parquet")
                profile = Profile.model_validate_json((folder / spec.name / "profile.json").read_text())
                self.fitted_[spec.name] = _Fitted(spec, profile, None, generated, [])
                continue
            gen = ARGenerator.load(folder / spec.name)
            self.fitted_[spec.name] = _Fitted(spec, gen.profile, gen, generated, config["context"][spec.name])
        return self


def order_within(frame: pd.DataFrame, entity: str, order_by: str) -> pd.DataFrame:
    """Each entity's rows in `order_by` order (entities stay where they first appear): every entity's events follow
    their order, and each row keeps its own values together (a flight's date, hour and delay stay one flight's)."""
    first = frame.groupby(entity, sort=False).ngroup()
    return frame.assign(_entity=first).sort_values(["_entity", order_by], kind="stable") \
        .drop(columns="_entity").reset_index(drop=True)
