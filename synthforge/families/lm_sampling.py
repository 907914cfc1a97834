"""Sampling text from the causal_lm family's model: a plain KV-cached loop over a batch of prefixes.

`generate` left-pads the control prefixes, then draws one token per row per step (repetition penalty, control
tokens banned, EOS held back for `min_new_tokens`) with `sample_tokens` (temperature, top-k, top-p) from a
`torch.Generator` the caller seeds, so a batch's text depends on its seed only. A row that has ended leaves the
batch and its KV cache: 128 drug reviews of ≈ 70 tokens took 9.5 CPU-s instead of 27 when every row waited for the
longest (256 tokens). `tidy` cleans a decoded document.
"""

from __future__ import annotations

import inspect
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from synthforge.families.causal_lm import SamplingParams


def _cache_kw(model) -> str:
    """transformers 5 calls the KV cache `cache`; 4.x called it `past_key_values`."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def generate(model, prefix_ids: list[list[int]], gen, sp: SamplingParams, *, eos_id: int, pad_id: int,
             banned: list[int], device: str, max_positions: int,
             null_ids: list[list[int]] | None = None, min_lengths: list[int] | None = None,
             end_boost: float = 1.0) -> list[tuple[list[int], bool]]:
    """Sample continuations of left-padded prefixes; (token ids, ended with EOS) per row. With `null_ids` (one
    unconditioned prefix per row) and `sp.guidance` ≠ 1, each token is drawn from classifier-free guidance (Ho &
    Salimans 2022; for language models Sanchez et al. 2023, "Stay on topic with Classifier-Free Guidance"): the
    log-probabilities log p(x|null) + γ (log p(x|c) − log p(x|null)), both rows of a document in one batch.

    `min_lengths` (tokens, the end token included, one per row): a row's end token is held back until its length,
    then weighs `end_boost` times more, so the document ends at the next point the model would end it rather than
    running on to max_new_tokens. A fine-tuned model ends its own documents early when it writes freely (drug
    reviews: 52 tokens on average against the seed's 111, with the end token's probability on real held-out
    reviews close to their own rate): a length prior from the seed gives its documents the seed's lengths."""
    import torch

    guided = null_ids is not None and sp.guidance != 1
    heads = list(prefix_ids) + (list(null_ids) if guided else [])
    B, L = len(prefix_ids), max(len(p) for p in heads)
    ids = torch.full((len(heads), L), pad_id, dtype=torch.long)
    mask = torch.zeros((len(heads), L), dtype=torch.long)
    for i, p in enumerate(heads):
        if p:
            ids[i, L - len(p):] = torch.tensor(p)
            mask[i, L - len(p):] = 1
    if L == 0 or not mask[:, -1].all():  # an unconditioned model starts from EOS, GPT-2's document separator
        ids = torch.cat([ids, torch.full((len(heads), 1), eos_id)], 1)
        mask = torch.cat([mask, torch.ones(len(heads), 1, dtype=torch.long)], 1)
    ids, mask = ids.to(device), mask.to(device)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    steps = min(sp.max_new_tokens, max_positions - ids.shape[1])
    kw = _cache_kw(model)
    out = torch.full((B, max(steps, 0)), pad_id, dtype=torch.long, device=device)
    ban = torch.tensor(sorted(set(banned) - {eos_id}), dtype=torch.long, device=device)
    # `rows` are the rows still writing; a row that ends leaves the batch (its cache rows too), so the cost of a
    # batch follows its documents' lengths, not its longest document's
    rows = torch.arange(B, device=device)
    seen = torch.zeros((B, _vocab(model)), dtype=torch.bool, device=device)
    mins = None if min_lengths is None else torch.tensor(min_lengths, dtype=torch.long, device=device) - 1
    boost = math.log(end_boost) if min_lengths is not None else 0.0
    t = 0
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
        res = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
        cache, nxt_pos = getattr(res, kw), pos[:, -1:] + 1
        L1 = ids.shape[1]
        full_mask = torch.cat([mask, torch.ones((len(heads), max(steps, 0)), dtype=torch.long, device=device)], 1)
        for t in range(steps):
            logits = res.logits[:, -1, :].float()[:, :seen.shape[1]]
            if guided:
                logits = guide(logits[:len(rows)], logits[len(rows):], sp.guidance)
            if len(ban):
                logits[:, ban] = -float("inf")
            if mins is not None:
                end = logits[:, eos_id]
                logits[:, eos_id] = torch.where(t < mins[rows], torch.full_like(end, -float("inf")), end + boost)
            if t < sp.min_new_tokens:
                logits[:, eos_id] = -float("inf")
            if sp.repetition_penalty > 1:
                pen = torch.where(logits > 0, logits / sp.repetition_penalty, logits * sp.repetition_penalty)
                logits = torch.where(seen, pen, logits)
            nxt = sample_tokens(logits, sp, gen)
            out[rows, t] = nxt
            seen[torch.arange(len(rows), device=device), nxt] = True
            going = nxt != eos_id
            if not bool(going.any()) or t + 1 == steps:
                break
            if not bool(going.all()):
                keep = going.nonzero().squeeze(1)
                both = torch.cat([keep, keep + len(rows)]) if guided else keep
                rows, nxt, seen = rows[keep], nxt[keep], seen[keep]
                nxt_pos, full_mask = nxt_pos[both], full_mask[both]
                cache.batch_select_indices(both)
            step_ids = torch.cat([nxt, nxt]) if guided else nxt
            res = model(input_ids=step_ids[:, None], attention_mask=full_mask[:, :L1 + t + 1], position_ids=nxt_pos,
                        use_cache=True, **{kw: cache})
            cache, nxt_pos = getattr(res, kw), nxt_pos + 1
    result = []
    for i in range(B):
        row = out[i, :t + 1].tolist() if steps > 0 else []
        ended = eos_id in row
        row = row[:row.index(eos_id)] if ended else [x for x in row if x != pad_id]
        result.append((row, ended))
    return result


