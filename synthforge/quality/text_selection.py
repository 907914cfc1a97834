"""Pool, then select: a shard draws `quality.filters.pool` times the documents a label asks for (each through every
filter), then keeps the ones worth most by what the seed's training split says, never the holdout.

A document's value is the probability the seed-trained judge (TF-IDF + logistic regression, `LabelJudge`; not the
report's MiniLM evaluator) gives its label, less `diversity` × its highest cosine similarity (the judge's TF-IDF
space) to a document already chosen: maximal marginal relevance (Carbonell & Goldstein 1998), so the chosen set is
read as its label and does not pile onto one phrasing. Without a label the judge has nothing to say and only
diversity decides. The chosen documents keep their generation order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from synthforge.quality.text_filters import LabelJudge


def choose(texts: list[str], label: Any | None, n: int, judge: LabelJudge | None, diversity: float) -> list[int]:
    """Indices (ascending) of the n documents to keep out of `texts`, all of them when there are no more than n."""
    if len(texts) <= n:
        return list(range(len(texts)))
    judged = judge is not None and label is not None
    value = judge.probability(texts, label) if judged else np.zeros(len(texts))
    if diversity <= 0:
        order = np.argsort(-value, kind="stable")[:n]
        return sorted(int(i) for i in order)
    if judged:
        vectors = judge.vectors(texts)
    else:
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectors = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit_transform(texts)
    nearest = np.zeros(len(texts))
    free = np.ones(len(texts), dtype=bool)
    chosen = []
    for _ in range(n):
        j = int(np.argmax(np.where(free, value - diversity * nearest, -np.inf)))
        chosen.append(j)
        free[j] = False
        nearest = np.maximum(nearest, (vectors @ vectors[j].T).toarray().ravel())
    return sorted(chosen)
