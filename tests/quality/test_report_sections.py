"""Typed text and image sections: statistics only in report.json, every plot drawn by the HTML renderer."""

import base64
import io
import json
import math
import re

import numpy as np
import pytest
from PIL import Image

from synthforge.quality.html import render_html, render_summary
from synthforge.quality.image_metrics import ImageQuality, image_section
from synthforge.quality.report_model import GateResult, ImageSection, Metric, PixelGrid, Report, TextSection
from synthforge.quality.text_metrics import TextQuality, text_section

EVIL = "<script>alert('x')</script>"


def _metric(name, value, lower=0.0, upper=1.0, better=True, **detail):
    return Metric(name=name, value=value, definition=f"{name} <i>def</i>", lower=lower, upper=upper,
                  higher_is_better=better, computed_on={"features": "pixels", "documents": 10}, detail=detail)


def _text_quality() -> TextQuality:
    metrics = {k: _metric(k, v) for k, v in (("length_ks", 0.12), ("vocabulary_jsd", 0.3), ("distinct_2", 0.6),
                                               ("self_bleu", 0.2), ("memorisation_rate", 0.0),
                                               ("text_utility", 0.9))}
    return TextQuality(
        metrics=metrics, samples={"positive": [f"great {EVIL}"], "negative": ["bad"]},
        lengths={"unit": "words", "edges": [0, 5, 10, 15], "real": [0.2, 0.5, 0.3], "synthetic": [0.3, 0.4, 0.3],
                 "ks": 0.12},
        vocabulary={"jsd": 0.3, "types": {"real": 40, "synthetic": 35}, "novel_word_share": 0.05,
                    "rank_frequency": {"real": [0.2, 0.1, 0.05], "synthetic": [0.25, 0.1, 0.04]}},
        diversity={"real": {"distinct_1": 0.4, "distinct_2": 0.7, "self_bleu": 0.1},
                   "synthetic": {"distinct_1": 0.35, "distinct_2": 0.6, "self_bleu": 0.2}},
        embedding={"model": "all-MiniLM-L6-v2", "centroid_cosine": 0.97,
                   "pca": {"real": [[0.1, 0.2], [0.3, -0.1]], "synthetic": [[0.0, 0.1], [0.2, 0.2]]}},
        memorisation={"ngram": 12, "before": 0.1, "after": 0.0, "longest_run": None},
        utility={"classifier": "MiniLM + LR", "score": "macro-F1", "test_rows": 6,
                 "trtr": {"macro_f1": 0.8, "accuracy": 0.8, "train_rows": 24, "per_class_f1": {"a": 0.8}},
                 "tstr": {"macro_f1": 0.7, "accuracy": 0.7, "train_rows": 12}},
        filters={"sampled": 20, "kept": 12, "requested": 12, "rounds": 1, "tokens": 900, "tokens_per_s": 30.0,
                 "dropped": {"too short": 8}, "masked": {}},
        labels={"real": {"negative": 12, "positive": 12}, "synthetic": {"negative": 6, "positive": 6}},
        notes=["embedding note"])


def _image_quality() -> ImageQuality:
    rng = np.random.default_rng(0)
    pixels = lambda n: [base64.b64encode(rng.integers(0, 256, 8 * 8, dtype=np.uint8).tobytes()).decode()  # noqa: E731
                        for _ in range(n)]
    m = {k: _metric(k, v) for k, v in (("precision", 0.8), ("recall", 0.7), ("density", 0.9), ("coverage", 0.6),
                                       ("near_copy_share", 0.0), ("nearest_train_distance", 0.3))}
    return ImageQuality(
        frechet_distance=_metric("frechet_distance", 3.5, upper=math.inf, better=False),
        frechet_distance_real=_metric("frechet_distance_real", 1.0, upper=math.inf, better=None),
        kid=_metric("kid", 0.01, lower=-math.inf, upper=math.inf, better=False, std=0.001),
        conditional_accuracy=_metric("conditional_accuracy", 0.95),
        utility=_metric("utility", 0.97, upper=math.inf, tstr={"accuracy": 0.9}, trtr={"accuracy": 0.93}),
        **m, per_class=[{"class": "0", "synthetic": 2, "conditional_accuracy": 1.0}],
        closest_pairs=[{"synthetic": "a.png", "label": "0", "rms_distance": 0.2512},
                       {"synthetic": "b.png", "label": "1", "rms_distance": 0.3}],
        samples=PixelGrid(height=8, width=8, channels=1, row_labels=["0", EVIL], rows=[pixels(3), pixels(2)]),
        nearest=PixelGrid(height=8, width=8, channels=1, row_labels=["synthetic", "training"],
                          rows=[pixels(2), pixels(2)]),
        memorisation="nearest training image, RMS pixels: synthetic median 0.300", notes=["image note"])


