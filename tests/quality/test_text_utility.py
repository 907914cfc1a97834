"""The text evaluator's classifier scores content, not count: a training set added to a copy of itself fits the same
model, so a copy of the seed gains nothing, and flipped labels lose."""

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.metrics import f1_score

from synthforge.quality.text_metrics import _classifier, utility


def _corpus(n: int, seed: int) -> pd.DataFrame:
    """Two labels that share most words; each document carries one or two cue words of its label, often a wrong one,
    so a classifier learns them imperfectly and its regularisation matters."""
    rng = np.random.default_rng(seed)
    common = [f"w{i}" for i in range(60)]
    cues = {"good": [f"g{i}" for i in range(8)], "bad": [f"b{i}" for i in range(8)]}
    rows = []
    for _ in range(n):
        label = str(rng.choice(["good", "bad"]))
        other = "bad" if label == "good" else "good"
        words = list(rng.choice(common, 12)) + list(rng.choice(cues[label], rng.integers(1, 3)))
        if rng.random() < 0.35:
            words += list(rng.choice(cues[other], 1))
        rows.append({"text": " ".join(rng.permutation(words)), "label": label})
    return pd.DataFrame(rows)


def _encode(docs):
    return HashingVectorizer(n_features=256, alternate_sign=False, norm="l2").transform(docs).toarray()


@pytest.fixture(scope="module")
def data():
    return _corpus(120, 0), _corpus(400, 1)


def test_a_duplicated_training_set_fits_the_same_model(data):
    train, _ = data
    x, y = _encode(train.text.tolist()), train.label.to_numpy()
    once = _classifier(len(y), len(y)).fit(x, y)
    twice = _classifier(2 * len(y), len(y)).fit(np.vstack([x, x]), np.concatenate([y, y]))
    assert np.allclose(once.coef_, twice.coef_, atol=1e-4) and np.allclose(once.intercept_, twice.intercept_, atol=1e-4)
    # the planted failure: sklearn's sum of losses at a fixed C regularises the doubled set half as much
    fixed = _classifier(2 * len(y), 2 * len(y)).fit(np.vstack([x, x]), np.concatenate([y, y]))  # C = 1
    assert not np.allclose(once.coef_, fixed.coef_, atol=1e-2)


def test_a_copy_of_the_seed_gains_nothing_and_flipped_labels_lose(data):
    train, holdout = data
    copy = utility(train, holdout, train.copy(), "text", "label", encode=_encode)
    assert copy["augmented"]["macro_f1"] == copy["trtr"]["macro_f1"]
    assert copy["tstr"]["macro_f1"] == copy["trtr"]["macro_f1"]
    # and at a fixed C the same copy would have moved the score: the check above can fail
    x, y = _encode(train.text.tolist()), train.label.to_numpy()
    x_test, y_test = _encode(holdout.text.tolist()), holdout.label.to_numpy()
    fixed = _classifier(2 * len(y), 2 * len(y))  # C = 1
    doubled = f1_score(y_test, fixed.fit(np.vstack([x, x]), np.concatenate([y, y])).predict(x_test), average="macro")
    assert doubled != pytest.approx(copy["trtr"]["macro_f1"], abs=1e-3)

    flipped = train.assign(label=train.label.map({"good": "bad", "bad": "good"}))
    lost = utility(train, holdout, flipped, "text", "label", encode=_encode)
    assert lost["uplift"]["ci95"][1] < 0 and lost["augmented"]["macro_f1"] < lost["trtr"]["macro_f1"]
