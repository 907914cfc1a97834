"""Image benchmark: synthforge's diffusion family next to a bare diffusers loop, at the same training budget.

    python benchmarks/images.py                                   # the table in docs/benchmarks.md
    python benchmarks/images.py --datasets digits --budgets 60 --variants no_ema linear_betas constant_lr
    python benchmarks/images.py --recipe-run                      # also time the digits recipe end to end

Per dataset, the train/held-out split synthforge's recipe uses (digits: 1,200 / 597, stratified, seeded;
Fashion-MNIST: the recipe's seeded subset, held out = its t10k images). Per variant and budget: training steps,
images/s sampled, then synthforge's own image metrics on the sampled images against the held-out real images:
TSTR vs TRTR accuracy of a small CNN, conditional accuracy of a CNN trained on real labels, Fréchet distance and
PRDC in that CNN's feature space, and the share of near-copies of training images.

Budgets count this process's CPU seconds (`clock: process`), so a machine shared with other jobs gives every
variant the same compute; the wall time is printed next to it. One torch thread (synthforge's default on 2 cores).

Variants: `bare` is the calibration loop from the issue: a class-conditional UNet2DModel of 0.92M parameters
((32, 64), two layers per block), AdamW 1e-3, batch 128, linear betas, no EMA, no guidance, DDIM 50 steps.
`synthforge` is the recipe's generator.params and output.sampling; the other variants change one thing of it.
"""

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

warnings.simplefilter("ignore")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

RECIPES = {"digits": "digits_images", "fashion_mnist": "fashion_images"}
# one change each against the recipe (generator.params / output.sampling); used for the ablation rows
VARIANTS = {
    "synthforge": ({}, {}),
    "no_ema": ({"ema_decay": 0.0}, {}),
    "no_guidance": ({}, {"guidance_scale": 1.0}),
    "linear_betas": ({"beta_schedule": "linear"}, {}),
    "constant_lr": ({"lr_schedule": "constant"}, {}),
    "bare_size_unet": ({"block_out_channels": [32, 64], "layers_per_block": 2}, {}),
    "ddim_25": ({}, {"steps": 25}),
    "dpm_solver_20": ({}, {"scheduler": "dpm_solver", "steps": 20}),
}


def load_split(dataset: str):
    from synthforge.data.images import read_image_seed
    from synthforge.engine.modalities.image import split_images
    from synthforge.randomness import SPLIT_SEED_STREAM
    from synthforge.randomness import derive_seed
    from synthforge.recipe import load_recipe

    recipe = load_recipe(ROOT / "recipes" / f"{RECIPES[dataset]}.yaml")
    seed = read_image_seed(recipe.seed.source, base=ROOT / "recipes", image_size=recipe.seed.image_size,
                           channels=recipe.seed.channels, max_rows=recipe.seed.max_rows,
                           random_seed=recipe.random_seed)
    train, holdout, _ = split_images(seed, recipe.quality.holdout_fraction,
                                     derive_seed(recipe.random_seed, SPLIT_SEED_STREAM))
    return recipe, train, holdout


def wanted_labels(train, n: int) -> np.ndarray:
    classes = train.classes
    return np.array([classes[i % len(classes)] for i in range(n)], dtype=object)


# ---------------------------------------------------------------- the bare loop (what a user would write first)


