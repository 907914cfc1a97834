"""Render a Report as one self-contained HTML page (inline CSS, PNG plots as data: URIs).

Everything shown comes from the Report model: its sections hold statistics only and every plot is drawn here from
them; nothing is recomputed from data. The page's template and style are package data (templates/). All user
strings go through Jinja2 autoescaping.
"""

from __future__ import annotations

import base64
import io
import math
from functools import cache
from html import escape
from importlib import resources

import jinja2
from markupsafe import Markup
import numpy as np
import matplotlib.dates as mdates
from matplotlib.figure import Figure

from .report_model import ImageSection, ImageTraining, Metric, PixelGrid, Report, TextSection

MAX_COLUMN_PLOTS = 30
MAX_HEATMAP_COLUMNS = 30
REAL, SYNTH, HOLD = "#1f5fa8", "#e07b24", "#3c9a5f"

HEADLINE = [  # (metric key, label, format)
    ("overall", "Overall quality", "{:.3f}"),
    ("column_shapes", "Column shapes", "{:.3f}"),
    ("pair_trends", "Pair trends", "{:.3f}"),
    ("detection_auc", "Detection AUC", "{:.3f}"),
    ("exact_copy_share", "Exact copies", "{:.2%}"),
    ("dcr_share", "DCR share", "{:.3f}"),
    ("nndr", "NNDR (median)", "{:.3f}"),
    ("near_copy_excess", "Near copies, excess", "{:+.2%}"),
    ("mia_auc", "Membership-inference AUC", "{:.3f}"),
    ("utility", "Utility TSTR/TRTR", "{:.3f}"),
    ("augmentation_gain", "Augmentation gain", "{:+.3f}"),
]


