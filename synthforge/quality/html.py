"""Render a Report as one self-contained HTML page (inline CSS, PNG plots as data: URIs).

Everything shown comes from the Report model; nothing is recomputed from data here. All
user strings go through Jinja2 autoescaping.
"""

from __future__ import annotations

import base64
import io
import math

from html import escape

import jinja2
from markupsafe import Markup
import numpy as np
import matplotlib.dates as mdates
from matplotlib.figure import Figure

from .report_model import Metric, Report

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
]


def _text_view(section: dict, failing: set[str]) -> dict:
    metrics = section.get("metrics", {})
    util = section.get("utility") or {}
    div = section.get("diversity") or {}
    return {
        "cards": [{"label": label, "value": _fmt(metrics[k]["value"], fmt), "failing": k in failing}
                  for k, label, fmt in TEXT_HEADLINE if k in metrics],
        "utility": [{"name": name, "rows": util[key].get("train_rows"), "f1": _fmt(util[key].get("macro_f1")),
                     "acc": _fmt(util[key].get("accuracy")),
                     "per_class": ", ".join(f"{c} {v:.2f}" for c, v in (util[key].get("per_class_f1") or {}).items())}
                    for key, name in (("trtr", "train real (TRTR)"), ("tstr", "train synthetic (TSTR)"),
                                      ("tstr_drafts", "train unfiltered drafts (TSTR before the filters)"),
                                      ("augmented", "train real + synthetic")) if key in util],
        "uplift": util.get("uplift"),
        "utility_meta": util,
        "diversity": [{"name": k, "real": _fmt((div.get("real") or {}).get(k)),
                       "synthetic": _fmt((div.get("synthetic") or {}).get(k))}
                      for k in ("distinct_1", "distinct_2", "self_bleu")],
        "filters": section.get("filters") or {},
        "memorisation": section.get("memorisation") or {},
        "samples": section.get("samples") or {},
        "labels": section.get("labels") or {},
        "model": section.get("model") or {},
        "vocab": section.get("vocabulary") or {},
        "embedding": {k: _fmt(v) for k, v in (section.get("embedding") or {}).items() if k != "pca"},
        "metric_rows": _metric_rows([Metric(**m) for m in metrics.values()]),
        "plots": [p for p in (text_length_plot(section.get("lengths") or {}),
                              text_rank_plot(section.get("vocabulary") or {}),
                              text_embedding_plot(section.get("embedding") or {}),
                              text_loss_plot((section.get("model") or {}).get("history") or [])) if p],
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
]


def _image_view(section: dict, failing: set[str]) -> dict:
    metrics = section.get("metrics", {})
    util = (metrics.get("utility") or {}).get("detail", {})
    return {
        "cards": [{"label": label, "value": _fmt(metrics[k]["value"], fmt), "failing": k in failing}
                  for k, label, fmt in IMAGE_HEADLINE if k in metrics],
        "figures": [(name, uri) for name, uri in (section.get("figures") or {}).items() if uri],
        "tstr": _fmt((util.get("tstr") or {}).get("accuracy")), "trtr": _fmt((util.get("trtr") or {}).get("accuracy")),
        "per_class": _generic(section.get("per_class") or []),
        "pairs": _generic(section.get("closest_pairs") or []),
        "memorisation": section.get("memorisation", ""),
        "metric_rows": [{"name": k, "value": _fmt(m["value"], "{:.4g}"), "better": {True: "higher", False: "lower",
                                                                                   None: "see definition"}[
                             m.get("higher_is_better")],
                         "features": (m.get("computed_on") or {}).get("features", ""), "definition": m["definition"],
                         "computed_on": ", ".join(f"{a}={_fmt(b, '{:g}')}" for a, b in
                                                  (m.get("computed_on") or {}).items() if a != "features")}
                        for k, m in metrics.items()],
    }


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


