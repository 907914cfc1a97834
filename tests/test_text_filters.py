"""Text filters on planted cases: memorisation runs, near-duplicates, degenerate output, PII (drop and mask), label
consistency, and the filter config's errors."""

import pytest

from synthforge.errors import UserError
from synthforge.quality.text_filters import (FilterConfig, LabelJudge, NgramIndex, TextFilters, degenerate_reason,
                                              tokens)

SEED = [
    "I started taking this medication three weeks ago and the headaches stopped almost completely, which is great.",
    "Terrible side effects from day one: nausea, dizziness and a rash that would not go away at all.",
    "It works okay for my back pain but I still wake up stiff and sore most mornings, so it is a mixed bag.",
]


def test_tokens_are_lowercased_words_and_punctuation():
    assert tokens("Hello, World!") == ["hello", ",", "world", "!"]


def test_a_shared_run_of_twelve_tokens_is_memorised_and_eleven_is_not():
    seed_tokens = "i started taking this medication three weeks ago and the headaches stopped almost".split()
    index = NgramIndex(SEED, 12)
    twelve = "Honestly " + " ".join(seed_tokens[:12]) + " nothing else changed"
    eleven = "Honestly " + " ".join(seed_tokens[:11]) + " purple elephants"
    assert index.shares_run(twelve)
    assert not index.shares_run(eleven)
    assert index.longest_run(twelve) == 12
    assert index.longest_run("I STARTED taking this medication three weeks ago and the headaches stopped almost "
                             "completely, which") == 16
    assert NgramIndex(SEED, 8).shares_run(eleven)  # configurable n


def test_filters_drop_memorised_near_duplicate_and_degenerate_documents():
    f = TextFilters(FilterConfig(pii=(), near_duplicate=0.4), SEED)
    docs = [
        SEED[0],  # verbatim copy
        "My doctor said: " + SEED[1].split(":")[1],  # a long run of a seed document
        # two words changed: no 12-token run survives, but 10 of 16 word 3-shingles do (Jaccard 0.45)
        "Terrible side effects from day one: vomiting, dizziness and a rash that did not go away at all.",
        "",
        "ok",
        "it is good it is good it is good it is good it is good it is good it is good",
        "This cream cleared my skin in a month and I have had no dryness or irritation so far.",
        "This cream cleared my skin in a month and I have had no dryness or irritation so far.",  # repeat
    ]
    out = f.apply(docs)
    assert out.keep.tolist() == [False, False, False, False, False, False, True, False]
    assert out.dropped == {"memorised": 2, "near_duplicate": 1, "empty": 1, "too_short": 1, "looping": 1,
                           "duplicate": 1}
    assert out.memorised == 2
    # a later batch drops a repeat of a kept document too
    assert not f.apply([docs[6]]).keep[0]


def test_degenerate_repeated_word():
    assert degenerate_reason("the the the the the pill works for me now", 3, 0.3) == "looping"
    assert degenerate_reason("this pill works for me now", 3, 0.3) is None


PII_CASES = {
    "email": "Write to me at jane.doe+meds@example.org if you want the details of my dose.",
    "phone": "My pharmacist at (555) 123-4567 told me to take it with food every single day.",
    "id_number": "My patient ID: AB123456 was on the bottle, and SSN 123-45-6789 on the form.",
    "date_of_birth": "I was born on 04/12/1987 and have taken this for ten years without any trouble.",
    "url": "I read about it on https://www.example.com/forum/thread?id=7 before asking my doctor.",
}


@pytest.mark.parametrize("name", sorted(PII_CASES))
def test_pii_is_dropped_or_masked(name):
    text = PII_CASES[name]
    drop = TextFilters(FilterConfig(pii_policy="drop", near_duplicate=None), SEED).apply([text])
    assert not drop.keep[0] and drop.dropped == {f"pii_{name}": 1}
    mask = TextFilters(FilterConfig(pii_policy="mask", near_duplicate=None), SEED).apply([text])
    assert mask.keep[0] and mask.masked[name] == 1
    assert f"[{name.upper()}]" in mask.texts[0]


def test_doses_and_plain_numbers_are_not_pii():
    text = "I take 150mg twice a day, 2 pills at 8 and 20, for 3 years now; my weight went from 210 to 180."
    out = TextFilters(FilterConfig(pii_policy="drop"), SEED).apply([text])
    assert out.keep[0], out.dropped


