"""Filters every synthetic document passes before anything is written: memorisation, near-duplicates, degenerate
output, PII and (optionally) label consistency.

Each filter answers, per document, a reason to drop it (or None); PII can instead be masked in place. The reasons
are counted per shard and land in the report, so a reader sees what was thrown away and why.

Tokens, for memorisation: lower-cased NFKC words and single punctuation marks (`\\w+|[^\\w\\s]`). A synthetic
document that shares any run of `memorisation_ngram` such tokens with any seed document (train and holdout alike) is
dropped. Punctuation counts as a token, so twelve tokens can be fewer than twelve words: the filter is stricter
than a whitespace split.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from synthforge.errors import UserError

_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORD = re.compile(r"\w+")

# The PII patterns; `quality.filters.pii_patterns` adds more (name → regex), so the set is pluggable.
_DATE = r"(?:\d{1,2}[/.-]\d{1,2}[/.-](?:19|20)?\d{2}|(?:19|20)\d{2}-\d{2}-\d{2}|" \
        r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.? \d{1,2},? (?:19|20)\d{2})"
PII_PATTERNS: dict[str, re.Pattern] = {
    "email": re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"),
    "url": re.compile(r"\b(?:https?://|www\.)\S+|\b[\w-]+\.(?:com|org|net|gov|edu|io|info|co\.uk)(?:/\S*)?\b",
                      re.IGNORECASE),
    "phone": re.compile(r"(?<![\w/.-])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?|\d{3}[\s.-])\d{3,4}[\s.-]\d{4}\b"),
    "id_number": re.compile(r"\b\d{3}-\d{2}-\d{4}\b|(?<![\w.,-])\d{7,}(?![\w.,-]?\d)|"
                            r"\b(?:MRN|SSN|NHS|patient (?:id|no|number)|ID)\s*(?:no\.?|number)?[:#]?\s*"
                            r"[A-Z0-9-]*\d[A-Z0-9-]{3,}\b",
                            re.IGNORECASE),
    "date_of_birth": re.compile(r"(?:\b(?:DOB|D\.O\.B\.?|date of birth|born(?: on)?)\s*[:\-]?\s*)" + _DATE +
                                r"|\b\d{1,2}/\d{1,2}/(?:19|20)\d{2}\b", re.IGNORECASE),
}
DEFAULT_PII = tuple(PII_PATTERNS)


class FilterConfig(BaseModel):
    """`quality.filters` of a text recipe. Every key is checked; an unknown one is a UserError naming the valid."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    memorisation_ngram: int = Field(default=12, ge=4, le=200, description="drop a document sharing a run of this "
                                    "many tokens with any seed document")
    near_duplicate: float | None = Field(default=0.5, gt=0, le=1, description="drop when the Jaccard similarity of "
                                         "word 3-shingles with a seed document reaches this; null: off")
    dedupe: bool = Field(default=True, description="drop exact repeats among the synthetic documents")
    min_words: int = Field(default=5, ge=0)
    max_repeat: float = Field(default=0.3, gt=0, le=1, description="drop when this share of a document's word "
                              "4-grams are repeats (looping output)")
    pii: tuple[str, ...] = DEFAULT_PII
    pii_policy: Literal["drop", "mask"] = "mask"
    pii_patterns: dict[str, str] = Field(default_factory=dict, description="extra name → regex")
    label_consistency: float | Literal["argmax"] | None = Field(
        default=None, description="drop a document that a classifier trained on the seed does not read as its label. "
        "A number q in [0, 1): keep it when the classifier's probability of its label is at least the q-quantile of "
        "that probability over the real documents of the label (out-of-fold), i.e. when it reads as much like its "
        "label as all but the q least typical real ones; 'argmax': the label must be the classifier's first choice; "
        "null: off")

    pool: float = Field(default=1.0, ge=1, le=20, description="draw this many times the documents each label asks "
                        "for (all through the filters above), then keep the ones the seed-trained judge reads most "
                        "as their label (quality/text_selection.py); 1: keep the first that pass")
    judge: Literal["words", "words+chars"] = Field(default="words", description="the label judge's features: word "
                                                   "1-2-grams, or those and character 2-5-grams (two models averaged)")
    diversity: float = Field(default=0.0, ge=0, le=5, description="pool selection: weight of a document's highest "
                             "similarity to one already chosen, subtracted from its label probability")

    @field_validator("label_consistency")
    @classmethod
    def _quantile(cls, v):
        if isinstance(v, float) and not 0 <= v < 1:
            raise ValueError("a quantile in [0, 1), 'argmax' or null")
        return v

    @classmethod
    def from_recipe(cls, filters: dict[str, Any]) -> "FilterConfig":
        valid = ", ".join(cls.model_fields)
        for key in filters:
            if key not in cls.model_fields:
                raise UserError(f"quality.filters.{key}: unknown filter; valid: {valid}")
        try:
            cfg = cls.model_validate(filters)
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise UserError(f"quality.filters.{loc}: {err['msg']} (got {err.get('input')!r})") from None
        known = set(PII_PATTERNS) | set(cfg.pii_patterns)
        for name in cfg.pii:
            if name not in known:
                raise UserError(f"quality.filters.pii: {name!r} is not a pattern; choose from "
                                f"{', '.join(sorted(known))} or add it under quality.filters.pii_patterns")
        for name, rx in cfg.pii_patterns.items():
            try:
                re.compile(rx)
            except re.error as e:
                raise UserError(f"quality.filters.pii_patterns.{name}: not a regular expression ({e})") from None
        return cfg

    def patterns(self) -> dict[str, re.Pattern]:
        extra = {k: re.compile(v, re.IGNORECASE) for k, v in self.pii_patterns.items()}
        return {name: {**PII_PATTERNS, **extra}[name] for name in self.pii}


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", str(text)).lower()


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(normalise(text))


