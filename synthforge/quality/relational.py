"""What makes a set of tables right beyond each table: every foreign key resolves, every entity's events keep their
order, each parent has as many children as real parents have (the shape of children-per-parent), each table keeps
its column shapes (the fidelity of fidelity.py, through one profile of the real table), and a child row joined with
its parents' columns (the denormalised table a data scientist would train on) looks like a real one: its fidelity,
the parent–child pair trends, detection, and, given a target, TSTR and the augmentation uplift on it."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from synthforge.data.profile import Profile
from synthforge.families.relational import foreign_keys

from .fidelity import fidelity_metrics
from .report_model import Metric, RelationalSection


def children_per_parent(parent: pd.DataFrame, key: str, child: pd.DataFrame, foreign_key: str) -> np.ndarray:
    counts = child[foreign_key].value_counts()
    return parent[key].map(counts).fillna(0).to_numpy(dtype=float)


def order_holds(child: pd.DataFrame, entity: str, order_by: str) -> float:
    """Share of entities whose events are non-decreasing in `order_by`, in the table's row order."""
    ok = child.groupby(entity, sort=False)[order_by].apply(lambda s: bool(s.dropna().is_monotonic_increasing))
    # (rows without an entity, orphans: keep, belong to no sequence: groupby leaves them out)
    return float(ok.mean()) if len(ok) else 1.0


def relational_metrics(real: dict[str, pd.DataFrame], synthetic: dict[str, pd.DataFrame], specs) -> dict:
    """One entry per table (column shapes) and per relationship (keys, cardinality, order)."""
    out: dict = {"tables": {}, "relationships": relationships(real, synthetic, specs)}
    for s in specs:
        cols = _own_columns(real[s.name], s)
        profile = Profile.from_frame(real[s.name][cols])
        kinds = profile.metric_kinds()
        shapes, trends, overall = fidelity_metrics(profile.prepare(real[s.name][cols]),
                                                   profile.prepare(synthetic[s.name][cols]), kinds)
        out["tables"][s.name] = {"rows_real": len(real[s.name]), "rows_synthetic": len(synthetic[s.name]),
                                 "column_shapes": shapes.value, "pair_trends": trends.value, "overall": overall.value}
    return out


def relationships(real: dict[str, pd.DataFrame], synthetic: dict[str, pd.DataFrame], specs,
                  kinds: dict[str, dict] | None = None) -> list[dict]:
    """Per parent → child link: foreign keys resolved, children per parent (KS complement), seed keys reused; for a
    sequence, the order of events, their gaps and lag-1 autocorrelations. `kinds`: each table's column kinds when
    the caller has profiled them already (else profiled here)."""
    out = []
    for s in specs:
        for fk, parent, pk in foreign_keys(s):
            out.append({**_link(real, synthetic, s.name, fk, parent, pk), "parent_of_tree": fk == s.foreign_key})
            if fk == s.foreign_key:
                rel = out[-1]
                if s.order_by:
                    rel.update(_sequence(real, synthetic, s, kinds))
    return out


def _link(real: dict[str, pd.DataFrame], synthetic: dict[str, pd.DataFrame], child: str, fk: str, parent: str,
          pk: str) -> dict:
    syn_child, syn_parent = synthetic[child], synthetic[parent]
    linked = syn_child[fk].notna()  # an empty key is a row of no parent (orphans: keep), not a miss
    resolved = float(syn_child[fk][linked].isin(set(syn_parent[pk])).mean()) if linked.any() else 1.0
    real_orphan = ~real[child][fk].isin(set(real[parent][pk]))
    real_n = children_per_parent(real[parent], pk, real[child], fk)
    syn_n = children_per_parent(syn_parent, pk, syn_child, fk)
    return {"parent": parent, "child": child, "foreign_key": fk, "fk_resolved": resolved,
            "children_per_parent_ks_complement": float(1 - ks_2samp(real_n, syn_n).statistic)
            if len(real_n) and len(syn_n) else None,
            "children_per_parent": {"real_mean": float(real_n.mean()) if len(real_n) else None,
                                    "synthetic_mean": float(syn_n.mean()) if len(syn_n) else None,
                                    "real_max": float(real_n.max()) if len(real_n) else None,
                                    "synthetic_max": float(syn_n.max()) if len(syn_n) else None},
            "seed_keys_reused": float(syn_child[fk].isin(set(real[parent][pk])).mean()),
            "no_parent_share": {"real": float(real_orphan.mean()) if len(real_orphan) else 0.0,
                                "synthetic": float((~linked).mean()) if len(linked) else 0.0}}


