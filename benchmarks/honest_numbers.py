"""Numbers that cannot flatter (issue 32, item 7), on a finished tabular run: TSTR on every synthetic row (before) and
on as many as TRTR has real ones (now), the augmentation interval over the draws alone (before) and with the holdout
bootstrap (now), and fidelity / detection against the holdout beside the real training rows' own figures there.

    synthforge run recipes/credit_tabular.yaml --out /tmp/credit
    python benchmarks/honest_numbers.py recipes/credit_tabular.yaml /tmp/credit

Rebuilds the run's train/holdout split from the recipe (the run's own split stream) and uses the report's metric seed.
Prints one JSON object (docs/quality.md quotes it)."""
import json, sys, time
from pathlib import Path
import numpy as np, pandas as pd
from synthforge.recipe.load import load_recipe
from synthforge.engine.modalities.tabular import Tabular
from synthforge.sinks.files import read_parts
from synthforge.quality import utility as U
from synthforge.quality.detection import model_matrix, one_thread, detection_vs_holdout
from synthforge.quality.fidelity import fidelity_vs_holdout

recipe_path, run = sys.argv[1], Path(sys.argv[2])
recipe = load_recipe(recipe_path)
seed_ = Tabular().load(recipe, Path(recipe_path).resolve().parent)
profile, frame = seed_.state
kinds = profile.metric_kinds()
syn = read_parts(run)
rep = json.loads((run / "report.json").read_text())["tabular"]
ms = rep["detection_auc"]["computed_on"]["seed"]
train, hold = seed_.train, seed_.holdout
target = recipe.seed.target
out = {"train": len(train), "holdout": len(hold), "synthetic": len(syn), "metric_seed": ms}
# TSTR new (size-matched) and old (every synthetic row), same models and test rows
new, _ = U.utility_metric(train, syn, hold, kinds, target, max_rows=recipe.quality.metric_rows, seed=ms)
out["tstr_new"] = new.detail["tstr"]["score"]; out["trtr"] = new.detail["trtr"]["score"]; out["utility_new"] = new.value
feats = {c: k for c, k in kinds.items() if c != target}
tr, sy, te = train[train[target].notna()], syn[syn[target].notna()], hold[hold[target].notna()]
x_r, x_s, x_t = model_matrix([tr, sy, te], feats)
task = U.task_type(train[target], kinds[target])
if task == "classification":
    y_r, y_s, y_t = U._labels([tr[target], sy[target], te[target]])
else:
    y_r, y_s, y_t = (pd.to_numeric(f[target], errors="coerce").to_numpy("float64") for f in (tr, sy, te))
with one_thread():
    old = U._fit_score(task, x_s, y_s, x_t, y_t, ms)
out["tstr_old_all_synthetic"] = old["score"]; out["utility_old"] = min(1.5, max(old["score"], 0) / out["trtr"])
gains = U.uplift_on_target(train, syn, hold, kinds, target, max_rows=recipe.quality.metric_rows, seed=ms)
g = gains["augmentation_gain"]
out["gain_mean"] = g.value; out["ci95_new"] = g.detail["ci95"]; out["ci95_old_draws"] = g.detail.get("ci95_draws")
out["other"] = g.detail.get("other")
t0 = time.perf_counter()
q = fidelity_vs_holdout(train, syn, hold, kinds, max_rows=recipe.quality.metric_rows, seed=ms)
d = detection_vs_holdout(train, syn, hold, kinds, max_rows=recipe.quality.metric_rows, seed=ms)
out["vs_holdout_seconds"] = time.perf_counter() - t0
out["quality_vs_train"] = rep["overall"]["value"]; out["detection_vs_train"] = rep["detection_auc"]["value"]
out["quality_vs_holdout"] = q.value; out["quality_real_reference"] = q.detail["real_reference"]
out["detection_vs_holdout"] = d.value; out["detection_real_reference"] = d.detail["real_reference"]
print(json.dumps(out, indent=1))
