"""`family: auto`: fit each candidate that fits in the time budget on the training split, score a sample of each
against the real holdout (rows no candidate saw) with our own fidelity metric, keep the best."""

import time
from dataclasses import dataclass

import pandas as pd
from rich.console import Console

from synthforge.data.profile import Profile
from synthforge.families.sdv_tabular import NEURAL, SDVGenerator
from synthforge.quality.fidelity import fidelity_metrics
from synthforge.randomness import derive_seed

SELECT_SEED_STREAM = 2
_MIN_NEURAL_SECONDS = 20.0  # below this a GAN/VAE gets a handful of epochs and cannot win; skip it and say so


@dataclass
class Candidate:
    family: str
    score: float | None = None
    fit_seconds: float | None = None
    epochs: int | None = None
    chosen: bool = False
    why: str = ""
    generator: SDVGenerator | None = None

    def row(self) -> dict:
        return {"family": self.family, "score": self.score, "fit_seconds": self.fit_seconds,
                "epochs": self.epochs, "chosen": self.chosen, "why": self.why}


def select_family(candidates: tuple[str, ...], profile: Profile, train: pd.DataFrame, holdout: pd.DataFrame, *,
                  device: str, time_budget: float, random_seed: int, console: Console | None = None
                  ) -> tuple[SDVGenerator, list[Candidate]]:
    kinds = profile.metric_kinds()
    # the cheap statistical model goes first: it always fits and sets the bar the neural ones must clear
    order = sorted(candidates, key=lambda f: f in NEURAL)
    started = time.perf_counter()
    results: list[Candidate] = []
    for i, family in enumerate(order):
        remaining = time_budget - (time.perf_counter() - started)
        share = remaining / (len(order) - i)
        cand = Candidate(family)
        results.append(cand)
        if family in NEURAL and share < _MIN_NEURAL_SECONDS:
            cand.why = f"skipped: {share:.0f}s of the time budget left for it (needs {_MIN_NEURAL_SECONDS:.0f}s)"
            continue
        if console:
            console.print(f"  fitting {family} (budget {share:.0f}s)")
        gen = SDVGenerator(family, profile, device=device, time_budget=share if family in NEURAL else None,
                           random_state=derive_seed(random_seed, SELECT_SEED_STREAM, i)).fit(train)
        sample = gen.sample(max(len(holdout), 1000), seed=derive_seed(random_seed, SELECT_SEED_STREAM, 100 + i))
        _, _, overall = fidelity_metrics(holdout, sample, kinds)
        cand.score, cand.fit_seconds, cand.generator = overall.value, gen.fit_seconds_, gen
        cand.epochs = gen.fitted_params_.get("epochs")
        if console:
            console.print(f"  {family}: fidelity vs holdout {cand.score:.4f} ({cand.fit_seconds:.1f}s)")
    scored = [c for c in results if c.score is not None]
    best = max(scored, key=lambda c: c.score)
    best.chosen = True
    others = ", ".join(f"{c.family} {c.score:.3f}" for c in scored if c is not best)
    best.why = (f"highest fidelity against the real holdout: {best.score:.3f}" + (f" vs {others}" if others else ""))
    for c in scored:
        if c is not best:
            c.why = f"fidelity {c.score:.3f} < {best.score:.3f}"
            c.generator = None
    return best.generator, results
