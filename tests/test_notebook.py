"""What a notebook shows: short reprs, summary() frames, _repr_html_ a browser renders, and augment() rows that
concatenate onto the input without changing a column or a dtype."""

import os

import numpy as np
import pandas as pd
import pytest

import synthforge
from conftest import write_recipe

CHROMIUM = "/usr/bin/chromium"


def customers(n=600, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "customer_id": [f"CUST-{i:05d}" for i in range(n)],
        "email": [f"user{i}@example.com" for i in range(n)],
        "signup_date": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 500, n), unit="D"),
        "plan": rng.choice(["free", "pro", "team"], n),
        "spend": np.where(rng.random(n) < 0.55, 0.0, np.round(rng.gamma(2, 40, n), 2)),
        "visits": rng.integers(0, 30, n),
        "churned": rng.random(n) < 0.2,
        "note": [" ".join(rng.choice(["good", "bad", "slow", "fast", "fine", "meh"], 9)) for _ in range(n)],
    })


def test_augment_keeps_every_column_and_dtype():
    df = customers()
    import great_expectations  # noqa: F401  (on import it routes warnings to logging; before the block, not in it)

    with pytest.warns(UserWarning, match=r"augment: columns \['note'\] are not modelled"):  # said, not silent
        more = synthforge.augment(df, n=200, random_seed=1, params={"max_epochs": 60})
    both = pd.concat([df, more], ignore_index=True)
    assert list(more.columns) == list(df.columns)
    assert both.dtypes.to_dict() == df.dtypes.to_dict()
    assert len(more) == 200 and more["customer_id"].is_unique and not more["customer_id"].isin(df["customer_id"]).any()
    assert not more["email"].isin(df["email"]).any() and more["email"].str.contains("@").all()
    assert 0.35 < (more["spend"] == 0).mean() < 0.75  # the zeros kept their share (55 % in the seed)


def _renders(html: str, tmp_path) -> None:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not installed")
    from playwright.sync_api import sync_playwright

    page_file = tmp_path / "cell.html"
    page_file.write_text(f"<!DOCTYPE html><html><body>{html}</body></html>", encoding="utf-8")
    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_file.as_uri(), wait_until="load")
            assert page.locator("#summary").is_visible()
        finally:
            browser.close()
    assert errors == []


def test_evaluate_and_run_results_read_well_in_a_notebook(tmp_path, credit, credit_csv):
    quality = synthforge.evaluate(credit.iloc[:300], credit.iloc[300:], target="Status")
    result = synthforge.run(write_recipe(tmp_path, credit_csv, quality__gates={"min_quality": 0.5}),
                            out=tmp_path / "out")
    for obj in (quality, result, result.report):
        assert len(repr(obj)) < 2000
        frame = obj.summary()
        assert isinstance(frame, pd.DataFrame) and {"metric", "value", "baseline"} <= set(frame.columns)
        assert "overall" in set(frame["metric"])
        html = obj._repr_html_()
        assert 'id="summary"' in html
    assert result.summary().set_index("metric").loc["overall", "gate"] == "min_quality"
    assert result.to_dict()["status"] == "passed" and "<html" in result.report_html()
    _renders(result._repr_html_(), tmp_path)


def test_init_then_run_passes_on_a_plain_customer_table(tmp_path, monkeypatch):
    """The first hour: a CSV, `synthforge init`, `synthforge run` exits 0; the recipe names its seed relative to
    itself, so the folder can move or be shared and the run still finds its seed (and writes beside the recipe)."""
    from synthforge.cli import main

    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    customers().to_csv(project / "data" / "customers.csv", index=False)
    monkeypatch.chdir(project)
    assert main(["init", "data/customers.csv", "--out", "customers.yaml"]) == 0
    text = (project / "customers.yaml").read_text()
    assert "source: data/customers.csv" in text
    moved = tmp_path / "moved"
    (project).rename(moved)
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(moved / "customers.yaml"), "--quiet"]) == 0
    assert (moved / "runs" / "customers" / "report.html").exists()
