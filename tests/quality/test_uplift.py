"""The augmentation gain's reference: what doubling the real rows gives the same model."""

import numpy as np
import pytest

from synthforge.quality.uplift import RUNS, accuracy, real_doubling, real_in_place, uplift_metrics


def test_real_doubling_is_the_full_score_minus_a_random_half_s():
    seen = []

    def score(idx):  # a model whose score grows with the rows it sees, and a little with which ones
        seen.append(idx)
        return len(idx) / 100 + idx.mean() / 1e4

    ref = real_doubling(score, full=1.0, n_real=100, seed=3)
    assert ref["rows"] == [50, 100] and ref["halves"] == len(seen) == RUNS
    assert all(len(i) == 50 and len(set(i.tolist())) == 50 for i in seen)
    diffs = [1.0 - score(i) for i in seen[:RUNS]]
    assert ref["mean"] == pytest.approx(np.mean(diffs)) and 0.49 < ref["mean"] < 0.5
    assert ref["ci95"][0] < ref["mean"] < ref["ci95"][1]
    # different halves each time, and the same ones for the same seed
    assert len({tuple(i) for i in seen[:RUNS]}) == RUNS
    seen.clear()
    assert real_doubling(score, full=1.0, n_real=100, seed=3) == ref


def test_a_flat_learning_curve_gives_a_reference_of_zero_and_a_classless_half_none():
    assert real_doubling(lambda idx: 0.7, full=0.7, n_real=40, seed=0)["mean"] == 0.0
    assert real_doubling(lambda idx: None, full=0.7, n_real=40, seed=0) is None


def _learner(y_test: np.ndarray, seen: list):
    """A model right on the first (rows it trained on) holdout rows: more real rows, a higher score."""
    def predict(base, added, _seed):
        seen.append((base, added))
        rows = len(base) + (0 if added is None else len(added))
        return np.where(np.arange(len(y_test)) < rows, y_test, 1 - y_test)
    return predict


def test_real_rows_in_the_synthetic_rows_place_train_on_one_half_and_add_draws_of_the_other():
    y_test, seen = np.zeros(200, dtype=int), []
    ref = real_in_place(_learner(y_test, seen), {"score": lambda p, w: accuracy(y_test, p, w)}, n_real=101,
                        n_test=200, seed=5)
    base = seen[0][0]
    assert ref["rows"] == [50, 50] and ref["runs"] == RUNS and len(seen) == 2 * RUNS
    for b, added in seen:
        assert np.array_equal(b, base)  # one half trains every run
        assert added is None or (len(added) == 50 and not set(added.tolist()) & set(base.tolist()))
    # 50 rows score 0.25, 100 rows 0.5: every draw gains 0.25, whichever holdout resample
    assert ref["mean"] == pytest.approx(0.25) and ref["ci95_draws"] == pytest.approx([0.25, 0.25])
    assert 0.15 < ref["ci95"][0] < 0.25 < ref["ci95"][1] < 0.35
    seen.clear()
    assert real_in_place(_learner(y_test, seen), {"score": lambda p, w: accuracy(y_test, p, w)}, n_real=101,
                         n_test=200, seed=5) == ref


def test_the_gain_floors_metric_carries_the_real_rows_lower_end_as_its_reference():
    y_test = np.zeros(200, dtype=int)
    flat = real_in_place(lambda base, added, s: y_test, {"score": lambda p, w: accuracy(y_test, p, w)}, n_real=60,
                         n_test=200, seed=0)
    assert flat["mean"] == 0 and flat["ci95"] == [0.0, 0.0]  # real rows that add nothing: a floor of 0 fails them
    gain = {"mean": 0.01, "ci95": [-0.02, 0.04], "ci95_draws": [0.0, 0.02], "runs": [{}] * RUNS,
            "real_in_place": {**flat, "ci95": [-0.03, 0.05]}}
    metrics = uplift_metrics(gain, "macro-F1", {})
    assert metrics["augmentation_gain_lower"].detail["real_reference"] == -0.03
    assert metrics["augmentation_gain"].detail["real_reference"] == flat["mean"]  # the gain beside the real gain
    assert "real_reference" not in uplift_metrics({**gain, "real_in_place": None}, "macro-F1", {})[
        "augmentation_gain_lower"].detail
