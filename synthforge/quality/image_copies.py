"""Copied training images in the written output, graded against real images never trained on.

The engine's near-copy filter drops sampled images within an absolute RMS pixel distance of a training image
(`quality.filters.near_copy_distance`), and `near_copy_share` counts what it dropped. That leaves two gaps: a copy
a little further than the threshold (a training image with some noise) is written and counted nowhere, and a
folder graded outside a run (no filter) reports 0 dropped whatever it holds. This check reads the output itself,
the way privacy.py's `close_share_excess` reads a synthetic table, in two views of each image's two nearest images
of the full training set (pixels in [0, 1], RMS over pixels):

* distance: d1, the RMS distance to the nearest training image. Catches copies and lightly noised copies.
* lead: sqrt(d2² − d1²), how much nearer the nearest training image is than the second nearest. Independent pixel
  noise adds the same energy to every squared distance (in expectation), so it cancels in the difference: a copy
  under any noise keeps the lead its training image has over its own nearest neighbour, while a real image never
  trained on has two neighbours at similar distances. Heavy noise (sd 0.15) moves a copy as far in d1 as an unseen
  image, and no low-pass view brings it back (clipping at 0 turns the noise into a haze that averaging keeps); the
  lead catches it (docs/privacy.md, "Copied images"). A verbatim copy of a training image that is itself duplicated
  in training has lead 0, which is why the distance view stays.

Each view: threshold t = the held-out images' 5th percentile (distance: of their *positive* distances, since an
image equal to a training image counts on both sides, as privacy.py does for tables; lead: their 95th percentile,
since a copy's lead is large); the excess = the synthetic share beyond t minus the held-out images' own share.
`image_close_share_excess` is the larger of the two excesses: ≈ 0 for images never trained on (each view's held-out
share is ≈ 5 %), ≈ 0.95 for copies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .report_model import Metric

CLOSE_QUANTILE = 0.05


@dataclass(frozen=True)
class NearestTraining:
    """Per image: RMS distance to its nearest training image (`distance`) and that image's lead over the second
    nearest, sqrt(d2² − d1²) (`lead`); pixels in [0, 1]."""

    distance: np.ndarray
    lead: np.ndarray


def nearest_training(images: np.ndarray, train_images: np.ndarray, chunk: int = 1024) -> NearestTraining:
    """The two nearest training images of each image (needs at least two training images)."""
    ref = train_images.reshape(len(train_images), -1).astype(np.float32) / 255.0
    ref_sq = (ref * ref).sum(1)
    dims = ref.shape[1]
    d1, d2 = np.empty(len(images)), np.empty(len(images))
    for start in range(0, len(images), chunk):
        q = images[start:start + chunk].reshape(-1, dims).astype(np.float32) / 255.0
        sq = (q * q).sum(1)[:, None] + ref_sq[None, :] - 2 * q @ ref.T
        two = np.argpartition(sq, 1, axis=1)[:, :2]
        # float32's expansion is only good to ~1e-4 RMS: the two chosen distances are recomputed exactly, so a copy
        # is at 0 and a lead is not rounding noise
        exact = ((q[:, None, :].astype(np.float64) - ref[two].astype(np.float64)) ** 2).mean(2)
        exact.sort(1)
        d1[start:start + len(q)], d2[start:start + len(q)] = exact[:, 0], exact[:, 1]
    return NearestTraining(distance=np.sqrt(d1), lead=np.sqrt(np.maximum(d2 - d1, 0.0)))


def image_close_share(synthetic_images: np.ndarray, holdout_images: np.ndarray,
                      train_images: np.ndarray, *, quantile: float = CLOSE_QUANTILE) -> Metric:
    """Metric `image_close_share_excess` of written images, the real held-out images as the yardstick."""
    if len(train_images) < 2:
        return image_close_share_metric(None, None, quantile=quantile)
    return image_close_share_metric(nearest_training(synthetic_images, train_images),
                                    nearest_training(holdout_images, train_images), quantile=quantile)


def _view(syn: np.ndarray, hold: np.ndarray, threshold: float, closer: bool) -> tuple[float, float]:
    """Synthetic and held-out shares at or beyond the threshold (at or under it when `closer`)."""
    if closer:
        return float(np.mean(syn <= threshold)), float(np.mean(hold <= threshold))
    return float(np.mean(syn >= threshold)), float(np.mean(hold >= threshold))


def image_close_share_metric(synthetic: NearestTraining | None, holdout: NearestTraining | None,
                             *, quantile: float = CLOSE_QUANTILE) -> Metric:
    """Metric `image_close_share_excess` from both images' nearest-training views (see the module)."""
    definition = (f"the larger of two excesses over the real held-out images' own share: written images whose "
                  f"nearest training image is at most the held-out images' {quantile:.0%} quantile of positive RMS "
                  f"pixel distances away, and written images whose nearest training image leads the second nearest "
                  f"(sqrt(d2² − d1²), which pixel noise does not hide) by at least the held-out images' "
                  f"{1 - quantile:.0%} quantile; ≈ 0 for images never trained on, ≈ 0.95 for copies")
    on = {"features": "pixels in [0, 1] (RMS distance; lead sqrt(d2² − d1²))",
          "synthetic": 0 if synthetic is None else len(synthetic.distance),
          "real_holdout": 0 if holdout is None else len(holdout.distance), "train": "all training images"}
    if synthetic is None or holdout is None or len(synthetic.distance) == 0 or len(holdout.distance) == 0:
        return Metric(name="image_close_share_excess", value=None, lower=-1.0, upper=1.0, higher_is_better=False,
                      definition=definition, computed_on=on)
    positive = holdout.distance[holdout.distance > 0]
    threshold = float(np.quantile(positive, quantile)) if len(positive) else 0.0
    syn_share, hold_share = _view(synthetic.distance, holdout.distance, threshold, closer=True)
    lead_threshold = float(np.quantile(holdout.lead, 1 - quantile))
    lead_syn, lead_hold = _view(synthetic.lead, holdout.lead, lead_threshold, closer=False)
    pixel_excess, lead_excess = syn_share - hold_share, lead_syn - lead_hold
    return Metric(name="image_close_share_excess", value=max(pixel_excess, lead_excess), version="2", lower=-1.0,
                  upper=1.0, higher_is_better=False, definition=definition, computed_on=on,
                  detail={"quantile": quantile, "distance_excess": pixel_excess, "lead_excess": lead_excess,
                          "threshold": threshold, "synthetic_share": syn_share, "holdout_share": hold_share,
                          "lead_threshold": lead_threshold, "lead_synthetic_share": lead_syn,
                          "lead_holdout_share": lead_hold,
                          "synthetic_zero_share": float(np.mean(synthetic.distance == 0)),
                          "holdout_zero_share": float(np.mean(holdout.distance == 0))})
