"""What makes a set of tables right beyond each table: every foreign key resolves, every entity's events keep their
order, each parent has as many children as real parents have (the shape of children-per-parent), and each table keeps
its column shapes (the fidelity of fidelity.py, through one profile of the real table)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from synthforge.data.profile import Profile

from .fidelity import fidelity_metrics


def children_per_parent(parent: pd.DataFrame, key: str, child: pd.DataFrame, foreign_key: str) -> np.ndarray:
    counts = child[foreign_key].value_counts()
    return parent[key].map(counts).fillna(0).to_numpy(dtype=float)


def order_holds(child: pd.DataFrame, entity: str, order_by: str) -> float:
    """Share of entities whose events are non-decreasing in `order_by`, in the table's row order."""
    ok = child.groupby(entity, sort=False)[order_by].apply(lambda s: bool(s.dropna().is_monotonic_increasing))
    return float(ok.mean()) if len(ok) else 1.0


def relational_metrics(real: dict[str, pd.DataFrame], synthetic: dict[str, pd.DataFrame], specs) -> dict:
    """One entry per table (column shapes) and per relationship (keys, cardinality, order)."""
    out: dict = {"tables": {}, "relationships": []}
    for s in specs:
        cols = [c for c in real[s.name].columns if c not in (s.primary_key, s.foreign_key)]
        profile = Profile.from_frame(real[s.name][cols])
        kinds = profile.metric_kinds()
        shapes, trends, overall = fidelity_metrics(profile.prepare(real[s.name][cols]),
                                                   profile.prepare(synthetic[s.name][cols]), kinds)
        out["tables"][s.name] = {"rows_real": len(real[s.name]), "rows_synthetic": len(synthetic[s.name]),
                                 "column_shapes": shapes.value, "pair_trends": trends.value, "overall": overall.value}
        if s.parent is None:
            continue
        syn_child, syn_parent = synthetic[s.name], synthetic[s.parent]
        resolved = float(syn_child[s.foreign_key].isin(set(syn_parent[s.parent_key])).mean()) if len(syn_child) \
            else 1.0
        real_n = children_per_parent(real[s.parent], s.parent_key, real[s.name], s.foreign_key)
        syn_n = children_per_parent(syn_parent, s.parent_key, syn_child, s.foreign_key)
        rel = {"parent": s.parent, "child": s.name, "foreign_key": s.foreign_key, "fk_resolved": resolved,
               "children_per_parent_ks_complement": float(1 - ks_2samp(real_n, syn_n).statistic),
               "children_per_parent": {"real_mean": float(real_n.mean()), "synthetic_mean": float(syn_n.mean()),
                                       "real_max": float(real_n.max()), "synthetic_max": float(syn_n.max())},
               "seed_keys_reused": float(syn_child[s.foreign_key].isin(set(real[s.parent][s.parent_key])).mean())}
        if s.order_by:
            rel["order_holds"] = order_holds(syn_child, s.foreign_key, s.order_by)
            rel["order_holds_real"] = order_holds(real[s.name], s.foreign_key, s.order_by)
        out["relationships"].append(rel)
    return out
