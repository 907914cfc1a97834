"""HTML report: content, escaping and a real headless-Chromium check."""

import importlib.util
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthforge.quality.evaluate import evaluate_tables
from synthforge.quality.gates import check_gates, report_status
from synthforge.quality.html import render_html
from synthforge.quality.report_model import Report

CHROMIUM = "/usr/bin/chromium"
EVIL = "<script>alert('x')</script>"


def table(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    when = pd.Series(pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D"))
    when[rng.random(n) < 0.05] = pd.NaT
    return pd.DataFrame({
        "income": np.exp(x + shift),
        "age": (40 + 12 * x + rng.normal(size=n) * 4).round(),
        "segment": rng.choice(["retail", "sme", "corporate"], size=n, p=[0.6, 0.3, 0.1]),
        EVIL: rng.choice(["a&b", "<i>c</i>"], size=n),
        "active": rng.random(n) < 0.7 + shift / 10,
        "opened": when,
        "churn": np.where(x + rng.normal(size=n) > 0.5, "yes", "no"),
    })


@pytest.fixture(scope="module")
def report() -> Report:
    real, holdout, synthetic = table(1200, 1), table(1200, 2), table(1200, 3, shift=0.3)
    tab = evaluate_tables(real, synthetic, holdout=holdout, target="churn", random_seed=0)
    gates = check_gates(tab.metrics(), {"min_quality": 0.95, "max_dcr_share": 0.6,
                                        "max_detection_auc": 0.9})
    return Report(
        title=f"Quality of {EVIL}", created="2024-01-01T00:00:00Z", status=report_status(gates),
        gates=gates, tabular=tab,
        selection=[{"family": "gaussian_copula", "score": 0.81, "fit_seconds": 1.2, "chosen": False,
                    "why": "lower score"},
                   {"family": "ctgan", "score": 0.86, "fit_seconds": 40.0, "chosen": True,
                    "why": "best score"}],
        validation={"expectations": 12, "failed": {"age between 0 and 120": 3},
                    "rows_dropped": 3, "rounds": 1},
        notes=["column id dropped: id-like", "free text <b>not bold</b>"],
        run={"recipe": "credit", "rows": 1200, "seconds": {"fit": 1.5, "sample": 0.2}, "device": "cpu"},
    )


def test_html_content_and_escaping(report):
    html = render_html(report)
    assert report.status == "failed"
    assert EVIL not in html and "&lt;script&gt;" in html
    assert "<b>not bold</b>" not in html
    assert 'id="summary"' in html and 'id="failed-gates"' in html
    assert "min_quality" in html and "FAIL" in html
    for section in ("fidelity", "detection", "privacy", "utility", "selection", "validation",
                    "notes", "run"):
        assert f'id="{section}"' in html
    assert "column id dropped: id-like" in html
    low, high = report.tabular.dcr_share.detail["ci95"]
    assert f"{report.tabular.dcr_share.value:.3f} [{low:.3f}, {high:.3f}]" in html  # the DCR share with its interval
    assert "http://" not in html and "https://" not in html  # self-contained
    assert html.count('class="plot"') >= 7 + 2 + 1 + 1


def test_html_regression_utility_without_holdout():
    real, synthetic = table(600, 1), table(600, 3)
    tab = evaluate_tables(real, synthetic, target="income", random_seed=1)
    assert tab.utility.computed_on["task"] == "regression"
    html = render_html(Report(title="r", created="now", status="no_gates", gates=[], tabular=tab))
    assert "R²" in html and "no holdout" in html


def test_html_without_tabular_or_gates():
    html = render_html(Report(title="empty", created="now", status="no_gates", gates=[]))
    assert "no gates" in html and 'id="fidelity"' not in html


@pytest.mark.browser
def test_report_in_headless_chromium(report, tmp_path: Path):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not installed")
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("playwright (python) not installed")
    from playwright.sync_api import sync_playwright

    page_file = tmp_path / "report.html"
    page_file.write_text(render_html(report), encoding="utf-8")
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_file.as_uri(), wait_until="load")
            assert page.locator("#summary").is_visible()
            assert page.locator("#status").inner_text().strip().lower() == "failed"
            sizes = page.eval_on_selector_all(
                "img.plot", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
            assert len(sizes) >= 11
            assert all(done and w > 0 and h > 0 for done, w, h in sizes), sizes
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
            page.emulate_media(media="print")
            assert page.locator("#summary").is_visible()
        finally:
            browser.close()
    assert errors == []
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
    assert (tmp_path / "report.png").stat().st_size > 10_000
    if os.environ.get("SYNTHFORGE_KEEP_SCREENSHOT"):
        import shutil
        shutil.copy(tmp_path / "report.png", os.environ["SYNTHFORGE_KEEP_SCREENSHOT"])