# ---------------------------------------------------------------- plots


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _short(text: str, n: int = 18) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def column_plot(name: str, score: float | None, plot: dict) -> str | None:
    kind = plot.get("type")
    if kind not in ("hist", "bar"):
        return None
    fig = Figure(figsize=(3.6, 2.4))
    ax = fig.subplots()
    title = f"{_short(name, 28)}  ({score:.3f})" if score is not None else _short(name, 28)
    ax.set_title(title, fontsize=9)
    if kind == "hist":
        edges = np.asarray(plot["edges"], dtype="float64")
        if plot.get("datetime"):
            edges = mdates.date2num(edges.astype("int64").astype("datetime64[ns]"))
            ax.xaxis_date()
        ax.stairs(plot["real"], edges, fill=True, alpha=0.45, color=REAL, label="real")
        ax.stairs(plot["synthetic"], edges, color=SYNTH, linewidth=1.6, label="synthetic")
        ax.set_ylabel("share", fontsize=8)
    else:
        labels = [_short(x) for x in plot["labels"]]
        pos = np.arange(len(labels))
        ax.barh(pos - 0.2, plot["real"], height=0.4, color=REAL, label="real")
        ax.barh(pos + 0.2, plot["synthetic"], height=0.4, color=SYNTH, label="synthetic")
        ax.set_yticks(pos, labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("share", fontsize=8)
    ax.tick_params(labelsize=7)
    for label in ax.get_xticklabels():
        label.set_rotation(30)
        label.set_horizontalalignment("right")
    ax.legend(fontsize=7, frameon=False)
    return _png(fig)


def _heatmap(matrix: np.ndarray, labels: list[str], title: str, cmap: str,
             vmin: float, vmax: float, cbar: str) -> str:
    size = min(9.0, 2.5 + 0.28 * len(labels))
    fig = Figure(figsize=(size + 1.2, size))
    ax = fig.subplots()
    masked = np.ma.masked_invalid(matrix)
    image = ax.imshow(masked, cmap=cmap, vmin=vmin, vmax=vmax)
    ticks = np.arange(len(labels))
    short = [_short(x, 14) for x in labels]
    ax.set_xticks(ticks, short, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(ticks, short, fontsize=7)
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, shrink=0.8, label=cbar)
    return _png(fig)


def pair_heatmap(pairs: list[dict], columns: list[str]) -> str | None:
    """Pair similarity (all pairs, also those below the relation threshold), worst columns first."""
    if len(columns) < 2 or not pairs:
        return None
    worst: dict[str, list[float]] = {c: [] for c in columns}
    for p in pairs:
        if p.get("score_all") is not None:
            worst[p["a"]].append(p["score_all"])
            worst[p["b"]].append(p["score_all"])
    keep = sorted(columns, key=lambda c: min(worst[c], default=1.0))[:MAX_HEATMAP_COLUMNS]
    keep = [c for c in columns if c in set(keep)]
    idx = {c: i for i, c in enumerate(keep)}
    m = np.full((len(keep), len(keep)), np.nan)
    np.fill_diagonal(m, 1.0)
    for p in pairs:
        if p["a"] in idx and p["b"] in idx and p.get("score_all") is not None:
            m[idx[p["a"]], idx[p["b"]]] = m[idx[p["b"]], idx[p["a"]]] = p["score_all"]
    return _heatmap(m, keep, "Pair similarity (1 = same relation)", "RdYlGn", 0.0, 1.0, "score")


def correlation_diff_heatmap(corr: dict) -> str | None:
    cols = corr.get("columns") or []
    if len(cols) < 2:
        return None
    real = np.array(corr["real"], dtype="float64")
    synth = np.array(corr["synthetic"], dtype="float64")
    diff = real - synth
    keep = np.argsort(-np.nan_to_num(np.abs(diff)).max(axis=1), kind="stable")[:MAX_HEATMAP_COLUMNS]
    keep = np.sort(keep)
    return _heatmap(diff[np.ix_(keep, keep)], [cols[i] for i in keep],
                    "Correlation difference (real − synthetic)", "RdBu_r", -1.0, 1.0, "Δ Pearson r")


def dcr_plot(hist: dict) -> str | None:
    if not hist or not hist.get("edges"):
        return None
    fig = Figure(figsize=(5.2, 2.8))
    ax = fig.subplots()
    edges = np.asarray(hist["edges"])
    ax.stairs(hist["train"], edges, fill=True, alpha=0.45, color=REAL,
              label="to closest training row")
    if "holdout" in hist:
        ax.stairs(hist["holdout"], edges, color=HOLD, linewidth=1.8,
                  label="to closest holdout row")
    ax.set_xlabel("distance (normalised encoding)", fontsize=8)
    ax.set_ylabel("synthetic rows", fontsize=8)
    ax.set_title("Distance to closest record (DCR)", fontsize=10)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, frameon=False)
    return _png(fig)


def utility_plot(metric: Metric) -> str | None:
    tstr, trtr = metric.detail.get("tstr"), metric.detail.get("trtr")
    if not tstr or not trtr:
        return None
    fig = Figure(figsize=(4.0, 2.2))
    ax = fig.subplots()
    ax.barh([1, 0], [trtr["score"], tstr["score"]], color=[REAL, SYNTH])
    ax.set_yticks([1, 0], ["train real", "train synthetic"], fontsize=8)
    ax.set_xlabel(f"{metric.detail.get('score', 'score')} on real test rows", fontsize=8)
    ax.set_xlim(min(0.0, tstr["score"], trtr["score"]), 1.0)
    ax.tick_params(labelsize=7)
    return _png(fig)


# ---------------------------------------------------------------- text section (text_metrics.TextQuality)


def text_length_plot(lengths: dict) -> str | None:
    if not lengths.get("edges"):
        return None
    fig = Figure(figsize=(4.6, 2.6))
    ax = fig.subplots()
    edges = np.asarray(lengths["edges"])
    ax.stairs(lengths["real"], edges, fill=True, alpha=0.45, color=REAL, label="real")
    ax.stairs(lengths["synthetic"], edges, color=SYNTH, linewidth=1.6, label="synthetic")
    ax.set_xlabel(f"document length ({lengths.get('unit', 'words')})", fontsize=8)
    ax.set_ylabel("share", fontsize=8)
    ax.set_title(f"Lengths (KS {lengths.get('ks', float('nan')):.3f})", fontsize=10)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, frameon=False)
    return _png(fig)


