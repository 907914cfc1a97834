"""Detection, privacy and utility on constructed cases with known answers."""

import numpy as np
import pandas as pd
import pytest

from synthforge.quality.detection import detection_metric
from synthforge.quality.evaluate import evaluate_tables
from synthforge.quality.privacy import copy_metrics, exact_copy_share, privacy_metrics
from synthforge.quality.uplift import RUNS


def population(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({
        "x": x,
        "y": 2 * x + rng.normal(size=n),
        "group": rng.choice(["a", "b", "c"], size=n),
        "flag": rng.random(n) < 0.3,
        "label": np.where(x + 0.5 * rng.normal(size=n) > 0, "yes", "no"),
    })


KINDS = {"x": "numerical", "y": "numerical", "group": "categorical", "flag": "boolean",
         "label": "categorical"}


def test_copy_of_training_is_flagged():
    train, holdout = population(1500, 1), population(1500, 2)
    q = evaluate_tables(train, train.copy(), kinds=KINDS, holdout=holdout, random_seed=0)
    assert q.column_shapes.value == pytest.approx(1.0)
    assert q.pair_trends.value == pytest.approx(1.0)
    assert q.exact_copy_share.value == pytest.approx(1.0)
    assert q.exact_copy_excess.value == pytest.approx(1.0 - q.exact_copy_share.detail["holdout_share"])
    assert not any(n.startswith("easy to tell apart") for n in q.notes)  # copies are not easy to tell apart
    assert q.dcr_share.value > 0.95          # closer to training than to holdout
    assert 0.5 < q.dcr_share.detail["ci95"][0] <= q.dcr_share.value <= q.dcr_share.detail["ci95"][1]
    assert q.nndr.value == pytest.approx(0.0)
    assert q.detection_auc.value == pytest.approx(0.5, abs=0.05)  # copies are indistinguishable
    hist = q.dcr_share.detail["histogram"]
    assert len(hist["train"]) == len(hist["holdout"]) == len(hist["edges"]) - 1


def test_fresh_sample_is_private():
    train, holdout, fresh = population(1500, 1), population(1500, 2), population(1500, 3)
    dcr, nndr, _, _, _ = privacy_metrics(train, fresh, holdout, KINDS, max_rows=50_000, seed=0)
    copy, excess = copy_metrics(train, fresh, holdout, KINDS)
    assert copy.value == 0.0 and excess.value == 0.0
    assert dcr.value == pytest.approx(0.5, abs=0.06)
    low, high = dcr.detail["ci95"]
    assert low < 0.5 < high and 0.02 < high - low < 0.1  # ≈ ±1.96·0.5/√1500
    assert nndr.value > 0.5


def test_exact_copy_counts_one_row_across_dtypes():
    train = population(300, 1)
    synthetic = population(300, 5)
    synthetic.iloc[7] = train.iloc[42]
    synthetic["flag"] = synthetic["flag"].astype(object)  # same values, other dtype
    assert exact_copy_share(train, synthetic, KINDS) == pytest.approx(1 / 300)


def test_exact_copies_are_judged_against_the_holdouts_own_rate():
    """Few categories: honest unseen rows often equal a training row. The excess over that rate passes an honest
    sample and fails a planted leak of training rows."""
    from synthforge.quality.gates import check_gates

    rng = np.random.default_rng(0)

    def coarse(n):
        return pd.DataFrame({"a": rng.choice(list("xyz"), n), "b": rng.choice(list("pq"), n),
                             "age": rng.integers(20, 25, n)})

    kinds = {"a": "categorical", "b": "categorical", "age": "categorical"}
    train, holdout, honest = coarse(1000), coarse(500), coarse(1000)
    share, excess = copy_metrics(train, honest, holdout, kinds)
    assert share.value > 0.9 and share.detail["holdout_share"] > 0.9  # absolute share says "copies" on both
    assert check_gates({"exact_copy_excess": excess}, {"max_exact_copies_excess": 0.02})[0].passed
    fine_train, fine_hold = population(1000, 1), population(500, 2)
    fine_leak = pd.concat([population(700, 3), fine_train.iloc[:300]], ignore_index=True)
    _, fine = copy_metrics(fine_train, fine_leak, fine_hold, KINDS)
    assert fine.value == pytest.approx(0.3)
    assert not check_gates({"exact_copy_excess": fine}, {"max_exact_copies_excess": 0.02})[0].passed


def test_detection_auc_same_vs_different():
    same = detection_metric(population(2000, 1), population(2000, 2), KINDS, max_rows=50_000, seed=0)
    assert same.value == pytest.approx(0.5, abs=0.05)
    other = population(2000, 3)
    other["x"] = other["x"] * 3 + 5
    other["group"] = "z"
    diff = detection_metric(population(2000, 1), other, KINDS, max_rows=50_000, seed=0)
    assert diff.value > 0.99


def test_detection_row_cap_is_reported():
    m = detection_metric(population(3000, 1), population(3000, 2), KINDS, max_rows=1000, seed=4)
    assert m.computed_on["sampled"] and m.computed_on["real_rows"] == 500
    assert m.computed_on["cap"] == 500


def test_utility_and_notes_without_holdout():
    train, synthetic = population(2000, 1), population(2000, 2)
    q = evaluate_tables(train, synthetic, kinds=KINDS, target="label", random_seed=0)
    assert q.dcr_share.value is None
    assert any("no holdout" in n for n in q.notes)
    assert q.utility.computed_on["task"] == "classification"
    assert q.utility.value == pytest.approx(1.0, abs=0.1)
    assert {"tstr", "trtr"} <= set(q.utility.detail)
    assert "accuracy" in q.utility.detail["tstr"]


def test_utility_regression_shuffled_target_is_useless():
    train, holdout, synthetic = population(2000, 1), population(2000, 2), population(2000, 3)
    synthetic["y"] = synthetic["y"].sample(frac=1, random_state=0).to_numpy()
    q = evaluate_tables(train, synthetic, kinds=KINDS, holdout=holdout, target="y")
    assert q.utility.computed_on["task"] == "regression"
    assert q.utility.detail["trtr"]["score"] > 0.7
    assert q.utility.value < 0.1


def test_kinds_subset_and_missing_column():
    train = population(300, 1)
    q = evaluate_tables(train, population(300, 2), kinds={"x": "numerical", "group": "categorical"})
    assert set(q.column_shapes.detail["columns"]) == {"x", "group"}
    assert q.utility is None
    with pytest.raises(ValueError, match="lacks columns"):
        evaluate_tables(train, population(300, 2).drop(columns="x"), kinds={"x": "numerical"})


def test_awkward_columns_do_not_crash_and_serialise():
    rng = np.random.default_rng(0)
    n = 400
    def frame(seed):
        r = np.random.default_rng(seed)
        return pd.DataFrame({
            "const": np.ones(n),
            "all_nan": np.full(n, np.nan),
            "one_cat": ["only"] * n,
            "tz": pd.Series(pd.Timestamp("2022-01-01", tz="Europe/Berlin")
                            + pd.to_timedelta(r.integers(0, 900, n), unit="h")),
            "nullable_flag": pd.array(r.random(n) < 0.5, dtype="boolean"),
            "x": r.normal(size=n),
        })
    real, synthetic, holdout = frame(1), frame(2), frame(3)
    synthetic.loc[:10, "nullable_flag"] = pd.NA
    kinds = {"const": "numerical", "all_nan": "numerical", "one_cat": "categorical",
             "tz": "datetime", "nullable_flag": "boolean", "x": "numerical"}
    q = evaluate_tables(real, synthetic, kinds=kinds, holdout=holdout, target="nullable_flag")
    cols = q.column_shapes.detail["columns"]
    assert cols["const"]["score"] == 1.0 and cols["all_nan"]["score"] is None
    assert q.pair_trends.value is None  # nothing is related in the real data
    assert q.overall.value == pytest.approx(q.column_shapes.value)
    assert any("no column pair is related" in note for note in q.notes)
    assert 0.3 < q.detection_auc.value < 0.7
    assert type(q).model_validate_json(q.model_dump_json()) == q
    del rng


def test_rows_easy_to_tell_apart_are_flagged_without_a_gate():
    other = population(600, 3)
    other["x"] = other["x"] * 3 + 5
    q = evaluate_tables(population(600, 1), other, kinds=KINDS, random_seed=0)
    assert q.detection_auc.value >= 0.9
    assert any(n.startswith("easy to tell apart") for n in q.notes)


def test_augmentation_gain_has_an_interval_and_its_gate_reads_the_lower_end():
    from synthforge.quality.gates import check_gates

    rng = np.random.default_rng(4)

    def task(n):
        x = rng.normal(size=(n, 3))
        y = np.where(x[:, 0] + 0.5 * x[:, 1] + rng.normal(0, 0.5, n) > 0.8, "yes", "no")
        return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y})

    kinds = {"a": "numerical", "b": "numerical", "c": "numerical", "y": "categorical"}
    train, holdout, more = task(300), task(600), task(3000)
    useful = evaluate_tables(train, more, kinds=kinds, holdout=holdout, target="y", random_seed=0)
    noise = more.assign(y=more["y"].sample(frac=1, random_state=0).to_numpy())
    harmful = evaluate_tables(train, noise, kinds=kinds, holdout=holdout, target="y", random_seed=0)
    for q in (useful, harmful):
        low, high = q.augmentation_gain.detail["ci95"]
        assert low <= q.augmentation_gain.value <= high and len(q.augmentation_gain.detail["runs"]) == RUNS
        assert q.augmentation_gain_lower.value == low and "f1_yes" in q.augmentation_gain.detail["other"]
    assert useful.augmentation_gain_lower.value > harmful.augmentation_gain.detail["ci95"][1]
    gate = {"min_augmentation_gain": -0.03}  # more real-like rows do not hurt; shuffled labels do
    assert check_gates(useful.metrics(), gate)[0].passed
    assert not check_gates(harmful.metrics(), gate)[0].passed
