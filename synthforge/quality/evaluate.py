"""Compute the tabular quality of a synthetic table against its real training data."""

from __future__ import annotations

import pandas as pd

from synthforge.data.profile import Profile

from .detection import detection_metric, detection_vs_holdout
from .fidelity import fidelity_metrics, fidelity_vs_holdout
from .identifiers import grade_identifiers
from .membership import attack_metrics
from .privacy import copy_metrics, privacy_metrics
from .report_model import COLUMN_KINDS, ColumnKind, TabularQuality
from .utility import uplift_on_target, utility_metric
from .value_leak import value_leak_metric

__all__ = ["ColumnKind", "evaluate_frames", "evaluate_tables", "infer_kinds"]

# Fidelity is vectorised and exact on every row up to this many; above it a seeded sample
# keeps memory bounded (documented in computed_on and notes).
FIDELITY_MAX_ROWS = 1_000_000
DISTINCT_FOR_NUMERICAL = 10
EASY_TO_TELL = 0.9  # detection AUC from which the report flags the rows as easy to tell apart, gate or not


def infer_kinds(df: pd.DataFrame) -> dict[str, ColumnKind]:
    """bool -> boolean, datetime64 -> datetime, numeric with > 10 distinct -> numerical, else
    categorical (object columns holding date strings stay categorical)."""
    kinds: dict[str, ColumnKind] = {}
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_bool_dtype(s):
            kinds[col] = "boolean"
        elif pd.api.types.is_datetime64_any_dtype(s):
            kinds[col] = "datetime"
        elif pd.api.types.is_numeric_dtype(s) and s.nunique(dropna=True) > DISTINCT_FOR_NUMERICAL:
            kinds[col] = "numerical"
        else:
            kinds[col] = "categorical"
    return kinds


def _check_inputs(real, synthetic, holdout, kinds) -> None:
    bad = {c: k for c, k in kinds.items() if k not in COLUMN_KINDS}
    if bad:
        raise ValueError(f"unknown column kinds {bad}; valid: {list(COLUMN_KINDS)}")
    for name, frame in (("real", real), ("synthetic", synthetic), ("holdout", holdout)):
        if frame is None:
            continue
        missing = [c for c in kinds if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} data lacks columns {missing}")


