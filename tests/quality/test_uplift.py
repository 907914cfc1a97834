"""The augmentation gain's reference: what doubling the real rows gives the same model."""

import numpy as np
import pytest

from synthforge.quality.uplift import RUNS, real_doubling


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
