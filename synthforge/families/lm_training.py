"""Training the causal_lm family's model: documents → token ids → batches → the loop.

A training document is `<|label=value|><|meta=value|>…text<|endoftext|>` (`prefix` + text + EOS, cut to
max_length); the loss skips the prefix. Batches hold documents of similar length. The loop (`train`) is AdamW with
linear warm-up then cosine decay whose progress is the larger of steps done / steps planned and seconds spent / time
budget (so the rate reaches its floor when the budget runs out, not after it), gradient accumulation, bf16 autocast
on CUDA, a validation split with early stopping that keeps the best epoch, and a checkpoint per epoch so an
interrupted run continues exactly as if it never stopped.

With `lora_layers` (LoRA on the top N layers only) the layers below hold no trainable weight and no dropout, so
their output for a document is the same at every epoch: `FrozenBottom` computes it once, under no_grad, and each
step runs only the top layers from it (forward and backward), the frozen share of an epoch's cost paid once.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from synthforge.randomness import derive_seed

if TYPE_CHECKING:
    from synthforge.families.causal_lm import CausalLMParams

# the family's random streams for training; causal_lm.py lists them all (11-17)
SHUFFLE_STREAM, DROPOUT_STREAM = 13, 16


def prefix(values: dict[str, Any]) -> str:
    return "".join(f"<|{col}={values[col]}|>" for col in values)


@dataclass
class Doc:
    ids: list[int]
    n_prefix: int


def encode(tokenizer, cond: dict[str, str], text: str, max_length: int) -> Doc:
    head = tokenizer(prefix(cond), add_special_tokens=False)["input_ids"] if cond else []
    body = tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return Doc(ids=(head + body)[:max_length], n_prefix=len(head))


def seed_lengths(docs: list[Doc], keys: list[str], points: int = 21) -> dict[str, list[float]]:
    """Quantiles (0 to 1 in `points` steps) of the documents' lengths in tokens, end token included, per condition
    key and over all under "": what `output.sampling.length: seed` draws from. Quantiles, not the lengths: the
    model folder keeps no fact about a single document."""
    lengths: dict[str, list[int]] = {"": []}
    for d, k in zip(docs, keys):
        n = len(d.ids) - d.n_prefix
        lengths[""].append(n)
        if k:
            lengths.setdefault(k, []).append(n)
    grid = np.linspace(0, 1, points)
    return {k: np.quantile(np.asarray(v, dtype="float64"), grid).round(1).tolist() for k, v in lengths.items() if v}


def balanced(docs: list[Doc], labels: list[str], power: float) -> list[Doc]:
    """A rare label's documents repeated so its prefix is trained on more often: (n_largest / n_label) ** power
    times each (rounded), like the temperature sampling of languages in multilingual pre-training (Conneau &
    Lample 2019, "Cross-lingual Language Model Pretraining", §3.1). The memorisation filter still guards the output."""
    counts: dict[str, int] = {}
    for v in labels:
        counts[v] = counts.get(v, 0) + 1
    most = max(counts.values())
    reps = {v: max(1, round((most / n) ** power)) for v, n in counts.items()}
    return [d for d, v in zip(docs, labels) for _ in range(reps[v])]


def null_prefixed(docs: list[Doc], null: list[int], share: float, rng) -> list[Doc]:
    """`docs` with a `share` of them (drawn by `rng`) behind the null prefix instead of their own (label dropout),
    so the one model learns p(text | conditions) and p(text) for classifier-free guidance."""
    picked = set(rng.choice(len(docs), size=int(round(share * len(docs))), replace=False).tolist())
    return [Doc(ids=null + d.ids[d.n_prefix:], n_prefix=len(null))
            if i in picked else d for i, d in enumerate(docs)]


# ---------------------------------------------------------------------- batches and loss


def _batches(docs: list[Doc], batch_size: int, gen) -> list[list[int]]:
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


def _collate(docs: list[Doc], pad_id: int, device: str):
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


def _loss(model, batch, device: str, inputs_embeds=None):
    import torch

    ids, mask, labels = batch
    feed = {"input_ids": ids} if inputs_embeds is None else {"inputs_embeds": inputs_embeds}
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
        out = model(**feed, attention_mask=mask, labels=labels)
    return out.loss, int((labels[:, 1:] != -100).sum())


class FrozenBottom:
    """The frozen lower layers' output per document, computed once, and the loss of a batch from it through the top
    `top` layers only. For decoder stacks that keep their layers in `.layers` beside a final `.norm` (Llama,
    Mistral, Qwen2, Gemma and SmolLM2 among them); `supported` says whether a model does.

    The stack's `layers` list is swapped for a slice of itself while a pass runs, so the model's own forward builds
    the masks and rotary positions exactly as it does for the whole stack: documents are right-padded and their
    positions start at 0 in both passes, so the top layers see what they would see in one full pass (the test
    compares the two losses)."""

    def __init__(self, model, top: int):
        self.inner = _stack(model)
        self.split = len(self.inner.layers) - top
        self.hidden: dict[int, object] = {}

    @staticmethod
    def supported(model, top: int) -> bool:
        inner = _stack(model)
        return inner is not None and 0 < top < len(inner.layers)

    @contextmanager
    def _only(self, part: slice, norm: bool):
        import torch

        layers, final = self.inner.layers, self.inner.norm
        self.inner.layers = torch.nn.ModuleList(list(layers)[part])
        if not norm:
            self.inner.norm = torch.nn.Identity()
        try:
            yield
        finally:
            self.inner.layers, self.inner.norm = layers, final

    def prepare(self, docs: list[Doc], pad_id: int, device: str, batch_size: int = 16) -> None:
        """Each distinct document's hidden states after the frozen layers (kept on the CPU, one tensor each)."""
        import torch

        todo = list({id(d): d for d in docs if id(d) not in self.hidden}.values())
        todo.sort(key=lambda d: len(d.ids))
        with torch.no_grad(), self._only(slice(0, self.split), norm=False):
            for s in range(0, len(todo), batch_size):
                chunk = todo[s:s + batch_size]
                ids, mask, _ = _collate(chunk, pad_id, device)
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
                    h = self.inner(input_ids=ids, attention_mask=mask).last_hidden_state
                for i, d in enumerate(chunk):
                    self.hidden[id(d)] = h[i, :len(d.ids)].float().cpu()

    def loss(self, model, docs: list[Doc], pad_id: int, device: str):
        """(mean next-token loss, scored tokens), the loss computed here: with a seed-vocabulary head
        (lm_models.restrict_vocabulary) only its rows are scored, never the full vocabulary's -inf columns."""
        import torch

        from synthforge.families.lm_models import subset_head_class

        _, mask, labels = _collate(docs, pad_id, device)
        width = mask.shape[1]
        h = torch.stack([torch.nn.functional.pad(self.hidden[id(d)], (0, 0, 0, width - len(d.ids))) for d in docs])
        with self._only(slice(self.split, None), norm=True), \
                torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
            hidden = self.inner(inputs_embeds=h.to(device), attention_mask=mask).last_hidden_state[:, :-1]
            head, target = model.get_output_embeddings(), labels[:, 1:]
            if isinstance(head, subset_head_class()):
                logits = head.subset_logits(hidden)
                target = head.index[target.clamp(min=0)].masked_fill(target < 0, -100)
            else:
                logits = head(hidden)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), target.flatten(), ignore_index=-100)
        return loss, int((target != -100).sum())