def _own_columns(frame: pd.DataFrame, spec) -> list:
    """A table's columns without its keys."""
    keys = {spec.primary_key, *(fk for fk, _, _ in foreign_keys(spec))}
    return [c for c in frame.columns if c not in keys]


def _sequence(real: dict[str, pd.DataFrame], synthetic: dict[str, pd.DataFrame], s, kinds: dict | None) -> dict:
    syn_child = synthetic[s.name]
    rel: dict = {}
    rel["order_holds"] = order_holds(syn_child, s.foreign_key, s.order_by)
    rel["order_holds_real"] = order_holds(real[s.name], s.foreign_key, s.order_by)
    if kinds is not None and s.name in kinds:
        table_kinds = kinds[s.name]
    else:
        table_kinds = Profile.from_frame(real[s.name][_own_columns(real[s.name], s)]).metric_kinds()
    numeric = [c for c, k in table_kinds.items() if k == "numerical" and c != s.order_by]
    rel["sequence"] = sequence_metrics(real[s.name], syn_child, s.foreign_key, s.order_by, numeric)
    return rel


def _seconds(s: pd.Series) -> pd.Series:
    """An ordering column as numbers: datetimes (or text that parses as one) in seconds, numbers as they are."""
    if pd.api.types.is_numeric_dtype(s):
        return s.astype(float)
    t = pd.to_datetime(s, errors="coerce", utc=True)
    return (t - pd.Timestamp(0, tz="UTC")).dt.total_seconds()


def gaps(child: pd.DataFrame, entity: str, order_by: str) -> np.ndarray:
    """Differences between each entity's consecutive events (in the order_by column's unit; seconds for times)."""
    t = _seconds(child[order_by])
    frame = pd.DataFrame({"e": child[entity].to_numpy(), "t": t.to_numpy()}).dropna().sort_values(["e", "t"],
                                                                                                 kind="stable")
    d = frame.groupby("e", sort=False)["t"].diff().dropna()
    return d.to_numpy(dtype=float)


def lag1_autocorrelation(child: pd.DataFrame, entity: str, order_by: str, column: str, min_events: int = 3
                         ) -> float | None:
    """Mean over entities (with at least `min_events` events) of the lag-1 autocorrelation of `column` along the
    entity's order: does a value follow from the one before, as in the real sequences?"""
    frame = pd.DataFrame({"e": child[entity].to_numpy(), "t": _seconds(child[order_by]).to_numpy(),
                          "x": pd.to_numeric(child[column], errors="coerce").to_numpy()}).dropna()
    frame = frame.sort_values(["e", "t"], kind="stable")
    values = []
    for _, x in frame.groupby("e", sort=False)["x"]:
        if len(x) >= min_events and x.std() > 0:
            a = x.to_numpy()
            r = np.corrcoef(a[:-1], a[1:])[0, 1]
            if np.isfinite(r):
                values.append(r)
    return float(np.mean(values)) if values else None


def sequence_metrics(real: pd.DataFrame, synthetic: pd.DataFrame, entity: str, order_by: str,
                     numeric: list[str]) -> dict:
    """Gaps between events (KS complement of their distributions) and, per numeric column, the lag-1
    autocorrelation within entities, real vs synthetic."""
    real_gaps, syn_gaps = gaps(real, entity, order_by), gaps(synthetic, entity, order_by)
    gap_ks = float(1 - ks_2samp(real_gaps, syn_gaps).statistic) if len(real_gaps) and len(syn_gaps) else None
    lag1 = {}
    for col in numeric:
        r, s = lag1_autocorrelation(real, entity, order_by, col), lag1_autocorrelation(synthetic, entity, order_by,
                                                                                         col)
        lag1[col] = {"real": r, "synthetic": s,
                     "difference": None if r is None or s is None else abs(r - s)}
    diffs = [v["difference"] for v in lag1.values() if v["difference"] is not None]
    return {"gap_ks_complement": gap_ks,
            "gaps": {"real_median": float(np.median(real_gaps)) if len(real_gaps) else None,
                     "synthetic_median": float(np.median(syn_gaps)) if len(syn_gaps) else None},
            "lag1": lag1, "lag1_max_difference": max(diffs) if diffs else None}


