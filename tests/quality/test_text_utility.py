"""The text evaluator's numbers cannot flatter: its classifier scores content, not count (a training set added to a copy
of itself fits the same model, so a copy of the seed gains nothing and fails a gain floor of 0, and flipped labels
lose); TSTR trains on as many synthetic documents as TRTR has real ones; the gain's interval holds the holdout's own
variance (issue 32, item 7)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.metrics import f1_score

from synthforge.quality.gates import check_gates
from synthforge.quality.text_metrics import _classifier, utility
from synthforge.quality.uplift import RUNS, uplift_metrics


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


def test_a_copy_of_the_seed_gains_nothing_fails_a_floor_of_zero_and_flipped_labels_lose(data):
    train, holdout = data
    copy = utility(train, holdout, train.copy(), "text", "label", encode=_encode)
    assert copy["tstr"]["macro_f1"] == copy["trtr"]["macro_f1"] and copy["tstr"]["train_rows"] == len(train)
    # each run adds a bootstrap of the copies (draws of a pool no larger than the real set differ by run), so the
    # gain is near 0, not exactly 0; its interval holds 0 and the gate `min_augmentation_gain: 0` fails
    gain = copy["uplift"]
    assert abs(gain["mean"]) < 0.02 and gain["ci95"][0] <= 0 <= gain["ci95"][1]
    assert copy["augmented"]["macro_f1"] - copy["trtr"]["macro_f1"] == pytest.approx(gain["mean"], abs=1e-12)
    # the copy control adds bootstraps of the same real documents: it reads what the copies' gain reads
    control = gain["copy_control"]
    assert control["copies"] == len(train) and abs(control["mean"] - gain["mean"]) < 0.02
    metrics = uplift_metrics(gain, "macro-F1", {})
    assert metrics["augmentation_gain_lower"].value == gain["ci95"][0]
    assert not check_gates(metrics, {"min_augmentation_gain": 0.0})[0].passed
    # real documents in the synthetic ones' place: half the seed + draws of the other half, the same interval
    in_place = gain["real_in_place"]
    assert in_place["rows"] == [len(train) // 2, len(train) // 2] and in_place["ci95"][0] <= in_place["mean"]
    assert metrics["augmentation_gain_lower"].detail["real_reference"] == in_place["ci95"][0]
    # and at a fixed C the duplicated set would have moved the score: the classifier's count-invariance can fail
    x, y = _encode(train.text.tolist()), train.label.to_numpy()
    x_test, y_test = _encode(holdout.text.tolist()), holdout.label.to_numpy()
    fixed = _classifier(2 * len(y), 2 * len(y))  # C = 1
    doubled = f1_score(y_test, fixed.fit(np.vstack([x, x]), np.concatenate([y, y])).predict(x_test), average="macro")
    assert doubled != pytest.approx(copy["trtr"]["macro_f1"], abs=1e-3)

    flipped = train.assign(label=train.label.map({"good": "bad", "bad": "good"}))
    lost = utility(train, holdout, flipped, "text", "label", encode=_encode)
    assert lost["uplift"]["ci95"][1] < 0 and lost["augmented"]["macro_f1"] < lost["trtr"]["macro_f1"]
    assert lost["uplift"]["mean"] < lost["uplift"]["copy_control"]["ci95"][0]  # the control sees real labels
    assert check_gates(uplift_metrics(lost["uplift"], "macro-F1", {}), {"min_augmentation_gain": -1.0})[0].passed


def test_tstr_trains_on_as_many_synthetic_documents_as_trtr_has_real_ones(data):
    train, holdout = data
    synthetic, drafts = _corpus(300, 2), _corpus(500, 3)
    u = utility(train, holdout, synthetic, "text", "label", random_seed=4, drafts=drafts, encode=_encode)
    for name, available in (("tstr", 300), ("tstr_drafts", 500)):
        part = u[name]
        assert part["train_rows"] == u["trtr"]["train_rows"] == len(train) and part["available_rows"] == available
        assert part["size_matched"] and part["draws"] == len(part["macro_f1_draws"]) == RUNS
        assert part["macro_f1"] == pytest.approx(np.mean(part["macro_f1_draws"]))
        assert part["macro_f1_sd"] > 0 and part["macro_f1_range"][0] < part["macro_f1"] < part["macro_f1_range"][1]
    assert u["ratio"] == u["tstr"]["macro_f1"] / u["trtr"]["macro_f1"]
    # real + synthetic is the gain's own runs: twice the real documents, augmented − TRTR = the gain's mean
    assert u["augmented"]["train_rows"] == 2 * len(train) and u["augmented"]["draws"] == RUNS
    assert u["augmented"]["macro_f1"] - u["trtr"]["macro_f1"] == pytest.approx(u["uplift"]["mean"], abs=1e-12)
    # a synthetic set smaller than the real one is used whole, once, and says so
    small = utility(train, holdout, synthetic.iloc[:80], "text", "label", random_seed=4, encode=_encode)["tstr"]
    assert small["train_rows"] == 80 and not small["size_matched"] and "all of them used" in small["note"]
    assert "draws" not in small


def test_the_gain_interval_holds_the_small_noisy_holdout_variance_the_draws_alone_miss(data):
    """40 held-out documents whose cue words often point the wrong way: the draws-only t-interval treats that one
    holdout as the truth; the bootstrap over the runs and the holdout documents holds the same mean and is wider."""
    train, _ = data
    u = utility(train, _corpus(40, 5), _corpus(300, 6), "text", "label", random_seed=0, encode=_encode)
    gain = u["uplift"]
    (low, high), (low_t, high_t) = gain["ci95"], gain["ci95_draws"]
    assert low <= gain["mean"] <= high and low_t <= gain["mean"] <= high_t
    assert high - low > 1.5 * (high_t - low_t) > 0
    assert "40 holdout rows" in gain["interval"] and gain["bootstraps"] == 1000
    lower = uplift_metrics(gain, "macro-F1", {})["augmentation_gain_lower"]
    assert lower.value == low and lower.detail["ci95_draws"] == [low_t, high_t] and "holdout" in lower.definition


def test_the_real_classifier_reads_each_synthetic_label_beside_the_holdout(data):
    """`label_reading`: a label whose synthetic documents are another label's shows up as read as that other label,
    against the holdout's own reading of it; a copy of the seed reads its labels as the real ones do."""
    from synthforge.quality.html import _reading_rows

    train, holdout = data
    good = train[train.label == "good"]
    planted = pd.concat([good, good.assign(label="bad")], ignore_index=True)  # 'bad' never learnt
    r = utility(train, holdout, planted, "text", "label", encode=_encode)["label_reading"]
    for part in ("real_holdout", "synthetic"):
        assert all(sum(shares.values()) == pytest.approx(1.0, abs=1e-3) for shares in r[part].values())
    assert r["synthetic"]["bad"]["good"] > 0.6 and r["real_holdout"]["bad"]["bad"] > 0.5
    assert r["read_as_own"]["bad"]["synthetic"] < r["read_as_own"]["bad"]["real"] - 0.3
    copied = utility(train, holdout, train.copy(), "text", "label", encode=_encode)["label_reading"]
    assert all(v["synthetic"] >= v["real"] for v in copied["read_as_own"].values())  # its own training documents
    rows = {row["label"]: row for row in _reading_rows(r)}
    assert rows["bad"]["synthetic"].startswith("bad 0.") and "good 0." in rows["bad"]["synthetic"]
