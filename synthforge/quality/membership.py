"""Attacks on a synthetic table: can someone holding it tell the training rows from real rows never trained on?

Targets: the holdout rows (non-members, at most MAX_TARGETS) and as many training rows drawn with the seed
(members), so chance is AUC 0.5 whatever the split.

1. Distance to the closest synthetic record (the "DCR" attack; GAN-Leaks, Chen et al., CCS 2020, the full black-box
   attack): score(x) = -min_s d(x, s) in privacy.py's encoding. Copies put members at distance 0.
2. Density ratio in the manner of DOMIAS (van Breugel et al., AISTATS 2023, eq. 2): score(x) = log p_syn(x) -
   log p_ref(x), both Gaussian KDEs (scipy, Scott's bandwidth) in the PCA space (≤ 10 components) of that
   encoding; the reference set is real non-member data, the holdout, cross-fitted in two folds so that no target is
   scored by a density that holds it. Overfitting raises p_syn at members above what the population explains.
   mia_auc is the larger of the two AUCs (the attacker uses the better one); each, and the chance interval of an
   AUC on these many targets, are in its detail.
3. anonymeter (Giomi et al., PoPETs 2023; Clear BSD), up to 1,000 attacks each: singling-out (univariate queries), linkability (the columns
   split in two halves, 10 neighbours) and attribute-inference (the target and up to two other columns as secrets,
   the rest known; inference_risk is the largest) risks, each (attack - control) / (1 - control) with the holdout
   as control; the naive baseline attack's rate is in detail. anonymeter's metadata pins numpy < 1.27 although it
   runs on numpy 2, so it cannot be a dependency: its source is vendored in quality/vendor/anonymeter (its numba
   neighbour search replaced by numpy; the folder's __init__ says what changed), so every install computes the risks.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.stats import gaussian_kde
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

from .detection import one_thread, seeded_cap
from .privacy import FULL_TRAIN_MAX_ROWS, PRIVACY_MAX_ROWS, _canonical, _Encoder, _snap
from .report_model import Metric

MAX_TARGETS = 2_000  # non-members (and as many members) scored by the attacks
KDE_MAX_ROWS = 5_000  # synthetic rows in the KDE
KDE_COMPONENTS = 10
N_ATTACKS = 1_000  # anonymeter attacks per evaluator, at most the holdout's rows (the control needs as many). The
# risk is (attack - control) / (1 - control): at a control rate of 0.7 and 500 attacks its sd is ≈ 0.1 per secret
# (credit_data's recipe run read 0.18 [0.01, 0.35] for Marital), at 1,000 ≈ 0.07
ANONYMETER_MAX_SYN = 5_000
INFERENCE_SECRETS = 3  # the target and up to two more columns


def _chance_interval(n_pos: int, n_neg: int) -> list[float]:
    """95 % interval of the AUC of a score that knows nothing (Mann-Whitney under the null)."""
    sd = np.sqrt((n_pos + n_neg + 1) / (12.0 * n_pos * n_neg))
    return [0.5 - 1.96 * sd, 0.5 + 1.96 * sd]


def _density_scores(xs: np.ndarray, xref: np.ndarray, xq: np.ndarray, seed: int) -> np.ndarray:
    """log p_syn(xq) - log p_ref(xq) with Gaussian KDEs in the synthetic rows' PCA space."""
    rng = np.random.default_rng(seed)
    xs = xs[rng.choice(len(xs), KDE_MAX_ROWS, replace=False)] if len(xs) > KDE_MAX_ROWS else xs
    k = int(min(KDE_COMPONENTS, xs.shape[1], len(xref) - 1, len(xs) - 1))
    pca = PCA(n_components=k, random_state=seed).fit(xs)
    keep = pca.explained_variance_ > 1e-9 * max(pca.explained_variance_.max(), 1e-300)
    zs, zr, zq = (pca.transform(x)[:, keep] for x in (xs, xref, xq))
    return gaussian_kde(zs.T).logpdf(zq.T) - gaussian_kde(zr.T).logpdf(zq.T)


