"""Tables through SDV's single-table synthesizers (GaussianCopula, CTGAN, TVAE, CopulaGAN).

Licence: SDV, ctgan, rdt and copulas are under the Business Source License 1.1 (see docs/licences.md). This file is
the only place that imports SDV, so a permissively licensed backend can sit beside it under the same protocol.
"""

import inspect
import json
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from synthforge.data.profile import Profile, to_sdv_metadata
from synthforge.errors import UserError
from synthforge.families.generator import NotFittedError

TABLE = "seed"
NEURAL = ("ctgan", "tvae", "copulagan")


def synthesizer_class(family: str):
    from sdv import single_table as st

    return {"gaussian_copula": st.GaussianCopulaSynthesizer, "ctgan": st.CTGANSynthesizer,
            "tvae": st.TVAESynthesizer, "copulagan": st.CopulaGANSynthesizer}[family]


def check_params(family: str, params: dict[str, Any]) -> None:
    """Recipe params are exactly the synthesizer's keyword parameters; anything else is a named error."""
    valid = [p for p in inspect.signature(synthesizer_class(family).__init__).parameters
             if p not in ("self", "metadata", "enable_gpu")]
    defaults = {k: p.default for k, p in inspect.signature(synthesizer_class(family).__init__).parameters.items()}
    for key in params:
        if key not in valid:
            raise UserError(f"generator.params.{key}: not a parameter of {family}; valid: {', '.join(valid)}")
        default, value = defaults[key], params[key]  # the default's type is the one SDV expects
        wanted = ("true or false" if isinstance(default, bool) and not isinstance(value, bool) else
                  "a whole number > 0" if type(default) is int and not (type(value) is int and value > 0) else
                  "a number >= 0" if type(default) is float and not (type(value) in (int, float) and value >= 0)
                  else None)
        if wanted:
            raise UserError(f"generator.params.{key}: expected {wanted} (default {default!r}), got {value!r}")
    # CTGAN and CopulaGAN only assert this deep inside fit (a bare AssertionError after minutes of preprocessing)
    if family in ("ctgan", "copulagan"):
        batch, pac = params.get("batch_size", defaults["batch_size"]), params.get("pac", defaults["pac"])
        if batch % 2 or batch % pac:
            raise UserError(f"generator.params.batch_size: {family} needs an even batch_size divisible by pac "
                            f"({pac}); got {batch}")


