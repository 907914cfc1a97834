"""Planted leaks for images and text: the rows of docs/privacy.md's planted-leak table that are not tables.

    python benchmarks/planted_media.py

    python benchmarks/planted_media.py --fashion-dir DIR   # Fashion-MNIST unpacked elsewhere (dpkg -x)
    python benchmarks/planted_media.py --views             # also the candidate views image_copies.py chose from

No model is trained: each planted "synthetic" set is built from the seed, as tests/quality/test_planted_media_leaks.py
does. Images: the digits recipe's split (1,200 training, 597 held-out images) and, when Debian's
dataset-fashion-mnist is there, the fashion recipe's (12,036 training, 1,964 held-out images), graded by
image_copies.py's two views (distance, the check before issue 32's fix; lead) and by the engine's near-copy filter
(what a run would drop). Text: medical_text's filters with the 600
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
    """Each pixel plus Gaussian noise of `sd` (pixels in [0, 1]), rounded and clipped back to uint8."""
    noise = np.random.default_rng(seed).normal(0, sd * 255, images.shape)
    return np.clip(np.rint(images + noise), 0, 255).astype(np.uint8)


def blurred(images: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of `sigma` pixels over height and width."""
    from scipy.ndimage import gaussian_filter

    return np.clip(np.rint(gaussian_filter(images.astype(float), (0, sigma, sigma, 0))), 0, 255).astype(np.uint8)


def shifted(images: np.ndarray) -> np.ndarray:
    """Moved one pixel to the right; the first column goes dark."""
    out = np.roll(images, 1, axis=2)
    out[:, :, 0] = 0
    return out


def pca_gaussian(images: np.ndarray, labels: np.ndarray, n: int, seed: int, k: int = 20) -> np.ndarray:
    """An honest, blurry generator: per class, a Gaussian in that class's first k principal components."""
    rng = np.random.default_rng(seed)
    classes, out = sorted(set(labels)), []
    for i, c in enumerate(classes):
        x = images[labels == c].reshape((labels == c).sum(), -1).astype(float)
        mu = x.mean(0)
        _, s, vt = np.linalg.svd(x - mu, full_matrices=False)
        m = n // len(classes) + (i < n % len(classes))
        z = rng.normal(size=(m, k)) * (s[:k] / np.sqrt(len(x) - 1))
        out.append(np.clip(np.rint(mu + z @ vt[:k]), 0, 255).astype(np.uint8).reshape(-1, *images.shape[1:]))
    return np.concatenate(out)


def image_split(recipe_name: str, fashion_dir: Path | None = None):
    """A recipe's own training and held-out images (the run's split), and the recipe."""
    import synthforge.data.images as data_images
    from synthforge.engine.modalities.image import SPLIT_SEED_STREAM, split_images
    from synthforge.randomness import derive_seed

    if fashion_dir is not None:
        data_images.FASHION_DIR = fashion_dir  # Debian's package unpacked elsewhere (dpkg -x) reads the same
    recipe = yaml.safe_load((RECIPES / recipe_name).read_text())
    s = recipe["seed"]
    seed = data_images.read_image_seed(s["source"], image_size=s["image_size"], channels=s["channels"],
                                       max_rows=s.get("max_rows"), random_seed=recipe["random_seed"])
    train, hold, _ = split_images(seed, recipe["quality"].get("holdout_fraction", 0.2),
                                  derive_seed(recipe["random_seed"], SPLIT_SEED_STREAM))
    return recipe, train, hold


