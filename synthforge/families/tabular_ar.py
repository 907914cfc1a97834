"""synthforge's own table model: autoregressive over columns, permissively licensed (torch + numpy only).

Why our own and not a library: SDV is BSL 1.1 (no hosted service may use it), and the permissive candidates measured
in docs/benchmarks.md either smooth the seed's grid away or miss its pair trends. The model follows TabularARGN
(Tiwald et al., 2025, "TabularARGN: A Flexible and Efficient Auto-Regressive Framework for Generating
High-Fidelity Synthetic Data") in spirit: every column becomes tokens, and column j is predicted from the tokens of
columns 0..j-1, so a row is drawn one column at a time from p(x) = Π_j p(x_j | x_<j).

1. Encode (tabular_codec.py): categories and missingness are tokens; a number column with few distinct values is
   levels; otherwise its point masses (zeros, caps) are tokens of their own and the rest quantile bins. A value is
   decoded by drawing one of the seed's own values in its bin, so integers, heaping and decimals stay on the seed's
   grid and the marginal is the seed's, bin by bin.
2. Model: head j reads up to `max_parents` earlier token columns (chosen by mutual information), through an
   embedding table of its own summed over them, then a small MLP gives the logits of column j. Plain
   nn.Linear/nn.Embedding layers only, so Opacus can train it with DP-SGD.
3. Train: cross-entropy summed over columns (teacher forcing), Adam, early stopping on a validation split carved from
   the training rows; the best epoch's weights are kept.
4. Sample: column by column; conditions on the leading columns of the order are fixed instead of drawn, which is
   how `balance` and `counts` work without rejection.
5. Calibrate: a chain of conditionals drifts from the seed's marginals a little at every column (CPS1988: 12 years of
   schooling 39.1 % vs 37.8 %, enough for a linear detector). Unconditional draws are therefore drawn from a pool
   `calibration_pool` times larger, weighted by raking (iterative proportional fitting) towards the training rows'
   token shares of every column but the leading ones, and `n` of them kept by weight (see `_rake`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from synthforge.data.profile import Profile
from synthforge.errors import UserError
from synthforge.families.generator import NotFittedError
from synthforge.families.tabular_codec import CELL_VALUES, TableCodec

FAMILY = "autoregressive"


@dataclass(frozen=True)
class ARParams:
    """The recipe's `generator.params` for this family: exactly these keys."""

    max_epochs: int = 400
    patience: int = 20  # epochs without a better validation loss before training stops
    batch_size: int = 256
    learning_rate: float = 1e-2
    weight_decay: float = 1e-5
    hidden: int = 16  # width of each column head
    max_parents: int = 16  # earlier token columns a head reads at most (choose_parents)
    dropout: float = 0.1
    column_dropout: float = 0.1  # chance an earlier column is hidden from a head during training (regulariser)
    validation_fraction: float = 0.1
    max_bins: int = 400  # cells of a binned number (coarse bin × cell within it)
    rows_per_bin: int = 25
    max_levels: int = 100
    point_mass: float = 0.01  # a value this frequent gets a token of its own
    # categories seen in fewer rows share one token (decoded to one of them by frequency). Off by default: on
    # 450-1200 loan rows merging the <10-row levels raised detection AUC by .02-.05 (two seeds each)
    rare_below: int = 0
    temperature: float = 1.0
    smoothing: float = 0.0  # share of each draw taken from the column's own marginal instead (privacy, see sample)
    # how a quantile cell decodes (tabular_codec.py). auto: columns the value-leak gate reads (most values distinct)
    # draw uniformly within pieces of ten seed rows, the rest write the seed's own values; seed: every column writes
    # the seed's own values (ames' coordinates all came back a training house's: value-leak excess .93); uniform:
    # between the cell's edges, and the codec keeps no seed value
    cell_values: str = "auto"
    order: tuple[str, ...] = ()  # leading columns of the order (default: the target); the rest keep seed order
    # {epsilon: 1.0, delta: 1/n², max_grad_norm: 1.0, epochs: 30, codec_share: 0.5}: a DP codec and DP-SGD
    # (tabular_dp.py); refuses smoothing, and cell values are uniform within a cell whatever `cell_values` says
    dp: dict | None = None
    # draw this many times the rows and keep those raking favours (step 5); 1 turns it off. The more rows raking
    # may leave out, the closer the seed's shares and the further the target's relation to the rest moves: CPS1988
    # over seeds 0-5, R² .223 / .211 and detection-LR .503 / .498 at 1.25 / 1.5; at 2 (seeds 0/1) AUC .487 / .495,
    # below chance, and R² .132 / .181. At 1.25 (seeds 0/1) detection-LR is .50-.51 on credit_data, HealthInsurance
    # and CPS1988, .53 on ames, and quality about .004 lower than at 1.5 (docs/benchmarks.md)
    calibration_pool: float = 1.25


