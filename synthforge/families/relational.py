"""Parent and child tables, and per-entity event sequences, on the autoregressive engine (tabular_ar.py).

A child row is generated the way the engine fills a conditioned column: the parent's columns lead the child model's
column order and are fixed, row by row, to the synthetic parent's values (`ARGenerator.sample(context=...)`), so
every child is drawn given its own parent, with no rejection. How many children a parent has is one more column of
the parent's own model (`__n_<child>`), learned jointly with the parent's other columns: a plane's number of flights
depends on its type and year as much as its seats do. Keys are generated fresh (identifiers.py: the seed's format,
never a seed key) and every foreign key points at a generated parent, so referential integrity holds by
construction. A `sequence` child (events of an entity, e.g. flights of a plane ordered by `time_hour`) has each
entity's rows put in the order of that column after drawing, so the order holds for every entity.

Scope today: a tree of tables (each child has one parent; the parent may itself be a child) under one root table,
run by `synthforge run` as the `relational` modality (engine/modalities/relational.py) in one shard. Several parents
per child and Ray shards of parents are not built yet.
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


@dataclass(frozen=True)
class TableSpec:
    name: str
    primary_key: str | None = None
    parent: str | None = None  # the table this one's foreign key points at
    foreign_key: str | None = None  # column of this table
    parent_key: str | None = None  # column of the parent (its primary key)
    order_by: str | None = None  # a sequence: children of one parent ordered by this column
    keep_orphans: bool = False  # rows whose foreign key is in no parent row: learned and generated with no parent


def parse_schema(schema: dict[str, dict]) -> list[TableSpec]:
    """`{table: {primary_key, foreign_keys: {col: "parent.col"}, sequence: {order_by}}}` -> specs, parents first.
    Errors name the table and key, one line each."""
    specs = {}
    for name, spec in schema.items():
        fks = dict(spec.get("foreign_keys") or {})
        if len(fks) > 1:
            raise UserError(f"seed.tables.{name}.foreign_keys: one foreign key per table for now, got {list(fks)}")
        parent = fk = pk = None
        for col, target in fks.items():
            parent, _, pk = str(target).partition(".")
            if parent not in schema or not pk:
                raise UserError(f"seed.tables.{name}.foreign_keys.{col}: {target!r} is not <table>.<column> of a "
                                f"table in seed.tables ({', '.join(schema)})")
            if schema[parent].get("primary_key") != pk:
                raise UserError(f"seed.tables.{name}.foreign_keys.{col}: {target!r} must be the primary key of "
                                f"{parent}")
            fk = col
        order_by = (spec.get("sequence") or {}).get("order_by")
        if order_by and parent is None:
            raise UserError(f"seed.tables.{name}.sequence: a sequence needs a foreign key to its entity's table")
        specs[name] = TableSpec(name, spec.get("primary_key"), parent, fk, pk, order_by,
                                spec.get("orphans") == "keep")
    ordered, seen = [], set()
    while len(ordered) < len(specs):
        ready = [s for s in specs.values() if s.name not in seen and (s.parent is None or s.parent in seen)]
        if not ready:
            raise UserError(f"seed.tables: the foreign keys form a cycle among {sorted(set(specs) - seen)}")
        ordered += ready
        seen |= {s.name for s in ready}
    return ordered


def _check_keys(specs: list[TableSpec], tables: dict[str, pd.DataFrame]) -> None:
    for s in specs:
        frame = tables[s.name]
        for col in (s.primary_key, s.foreign_key, s.order_by):
            if col is not None and col not in frame.columns:
                raise UserError(f"seed.tables.{s.name}: column {col!r} is not in the table; columns are "
                                f"{', '.join(map(str, frame.columns))}")
        if s.primary_key and not frame[s.primary_key].is_unique:
            raise UserError(f"seed.tables.{s.name}.primary_key: {s.primary_key!r} has repeated values")
        if s.parent:
            known = set(tables[s.parent][s.parent_key])
            orphans = ~frame[s.foreign_key].isin(known) & frame[s.foreign_key].notna()
            if orphans.any() and not s.keep_orphans:
                raise UserError(f"seed.tables.{s.name}.foreign_keys: {orphans.mean():.1%} of {s.foreign_key!r} "
                                f"values are not in {s.parent}.{s.parent_key} (e.g. {frame[s.foreign_key][orphans].iloc[0]!r})")


def _children(specs: list[TableSpec], name: str) -> list[TableSpec]:
    return [s for s in specs if s.parent == name]


def _with_counts(specs: list[TableSpec], tables: dict[str, pd.DataFrame], spec: TableSpec) -> pd.DataFrame:
    """The table plus one count column per child table: children per row of this table."""
    frame = tables[spec.name].reset_index(drop=True).copy()
    for child in _children(specs, spec.name):
        counts = tables[child.name][child.foreign_key].value_counts()
        frame[COUNT_PREFIX + child.name] = frame[spec.primary_key].map(counts).fillna(0).astype("int64")
    return frame


@dataclass
class _Fitted:
    spec: TableSpec
    profile: Profile
    generator: ARGenerator
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
        self.real_rows_ = {s.name: len(tables[s.name]) for s in self.specs}
        self.columns_ = {s.name: [str(c) for c in tables[s.name].columns] for s in self.specs}
        # rows of a child with no parent row (orphans: keep), per row with a parent: how many to draw besides
        self.orphans_ = {}
        for s in self.specs:
            if s.parent is not None and s.keep_orphans:
                share = float((~tables[s.name][s.foreign_key].isin(set(tables[s.parent][s.parent_key]))).mean())
                self.orphans_[s.name] = share / (1 - share) if share < 1 else 0.0
        for i, spec in enumerate(self.specs):
            frame = _with_counts(self.specs, tables, spec)
            context: list[str] = []
            if spec.parent is not None:
                parent = self.fitted_[spec.parent]
                modelled = [c for c in parent.profile.kinds() if not c.startswith(PARENT_PREFIX)]
                ptable = _with_counts(self.specs, tables, parent.spec)
                ctx = ptable.set_index(spec.parent_key)[modelled].add_prefix(PARENT_PREFIX)
                joined = ctx.reindex(frame[spec.foreign_key].to_numpy()).reset_index(drop=True)
                context = list(joined.columns)
                frame = pd.concat([joined, frame.drop(columns=[spec.foreign_key])], axis=1)
            profile = Profile.from_frame(frame, primary_key=spec.primary_key)
            data = profile.prepare(frame)
            params = {**self.params, "order": context} if context else dict(self.params)
            budget = None
            if self.time_budget is not None:  # what is left, shared by the rows still to fit
                left = self.time_budget - (time.process_time() - started)
                rows_left = sum(self.real_rows_[t.name] for t in self.specs[i:])
                budget = max(1.0, left * self.real_rows_[spec.name] / rows_left)
            gen = ARGenerator(profile, params, time_budget=budget,
                              random_state=derive_seed(self.random_state, i)).fit(data)
            generated = GeneratedColumns.fit(frame, profile, seed=derive_seed(self.random_state, 100 + i))
            self.fitted_[spec.name] = _Fitted(spec, profile, gen, generated, context)
            if progress is not None:
                progress({"table": spec.name, "rows": len(frame), "seconds": gen.fit_seconds_})
        self.fit_info_ = {"seconds": time.process_time() - started, "clock": "cpu",
                          "tables": {n: f.generator.fit_info_ for n, f in self.fitted_.items()}}
        return self

    def sample(self, rows: dict[str, int] | None = None, *, seed: int, start: dict[str, int] | None = None
               ) -> dict[str, pd.DataFrame]:
        """Synthetic tables: `rows` per root table (default: as many as the seed); children as the counts say.
        Generated keys of each table are numbered from `start[table]` (default 0), so calls that give disjoint
        ranges never repeat a key."""
        start = dict(start or {})
        if not hasattr(self, "fitted_"):
            raise UserError("sample() called before fit()")
        rows = dict(rows or {})
        out: dict[str, pd.DataFrame] = {}
        internal: dict[str, pd.DataFrame] = {}  # with the count columns, for the children's context
        for i, spec in enumerate(self.specs):
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
            frame = f.generated.fill(frame.reset_index(drop=True), start=int(start.get(spec.name, 0)), seed=s)
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
            f.generator.save(folder / name)
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
        for spec in self.specs:
            gen = ARGenerator.load(folder / spec.name)
            self.fitted_[spec.name] = _Fitted(spec, gen.profile, gen,
                                              GeneratedColumns.load(folder / spec.name / GENERATED_FILE),
                                              config["context"][spec.name])
        return self


def order_within(frame: pd.DataFrame, entity: str, order_by: str) -> pd.DataFrame:
    """Each entity's rows in `order_by` order (entities stay where they first appear): every entity's events follow
    their order, and each row keeps its own values together (a flight's date, hour and delay stay one flight's)."""
    first = frame.groupby(entity, sort=False).ngroup()
    return frame.assign(_entity=first).sort_values(["_entity", order_by], kind="stable") \
        .drop(columns="_entity").reset_index(drop=True)