def planted_images(train, hold, n: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, images, yardstick held-out images): n images per planted set, drawn from the training images; the
    real held-out images never trained on are half the holdout, graded against the other half."""
    x, labels = train.images, train.labels
    pick = x[np.random.default_rng(0).choice(len(x), n, replace=False)]
    order = np.random.default_rng(5).permutation(len(hold))
    yard, fresh = hold.images[order[:len(hold) // 2]], hold.images[order[len(hold) // 2:]]
    h = n // 2
    return [
        ("verbatim training copies", pick, hold.images),
        ("training copies + pixel noise sd 0.10", noisy(pick, 0.10, 1), hold.images),
        ("training copies + pixel noise sd 0.15", noisy(pick, 0.15, 1), hold.images),
        ("training copies + pixel noise sd 0.25", noisy(pick, 0.25, 1), hold.images),
        ("training copies blurred (Gaussian, sigma 0.7 px)", blurred(pick, 0.7), hold.images),
        ("training copies shifted one pixel right", shifted(pick), hold.images),
        ("half copies (noise sd 0.15) + half PCA-Gaussian draws",
         np.concatenate([noisy(pick[:h], 0.15, 2), pca_gaussian(x, labels, n - h, 3)]), hold.images),
        ("per-class PCA-Gaussian draws (honest, blurry)", pca_gaussian(x, labels, n, 4), hold.images),
        ("PCA-Gaussian draws + pixel noise sd 0.15 (honest, noisy)", noisy(pca_gaussian(x, labels, n, 4), 0.15, 6),
         hold.images),
        ("real held-out images never trained on (honest ideal; the other half of the holdout as yardstick)", fresh,
         yard),
        ("held-out images + pixel noise sd 0.15 (honest, noisy)", noisy(fresh, 0.15, 7), yard),
    ]


def images(recipe_name: str = "digits_images.yaml", fashion_dir: Path | None = None) -> None:
    from synthforge.quality.image_copies import image_close_share_metric, nearest_training
    from synthforge.quality.image_metrics import near_copies

    recipe, train, hold = image_split(recipe_name, fashion_dir)
    gate = recipe["quality"]["gates"]["max_image_close_share_excess"]
    flt = recipe["quality"]["filters"]["near_copy_distance"]
    n = min(len(train), recipe["output"]["rows"])
    print(f"\n{recipe['name']}: {len(train)} training, {len(hold)} held-out images; planted sets of {n}; gate "
          f"max_image_close_share_excess {gate}; distance view = the check before issue 32's fix")
    print("| planted | images | distance: share (holdout) | distance excess | lead: share (holdout) | lead excess | "
          "median distance / lead (holdout) | filter < %g drops | gate: distance only | gate: shipped |" % flt)
    print("|---|---|---|---|---|---|---|---|---|---|")
    near = {}
    for name, imgs, yard in planted_images(train, hold, n):
        key = id(yard)
        if key not in near:
            near[key] = nearest_training(yard, train.images)
        ny, ns = near[key], nearest_training(imgs, train.images)
        m = image_close_share_metric(ns, ny)
        d = m.detail
        print(f"| {name} | {len(imgs):,} | {d['synthetic_share']:.1%} ({d['holdout_share']:.1%}) | "
              f"{d['distance_excess']:+.3f} | {d['lead_synthetic_share']:.1%} ({d['lead_holdout_share']:.1%}) | "
              f"{d['lead_excess']:+.3f} | {np.median(ns.distance):.3f} / {np.median(ns.lead):.3f} "
              f"({np.median(ny.distance):.3f} / {np.median(ny.lead):.3f}) | "
              f"{near_copies(imgs, train.images, flt).mean():.0%} | "
              f"{'fails' if d['distance_excess'] > gate else 'passes'} | {'fails' if m.value > gate else 'passes'} |")
    own = image_close_share_metric(near[id(hold.images)], near[id(hold.images)]).detail
    print(f"thresholds from all {len(hold)} held-out images: distance {own['threshold']:.3f} (5th percentile), "
          f"lead {own['lead_threshold']:.3f} (95th percentile)")


def _pool(x: np.ndarray, f: int) -> np.ndarray:
    n, h, w, c = x.shape
    return x[:, :h // f * f, :w // f * f].reshape(n, h // f, f, w // f, f, c).mean((2, 4))


def _two_nearest(query: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean squared distance of each query row to its nearest and second-nearest reference row (float32)."""
    q, r = query.reshape(len(query), -1).astype(np.float32), reference.reshape(len(reference), -1).astype(np.float32)
    r_sq, out = (r * r).sum(1), []
    for start in range(0, len(q), 1024):
        qq = q[start:start + 1024]
        sq = np.maximum((qq * qq).sum(1)[:, None] + r_sq[None, :] - 2 * qq @ r.T, 0)
        out.append(np.sort(np.partition(sq, 1, axis=1)[:, :2], 1))
    two = np.concatenate(out) / q.shape[1]
    return two[:, 0], two[:, 1]