def words(text: str) -> list[str]:
    return _WORD.findall(normalise(text))


def _ngrams(seq: list[str], n: int) -> Iterable[tuple[str, ...]]:
    return (tuple(seq[i:i + n]) for i in range(len(seq) - n + 1))


class NgramIndex:
    """Every run of n tokens in the seed documents, for an exact "shares a run of ≥ n tokens" test."""

    def __init__(self, docs: Iterable[str], n: int = 12):
        self.n = n
        self._runs: set[tuple[str, ...]] = set()
        for doc in docs:
            self._runs.update(_ngrams(tokens(doc), n))

    def shares_run(self, text: str) -> bool:
        return any(g in self._runs for g in _ngrams(tokens(text), self.n))

    def longest_run(self, text: str) -> int:
        """Length of the longest token run shared with a seed document, capped below at n-1 (exact above n)."""
        toks = tokens(text)
        best, i = 0, 0
        while i + self.n <= len(toks):
            if tuple(toks[i:i + self.n]) in self._runs:
                j = i + 1  # extend while each next n-window is also in the seed (runs longer than n)
                while j + self.n <= len(toks) and tuple(toks[j:j + self.n]) in self._runs:
                    j += 1
                best = max(best, j - i + self.n - 1)
                i = j
            else:
                i += 1
        return best if best else self.n - 1


class ShingleIndex:
    """Word 3-shingle sets of the seed documents behind an inverted index, for Jaccard near-duplicates."""

    def __init__(self, docs: Iterable[str], k: int = 3):
        self.k = k
        self._sizes: list[int] = []
        self._postings: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for i, doc in enumerate(docs):
            sh = self.shingles(doc)
            self._sizes.append(len(sh))
            for s in sh:
                self._postings[s].append(i)

    def shingles(self, text: str) -> set[tuple[str, ...]]:
        w = words(text)
        return set(_ngrams(w, self.k)) if len(w) >= self.k else {tuple(w)} if w else set()

    def max_jaccard(self, text: str) -> float:
        sh = self.shingles(text)
        if not sh:
            return 0.0
        hits: Counter = Counter()
        for s in sh:
            hits.update(self._postings.get(s, ()))
        return max((inter / (len(sh) + self._sizes[i] - inter) for i, inter in hits.items()), default=0.0)


def degenerate_reason(text: str, min_words: int, max_repeat: float) -> str | None:
    if not text or not text.strip():
        return "empty"
    w = words(text)
    if len(w) < min_words:
        return "too_short"
    grams = list(_ngrams(w, 4))
    if len(grams) >= 8 and 1 - len(set(grams)) / len(grams) > max_repeat:
        return "looping"
    run = 1
    for a, b in zip(w, w[1:]):
        run = run + 1 if a == b else 1
        if run >= 5:
            return "looping"
    return None