def bare(train, budget: float, seed: int):
    import torch
    import torch.nn.functional as F
    from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel

    torch.manual_seed(seed)  # the bare loop seeds globally, as tutorials do
    classes = train.classes
    index = {c: i for i, c in enumerate(classes)}
    x = torch.from_numpy(train.images).permute(0, 3, 1, 2).float() / 127.5 - 1
    y = torch.tensor([index[v] for v in train.labels])
    size, ch = x.shape[-1], x.shape[1]
    unet = UNet2DModel(sample_size=size, in_channels=ch, out_channels=ch, block_out_channels=(32, 64),
                       layers_per_block=2, down_block_types=("DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D"), num_class_embeds=len(classes))
    sched = DDPMScheduler(num_train_timesteps=1000)
    opt = torch.optim.AdamW(unet.parameters(), lr=1e-3)
    started, wall, steps = time.process_time(), time.perf_counter(), 0
    while time.process_time() - started < budget:
        idx = torch.randint(0, len(x), (128,))
        noise = torch.randn_like(x[idx])
        t = torch.randint(0, 1000, (128,))
        loss = F.mse_loss(unet(sched.add_noise(x[idx], noise, t), t, class_labels=y[idx]).sample, noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
    stats = {"steps": steps, "cpu_s": time.process_time() - started, "wall_s": time.perf_counter() - wall,
             "parameters": sum(p.numel() for p in unet.parameters())}
    unet.eval()

    def sample(labels: np.ndarray, batch: int = 256) -> np.ndarray:
        ddim = DDIMScheduler.from_config(sched.config)
        ddim.set_timesteps(50)
        out = []
        for s in range(0, len(labels), batch):
            yb = torch.tensor([index[v] for v in labels[s:s + batch]])
            img = torch.randn(len(yb), ch, size, size)
            with torch.no_grad():
                for t in ddim.timesteps:
                    img = ddim.step(unet(img, t, class_labels=yb).sample, t, img).prev_sample
            out.append(((img.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())
        return np.concatenate(out)

    return sample, stats


def synthforge_variant(recipe, train, budget: float, params: dict, sampling: dict, seed: int):
    from synthforge.families.diffusion import DiffusionGenerator

    p = {**recipe.generator.params, "clock": "process", **params}
    s = {**recipe.output.sampling, **sampling}
    gen = DiffusionGenerator(p, s, image_size=train.images.shape[1], channels=train.images.shape[3],
                             time_budget=budget, random_state=seed)
    wall = time.perf_counter()
    gen.fit(train)
    st = gen.fit_info_
    stats = {"steps": st["steps"], "cpu_s": st["seconds"], "wall_s": time.perf_counter() - wall,
             "parameters": st["parameters"]}

    def sample(labels: np.ndarray) -> np.ndarray:
        images = []
        for c in dict.fromkeys(labels):
            n = int((labels == c).sum())
            images.append(np.stack(gen.sample(n, seed=seed + 1 + len(images), conditions={"label": c})["image"]))
        ordered = np.empty((len(labels), *images[0].shape[1:]), np.uint8)
        for c, block in zip(dict.fromkeys(labels), images):
            ordered[labels == c] = block
        return ordered

    return sample, stats


def measure(name: str, dataset: str, recipe, train, holdout, budget: float, n_images: int, seed: int) -> dict:
    from synthforge.data.images import ImageSet
    from synthforge.quality.image_metrics import evaluate_images, near_copies

    if name == "bare":
        sample, stats = bare(train, budget, seed)
    else:
        params, sampling = VARIANTS[name]
        sample, stats = synthforge_variant(recipe, train, budget, params, sampling, seed)
    labels = wanted_labels(train, n_images)
    wall, cpu = time.perf_counter(), time.process_time()
    images = sample(labels)
    sample_cpu = time.process_time() - cpu
    sample_wall = time.perf_counter() - wall
    threshold = recipe.quality.filters.get("near_copy_distance", 0.05)
    copies = near_copies(images, train.images, threshold)
    kept = ImageSet(images[~copies], labels[~copies], tuple(f"s{i}" for i in np.flatnonzero(~copies)))
    q = evaluate_images(train, holdout, kept, random_seed=seed, near_copy_distance=threshold,
                        near_copies_dropped=int(copies.sum()), sampled=len(images))
    util = q.utility.detail
    return {"dataset": dataset, "variant": name, "budget_cpu_s": budget, **stats,
            "images_per_s": round(len(images) / sample_cpu, 1), "sample_wall_s": round(sample_wall, 1),
            "tstr": util["tstr"]["accuracy"], "trtr": util["trtr"]["accuracy"], "tstr_over_trtr": q.utility.value,
            "conditional_accuracy": q.conditional_accuracy.value, "frechet": q.frechet_distance.value,
            "frechet_real": q.frechet_distance_real.value, "precision": q.precision.value, "recall": q.recall.value,
            "density": q.density.value, "coverage": q.coverage.value, "near_copy_share": q.near_copy_share.value}


def recipe_run(name: str) -> dict:
    """The whole recipe through the CLI, wall-clocked, with the numbers from its report."""
    import subprocess

    out = Path("/tmp") / f"synthforge-bench-{name}"
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "synthforge.cli", "run", str(ROOT / "recipes" / f"{name}.yaml"),
                           "--out", str(out), "--overwrite", "-q"], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"recipe run failed: {proc.stderr[-2000:]}")
    report = json.loads((out / "report.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    s = report["image"]["summary"]
    util = report["image"]["metrics"]["utility"]["detail"]
    return {"recipe": name, "wall_s": round(wall, 1), "timings": manifest["timings"], "status": report["status"],
            "training": {k: report["image"]["training"][k] for k in ("steps", "seconds", "stopped_by")},
            "summary": s, "tstr": util["tstr"]["accuracy"], "trtr": util["trtr"]["accuracy"],
            "images": manifest["images"],
            "near_copies_dropped": report["validation"]["near_copies_dropped"]}


def fmt_row(r: dict) -> str:
    return (f"| {r['dataset']} | {r['variant']} | {r['budget_cpu_s']:.0f} | {r['wall_s']:.0f} | {r['steps']} | "
            f"{r['parameters'] / 1e6:.2f}M | {r['images_per_s']:.1f} | {r['tstr']:.3f} | {r['trtr']:.3f} | "
            f"{r['tstr_over_trtr']:.3f} | {r['conditional_accuracy']:.3f} | {r['frechet']:.2f} "
            f"({r['frechet_real']:.2f}) | {r['precision']:.2f} / {r['recall']:.2f} / {r['density']:.2f} / "
            f"{r['coverage']:.2f} | {r['near_copy_share']:.3f} |")


HEADER = ("| dataset | variant | train CPU s | train wall s | steps | params | images/s | TSTR | TRTR | TSTR/TRTR | "
          "cond. acc. | Fréchet (real–real) | P / R / D / C | near-copies |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def main() -> None:
    import torch

    from synthforge.engine.pipeline import default_threads

    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="+", default=["digits", "fashion_mnist"])
    ap.add_argument("--budgets", nargs="+", type=float, default=None, help="CPU seconds of training")
    ap.add_argument("--variants", nargs="+", default=["bare", "synthforge"])
    ap.add_argument("--images", type=int, default=None, help="images sampled per variant")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--recipe-run", action="store_true", help="also run recipes/digits_images.yaml end to end")
    ap.add_argument("--json", type=Path, default=None, help="append every result as a JSON line here")
    args = ap.parse_args()
    torch.set_num_threads(default_threads())
    print(f"torch threads {torch.get_num_threads()}, cores {os.cpu_count()}, load average {os.getloadavg()}",
          flush=True)
    rows = []
    for dataset in args.datasets:
        recipe, train, holdout = load_split(dataset)
        budgets = args.budgets or ([60, 240] if dataset == "digits" else [240])
        # Fashion-MNIST: 500 images, 50 a class (the bare loop samples 28×28 at about 3 images per CPU second)
        n_images = args.images or (1200 if dataset == "digits" else 500)
        print(f"{dataset}: {len(train)} train, {len(holdout)} held out", flush=True)
        for budget in budgets:
            for variant in args.variants:
                r = measure(variant, dataset, recipe, train, holdout, budget, n_images, args.seed)
                rows.append(r)
                print(fmt_row(r), flush=True)
                if args.json:
                    with open(args.json, "a") as f:
                        f.write(json.dumps(r) + "\n")
    print("\n" + HEADER)
    for r in rows:
        print(fmt_row(r))
    if args.recipe_run:
        result = recipe_run("digits_images")
        print(json.dumps(result, indent=2))
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
