"""Image metrics on known cases: identical sets, shifted sets, nearest neighbours, near-copies."""

import base64

import numpy as np
import pytest

from synthforge.quality.image_metrics import frechet_distance, kid, near_copies, nearest_rms, prdc


@pytest.fixture()
def feats():
    rng = np.random.default_rng(0)
    return rng.normal(size=(400, 8)), rng.normal(size=(400, 8))


def test_frechet_distance(feats):
    a, b = feats
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    assert frechet_distance(a, b) < 0.5
    # a mean shift of 3 in every one of 8 dimensions adds 8 * 9 = 72
    assert frechet_distance(a, a + 3) == pytest.approx(72, rel=1e-6)


def test_kid_near_zero_for_same_distribution(feats):
    a, b = feats
    same, _ = kid(a, b, seed=0, subsets=10, subset_size=200)
    shifted, _ = kid(a, b + 1, seed=0, subsets=10, subset_size=200)
    assert abs(same) < 0.05 < shifted


def test_prdc_identical_and_disjoint(feats):
    a, b = feats
    same = prdc(a, a)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    far = prdc(a, b + 100)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    half = prdc(a, np.concatenate([b[:200], b[:200] + 100]))
    assert 0.3 < half["precision"] < 0.7


def test_nearest_rms_and_near_copies():
    train = np.zeros((3, 4, 4, 1), np.uint8)
    train[1] += 255
    train[2, :2] = 255
    query = train[[2, 1]].copy()
    query[0, 0, 0, 0] = 0  # one pixel of 16 off by 1.0: RMS = sqrt(1/16) = 0.25
    dist, idx = nearest_rms(query, train)
    assert idx.tolist() == [2, 1] and dist == pytest.approx([0.25, 0.0])
    assert near_copies(query, train, 0.1).tolist() == [False, True]
    assert near_copies(query[:0], train, 0.1).shape == (0,)


def test_a_generator_that_copies_training_images_fails_the_near_copy_gate():
    """The planted leak for images: half the sampled images were training copies (dropped by the engine, counted);
    the gate reads that share against the real holdout's own, which is ~0 for honest images."""
    from synthforge.data.images import ImageSet
    from synthforge.quality.gates import check_gates
    from synthforge.quality.image_metrics import evaluate_images

    rng = np.random.default_rng(0)
    train, holdout, synthetic = (ImageSet(rng.integers(0, 256, (40, 8, 8, 1), dtype=np.uint8)) for _ in range(3))
    gate = {"max_near_copy_share": 0.05}
    honest = evaluate_images(train, holdout, synthetic, random_seed=0, near_copy_distance=0.05,
                             near_copies_dropped=0, sampled=40)
    leaky = evaluate_images(train, holdout, synthetic, random_seed=0, near_copy_distance=0.05,
                            near_copies_dropped=40, sampled=80)
    assert honest.near_copy_share.detail["holdout_share"] == 0.0
    assert check_gates(honest.metrics(), gate)[0].passed
    assert not check_gates(leaky.metrics(), gate)[0].passed and leaky.near_copy_share.value == 0.5


