"""What makes a set of tables right beyond each table: every foreign key resolves, every entity's events keep their
order, each parent has as many children as real parents have (the shape of children-per-parent), and each table keeps
its column shapes (the fidelity of fidelity.py, through one profile of the real table)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from synthforge.data.profile import Profile

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
        cols = [c for c in real[s.name].columns if c not in (s.primary_key, s.foreign_key)]
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
        if s.parent is None:
            continue
        syn_child, syn_parent = synthetic[s.name], synthetic[s.parent]
        linked = syn_child[s.foreign_key].notna()  # an empty key is a row of no parent (orphans: keep), not a miss
        resolved = float(syn_child[s.foreign_key][linked].isin(set(syn_parent[s.parent_key])).mean()) \
            if linked.any() else 1.0
        real_orphan = ~real[s.name][s.foreign_key].isin(set(real[s.parent][s.parent_key]))
        real_n = children_per_parent(real[s.parent], s.parent_key, real[s.name], s.foreign_key)
        syn_n = children_per_parent(syn_parent, s.parent_key, syn_child, s.foreign_key)
        rel = {"parent": s.parent, "child": s.name, "foreign_key": s.foreign_key, "fk_resolved": resolved,
               "children_per_parent_ks_complement": float(1 - ks_2samp(real_n, syn_n).statistic),
               "children_per_parent": {"real_mean": float(real_n.mean()), "synthetic_mean": float(syn_n.mean()),
                                       "real_max": float(real_n.max()), "synthetic_max": float(syn_n.max())},
               "seed_keys_reused": float(syn_child[s.foreign_key].isin(set(real[s.parent][s.parent_key])).mean()),
               "no_parent_share": {"real": float(real_orphan.mean()) if len(real_orphan) else 0.0,
                                   "synthetic": float((~linked).mean()) if len(linked) else 0.0}}
        if s.order_by:
            rel["order_holds"] = order_holds(syn_child, s.foreign_key, s.order_by)
            rel["order_holds_real"] = order_holds(real[s.name], s.foreign_key, s.order_by)
            if kinds is not None and s.name in kinds:
                table_kinds = kinds[s.name]
            else:
                cols = [c for c in real[s.name].columns if c not in (s.primary_key, s.foreign_key)]
                table_kinds = Profile.from_frame(real[s.name][cols]).metric_kinds()
            numeric = [c for c, k in table_kinds.items() if k == "numerical" and c != s.order_by]
            rel["sequence"] = sequence_metrics(real[s.name], syn_child, s.foreign_key, s.order_by, numeric)
        out.append(rel)
    return out


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


def relational_section(train: dict[str, pd.DataFrame], holdout: dict[str, pd.DataFrame],
                       synthetic: dict[str, pd.DataFrame], specs, *, random_seed: int = 0,
                       max_rows: int = 50_000) -> RelationalSection:
    """Each table graded as a table (fidelity, detection, privacy against its holdout rows: evaluate.py), then the
    relationships against the training tables; the gate metrics are the worst table's and the worst link's."""
    from synthforge.randomness import derive_seed

    from .evaluate import evaluate_tables

    tables, rows, kinds = {}, {}, {}
    for i, s in enumerate(specs):
        cols = [c for c in train[s.name].columns if c not in (s.primary_key, s.foreign_key)]
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

    def worst(values: dict, pick=min):
        known = {k: v for k, v in values.items() if v is not None}
        return (pick(known.values()) if known else None), known

    metrics = {}
    for name, field, pick, definition in (
            ("overall", "overall", min, "the lowest table's fidelity (mean of column shapes and pair trends)"),
            ("detection_auc", "detection_auc", max, "the highest table's detection AUC (0.5: indistinguishable)"),
            ("dcr_share", "dcr_share", max, "the highest table's share of synthetic rows closer to a training row "
                                            "than to a holdout row (0.5: no closer to what was learned)")):
        value, per = worst({t: getattr(q, field).value for t, q in tables.items()}, pick)
        metrics[name] = Metric(name=name, value=value, definition=definition, lower=0, upper=1,
                               higher_is_better=None if name == "dcr_share" else name == "overall",
                               computed_on={"tables": list(per)}, detail={"per_table": per})
    for name, key, definition, source in (
            ("fk_resolved", "fk_resolved", "share of child rows whose foreign key is a generated parent's key "
                                           "(lowest link)", links),
            ("children_per_parent_ks", "children_per_parent_ks_complement", "1 − KS distance between real and "
             "synthetic children-per-parent counts (lowest link)", links),
            ("order_holds", "order_holds", "share of entities whose events keep their order (lowest sequence)",
             sequences)):
        value, per = worst({f"{r['parent']}→{r['child']}": r[key] for r in source})
        if source:
            metrics[name] = Metric(name=name, value=value, definition=definition, lower=0, upper=1,
                                   higher_is_better=True, detail={"per_link": per})
    if sequences:
        value, per = worst({f"{r['parent']}→{r['child']}": r["sequence"]["gap_ks_complement"] for r in sequences})
        metrics["gap_ks"] = Metric(name="gap_ks", value=value, lower=0, upper=1, higher_is_better=True,
                                   definition="1 − KS distance between real and synthetic gaps between an entity's "
                                              "consecutive events (lowest sequence)", detail={"per_link": per})
    return RelationalSection(metrics=metrics, tables=tables, rows=rows, relationships=links)
