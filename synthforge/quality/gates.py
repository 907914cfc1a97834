"""Quality gates: thresholds on named metrics that decide whether a run passes."""

from __future__ import annotations

from .report_model import GateResult, Metric

# gate key -> (metric name, "min" = value must be >= threshold, "max" = value must be <= threshold)
GATE_METRICS: dict[str, tuple[str, str]] = {
    "min_quality": ("overall", "min"),
    "min_column_shapes": ("column_shapes", "min"),
    "min_pair_trends": ("pair_trends", "min"),
    "max_detection_auc": ("detection_auc", "max"),
    "max_exact_copies": ("exact_copy_share", "max"),
    "max_exact_copies_excess": ("exact_copy_excess", "max"),  # over the real holdout's own copy share
    "max_dcr_share": ("dcr_share", "max"),
    "min_nndr": ("nndr", "min"),
    "max_value_leak_excess": ("value_leak_excess", "max"),  # value_leak.py: per column, over the holdout's share
    # full-train copy checks and attacks (privacy.py, membership.py); the excesses are over the holdout's own rate
    "max_close_share_excess": ("close_share_excess", "max"),
    "max_near_copy_excess": ("near_copy_excess", "max"),
    "max_mia_auc": ("mia_auc", "max"),
    "max_inference_risk": ("inference_risk", "max"),
    "min_utility": ("utility", "min"),
    # text family (text_metrics.py)
    "min_text_utility": ("text_utility", "min"),
    "min_augmentation_gain": ("augmentation_gain_lower", "min"),  # the 95 % interval's lower end (uplift.py)
    "max_memorisation": ("memorisation_rate", "max"),  # after the filters: 0 whenever the n-gram filter is on
    "max_memorisation_raw": ("memorisation_rate_raw", "max"),  # what the model wrote before any filter
    "min_distinct_2": ("distinct_2", "min"),
    "max_self_bleu": ("self_bleu", "max"),
    "max_embedding_auc": ("embedding_auc", "max"),
    "max_perplexity_ratio": ("perplexity_ratio", "max"),  # median synthetic / median real under the judge (fluency.py)
    "max_nonword_excess": ("nonword_excess", "max"),  # non-word share above the real holdout's, in points
    # image family (image_metrics.py); min_utility above bounds the images' TSTR/TRTR too
    "min_conditional_accuracy": ("conditional_accuracy", "min"),
    "max_frechet_distance": ("frechet_distance", "max"),
    "max_kid": ("kid", "max"),
    "min_precision": ("precision", "min"),
    "min_recall": ("recall", "min"),
    "min_density": ("density", "min"),
    "min_coverage": ("coverage", "min"),
    "max_near_copy_share": ("near_copy_share", "max"),
    "max_image_close_share_excess": ("image_close_share_excess", "max"),  # image_copies.py, over the holdout's share
    # relational (relational.py): the worst relationship; min_quality / max_detection_auc read the worst table
    "min_fk_resolved": ("fk_resolved", "min"),
    "min_children_per_parent": ("children_per_parent_ks", "min"),
    "min_order_holds": ("order_holds", "min"),
    "min_gap_similarity": ("gap_ks", "min"),
}


def check_gates(metrics: dict[str, Metric], gates: dict[str, float]) -> list[GateResult]:
    """One GateResult per gate, in the given order.

    A gate whose metric is missing or was not computed (value None) fails: a gate that cannot
    be checked must not let a run through silently.
    """
    unknown = sorted(set(gates) - set(GATE_METRICS))
    if unknown:
        raise ValueError(f"unknown quality gate(s) {unknown}; valid keys: {sorted(GATE_METRICS)}")
    results = []
    for gate, threshold in gates.items():
        name, direction = GATE_METRICS[gate]
        metric = metrics.get(name)
        value = metric.value if metric is not None else None
        if value is None:
            passed = False
        elif direction == "min":
            passed = value >= threshold
        else:
            passed = value <= threshold
        results.append(GateResult(gate=gate, metric=name, threshold=float(threshold),
                                  value=value, passed=bool(passed)))
    return results


def report_status(gates: list[GateResult]) -> str:
    """"no_gates" without gates, "passed" when all pass, else "failed"."""
    if not gates:
        return "no_gates"
    return "passed" if all(g.passed for g in gates) else "failed"