def compare_views(recipe_name: str = "digits_images.yaml", fashion_dir: Path | None = None) -> None:
    """Which view tells noisy copies from real held-out images: the excess over the held-out images' own 5 % under
    each candidate (distance in pixels, in low-pass views, in the training images' first 20 principal components;
    the nearest-to-second-nearest distance ratio, NNDR; the lead sqrt(d2² − d1²) that image_copies.py ships)."""
    from scipy.ndimage import gaussian_filter

    from synthforge.quality.image_copies import CLOSE_QUANTILE

    recipe, train, hold = image_split(recipe_name, fashion_dir)
    t = train.images.astype(np.float32) / 255
    flat = t.reshape(len(t), -1)
    mu = flat.mean(0)
    top = np.linalg.svd(flat - mu, full_matrices=False)[2][:20]
    views = {"pixels": lambda x: x, "pooled 2×2": lambda x: _pool(x, 2), "pooled 4×4": lambda x: _pool(x, 4),
             "blurred sigma 1": lambda x: gaussian_filter(x, (0, 1, 1, 0)),
             "PCA-20": lambda x: (x.reshape(len(x), -1) - mu) @ top.T}
    if t.shape[1] < 16:
        views.pop("pooled 4×4")  # 8×8 digits would be 2×2
    cases = planted_images(train, hold, min(len(train), recipe["output"]["rows"]))
    scores = {}  # (case, column) -> excess
    for view, f in views.items():
        ref = f(t)
        yards = {}
        for name, imgs, yard in cases:
            if id(yard) not in yards:
                yards[id(yard)] = _two_nearest(f(yard.astype(np.float32) / 255), ref)
            (y1, y2), (s1, s2) = yards[id(yard)], _two_nearest(f(imgs.astype(np.float32) / 255), ref)
            thr = np.quantile(y1[y1 > 0], CLOSE_QUANTILE)
            scores[name, f"distance, {view}"] = np.mean(s1 <= thr) - np.mean(y1 <= thr)
            if view == "pixels":
                yr, sr = np.sqrt(y1 / np.maximum(y2, 1e-12)), np.sqrt(s1 / np.maximum(s2, 1e-12))
                thr = np.quantile(yr, CLOSE_QUANTILE)
                scores[name, "NNDR, pixels"] = np.mean(sr <= thr) - np.mean(yr <= thr)
                yl, sl = y2 - y1, s2 - s1
                thr = np.quantile(yl, 1 - CLOSE_QUANTILE)
                scores[name, "lead, pixels (shipped)"] = np.mean(sl >= thr) - np.mean(yl >= thr)
    columns = list(dict.fromkeys(c for _, c in scores))
    print(f"\n{recipe['name']}: excess over the held-out images' own 5 % in each view (gate 0.05)")
    print("| planted | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for name, _, _ in cases:
        print(f"| {name} | " + " | ".join(f"{scores[name, c]:+.3f}" for c in columns) + " |")


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
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fashion-dir", type=Path, default=None,
                        help="Fashion-MNIST's idx files (default: Debian's /usr/share/datasets/fashion-mnist)")
    parser.add_argument("--skip-text", action="store_true")
    parser.add_argument("--views", action="store_true",
                        help="also compare candidate views (low-pass, PCA, NNDR) on the same planted sets")
    args = parser.parse_args()
    grade = (images, compare_views) if args.views else (images,)
    for run in grade:
        run("digits_images.yaml")
    from synthforge.data.images import FASHION_DIR

    if (args.fashion_dir or FASHION_DIR).exists():
        for run in grade:
            run("fashion_images.yaml", args.fashion_dir)
    else:
        print(f"\nfashion_images: {FASHION_DIR} not found (apt-get install -y dataset-fashion-mnist): skipped")
    if not args.skip_text:
        text()