def check_params(params: dict[str, Any]) -> ARParams:
    fields = {f.name: f for f in dataclasses.fields(ARParams)}
    for key, value in params.items():
        if key not in fields:
            raise UserError(f"generator.params.{key}: not a parameter of {FAMILY}; valid: {', '.join(fields)}")
    try:
        p = ARParams(**{k: (tuple(v) if k == "order" else v) for k, v in params.items()})
    except TypeError as e:
        raise UserError(f"generator.params: {e}") from None
    for name in ("max_epochs", "patience", "batch_size", "hidden", "max_parents", "max_bins", "rows_per_bin",
                 "max_levels"):
        v = getattr(p, name)
        if type(v) is not int or v <= 0:
            raise UserError(f"generator.params.{name}: expected a whole number > 0, got {v!r}")
    for name in ("dropout", "column_dropout", "validation_fraction", "point_mass"):
        v = getattr(p, name)
        if not isinstance(v, (int, float)) or not 0 <= v < 1:
            raise UserError(f"generator.params.{name}: expected a number in [0, 1), got {v!r}")
    for name in ("learning_rate", "temperature"):
        v = getattr(p, name)
        if not isinstance(v, (int, float)) or v <= 0:
            raise UserError(f"generator.params.{name}: expected a number > 0, got {v!r}")
    if not isinstance(p.calibration_pool, (int, float)) or not 1 <= p.calibration_pool <= 10:
        raise UserError(f"generator.params.calibration_pool: expected a number in [1, 10], got {p.calibration_pool!r}")
    if type(p.rare_below) is not int or p.rare_below < 0:
        raise UserError(f"generator.params.rare_below: expected a whole number >= 0, got {p.rare_below!r}")
    if p.cell_values not in CELL_VALUES:
        raise UserError(f"generator.params.cell_values: {p.cell_values!r} is not one of {', '.join(CELL_VALUES)}")
    if not all(isinstance(c, str) for c in p.order):
        raise UserError(f"generator.params.order: expected a list of column names, got {list(p.order)!r}")
    if p.dp is not None:
        _check_dp(p.dp)
        if p.smoothing:
            raise UserError("generator.params.smoothing: mixes the rows' own frequencies into samples; not allowed "
                            "with generator.params.dp")
    return p


def _check_dp(dp: Any) -> None:
    if not isinstance(dp, dict) or "epsilon" not in dp:
        raise UserError("generator.params.dp: expected {epsilon: NUMBER, delta: NUMBER}, e.g. {epsilon: 1.0}")
    unknown = set(dp) - {"epsilon", "delta", "max_grad_norm", "epochs", "codec_share"}
    if unknown:
        raise UserError(f"generator.params.dp.{sorted(unknown)[0]}: unknown; valid: epsilon, delta, max_grad_norm, "
                        "epochs, codec_share")
    for key in dp:
        if not isinstance(dp[key], (int, float)) or isinstance(dp[key], bool) or dp[key] <= 0:
            raise UserError(f"generator.params.dp.{key}: expected a number > 0, got {dp[key]!r}")
    if "delta" in dp and dp["delta"] >= 1:
        raise UserError(f"generator.params.dp.delta: expected a number in (0, 1), got {dp['delta']!r}")
    if "codec_share" in dp and dp["codec_share"] >= 1:
        raise UserError(f"generator.params.dp.codec_share: expected a number in (0, 1), got {dp['codec_share']!r}")
    if "epochs" in dp and type(dp["epochs"]) is not int:
        raise UserError(f"generator.params.dp.epochs: expected a whole number > 0, got {dp['epochs']!r}")


