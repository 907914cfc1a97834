"""Detection, privacy and utility on constructed cases with known answers."""

import numpy as np
import pandas as pd
import pytest

from synthforge.quality.detection import detection_metric
from synthforge.quality.evaluate import evaluate_tables
from synthforge.quality.privacy import exact_copy_share, privacy_metrics


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
    assert q.dcr_share.value > 0.95          # closer to training than to holdout
    assert q.nndr.value == pytest.approx(0.0)
    assert q.detection_auc.value == pytest.approx(0.5, abs=0.05)  # copies are indistinguishable
    hist = q.dcr_share.detail["histogram"]
    assert len(hist["train"]) == len(hist["holdout"]) == len(hist["edges"]) - 1


def test_fresh_sample_is_private():
    train, holdout, fresh = population(1500, 1), population(1500, 2), population(1500, 3)
    copy, dcr, nndr, _ = privacy_metrics(train, fresh, holdout, KINDS, max_rows=50_000, seed=0)
    assert copy.value == 0.0
    assert dcr.value == pytest.approx(0.5, abs=0.06)
    assert nndr.value > 0.5


def test_exact_copy_counts_one_row_across_dtypes():
    train = population(300, 1)
    synthetic = population(300, 5)
    synthetic.iloc[7] = train.iloc[42]
    synthetic["flag"] = synthetic["flag"].astype(object)  # same values, other dtype
    assert exact_copy_share(train, synthetic, KINDS) == pytest.approx(1 / 300)


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