def membership_metric(train: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame,
                      kinds: dict[str, str], *, seed: int) -> tuple[Metric, list[str]]:
    notes: list[str] = []
    non = seeded_cap(holdout, MAX_TARGETS, seed + 11)
    mem = seeded_cap(train, len(non), seed + 12)
    syn = seeded_cap(synthetic, PRIVACY_MAX_ROWS, seed + 13)
    on = {"members": len(mem), "non_members": len(non), "synthetic_rows": len(syn), "seed": seed}
    definition = ("AUC of the stronger of two membership-inference attacks (distance to the closest synthetic row; "
                  "DOMIAS-style density ratio synthetic/holdout) telling training rows from holdout rows, "
                  "equal numbers of each; 0.5 = the synthetic table tells nothing about who was trained on")
    if len(mem) < 2 or len(non) < 4 or len(syn) < 2 or not kinds:
        return Metric(name="mia_auc", value=None, lower=0.0, upper=1.0, higher_is_better=False,
                      definition=definition, computed_on=on), ["membership inference: too few rows"]
    enc = _Encoder(seeded_cap(train, FULL_TRAIN_MAX_ROWS, seed + 4), kinds)
    xm, xn, xs = enc.transform(mem), enc.transform(non), enc.transform(syn)
    labels = np.r_[np.ones(len(xm)), np.zeros(len(xn))]
    xq = np.vstack([xm, xn])
    # 1. distance to the closest synthetic record
    with one_thread():
        d = _snap(NearestNeighbors(n_neighbors=1).fit(xs).kneighbors(xq, return_distance=True)[0][:, 0])
    auc_dcr = float(roc_auc_score(labels, -d))
    # 2. DOMIAS: two folds; each fold's targets are scored against a reference density of the other fold's holdout
    fold_m = np.random.default_rng(seed + 14).permutation(len(xm)) % 2
    fold_n = np.random.default_rng(seed + 15).permutation(len(xn)) % 2
    scores = np.empty(len(xq))
    auc_density = None
    try:
        for f in (0, 1):
            query = np.r_[fold_m == f, fold_n == f]
            scores[query] = _density_scores(xs, xn[fold_n != f], xq[query], seed)
        auc_density = float(roc_auc_score(labels, np.nan_to_num(scores, nan=0.0, neginf=-1e300, posinf=1e300)))
    except (np.linalg.LinAlgError, ValueError) as err:  # a singular covariance (a constant table)
        notes.append(f"membership inference: density-ratio attack not computed ({type(err).__name__}: {err})")
    aucs = [a for a in (auc_dcr, auc_density) if a is not None]
    return Metric(name="mia_auc", value=max(aucs), lower=0.0, upper=1.0, higher_is_better=False,
                  definition=definition, computed_on=on,
                  detail={"dcr_attack_auc": auc_dcr, "density_attack_auc": auc_density,
                          "chance_ci95": _chance_interval(len(xm), len(xn)),
                          "median_distance_members": float(np.median(d[labels == 1])),
                          "median_distance_non_members": float(np.median(d[labels == 0]))}), notes


