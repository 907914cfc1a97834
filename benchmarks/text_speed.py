"""What each text family costs on this machine, measured on the drug reviews: CPU seconds per training step and per
1,000 generated tokens, and what a 600-document run would cost at those rates (a projection, labelled as one).

    python benchmarks/text_speed.py [--variants scratch prompted lora] [--train-cpu 120] [--docs 16] [--threads 1]

scratch: the shipped recipe's GPT-2 (4 × 256), trained for --train-cpu CPU seconds, then sampled. lora: SmolLM2-135M
with LoRA (r 16), trained for --train-cpu CPU seconds, then sampled. prompted: SmolLM2-135M, nothing trained, each
document asked for with 3 seed reviews of its rating in the prompt. Every variant samples --docs documents of up to
--tokens new tokens in one batch (the KV-cached loop of lm_sampling.py).
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", nargs="+", default=["scratch", "prompted", "lora"])
    ap.add_argument("--train-cpu", type=float, default=120.0, help="training CPU seconds (scratch, lora)")
    ap.add_argument("--docs", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch

    from synthforge.engine.modalities import text as tm
    from synthforge.families.causal_lm import CausalLMGenerator, check_params
    from synthforge.recipe import load_recipe
    from synthforge.data.sources import read_seed

    torch.set_num_threads(args.threads)
    recipe = load_recipe(ROOT / "recipes" / "medical_text.yaml")
    frame, _ = tm.prepare(read_seed(recipe.seed.source).frame, recipe, ())
    train, _ = tm.split_text(frame, recipe)
    words = train["review"].str.split().str.len()
    doc_tokens = float(words.mean()) * 1.3  # about 1.3 tokens a word for both tokenizers on this English
    variants = {
        "scratch": ("causal_lm", dict(recipe.generator.params)),
        "lora": ("causal_lm", {"base_model": "smollm2-135m", "adaptation": "lora", "max_length": 256, "batch_size": 8,
                               "val_fraction": 0.0, "epochs": 1000}),
        "prompted": ("prompted", {"shots": 3, "shot_words": 80}),
    }
    rows = []
    for name in args.variants:
        family, params = variants[name]
        p = check_params({**params, "epochs": 1000} if name == "scratch" else params, family)
        gen = CausalLMGenerator(p, text_column="review", label_column="rating", random_state=42,
                                sampling={"max_new_tokens": args.tokens, "batch_size": args.docs, "min_new_tokens": 4},
                                time_budget=args.train_cpu)
        cpu0 = time.process_time()
        gen.fit(train)
        fit_cpu = time.process_time() - cpu0
        steps, train_cpu = gen.fit_info_["steps"], gen.fit_info_["train_seconds"]
        cpu0, wall0 = time.process_time(), time.perf_counter()
        out = gen.sample(args.docs, seed=0, conditions={"rating": "negative"})
        gen_cpu, gen_wall = time.process_time() - cpu0, time.perf_counter() - wall0
        tokens = int(out["gen_tokens"].sum())
        per_k = gen_cpu / tokens * 1000
        step_docs = p.batch_size
        epoch_cpu = train_cpu / steps * len(train) / step_docs if steps else 0.0
        epochs = recipe.generator.params["epochs"] if name == "scratch" else (1 if steps else 0)
        row = {"variant": name, "model": gen.model_name, "threads": args.threads, "fit_cpu_s": round(fit_cpu, 1),
               "train_steps": steps, "cpu_s_per_step": round(train_cpu / steps, 2) if steps else None,
               "docs_per_step": step_docs, "cpu_s_per_epoch_600": round(epoch_cpu, 0) if steps else None,
               "generated_tokens": tokens, "gen_cpu_s": round(gen_cpu, 1), "gen_wall_s": round(gen_wall, 1),
               "cpu_s_per_1k_tokens": round(per_k, 1),
               "projected_cpu_s_600_docs": round(epochs * epoch_cpu + 600 * doc_tokens / 1000 * per_k, 0),
               "projection": f"{epochs} epoch(s) of 600 reviews + 600 reviews of {doc_tokens:.0f} tokens",
               "sample": out["review"].iloc[0][:200]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("| variant | train CPU-s / step (docs) | CPU-s / epoch of 600 | CPU-s / 1k generated tokens | projected CPU-s, "
          "600 documents |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['cpu_s_per_step'] or '–'} ({r['docs_per_step']}) | {r['cpu_s_per_epoch_600'] or '–'} | "
              f"{r['cpu_s_per_1k_tokens']} | {r['projected_cpu_s_600_docs']:.0f} ({r['projection']}) |")


if __name__ == "__main__":
    main()