def text_rank_plot(vocab: dict) -> str | None:
    rf = vocab.get("rank_frequency") or {}
    if not rf.get("real") or not rf.get("synthetic"):
        return None
    fig = Figure(figsize=(4.2, 2.6))
    ax = fig.subplots()
    for who, color in (("real", REAL), ("synthetic", SYNTH)):
        ax.loglog(np.arange(1, len(rf[who]) + 1), rf[who], color=color, label=who)
    ax.set_xlabel("word rank", fontsize=8)
    ax.set_ylabel("frequency", fontsize=8)
    ax.set_title(f"Vocabulary (JSD {vocab.get('jsd') or float('nan'):.3f})", fontsize=10)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, frameon=False)
    return _png(fig)


def text_embedding_plot(emb: dict) -> str | None:
    pca = emb.get("pca") or {}
    if not pca.get("real") or not pca.get("synthetic"):
        return None
    fig = Figure(figsize=(3.6, 3.0))
    ax = fig.subplots()
    for who, color in (("real", REAL), ("synthetic", SYNTH)):
        xy = np.asarray(pca[who])
        ax.scatter(xy[:, 0], xy[:, 1], s=6, alpha=0.5, color=color, label=who)
    ax.set_title("MiniLM embeddings (PCA of real)", fontsize=10)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, frameon=False)
    return _png(fig)


def text_loss_plot(history: list[dict]) -> str | None:
    if not history:
        return None
    fig = Figure(figsize=(4.0, 2.6))
    ax = fig.subplots()
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["train_loss"] for h in history], color=REAL, marker=".", label="train")
    if any(h.get("val_loss") is not None for h in history):
        ax.plot(epochs, [h.get("val_loss") for h in history], color=SYNTH, marker=".", label="validation")
    ax.set_xlabel("epoch", fontsize=8)
    ax.set_ylabel("loss per token", fontsize=8)
    ax.set_title("Training", fontsize=10)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, frameon=False)
    return _png(fig)


TEXT_HEADLINE = [  # (metric key, label, format)
    ("text_utility", "Utility TSTR/TRTR", "{:.3f}"),
    ("augmentation_gain", "Augmentation gain (F1)", "{:+.3f}"),
    ("memorisation_rate", "Memorised (output)", "{:.2%}"),
    ("memorisation_rate_raw", "Memorised (before filters)", "{:.2%}"),
    ("distinct_2", "Distinct-2", "{:.3f}"),
    ("self_bleu", "Self-BLEU", "{:.3f}"),
    ("embedding_similarity", "Embedding centroid cos", "{:.3f}"),
    ("embedding_auc", "Embedding detection AUC", "{:.3f}"),
    ("perplexity_ratio", "Perplexity synthetic/real", "{:.2f}"),
    ("nonword_excess", "Non-word excess (points)", "{:+.2f}"),
]


def _reading_rows(reading: dict) -> list[dict]:
    real, synth = reading.get("real_holdout") or {}, reading.get("synthetic") or {}
    return [{"label": c, "real": ", ".join(f"{p} {v:.2f}" for p, v in real.get(c, {}).items()),
             "synthetic": ", ".join(f"{p} {v:.2f}" for p, v in synth[c].items())} for c in synth]