def _fidelity_sample(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    return df if len(df) <= FIDELITY_MAX_ROWS else df.sample(FIDELITY_MAX_ROWS, random_state=seed)


def evaluate_tables(real: pd.DataFrame, synthetic: pd.DataFrame, *,
                    kinds: dict[str, ColumnKind] | None = None,
                    holdout: pd.DataFrame | None = None, target: str | None = None,
                    random_seed: int = 0, max_rows: int = 50_000,
                    membership_attacks: bool = True) -> TabularQuality:
    """All tabular metrics for one real/synthetic pair.

    real: the rows the generator trained on. holdout: real rows it never saw (needed for the
    DCR share, used as the utility test set). max_rows caps (seeded) the rows used by
    detection, utility and privacy distances; fidelity uses every row. membership_attacks: run the
    membership-inference and anonymeter attacks (membership.py; needs a holdout; a few seconds).
    """
    kinds = dict(infer_kinds(real) if kinds is None else kinds)
    _check_inputs(real, synthetic, holdout, kinds)
    cols = list(kinds)
    real, synthetic = real[cols], synthetic[cols]
    holdout = holdout[cols] if holdout is not None else None
    notes: list[str] = []

    fr, fs = _fidelity_sample(real, random_seed), _fidelity_sample(synthetic, random_seed + 1)
    fid_on = {"real_rows": len(fr), "synthetic_rows": len(fs),
              "sampled": len(fr) < len(real) or len(fs) < len(synthetic),
              "cap": FIDELITY_MAX_ROWS, "seed": random_seed}
    if fid_on["sampled"]:
        notes.append(f"fidelity: rows capped at {FIDELITY_MAX_ROWS}, seed {random_seed}")
    shapes, trends, overall = fidelity_metrics(fr, fs, kinds, fid_on)
    if trends.value is None:
        notes.append("pair trends: no column pair is related in the real data "
                     "(|r| > 0.5 or Cramér's V > 0.3); overall = column shapes")

    detection = detection_metric(real, synthetic, kinds, max_rows=max_rows, seed=random_seed)
    if detection.computed_on.get("sampled"):
        notes.append(f"detection: rows capped at {detection.computed_on['cap']} per side, "
                     f"seed {random_seed}")

    if detection.value is not None and detection.value >= EASY_TO_TELL:
        notes.append(f"easy to tell apart: a classifier separates synthetic from real rows with AUC "
                     f"{detection.value:.3f} (>= {EASY_TO_TELL})")
    # the same grades against rows the generator never saw, beside what the real training rows score there
    vs_holdout = {"quality_vs_holdout": fidelity_vs_holdout(real, synthetic, holdout, kinds, max_rows=max_rows,
                                                            seed=random_seed),
                  "detection_auc_vs_holdout": detection_vs_holdout(real, synthetic, holdout, kinds,
                                                                   max_rows=max_rows, seed=random_seed)}
    copies, excess = copy_metrics(real, synthetic, holdout, kinds)
    dcr, nndr, close, near, privacy_notes = privacy_metrics(real, synthetic, holdout, kinds, max_rows=max_rows,
                                                            seed=random_seed)
    notes += privacy_notes
    attacks = {}
    if holdout is not None and membership_attacks:
        attacks, attack_notes = attack_metrics(real, synthetic, holdout, kinds, target=target, seed=random_seed)
        notes += attack_notes

    leak = value_leak_metric(real, synthetic, holdout, cols) if holdout is not None else None
    utility, gains = None, {}
    if target is not None:
        if target in kinds:
            utility, utility_notes = utility_metric(real, synthetic, holdout, kinds, target,
                                                    max_rows=max_rows, seed=random_seed)
            notes += utility_notes
            gains = uplift_on_target(real, synthetic, holdout, kinds, target, max_rows=max_rows, seed=random_seed)
        else:
            notes.append(f"utility: target {target!r} is not an evaluated column; skipped")
    else:
        notes.append("utility and augmentation gain: no target column, so no downstream task to measure them on")
    return TabularQuality(column_shapes=shapes, pair_trends=trends, overall=overall,
                          detection_auc=detection, exact_copy_share=copies, exact_copy_excess=excess,
                          dcr_share=dcr, close_share_excess=close, near_copy_excess=near,
                          nndr=nndr, **attacks, utility=utility, notes=notes, compared=cols, value_leak_excess=leak,
                          **gains, **vs_holdout)


def evaluate_frames(real: pd.DataFrame, synthetic: pd.DataFrame, *, holdout: pd.DataFrame | None = None,
                    target: str | None = None, random_seed: int = 0, max_rows: int = 50_000) -> TabularQuality:
    """Grade any real/synthetic pair the way a run grades its output: one profile of the real rows decides each
    column's kind (ISO date text is read as dates, numbers stored as text as numbers), ids and personal data are
    graded on format and leaks instead of fidelity, and columns the synthetic frame lacks are named and skipped."""
    common = [c for c in real.columns if c in synthetic.columns]
    absent = [str(c) for c in real.columns if c not in synthetic.columns]
    profile = Profile.from_frame(real[common], target=target if target in common else None)
    kinds = profile.metric_kinds()
    treated = profile.generated_columns()
    prepared = [profile.prepare(f[common]) if f is not None else None for f in (real, synthetic, holdout)]
    tab = evaluate_tables(prepared[0], prepared[1], kinds=kinds, holdout=prepared[2],
                          target=target if target in kinds else None, random_seed=random_seed, max_rows=max_rows)
    notes = ([f"columns not in the synthetic table, not compared: {', '.join(absent)}"] if absent else [])
    notes += [f"column {c.name!r} not compared: {c.dropped}" for c in profile.columns if c.dropped]
    why = {c.name: c.reason for c in profile.columns}
    notes += [f"column {c!r} graded as {k.replace('_', ' ')} (format, uniqueness, leaks), not as a distribution "
              f"(why: {why[c]})" for c, k in treated.items()]
    return tab.model_copy(update={"notes": tab.notes + notes,
                                  "identifiers": grade_identifiers(real, synthetic, treated)})
