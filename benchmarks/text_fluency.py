"""Fluency figures (synthforge/quality/fluency.py) on the drug reviews: real held-out reviews, shuffled-word reviews and
the documents of a run, each against the real held-out reviews, as the report computes them (same seeded samples).

    python benchmarks/text_fluency.py [--run runs/medical_text] [--threads 1] [--docs 120]

Prints median perplexity under SmolLM2-135M (first 256 tokens), the ratio to the real held-out median, the non-word
share and its excess, and the CPU seconds each side cost. Real held-out against itself is the held-out split cut in two
halves (one judged against the other); shuffled is the held-out reviews with the words of each shuffled.
"""

from __future__ import annotations

import argparse
import glob
import time

import numpy as np
import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", help="a run folder (its data/*.parquet, or the .partial's) to grade beside the real")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--docs", type=int, default=120)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cases", nargs="+", default=["real", "shuffled", "run"], choices=["real", "shuffled", "run"])
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from synthforge.data.examples import EXAMPLES
    from synthforge.quality.fluency import fluency_stats, load_judge, load_word_list

    df = EXAMPLES["drug_reviews"][1]()
    train = df[df.split == "train"].review.astype(str).tolist()
    test = df[df.split == "test"].review.astype(str).tolist()
    t0 = time.process_time()
    judge = load_judge("smollm2-135m")
    print(f"judge loaded in {time.process_time() - t0:.1f} CPU-s, {args.threads} thread(s)")
    words = load_word_list()
    rng = np.random.default_rng(args.seed)
    shuffled = []
    for d in test:
        w = d.split()
        rng.shuffle(w)
        shuffled.append(" ".join(w))
    half = len(test) // 2
    cases = [("real held-out (half A vs half B)", test[:half], test[half:])] * ("real" in args.cases) + \
        [("shuffled words", shuffled, test)] * ("shuffled" in args.cases)
    if args.run and "run" in args.cases:
        parts = sorted(glob.glob(f"{args.run}/data/*.parquet")) or sorted(glob.glob(f"{args.run}.partial/data/*.parquet"))
        synth = pd.concat([pd.read_parquet(p) for p in parts]).review.astype(str).tolist()
        cases.append((f"run {args.run} ({len(synth)} documents)", synth, test))
    print("| documents | median ppl | real median ppl | ratio | synthetic above real p90 | non-word share | "
          "real non-word share | excess (points) | CPU-s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, synth, real in cases:
        t0 = time.process_time()
        flu, notes = fluency_stats(synth, real, train, np.random.default_rng([args.seed, 33]), judge=judge,
                                   word_list=words, docs=args.docs)
        cpu = time.process_time() - t0
        p, n = flu["perplexity"], flu.get("nonwords") or {}
        print(f"| {name} | {p['median']['synthetic']:.1f} | {p['median']['real']:.1f} | {p['ratio']:.2f} | "
              f"{p['synthetic_above_real_p90']:.0%} | {n.get('synthetic', {}).get('share', float('nan')):.2%} | "
              f"{n.get('real', {}).get('share', float('nan')):.2%} | {n.get('excess_points', float('nan')):+.2f} | "
              f"{cpu:.0f} |", flush=True)
        for w in flu["worst"][:2]:
            print("   worst:", w["perplexity"], w["text"][:160].replace("\n", " "))
        for note in notes:
            print("   note:", note)


if __name__ == "__main__":
    main()