def _network(cardinalities: list[int], parents: list[list[int]], hidden: int, dropout: float):
    """Step 2: head j is an MLP over the tokens of its parents, earlier columns chosen in `choose_parents`. Its
    first layer is a table of its own, one vector per (parent, token), summed over the parents: the same as a linear
    layer on their one-hot codes, at the cost of a lookup. No weight is shared between heads, so each head is its
    own classifier and stops training at its own best epoch (step 3)."""
    import torch
    from torch import nn

    class ARNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.tables = nn.ModuleList()
            for j, ps in enumerate(parents):
                sizes = [1] + [cardinalities[k] for k in ps]  # a constant token first: the first head's input
                self.register_buffer(f"cols{j}", torch.as_tensor([0] + [k + 1 for k in ps]), persistent=False)
                self.register_buffer(f"offs{j}", torch.as_tensor(np.cumsum([0] + sizes[:-1])), persistent=False)
                self.tables.append(nn.Embedding(int(sum(sizes)), hidden))
            self.heads = nn.ModuleList(
                nn.Sequential(nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU(),
                              nn.Linear(hidden, v))
                for v in cardinalities)

        @staticmethod
        def extend(tokens):
            """The constant token in front of every row."""
            return torch.cat([torch.zeros(len(tokens), 1, dtype=torch.long, device=tokens.device), tokens], dim=1)

        def logits(self, j, ext, keep=None):
            cols = getattr(self, f"cols{j}")
            z = self.tables[j](ext[:, cols] + getattr(self, f"offs{j}"))
            if keep is not None:  # column dropout: some parents hidden from this head in this row
                z = z * keep[:, cols, None]
            return self.heads[j](z.sum(dim=1))

        def forward(self, tokens, keep=None, heads=None):
            ext = self.extend(tokens)
            return {j: self.logits(j, ext, keep) for j in (range(len(self.heads)) if heads is None else heads)}

    return ARNet()


def choose_parents(tokens: np.ndarray, cardinalities: list[int], same_column: list[int], max_parents: int
                   ) -> list[list[int]]:
    """Each token column's parents: every earlier token column when there are at most `max_parents`, else the
    `max_parents` earlier ones that share most information with it (mutual information over entropy, from the
    training tokens), plus the other token of its own column. Bounding the in-degree, as PrivBayes does with its
    Bayesian network, keeps a head from recognising a training row by the many columns before it, which is what
    made synthetic rows of a wide table sit closer to the training rows than to unseen ones (ames, 74 columns)."""
    n, c = tokens.shape
    entropy = [_entropy(np.bincount(tokens[:, j], minlength=cardinalities[j])) for j in range(c)]
    out = []
    for j in range(c):
        if j <= max_parents:
            out.append(list(range(j)))
            continue
        score = []
        for k in range(j):
            joint = np.bincount(tokens[:, k] * cardinalities[j] + tokens[:, j], minlength=cardinalities[k] *
                                cardinalities[j])
            mi = entropy[k] + entropy[j] - _entropy(joint)
            score.append(mi / max(min(entropy[k], entropy[j]), 1e-9))
        chosen = set(np.argsort(score)[::-1][:max_parents].tolist())
        chosen |= {k for k in range(j) if same_column[k] == same_column[j]}
        out.append(sorted(chosen))
    return out


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