def _text_view(section: TextSection, failing: set[str]) -> dict:
    metrics, util, div = section.metrics, section.utility, section.diversity
    return {
        "cards": [{"label": label, "value": _fmt(metrics[k].value, fmt), "failing": k in failing}
                  for k, label, fmt in TEXT_HEADLINE if k in metrics],
        "utility": [{"name": name, "rows": util[key].get("train_rows"), "f1": _fmt(util[key].get("macro_f1")),
                     "acc": _fmt(util[key].get("accuracy")),
                     "per_class": ", ".join(f"{c} {v:.2f}" for c, v in (util[key].get("per_class_f1") or {}).items())}
                    for key, name in (("trtr", "train real (TRTR)"), ("tstr", "train synthetic (TSTR)"),
                                      ("tstr_drafts", "train unfiltered drafts (TSTR before the filters)"),
                                      ("augmented", "train real + synthetic")) if key in util],
        "uplift": util.get("uplift"),
        "reading": _reading_rows(util.get("label_reading") or {}),
        "utility_meta": util,
        "diversity": [{"name": k, "real": _fmt((div.get("real") or {}).get(k)),
                       "synthetic": _fmt((div.get("synthetic") or {}).get(k))}
                      for k in ("distinct_1", "distinct_2", "self_bleu")],
        "filters": section.filters,
        "memorisation": section.memorisation,
        "samples": section.samples,
        "labels": section.labels,
        "fluency": section.fluency,
        "model": section.model.model_dump() if section.model.name or section.model.fit else {},
        "vocab": section.vocabulary,
        "embedding": {k: _fmt(v) for k, v in section.embedding.items() if k != "pca"},
        "metric_rows": _metric_rows(list(metrics.values())),
        "plots": [p for p in (text_length_plot(section.lengths), text_rank_plot(section.vocabulary),
                              text_embedding_plot(section.embedding), text_loss_plot(section.model.history)) if p],
    }


# ---------------------------------------------------------------- image section (image_metrics.ImageQuality)


IMAGE_HEADLINE = [  # (metric key, label, format)
    ("conditional_accuracy", "Conditional accuracy", "{:.3f}"),
    ("utility", "Utility TSTR/TRTR", "{:.3f}"),
    ("augmentation_gain", "Augmentation gain (acc.)", "{:+.3f}"),
    ("frechet_distance", "Fréchet distance", "{:.2f}"),
    ("precision", "Precision", "{:.3f}"),
    ("recall", "Recall", "{:.3f}"),
    ("density", "Density", "{:.3f}"),
    ("coverage", "Coverage", "{:.3f}"),
    ("near_copy_share", "Near-copies dropped", "{:.2%}"),
    ("image_close_share_excess", "Close to training, over held-out", "{:+.2%}"),
]


