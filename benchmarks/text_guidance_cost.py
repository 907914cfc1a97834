"""What classifier-free guidance and the batch size cost a fitted text model's sampling, in one process (so one
host load for every row): tokens per second for each `guidance:batch` pair, the same documents asked for each time.

    python benchmarks/text_guidance_cost.py RUN.private/model [--docs 256] [--threads 2] 1.0:128 1.5:128 1.5:384

RUN.private/model is a text run's fitted model (its generator.json keeps the recipe's sampling settings; each pair
here replaces `guidance` and `batch_size` only).
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path)
    ap.add_argument("pairs", nargs="+", help="guidance:batch_size")
    ap.add_argument("--docs", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from synthforge.families.causal_lm import CausalLMGenerator

    gen = CausalLMGenerator.load(args.model, trusted=True, device="cpu")
    base = gen.sampling_config.model_dump()
    gen.sample(8, seed=1, conditions={})  # the bfloat16 copy is made once, outside the timings
    print("| guidance | batch | documents | tokens | wall s | CPU-s | tokens/s |\n|---|---|---|---|---|---|---|")
    for pair in args.pairs:
        guidance, batch = pair.split(":")
        gen.sampling = {**base, "guidance": float(guidance), "batch_size": int(batch)}
        wall, cpu = time.perf_counter(), time.process_time()
        df = gen.sample(args.docs, seed=7, conditions={})
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"| {guidance} | {batch} | {args.docs} | {df.attrs['tokens']} | {wall:.1f} | {cpu:.1f} | "
              f"{df.attrs['tokens'] / wall:.1f} |", flush=True)


if __name__ == "__main__":
    main()
