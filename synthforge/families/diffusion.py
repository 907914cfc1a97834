"""Images through a class-conditional diffusion model: diffusers' `UNet2DModel` with a class embedding.

Training is DDPM (Ho et al. 2020, eq. 14: predict the noise ε added to x₀ at a random step t), with classifier-free
guidance's label dropout (Ho & Salimans 2022: the label is replaced by a learned "no label" class with probability
`class_dropout`), AdamW, a linear warm-up then cosine learning rate, gradient clipping and an exponential moving
average of the weights (the EMA weights are what is saved and sampled). Sampling is DDIM (Song et al. 2021) or
DPM-Solver++ (Lu et al. 2022) with `output.sampling.steps` steps and guidance
ε = ε(x, ∅) + w·(ε(x, y) − ε(x, ∅)).

Training stops on `time_budget` (seconds; wall clock, or this process's CPU time with `clock: process`) or
`max_steps`, whichever comes first; with only a clock the cosine schedule runs over the clock, so the learning rate
has annealed when time is up. A checkpoint (weights, EMA, optimizer, random state: one safetensors file) is written
every `checkpoint_every` seconds into `checkpoint_dir`, and `fit` continues from it.

Every image has its own seed (drawn from the call's seed): its starting noise comes from a `torch.Generator` of that
seed alone, so an image is reproduced by its seed, label and the model (up to float rounding across batch sizes).

Saved as diffusers folders (`unet/`, `scheduler/`: `save_pretrained`, safetensors) plus `generator.json`; no pickle,
so `load(trusted=False)` is safe. `base_model` fine-tunes a saved diffusers UNet (its folder, a pipeline folder with
`unet/`, or a synthforge `model/` folder).
"""

import copy
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from synthforge.data.images import ImageSet
from synthforge.errors import UserError
from synthforge.families.generator import NotFittedError
from synthforge.randomness import derive_seed

FAMILY = "diffusion"
CHECKPOINT = "train.safetensors"
NOISE_STREAM, INIT_STREAM = 1, 2


class DiffusionParams(BaseModel):
    """`generator.params` of the diffusion family."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    block_out_channels: tuple[int, ...] = Field((32, 64, 64), min_length=1, max_length=6)
    layers_per_block: int = Field(1, ge=1, le=4)
    attention: bool = Field(True, description="self-attention in the UNet's middle block")
    norm_num_groups: int = Field(8, ge=1)
    beta_schedule: Literal["linear", "scaled_linear", "squaredcos_cap_v2"] = "squaredcos_cap_v2"
    num_train_timesteps: int = Field(1000, ge=10, le=10_000)
    prediction_type: Literal["epsilon", "v_prediction"] = "epsilon"
    learning_rate: float = Field(2e-3, gt=0, le=1)
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(128, ge=1, le=65_536)
    warmup_steps: int = Field(50, ge=0)
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    max_steps: int | None = Field(None, ge=1)
    ema_decay: float = Field(0.999, ge=0, lt=1, description="0: no EMA")
    class_dropout: float = Field(0.1, ge=0, lt=1, description="share of labels dropped (classifier-free guidance)")
    hflip: bool = Field(False, description="flip half the training images left-right (not for digits or text)")
    checkpoint_every: float = Field(60.0, ge=0, description="seconds between training checkpoints")
    clock: Literal["wall", "process"] = Field("wall", description="what time_budget counts: wall clock or CPU time")
    base_model: str | None = Field(None, description="folder of a diffusers UNet or pipeline to fine-tune")

    @model_validator(mode="after")
    def _groups_divide(self):
        bad = [c for c in self.block_out_channels if c % self.norm_num_groups]
        if bad:
            raise ValueError(f"norm_num_groups {self.norm_num_groups} must divide every block_out_channels "
                             f"value; {bad[0]} is not a multiple")
        return self


class SamplingParams(BaseModel):
    """`output.sampling` of the diffusion family."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scheduler: Literal["ddim", "dpm_solver"] = "ddim"
    steps: int = Field(50, ge=1, le=1000)
    guidance_scale: float = Field(1.0, ge=0, le=50, description="1: the conditional model alone, no guidance")
    eta: float = Field(0.0, ge=0, le=1, description="DDIM only: 0 deterministic, 1 DDPM-like noise")
    batch_size: int = Field(256, ge=1, le=65_536)


