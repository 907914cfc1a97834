"""Differentially private training of the autoregressive table model: DP-SGD through Opacus (Apache-2.0).

What ε covers: the network's weights, trained with per-example gradient clipping and Gaussian noise calibrated by
Opacus' accountant (RDP) for the given ε, δ and number of epochs, with Poisson-sampled batches. Training runs the
planned epochs on every training row: no early stopping, since a validation loss computed on private rows would
spend privacy the accountant does not count. What ε does not cover (said in the report and docs/quality.md): the
codec's column vocabulary and bin edges, which are read from the seed as they are. Under DP the codec never
draws a seed's own value inside a bin (tabular_codec.py draws uniformly between the bin's edges, on the seed's
grid, instead), so no individual's exact number is copied into the output.
"""

from __future__ import annotations

import warnings

import numpy as np

DEFAULT_DELTA = 1e-5
DEFAULT_EPOCHS = 30
DEFAULT_MAX_GRAD_NORM = 1.0


class Privacy:
    def __init__(self, engine, delta: float, epsilon: float, epochs: int):
        self.engine, self.delta, self.target, self.epochs = engine, delta, epsilon, epochs

    def spent(self) -> dict:
        return {"epsilon": float(self.engine.get_epsilon(self.delta)), "delta": self.delta,
                "target_epsilon": self.target, "epochs": self.epochs, "accountant": "rdp (Opacus)",
                "covers": "network weights (DP-SGD); not the codec's vocabulary and bin edges"}


def make_private(net, opt, x_train, batch: int, dp: dict, rng: np.random.Generator):
    """The network, optimizer and a batch iterator wrapped by Opacus for (ε, δ)-DP over `dp_epochs(dp)` epochs."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    try:
        from opacus import PrivacyEngine
    except ImportError:
        from synthforge.errors import UserError

        raise UserError("generator.params.dp: needs Opacus; install it with pip install 'synthforge[dp]'") from None
    delta = float(dp.get("delta", DEFAULT_DELTA))
    epochs = dp_epochs(dp)
    generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
    loader = DataLoader(TensorDataset(x_train), batch_size=batch, shuffle=True, generator=generator)
    engine = PrivacyEngine(accountant="rdp", secure_mode=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Opacus warns that secure_mode is off (it uses torch's own generator)
        net, opt, loader = engine.make_private_with_epsilon(
            module=net, optimizer=opt, data_loader=loader, target_epsilon=float(dp["epsilon"]), target_delta=delta,
            epochs=epochs, max_grad_norm=float(dp.get("max_grad_norm", DEFAULT_MAX_GRAD_NORM)),
            noise_generator=generator)
    return net, opt, (lambda: (b[0] for b in loader)), Privacy(engine, delta, float(dp["epsilon"]), epochs)


def dp_epochs(dp: dict) -> int:
    return int(dp.get("epochs", DEFAULT_EPOCHS))