class ARGenerator:
    """The permissive default table family behind the Generator protocol."""

    family = FAMILY

    def __init__(self, profile: Profile, params: dict[str, Any] | None = None, device: str = "cpu",
                 time_budget: float | None = None, random_state: int = 0):
        self.profile = profile
        self.params = dict(params or {})
        self.device = device
        self.time_budget = time_budget
        self.random_state = random_state

    # -- fit ---------------------------------------------------------------------------------------------------
    def fit(self, data: pd.DataFrame, *, progress: Callable[[dict], None] | None = None) -> "ARGenerator":
        """Learn the table. `progress` gets a dict after every epoch: epoch, epochs, loss (training, per row),
        val_loss (summed over the heads still training), elapsed (CPU seconds) and budget."""
        import torch

        p = check_params(self.params)
        started = time.process_time()
        kinds = self.profile.kinds()
        # the target (or the column a run conditions on) first: drawn first, it is balanced or counted by
        # construction, and every other column is learned given it
        lead = p.order or ((self.profile.target,) if self.profile.target in data.columns else ())
        order = _order(list(data.columns), lead)
        self.lead_ = len(lead)
        if p.dp is not None:
            self._fit_private(data[order], p, started, progress)
            return self
        self.codec_ = TableCodec.fit(data[order], {c: kinds.get(c, "categorical") for c in order},
                                     max_bins=p.max_bins, rows_per_bin=p.rows_per_bin, max_levels=p.max_levels,
                                     point_mass=p.point_mass, rare_below=p.rare_below, cell_values=p.cell_values,
                                     private=p.dp is not None or p.cell_values == "uniform")
        tokens = self.codec_.encode(data[order])
        rng = np.random.default_rng(self.random_state)
        torch.manual_seed(self.random_state)
        perm = rng.permutation(len(tokens))
        # under DP every row trains and nothing is chosen on private rows (tabular_dp.py)
        n_val = int(round(len(tokens) * p.validation_fraction)) if len(tokens) >= 50 and p.dp is None else 0
        val, train = tokens[perm[:n_val]], tokens[perm[n_val:]]
        same_column = [i for i, c in enumerate(self.codec_.codecs) for _ in c.cardinalities]
        self.marginals_ = [torch.as_tensor(np.bincount(train[:, j], minlength=v) / len(train), dtype=torch.float32)
                           for j, v in enumerate(self.codec_.cardinalities)]
        self.parents_ = choose_parents(train, self.codec_.cardinalities, same_column, p.max_parents)
        net = _network(self.codec_.cardinalities, self.parents_, p.hidden, p.dropout).to(self.device)
        history, spent = _train(net, train, val, p, self.device, rng, progress,
                                budget=self.time_budget, started=started)
        # Sampling draws one column at a time through heads of a few thousand weights each: per-step launch cost
        # dominates on a GPU, and `_draw` builds its token matrix, fixed conditions and generator on the CPU. So the
        # fitted network comes back to the CPU here, as `load` puts it there, and a model fitted on CUDA samples the
        # same way as one reloaded from disk (tests/test_tabular_ar.py fits on one device and samples on another).
        self.net_ = net.to("cpu").eval()
        self.fitted_params_ = {**dataclasses.asdict(p), "order": list(order)}
        self.history_ = history
        self.dp_spent_ = spent
        self.fit_seconds_ = time.process_time() - started
        self.fit_info_ = _fit_info(self.fit_seconds_, history)
        return self

    def _fit_private(self, data: pd.DataFrame, p: ARParams, started: float, progress) -> None:
        """fit() under differential privacy (tabular_dp.py): every statistic read from the rows is noised and
        counted in ε; every training row trains; parents are the nearest earlier columns, not chosen by mutual
        information; no raw frequency is kept. Noise comes from os.urandom, so the fit is not reproducible."""
        import torch

        from synthforge.families import tabular_dp

        b = tabular_dp.budget(p.dp, len(data))  # refuses δ > 1/n before any work
        kinds = self.profile.kinds()
        order = list(data.columns)
        self.codec_, codec_spent = tabular_dp.fit_codec(
            data, {c: kinds.get(c, "categorical") for c in order}, b["epsilon_codec"], b["delta_codec"],
            max_bins=p.max_bins, rows_per_bin=p.rows_per_bin, point_mass=p.point_mass,
            dtypes={c: str(data[c].dtype) for c in order})
        train = self.codec_.encode(tabular_dp.conform(data, self.codec_))
        rng = np.random.default_rng(self.random_state)  # column dropout and nothing private
        torch.manual_seed(self.random_state)
        same_column = [i for i, c in enumerate(self.codec_.codecs) for _ in c.cardinalities]
        self.marginals_ = []
        self.parents_ = [sorted(set(range(max(0, j - p.max_parents), j))
                                | {k for k in range(j) if same_column[k] == same_column[j]})
                         for j in range(len(same_column))]
        net = _network(self.codec_.cardinalities, self.parents_, p.hidden, p.dropout).to(self.device)
        history, spent = _train(net, train, train[:0], p, self.device, rng, progress, budget=self.time_budget,
                                started=started, codec_spent=codec_spent)
        self.net_ = net.to("cpu").eval()
        self.fitted_params_ = {**dataclasses.asdict(p), "order": order, "cell_values": "uniform"}
        self.history_ = [{"epoch": h["epoch"]} for h in history]  # training losses are read from the rows
        self.dp_spent_ = spent
        self.fit_seconds_ = time.process_time() - started
        self.fit_info_ = _fit_info(self.fit_seconds_, history)

    # -- sample ------------------------------------------------------------------------------------------------
    def sample(self, n: int, *, seed: int, conditions: dict[str, Any] | None = None,
               context: pd.DataFrame | None = None) -> pd.DataFrame:
        """`n` rows. `conditions` fixes leading columns to one value for every row; `context` gives them row by row
        (its columns must lead the fitted order, its length is n): how a child row is drawn given its parent."""
        import torch

        net = getattr(self, "net_", None)
        if net is None:
            raise NotFittedError("sample() called before fit()")
        order = self.codec_.columns
        fixed = self._condition_tokens(conditions or {}, order)
        if context is not None:
            if list(context.columns) != order[:context.shape[1]] or len(context) != n:
                raise ValueError(f"context: {n} rows of the leading columns {order[:context.shape[1]]} expected")
            fixed.update({j: torch.as_tensor(t) for j, t in self.codec_.encode_leading(context).items()})
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        rng = np.random.default_rng(int(seed))
        # raking matches the training rows' shares, which are the wrong target once a column is conditioned on, and
        # private rows' shares must not steer a DP model's output
        pool = float(self.fitted_params_.get("calibration_pool", 1))
        calibrate = not fixed and self.fitted_params_.get("dp") is None and pool > 1 and n > 1
        tokens = self._draw(int(math.ceil(n * pool)) if calibrate else int(n), fixed, gen)
        if calibrate:
            # the leading columns (the target) are drawn first, from their head's own marginal, so they have no
            # drift to correct; raking them too moved rows by their target value and cost TSTR (CPS1988, 5 seeds:
            # R² .216 unraked, .209 raking all but the target, .195 in a trial that raked the target too)
            skip = sum(len(c.cardinalities) for c in self.codec_.codecs[:self.lead_])
            weights = _rake(tokens[:, skip:], [m.numpy().astype(float) for m in self.marginals_[skip:]])
            keys = np.log(weights) + rng.gumbel(size=len(weights))  # n draws without replacement, by weight
            tokens = tokens[np.sort(np.argsort(-keys, kind="stable")[:int(n)])]
        frame = self.codec_.decode(tokens, rng)
        return frame[[c for c in self._column_order if c in frame.columns]]

    def _draw(self, n: int, fixed: dict, gen) -> np.ndarray:
        """n rows of tokens, column by column (step 4)."""
        import torch

        net = self.net_
        temperature = float(self.fitted_params_["temperature"])
        smoothing = float(self.fitted_params_["smoothing"])
        out = torch.zeros((n, len(net.heads)), dtype=torch.long)
        with torch.no_grad():
            for j in range(len(net.heads)):
                if j in fixed:
                    out[:, j] = fixed[j]
                    continue
                logits = net.logits(j, net.extend(out)) / temperature  # columns >= j are not read by head j
                probs = torch.softmax(logits, dim=1)
                if smoothing:
                    probs = (1 - smoothing) * probs + smoothing * self.marginals_[j]
                out[:, j] = torch.multinomial(probs, 1, generator=gen)[:, 0]
        return out.numpy()

    def _condition_tokens(self, conditions: dict[str, Any], order: list[str]) -> dict[int, int]:
        lead = order[:len(conditions)]
        if set(conditions) != set(lead):
            raise UserError(f"output.conditions: {FAMILY} conditions on the leading columns of its order "
                            f"({', '.join(order[:3])}, ...); fit it with params.order: {sorted(conditions)}")
        first = self.codec_.first_token
        return {first[c]: self.codec_.token_of(c, v) for c, v in conditions.items()}

    @property
    def _column_order(self) -> list[str]:
        return [c.name for c in self.profile.columns if not c.dropped]

    # -- save / load -------------------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.net_.state_dict().items()}, str(folder / "model.safetensors"))
        self.codec_.save(folder / "codec.json")
        config = {"family": FAMILY, "params": _jsonable(self.fitted_params_), "parents": self.parents_,
                  "marginals": [m.tolist() for m in self.marginals_], "lead": self.lead_,
                  "device": self.device,
                  "fit_seconds": self.fit_seconds_, "history": self.history_, "dp_spent": self.dp_spent_,
                  "profile": self._saved_profile().model_dump(mode="json"), "format": "safetensors+json"}
        (folder / "generator.json").write_text(json.dumps(config, indent=2))

    def _saved_profile(self) -> Profile:
        if self.fitted_params_.get("dp") is None:
            return self.profile
        from synthforge.families.tabular_dp import strip_profile

        return strip_profile(self.profile)  # no minimum, maximum or category list of the rows

    @classmethod
    def load(cls, folder: Path, *, trusted: bool = False, device: str = "cpu") -> "ARGenerator":
        # safetensors and JSON run no code when read, so `trusted` is not needed here
        import torch
        from safetensors.torch import load_file

        folder = Path(folder)
        config = json.loads((folder / "generator.json").read_text())
        params = config["params"]
        gen = cls(Profile.model_validate(config["profile"]), {k: v for k, v in params.items()}, device)
        gen.codec_ = TableCodec.load(folder / "codec.json")
        gen.parents_ = config["parents"]
        gen.marginals_ = [torch.as_tensor(m, dtype=torch.float32) for m in config["marginals"]]
        gen.lead_ = config.get("lead", 0)
        net = _network(gen.codec_.cardinalities, gen.parents_, params["hidden"], params["dropout"])
        net.load_state_dict(load_file(str(folder / "model.safetensors")))
        gen.net_ = net.to(torch.device("cpu")).eval()
        gen.fitted_params_, gen.fit_seconds_ = params, config["fit_seconds"]
        gen.history_, gen.dp_spent_ = config["history"], config.get("dp_spent")
        gen.fit_info_ = _fit_info(gen.fit_seconds_, gen.history_)
        return gen