class LabelJudge:
    """TF-IDF + logistic regression (balanced class weights) trained on the seed's training documents: does a
    document read like its label? Trained on the training split only, never the holdout. `features`: word 1-2-grams,
    and with "chars" also a second model on character 2-5-grams (within words), the two probabilities averaged: a
    model of spelling and morphology beside one of words, so one model's blind spot is not the whole judge's.

    For the quantile rule it also keeps, per label, the out-of-fold probabilities (5-fold) the classifier gives the
    real documents of that label: a rare, hard label (a 9 % 'neutral') gets a threshold that real documents of
    that label meet, instead of one that almost no document, real or synthetic, reaches.
    """

    def __init__(self, texts: list[str], labels: list[Any], random_state: int = 0,
                 features: tuple[str, ...] = ("words",)):
        from sklearn.model_selection import StratifiedKFold, cross_val_predict

        texts, labels = list(texts), [str(v) for v in labels]
        self.models = [self._pipeline(f, random_state).fit(texts, labels) for f in features]
        self.model = self.models[0]  # the word model: its TF-IDF space is the one `vectors` gives
        self.classes = [str(c) for c in self.model.classes_]
        folds = min(5, min(labels.count(c) for c in self.classes))
        self.real_p: dict[str, np.ndarray] = {}
        if folds >= 2:
            cv = StratifiedKFold(folds, shuffle=True, random_state=random_state)
            oof = np.mean([cross_val_predict(self._pipeline(f, random_state), texts, labels, method="predict_proba",
                                             cv=cv) for f in features], axis=0)
            y = np.array(labels)
            self.real_p = {c: oof[y == c, i] for i, c in enumerate(self.classes)}

    @staticmethod
    def _pipeline(features: str, random_state: int):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1) if features == "words" else \
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2, max_features=100_000)
        return make_pipeline(vec, LogisticRegression(max_iter=2000, class_weight="balanced",
                                                     random_state=random_state))

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return np.mean([m.predict_proba(list(texts)) for m in self.models], axis=0)

    def probability(self, texts: list[str], label: Any) -> np.ndarray:
        """The probability of `label` for each document (0 for a label the seed does not have)."""
        if str(label) not in self.classes:
            return np.zeros(len(texts))
        return self.predict_proba(texts)[:, self.classes.index(str(label))]

    def vectors(self, texts: list[str]):
        """The documents in the word model's TF-IDF space (sparse rows of unit length)."""
        return self.model[0].transform(list(texts))

    def thresholds(self, q: float) -> dict[str, float]:
        return {c: float(np.quantile(p, q)) for c, p in self.real_p.items()}

    def agrees(self, texts: list[str], labels: list[Any], rule: float | str) -> np.ndarray:
        if not texts:
            return np.zeros(0, dtype=bool)
        proba = self.predict_proba(texts)
        idx = {c: i for i, c in enumerate(self.classes)}
        col = np.array([idx.get(str(v), -1) for v in labels])
        known = col >= 0
        if rule == "argmax":
            return known & (proba.argmax(axis=1) == col)
        p = np.where(known, proba[np.arange(len(texts)), np.maximum(col, 0)], 0.0)
        cut = self.thresholds(float(rule))
        need = np.array([cut.get(str(v), np.inf) for v in labels])
        return known & (p >= need)


@dataclass
class FilterOutcome:
    keep: np.ndarray  # bool per document
    texts: list[str]  # after masking
    dropped: Counter = field(default_factory=Counter)  # reason → documents
    masked: Counter = field(default_factory=Counter)  # pii pattern → documents masked
    memorised: int = 0  # documents sharing a run of n tokens with a seed document, whatever else dropped them


class TextFilters:
    """All filters, built once from the seed (indexes, judge) and applied to each batch of synthetic documents."""

    def __init__(self, config: FilterConfig, seed_docs: list[str], judge: LabelJudge | None = None):
        self.config = config
        self.ngrams = NgramIndex(seed_docs, config.memorisation_ngram)
        self.shingles = ShingleIndex(seed_docs) if config.near_duplicate is not None else None
        self.patterns = config.patterns()
        self.judge = judge
        self._seen: set[str] = set()  # normalised documents already kept (dedupe across calls)

    def reasons(self, text: str) -> tuple[str | None, str, list[str]]:
        """(drop reason or None, text after masking, PII pattern names found) for one document."""
        cfg = self.config
        reason = degenerate_reason(text, cfg.min_words, cfg.max_repeat)
        if reason:
            return reason, text, []
        if self.ngrams.shares_run(text):
            return "memorised", text, []
        if self.shingles is not None and self.shingles.max_jaccard(text) >= cfg.near_duplicate:
            return "near_duplicate", text, []
        found = [name for name, rx in self.patterns.items() if rx.search(text)]
        if found and cfg.pii_policy == "drop":
            return f"pii_{found[0]}", text, found
        for name in found:
            text = self.patterns[name].sub(f"[{name.upper()}]", text)
        return None, text, found

    def apply(self, texts: list[str], labels: list[Any] | None = None) -> FilterOutcome:
        out = FilterOutcome(keep=np.zeros(len(texts), dtype=bool), texts=list(texts))
        batch: set[str] = set()
        for i, text in enumerate(texts):
            text = str(text) if text is not None else ""
            reason, masked, found = self.reasons(text)
            if reason == "memorised" or (reason is not None and self.ngrams.shares_run(text)):
                out.memorised += 1
            if reason is None and self.config.dedupe:
                key = " ".join(words(masked))
                if key in self._seen or key in batch:
                    reason = "duplicate"
                batch.add(key)
            if reason:
                out.dropped[reason] += 1
                continue
            out.keep[i] = True
            out.texts[i] = masked
            out.masked.update(found)
        if self.judge is not None and labels is not None and self.config.label_consistency is not None:
            idx = np.flatnonzero(out.keep)
            ok = self.judge.agrees([out.texts[i] for i in idx], [labels[i] for i in idx],
                                   self.config.label_consistency)
            for i in idx[~ok]:
                out.keep[i] = False
                out.dropped["label_inconsistent"] += 1
        if self.config.dedupe:
            self.commit(out.texts[i] for i in np.flatnonzero(out.keep))
        return out

    def forget(self) -> None:
        """Forget the documents kept so far: a new shard starts deduplicating afresh (shards are independent)."""
        self._seen.clear()

    def commit(self, texts: Iterable[str]) -> None:
        """Remember documents already kept (a resumed run passes those it wrote), so later batches drop repeats."""
        self._seen.update(" ".join(words(t)) for t in texts)
