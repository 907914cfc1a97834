"""Value leak: a modelled column whose synthetic values are the seed's own fails max_value_leak_excess, even when no
row is copied; an honest sample of the same distribution passes."""

import json

import numpy as np
import pandas as pd

from synthforge.cli import main
from synthforge.quality.value_leak import column_leak, value_leak_metric


def _table(n, rng):
    return pd.DataFrame({"income": np.round(rng.lognormal(10, 0.6, n), 2),  # high-cardinality
                         "age": rng.integers(18, 90, n),  # 72 levels: repeats in any honest sample
                         "plan": rng.choice(["basic", "plus", "premium"], n)})


def _report(tmp_path, train, synthetic, holdout, name):
    paths = {}
    for label, frame in (("real", train), ("synthetic", synthetic), ("holdout", holdout)):
        paths[label] = tmp_path / f"{name}_{label}.csv"
        frame.to_csv(paths[label], index=False)
    out = tmp_path / name
    code = main(["report", "--real", str(paths["real"]), "--synthetic", str(paths["synthetic"]),
                 "--holdout", str(paths["holdout"]), "--out", str(out), "--gate", "max_value_leak_excess=0.1"])
    return code, json.loads((out / "report.json").read_text()), (out / "report.html").read_text()


def test_copied_values_fail_the_gate_and_honest_values_pass(tmp_path):
    rng = np.random.default_rng(0)
    train, holdout, fresh = _table(400, rng), _table(100, rng), _table(400, rng)
    # planted: every training row written as is
    code, report, html = _report(tmp_path, train, train, holdout, "verbatim")
    leak = report["tabular"]["value_leak_excess"]
    assert code == 1 and leak["value"] > 0.9 and leak["detail"]["worst"] == "income"
    rows = {r["column"]: r for r in leak["detail"]["columns"]}
    assert rows["income"]["high_cardinality"] and not rows["plan"]["high_cardinality"]
    assert rows["income"]["synthetic_share"] == 1.0 and rows["income"]["holdout_share"] < 0.05
    assert "Value leak per column" in html and "income" in html
    # planted: each column shuffled on its own, so no row is a copy, but every income is a seed income
    shuffled = pd.DataFrame({c: train[c].sample(frac=1, random_state=i).to_numpy() for i, c in enumerate(train)})
    code, report, _ = _report(tmp_path, train, shuffled, holdout, "shuffled")
    assert code == 1 and report["tabular"]["value_leak_excess"]["value"] > 0.9
    assert report["tabular"]["exact_copy_share"]["value"] < 0.05  # the row-level check does not see it
    # honest: fresh rows of the same distribution
    code, report, _ = _report(tmp_path, train, fresh, holdout, "fresh")
    assert code == 0 and abs(report["tabular"]["value_leak_excess"]["value"]) < 0.05


def test_low_cardinality_columns_are_reported_but_not_gated():
    rng = np.random.default_rng(1)
    train, holdout = _table(600, rng), _table(150, rng)
    age = column_leak(train["age"], train["age"], holdout["age"])
    assert not age["high_cardinality"] and age["holdout_share"] > 0.9  # ages repeat in real unseen rows too
    metric = value_leak_metric(train, _table(600, rng), holdout, ["age", "plan"])
    assert metric.value == 0.0 and metric.computed_on["gated_columns"] == []


def test_a_zero_inflated_column_counts_through_its_non_zero_values():
    rng = np.random.default_rng(2)

    def spend(n):
        return pd.Series(np.where(rng.random(n) < 0.54, 0.0, np.round(rng.gamma(2, 50, n), 2)), name="spend")

    train, holdout = spend(600), spend(150)
    copied = column_leak(train, train.sample(frac=1, random_state=0), holdout)
    assert copied["high_cardinality"] and copied["excess"] > 0.3  # every non-zero amount a seed amount (~46 %)
    honest = column_leak(train, spend(600), holdout)
    assert abs(honest["excess"]) < 0.08  # zeros are in both; fresh amounts rarely equal a seed's
