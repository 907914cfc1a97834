"""Offline image metrics: nothing is downloaded, so the usual Inception-based FID is not available.

Feature space: the penultimate layer (128 numbers) of a small CNN trained here on the seed's training images and
labels (the "judge"). For an unlabelled seed the features are the first principal components of the pixels.
Every Metric says which feature space it uses in `computed_on["features"]`.

* Fréchet distance (Heusel et al. 2017, eq. 6) and KID (Bińkowski et al. 2018: unbiased MMD² with the kernel
  (x·y/d + 1)³, averaged over subsets) between synthetic images and the real held-out images.
* precision / recall / density / coverage (Naeem et al. 2020, eqs. 1–4, k = 5) in the same space, real = held-out.
* conditional accuracy: the judge's accuracy on the synthetic images against the labels they were asked for.
* utility: the same CNN trained on synthetic images (TSTR) and on real ones (TRTR), both tested on held-out images;
  TSTR on as many synthetic images as TRTR has real ones (a larger set: the mean over the augmentation gain's 5 draws
  of that size, image_tstr).
* augmentation gain: uplift.py's bootstrap of the draws and the held-out images (5 draws, each two CNNs).
* memorisation: each synthetic image's nearest training image by RMS pixel distance (pixels in [0, 1]);
  `near_copies` are those closer than the recipe's threshold (the engine drops them before writing), and
  `image_close_share_excess` (image_copies.py) the written images closer than the real held-out images' 5th
  percentile, beyond the holdout's own share: it catches copies the filter's fixed threshold lets through.
"""

from __future__ import annotations

import base64
import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from synthforge.data.images import ImageSet
from synthforge.quality.image_copies import image_close_share
from synthforge.quality.report_model import ImageSection, ImageTraining, Metric, PixelGrid
from synthforge.quality.uplift import accuracy, draws, uplift_bootstrap, uplift_metrics

K_PRDC = 5
FEATURES = 128
IMAGE_RUNS = 5  # augmentation-uplift draws: each trains two CNNs, so images keep the 5 that text and tables doubled
JUDGE_STREAM, TSTR_STREAM, SUBSET_STREAM, UPLIFT_STREAM = 1, 2, 3, 4


class ImageQuality(BaseModel):
    """Typed image metrics plus what the HTML shows: sample images as small uint8 pixel grids (drawn there)."""

    model_config = ConfigDict(frozen=True)

    frechet_distance: Metric
    frechet_distance_real: Metric
    kid: Metric
    precision: Metric
    recall: Metric
    density: Metric
    coverage: Metric
    conditional_accuracy: Metric | None = None
    utility: Metric | None = None
    augmentation_gain: Metric | None = None  # uplift.py: the CNN on real vs real + synthetic, IMAGE_RUNS draws
    augmentation_gain_lower: Metric | None = None
    near_copy_share: Metric
    nearest_train_distance: Metric
    image_close_share_excess: Metric | None = None  # image_copies.py; None only in reports made before it existed
    per_class: list[dict] = Field(default_factory=list)
    closest_pairs: list[dict] = Field(default_factory=list)
    samples: PixelGrid = Field(default_factory=PixelGrid)  # synthetic images, one row per class
    nearest: PixelGrid = Field(default_factory=PixelGrid)  # the closest pairs: synthetic above, training below
    memorisation: str = ""
    notes: list[str] = Field(default_factory=list)  # what could not be computed, and why

    def metrics(self) -> dict[str, Metric]:
        """Flat metric name -> Metric (what gates look up)."""
        names = ("frechet_distance", "frechet_distance_real", "kid", "precision", "recall", "density", "coverage",
                 "conditional_accuracy", "utility", "augmentation_gain", "augmentation_gain_lower", "near_copy_share",
                 "nearest_train_distance", "image_close_share_excess")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


