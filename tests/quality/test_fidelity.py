"""Fidelity scores: known answers and equality with sdmetrics' QualityReport."""

import warnings

import numpy as np
import pandas as pd
import pytest

from synthforge.quality.evaluate import infer_kinds
from synthforge.quality.fidelity import fidelity_metrics, ks_complement, pairwise_pearson


def mixed_table(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Correlated numeric, categorical, boolean and datetime columns with missing values."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = 0.8 * x + 0.6 * rng.normal(size=n) + shift
    z = rng.exponential(size=n)
    z[rng.random(n) < 0.1] = np.nan
    band = np.where(x + rng.normal(scale=0.5, size=n) > 0, "hi", "lo").astype(object)
    letter = rng.choice(["a", "b", "c", "d"], size=n, p=[0.4, 0.3, 0.2, 0.1]).astype(object)
    letter[rng.random(n) < 0.05] = None
    days = (x * 30 + 200 + rng.normal(size=n) * 3).astype(int)
    when = pd.Series(pd.Timestamp("2020-01-01") + pd.to_timedelta(days, unit="D"))
    when[rng.random(n) < 0.05] = pd.NaT
    return pd.DataFrame({"x": x, "y": y, "z": z, "band": band, "letter": letter,
                         "flag": y > 0.3, "when": when, "small_int": rng.integers(0, 5, size=n)})


def test_infer_kinds():
    df = mixed_table(200, 0)
    df["date_text"] = df["when"].astype(str)
    assert infer_kinds(df) == {"x": "numerical", "y": "numerical", "z": "numerical",
                               "band": "categorical", "letter": "categorical", "flag": "boolean",
                               "when": "datetime", "small_int": "categorical",
                               "date_text": "categorical"}


def test_identical_data_scores_one():
    real = mixed_table(1000, 1)
    shapes, trends, overall = fidelity_metrics(real, real.copy(), infer_kinds(real))
    assert shapes.value == pytest.approx(1.0)
    assert trends.value == pytest.approx(1.0)
    assert overall.value == pytest.approx(1.0)
    assert set(shapes.detail["columns"]) == set(real.columns)


def test_shuffled_columns_lose_pair_trends():
    rng = np.random.default_rng(3)
    x = rng.normal(size=5000)
    real = pd.DataFrame({"a": x, "b": x + 0.1 * rng.normal(size=5000),
                         "c": -x + 0.1 * rng.normal(size=5000)})
    shuffled = real.apply(lambda s: s.sample(frac=1, random_state=int(rng.integers(1e6))).to_numpy())
    shapes, trends, _ = fidelity_metrics(real, shuffled, infer_kinds(real))
    assert shapes.value == pytest.approx(1.0)  # marginals untouched
    assert trends.value < 0.6                   # 1 - |0.99 - 0|/2 ~ 0.5


def test_ks_matches_scipy():
    from scipy.stats import ks_2samp
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 20, 300).astype(float), rng.integers(2, 25, 410).astype(float)
    assert ks_complement(a, b) == pytest.approx(1 - ks_2samp(a, b).statistic, abs=1e-12)


def test_pairwise_pearson_with_missing_values():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 3))
    x[:, 1] += x[:, 0]
    x[rng.random(500) < 0.2, 0] = np.nan
    x[rng.random(500) < 0.2, 2] = np.nan
    expected = pd.DataFrame(x).corr().to_numpy()  # pandas uses pairwise-complete rows too
    np.testing.assert_allclose(pairwise_pearson(x), expected, atol=1e-10)


def _sdmetrics_report(real, synthetic, kinds):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sdmetrics.reports.single_table import QualityReport
        report = QualityReport()
        report.generate(real, synthetic, {"columns": {c: {"sdtype": k} for c, k in kinds.items()}},
                        verbose=False)
    return report


@pytest.mark.parametrize("seed", [0, 7])
def test_equals_sdmetrics_quality_report(seed):
    real = mixed_table(1500, seed)
    synthetic = mixed_table(1200, seed + 100, shift=0.4)
    synthetic["y"] = synthetic["y"].sample(frac=1, random_state=seed).to_numpy()  # break x~y
    synthetic.loc[synthetic.index[:40], "letter"] = "zz"  # category unseen in real data
    kinds = infer_kinds(real)
    shapes, trends, overall = fidelity_metrics(real, synthetic, kinds)
    report = _sdmetrics_report(real, synthetic, kinds)
    props = report.get_properties().set_index("Property")["Score"]
    assert round(shapes.value, 3) == round(props["Column Shapes"], 3)
    assert round(trends.value, 3) == round(props["Column Pair Trends"], 3)
    assert round(overall.value, 3) == round(report.get_score(), 3)
    # per-column and per-pair scores too
    sd_cols = report.get_details("Column Shapes").set_index("Column")["Score"]
    for col, detail in shapes.detail["columns"].items():
        assert detail["score"] == pytest.approx(sd_cols[col], abs=1e-9)
    sd_pairs = report.get_details("Column Pair Trends")
    for p, row in zip(trends.detail["pairs"], sd_pairs.itertuples(index=False)):
        assert (p["a"], p["b"]) == (row[0], row[1])
        if pd.isna(row.Score):
            assert p["score"] is None
        else:
            assert p["score"] == pytest.approx(row.Score, abs=1e-9)
