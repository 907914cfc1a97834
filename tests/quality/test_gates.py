import pytest

from synthforge.quality.gates import GATE_METRICS, check_gates, report_status
from synthforge.quality.report_model import Metric


def _metric(name, value):
    return Metric(name=name, value=value, definition="d", lower=0, upper=1,
                  higher_is_better=True, computed_on={})


METRICS = {"overall": _metric("overall", 0.8), "dcr_share": _metric("dcr_share", 0.6),
           "utility": _metric("utility", None)}


def test_min_and_max_gates_pass_and_fail():
    results = check_gates(METRICS, {"min_quality": 0.75, "max_dcr_share": 0.55})
    assert [(r.gate, r.metric, r.passed) for r in results] == [
        ("min_quality", "overall", True), ("max_dcr_share", "dcr_share", False)]
    assert results[1].value == 0.6 and results[1].threshold == 0.55
    assert report_status(results) == "failed"
    assert report_status(check_gates(METRICS, {"min_quality": 0.8})) == "passed"  # inclusive


def test_no_gates_and_uncomputed_metric():
    assert report_status(check_gates(METRICS, {})) == "no_gates"
    (missing,) = check_gates(METRICS, {"min_utility": 0.5})
    assert missing.value is None and not missing.passed  # cannot be checked -> fails
    (absent,) = check_gates(METRICS, {"max_detection_auc": 0.9})
    assert not absent.passed


def test_unknown_gate_names_valid_keys():
    with pytest.raises(ValueError) as err:
        check_gates(METRICS, {"min_qualty": 0.5})
    assert "min_qualty" in str(err.value)
    for key in GATE_METRICS:
        assert key in str(err.value)


def test_gate_keys_match_the_recipe_schema():
    # the recipe rejects unknown gate keys at load time; both lists must name the same gates
    from synthforge.recipe.schema import GATE_KEYS

    assert set(GATE_METRICS) == set(GATE_KEYS)
    assert {"min_quality", "max_dcr_share", "max_exact_copies", "max_detection_auc", "min_column_shapes",
            "min_pair_trends", "min_utility", "min_nndr"} <= set(GATE_METRICS)