class FilterParams(BaseModel):
    """`quality.filters` of the diffusion family (the engine applies them before writing)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    near_copy_distance: float = Field(0.05, ge=0, le=1, description="drop images within this RMS pixel distance "
                                      "(pixels in [0, 1]) of a training image")


def parse_filters(filters: dict[str, Any] | None) -> FilterParams:
    return _parse(FilterParams, filters, "quality.filters")


def parse_params(params: dict[str, Any] | None) -> DiffusionParams:
    return _parse(DiffusionParams, params, "generator.params")


def parse_sampling(sampling: dict[str, Any] | None) -> SamplingParams:
    return _parse(SamplingParams, sampling, "output.sampling")


def _parse(model, values, prefix: str):
    values = dict(values or {})
    valid = list(model.model_fields)
    for key in values:
        if key not in valid:
            raise UserError(f"{prefix}.{key}: not a parameter of the diffusion family; valid: {', '.join(valid)}")
    try:
        return model.model_validate(values)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        where = f"{prefix}.{loc}" if loc else prefix
        raise UserError(f"{where}: {err['msg'].removeprefix('Value error, ')} (got {err.get('input')!r})") from None


class DiffusionGenerator:
    """A class-conditional UNet2DModel behind the Generator protocol."""

    family = FAMILY

    def __init__(self, params: dict[str, Any] | DiffusionParams | None = None,
                 sampling: dict[str, Any] | SamplingParams | None = None, *, image_size: int, channels: int,
                 label_column: str = "label", device: str = "cpu", time_budget: float | None = None,
                 random_state: int = 0, checkpoint_dir: Path | None = None, base_dir: Path | None = None):
        self.params = params if isinstance(params, DiffusionParams) else parse_params(params)
        self.sampling = sampling if isinstance(sampling, SamplingParams) else parse_sampling(sampling)
        self.image_size = image_size
        self.channels = channels
        self.label_column = label_column
        self.device = device
        self.time_budget = time_budget
        self.random_state = random_state
        self.checkpoint_dir = checkpoint_dir
        self.base_dir = base_dir

    # ------------------------------------------------------------ fit

    def fit(self, data: ImageSet, *, progress: Callable[[dict], None] | None = None) -> "DiffusionGenerator":
        """Train on `data` until `time_budget` or `max_steps`. `progress` gets a dict (step, loss, elapsed, lr)
        after every step; an exception it raises stops training (the last checkpoint stays)."""
        import torch
        import torch.nn.functional as F
        from diffusers import DDPMScheduler

        p = self.params
        if self.time_budget is None and p.max_steps is None:
            raise UserError("generator.params.max_steps: set it, or a generator.time_budget, so training can end")
        levels = len(p.block_out_channels)
        if self.image_size % 2 ** (levels - 1):
            raise UserError(f"generator.params.block_out_channels: {levels} levels halve the image {levels - 1} "
                            f"times, but seed.image_size {self.image_size} is not divisible by {2 ** (levels - 1)}")
        if data.images.shape[1:] != (self.image_size, self.image_size, self.channels):
            raise ValueError(f"images are {data.images.shape[1:]}, the generator was made for "
                             f"{(self.image_size, self.image_size, self.channels)}")
        self.labelled_ = data.labels is not None
        self.classes_ = data.classes if self.labelled_ else ("",)
        index = {c: i for i, c in enumerate(self.classes_)}
        y_all = (torch.tensor([index[v] for v in data.labels], dtype=torch.long) if self.labelled_
                 else torch.zeros(len(data), dtype=torch.long))
        self.class_counts_ = {c: int((y_all == i).sum()) for i, c in enumerate(self.classes_)}
        null_class = len(self.classes_)
        device = torch.device(self.device)
        bf16 = device.type == "cuda"  # bf16 autocast on GPUs; CPUs train in fp32 (bf16 matmuls are slow there)
        x_all = (torch.from_numpy(data.images).permute(0, 3, 1, 2).float() / 127.5 - 1.0).to(device)
        y_all = y_all.to(device)

        self.noise_scheduler_ = DDPMScheduler(num_train_timesteps=p.num_train_timesteps,
                                              beta_schedule=p.beta_schedule, prediction_type=p.prediction_type)
        unet, self.base_notes_ = self._initial_unet(null_class + 1)
        unet.to(device).train()
        ema = copy.deepcopy(unet).eval().requires_grad_(False) if p.ema_decay > 0 else None
        opt = torch.optim.AdamW(unet.parameters(), lr=p.learning_rate, weight_decay=p.weight_decay)
        rng = torch.Generator().manual_seed(derive_seed(self.random_state, NOISE_STREAM))
        fingerprint = self._fingerprint(len(data))
        state = {"step": 0, "seconds": 0.0, "losses": [], "resumed_from": None}
        ckpt = Path(self.checkpoint_dir) / CHECKPOINT if self.checkpoint_dir else None
        if ckpt is not None and ckpt.exists():
            state = _load_checkpoint(ckpt, fingerprint, unet, ema, opt, rng, device) or state
        clock = time.perf_counter if p.clock == "wall" else time.process_time
        started = clock() - state["seconds"]
        last_ckpt = clock()
        step, smooth, stopped = state["step"], None, "max_steps"
        alphas = self.noise_scheduler_.alphas_cumprod.to(device)
        while True:
            elapsed = clock() - started
            if p.max_steps is not None and step >= p.max_steps:
                break
            if self.time_budget is not None and elapsed >= self.time_budget:
                stopped = "time_budget"
                break
            lr = self._lr(step, elapsed)
            for group in opt.param_groups:
                group["lr"] = lr
            # 1. a batch (with replacement), its noise and steps, all from this fit's own generator
            idx = torch.randint(0, len(x_all), (p.batch_size,), generator=rng)
            x0, y = x_all[idx.to(device)], y_all[idx.to(device)].clone()
            drop = torch.rand(len(idx), generator=rng) < p.class_dropout
            y[drop.to(device)] = null_class
            if p.hflip:
                flip = (torch.rand(len(idx), generator=rng) < 0.5).to(device)
                x0 = torch.where(flip[:, None, None, None], x0.flip(-1), x0)
            noise = torch.randn(x0.shape, generator=rng).to(device)
            t = torch.randint(0, p.num_train_timesteps, (len(idx),), generator=rng).to(device)
            # 2. x_t = sqrt(ᾱ_t)·x₀ + sqrt(1-ᾱ_t)·ε (DDPM eq. 4); the target is ε, or v = sqrt(ᾱ)ε − sqrt(1-ᾱ)x₀
            a = alphas[t].view(-1, 1, 1, 1)
            xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
            target = noise if p.prediction_type == "epsilon" else a.sqrt() * noise - (1 - a).sqrt() * x0
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                pred = unet(xt, t, class_labels=y).sample
            loss = F.mse_loss(pred.float(), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
            opt.step()
            step += 1
            # 3. EMA with the usual warm-up: early steps average over a short window
            if ema is not None:
                decay = min(p.ema_decay, (1 + step) / (10 + step))
                with torch.no_grad():
                    for pe, pm in zip(ema.parameters(), unet.parameters()):
                        pe.lerp_(pm, 1 - decay)
            value = float(loss.detach())
            smooth = value if smooth is None else 0.98 * smooth + 0.02 * value
            if step % 10 == 0 or step == 1:
                state["losses"].append([step, round(smooth, 5)])
            if ckpt is not None and clock() - last_ckpt >= p.checkpoint_every:
                _save_checkpoint(ckpt, fingerprint, unet, ema, opt, rng, step, clock() - started, state["losses"])
                last_ckpt = clock()
            if progress is not None:
                progress({"step": step, "loss": smooth, "elapsed": clock() - started, "lr": lr})
        seconds = clock() - started
        self.unet_ = (ema if ema is not None else unet).eval().requires_grad_(False)
        self.fit_info_ = {"steps": step, "seconds": round(seconds, 2), "clock": p.clock, "stopped_by": stopped,
                          "images_seen": step * p.batch_size,
                          "final_loss": None if smooth is None else round(smooth, 5),
                          "resumed_from_step": state.get("resumed_from"), "parameters": _count(unet),
                          "precision": "bf16" if bf16 else "fp32", "device": str(device),
                          "train_images": len(data), "losses": state["losses"],
                          "base_model": p.base_model, "base_notes": self.base_notes_}
        return self

    def _lr(self, step: int, elapsed: float) -> float:
        """Linear warm-up over `warmup_steps`, then cosine to 0 over max_steps or the clock (whichever ends first)."""
        p = self.params
        lr = p.learning_rate * min(1.0, (step + 1) / max(1, p.warmup_steps))
        if p.lr_schedule == "constant":
            return lr
        done = [step / p.max_steps] if p.max_steps else []
        if self.time_budget:
            done.append(elapsed / self.time_budget)
        return lr * 0.5 * (1 + math.cos(math.pi * min(1.0, max(done))))

    def _initial_unet(self, n_embeds: int):
        import torch
        from diffusers import UNet2DModel

        p = self.params
        if p.base_model:
            return _base_unet(self._resolve(p.base_model), n_embeds, self.channels)
        levels = len(p.block_out_channels)
        # nn.Module initialises from torch's global generator and takes no other; fork_rng keeps the caller's
        # global state untouched while the weights come from this fit's seed
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(self.random_state, INIT_STREAM))
            unet = UNet2DModel(sample_size=self.image_size, in_channels=self.channels, out_channels=self.channels,
                               block_out_channels=p.block_out_channels, layers_per_block=p.layers_per_block,
                               down_block_types=("DownBlock2D",) * levels, up_block_types=("UpBlock2D",) * levels,
                               norm_num_groups=p.norm_num_groups, add_attention=p.attention,
                               attention_head_dim=min(8, p.block_out_channels[-1]), num_class_embeds=n_embeds)
        return unet, []

    def _resolve(self, folder: str) -> Path:
        path = Path(folder).expanduser()
        if not path.is_absolute() and self.base_dir is not None:
            path = Path(self.base_dir) / path
        return path.resolve()

    def _fingerprint(self, n_images: int) -> str:
        return json.dumps({"params": self.params.model_dump(mode="json", exclude={"checkpoint_every"}),
                           "classes": list(self.classes_), "size": self.image_size, "channels": self.channels,
                           "images": n_images, "time_budget": self.time_budget, "seed": self.random_state},
                          sort_keys=True)

    # ------------------------------------------------------------ sample

    def sample(self, n: int, *, seed: int, conditions: dict[str, Any] | None = None) -> pd.DataFrame:
        """n images as uint8 (h, w, c) arrays in column `image`, with their label and per-image `seed`."""
        unet = getattr(self, "unet_", None)
        if unet is None:
            raise NotFittedError("sample() called before fit()")
        index = {c: i for i, c in enumerate(self.classes_)}
        if conditions:
            if set(conditions) != {self.label_column} or not self.labelled_:
                raise UserError(f"output.conditions.column: images can be conditioned on their label "
                                f"({self.label_column!r}) only; got {', '.join(map(str, conditions))}")
            value = str(conditions[self.label_column])
            if value not in index:
                raise UserError(f"output.conditions: {value!r} is not a class; classes: {', '.join(self.classes_)}")
            labels = np.full(n, index[value])
        else:
            counts = np.array([self.class_counts_[c] for c in self.classes_], dtype=float)
            labels = np.random.default_rng(seed).choice(len(self.classes_), size=n, p=counts / counts.sum())
        seeds = [derive_seed(seed, i) for i in range(n)]
        images = []
        b = self.sampling.batch_size
        for start in range(0, n, b):
            images.extend(self._sample_batch(labels[start:start + b], seeds[start:start + b]))
        out = {"image": images, "seed": seeds}
        if self.labelled_:
            out = {self.label_column: [self.classes_[i] for i in labels], **out}
        return pd.DataFrame(out)

    def _scheduler(self):
        from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

        config = self.noise_scheduler_.config
        if self.sampling.scheduler == "ddim":
            # "trailing" spacing ends the trajectory at t = T-1..0 evenly, which is better with few steps
            return DDIMScheduler.from_config(config, timestep_spacing="trailing")
        return DPMSolverMultistepScheduler.from_config(config, algorithm_type="dpmsolver++", solver_order=2,
                                                       timestep_spacing="trailing")

    def _sample_batch(self, labels: np.ndarray, seeds: list[int]) -> list[np.ndarray]:
        import torch

        s = self.sampling
        device = torch.device(self.device)
        sched = self._scheduler()
        sched.set_timesteps(s.steps, device=device)
        gens = [torch.Generator().manual_seed(int(sd)) for sd in seeds]
        shape = (self.channels, self.image_size, self.image_size)
        x = torch.stack([torch.randn(shape, generator=g) for g in gens]).to(device) * sched.init_noise_sigma
        y = torch.as_tensor(labels, dtype=torch.long, device=device)
        null = torch.full_like(y, len(self.classes_))
        guided = s.guidance_scale != 1.0
        bf16 = device.type == "cuda"
        extra = {"eta": s.eta, "generator": gens if s.eta > 0 else None} if s.scheduler == "ddim" else {}
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            for t in sched.timesteps:
                xin = sched.scale_model_input(x, t)
                if guided:
                    out = self.unet_(torch.cat([xin, xin]), t, class_labels=torch.cat([y, null])).sample.float()
                    cond, uncond = out.chunk(2)
                    eps = uncond + s.guidance_scale * (cond - uncond)
                else:
                    eps = self.unet_(xin, t, class_labels=y).sample.float()
                x = sched.step(eps, t, x, **extra).prev_sample
        pixels = ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        return list(pixels)

    def with_sampling(self, **changes) -> "DiffusionGenerator":
        """A copy sharing the fitted model, with other sampling parameters (e.g. steps)."""
        other = copy.copy(self)
        other.sampling = parse_sampling({**self.sampling.model_dump(), **changes})
        return other

    # ------------------------------------------------------------ save / load

    def save(self, folder: Path) -> None:
        from diffusers import __version__ as diffusers_version

        if getattr(self, "unet_", None) is None:
            raise NotFittedError("save() called before fit()")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.unet_.save_pretrained(folder / "unet", safe_serialization=True)
        self.noise_scheduler_.save_pretrained(folder / "scheduler")
        config = {"family": FAMILY, "format": "diffusers-safetensors", "diffusers_version": diffusers_version,
                  "params": self.params.model_dump(mode="json"), "sampling": self.sampling.model_dump(mode="json"),
                  "image_size": self.image_size, "channels": self.channels, "label_column": self.label_column,
                  "labelled": self.labelled_, "classes": list(self.classes_), "class_counts": self.class_counts_,
                  "random_state": self.random_state, "time_budget": self.time_budget, "fit": self.fit_info_}
        (folder / "generator.json").write_text(json.dumps(config, indent=2))

    @classmethod
    def load(cls, folder: Path, *, trusted: bool = False, device: str = "cpu") -> "DiffusionGenerator":
        """`trusted` is accepted for the protocol; safetensors and JSON run no code, so any folder is safe."""
        from diffusers import DDPMScheduler, UNet2DModel

        folder = Path(folder)
        try:
            config = json.loads((folder / "generator.json").read_text())
        except (OSError, ValueError) as e:
            raise UserError(f"{folder}: not a saved diffusion generator ({e})") from None
        gen = cls(config["params"], config["sampling"], image_size=config["image_size"], channels=config["channels"],
                  label_column=config["label_column"], device=device, time_budget=config.get("time_budget"),
                  random_state=config.get("random_state", 0))
        gen.unet_ = UNet2DModel.from_pretrained(folder / "unet", use_safetensors=True).to(device).eval()
        gen.unet_.requires_grad_(False)
        gen.noise_scheduler_ = DDPMScheduler.from_pretrained(folder / "scheduler")
        gen.labelled_ = config["labelled"]
        gen.classes_ = tuple(config["classes"])
        gen.class_counts_ = config["class_counts"]
        gen.fit_info_ = config.get("fit", {})
        gen.base_notes_ = gen.fit_info_.get("base_notes", [])
        return gen


# ---------------------------------------------------------------- fine-tuning


def _base_unet(path: Path, n_embeds: int, channels: int):
    """A saved UNet to start from, with a class embedding of `n_embeds` rows (re-initialised when it differs)."""
    import torch
    from diffusers import UNet2DModel

    folder = path / "unet" if (path / "unet" / "config.json").exists() else path
    if not (folder / "config.json").exists():
        raise UserError(f"generator.params.base_model: {path} is not a diffusers UNet folder (no config.json, "
                        "nor unet/config.json)")
    try:
        # safetensors only: a pickled .bin could run code when loaded
        base = UNet2DModel.from_pretrained(folder, use_safetensors=True)
    except (OSError, EnvironmentError, ValueError) as e:
        raise UserError(f"generator.params.base_model: cannot load a UNet2DModel with safetensors weights from "
                        f"{folder} ({str(e).splitlines()[0][:160]})") from None
    cfg = dict(base.config)
    if cfg["in_channels"] != channels or cfg["out_channels"] != channels:
        raise UserError(f"generator.params.base_model: the UNet in {folder} has {cfg['in_channels']} channels; "
                        f"seed.channels is {channels}")
    notes = [f"fine-tuned from {folder}"]
    if cfg.get("num_class_embeds") == n_embeds and cfg.get("class_embed_type") is None:
        return base, notes
    cfg.update(num_class_embeds=n_embeds, class_embed_type=None)
    cfg = {k: v for k, v in cfg.items() if not k.startswith("_")}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # only the new class embedding is initialised here; see _initial_unet for why
        unet = UNet2DModel.from_config(cfg)
    weights = {k: v for k, v in base.state_dict().items() if not k.startswith("class_embedding.")}
    unet.load_state_dict(weights, strict=False)  # everything but the new class embedding
    notes.append(f"class embedding re-initialised for {n_embeds - 1} classes + 'no label' (base had "
                 f"{base.config.get('num_class_embeds') or 'none'})")
    return unet, notes


# ---------------------------------------------------------------- checkpoints


def _save_checkpoint(path: Path, fingerprint: str, unet, ema, opt, rng, step: int, seconds: float,
                     losses: list) -> None:
    """One safetensors file (atomic rename): weights, EMA, AdamW moments, random state; counters in metadata."""
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in unet.state_dict().items()}
    if ema is not None:
        tensors |= {f"ema.{k}": v.detach().contiguous().cpu() for k, v in ema.state_dict().items()}
    opt_state = opt.state_dict()
    for pid, st in opt_state["state"].items():
        for key, value in st.items():
            tensors[f"opt.{pid}.{key}"] = value.detach().contiguous().cpu()
    tensors["rng"] = rng.get_state()
    meta = {"fingerprint": fingerprint, "step": str(step), "seconds": repr(seconds), "losses": json.dumps(losses),
            "param_groups": json.dumps(opt_state["param_groups"])}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)


def _load_checkpoint(path: Path, fingerprint: str, unet, ema, opt, rng, device) -> dict | None:
    """Restore a checkpoint written by the same configuration; a different one is ignored (returns None)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        if meta.get("fingerprint") != fingerprint:
            return None
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    unet.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if ema is not None:
        ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    state: dict = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, pid, key = k.split(".", 2)
            state.setdefault(int(pid), {})[key] = v.to(device) if key != "step" else v
    opt.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
    rng.set_state(tensors["rng"])
    step = int(meta["step"])
    return {"step": step, "seconds": float(meta["seconds"]), "losses": json.loads(meta["losses"]),
            "resumed_from": step}


def _count(module) -> int:
    return int(sum(p.numel() for p in module.parameters()))