def image_section(quality: ImageQuality, training: dict) -> ImageSection:
    """The report's image section (Report.image): the quality's statistics plus how the model was trained.
    `training` holds steps, seconds, clock, stopped_by, images_seen, final_loss, resumed_from_step, parameters,
    precision, device, train_images, base_model, model (dict), sampling (dict) and losses: floats, or
    [step, loss] pairs as the diffusion family records them (then the steps go to `loss_steps`)."""
    t = {k: v for k, v in (training or {}).items() if k in ImageTraining.model_fields}
    losses = list(t.pop("losses", None) or [])
    if losses and isinstance(losses[0], (list, tuple)):
        t["loss_steps"] = [int(step) for step, _ in losses]
        losses = [value for _, value in losses]
    t["losses"] = [float(v) for v in losses]
    metrics = quality.metrics()
    return ImageSection(metrics=metrics, notes=quality.notes,
                        summary={m.name: _round(m.value) for m in metrics.values()},
                        per_class=quality.per_class, closest_pairs=quality.closest_pairs,
                        memorisation=quality.memorisation, samples=quality.samples, nearest=quality.nearest,
                        training=ImageTraining(**t) if training is not None else None)


# ---------------------------------------------------------------- the small CNN (judge and TSTR/TRTR model)


def _cnn(size: int, channels: int, n_classes: int):
    import torch.nn as nn

    layers, c, s = [], channels, size
    for width in (32, 64, 128):  # halve while the map is ≥ 4 px: 8 → 2×2 after two blocks, 28 → 3×3 after three
        if s < 4:
            break
        layers += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                   nn.MaxPool2d(2)]
        c, s = width, s // 2
    body = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * s * s, FEATURES), nn.ReLU())
    return nn.ModuleDict({"body": body, "head": nn.Sequential(nn.Dropout(0.3), nn.Linear(FEATURES, n_classes))})


def _to_tensor(images: np.ndarray):
    import torch

    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255.0)


def cnn_steps(n_images: int, size: int) -> int:
    """Optimizer steps for the small CNN at batch 128: about 50 epochs, at least 100 steps, at most 500 for small
    images (digits: 0.98 held-out accuracy) and 1,000 for larger ones (Fashion-MNIST: about 10 epochs of 12k)."""
    return int(np.clip(50 * n_images / 128, 100, 500 if size <= 16 else 1000))