def test_pii_patterns_are_pluggable():
    cfg = FilterConfig.from_recipe({"pii": ["email", "mrn"], "pii_patterns": {"mrn": r"\bMRN-\d{4}\b"},
                                    "pii_policy": "mask"})
    out = TextFilters(cfg, SEED).apply(["The label said MRN-0042 and nothing more about my prescription refill."])
    assert out.texts[0].startswith("The label said [MRN]") and out.masked == {"mrn": 1}


def test_filter_config_errors_name_the_key():
    with pytest.raises(UserError, match=r"quality\.filters\.memorisation: unknown filter; valid: memorisation_ngram"):
        FilterConfig.from_recipe({"memorisation": 12})
    with pytest.raises(UserError, match=r"quality\.filters\.pii: 'ssn' is not a pattern"):
        FilterConfig.from_recipe({"pii": ["ssn"]})
    with pytest.raises(UserError, match=r"quality\.filters\.pii_policy"):
        FilterConfig.from_recipe({"pii_policy": "redact"})
    with pytest.raises(UserError, match=r"pii_patterns\.bad: not a regular expression"):
        FilterConfig.from_recipe({"pii_patterns": {"bad": "("}})


def _judge(**options) -> LabelJudge:
    """A judge of two labels from nine planted documents each."""
    good = ["great relief wonderful works perfectly", "love it excellent results great", "wonderful great best"]
    bad = ["awful side effects terrible pain", "horrible rash worst nausea", "terrible awful never again"]
    return LabelJudge(good * 3 + bad * 3, ["pos"] * 9 + ["neg"] * 9, **options)


def test_label_consistency_drops_documents_that_read_like_another_label():
    judge = _judge()
    for rule in ("argmax", 0.2):
        f = TextFilters(FilterConfig(label_consistency=rule, min_words=1, near_duplicate=None,
                                     memorisation_ngram=4, dedupe=False), [], judge)
        out = f.apply(["great wonderful relief", "terrible awful rash"], ["pos", "pos"])
        assert out.keep.tolist() == [True, False] and out.dropped == {"label_inconsistent": 1}
    # the quantile rule's threshold per label comes from the real documents of that label
    assert set(judge.thresholds(0.25)) == {"pos", "neg"} and 0.5 < judge.thresholds(0.25)["pos"] < 1
    with pytest.raises(UserError, match=r"quality\.filters\.label_consistency"):
        FilterConfig.from_recipe({"label_consistency": 1.5})


def test_pool_selection_keeps_what_reads_as_the_label_and_spreads_out():
    from synthforge.quality.text_selection import choose

    judge = _judge()
    pool = ["terrible awful rash", "great wonderful relief", "awful pain worst", "great wonderful relief today",
            "excellent results love it"]
    # planted: three of five read as 'neg'; asked for two 'pos', the two most 'pos' are kept, in pool order
    assert choose(pool, "pos", 2, judge, 0.0) == [1, 3]
    # with diversity, the near-repeat of the first choice gives way to a different 'pos' document
    assert choose(pool, "pos", 2, judge, 1.0) == [1, 4]
    assert choose(pool, "pos", 9, judge, 0.0) == [0, 1, 2, 3, 4]  # a pool no larger than asked: all of it
    assert len(choose(pool, None, 3, None, 0.5)) == 3  # no label: diversity alone decides
    with pytest.raises(UserError, match=r"quality\.filters\.pool"):
        FilterConfig.from_recipe({"pool": 0.5})


def test_a_judge_of_words_and_characters_averages_two_models():
    words, both = _judge(), _judge(features=("words", "chars"))
    assert len(both.models) == 2 and set(both.real_p) == {"pos", "neg"}
    docs = ["wonderfully great", "terribly awful"]
    # the character model reads 'wonderfully' and 'terribly', words it never saw, by their stems
    assert (both.probability(docs, "pos") - 0.5).tolist()[0] > 0 > (both.probability(docs, "pos") - 0.5).tolist()[1]
    expected = (words.predict_proba(docs) + both.models[1].predict_proba(docs)) / 2
    assert abs(both.predict_proba(docs) - expected).max() < 1e-12
