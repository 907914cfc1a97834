"""Numbers that cannot flatter (issue 32, item 7): TSTR on as many synthetic rows as TRTR has real ones, an
augmentation interval that holds the holdout's variance, fidelity and detection graded against the holdout beside
what real training rows score there, and the flights recipe gating its tables, not only its invariants."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, r2_score

from synthforge.quality.evaluate import evaluate_tables
from synthforge.quality.html import render_html
from synthforge.quality.report_model import Report
from synthforge.quality.uplift import holdout_weights, macro_f1, r2, uplift_bootstrap
from synthforge.quality.utility import utility_metric
from synthforge.recipe.load import load_recipe

KINDS = {"x": "numerical", "y": "numerical", "group": "categorical", "label": "categorical"}


def population(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({"x": x, "y": 2 * x + rng.normal(size=n), "group": rng.choice(["a", "b", "c"], size=n),
                         "label": np.where(x + 0.5 * rng.normal(size=n) > 0, "yes", "no")})


def test_tstr_trains_on_as_many_synthetic_rows_as_trtr_has_real_ones():
    train, holdout = population(300, 1), population(200, 2)
    big = population(2000, 3)
    m, _ = utility_metric(train, big, holdout, KINDS, "label", max_rows=50_000, seed=0)
    on = m.computed_on
    assert on["train_synthetic_rows"] == on["train_real_rows"] == 300 and on["synthetic_rows_available"] == 2000
    assert on["size_matched"] is True and "as large as TRTR" in m.definition
    # a synthetic table smaller than the real one is used whole, and the report says the sizes differ
    m, _ = utility_metric(train, big.iloc[:120], holdout, KINDS, "label", max_rows=50_000, seed=0)
    assert m.computed_on["train_synthetic_rows"] == 120 and m.computed_on["size_matched"] is False


def test_weighted_scores_equal_sklearn_on_the_resampled_rows():
    rng = np.random.default_rng(0)
    y = rng.choice(["a", "b", "c"], 300, p=[0.7, 0.25, 0.05]).astype(object)
    pred = y.copy()
    flip = rng.random(300) < 0.3
    pred[flip] = rng.choice(["a", "b", "c"], flip.sum())
    yr = rng.normal(size=300)
    pr = yr + 0.5 * rng.normal(size=300)
    w = holdout_weights(300, 4, rng)
    for b in range(4):
        rows = np.repeat(np.arange(300), w[b].astype(int))
        assert macro_f1(y, pred, w[b:b + 1])[0] == pytest.approx(
            f1_score(y[rows], pred[rows], average="macro", zero_division=0), abs=1e-12)
        assert macro_f1(y, pred, w[b:b + 1], labels=["c"])[0] == pytest.approx(
            f1_score(y[rows], pred[rows], labels=["c"], average="macro", zero_division=0), abs=1e-12)
        assert r2(yr, pr, w[b:b + 1])[0] == pytest.approx(r2_score(yr[rows], pr[rows]), abs=1e-12)
        # prices in the millions: the sums of squares must not cancel
        assert r2(yr + 3e6, pr + 3e6, w[b:b + 1])[0] == pytest.approx(r2_score(yr[rows], pr[rows]), abs=1e-9)


def test_the_interval_holds_the_holdout_variance_that_the_draws_alone_miss():
    """Two models whose holdout predictions never change with the draw: the old t-interval over draws has no width
    at all, yet the gain was measured on one holdout of 200 rows; the bootstrap interval has the evaluation set's
    width and still holds the mean."""
    rng = np.random.default_rng(5)
    y = rng.choice(["yes", "no"], 200).astype(object)
    real_pred, aug_pred = y.copy(), y.copy()
    real_pred[rng.random(200) < 0.30] = "no"
    aug_pred[rng.random(200) < 0.25] = "no"

    def predict(idx, model_seed):
        return real_pred if idx is None else aug_pred

    out = uplift_bootstrap(predict, {"score": lambda p, w: macro_f1(y, p, w)}, 500, 300, 200, seed=1)
    low_t, high_t = out["ci95_draws"]
    low, high = out["ci95"]
    assert low_t == pytest.approx(high_t) == pytest.approx(out["mean"])
    assert low < out["mean"] < high and high - low > 0.02
    assert "holdout" in out["interval"] and "refits are not in it" in out["interval"]
    assert uplift_bootstrap(predict, {"score": lambda p, w: macro_f1(y, p, w)}, 500, 300, 200, seed=1) == out


def test_fidelity_and_detection_against_the_holdout_beside_real_data():
    train, holdout = population(1200, 1), population(600, 2)
    copies = evaluate_tables(train, train.copy(), kinds=KINDS, holdout=holdout, random_seed=0)
    # verbatim copies are perfect against the rows they copy, and no better than real data against unseen rows
    assert copies.overall.value == pytest.approx(1.0)
    q, d = copies.quality_vs_holdout, copies.detection_auc_vs_holdout
    assert q.value == pytest.approx(q.detail["real_reference"]) and q.value < 0.99
    assert d.value == pytest.approx(d.detail["real_reference"], abs=1e-12)
    # a generator that broke the x–y relation scores below real data against the holdout too
    rng = np.random.default_rng(9)
    broken = population(1200, 4).assign(y=lambda f: rng.permutation(f["y"].to_numpy()))
    bad = evaluate_tables(train, broken, kinds=KINDS, holdout=holdout, random_seed=0)
    q, d = bad.quality_vs_holdout, bad.detection_auc_vs_holdout
    assert q.value < q.detail["real_reference"] - 0.1
    assert d.value > d.detail["real_reference"] + 0.15 and abs(d.detail["real_reference"] - 0.5) < 0.1
    assert q.computed_on["synthetic_rows"] == q.computed_on["train_rows"] == 1200
    assert d.computed_on["holdout_rows"] == d.computed_on["synthetic_rows"] == d.computed_on["train_rows"] == 600
    summary = bad.summary().set_index("metric")
    assert summary.loc["quality_vs_holdout", "baseline"] == q.detail["real_reference"]
    html = render_html(Report(title="r", created="now", status="no_gates", gates=[], tabular=bad))
    assert "detection_auc_vs_holdout" in html and "real training rows:" in html
    # without a holdout there is nothing to grade against
    assert evaluate_tables(train, broken, kinds=KINDS, random_seed=0).quality_vs_holdout is None


def test_the_flights_recipe_gates_its_tables_not_only_its_invariants():
    root = Path(__file__).resolve().parents[2]
    for path in (root / "recipes" / "flights_relational.yaml", root / "synthforge" / "recipes" /
                 "flights_relational.yaml"):
        gates = load_recipe(path).quality.gates
        assert gates["min_quality"] >= 0.85 and gates["max_detection_auc"] <= 0.85 and gates["max_dcr_share"] <= 0.6
        assert gates["max_exact_copies_excess"] <= 0.05
