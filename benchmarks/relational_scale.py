"""Relational output at 10× through Ray: the planes → flights model of a finished `flights_relational` run, 33,220
planes (about 3.4M flights) in shards of 3,322 planes on a local Ray, and the first shards drawn again in this
process to check that Ray wrote the same tables.

    synthforge run recipes/flights_relational.yaml --out /tmp/flights      # the model (about 10 minutes)
    python benchmarks/relational_scale.py --run /tmp/flights [--scale 10] [--check 2] [--cpus 2]
"""

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True, help="a finished flights_relational run folder (its private folder's model/ is used)")
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--check", type=int, default=2, help="shards drawn again locally and compared")
    ap.add_argument("--cpus", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")

    import pandas as pd
    import ray
    import torch

    from synthforge.engine.modalities.relational import RELATIONAL
    from synthforge.engine.ray_executor import run_ray
    from synthforge.engine.shards import generate_shard, plan_shards
    from synthforge.recipe import load_recipe, recipe_base_dir

    torch.set_num_threads(1)
    path = ROOT / "recipes" / "flights_relational.yaml"
    recipe = load_recipe(path)
    seed = RELATIONAL.load(recipe, recipe_base_dir(path))
    run_dir = Path(args.run)  # the model is in the run's private folder (<run>.private/model), or an older run's own
    model_dir = next((p for p in (run_dir.with_name(run_dir.name + ".private") / "model", run_dir / "model")
                      if p.exists()), run_dir / "model")
    model = RELATIONAL.load_model(model_dir, device="cpu")
    work = Path(tempfile.mkdtemp(prefix="sf-rel-scale-"))
    acceptor = RELATIONAL.acceptor(recipe, seed, model, work)
    planes = recipe.output.rows * args.scale
    shards = plan_shards(planes, recipe.output.rows, recipe.random_seed)
    meta = {"recipe": recipe.name, "random_seed": recipe.random_seed, "family": "relational"}

    temp = tempfile.mkdtemp(prefix="sf-ray-", dir="/tmp")
    ray.init(num_cpus=args.cpus, include_dashboard=False, _temp_dir=temp, logging_level="ERROR", log_to_driver=False)
    started = time.perf_counter()
    stats = run_ray("relational", model_dir, acceptor, shards, work, recipe.quality.max_rounds, meta)
    ray_s = time.perf_counter() - started
    ray.shutdown()

    flights = sum(len(pd.read_parquet(p, columns=["tailnum"])) for p in (work / "data" / "flights").glob("part-*"))
    planes_out = pd.concat([pd.read_parquet(p) for p in sorted((work / "data" / "planes").glob("part-*"))])
    tails = pd.concat([pd.read_parquet(p, columns=["tailnum"]) for p in (work / "data" / "flights").glob("part-*")])
    linked = tails["tailnum"].notna()
    same, started = [], time.perf_counter()
    for shard in shards[:args.check]:
        local, _ = generate_shard(model, acceptor, shard, recipe.quality.max_rounds, work)
        same.append(all(pd.read_parquet(io.BytesIO(local[t].to_parquet(index=False))).equals(
            pd.read_parquet(work / "data" / t / f"{shard.name}.parquet")) for t in local))
    local_s = (time.perf_counter() - started) / max(1, args.check)
    print(json.dumps({"planes": len(planes_out), "flights": flights, "shards": len(shards), "ray_cpus": args.cpus,
                      "ray_wall_s": round(ray_s, 1), "local_s_per_shard": round(local_s, 1),
                      "planes_unique": bool(planes_out["tailnum"].is_unique),
                      "fk_resolved": float(tails["tailnum"][linked].isin(set(planes_out["tailnum"])).mean()),
                      "rounds": max(s.rounds for s in stats), "same_as_local_first_shards": same}, indent=1))


if __name__ == "__main__":
    main()