def train_cnn(images: np.ndarray, labels: np.ndarray, n_classes: int, *, seed: int, steps: int | None = None,
              batch_size: int = 128, lr: float = 2e-3):
    """Train the small CNN on uint8 images and integer labels (Adam, cosine learning rate, seeded batches)."""
    import torch
    import torch.nn.functional as F

    x, y = _to_tensor(images), torch.as_tensor(labels, dtype=torch.long)
    steps = steps or cnn_steps(len(images), images.shape[1])
    gen = torch.Generator().manual_seed(seed)
    # nn.Module initialisation and Dropout draw from torch's global generator only; fork_rng seeds it for this
    # training and gives the caller its own state back afterwards
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = _cnn(images.shape[1], images.shape[3], n_classes)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
        net.train()
        for _ in range(steps):
            idx = torch.randint(0, len(x), (batch_size,), generator=gen)
            loss = F.cross_entropy(net["head"](net["body"](x[idx])), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return net.eval()


def image_uplift(real: np.ndarray, y_real: np.ndarray, synthetic: np.ndarray, y_synthetic: np.ndarray,
                 test: np.ndarray, y_test: np.ndarray, n_classes: int, *, seed: int) -> dict[str, Metric]:
    """Augmentation uplift (uplift.py, the bootstrap of draws and held-out images) of the small CNN's held-out
    accuracy. Both sides train for the same number of steps (the real set's), so the comparison is at equal compute:
    what the synthetic images add, not more steps."""
    if len(synthetic) == 0 or len(set(y_real.tolist())) < 2:
        return uplift_metrics(None, "accuracy", {"features": "pixels", "test_on": "holdout"})
    steps = cnn_steps(len(real), real.shape[1])

    def predict(idx, model_seed):
        x = real if idx is None else np.concatenate([real, synthetic[idx]])
        y = y_real if idx is None else np.concatenate([y_real, y_synthetic[idx]])
        return cnn_outputs(train_cnn(x, y, n_classes, seed=model_seed, steps=steps), test)[1]

    result = uplift_bootstrap(predict, {"score": lambda p, w: accuracy(y_test, p, w)}, len(synthetic), len(real),
                              len(test), seed=seed, runs=IMAGE_RUNS)
    return uplift_metrics(result, "accuracy of the small CNN", {
        "features": "pixels (the CNN is trained from scratch on real and on real + synthetic images)",
        "test_on": "holdout", "test_images": len(test), "cnn_steps": steps, "real_images": len(real)})


def image_tstr(synthetic: np.ndarray, y_synthetic: np.ndarray, n_real: int, test: np.ndarray, y_test: np.ndarray,
               n_classes: int, *, seed: int, draw_seed: int) -> dict:
    """TSTR on as many synthetic images as there are real training images: a larger set is drawn down to n_real
    IMAGE_RUNS times (the augmentation gain's own draws: uplift.draws at `draw_seed`), one CNN each, and the
    accuracy is their mean with the spread beside; a set no larger trains one CNN on all of it and says so."""
    def fit(idx: np.ndarray | None, k: int) -> float:
        x, y = (synthetic, y_synthetic) if idx is None else (synthetic[idx], y_synthetic[idx])
        net = train_cnn(x, y, n_classes, seed=seed + k, steps=cnn_steps(len(x), x.shape[1]))
        return float(np.mean(cnn_outputs(net, test)[1] == y_test))

    on = {"available_images": len(synthetic), "size_matched": len(synthetic) >= n_real}
    if len(synthetic) <= n_real:
        note = {} if len(synthetic) == n_real else {"note": f"fewer synthetic images ({len(synthetic)}) than real "
                                                            f"training images ({n_real}): all of them used, once"}
        return {"accuracy": fit(None, 0), "train_images": len(synthetic)} | on | note
    scores = [fit(idx, k) for k, idx in enumerate(draws(len(synthetic), n_real, draw_seed, IMAGE_RUNS))]
    return {"accuracy": float(np.mean(scores)), "train_images": n_real, "draws": len(scores),
            "accuracy_draws": scores, "accuracy_sd": float(np.std(scores, ddof=1)),
            "draws_from": "uplift.draws: the augmentation gain's draws"} | on


def cnn_outputs(net, images: np.ndarray, batch: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(features, predicted class) for uint8 images."""
    import torch

    feats, preds = [], []
    with torch.no_grad():
        for start in range(0, len(images), batch):
            f = net["body"](_to_tensor(images[start:start + batch]))
            feats.append(f.numpy())
            preds.append(net["head"](f).argmax(1).numpy())
    return np.concatenate(feats), np.concatenate(preds)


# ---------------------------------------------------------------- distances between distributions


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """‖μa − μb‖² + Tr(Σa + Σb − 2(ΣaΣb)^½) (Heusel et al. 2017, eq. 6), with the square root via eigenvalues of
    Σa^½ Σb Σa^½ (symmetric, so stable)."""
    mu = a.mean(0) - b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(sa)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    middle = np.linalg.eigvalsh(root_a @ sb @ root_a)
    return float(mu @ mu + np.trace(sa) + np.trace(sb) - 2 * np.sqrt(np.clip(middle, 0, None)).sum())


def kid(a: np.ndarray, b: np.ndarray, *, seed: int, subsets: int = 50, subset_size: int = 1000) -> tuple[float, float]:
    """Kernel Inception Distance in this feature space: mean and std over subsets of the unbiased MMD²."""
    rng = np.random.default_rng(seed)
    m = min(subset_size, len(a), len(b))
    d = a.shape[1]
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = (x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3
        values.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                      - 2 * kxy.mean())
    return float(np.mean(values)), float(np.std(values))


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.clip(d2, 0, None))


def prdc(real: np.ndarray, fake: np.ndarray, k: int = K_PRDC) -> dict[str, float]:
    """Precision, recall, density, coverage (Naeem et al. 2020, eqs. 1–4) with k-nearest-neighbour balls."""
    rr, ff, rf = _pairwise(real, real), _pairwise(fake, fake), _pairwise(real, fake)
    r_radius = np.sort(rr, axis=1)[:, k]  # column 0 is the point itself
    f_radius = np.sort(ff, axis=1)[:, k]
    inside = rf <= r_radius[:, None]  # real i's ball holds fake j
    return {"precision": float(inside.any(0).mean()),
            "recall": float((rf <= f_radius[None, :]).any(1).mean()),
            "density": float(inside.sum(0).mean() / k),
            "coverage": float((rf.min(1) <= r_radius).mean())}


def nearest_rms(query: np.ndarray, reference: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """For each query image, the RMS pixel distance (pixels scaled to [0, 1]) to its nearest reference image, and
    that image's index."""
    ref = reference.reshape(len(reference), -1).astype(np.float32) / 255.0
    ref_sq = (ref * ref).sum(1)
    dims = ref.shape[1]
    dist, idx = np.empty(len(query)), np.empty(len(query), dtype=np.int64)
    for start in range(0, len(query), chunk):
        q = query[start:start + chunk].reshape(-1, dims).astype(np.float32) / 255.0
        d2 = (q * q).sum(1)[:, None] + ref_sq[None, :] - 2 * q @ ref.T
        j = d2.argmin(1)
        idx[start:start + len(q)] = j
        # the expansion above loses ~1e-4 RMS to float32 rounding, as much as one grey level on one pixel of 28×28:
        # the chosen pair's distance is recomputed exactly, so a copy is at 0 (image_copies.py counts zeros)
        diff = q.astype(np.float64) - ref[j].astype(np.float64)
        dist[start:start + len(q)] = np.sqrt((diff * diff).mean(1))
    return dist, idx


# ---------------------------------------------------------------- the whole evaluation


def evaluate_images(train: ImageSet, holdout: ImageSet, synthetic: ImageSet, *, random_seed: int,
                    near_copy_distance: float, near_copies_dropped: int = 0, sampled: int | None = None,
                    max_images: int = 10_000) -> ImageQuality:
    """Grade synthetic images against the real training and held-out images. `near_copies_dropped` and `sampled`
    are what the engine's filter saw before writing (the synthetic set here is what was kept)."""
    rng = np.random.default_rng(random_seed)
    syn = synthetic.take(_cap(len(synthetic), max_images, rng)) if len(synthetic) > max_images else synthetic
    hold = holdout.take(_cap(len(holdout), max_images, rng)) if len(holdout) > max_images else holdout
    tr = train.take(_cap(len(train), max_images, rng)) if len(train) > max_images else train
    labelled = train.labels is not None
    classes = train.classes
    notes = []
    sizes = {"synthetic": len(syn), "real_holdout": len(hold), "real_train": len(tr)}

    # 1. the feature space: the judge CNN trained on the training split, or pixel PCA without labels
    per_class, cond_acc, utility, gains = [], None, None, {}
    if labelled:
        index = {c: i for i, c in enumerate(classes)}
        y_tr = np.array([index[v] for v in tr.labels])
        y_ho = np.array([index.get(v, -1) for v in hold.labels])
        y_sy = np.array([index.get(v, -1) for v in syn.labels])
        judge = train_cnn(tr.images, y_tr, len(classes), seed=_seed(random_seed, JUDGE_STREAM))
        f_tr, _ = cnn_outputs(judge, tr.images)
        f_ho, p_ho = cnn_outputs(judge, hold.images)
        f_sy, p_sy = cnn_outputs(judge, syn.images)
        # one scale for all three sets: real training features get unit mean square (keeps KID's cubic kernel sane)
        unit = float(np.sqrt(np.mean(f_tr ** 2))) or 1.0
        f_tr, f_ho, f_sy = f_tr / unit, f_ho / unit, f_sy / unit
        space = (f"penultimate layer ({FEATURES}-d, scaled to unit mean square on real training images) of a "
                 f"small CNN trained on the {len(tr)} training images (held-out accuracy {np.mean(p_ho == y_ho):.3f})")
        trtr = float(np.mean(p_ho == y_ho))
        # 2. conditional accuracy
        cond_acc = Metric(name="conditional_accuracy", value=float(np.mean(p_sy == y_sy)),
                          definition="share of synthetic images the judge CNN (trained on real training images) "
                                     "classifies as the label they were generated for",
                          lower=0, upper=1, higher_is_better=True,
                          computed_on={"features": space, "synthetic": len(syn)},
                          detail={"judge_holdout_accuracy": trtr})
        for i, c in enumerate(classes):
            mask = y_sy == i
            per_class.append({"class": c, "synthetic": int(mask.sum()),
                              "conditional_accuracy": _round(float(np.mean(p_sy[mask] == i))) if mask.any() else None,
                              "real_train": int((y_tr == i).sum()), "real_holdout": int((y_ho == i).sum())})
        # 3. utility: the same CNN trained on as many synthetic images as real ones, tested on the held-out ones
        keep = y_sy >= 0  # a label the judge does not know has no class to train
        uplift_seed = _seed(random_seed, UPLIFT_STREAM)
        tstr = image_tstr(syn.images[keep], y_sy[keep], len(tr), hold.images, y_ho, len(classes),
                          seed=_seed(random_seed, TSTR_STREAM), draw_seed=uplift_seed)
        steps_syn = cnn_steps(tstr["train_images"], syn.images.shape[1])
        utility = Metric(name="utility", value=tstr["accuracy"] / trtr if trtr > 0 else None,
                         definition="TSTR/TRTR: held-out accuracy of the small CNN trained on as many synthetic "
                                    "images as there are real training images (the mean over draws of that size "
                                    "when there are more), divided by the same CNN's trained on the real ones",
                         lower=0, upper=math.inf, higher_is_better=True,
                         computed_on={"features": "pixels (the CNN is trained from scratch on each side)",
                                      "train_synthetic": tstr["train_images"], "train_real": len(tr),
                                      "synthetic_available": tstr["available_images"],
                                      "size_matched": tstr["size_matched"], "draws": tstr.get("draws", 1),
                                      "test_real": len(hold),
                                      "cnn_steps_real": cnn_steps(len(tr), tr.images.shape[1]),
                                      "cnn_steps_synthetic": steps_syn},
                         detail={"tstr": tstr, "trtr": {"accuracy": trtr}})
        gains = image_uplift(tr.images, y_tr, syn.images[keep], y_sy[keep], hold.images, y_ho,
                             len(classes), seed=uplift_seed)
    else:
        from sklearn.decomposition import PCA

        flat = lambda s: s.images.reshape(len(s), -1).astype(np.float32) / 255.0  # noqa: E731
        n_comp = int(min(64, flat(tr).shape[1], len(tr) - 1))
        pca = PCA(n_components=n_comp, random_state=random_seed).fit(flat(tr))
        f_tr, f_ho, f_sy = pca.transform(flat(tr)), pca.transform(flat(hold)), pca.transform(flat(syn))
        unit = float(np.sqrt(np.mean(f_tr ** 2))) or 1.0
        f_tr, f_ho, f_sy = f_tr / unit, f_ho / unit, f_sy / unit
        space = (f"first {n_comp} principal components of the training pixels, scaled to unit mean square "
                 "(unlabelled seed: no judge CNN)")
        notes.append("unlabelled seed: conditional accuracy and TSTR utility need labels and are not computed")

    # 4. distribution distances and PRDC, against the held-out images
    fd = Metric(name="frechet_distance", value=frechet_distance(f_sy, f_ho),
                definition="Fréchet distance between Gaussians fitted to synthetic and held-out real features "
                           "(not comparable to Inception FID)", lower=0, upper=math.inf, higher_is_better=False,
                computed_on={"features": space, **sizes})
    n_ref = min(len(tr), len(syn))
    fd_real = Metric(name="frechet_distance_real", value=frechet_distance(
        f_tr[rng.choice(len(tr), n_ref, replace=False)], f_ho),
        definition="reference: the same distance between real training and held-out images (what a perfect "
                   "generator would score at this sample size)", lower=0, upper=math.inf, higher_is_better=None,
        computed_on={"features": space, "real_train": n_ref, "real_holdout": len(hold)})
    kid_mean, kid_std = kid(f_sy, f_ho, seed=_seed(random_seed, SUBSET_STREAM))
    kid_m = Metric(name="kid", value=kid_mean,
                   definition="Kernel distance (unbiased MMD², cubic polynomial kernel) between synthetic and "
                              "held-out real features, mean over 50 subsets", lower=-math.inf, upper=math.inf,
                   higher_is_better=False, computed_on={"features": space, **sizes}, detail={"std": kid_std})
    n_prdc = min(len(hold), len(syn), 3000)  # three n×n distance matrices
    real_idx = rng.choice(len(hold), n_prdc, replace=False)
    fake_idx = rng.choice(len(syn), n_prdc, replace=False)
    k = min(K_PRDC, n_prdc - 1)  # a small run has fewer neighbours than K_PRDC (4 images: k = 3)
    pr = prdc(f_ho[real_idx], f_sy[fake_idx], k)
    prdc_on = {"features": space, "real_holdout": n_prdc, "synthetic": n_prdc, "k": k}
    texts = {"precision": "share of synthetic images inside some real image's k-NN ball (realism)",
             "recall": "share of real images inside some synthetic image's k-NN ball (diversity)",
             "density": "average number of real k-NN balls holding a synthetic image, divided by k (1 ≈ real)",
             "coverage": "share of real images whose k-NN ball holds at least one synthetic image"}
    prdc_metrics = {k: Metric(name=k, value=v, definition=texts[k] + " (Naeem et al. 2020)", lower=0,
                              upper=math.inf if k == "density" else 1, higher_is_better=True, computed_on=prdc_on)
                    for k, v in pr.items()}

    # 5. memorisation: nearest training image in pixels; the real held-out images calibrate the scale
    nn_dist, nn_idx = nearest_rms(syn.images, train.images)
    ho_dist, _ = nearest_rms(hold.images, train.images)
    total = sampled if sampled is not None else len(synthetic) + near_copies_dropped
    share = near_copies_dropped / total if total else 0.0
    near = Metric(name="near_copy_share", value=share,
                  definition=f"share of sampled images within RMS pixel distance {near_copy_distance:g} of a "
                             "training image (dropped before writing, so the output holds none)",
                  lower=0, upper=1, higher_is_better=False,
                  computed_on={"features": "pixels in [0, 1] (RMS distance)", "sampled": total,
                               "dropped": near_copies_dropped, "threshold": near_copy_distance},
                  # the baseline: real images never trained on that sit as close to a training image
                  detail={"holdout_share": float(np.mean(ho_dist <= near_copy_distance)) if len(ho_dist) else None})
    nearest = Metric(name="nearest_train_distance", value=float(np.median(nn_dist)),
                     definition="median RMS pixel distance from a synthetic image to its nearest training image; "
                                "compare with the held-out real images' median (in detail)",
                     lower=0, upper=1, higher_is_better=None,
                     computed_on={"features": "pixels in [0, 1] (RMS distance)", "synthetic": len(syn)},
                     detail={"synthetic_quantiles": _quantiles(nn_dist), "holdout_quantiles": _quantiles(ho_dist),
                             "synthetic_min": float(nn_dist.min()), "holdout_min": float(ho_dist.min())})
    close = image_close_share(syn.images, hold.images, train.images)
    memo = (f"nearest training image, RMS pixels: synthetic median {np.median(nn_dist):.3f} (min "
            f"{nn_dist.min():.3f}); real held-out images median {np.median(ho_dist):.3f} (min {ho_dist.min():.3f})")
    if close.value is not None:
        memo += (f"; within the held-out images' 5th percentile ({close.detail['threshold']:.3f}): synthetic "
                 f"{close.detail['synthetic_share']:.1%}, held-out {close.detail['holdout_share']:.1%}")
    order = np.argsort(nn_dist)[:12]
    pairs = [{"synthetic": syn.ids[j] if syn.ids else str(j), "label": None if syn.labels is None else syn.labels[j],
              "nearest_training_image": train.ids[nn_idx[j]] if train.ids else str(nn_idx[j]),
              "training_label": None if train.labels is None else train.labels[nn_idx[j]],
              "rms_distance": _round(float(nn_dist[j]))} for j in order]
    return ImageQuality(frechet_distance=fd, frechet_distance_real=fd_real, kid=kid_m, **prdc_metrics,
                        conditional_accuracy=cond_acc, utility=utility, **gains, near_copy_share=near,
                        nearest_train_distance=nearest, image_close_share_excess=close, per_class=per_class, closest_pairs=pairs,
                        samples=sample_grid(syn, classes),
                        nearest=pair_grid(syn.images[order], train.images[nn_idx[order]]),
                        memorisation=memo, notes=notes)


def near_copies(images: np.ndarray, train_images: np.ndarray, threshold: float) -> np.ndarray:
    """Bool per image: closer than `threshold` (RMS pixel distance, pixels in [0, 1]) to some training image."""
    if len(images) == 0:
        return np.zeros(0, dtype=bool)
    dist, _ = nearest_rms(images, train_images)
    return dist < threshold


# ---------------------------------------------------------------- sample images for the page (html.py draws them)


def _grid(rows: list[np.ndarray], labels: list[str]) -> PixelGrid:
    rows = [r for r in rows if len(r)]
    if not rows:
        return PixelGrid()
    h, w, c = rows[0].shape[1:]
    return PixelGrid(height=h, width=w, channels=c, row_labels=labels,
                     rows=[[base64.b64encode(np.ascontiguousarray(im, dtype=np.uint8).tobytes()).decode() for im in r]
                           for r in rows])


def sample_grid(images: ImageSet, classes: tuple[str, ...], per_class: int = 12) -> PixelGrid:
    """One row of synthetic images per class (the first `per_class` of each), or up to four unlabelled rows."""
    if images.labels is None or not classes:
        rows = [images.images[i * per_class:(i + 1) * per_class] for i in range(4)]
        return _grid(rows, [""] * sum(1 for r in rows if len(r)))
    rows = [images.images[images.labels == c][:per_class] for c in classes]
    return _grid(rows, [str(c) for c, r in zip(classes, rows) if len(r)])


def pair_grid(synthetic: np.ndarray, nearest: np.ndarray) -> PixelGrid:
    """The closest synthetic images (row 0) above their nearest training images (row 1)."""
    if len(synthetic) == 0:
        return PixelGrid()
    return _grid([synthetic, nearest], ["synthetic", "training"])


# ---------------------------------------------------------------- helpers


def _cap(n: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, cap, replace=False))


def _seed(random_seed: int, stream: int) -> int:
    from synthforge.randomness import derive_seed

    return derive_seed(random_seed, stream)


def _quantiles(x: np.ndarray) -> dict[str, float]:
    return {f"q{int(q * 100):02d}": _round(float(np.quantile(x, q))) for q in (0.01, 0.05, 0.5)}


def _round(v):
    return None if v is None else round(float(v), 4)