def _anonymeter_frame(df: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """Numbers as floats, datetimes as days, categories as text: the dtypes anonymeter's mixed distance reads."""
    canon = _canonical(df, kinds)
    for col, kind in kinds.items():
        if kind == "datetime":
            v = canon[col].to_numpy().view("int64").astype("float64") / 86_400e9
            v[canon[col].isna().to_numpy()] = np.nan
            canon[col] = v
        elif kind == "boolean":
            canon[col] = canon[col].map(lambda x: None if pd.isna(x) else str(bool(x))).astype(object)
    return canon.reset_index(drop=True)


def _risk_metric(name: str, evaluator, definition: str, on: dict, extra: dict | None = None) -> Metric:
    risk, res = evaluator.risk(), evaluator.results()
    return Metric(name=name, value=float(risk.value), lower=0.0, upper=1.0, higher_is_better=False,
                  definition=definition, computed_on=on,
                  detail={"ci95": [float(risk.ci[0]), float(risk.ci[1])],
                          "attack_rate": float(res.attack_rate.value), "baseline_rate": float(res.baseline_rate.value),
                          "control_rate": float(res.control_rate.value) if res.control_rate is not None else None,
                          **(extra or {})})


def anonymeter_metrics(train: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame,
                       kinds: dict[str, str], *, target: str | None, seed: int) -> tuple[dict[str, Metric], list[str]]:
    """{singling_out_risk, linkability_risk, inference_risk} with the holdout as control, or {} and a note."""
    # imported here: polars loads only when a report computes the risks
    from .vendor.anonymeter.evaluators import InferenceEvaluator, LinkabilityEvaluator, SinglingOutEvaluator

    cols = list(kinds)
    n = int(min(N_ATTACKS, len(holdout), len(train)))
    if n < 10 or len(cols) < 2 or len(synthetic) < 10:
        return {}, ["anonymeter risks not computed: fewer than 10 holdout rows or 2 columns"]
    # Each side drawn with our seed to exactly n rows, so anonymeter's own unseeded draws of n targets only reorder
    # them and the attacks' rates do not change between runs (its baseline's random guesses still do).
    ori = _anonymeter_frame(seeded_cap(train, n, seed + 21), kinds)
    control = _anonymeter_frame(seeded_cap(holdout, n, seed + 22), kinds)
    syn = _anonymeter_frame(seeded_cap(synthetic, ANONYMETER_MAX_SYN, seed + 23), kinds)
    on = {"n_attacks": n, "synthetic_rows": len(syn), "control": "holdout", "seed": seed}
    out: dict[str, Metric] = {}
    with warnings.catch_warnings(), one_thread():
        warnings.simplefilter("ignore")  # anonymeter warns when fewer queries than attacks single a row out
        so = SinglingOutEvaluator(ori=ori, syn=syn, control=control, n_attacks=n, seed=seed).evaluate(
            mode="univariate")
        out["singling_out_risk"] = _risk_metric(
            "singling_out_risk", so, "anonymeter singling-out risk (univariate predicates from the synthetic rows "
            "that match exactly one training row, beyond what they do on the holdout)", on)
        halves = (cols[0::2], cols[1::2])
        link = LinkabilityEvaluator(ori=ori, syn=syn, control=control, n_attacks=n, aux_cols=halves,
                                    n_neighbors=10).evaluate(n_jobs=1)
        out["linkability_risk"] = _risk_metric(
            "linkability_risk", link, "anonymeter linkability risk (a training row's two column halves share one of "
            "their 10 nearest synthetic rows, beyond the holdout's rate)", on, {"aux_cols": [list(h) for h in halves]})
        rng = np.random.default_rng(seed + 24)
        others = [c for c in cols if c != target]
        picks = rng.choice(len(others), size=min(len(others), INFERENCE_SECRETS - (target in cols)), replace=False)
        secrets = ([target] if target in cols else []) + [others[i] for i in sorted(picks)]
        per_secret = {}
        best = None
        for secret in secrets:
            inf = InferenceEvaluator(ori=ori, syn=syn, control=control, n_attacks=n, secret=secret,
                                     aux_cols=[c for c in cols if c != secret]).evaluate(n_jobs=1)
            m = _risk_metric("inference_risk", inf, "anonymeter attribute-inference risk, the largest over the "
                             "secret columns (the rest known; the closest synthetic row's value guessed), beyond "
                             "the holdout's rate", on)
            per_secret[secret] = {"risk": m.value, "attack_rate": m.detail["attack_rate"],
                                  "control_rate": m.detail["control_rate"], "baseline_rate": m.detail["baseline_rate"]}
            if best is None or m.value > best.value:
                best = m
        out["inference_risk"] = best.model_copy(update={"detail": {**best.detail, "secrets": per_secret}})
    return out, []


def attack_metrics(train: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame,
                   kinds: dict[str, str], *, target: str | None, seed: int) -> tuple[dict[str, Metric], list[str]]:
    """The report's attack figures: mia_auc and anonymeter's three risks (vendored)."""
    mia, notes = membership_metric(train, synthetic, holdout, kinds, seed=seed)
    try:
        risks, more = anonymeter_metrics(train, synthetic, holdout, kinds, target=target, seed=seed)
    except Exception as err:  # noqa: BLE001 - a third-party attack that fails must not sink the report; a gate on
        # its risk then fails (value missing), and the note says why
        risks, more = {}, [f"anonymeter risks not computed: {type(err).__name__}: {err}"]
    return {"mia_auc": mia, **risks}, notes + more