def _rake(tokens: np.ndarray, shares: list[np.ndarray], sweeps: int = 10, damping: float = 0.5,
          cap: float = 5.0) -> np.ndarray:
    """Step 5: a weight per drawn row such that the weighted share of every token of every column comes close to
    its share in the training rows (iterative proportional fitting, as survey raking does). Each sweep moves a
    weight only halfway (`damping`) and no weight leaves [1/cap, cap], so a rare token cannot hand a few rows all
    the mass (on ames, 150 token columns, the pool kept half its effective size). Measured (docs/benchmarks.md,
    seeds 0/1): logistic-regression detection CPS1988 .519 → .499, ames .575 → .492, credit_data .526 → .498."""
    w = np.ones(len(tokens))
    for _ in range(sweeps):
        for j, share in enumerate(shares):
            now = np.bincount(tokens[:, j], weights=w, minlength=len(share)) / w.sum()
            ratio = np.where(now > 0, share / np.maximum(now, 1e-12), 1.0) ** damping
            w = np.clip(w * ratio[tokens[:, j]], 1 / cap, cap)
    return w


def _fit_info(seconds: float, history: list[dict]) -> dict:
    """What fitting measured (the Generator protocol's `fit_info_`): CPU seconds and epochs trained."""
    return {"seconds": round(seconds, 2), "epochs": len(history), "clock": "cpu"}


