"""What sampling precision costs and changes, on a fitted text model (a run's private `model/` folder): held-out
perplexity (teacher-forced, the model's own seed-vocabulary head; tokens outside it are skipped) and the wall/CPU
seconds to write --batch documents of 64 tokens (128), for float32, bfloat16 (`sampling.precision: bfloat16`) and torch's
dynamic int8 quantisation (all linear layers, and with the MLP down-projections left float).

    python benchmarks/text_precision.py RUN.private/model [--docs 80] [--threads 2] [--batch 128]
"""

import argparse
import copy
import json
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as synthforge sets it; it must precede torch's import


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--docs", type=int, default=80)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128, help="documents written at once")
    args = ap.parse_args()

    import numpy as np
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    from synthforge.data.sources import read_seed
    from synthforge.engine.modalities import text as tm
    from synthforge.families.causal_lm import CausalLMGenerator, check_sampling
    from synthforge.families.lm_sampling import generate
    from synthforge.families.lm_training import encode
    from synthforge.recipe import load_recipe

    torch.set_num_threads(args.threads)
    gen = CausalLMGenerator.load(Path(args.model))
    recipe = load_recipe(ROOT / "recipes" / "medical_text.yaml")
    frame, _ = tm.prepare(read_seed(recipe.seed.source).frame, recipe, ())
    _, hold = tm.split_text(frame, recipe)
    hold = hold.iloc[:args.docs]
    docs = [encode(gen.tokenizer_, {"rating": r}, t, 192) for r, t in zip(hold["rating"], hold["review"])]
    plain = copy.deepcopy(gen.model_)
    plain = (plain.merge_and_unload() if hasattr(plain, "merge_and_unload") else plain).eval()

    def int8(skip: tuple[str, ...]):
        m = copy.deepcopy(plain)
        head = m.get_output_embeddings()
        names = {n: per_channel_dynamic_qconfig for n, mod in m.named_modules()
                 if isinstance(mod, torch.nn.Linear) and mod is not head and not any(s in n for s in skip)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return quantize_dynamic(m, names)

    def perplexity(m) -> float:
        total, n = 0.0, 0
        with torch.no_grad():
            for d in docs:
                ids = torch.tensor([d.ids])
                lp = m(input_ids=ids).logits[0, :-1].float().log_softmax(-1)
                loss = -lp[torch.arange(ids.shape[1] - 1), ids[0, 1:]][d.n_prefix - 1:]
                loss = loss[torch.isfinite(loss)]
                total, n = total + float(loss.sum()), n + len(loss)
        return float(np.exp(total / n))

    sp = check_sampling({"temperature": 0.8, "top_p": 0.95, "max_new_tokens": 64, "min_new_tokens": 64,
                         "batch_size": args.batch})
    head = gen.tokenizer_("<|rating=negative|>", add_special_tokens=False)["input_ids"]
    for name, m in [("float32", plain), ("bfloat16", copy.deepcopy(plain).to(torch.bfloat16)),
                    ("int8", int8(())), ("int8, down_proj float", int8(("down_proj",)))]:
        ppl = perplexity(m)
        wall, cpu = time.perf_counter(), time.process_time()
        generate(m, [head] * args.batch, torch.Generator().manual_seed(0), sp, eos_id=gen.tokenizer_.eos_token_id,
                 pad_id=gen.tokenizer_.pad_token_id, banned=[], device="cpu", max_positions=2048)
        print(json.dumps({"precision": name, "held_out_perplexity": round(ppl, 2),
                          f"decode_{args.batch}x64_wall_s": round(time.perf_counter() - wall, 1),
                          "decode_cpu_s": round(time.process_time() - cpu, 1)}), flush=True)


if __name__ == "__main__":
    main()