def _stack(model):
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    inner = getattr(base, "model", None)
    ok = inner is not None and all(hasattr(inner, a) for a in ("layers", "norm", "embed_tokens"))
    return inner if ok else None


def batch_loss(model, docs: list[Doc], pad_id: int, device: str, frozen: FrozenBottom | None = None):
    """(mean loss, scored tokens) of a batch, through the top layers from cached states when `frozen` is given."""
    if frozen is not None:
        return frozen.loss(model, docs, pad_id, device)
    return _loss(model, _collate(docs, pad_id, device), device)


def evaluate_loss(model, docs: list[Doc], pad_id: int, device: str, batch_size: int = 16,
                  frozen: FrozenBottom | None = None) -> float | None:
    """Mean next-token loss per text token (the prefix is not scored)."""
    import torch

    if not docs:
        return None
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(docs), batch_size):
            loss, n = batch_loss(model, docs[s:s + batch_size], pad_id, device, frozen)
            total += float(loss) * n
            count += n
    model.train()
    return total / max(count, 1)


# ---------------------------------------------------------------------- the loop


def train(model, train_docs: list[Doc], val_docs: list[Doc], cfg: CausalLMParams, pad_id: int, device: str,
          budget: float | None, seed: int, ckpt: Path | None,
          on_progress: Callable[[dict], None] | None) -> tuple[list[dict], dict]:
    """Train in place; the best epoch's weights end up in `model`. Returns (history per epoch, fit info)."""
    import torch

    steps_per_epoch = math.ceil(math.ceil(len(train_docs) / cfg.batch_size) / cfg.grad_accum)
    planned = max(1, steps_per_epoch * cfg.epochs)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = _optimizer(params, cfg)
    state, best = _resume(ckpt, model, opt)
    now = time.process_time if cfg.budget_clock == "cpu" else time.perf_counter
    lr_at = _schedule(cfg, planned, budget)
    frozen = FrozenBottom(model, cfg.lora_layers) if cfg.lora_layers and cfg.mode == "lora" and \
        FrozenBottom.supported(model, cfg.lora_layers) else None
    frozen_seconds = 0.0
    # dropout draws from torch's global generator (nn.Dropout takes no generator): fork it for training and seed it
    # per epoch, so a run resumed from a checkpoint trains exactly like one that was never interrupted
    with torch.random.fork_rng(devices=[]):
        model.train()
        clock = now() - state["elapsed"]
        if frozen is not None and state["stopped"] is None and state["epoch"] < cfg.epochs:
            frozen.prepare(train_docs + val_docs, pad_id, device)  # on the budget's clock: it is training's cost
            frozen_seconds = now() - clock - state["elapsed"]
        while state["stopped"] is None and state["epoch"] < cfg.epochs:
            torch.manual_seed(derive_seed(seed, DROPOUT_STREAM, state["epoch"]))
            gen = torch.Generator().manual_seed(derive_seed(seed, SHUFFLE_STREAM, state["epoch"]))
            batches = _batches(train_docs, cfg.batch_size, gen)
            run_loss, run_n, out_of_time = 0.0, 0, False
            for i, idx in enumerate(batches):
                loss, n = batch_loss(model, [train_docs[j] for j in idx], pad_id, device, frozen)
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
            val_loss = evaluate_loss(model, val_docs, pad_id, device, frozen=frozen)
            state["elapsed"] = now() - clock
            best = _end_epoch(state, model, opt, cfg, run_loss / max(run_n, 1), val_loss, out_of_time, best, ckpt)
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
            "frozen_layers": frozen.split if frozen else 0, "frozen_pass_seconds": round(frozen_seconds, 2),
            "parameters": int(sum(p.numel() for p in model.parameters()))}
    return state["history"], info


