"""LoRA on a CPU budget (issue 33 item 2): LoRA on the top layers only with the frozen layers' output computed once
(`lm_training.FrozenBottom`), and an output layer restricted to the seed's tokens (`lm_models.restrict_vocabulary`).
Both must change what a step costs, never what it computes: the losses and gradients are compared with the plain
forward pass of the same model, on a tiny Llama (the architecture of SmolLM2) built and saved here."""

import pandas as pd
import pytest

from synthforge.errors import UserError
from synthforge.families.causal_lm import CausalLMGenerator, check_params
from synthforge.families.lm_models import apply_lora, load_pretrained, restrict_vocabulary, train_tokenizer
from synthforge.families.lm_training import FrozenBottom, batch_loss, encode

WORDS = {"positive": ["great", "relief", "wonderful", "helped", "calm"],
         "negative": ["awful", "nausea", "rash", "worse", "pain"]}
SAMPLING = {"max_new_tokens": 20, "batch_size": 8}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def corpus(n: int = 8) -> pd.DataFrame:
    return pd.DataFrame([{"text": f"This drug was {w[i % 5]} and the {w[(i + 2) % 5]} came in week {i + 1}.",
                          "label": label} for label, w in WORDS.items() for i in range(n)])


@pytest.fixture(scope="module")
def llama_base(tmp_path_factory):
    """A 4-layer Llama whose tokenizer knows words the corpus never uses (so a seed vocabulary is a real subset)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("llama")
    extra = ["The weather report said rain, snow, thunder and fog over the harbour and the mountains."] * 3
    tok = train_tokenizer(corpus()["text"].tolist() + extra, [], 400, 1)
    torch.manual_seed(0)  # test-only: a fixed base model
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                                         max_position_embeddings=128, tie_word_embeddings=True,
                                         eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id))
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _adapted(folder, **params):
    import torch

    cfg = check_params({"base_model": str(folder), "adaptation": "lora", "lora_r": 4, "lora_dropout": 0.0,
                        **params})
    tok, model = load_pretrained(cfg)
    model = apply_lora(model, cfg, seed=0)
    torch.manual_seed(1)  # test-only: LoRA's B starts at zero; a nonzero adapter makes the top layers matter
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.1)
    return tok, model


def _docs(tok):
    df = corpus()
    return [encode(tok, {"label": lab}, t, 64) for lab, t in zip(df["label"], df["text"])]


@pytest.mark.parametrize("seed_vocabulary", [False, True])
def test_the_frozen_bottom_computes_the_same_loss_and_gradients(llama_base, seed_vocabulary):
    import torch

    tok, model = _adapted(llama_base, lora_layers=2)
    docs = _docs(tok)[:6]
    if seed_vocabulary:
        restrict_vocabulary(model, sorted({i for d in docs for i in d.ids[d.n_prefix:]}))
    frozen = FrozenBottom(model, 2)
    assert frozen.split == 2 and FrozenBottom.supported(model, 2) and not FrozenBottom.supported(model, 4)
    frozen.prepare(docs, tok.pad_token_id, "cpu")
    model.train()
    grads = []
    for f in (None, frozen):
        model.zero_grad()
        loss, n = batch_loss(model, docs, tok.pad_token_id, "cpu", f)
        loss.backward()
        grads.append((float(loss.detach()), n, {k: p.grad.clone() for k, p in model.named_parameters() if p.requires_grad}))
    (full, n_full, g_full), (part, n_part, g_part) = grads
    assert n_full == n_part > 0
    assert part == pytest.approx(full, rel=1e-5)
    assert set(g_full) == set(g_part) and all(k.split(".layers.")[1].split(".")[0] in {"2", "3"} for k in g_full)
    for k in g_full:
        assert torch.allclose(g_full[k], g_part[k], atol=1e-6), k


def test_a_seed_vocabulary_head_scores_only_the_seed_tokens(llama_base):
    import torch

    tok, model = _adapted(llama_base)
    keep = sorted({i for d in _docs(tok) for i in d.ids[d.n_prefix:]})
    assert 0 < len(keep) < len(tok)
    before = model(input_ids=torch.tensor([[keep[0], keep[1]]])).logits[0, -1]
    restrict_vocabulary(model, keep)
    after = model(input_ids=torch.tensor([[keep[0], keep[1]]])).logits[0, -1]
    assert torch.allclose(after[keep], before[keep], atol=1e-5)  # the same scores for the kept tokens
    outside = torch.ones(len(tok), dtype=torch.bool)
    outside[keep] = False
    assert torch.isinf(after[outside]).all()


def test_a_fast_lora_generator_writes_only_seed_tokens_and_reloads_the_same(llama_base, tmp_path):
    params = {"base_model": str(llama_base), "adaptation": "lora", "lora_r": 4, "lora_layers": 2,
              "vocabulary": "seed", "epochs": 2, "batch_size": 4, "max_length": 64, "val_fraction": 0.0}
    gen = CausalLMGenerator(params, text_column="text", label_column="label", sampling=SAMPLING,
                            random_state=0).fit(corpus())
    assert gen.fit_info_["frozen_layers"] == 2 and gen.fit_info_["stopped"] == "epochs"
    df = gen.sample(8, seed=3, conditions={"label": "negative"})
    assert not {"weather", "harbour", "thunder", "snow"} & set(" ".join(df["text"]).split())
    import torch

    from synthforge.families.lm_sampling import generate

    head = gen.tokenizer_("<|label=negative|>", add_special_tokens=False)["input_ids"]
    out = generate(gen.model_, [head] * 8, torch.Generator().manual_seed(0), gen.sampling_config,
                   eos_id=gen.tokenizer_.eos_token_id, pad_id=gen.tokenizer_.pad_token_id, banned=[], device="cpu",
                   max_positions=128)
    written = {i for ids, _ in out for i in ids}
    assert written and written <= set(gen.vocabulary_)
    gen.save(tmp_path / "m")
    again = CausalLMGenerator.load(tmp_path / "m").sample(8, seed=3, conditions={"label": "negative"})
    assert again["text"].tolist() == df["text"].tolist()


def test_a_lora_fit_depends_on_its_seed_only(llama_base):
    """peft draws LoRA's A matrices from torch's global generator: what ran before the fit (a conversion, another
    model) must not change them. Two fits at one seed after different global draws: the same adapters and text."""
    import torch

    params = {"base_model": str(llama_base), "adaptation": "lora", "lora_r": 4, "lora_layers": 2,
              "vocabulary": "seed", "epochs": 1, "batch_size": 4, "max_length": 64, "val_fraction": 0.0}
    fits = []
    for before in (1, 2):
        torch.manual_seed(before)  # test-only: a different global state before each fit
        gen = CausalLMGenerator(params, text_column="text", label_column="label", sampling=SAMPLING,
                                random_state=5).fit(corpus())
        fits.append((gen, {k: v.detach().clone() for k, v in gen.model_.named_parameters() if "lora_A" in k}))
    (first, a1), (second, a2) = fits
    assert a1 and set(a1) == set(a2) and all(torch.equal(a1[k], a2[k]) for k in a1)
    untimed = lambda history: [{k: v for k, v in h.items() if k != "seconds"} for h in history]  # noqa: E731
    assert untimed(first.history_) == untimed(second.history_)  # the losses; a step's seconds vary with load
    assert first.sample(8, seed=3)["text"].tolist() == second.sample(8, seed=3)["text"].tolist()


def test_bf16_sampling_keeps_the_model_and_its_text(llama_base, tmp_path):
    """`sampling.precision: bfloat16`: a copy with LoRA merged in scores like the fitted model, writes only seed
    tokens, the same text from the same seed (again after a reload), and leaves the fitted (saved) model float32."""
    import torch

    from synthforge.families.lm_models import bf16_copy

    params = {"base_model": str(llama_base), "adaptation": "lora", "lora_r": 4, "lora_layers": 2,
              "vocabulary": "seed", "epochs": 2, "batch_size": 4, "max_length": 64, "val_fraction": 0.0}
    gen = CausalLMGenerator(params, text_column="text", label_column="label",
                            sampling={**SAMPLING, "precision": "bfloat16"}, random_state=0).fit(corpus())
    ids = torch.tensor([gen.tokenizer_("<|label=negative|> This drug was", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        exact = gen.model_(input_ids=ids).logits[0, -1, gen.vocabulary_]
        copied = bf16_copy(gen.model_)
        approx = copied(input_ids=ids).logits[0, -1, gen.vocabulary_].float()
    assert not any("lora" in name for name, _ in copied.named_modules())
    assert {p.dtype for p in copied.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in gen.model_.parameters()} == {torch.float32}
    assert torch.corrcoef(torch.stack([exact, approx]))[0, 1] > 0.99
    df = gen.sample(8, seed=3, conditions={"label": "negative"})
    assert df["text"].str.len().gt(0).all()
    assert not {"weather", "harbour", "thunder", "snow"} & set(" ".join(df["text"]).split())
    assert gen.sample(8, seed=3, conditions={"label": "negative"})["text"].tolist() == df["text"].tolist()
    gen.save(tmp_path / "m")
    again = CausalLMGenerator.load(tmp_path / "m")
    assert again.sampling_config.precision == "bfloat16"
    assert again.sample(8, seed=3, conditions={"label": "negative"})["text"].tolist() == df["text"].tolist()


def test_fast_lora_settings_are_checked(llama_base):
    with pytest.raises(UserError, match=r"generator\.params\.vocabulary: 'seed' restricts a LoRA"):
        check_params({"vocabulary": "seed"})
    with pytest.raises(UserError, match=r"generator\.params\.lora_layers: LoRA's layers"):
        check_params({"base_model": str(llama_base), "adaptation": "full", "lora_layers": 2})
    with pytest.raises(UserError, match=r"generator\.params\.lora_layers: 9 is more than the base model's 4 layers"):
        _adapted(llama_base, lora_layers=9)




def test_guided_sampling_is_the_guided_distribution_step_by_step(llama_base):
    """Classifier-free guidance: scale 1 is the conditional model itself, a token outside the seed stays out; and
    the batched, cached loop (conditioned and null rows side by side, rows leaving as they end) picks at every step
    the token that guide() over two separate uncached forward passes picks (greedy: top_k 1)."""
    import torch

    from synthforge.families.lm_sampling import guide

    cond, null = torch.tensor([[2.0, 0.0, -float("inf")]]), torch.tensor([[0.0, 2.0, -float("inf")]])
    assert torch.allclose(guide(cond, null, 1.0)[:, :2], cond.log_softmax(-1)[:, :2])
    g = guide(cond, null, 3.0)
    assert torch.isinf(g[0, 2]) and g[0, 0] - g[0, 1] > cond[0, 0] - cond[0, 1]

    params = {"base_model": str(llama_base), "adaptation": "full", "epochs": 30, "batch_size": 4, "max_length": 64,
              "val_fraction": 0.0, "learning_rate": 0.01, "warmup_steps": 5}
    greedy = {**SAMPLING, "top_k": 1, "max_new_tokens": 12}
    with pytest.raises(UserError, match=r"output\.sampling\.guidance: 2\.0 .* generator\.params\.label_dropout"):
        CausalLMGenerator(params, text_column="text", label_column="label", sampling={**greedy, "guidance": 2.0},
                          random_state=0).fit(corpus(2)).sample(2, seed=0)
    gen = CausalLMGenerator({**params, "label_dropout": 0.3}, text_column="text", label_column="label",
                            sampling={**greedy, "guidance": 2.5}, random_state=0).fit(corpus())
    from synthforge.families.causal_lm import check_sampling
    from synthforge.families.lm_sampling import generate

    tok, model, eos = gen.tokenizer_, gen.model_, gen.tokenizer_.eos_token_id
    null = tok("<|label=*|>", add_special_tokens=False)["input_ids"]
    starts = ["", "This drug was awful and the", "This", "This drug was great and the rash came in week"]
    rows = [(tok(f"<|label={label}|>", add_special_tokens=False)["input_ids"],
             tok(start, add_special_tokens=False)["input_ids"] if start else []) for label in WORDS for start in starts]
    sp = check_sampling({**greedy, "guidance": 2.5})
    with torch.no_grad():
        got = generate(model, [h + s for h, s in rows], torch.Generator().manual_seed(0), sp, eos_id=eos,
                       pad_id=tok.pad_token_id, banned=[], device="cpu", max_positions=128,
                       null_ids=[null + s for _, s in rows])
        for (head, start), (ids, _) in zip(rows, got):
            out = []
            for t in range(sp.max_new_tokens):
                last = [model(input_ids=torch.tensor([h + start + out])).logits[0, -1] for h in (head, null)]
                logits = guide(last[0][None], last[1][None], 2.5)[0]
                if t < sp.min_new_tokens:
                    logits[eos] = -float("inf")
                nxt = int(logits.argmax())
                if nxt == eos:
                    break
                out.append(nxt)
            assert ids == out
    assert len({len(ids) for ids, _ in got}) > 1 and any(ended for _, ended in got)  # rows left at different steps


def test_seed_lengths_hold_each_document_to_a_length_drawn_from_its_label(llama_base, tmp_path):
    """`sampling.length: seed`: the fitted model keeps quantiles of the seed documents' lengths per label (not the
    lengths); each sampled document is held to a length drawn from its label's quantiles, so a model that ends its
    documents early is made to write as long as the seed; the quantiles survive a reload; a model without them
    is refused, naming the field."""
    import numpy as np

    params = {"base_model": str(llama_base), "adaptation": "full", "epochs": 3, "batch_size": 4, "max_length": 64,
              "val_fraction": 0.0}
    df = corpus()
    df.loc[df["label"] == "negative", "text"] += " It was bad, and I stopped it after a month and then a week."
    gen = CausalLMGenerator(params, text_column="text", label_column="label",
                            sampling={**SAMPLING, "max_new_tokens": 48, "length": "seed"}, random_state=0).fit(df)
    tok = gen.tokenizer_
    for label in WORDS:  # body and end token, cut at max_length with the prefix
        room = 64 - len(tok(f"<|label={label}|>", add_special_tokens=False)["input_ids"])
        own = [min(room, len(tok(t, add_special_tokens=False)["input_ids"]) + 1)
               for t in df.loc[df["label"] == label, "text"]]
        assert gen.lengths_[f"<|label={label}|>"] == pytest.approx(np.quantile(own, np.linspace(0, 1, 21)), abs=0.05)
    assert gen.lengths_["<|label=negative|>"][0] > gen.lengths_["<|label=positive|>"][-1]

    gen.lengths_ = {k: [30.0] * 21 for k in gen.lengths_}  # planted: every document at least 30 tokens long
    held = gen.sample(16, seed=3)
    assert (held["gen_tokens"] >= 29).all()
    gen.sampling = {**SAMPLING, "max_new_tokens": 48, "length": "model"}
    free = gen.sample(16, seed=3)
    assert (free["gen_tokens"] < 29).any()

    gen.sampling = {**SAMPLING, "max_new_tokens": 48, "length": "seed"}
    gen.save(tmp_path / "m")
    again = CausalLMGenerator.load(tmp_path / "m")
    assert again.lengths_ == gen.lengths_
    assert again.sample(16, seed=3)["text"].tolist() == held["text"].tolist()
    again.lengths_ = None  # a model folder written before lengths were kept
    with pytest.raises(UserError, match=r"output\.sampling\.length"):
        again.sample(2, seed=0)


def test_contrast_guides_a_label_away_from_another_labels_prefix(llama_base):
    """`sampling.contrast: {negative: positive}`: negative documents are guided away from the positive prefix, the
    others from the null prefix; the same tokens as generate() given those prefixes. An unknown label is refused."""
    import torch

    from synthforge.families.causal_lm import check_sampling
    from synthforge.families.lm_sampling import generate

    params = {"base_model": str(llama_base), "adaptation": "full", "epochs": 30, "batch_size": 4, "max_length": 64,
              "val_fraction": 0.0, "learning_rate": 0.01, "warmup_steps": 5, "label_dropout": 0.3}
    greedy = {**SAMPLING, "top_k": 1, "max_new_tokens": 12, "guidance": 2.5}
    gen = CausalLMGenerator(params, text_column="text", label_column="label",
                            sampling={**greedy, "contrast": {"negative": "positive"}}, random_state=0).fit(corpus())
    got = gen.sample(8, seed=1)
    tok = gen.tokenizer_
    ids = lambda s: tok(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    against = {"negative": ids("<|label=positive|>"), "positive": ids("<|label=*|>")}
    with torch.no_grad():
        want = generate(gen.model_, [ids(f"<|label={lab}|>") for lab in got["label"]], torch.Generator(),
                        check_sampling(greedy), eos_id=tok.eos_token_id, pad_id=tok.pad_token_id,
                        banned=gen._banned_ids(), device="cpu", max_positions=128,
                        null_ids=[against[lab] for lab in got["label"]])
    assert got["gen_tokens"].tolist() == [len(i) for i, _ in want]
    assert got["text"].tolist() == [tok.decode(i, skip_special_tokens=True).strip() for i, _ in want]
    assert set(got["label"]) == {"negative", "positive"}
    gen.sampling = greedy
    plain = gen.sample(8, seed=1)
    neg = got["label"] == "negative"
    assert plain["text"][~neg].tolist() == got["text"][~neg].tolist()  # positive rows: the null prefix either way
    assert plain["text"][neg].tolist() != got["text"][neg].tolist()  # negative rows: the contrast changed them
    gen.sampling = {**greedy, "contrast": {"negative": "neutral"}}
    with pytest.raises(UserError, match=r"output\.sampling\.contrast: 'neutral'"):
        gen.sample(2, seed=0)