def joined(tables: dict[str, pd.DataFrame], spec, specs) -> pd.DataFrame:
    """A table's rows with its parents' columns beside them (`<parent>.<column>` for its parent, `<fk>.<column>` for
    a side parent; keys left out; a row of no parent has them empty): the denormalised table."""
    by_name = {s.name: s for s in specs}
    child = tables[spec.name]
    parts = [child[_own_columns(child, spec)].reset_index(drop=True)]
    for fk, parent, pk in foreign_keys(spec):
        frame = tables[parent].drop_duplicates(pk).set_index(pk)
        prefix = f"{parent}." if fk == spec.foreign_key else f"{fk}."
        cols = [c for c in _own_columns(tables[parent], by_name[parent]) if c in frame.columns]
        parts.append(frame[cols].reindex(child[fk].to_numpy()).add_prefix(prefix).reset_index(drop=True))
    return pd.concat(parts, axis=1)


def _link_name(r: dict) -> str:
    return f"{r['parent']}→{r['child']}" + ("" if r.get("parent_of_tree", True) else f" ({r['foreign_key']})")


def joined_quality(train: dict[str, pd.DataFrame], holdout: dict[str, pd.DataFrame],
                   synthetic: dict[str, pd.DataFrame], spec, specs, *, target: str | None, random_seed: int,
                   max_rows: int):
    """The denormalised table graded as one table (evaluate.py): fidelity, detection, privacy, and with a target
    the TSTR utility and augmentation uplift of a model trained on it; plus the parent–child pair trends (the pairs
    with one column of the child and one of a parent)."""
    from .evaluate import evaluate_tables

    parents = {p: pd.concat([train[p], holdout[p]], ignore_index=True) for _, p, _ in foreign_keys(spec)}
    real = joined({**parents, spec.name: train[spec.name]}, spec, specs)
    held = joined({**parents, spec.name: holdout[spec.name]}, spec, specs)
    syn = joined(synthetic, spec, specs)
    target = target if target in real.columns else None
    profile = Profile.from_frame(real, target=target)
    kinds = profile.metric_kinds()
    quality = evaluate_tables(profile.prepare(real), profile.prepare(syn[real.columns]), kinds=kinds,
                              holdout=profile.prepare(held) if len(held) >= 10 else None,
                              target=target if target in kinds else None, random_seed=random_seed,
                              max_rows=max_rows)
    own = set(_own_columns(train[spec.name], spec))
    cross = [p["score"] for p in quality.pair_trends.detail.get("pairs", [])
             if p["contributes"] and p["score"] is not None and (p["a"] in own) != (p["b"] in own)]
    return quality, (float(np.mean(cross)) if cross else None)


