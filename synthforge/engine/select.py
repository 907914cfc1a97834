"""`family: auto`: fit each candidate within the time budget on most of the training rows, score a sample of each
against the validation rows carved from the training rows (never the holdout the report grades on), keep the best.

The score a candidate is chosen on, its "validation score", is the mean of our fidelity (column shapes and pair
trends) and 1 − |2·AUC − 1| for a gradient-boosting detector, both against the validation rows: a family that
matches the marginals but is easy to tell apart does not win. `time_budget` caps the whole fit in CPU seconds of
this process (CPU time, not wall time, so a busy machine changes nothing): each candidate gets its share, and a
candidate left with too little is skipped and says so. The winner is refitted on every training row when the rest
of the budget holds another fit of its measured cost; otherwise the validation-split fit is kept (and said).
"""

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
from rich.console import Console

from synthforge.data.profile import Profile
from synthforge.errors import UserError
from synthforge.families import tabular_families as tf
from synthforge.quality.detection import detection_metric
from synthforge.quality.fidelity import fidelity_metrics
from synthforge.randomness import SELECT_SEED_STREAM, derive_seed


VALIDATION_FRACTION = 0.2
_MIN_NEURAL_SECONDS = 10.0  # below this a GAN/VAE gets a handful of epochs and cannot win; skip it and say so


@dataclass
class Candidate:
    family: str
    score: float | None = None
    fidelity: float | None = None
    detection_auc: float | None = None
    fit_seconds: float | None = None
    epochs: int | None = None
    chosen: bool = False
    why: str = ""
    generator: Any = None

    def row(self) -> dict:
        return {"family": self.family, "licence": tf.licence_of(self.family), "score": self.score,
                "validation_fidelity": self.fidelity, "validation_detection_auc": self.detection_auc,
                "fit_seconds": self.fit_seconds, "epochs": self.epochs, "chosen": self.chosen, "why": self.why}


def validation_split(train: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    order = np.random.default_rng(seed).permutation(len(train))
    n_val = max(1, int(round(len(train) * VALIDATION_FRACTION)))
    return (train.iloc[np.sort(order[n_val:])].reset_index(drop=True),
            train.iloc[np.sort(order[:n_val])].reset_index(drop=True))


def select_family(candidates: tuple[str, ...], profile: Profile, train: pd.DataFrame, *, device: str,
                  time_budget: float, random_seed: int, params: dict[str, dict] | None = None,
                  console: Console | None = None) -> tuple[Any, list[Candidate]]:
    params = params or {}
    if len(candidates) == 1:  # nothing to choose between: every training row goes into the one fit
        family = candidates[0]
        gen = tf.make(family, profile, params.get(family), device=device, time_budget=time_budget,
                      random_state=derive_seed(random_seed, SELECT_SEED_STREAM, 0)).fit(train)
        return gen, [Candidate(family, fit_seconds=gen.fit_seconds_, epochs=epochs_of(gen), chosen=True,
                               why="the only candidate", generator=gen)]
    kinds = profile.metric_kinds()
    fit_rows, val_rows = validation_split(train, derive_seed(random_seed, SELECT_SEED_STREAM))
    # permissive and cheap first: they set the bar the GANs and VAEs must clear in the time that is left
    order = sorted(candidates, key=lambda f: (f not in tf.PERMISSIVE, f in tf.NEURAL))
    started = time.process_time()
    results: list[Candidate] = []
    for i, family in enumerate(order):
        remaining = time_budget - (time.process_time() - started)
        share = remaining / (len(order) - i)
        cand = Candidate(family)
        results.append(cand)
        if family in tf.NEURAL and share < _MIN_NEURAL_SECONDS:
            cand.why = (f"skipped: {max(share, 0):.0f} CPU s of the time budget left for it "
                        f"(needs {_MIN_NEURAL_SECONDS:.0f})")
            continue
        if console:
            console.print(f"  fitting {family} (up to {share:.0f} CPU s)")
        gen = tf.make(family, profile, params.get(family), device=device, time_budget=share,
                      random_state=derive_seed(random_seed, SELECT_SEED_STREAM, i)).fit(fit_rows)
        sample = gen.sample(len(val_rows), seed=derive_seed(random_seed, SELECT_SEED_STREAM, 100 + i))
        cand.fidelity = fidelity_metrics(val_rows, sample, kinds)[2].value
        cand.detection_auc = detection_metric(val_rows, sample, kinds, max_rows=20_000, seed=random_seed).value
        realism = 1 - abs(2 * cand.detection_auc - 1) if cand.detection_auc is not None else 0.0
        cand.score = (cand.fidelity + realism) / 2
        cand.fit_seconds, cand.generator = gen.fit_seconds_, gen
        cand.epochs = epochs_of(gen)
        if console:
            console.print(f"  {family}: validation score {cand.score:.4f} (validation fidelity {cand.fidelity:.4f}, "
                          f"detection AUC {cand.detection_auc:.3f}; {cand.fit_seconds:.1f} CPU s)")
    scored = [c for c in results if c.score is not None]
    if not scored:
        raise UserError(f"generator.time_budget: {time_budget:g} CPU s left no candidate of "
                        f"{', '.join(order)} enough time to fit; raise time_budget or name a family")
    left = time_budget - (time.process_time() - started)

    def refit(best: Candidate, budget: float):
        return tf.make(best.family, profile, params.get(best.family), device=device, time_budget=budget,
                       random_state=derive_seed(random_seed, SELECT_SEED_STREAM, order.index(best.family))).fit(train)

    best = crown(scored, name=lambda c: c.family, what="validation score", unit="rows", n_val=len(val_rows),
                 n_fit=len(fit_rows), n_all=len(train), left=left, refit=refit)
    return best.generator, results


def crown(scored: list, *, name: Callable[[Any], str], what: str, unit: str, n_val: int, n_fit: int, n_all: int,
          left: float, refit: Callable[[Any, float], Any]):
    """The best scored candidate (tables or text), chosen and told why; the others told why not, their models
    dropped. The winner is refitted on every training row by `refit(best, budget)` when the `left` CPU seconds hold
    1.5× its measured fit, else its fit on the validation split's rest is kept (and said)."""
    best = max(scored, key=lambda c: c.score)
    best.chosen = True
    others = ", ".join(f"{name(c)} {c.score:.3f}" for c in scored if c is not best)
    best.why = (f"highest {what}: {best.score:.3f}" + (f" vs {others}" if others else "")
                + f" (scored on {n_val} validation {unit} carved from the {n_all} training {unit})")
    for c in scored:
        if c is not best:
            c.why, c.generator = f"{what} {c.score:.3f} < {best.score:.3f}", None
    if left >= 1.5 * (best.fit_seconds or 0):
        best.generator = refit(best, left)
        best.why += f"; refitted on every training {unit[:-1]}"
    else:
        best.why += f"; kept its fit on {n_fit} of {n_all} training {unit} (no budget left to refit)"
    return best


def epochs_of(gen) -> int | None:
    history = getattr(gen, "history_", None)
    return len(history) if history else gen.fitted_params_.get("epochs")