def _order(columns: list[str], lead: tuple[str, ...]) -> list[str]:
    missing = [c for c in lead if c not in columns]
    if missing:
        raise UserError(f"generator.params.order: {missing[0]!r} is not a modelled column")
    return [*lead, *[c for c in columns if c not in lead]]


def _train(net, train: np.ndarray, val: np.ndarray, p: ARParams, device: str, rng: np.random.Generator,
           progress, *, budget: float | None, started: float, codec_spent: dict | None = None
           ) -> tuple[list[dict], dict | None]:
    """Step 3: minibatch Adam on the summed cross-entropy. Each head stops at its own best epoch: once its
    validation loss has not improved for `patience` epochs its best weights come back and it leaves the loss, so a
    column that is quick to overfit does not stop one that is still learning. Training ends when every head has
    stopped, at `max_epochs`, or when the CPU-time budget is spent."""
    import torch
    from torch.nn.functional import cross_entropy

    opt = torch.optim.Adam(net.parameters(), lr=p.learning_rate, weight_decay=p.weight_decay)
    x_train = torch.as_tensor(train, dtype=torch.long, device=device)
    x_val = torch.as_tensor(val, dtype=torch.long, device=device)
    batch = max(1, min(p.batch_size, len(train)))
    n_heads = x_train.shape[1]
    privacy, epochs, model = None, p.max_epochs, net
    if p.dp is not None:
        from synthforge.families.tabular_dp import dp_epochs, make_private

        model, opt, loader, privacy = make_private(net, opt, x_train, batch, p.dp, codec_spent or {})
        epochs = dp_epochs(p.dp)

    def losses(x, heads, keep=None):
        return {j: cross_entropy(lg, x[:, j]) for j, lg in model(x, keep, heads).items()}

    active = list(range(n_heads))
    best = [math.inf] * n_heads
    stale = [0] * n_heads
    best_state: list[dict | None] = [None] * n_heads
    history = []
    for epoch in range(epochs):
        model.train()
        total = 0.0
        batches = loader() if privacy else (x_train[i] for i in _batches(len(x_train), batch, rng))
        for x in batches:
            if len(x) == 0:
                continue
            # inverted, as nn.Dropout: a kept parent counts 1 / (1 - p), so a head sums as much in training as when
            # it samples with every parent shown (unscaled, sampling sharpened every column: smsa 74.5 % → 78.6 %)
            keep = ((torch.rand(x.shape, device=device) >= p.column_dropout).float() / (1 - p.column_dropout)
                    if p.column_dropout else None)
            if keep is not None:
                keep = torch.cat([torch.ones(len(x), 1, device=device), keep], dim=1)  # never hide the constant
            opt.zero_grad(set_to_none=True)
            loss = sum(losses(x, active, keep).values())
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(x)
        model.eval()
        with torch.no_grad():
            val_losses = {j: float(v) for j, v in losses(x_val, active).items()} if len(x_val) else {}
        history.append({"epoch": epoch + 1, "train_loss": round(total / len(x_train), 5),
                        "val_loss": round(sum(val_losses.values()), 5), "heads_training": len(active)})
        if progress:
            progress({"epoch": epoch + 1, "epochs": epochs, "loss": total / len(x_train),
                      "val_loss": sum(val_losses.values()) if val_losses else None,
                      "elapsed": time.process_time() - started, "budget": budget})
        if budget is not None and time.process_time() - started > budget:
            break
        if privacy or not val_losses:  # the planned epochs, the last weights: nothing is chosen on private rows
            continue
        for j, v in val_losses.items():
            if v < best[j] - 1e-4:
                best[j], stale[j] = v, 0
                best_state[j] = _head_state(net, j)
            else:
                stale[j] += 1
        active = [j for j in active if stale[j] < p.patience]
        if not active:
            break
    for j, state in enumerate(best_state):
        if state is not None:
            _load_head_state(net, j, state)
    if privacy:
        model.remove_hooks()  # the per-example gradient hooks stay on the plain network otherwise
    return history, (privacy.spent() if privacy else None)


def _head_state(net, j: int) -> dict:
    return {part: {name: t.detach().clone() for name, t in module.state_dict().items()}
            for part, module in (("table", net.tables[j]), ("head", net.heads[j]))}


def _load_head_state(net, j: int, state: dict) -> None:
    net.tables[j].load_state_dict(state["table"])
    net.heads[j].load_state_dict(state["head"])


def _batches(n: int, batch: int, rng: np.random.Generator):
    order = rng.permutation(n)
    return [order[i:i + batch] for i in range(0, n, batch)]


def _jsonable(params: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()}

