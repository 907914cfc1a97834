"""Planted leaks for images and text: the rows of docs/privacy.md's planted-leak table that are not tables.

    python benchmarks/planted_media.py

No model is trained: each planted "synthetic" set is built from the seed, as tests/quality/test_planted_media_leaks.py
does. Images: the digits recipe's split (1,200 training, 597 held-out images), graded by image_copies.py's
close share and by the engine's near-copy filter (what a run would drop). Text: medical_text's filters with the 600
training reviews as the seed, graded by the raw memorisation rate that `max_memorisation_raw` gates.
"""

import sys
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
RECIPES = HERE.parent / "recipes"


def noisy(images: np.ndarray, sd: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sd * 255, images.shape)
    return np.clip(np.rint(images + noise), 0, 255).astype(np.uint8)


def pca_gaussian(images: np.ndarray, labels: np.ndarray, n: int, seed: int, k: int = 20) -> np.ndarray:
    """An honest, blurry generator: per class, a Gaussian in that class's first k principal components."""
    rng = np.random.default_rng(seed)
    classes, out = sorted(set(labels)), []
    for c in classes:
        x = images[labels == c].reshape((labels == c).sum(), -1).astype(float)
        mu = x.mean(0)
        _, s, vt = np.linalg.svd(x - mu, full_matrices=False)
        z = rng.normal(size=(n // len(classes), k)) * (s[:k] / np.sqrt(len(x) - 1))
        out.append(np.clip(np.rint(mu + z @ vt[:k]), 0, 255).astype(np.uint8).reshape(-1, *images.shape[1:]))
    return np.concatenate(out)


def images() -> None:
    from synthforge.data.images import read_image_seed
    from synthforge.engine.modalities.image import SPLIT_SEED_STREAM, split_images
    from synthforge.quality.image_copies import image_close_share_metric
    from synthforge.quality.image_metrics import near_copies, nearest_rms
    from synthforge.randomness import derive_seed

    recipe = yaml.safe_load((RECIPES / "digits_images.yaml").read_text())
    gate, flt = recipe["quality"]["gates"]["max_image_close_share_excess"], recipe["quality"]["filters"]["near_copy_distance"]
    seed = read_image_seed("example://digits", image_size=8, channels=1, random_seed=recipe["random_seed"])
    train, hold, _ = split_images(seed, recipe["quality"]["holdout_fraction"],
                                  derive_seed(recipe["random_seed"], SPLIT_SEED_STREAM))
    d_hold, _ = nearest_rms(hold.images, train.images)
    idx = np.random.default_rng(0).choice(len(train), len(train), replace=False)
    order = np.random.default_rng(5).permutation(len(hold))
    half_a, half_b = hold.images[order[:299]], hold.images[order[299:]]
    d_half, _ = nearest_rms(half_a, train.images)
    cases = [
        ("verbatim training copies", train.images[idx], d_hold),
        ("training copies + pixel noise sd 0.10", noisy(train.images[idx], 0.10, 1), d_hold),
        ("training copies + pixel noise sd 0.15", noisy(train.images[idx], 0.15, 1), d_hold),
        ("half noisy copies (sd 0.10) + half PCA-Gaussian", np.concatenate(
            [noisy(train.images[idx[:600]], 0.10, 2), pca_gaussian(train.images, train.labels, 600, 3)]), d_hold),
        ("per-class PCA-Gaussian sampler (honest, blurry)", pca_gaussian(train.images, train.labels, 1200, 4), d_hold),
        ("real held-out digits never trained on (honest ideal; the other half of the holdout is the yardstick)",
         half_b, d_half),
    ]
    print(f"digits: {len(train)} training, {len(hold)} held-out images; gate max_image_close_share_excess {gate}")
    print("| planted | images | close share (holdout) | excess | threshold | median nearest-train RMS (holdout) | "
          "filter < %g drops | gate |" % flt)
    for name, imgs, yard in cases:
        d, _ = nearest_rms(imgs, train.images)
        m = image_close_share_metric(d, yard)
        print(f"| {name} | {len(imgs)} | {m.detail['synthetic_share']:.1%} ({m.detail['holdout_share']:.1%}) | "
              f"{m.value:+.3f} | {m.detail['threshold']:.3f} | {np.median(d):.3f} ({np.median(yard):.3f}) | "
              f"{near_copies(imgs, train.images, flt).mean():.0%} | {'fails' if m.value > gate else 'passes'} |")


def memorised_text_cases() -> tuple[list[str], dict[str, list[str]]]:
    """medical_text's 600 training reviews and the planted sets: copies, near copies (every 20th / 8th word swapped
    for a held-out review's word), half copies, and the 379 held-out reviews never trained on (the honest side).
    tests/quality/test_planted_media_leaks.py grades the same sets."""
    from synthforge.data.examples import EXAMPLES

    df = EXAMPLES["drug_reviews"][1]()
    train = df.loc[df.split == "train", "review"].astype(str).tolist()
    test = df.loc[df.split == "test", "review"].astype(str).tolist()
    vocab = sorted({w for t in test for w in t.split()})

    def swap(doc: str, every: int, seed: int) -> str:
        rng = np.random.default_rng(seed)
        return " ".join(vocab[rng.integers(len(vocab))] if i % every == every - 1 else w
                        for i, w in enumerate(doc.split()))

    pick = np.random.default_rng(0).choice(len(train), len(test), replace=False)
    return train, {"verbatim training reviews": [train[i] for i in pick],
                   "near copies: every 20th word swapped": [swap(train[i], 20, i) for i in pick],
                   "near copies: every 8th word swapped": [swap(train[i], 8, i) for i in pick],
                   "half verbatim + half held-out reviews": [train[i] for i in pick[:190]] + test[:189],
                   "held-out reviews never trained on": test}


def text() -> None:
    from synthforge.quality.text_filters import FilterConfig, TextFilters

    recipe = yaml.safe_load((RECIPES / "medical_text.yaml").read_text())
    gate = recipe["quality"]["gates"]["max_memorisation_raw"]
    cfg = FilterConfig.from_recipe(recipe["quality"]["filters"])
    train, cases = memorised_text_cases()
    print(f"\nmedical_text: {len(train)} training reviews as the seed; gate max_memorisation_raw {gate}")
    print("| planted | documents | raw memorisation | dropped as near-duplicate | written after the filters | gate |")
    for name, docs in cases.items():
        out = TextFilters(cfg, train).apply(docs)
        raw = out.memorised / len(docs)
        print(f"| {name} | {len(docs)} | {raw:.3f} | {out.dropped.get('near_duplicate', 0) / len(docs):.1%} | "
              f"{out.keep.mean():.1%} | {'fails' if raw > gate else 'passes'} |")


if __name__ == "__main__":
    images()
    text()
