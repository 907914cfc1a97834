"""Copied training images in the written output, graded against real images never trained on.

The engine's near-copy filter drops sampled images within an absolute RMS pixel distance of a training image
(`quality.filters.near_copy_distance`), and `near_copy_share` counts what it dropped. That leaves two gaps: a copy
a little further than the threshold (a training image with some noise) is written and counted nowhere, and a
folder graded outside a run (no filter) reports 0 dropped whatever it holds. This check reads the output itself,
the way privacy.py's `close_share_excess` reads a synthetic table:

1. d_syn: each synthetic image's RMS pixel distance to its nearest image of the full training set; d_hold: the same
   for each real held-out image (image_metrics.nearest_rms, pixels in [0, 1]).
2. threshold t = the 5th percentile of the held-out images' *positive* distances (an image equal to a training
   image, distance 0, counts on both sides below, as privacy.py does for tables).
3. image_close_share_excess = mean(d_syn <= t) - mean(d_hold <= t): real images never trained on score ≈ 0 (the
   holdout's own share is ≈ 5 % plus its exact duplicates of training images); copies score ≈ 1 - 0.05.
"""

from __future__ import annotations

import numpy as np

from .report_model import Metric

CLOSE_QUANTILE = 0.05


def image_close_share_metric(synthetic_distances: np.ndarray, holdout_distances: np.ndarray,
                             *, quantile: float = CLOSE_QUANTILE) -> Metric:
    """Metric `image_close_share_excess` from nearest-training-image distances (RMS pixels, see the module)."""
    syn, hold = np.asarray(synthetic_distances, float), np.asarray(holdout_distances, float)
    definition = (f"share of synthetic images whose nearest training image is at most the real held-out images' "
                  f"{quantile:.0%} quantile of positive nearest-training distances away (RMS pixels), minus the "
                  "held-out images' own share; ≈ 0 for images never trained on, ≈ 0.95 for copies")
    on = {"features": "pixels in [0, 1] (RMS distance)", "synthetic": len(syn), "real_holdout": len(hold),
          "train": "all training images"}
    if len(syn) == 0 or len(hold) == 0:
        return Metric(name="image_close_share_excess", value=None, lower=-1.0, upper=1.0, higher_is_better=False,
                      definition=definition, computed_on=on)
    positive = hold[hold > 0]
    threshold = float(np.quantile(positive, quantile)) if len(positive) else 0.0
    syn_share, hold_share = float(np.mean(syn <= threshold)), float(np.mean(hold <= threshold))
    return Metric(name="image_close_share_excess", value=syn_share - hold_share, lower=-1.0, upper=1.0,
                  higher_is_better=False, definition=definition, computed_on=on,
                  detail={"threshold": threshold, "quantile": quantile, "synthetic_share": syn_share,
                          "holdout_share": hold_share, "synthetic_zero_share": float(np.mean(syn == 0)),
                          "holdout_zero_share": float(np.mean(hold == 0))})