def _optimizer(params: list, cfg: CausalLMParams):
    """AdamW; biases and norms (1-d parameters) are not decayed."""
    import torch

    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))


def _schedule(cfg: CausalLMParams, planned: int, budget: float | None) -> Callable[[int, float], float]:
    """The learning rate at (step, seconds elapsed): linear warm-up, then constant or cosine down to the floor."""

    def lr_at(step: int, elapsed: float) -> float:
        if step < cfg.warmup_steps:
            return cfg.lr * (step + 1) / (cfg.warmup_steps + 1)
        if cfg.schedule == "constant":
            return cfg.lr
        progress = min(1.0, max((step - cfg.warmup_steps) / max(1, planned - cfg.warmup_steps),
                                elapsed / budget if budget else 0.0))
        floor = cfg.lr * cfg.min_lr_ratio
        return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return lr_at


def _resume(ckpt: Path | None, model, opt) -> tuple[dict, dict | None]:
    """(counters, best weights so far): fresh ones, or those of the checkpoint in `ckpt`, whose last epoch's
    weights and optimiser state are loaded into `model` and `opt` (the best weights stay on disk)."""
    import torch
    from safetensors.torch import load_file

    state = {"epoch": 0, "step": 0, "elapsed": 0.0, "best_val": None, "best_epoch": None, "bad_epochs": 0,
             "stopped": None, "history": []}
    if ckpt and (ckpt / "state.json").exists():
        state = json.loads((ckpt / "state.json").read_text())
        model.load_state_dict(load_file(str(ckpt / "last.safetensors")), strict=False)
        opt.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=True))
    best = load_file(str(ckpt / "best.safetensors")) if ckpt and (ckpt / "best.safetensors").exists() else None
    return state, best


def _end_epoch(state: dict, model, opt, cfg: CausalLMParams, train_loss: float, val_loss: float | None,
               out_of_time: bool, best: dict | None, ckpt: Path | None) -> dict | None:
    """After an epoch: its history line, the best weights (returned), whether to stop, and the checkpoint."""
    import torch
    from safetensors.torch import save_file

    state["history"].append({"epoch": state["epoch"], "step": state["step"], "train_loss": round(train_loss, 4),
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
    return best


def _trainable(model) -> dict:
    return {k: p.detach().contiguous().cpu().clone() for k, p in model.named_parameters() if p.requires_grad}


def _save_atomic(save_file, tensors: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp))
    tmp.replace(path)