class SDVGenerator:
    """One SDV synthesizer behind the Generator protocol."""

    def __init__(self, family: str, profile: Profile, params: dict[str, Any] | None = None, device: str = "cpu",
                 time_budget: float | None = None, random_state: int = 0):
        self.family = family
        self.random_state = random_state
        self.profile = profile
        self.params = dict(params or {})
        self.device = device
        self.time_budget = time_budget

    def fit(self, data: pd.DataFrame, *, progress: Callable[[dict], None] | None = None) -> "SDVGenerator":
        """SDV trains without reporting, so `progress` gets one dict, at the end: epoch and epochs (neural
        synthesizers), elapsed (CPU seconds) and budget."""
        check_params(self.family, self.params)
        params = dict(self.params)
        if self.family in NEURAL:
            params["enable_gpu"] = self.device == "cuda"
            if self.time_budget is not None:
                params["epochs"] = self._epochs_within_budget(data, params)
        started = time.process_time()
        self.synthesizer_ = self._fit_once(data, params)
        self.fit_seconds_ = time.process_time() - started
        self.fitted_params_ = {k: v for k, v in params.items() if k != "enable_gpu"}
        self.marginals_ = _marginals(data, self.profile)
        self.fit_info_ = _fit_info(self.fit_seconds_, self.fitted_params_)
        if progress:
            epochs = self.fit_info_.get("epochs")
            done = {"epoch": epochs, "epochs": epochs, "elapsed": self.fit_seconds_, "budget": self.time_budget}
            progress({k: v for k, v in done.items() if v is not None})
        return self

    def _fit_once(self, data: pd.DataFrame, params: dict[str, Any]):
        _seed_globals(self.random_state)
        metadata = to_sdv_metadata(self.profile, data, TABLE)
        with warnings.catch_warnings():
            # SDV warns about things we already report (metadata not saved to its JSON, rounding on float columns)
            warnings.simplefilter("ignore")
            try:
                synth = synthesizer_class(self.family)(metadata, **params)
            except (TypeError, ValueError) as e:
                raise UserError(f"generator.params: {self.family} rejected them ({_first_line(e)})") from None
            synth.fit({TABLE: data})
        return synth

    def _epochs_within_budget(self, data: pd.DataFrame, params: dict[str, Any]) -> int:
        """Neural synthesizers cannot stop on a clock, so time fits of 1 and 2 epochs (their difference is one
        epoch, the rest is preprocessing) and ask for as many epochs as the rest of the budget holds."""
        wanted = int(params.get("epochs", 300))
        started = time.process_time()
        t1 = _timed(lambda: self._fit_once(data, {**params, "epochs": 1}))
        t2 = _timed(lambda: self._fit_once(data, {**params, "epochs": 2}))
        per_epoch = max(t2 - t1, 0.05 * t1, 1e-3)
        overhead = max(t1 - per_epoch, 0.0)
        remaining = self.time_budget - (time.process_time() - started) - overhead
        self.budget_probe_ = {"seconds_per_epoch": round(per_epoch, 3), "preprocess_seconds": round(overhead, 3)}
        return int(max(1, min(wanted, remaining // per_epoch)))

    def sample(self, n: int, *, seed: int, conditions: dict[str, Any] | None = None) -> pd.DataFrame:
        synth = getattr(self, "synthesizer_", None)
        if synth is None:
            raise NotFittedError("sample() called before fit()")
        # SDV draws from numpy's and torch's global generators inside its transformers; resetting them here is
        # the only way to make a shard's rows depend on its seed alone.
        synth.reset_sampling()
        synth._set_random_state(int(seed))
        np.random.seed(int(seed))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if not conditions:
                out = synth.sample(int(n))[TABLE]
            else:
                from sdv.sampling import Condition

                out = synth.sample_from_conditions([Condition(num_rows=int(n), column_values=dict(conditions))])
                out = out[TABLE] if isinstance(out, dict) else out
        return onto_seed_grid(out.reset_index(drop=True), getattr(self, "marginals_", {}), ranked=not conditions)

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "synthesizer.pkl.tmp"
        self.synthesizer_.save(str(tmp))
        tmp.replace(folder / "synthesizer.pkl")
        config = {"family": self.family, "params": _jsonable(self.fitted_params_), "device": self.device,
                  "fit_seconds": self.fit_seconds_, "profile": self.profile.model_dump(mode="json"),
                  "format": "sdv-pickle", "sdv_version": _sdv_version()}
        (folder / "generator.json").write_text(json.dumps(config, indent=2))
        (folder / "marginals.json").write_text(json.dumps(self.marginals_))

    @classmethod
    def load(cls, folder: Path, *, trusted: bool = False, device: str | None = None) -> "SDVGenerator":
        """`device`: None keeps the one it was fitted for (only a neural synthesizer's fitting uses it)."""
        if not trusted:
            raise UserError(f"{folder}: SDV models are pickles, which can run code when loaded; load only a model "
                            "this run wrote, or pass trusted=True for a file you trust")
        folder = Path(folder)
        config = json.loads((folder / "generator.json").read_text())
        gen = cls(config["family"], Profile.model_validate(config["profile"]), config["params"],
                  device or config["device"])
        from sdv.utils import load_synthesizer  # SDV 2 moved loading out of the synthesizer classes

        gen.synthesizer_ = load_synthesizer(str(folder / "synthesizer.pkl"))
        gen.fitted_params_ = config["params"]
        gen.fit_seconds_ = config["fit_seconds"]
        gen.fit_info_ = _fit_info(gen.fit_seconds_, gen.fitted_params_)
        gen.marginals_ = json.loads((folder / "marginals.json").read_text())
        return gen


def _fit_info(seconds: float, params: dict[str, Any]) -> dict:
    """What fitting measured (the Generator protocol's `fit_info_`): CPU seconds of the final fit, and the epochs
    asked of a neural synthesizer (its own default when the params name none: not known here)."""
    info: dict[str, Any] = {"seconds": round(seconds, 2), "clock": "cpu"}
    if params.get("epochs") is not None:
        info["epochs"] = int(params["epochs"])
    return info


_MARGINAL_POINTS = 5000
_RANKED_MIN_ROWS = 200


def _marginals(data: pd.DataFrame, profile: Profile) -> dict[str, list[float]]:
    """Each number column's sorted seed values (at most 5,000 quantiles of them): the grid SDV's output is put on."""
    out = {}
    for name, kind in profile.kinds().items():
        if kind != "numerical" or name not in data.columns:
            continue
        v = np.sort(pd.to_numeric(data[name], errors="coerce").dropna().to_numpy(dtype=float))
        if len(v) > _MARGINAL_POINTS:
            v = np.quantile(v, np.linspace(0, 1, _MARGINAL_POINTS), method="inverted_cdf")
        out[name] = v.tolist()
    return out


def onto_seed_grid(df: pd.DataFrame, marginals: dict[str, list[float]], *, ranked: bool) -> pd.DataFrame:
    """SDV's numbers put back on the seed's values. SDV smooths a zero-inflated or heaped column into a curve and
    writes integers as any float; here an unconditioned sample of enough rows takes the seed's value at its rank
    (the marginal becomes the seed's, point masses and heaping included; the ranks, and with them the pairwise
    dependence, stay SDV's), and any other sample (conditioned rows, whose marginal should differ, or too few rows
    to rank) moves each value to the nearest seed value."""
    out = df.copy()
    for name, grid_values in marginals.items():
        if name not in out.columns or not grid_values:
            continue
        x = pd.to_numeric(out[name], errors="coerce").to_numpy(dtype=float)
        ok = ~np.isnan(x)
        g = np.asarray(grid_values)
        if ranked and ok.sum() >= _RANKED_MIN_ROWS:
            ranks = np.argsort(np.argsort(x[ok], kind="stable"), kind="stable")
            x[ok] = g[np.minimum(((ranks + 0.5) / ok.sum() * len(g)).astype(int), len(g) - 1)]
        else:
            uniq = np.unique(g)
            pos = np.clip(np.searchsorted(uniq, x[ok]), 1, max(len(uniq) - 1, 1))
            lo, hi = uniq[pos - 1], uniq[np.minimum(pos, len(uniq) - 1)]
            x[ok] = np.where(np.abs(x[ok] - lo) <= np.abs(hi - x[ok]), lo, hi)
        values = pd.Series(x, index=out.index)
        out[name] = values.astype(out[name].dtype) if pd.api.types.is_integer_dtype(out[name]) and ok.all() else values
    return out


def _seed_globals(seed: int) -> None:
    # SDV and its GAN/VAE models draw from numpy's and torch's global generators and take no generator argument
    import torch

    np.random.seed(seed)
    torch.manual_seed(seed)


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _sdv_version() -> str:
    import sdv

    return sdv.__version__


def _jsonable(params: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()}


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__