def _metric_rows(metrics: list[Metric]) -> list[dict]:
    return [{"name": m.name, "value": _fmt(m.value), "definition": m.definition,
             "range": f"{_fmt(m.lower, '{:g}')}–{_fmt(m.upper, '{:g}')}",
             "better": {True: "higher", False: "lower", None: "see definition"}[m.higher_is_better],
             "computed_on": ", ".join(f"{k}={_fmt(v, '{:g}')}" for k, v in m.computed_on.items())}
            for m in metrics]


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
            "sections": [(name, _generic(body)) for name, body in report.sections.items()
                         if name not in ("text", "images")],
            "images": _image_view(report.sections["images"], failing) if "images" in report.sections else None,
            "text": _text_view(report.sections["text"], failing) if "text" in report.sections else None}
    if tab:
        view["fidelity"] = _fidelity_view(tab)
        view["metric_rows"] = _metric_rows(list(metrics.values()))
        view["detection"] = tab.detection_auc
        view["detection_folds"] = ", ".join(_fmt(a) for a in tab.detection_auc.detail.get("fold_auc", []))
        view["privacy"] = {"copies": tab.exact_copy_share, "excess": tab.exact_copy_excess, "dcr": tab.dcr_share,
                           "nndr": tab.nndr,
                           "plot": dcr_plot(tab.dcr_share.detail.get("histogram", {}))}
        view["utility"] = tab.utility
        view["gain"] = tab.augmentation_gain
        view["utility_plot"] = utility_plot(tab.utility) if tab.utility else None
        view["fmt"] = _fmt
    return view


_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                          trim_blocks=True, lstrip_blocks=True)
_ENV.filters["fmt"] = _fmt


def render_html(report: Report) -> str:
    """The whole page as a string (no network access needed to view it)."""
    view = build_view(report)
    return _ENV.from_string(TEMPLATE).render(summary_section=Markup(_ENV.from_string(SUMMARY).render(**view)), **view)


def render_summary(report: Report, worst: int = 5) -> str:
    """The page's summary section (same template), its style, and the worst-scoring columns: what a notebook shows
    for a result (`_repr_html_`)."""
    view = _summary_view(report)
    style = TEMPLATE[TEMPLATE.index("<style>"):TEMPLATE.index("</style>") + len("</style>")]
    rows = ""
    if report.tabular is not None:
        cols = report.tabular.column_shapes.detail.get("columns", {})
        ranked = sorted(((c, d.get("score")) for c, d in cols.items() if d.get("score") is not None),
                        key=lambda cd: cd[1])[:worst]
        rows = "".join(f"<tr><td>{escape(str(c))}</td><td class='num'>{v:.3f}</td></tr>" for c, v in ranked)
        rows = (f"<h3>Worst columns</h3><table><tr><th>Column</th><th>Shape score</th></tr>{rows}</table>"
                if rows else "")
    return (f"<div class='synthforge'>{style}<h3>{escape(report.title)}</h3>"
            f"{_ENV.from_string(SUMMARY).render(**view)}{rows}</div>")


SUMMARY = r"""<section id="summary" class="summary">
  <h2>Summary <span class="badge {{ report.status }}" id="status">{{ report.status | replace("_", " ") }}</span></h2>
  {% if n_failed %}
  <div class="alert" id="failed-gates"><strong>{{ n_failed }} quality gate{{ "s" if n_failed > 1 }} failed:</strong>
    {% for g in gates if not g.passed %}{{ g.gate }} ({{ g.metric }} = {{ g.value }}, threshold {{ g.threshold }}){{ ", " if not loop.last }}{% endfor %}
  </div>
  {% endif %}
  {% if gates %}
  <table class="gates">
    <tr><th>Gate</th><th>Metric</th><th>Threshold</th><th>Value</th><th>Result</th></tr>
    {% for g in gates %}
    <tr class="{{ 'pass' if g.passed else 'fail' }}"><td>{{ g.gate }}</td><td>{{ g.metric }}</td>
      <td class="num">{{ g.threshold }}</td><td class="num">{{ g.value }}</td>
      <td class="status">{{ "pass" if g.passed else "FAIL" }}</td></tr>
    {% endfor %}
  </table>
  {% else %}
  <p class="small">No quality gates were configured.</p>
  {% endif %}
  {% if headline %}
  <div class="cards">
    {% for c in headline %}
    <div class="card{{ ' failing' if c.failing }}"><div class="v">{{ c.value }}</div><div class="l">{{ c.label }}</div></div>
    {% endfor %}
  </div>
  {% endif %}
</section>"""

TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ report.title }}</title>
<style>
:root { --ok:#1d7a46; --bad:#b3261e; --muted:#5f6670; --line:#dde1e6; --bg:#f6f7f9; }
* { box-sizing: border-box; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color:#1c1f23;
       margin:0; background:var(--bg); }
main { max-width: 1180px; margin: 0 auto; padding: 20px 24px 60px; }
header h1 { font-size: 22px; margin: 0 0 4px; }
.meta { color: var(--muted); font-size: 12px; }
section { background:#fff; border:1px solid var(--line); border-radius:8px; padding:16px 20px; margin:16px 0; }
h2 { font-size: 17px; margin: 0 0 10px; }
h3 { font-size: 14px; margin: 14px 0 6px; }
.badge { display:inline-block; padding:4px 12px; border-radius:999px; font-weight:700; color:#fff;
         letter-spacing:.04em; text-transform:uppercase; font-size:13px; }
.badge.passed { background:var(--ok); } .badge.failed { background:var(--bad); }
.badge.no_gates { background:#6b7280; }
.alert { border-left:4px solid var(--bad); background:#fdecea; padding:8px 12px; margin:10px 0; }
.cards { display:grid; grid-template-columns:repeat(auto-fill,minmax(150px,1fr)); gap:10px; margin-top:12px; }
.card { border:1px solid var(--line); border-radius:6px; padding:8px 10px; }
.card .v { font-size:20px; font-weight:650; } .card .l { color:var(--muted); font-size:12px; }
.card.failing { border-color:var(--bad); background:#fdecea; }
table { border-collapse:collapse; width:100%; margin:6px 0; font-size:13px; }
th, td { border-bottom:1px solid var(--line); padding:4px 8px; text-align:left; vertical-align:top; }
th { background:#f0f2f5; font-weight:600; }
td.num { font-variant-numeric: tabular-nums; }
tr.fail td { background:#fdecea; color:var(--bad); font-weight:600; }
tr.pass td.status { color:var(--ok); font-weight:600; }
tr.chosen td { background:#eef7f0; font-weight:600; }
.plots { display:flex; flex-wrap:wrap; gap:8px; }
img.plot { max-width:100%; height:auto; border:1px solid var(--line); border-radius:4px; background:#fff; }
.small { color:var(--muted); font-size:12px; }
details summary { cursor:pointer; color:var(--muted); }
ul.notes li { margin:2px 0; }
@media print {
  body { background:#fff; font-size:11px; }
  main { max-width:none; padding:0; }
  section { border:none; padding:6px 0; page-break-inside:auto; }
  img.plot { max-width:48%; page-break-inside:avoid; }
  details { display:block; } details > * { display:block; }
  .badge, tr.fail td, .card.failing { -webkit-print-color-adjust:exact; print-color-adjust:exact; }
}
</style>
</head>
<body>
<main>
<header>
  <h1>{{ report.title }}</h1>
  <div class="meta">created {{ report.created }}</div>
</header>

{{ summary_section }}

{% if report.tabular %}
<section id="fidelity">
  <h2>Fidelity</h2>
  <p>Column shapes {{ report.tabular.column_shapes.value | fmt }}, pair trends {{ report.tabular.pair_trends.value | fmt }}
     ({{ fidelity.n_contributing }} of {{ fidelity.n_pairs }} pairs related in the real data count),
     overall {{ report.tabular.overall.value | fmt }}.</p>
  {% if fidelity.capped %}<p class="small">Showing plots for the {{ fidelity.plots | length }} worst of {{ fidelity.n_columns }} columns.</p>{% endif %}
  <div class="plots">
    {% for p in fidelity.plots %}<img class="plot" alt="{{ p.column }}: real vs synthetic" src="{{ p.uri }}">{% endfor %}
  </div>
  <div class="plots">
    {% if fidelity.corr_heatmap %}<img class="plot" alt="correlation difference heatmap" src="{{ fidelity.corr_heatmap }}">{% endif %}
    {% if fidelity.pair_heatmap %}<img class="plot" alt="pair similarity heatmap" src="{{ fidelity.pair_heatmap }}">{% endif %}
  </div>
  {% if fidelity.worst_pairs %}
  <h3>Lowest-scoring related pairs</h3>
  <table><tr><th>Column A</th><th>Column B</th><th>Metric</th><th>Score</th></tr>
  {% for p in fidelity.worst_pairs %}<tr><td>{{ p.a }}</td><td>{{ p.b }}</td><td>{{ p.metric }}</td><td class="num">{{ p.score }}</td></tr>{% endfor %}
  </table>
  {% endif %}
  <details><summary>Per-column scores ({{ fidelity.n_columns }})</summary>
  <table><tr><th>Column</th><th>Kind</th><th>Metric</th><th>Score</th></tr>
  {% for c in fidelity.columns %}<tr><td>{{ c.name }}</td><td>{{ c.kind }}</td><td>{{ c.metric }}</td><td class="num">{{ c.score }}</td></tr>{% endfor %}
  </table></details>
</section>

<section id="detection">
  <h2>Detection</h2>
  <p>ROC AUC of a classifier telling real from synthetic rows: <strong>{{ detection.value | fmt }}</strong>
     (0.5 = indistinguishable, 1 = fully separable). Folds: {{ detection_folds or "n/a" }}.</p>
  <p class="small">{{ detection.definition }}</p>
</section>

<section id="privacy">
  <h2>Privacy</h2>
  <table>
    <tr><th>Metric</th><th>Synthetic</th><th>Real holdout (baseline)</th><th>Meaning</th></tr>
    <tr><td>Exact copies</td><td class="num">{{ privacy.copies.value | fmt("{:.2%}") }}</td><td class="num">{{ privacy.copies.detail.get("holdout_share") | fmt("{:.2%}") }}</td><td>{{ privacy.copies.definition }}; the baseline is the share of real unseen rows equal to a training row</td></tr>
    {% if privacy.excess %}<tr><td>Exact copies, excess</td><td class="num">{{ privacy.excess.value | fmt("{:+.2%}") }}</td><td class="num">0</td><td>{{ privacy.excess.definition }}</td></tr>{% endif %}
    <tr><td>DCR share</td><td class="num">{{ privacy.dcr.value | fmt }}</td><td class="num">0.5</td><td>{{ privacy.dcr.definition }}</td></tr>
    <tr><td>Median distance to closest training row</td><td class="num">{{ privacy.dcr.detail.get("median_dcr_train") | fmt }}</td><td class="num">{{ privacy.dcr.detail.get("median_dcr_real_holdout") | fmt }}</td><td>synthetic rows much closer than real unseen rows sit near training rows</td></tr>
    <tr><td>NNDR (median)</td><td class="num">{{ privacy.nndr.value | fmt }}</td><td class="num">n/a</td><td>{{ privacy.nndr.definition }}</td></tr>
  </table>
  {% if privacy.plot %}<div class="plots"><img class="plot" alt="DCR histograms" src="{{ privacy.plot }}"></div>{% endif %}
</section>

<section id="utility">
  <h2>Utility</h2>
  {% if utility %}
  <p>TSTR/TRTR ratio: <strong>{{ utility.value | fmt }}</strong>
     (target {{ utility.computed_on.target }}, {{ utility.computed_on.task }}, tested on {{ utility.computed_on.test_on }}).</p>
  {% if utility.detail.get("tstr") %}
  <table><tr><th></th><th>{{ utility.detail.get("score", "score") }}</th><th>accuracy</th></tr>
    <tr><td>train synthetic, test real (TSTR)</td><td class="num">{{ utility.detail.tstr.score | fmt }}</td><td class="num">{{ utility.detail.tstr.get("accuracy") | fmt }}</td></tr>
    <tr><td>train real, test real (TRTR)</td><td class="num">{{ utility.detail.trtr.score | fmt }}</td><td class="num">{{ utility.detail.trtr.get("accuracy") | fmt }}</td></tr>
  </table>
  {% endif %}
  {% if utility_plot %}<div class="plots"><img class="plot" alt="utility scores" src="{{ utility_plot }}"></div>{% endif %}
  {% if gain and gain.value is not none %}
  <p>Augmentation gain (real + synthetic vs real alone, {{ gain.detail.runs | length }} draws):
     <strong>{{ gain.value | fmt("{:+.4f}") }}</strong>, 95 % interval
     [{{ gain.detail.ci95[0] | fmt("{:+.4f}") }}, {{ gain.detail.ci95[1] | fmt("{:+.4f}") }}]
     {% for k, part in gain.detail.get("other", {}).items() %}; {{ k }}: {{ part.mean | fmt("{:+.4f}") }}
     [{{ part.ci95[0] | fmt("{:+.4f}") }}, {{ part.ci95[1] | fmt("{:+.4f}") }}]{% endfor %}.</p>
  {% endif %}
  {% else %}
  <p class="small">Not computed (no target given).</p>
  {% endif %}
</section>

<section id="metrics">
  <h2>Metric definitions</h2>
  <table><tr><th>Metric</th><th>Value</th><th>Range</th><th>Better</th><th>Definition</th><th>Computed on</th></tr>
  {% for m in metric_rows %}<tr><td>{{ m.name }}</td><td class="num">{{ m.value }}</td><td>{{ m.range }}</td><td>{{ m.better }}</td><td>{{ m.definition }}</td><td class="small">{{ m.computed_on }}</td></tr>{% endfor %}
  </table>
</section>
{% endif %}

{% if report.columns %}
<section id="columns">
  <h2>Columns</h2>
  <table><tr><th>Column</th><th>Kind</th><th>How it was generated</th></tr>
  {% for c in report.columns %}<tr><td>{{ c.name }}</td><td>{{ c.kind }}</td><td>{{ c.treatment }}</td></tr>{% endfor %}
  </table>
</section>
{% endif %}

{% if report.tabular and report.tabular.identifiers %}
<section id="identifiers">
  <h2>Ids and personal data</h2>
  <p class="small">Left out of column shapes and pair trends (as sdmetrics does) and graded on what matters: format,
  uniqueness, and real values that appear in the output.</p>
  <table><tr><th>Column</th><th>Treated as</th><th>Well-formed</th><th>Unique</th><th>Real values leaked</th><th>Format check</th></tr>
  {% for r in report.tabular.identifiers %}<tr><td>{{ r.column }}</td><td>{{ r.treated_as }}</td><td class="num">{{ r.well_formed | fmt("{:.1%}") }}</td><td class="num">{{ r.unique | fmt("{:.1%}") }}</td><td class="num">{{ r.leaked | fmt("{:.2%}") }}</td><td>{{ r.format }}</td></tr>{% endfor %}
  </table>
</section>
{% endif %}

{% if report.selection %}
<section id="selection">
  <h2>Model selection</h2>
  <table><tr>{% for k in selection_keys %}<th>{{ k }}</th>{% endfor %}</tr>
  {% for row in selection %}<tr class="{{ 'chosen' if row._chosen }}">{% for k in selection_keys %}<td>{{ row.get(k, "") }}</td>{% endfor %}</tr>{% endfor %}
  </table>
</section>
{% endif %}

{% macro generic(node) -%}
{% if node.type == "image" %}<img class="plot" alt="" src="{{ node.uri }}">
{% elif node.type == "dict" %}<table>{% for k, v in node.rows %}<tr><th>{{ k }}</th><td>{{ generic(v) }}</td></tr>{% endfor %}</table>
{% elif node.type == "table" %}<table><tr>{% for k in node["keys"] %}<th>{{ k }}</th>{% endfor %}</tr>{% for r in node.rows %}<tr>{% for v in r %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}</table>
{% else %}{{ node.text }}{% endif %}
{%- endmacro %}

{% if images %}
<section id="images">
  <h2>Images</h2>
  <div class="cards">
    {% for c in images.cards %}<div class="card{{ ' failing' if c.failing }}"><div class="v">{{ c.value }}</div><div class="l">{{ c.label }}</div></div>{% endfor %}
  </div>
  <p>Small CNN trained on synthetic images, tested on held-out real ones (TSTR): <strong>{{ images.tstr }}</strong>;
     trained on real training images (TRTR): <strong>{{ images.trtr }}</strong>.</p>
  {% for name, uri in images.figures %}<h3>{{ name }}</h3><div class="plots"><img class="plot" alt="{{ name }}" src="{{ uri }}"></div>{% endfor %}
  <p class="small">{{ images.memorisation }}</p>
  <details><summary>Per class</summary>{{ generic(images.per_class) }}</details>
  <details><summary>Closest synthetic–training pairs</summary>{{ generic(images.pairs) }}</details>
  <h3>Metric definitions (and the feature space of each)</h3>
  <table><tr><th>Metric</th><th>Value</th><th>Better</th><th>Feature space</th><th>Definition</th><th>Computed on</th></tr>
  {% for m in images.metric_rows %}<tr><td>{{ m.name }}</td><td class="num">{{ m.value }}</td><td>{{ m.better }}</td><td class="small">{{ m.features }}</td><td>{{ m.definition }}</td><td class="small">{{ m.computed_on }}</td></tr>{% endfor %}
  </table>
</section>
{% endif %}

{% if validation %}
<section id="validation"><h2>Validation</h2>{{ generic(validation) }}</section>
{% endif %}

{% if text %}
<section id="text">
  <h2>Text</h2>
  <div class="cards">
    {% for c in text.cards %}
    <div class="card{{ ' failing' if c.failing }}"><div class="v">{{ c.value }}</div><div class="l">{{ c.label }}</div></div>
    {% endfor %}
  </div>
  <div class="plots">{% for p in text.plots %}<img class="plot" alt="text quality plot" src="{{ p }}">{% endfor %}</div>
  {% if text.utility %}
  <h3>Utility: {{ text.utility_meta.classifier }}, {{ text.utility_meta.score }} on {{ text.utility_meta.test_rows }} held-out real documents</h3>
  <table><tr><th>Training set</th><th>Documents</th><th>Macro-F1</th><th>Accuracy</th><th>F1 per class</th></tr>
  {% for u in text.utility %}<tr><td>{{ u.name }}</td><td class="num">{{ u.rows }}</td><td class="num">{{ u.f1 }}</td><td class="num">{{ u.acc }}</td><td class="small">{{ u.per_class }}</td></tr>{% endfor %}
  </table>
  {% if text.uplift %}<p>Augmentation gain over {{ text.uplift.runs | length }} draws of synthetic documents:
     <strong>{{ text.uplift.mean | fmt("{:+.4f}") }}</strong>, 95 % interval
     [{{ text.uplift.ci95[0] | fmt("{:+.4f}") }}, {{ text.uplift.ci95[1] | fmt("{:+.4f}") }}].</p>{% endif %}
  {% endif %}
  <h3>Filters (before anything was written)</h3>
  <p>{{ text.filters.sampled }} documents generated, {{ text.filters.kept }} kept of {{ text.filters.requested }} requested, in {{ text.filters.rounds }} round(s);
     {{ text.filters.tokens }} tokens at {{ text.filters.tokens_per_s }} tokens/s.
     Memorisation (a run of ≥ {{ text.memorisation.ngram }} tokens shared with a seed document): {{ text.memorisation.before | fmt("{:.2%}") }} of generated documents, {{ text.memorisation.after | fmt("{:.2%}") }} of the output{% if text.memorisation.longest_run %} (longest shared run {{ text.memorisation.longest_run }} tokens){% endif %}.</p>
  <table><tr><th>Dropped because</th><th>Documents</th></tr>
  {% for k, v in text.filters.dropped.items() %}<tr><td>{{ k }}</td><td class="num">{{ v }}</td></tr>{% else %}<tr><td colspan="2" class="small">nothing dropped</td></tr>{% endfor %}
  {% for k, v in text.filters.masked.items() %}<tr><td>PII masked (kept): {{ k }}</td><td class="num">{{ v }}</td></tr>{% endfor %}
  </table>
  {% if text.labels %}
  <h3>Labels</h3>
  <table><tr><th>Label</th><th>Real (train)</th><th>Synthetic</th></tr>
  {% for k in (text.labels.real.keys() | list) + (text.labels.synthetic.keys() | reject("in", text.labels.real) | list) %}<tr><td>{{ k }}</td><td class="num">{{ text.labels.real.get(k, 0) }}</td><td class="num">{{ text.labels.synthetic.get(k, 0) }}</td></tr>{% endfor %}
  </table>
  {% endif %}
  <h3>Diversity (equal-size samples)</h3>
  <table><tr><th>Metric</th><th>Real</th><th>Synthetic</th></tr>
  {% for d in text.diversity %}<tr><td>{{ d.name }}</td><td class="num">{{ d.real }}</td><td class="num">{{ d.synthetic }}</td></tr>{% endfor %}
  {% if text.vocab.types %}<tr><td>distinct words</td><td class="num">{{ text.vocab.types.real }}</td><td class="num">{{ text.vocab.types.synthetic }}</td></tr>
  <tr><td>share of words not in the seed</td><td></td><td class="num">{{ text.vocab.novel_word_share | fmt("{:.2%}") }}</td></tr>{% endif %}
  </table>
  <h3>Samples per label</h3>
  {% for label, docs in text.samples.items() %}
  <p><strong>{{ label }}</strong></p><ul>{% for d in docs %}<li>{{ d }}</li>{% endfor %}</ul>
  {% endfor %}
  {% if text.model %}
  <details><summary>Model: {{ text.model.name }}</summary>
  <table>{% for k, v in text.model.fit.items() %}<tr><th>{{ k }}</th><td>{{ v | fmt("{:.4g}") }}</td></tr>{% endfor %}
  {% for k, v in text.model.sampling.items() %}<tr><th>sampling.{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table></details>
  {% endif %}
  <details><summary>Embeddings</summary><table>{% for k, v in text.embedding.items() %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table></details>
  <details><summary>Metric definitions</summary>
  <table><tr><th>Metric</th><th>Value</th><th>Range</th><th>Better</th><th>Definition</th><th>Computed on</th></tr>
  {% for m in text.metric_rows %}<tr><td>{{ m.name }}</td><td class="num">{{ m.value }}</td><td>{{ m.range }}</td><td>{{ m.better }}</td><td>{{ m.definition }}</td><td class="small">{{ m.computed_on }}</td></tr>{% endfor %}
  </table></details>
</section>
{% endif %}

{% for name, body in sections %}
<section class="extra"><h2>{{ name }}</h2>{{ generic(body) }}</section>
{% endfor %}

{% if notes %}
<section id="notes"><h2>Notes</h2><ul class="notes">{% for n in notes %}<li>{{ n }}</li>{% endfor %}</ul></section>
{% endif %}

{% if run %}
<section id="run"><h2>Run</h2>{{ generic(run) }}</section>
{% endif %}
</main>
</body>
</html>
"""