TRAINING = {"steps": 30, "seconds": 1.5, "clock": "wall", "stopped_by": "max_steps", "images_seen": 480,
            "final_loss": 0.08, "resumed_from_step": None, "parameters": 12345, "precision": "fp32",
            "device": "cpu", "train_images": 40, "base_model": None, "model": {"width": 32},
            "sampling": {"steps": 3}, "losses": [[1, 1.0], [10, 0.5], [20, 0.2], [30, 0.08]],
            "base_notes": ["not a field: ignored"]}


@pytest.fixture(scope="module")
def report() -> Report:
    text = text_section(_text_quality(), {"name": "tiny-gpt", "fit": {"train_docs": 24, "seconds": 3.25},
                                          "history": [{"epoch": 1, "train_loss": 3.0, "val_loss": 3.2},
                                                      {"epoch": 2, "train_loss": 2.5, "val_loss": 2.9}],
                                          "sampling": {"temperature": 0.9}})
    image = image_section(_image_quality(), TRAINING)
    gates = [GateResult(gate="min_conditional_accuracy", metric="conditional_accuracy", threshold=0.99, value=0.95,
                        passed=False)]
    return Report(title=f"typed {EVIL}", created="now", status="failed", gates=gates, text=text, image=image,
                  validation={"images_written": 16}, notes=["a note"], run={"recipe": "r"})


def test_builders_and_json_shape(report):
    assert isinstance(report.text, TextSection) and isinstance(report.image, ImageSection)
    assert report.text.model.name == "tiny-gpt" and report.text.model.history[1]["train_loss"] == 2.5
    training = report.image.training
    assert training.losses == [1.0, 0.5, 0.2, 0.08] and training.loss_steps == [1, 10, 20, 30]
    assert report.image.summary["frechet_distance"] == 3.5
    assert set(report.metrics()) >= {"length_ks", "text_utility", "frechet_distance", "conditional_accuracy"}
    assert report.summary().set_index("metric").loc["conditional_accuracy", "passed"] == False  # noqa: E712
    data = report.model_dump(mode="json")
    text = json.dumps(data)
    assert "data:image" not in text and "Infinity" not in text  # statistics only, valid JSON
    assert "sections" not in data
    assert data["text"]["utility"]["trtr"]["train_rows"] == 24 and data["text"]["model"]["fit"]["train_docs"] == 24
    img = data["image"]
    assert img["metrics"]["frechet_distance"]["upper"] is None and img["metrics"]["kid"]["lower"] is None
    assert img["training"]["steps"] == 30 and img["samples"]["rows"][0][0][:1] == report.image.samples.rows[0][0][:1]
    assert set(img) >= {"summary", "metrics", "per_class", "closest_pairs", "memorisation", "samples", "nearest",
                        "training", "notes"}
    back = Report.model_validate_json(json.dumps(data))
    assert back.image.metrics["kid"].lower == -math.inf and back.image.metrics["frechet_distance"].upper == math.inf
    assert back == report


def test_losses_as_floats_and_no_training():
    plain = image_section(_image_quality(), {"steps": 3, "losses": [0.5, 0.25]})
    assert plain.training.losses == [0.5, 0.25] and plain.training.loss_steps == []
    assert image_section(_image_quality(), None).training is None
    assert text_section(_text_quality(), {}).model.name is None


def test_old_sections_argument_is_refused():
    with pytest.raises(ValueError):
        Report(title="t", created="now", status="no_gates", sections={"text": {}})


def test_html_draws_every_plot_from_the_statistics(report):
    html = render_html(report)
    assert EVIL not in html and "&lt;script&gt;" in html
    for section in ("summary", "failed-gates", "images", "training", "text", "validation", "notes", "run"):
        assert f'id="{section}"' in html
    assert "sample grid (one row per class)" in html and "closest synthetic–training pairs" in html
    assert "Samples per label" in html and "Model: tiny-gpt" in html and "Feature space" in html
    uris = re.findall(r'<img class="plot" alt="[^"]*" src="(data:image/png;base64,[^"]+)"', html)
    # text: lengths, ranks, embeddings, training; images: grid, pairs; training: loss curve
    assert len(uris) == 4 + 2 + 1
    for uri in uris:
        with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as im:
            assert im.format == "PNG" and im.size[0] > 50 and im.size[1] > 50
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    summary = render_summary(report)
    assert 'id="summary"' in summary and "<style>" in summary and report._repr_html_() == summary


def test_template_is_package_data():
    from importlib import resources

    folder = resources.files("synthforge.quality").joinpath("templates")
    assert {"report.html.j2", "summary.html.j2", "report.css"} <= {p.name for p in folder.iterdir()}
    html = render_html(Report(title="empty", created="now", status="no_gates"))
    assert "<style>" in html and ".badge" in html and 'id="images"' not in html and 'id="text"' not in html