def relational_section(train: dict[str, pd.DataFrame], holdout: dict[str, pd.DataFrame],
                       synthetic: dict[str, pd.DataFrame], specs, *, random_seed: int = 0,
                       max_rows: int = 50_000, targets: dict[str, str] | None = None) -> RelationalSection:
    """Each table graded as a table (fidelity, detection, privacy against its holdout rows: evaluate.py), each
    child's denormalised table too (`joined_quality`; `targets`: table -> the column its downstream task predicts),
    then the relationships against the training tables; the gate metrics are the worst table's and the worst
    link's, and the target's utility and uplift."""
    from synthforge.randomness import derive_seed

    from .evaluate import evaluate_tables

    tables, rows, kinds = {}, {}, {}
    targets = dict(targets or {})
    for i, s in enumerate(specs):
        cols = _own_columns(train[s.name], s)
        profile = Profile.from_frame(train[s.name][cols])
        kinds[s.name] = profile.metric_kinds()
        hold = holdout[s.name][cols] if len(holdout[s.name]) >= 10 else None
        tables[s.name] = evaluate_tables(
            profile.prepare(train[s.name][cols]), profile.prepare(synthetic[s.name][cols]),
            kinds=kinds[s.name], holdout=None if hold is None else profile.prepare(hold),
            random_seed=derive_seed(random_seed, i), max_rows=max_rows)
        rows[s.name] = {"train": len(train[s.name]), "holdout": len(holdout[s.name]),
                        "synthetic": len(synthetic[s.name])}
    links = relationships(train, synthetic, specs, kinds)
    sequences = [r for r in links if "order_holds" in r]
    joined_tables, cross = {}, {}
    for i, s in enumerate(specs):
        if foreign_keys(s) or s.name in targets:
            joined_tables[s.name], cross[s.name] = joined_quality(
                train, holdout, synthetic, s, specs, target=targets.get(s.name),
                random_seed=derive_seed(random_seed, 1000 + i), max_rows=max_rows)

    def worst(values: dict, pick=min):
        known = {k: v for k, v in values.items() if v is not None}
        return (pick(known.values()) if known else None), known

    metrics = {}
    for name, field, pick, definition in (
            ("overall", "overall", min, "the lowest table's fidelity (mean of column shapes and pair trends)"),
            ("detection_auc", "detection_auc", max, "the highest table's detection AUC (0.5: indistinguishable)"),
            ("dcr_share", "dcr_share", max, "the highest table's share of synthetic rows closer to a training row "
                                            "than to a holdout row (0.5: no closer to what was learned)"),
            ("exact_copy_excess", "exact_copy_excess", max, "the highest table's exact-copy share of synthetic rows "
             "minus that of its real holdout rows (≤ 0: no more copies than unseen real data)")):
        value, per = worst({t: getattr(q, field).value for t, q in tables.items() if getattr(q, field) is not None},
                           pick)
        metrics[name] = Metric(name=name, value=value, definition=definition, upper=1,
                               higher_is_better=None if name == "dcr_share" else name == "overall",
                               lower=-1 if name == "exact_copy_excess" else 0,
                               computed_on={"tables": list(per)}, detail={"per_table": per})
    for name, key, definition, source in (
            ("fk_resolved", "fk_resolved", "share of child rows whose foreign key is a generated parent's key "
                                           "(lowest link)", links),
            ("children_per_parent_ks", "children_per_parent_ks_complement", "1 − KS distance between real and "
             "synthetic children-per-parent counts (lowest link of the tree; lookup tables apart)",
             [r for r in links if r["parent_of_tree"]]),
            ("lookup_children_per_parent_ks", "children_per_parent_ks_complement", "1 − KS distance between real "
             "and synthetic children per row of a lookup table (a second parent, drawn once at the seed's size: a "
             "few rows, so a coarse number; lowest link)", [r for r in links if not r["parent_of_tree"]]),
            ("order_holds", "order_holds", "share of entities whose events keep their order (lowest sequence)",
             sequences)):
        value, per = worst({_link_name(r): r[key] for r in source})
        if source:
            metrics[name] = Metric(name=name, value=value, definition=definition, lower=0, upper=1,
                                   higher_is_better=True, detail={"per_link": per})
    if sequences:
        value, per = worst({_link_name(r): r["sequence"]["gap_ks_complement"] for r in sequences})
        metrics["gap_ks"] = Metric(name="gap_ks", value=value, lower=0, upper=1, higher_is_better=True,
                                   definition="1 − KS distance between real and synthetic gaps between an entity's "
                                              "consecutive events (lowest sequence)", detail={"per_link": per})
    if joined_tables:
        value, per = worst({t: q.overall.value for t, q in joined_tables.items()})
        metrics["joined_overall"] = Metric(
            name="joined_overall", value=value, lower=0, upper=1, higher_is_better=True, detail={"per_table": per},
            definition="fidelity of each child table joined with its parents' columns (the denormalised table; "
                       "lowest table)")
        value, per = worst(cross)
        metrics["parent_child_trends"] = Metric(
            name="parent_child_trends", value=value, lower=0, upper=1, higher_is_better=True,
            detail={"per_table": per}, definition="pair trends between a child's columns and its parents' columns "
                                                  "in the joined table (related pairs only; lowest table)")
    if targets:  # the first table's task is what min_utility and min_augmentation_gain read (every one is in joined)
        table, target = next(iter(targets.items()))
        for name in ("utility", "augmentation_gain", "augmentation_gain_lower"):
            m = getattr(joined_tables[table], name)
            if m is not None:
                metrics[name] = m.model_copy(update={"computed_on": {**m.computed_on, "table": f"{table} joined "
                                                                     f"with its parents", "target": target}})
    return RelationalSection(metrics=metrics, tables=tables, rows=rows, relationships=links, joined=joined_tables)