def pixel_grid_plot(grid: PixelGrid, column_labels: list[str] | None = None) -> str | None:
    """Small uint8 images laid out in rows (upscaled to about 48 px, 2 px gaps), rows labelled on the left and
    columns, if given, below."""
    if not grid.rows or not grid.height:
        return None
    h, w, c = grid.height, grid.width, grid.channels
    scale, gap, cols = max(1, 48 // h), 2, max(len(r) for r in grid.rows)
    out = np.full((len(grid.rows) * (h * scale + gap) + gap, cols * (w * scale + gap) + gap, 3), 255, np.uint8)
    for r, images in enumerate(grid.rows):
        for k, pixels in enumerate(images):
            im = np.frombuffer(base64.b64decode(pixels), dtype=np.uint8).reshape(h, w, c)
            big = np.kron(im, np.ones((scale, scale, 1), np.uint8))
            y0, x0 = gap + r * (h * scale + gap), gap + k * (w * scale + gap)
            out[y0:y0 + h * scale, x0:x0 + w * scale] = big[..., :3]  # grey broadcasts to RGB
    fig = Figure(figsize=(out.shape[1] / 80 + (0.6 if column_labels else 1.2),
                          out.shape[0] / 80 + (0.5 if column_labels else 0.3)))
    ax = fig.subplots()
    ax.imshow(out, interpolation="nearest")
    step = h * scale + gap
    ax.set_yticks([gap + i * step + step / 2 - 1 for i in range(len(grid.rows))],
                  [str(n)[:16] for n in grid.row_labels[:len(grid.rows)]], fontsize=8)
    ax.set_xticks([gap + i * (w * scale + gap) + step / 2 - 1 for i in range(len(column_labels or []))],
                  column_labels or [], fontsize=7)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return _png(fig)


def image_loss_plot(training: ImageTraining) -> str | None:
    """Training loss (smoothed, log scale) against step."""
    if not training.losses:
        return None
    steps = training.loss_steps if len(training.loss_steps) == len(training.losses) else \
        list(range(1, len(training.losses) + 1))
    fig = Figure(figsize=(4.2, 2.2))
    ax = fig.subplots()
    ax.plot(steps, training.losses, color=REAL, linewidth=1.4)
    ax.set_yscale("log")
    ax.set_xlabel("step", fontsize=8)
    ax.set_ylabel("loss (smoothed)", fontsize=8)
    ax.tick_params(labelsize=7)
    return _png(fig)


def _image_view(section: ImageSection, failing: set[str]) -> dict:
    metrics = section.metrics
    util = metrics["utility"].detail if "utility" in metrics else {}
    pair_labels = [_fmt(p.get("rms_distance")) for p in section.closest_pairs]
    figures = [("sample grid (one row per class)", pixel_grid_plot(section.samples)),
               ("closest synthetic–training pairs (top: synthetic, bottom: its nearest training image; "
                "RMS pixel distance below)", pixel_grid_plot(section.nearest, pair_labels))]
    return {
        "cards": [{"label": label, "value": _fmt(metrics[k].value, fmt), "failing": k in failing}
                  for k, label, fmt in IMAGE_HEADLINE if k in metrics],
        "figures": [(name, uri) for name, uri in figures if uri],
        "tstr": _fmt((util.get("tstr") or {}).get("accuracy")), "trtr": _fmt((util.get("trtr") or {}).get("accuracy")),
        "per_class": _generic(section.per_class),
        "pairs": _generic(section.closest_pairs),
        "memorisation": section.memorisation,
        "metric_rows": [{"name": k, "value": _fmt(m.value, "{:.4g}"),
                         "better": {True: "higher", False: "lower", None: "see definition"}[m.higher_is_better],
                         "features": m.computed_on.get("features", ""), "definition": m.definition,
                         "computed_on": ", ".join(f"{a}={_fmt(b, '{:g}')}" for a, b in m.computed_on.items()
                                                  if a != "features")}
                        for k, m in metrics.items()],
    }


def _training_view(training: ImageTraining) -> dict:
    table = training.model_dump(exclude={"losses", "loss_steps", "model", "sampling"})
    table |= {"model": training.model, "sampling": training.sampling}
    return {"table": _generic(table), "loss_plot": image_loss_plot(training)}


# ---------------------------------------------------------------- view model


def _fmt(value, pattern: str = "{:.3f}") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return pattern.format(value)
    return str(value)


def _fidelity_view(tab) -> dict:
    columns = tab.column_shapes.detail.get("columns", {})
    ordered = sorted(columns.items(), key=lambda kv: (kv[1]["score"] is None, kv[1]["score"] or 0))
    plots = []
    for name, col in ordered[:MAX_COLUMN_PLOTS]:
        uri = column_plot(name, col["score"], col.get("plot", {}))
        if uri:
            plots.append({"column": name, "uri": uri})
    pairs = tab.pair_trends.detail.get("pairs", [])
    worst_pairs = sorted([p for p in pairs if p.get("contributes")], key=lambda p: p["score"])[:15]
    return {
        "columns": [{"name": n, "kind": c["kind"], "metric": c["metric"], "score": _fmt(c["score"])}
                    for n, c in ordered],
        "plots": plots,
        "capped": len(ordered) > MAX_COLUMN_PLOTS,
        "n_columns": len(ordered),
        "pair_heatmap": pair_heatmap(pairs, list(columns)),
        "corr_heatmap": correlation_diff_heatmap(tab.pair_trends.detail.get("correlation", {})),
        "worst_pairs": [{"a": p["a"], "b": p["b"], "metric": p["metric"], "score": _fmt(p["score"])}
                        for p in worst_pairs],
        "n_pairs": len(pairs),
        "n_contributing": sum(1 for p in pairs if p.get("contributes")),
    }


def _real_reference(m: Metric) -> str:
    """A figure graded against the holdout shows what real training rows score on it (fidelity.py, detection.py)."""
    ref = m.detail.get("real_reference", "absent")
    return "" if ref == "absent" else f" (real training rows: {_fmt(ref)})"


def _metric_rows(metrics: list[Metric]) -> list[dict]:
    return [{"name": m.name, "value": _fmt(m.value) + _real_reference(m), "definition": m.definition,
             "range": f"{_fmt(m.lower, '{:g}')}–{_fmt(m.upper, '{:g}')}",
             "better": {True: "higher", False: "lower", None: "see definition"}[m.higher_is_better],
             "computed_on": ", ".join(f"{k}={_fmt(v, '{:g}')}" for k, v in m.computed_on.items())}
            for m in metrics]


def _relational_view(section) -> dict:
    """Per table: rows and its worst numbers; per link: keys, children per parent, order and gaps of events."""
    tables = [{"name": name, **{k: f"{n:,}" for k, n in section.rows.get(name, {}).items()},
               "overall": _fmt(q.overall.value), "detection": _fmt(q.detection_auc.value),
               "dcr": _fmt(q.dcr_share.value)} for name, q in section.tables.items()]
    links = []
    for r in section.relationships:
        seq = r.get("sequence") or {}
        cpp = r["children_per_parent"]
        links.append({"link": f"{r['parent']} → {r['child']} ({r['foreign_key']})", "fk": _fmt(r["fk_resolved"]),
                      "ks": _fmt(r["children_per_parent_ks_complement"]),
                      "children": f"{cpp['real_mean']:.2f} / {cpp['synthetic_mean']:.2f}",
                      "order": f"{_fmt(r['order_holds'])} (real {_fmt(r['order_holds_real'])})"
                               if "order_holds" in r else "–",
                      "gaps": _fmt(seq.get("gap_ks_complement")), "lag1": _fmt(seq.get("lag1_max_difference"))})
    trends = section.metrics["parent_child_trends"].detail["per_table"] if section.joined else {}
    joined = [{"name": name, "columns": len(q.compared), "overall": _fmt(q.overall.value),
               "trends": _fmt(trends.get(name)),
               "detection": _fmt(q.detection_auc.value), "dcr": _fmt(q.dcr_share.value),
               "utility": _fmt(q.utility.value) if q.utility else "–",
               "gain": (f"{_fmt(q.augmentation_gain.value)} [{_fmt(q.augmentation_gain.detail['ci95'][0])}, "
                        f"{_fmt(q.augmentation_gain.detail['ci95'][1])}]")
               if q.augmentation_gain and q.augmentation_gain.value is not None else "–"}
              for name, q in section.joined.items()]
    return {"metric_rows": _metric_rows(list(section.metrics.values())), "tables": tables, "links": links,
            "joined": joined}


def _generic(value):
    """Section values: image data URIs become plots, dict/list become tables, rest text."""
    if isinstance(value, str) and value.startswith("data:image/"):
        return {"type": "image", "uri": value}
    if isinstance(value, dict):
        return {"type": "dict", "rows": [(str(k), _generic(v)) for k, v in value.items()]}
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        keys = list(dict.fromkeys(k for v in value for k in v))
        return {"type": "table", "keys": keys,
                "rows": [[_fmt(v.get(k)) for k in keys] for v in value]}
    if isinstance(value, list):
        return {"type": "text", "text": ", ".join(_fmt(v) for v in value)}
    return {"type": "text", "text": _fmt(value, "{:.4g}")}


def _summary_view(report: Report) -> dict:
    """What the summary section needs (cheap: no plots)."""
    metrics = report.tabular.metrics() if report.tabular else {}
    failing = {g.metric for g in report.gates if not g.passed}
    headline = [{"label": label, "value": _fmt(metrics[key].value, fmt), "key": key, "failing": key in failing}
                for key, label, fmt in HEADLINE if key in metrics]
    return {"report": report, "headline": headline,
            "gates": [{"gate": g.gate, "metric": g.metric, "threshold": _fmt(g.threshold, "{:g}"),
                       "value": _fmt(g.value, "{:.4g}"), "passed": g.passed}
                      for g in report.gates],
            "n_failed": sum(1 for g in report.gates if not g.passed)}


def build_view(report: Report) -> dict:
    tab = report.tabular
    metrics = tab.metrics() if tab else {}
    failing = {g.metric for g in report.gates if not g.passed}
    view = {**_summary_view(report),
            "notes": list(report.notes) + (list(tab.notes) if tab else []),
            "selection_keys": list(dict.fromkeys(k for row in report.selection for k in row)),
            "selection": [{k: _fmt(v, "{:.4g}") for k, v in row.items()} | {"_chosen": bool(row.get("chosen"))}
                          for row in report.selection],
            "validation": _generic(report.validation) if report.validation else None,
            "run": _generic(report.run) if report.run else None,
            "images": _image_view(report.image, failing) if report.image else None,
            "training": _training_view(report.image.training) if report.image and report.image.training else None,
            "text": _text_view(report.text, failing) if report.text else None,
            "relational": _relational_view(report.relational) if report.relational else None}
    if tab:
        view["fidelity"] = _fidelity_view(tab)
        view["metric_rows"] = _metric_rows(list(metrics.values()))
        view["detection"] = tab.detection_auc
        view["detection_folds"] = ", ".join(_fmt(a) for a in tab.detection_auc.detail.get("fold_auc", []))
        view["privacy"] = {"copies": tab.exact_copy_share, "excess": tab.exact_copy_excess, "dcr": tab.dcr_share,
                           "nndr": tab.nndr, "close": tab.close_share_excess, "near": tab.near_copy_excess,
                           "mia": tab.mia_auc, "risks": [m for m in (tab.singling_out_risk, tab.linkability_risk,
                                                                     tab.inference_risk) if m is not None],
                           "plot": dcr_plot(tab.dcr_share.detail.get("histogram", {}))}
        view["value_leak"] = tab.value_leak_excess  # value_leak.py: one row per modelled column
        view["utility"] = tab.utility
        view["gain"] = tab.augmentation_gain
        view["utility_plot"] = utility_plot(tab.utility) if tab.utility else None
        view["fmt"] = _fmt
    return view


@cache
def _resource(name: str) -> str:
    """A file of the package's templates/ folder (package data, so a wheel carries it)."""
    return resources.files(__package__).joinpath("templates", name).read_text(encoding="utf-8")


_ENV = jinja2.Environment(loader=jinja2.FunctionLoader(_resource), autoescape=True,
                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_ENV.filters["fmt"] = _fmt


def render_html(report: Report) -> str:
    """The whole page as a string (no network access needed to view it)."""
    return _ENV.get_template("report.html.j2").render(style=Markup(_resource("report.css")), **build_view(report))


def render_summary(report: Report, worst: int = 5) -> str:
    """The page's summary section (same template), its style, and the worst-scoring columns: what a notebook shows
    for a result (`_repr_html_`)."""
    view = _summary_view(report)
    style = f"<style>\n{_resource('report.css')}</style>"
    rows = ""
    if report.tabular is not None:
        cols = report.tabular.column_shapes.detail.get("columns", {})
        ranked = sorted(((c, d.get("score")) for c, d in cols.items() if d.get("score") is not None),
                        key=lambda cd: cd[1])[:worst]
        rows = "".join(f"<tr><td>{escape(str(c))}</td><td class='num'>{v:.3f}</td></tr>" for c, v in ranked)
        rows = (f"<h3>Worst columns</h3><table><tr><th>Column</th><th>Shape score</th></tr>{rows}</table>"
                if rows else "")
    return (f"<div class='synthforge'>{style}<h3>{escape(report.title)}</h3>"
            f"{_ENV.get_template('summary.html.j2').render(**view)}{rows}</div>")