def test_image_section_holds_pixels_not_plots_and_the_page_draws_them(monkeypatch):
    """The report's image section: statistics and small uint8 pixel grids in report.json; the HTML draws them."""
    import json

    from synthforge.data.images import ImageSet
    from synthforge.quality import image_metrics
    from synthforge.quality.html import render_html
    from synthforge.quality.image_metrics import evaluate_images, image_section
    from synthforge.quality.report_model import Report

    monkeypatch.setattr(image_metrics, "cnn_steps", lambda n, size: 3)  # the numbers do not matter here, only shapes

    rng = np.random.default_rng(1)
    labels = np.array(["a", "b"] * 10)
    train, holdout, synthetic = (ImageSet(rng.integers(0, 256, (20, 8, 8, 1), dtype=np.uint8), labels=labels)
                                 for _ in range(3))
    quality = evaluate_images(train, holdout, synthetic, random_seed=0, near_copy_distance=0.05, sampled=20)
    assert quality.samples.row_labels == ["a", "b"] and len(quality.samples.rows[0]) == 10
    assert len(base64.b64decode(quality.samples.rows[0][0])) == 8 * 8 and quality.nearest.row_labels == ["synthetic", "training"]
    assert len(quality.nearest.rows[0]) == len(quality.closest_pairs) == 12
    section = image_section(quality, {"steps": 6, "seconds": 0.5, "losses": [[1, 0.9], [6, 0.4]],
                                      "model": {"width": 8}, "sampling": {"steps": 3}})
    report = Report(title="images", created="now", status="no_gates", image=section)
    data = json.loads(json.dumps(report.model_dump(mode="json")))
    assert data["image"]["summary"]["conditional_accuracy"] is not None
    assert data["image"]["training"]["losses"] == [0.9, 0.4] and data["image"]["training"]["loss_steps"] == [1, 6]
    assert "data:image" not in json.dumps(data) and Report.model_validate(data) == report
    html = render_html(report)
    assert html.count("data:image/png;base64,") == 3 and 'id="training"' in html


def test_image_tstr_trains_on_as_many_synthetic_images_as_real_ones_and_the_gain_holds_the_holdout(monkeypatch):
    """50 synthetic images against 20 real: TSTR trains the CNN on draws of 20 (the gain's own draws), not on all 50;
    12 synthetic images are used whole and the report says so. The gain's interval is the bootstrap of the draws and
    the held-out images, with the draws-only t-interval beside it."""
    from synthforge.data.images import ImageSet
    from synthforge.quality import image_metrics
    from synthforge.quality.image_metrics import IMAGE_RUNS, evaluate_images

    monkeypatch.setattr(image_metrics, "cnn_steps", lambda n, size: 3)  # the sizes matter here, not the accuracy
    rng = np.random.default_rng(2)
    sets = {n: ImageSet(rng.integers(0, 256, (n, 8, 8, 1), dtype=np.uint8), labels=np.array(["a", "b"] * (n // 2)))
            for n in (20, 50)}
    train, holdout = sets[20], ImageSet(rng.integers(0, 256, (20, 8, 8, 1), dtype=np.uint8), labels=sets[20].labels)
    q = evaluate_images(train, holdout, sets[50], random_seed=0, near_copy_distance=0.05, sampled=50)
    on, tstr = q.utility.computed_on, q.utility.detail["tstr"]
    assert on["train_synthetic"] == on["train_real"] == 20 and on["synthetic_available"] == 50 and on["size_matched"]
    assert on["draws"] == tstr["draws"] == len(tstr["accuracy_draws"]) == IMAGE_RUNS
    assert tstr["accuracy"] == pytest.approx(np.mean(tstr["accuracy_draws"]))
    assert q.utility.value == pytest.approx(tstr["accuracy"] / q.utility.detail["trtr"]["accuracy"])
    gain = q.augmentation_gain.detail
    assert len(gain["runs"]) == IMAGE_RUNS and gain["synthetic_per_run"] == 20 and "20 holdout rows" in gain["interval"]
    assert gain["ci95"][0] <= q.augmentation_gain.value <= gain["ci95"][1]
    assert q.augmentation_gain_lower.value == gain["ci95"][0] and q.augmentation_gain_lower.detail["ci95_draws"]
    small = ImageSet(sets[50].images[:12], labels=sets[50].labels[:12])
    q = evaluate_images(train, holdout, small, random_seed=0, near_copy_distance=0.05, sampled=12)
    tstr = q.utility.detail["tstr"]
    assert q.utility.computed_on["train_synthetic"] == 12 and not q.utility.computed_on["size_matched"]
    assert "all of them used" in tstr["note"] and "draws" not in tstr