def guide(cond, null, scale: float):
    """Classifier-free guidance on logits: log p(x|null) + scale (log p(x|c) − log p(x|null)); a token either
    distribution rules out (-inf: outside the seed vocabulary) stays ruled out."""
    import torch

    c, u = cond.log_softmax(-1), null.log_softmax(-1)
    return torch.where(torch.isinf(c) | torch.isinf(u), torch.full_like(c, -float("inf")), u + scale * (c - u))


def _vocab(model) -> int:
    return int(model.get_output_embeddings().weight.shape[0]) if model.get_output_embeddings() is not None \
        else int(model.config.vocab_size)


def sample_tokens(logits, sp: SamplingParams, gen):
    """One token per row: temperature, then top-k, then nucleus (top-p: the most likely tokens whose probability
    together reaches p; Holtzman et al. 2020, "The Curious Case of Neural Text Degeneration", §3.1).

    Sorting the vocabulary at every step was the slowest part of sampling on a CPU, so the nucleus is sampled by
    rejection instead: draw a token from the whole distribution (inverse CDF with `gen`) and keep it if the tokens
    more likely than it hold less than p; otherwise draw again. Kept draws follow the distribution restricted to the
    nucleus and renormalised, exactly; a row is redrawn with probability 1 − p (5 % at p = 0.95)."""
    import torch

    probs = (logits / sp.temperature).softmax(-1)
    ids = None
    if sp.top_k and sp.top_k < probs.shape[-1]:  # top-k first: a small sorted slice, then the nucleus inside it
        probs, ids = torch.topk(probs, sp.top_k, dim=-1)
        if sp.top_p < 1:
            cum = probs.cumsum(-1)
            probs = probs * ((cum - probs) < sp.top_p * cum[:, -1:])
    B, V = probs.shape
    c = probs.cumsum(-1)
    out = torch.empty(B, dtype=torch.long, device=probs.device)
    pending = torch.arange(B, device=probs.device)
    for _ in range(64):
        u = torch.rand((len(pending), 1), generator=gen).to(probs.device)
        cand = torch.searchsorted(c[pending], u * c[pending, -1:]).clamp(max=V - 1)
        ok = torch.ones(len(pending), dtype=torch.bool, device=probs.device)
        if sp.top_p < 1 and ids is None:
            p = probs[pending]
            pc = p.gather(1, cand)
            ok = (p * (p > pc)).sum(-1) < sp.top_p * c[pending, -1]
        out[pending[ok]] = cand.squeeze(1)[ok]
        pending = pending[~ok]
        if not len(pending):
            break
    if len(pending):  # 64 rejections in a row: practically impossible; the most likely token is always in the nucleus
        out[pending] = probs[pending].argmax(-1)
    return out if ids is None else ids.gather(1, out[:, None]).squeeze(1)


def tidy(text: str, ended: bool) -> str:
    """Strip; a document cut by max_new_tokens ends at its last full sentence when it has one."""
    text = text.replace("\ufffd", "").strip()  # a byte-level model can stop inside a multi-byte character
    if not ended:
        cut = max(text.rfind(". "), text.rfind("! "), text.rfind("? "), text.rfind(".\n"))
        if cut > len(text) // 2:
            text = text[:cut + 1]
    return text
