"""The service end to end on one real server (started once for the module, one credit job shared by the tests): a
job's rows equal `synthforge.run`'s, every route refuses another tenant's objects with 404, events resume, cancel
stops a running job within seconds, the API client, and the web pages in headless Chromium."""

import io
import json
import os
import time

import pandas as pd
import pytest

from service.helpers import TINY, wait_for

FINAL = ("succeeded", "failed_gates", "failed", "cancelled")


@pytest.fixture(scope="module")
def finished(server, credit_seed_csv, tmp_path_factory):
    """Tenant A's dataset and a finished credit job, plus `synthforge.run` of the same recipe on the same seed (run
    here while the server's job process runs)."""
    import synthforge

    tenant, key = server.tenant("alpha")
    with server.client(key) as c:
        ds = c.post("/datasets", params={"name": "credit.csv"}, content=credit_seed_csv.read_bytes()).json()
        job = c.post("/jobs", json={"dataset_id": ds["id"], "recipe": "credit_tabular", "overrides": TINY})
        assert job.status_code == 201, job.text
        job = job.json()
        local = synthforge.run("example://credit_tabular", out=tmp_path_factory.mktemp("local") / "run",
                               **{**TINY, "seed.source": str(credit_seed_csv)})
        done = wait_for(c, job["id"], FINAL)
    return {"tenant": tenant, "key": key, "dataset": ds, "job": done, "local": local}


def test_job_rows_equal_synthforge_run(server, finished):
    job = finished["job"]
    assert job["state"] == "succeeded", job
    assert job["rows"] == 200 and job["attempt"] == 1 and job["finished_at"]
    with server.client(finished["key"]) as c:
        served = pd.read_parquet(io.BytesIO(c.get(f"/jobs/{job['id']}/data.parquet").content))
        report = c.get(f"/jobs/{job['id']}/report.json").json()
        manifest = c.get(f"/jobs/{job['id']}/manifest.json").json()
        html = c.get(f"/jobs/{job['id']}/report.html")
        events = c.get(f"/jobs/{job['id']}/events").json()
    pd.testing.assert_frame_equal(served, finished["local"].data())
    assert report["status"] == "no_gates" and manifest["complete"] is True and manifest["rows"] == 200
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    stages = [e["data"]["stage"] for e in events if e["kind"] == "stage"]
    assert stages == ["load", "fit", "evaluate", "report"]
    states = [e["data"]["state"] for e in events if e["kind"] == "state"]
    assert states == ["queued", "running", "succeeded"]
    assert str(server.data.resolve()) not in json.dumps(manifest)  # no server folder in what a tenant reads


def test_event_stream_resumes_from_last_event_id(server, finished):
    job_id = finished["job"]["id"]
    with server.client(finished["key"]) as c:
        events = c.get(f"/jobs/{job_id}/events").json()
        with c.stream("GET", f"/jobs/{job_id}/stream", headers={"Last-Event-ID": str(events[1]["id"])}) as r:
            assert r.status_code == 200
            ids = [int(line[3:].strip()) for line in r.iter_lines() if line.startswith("id:")]
    assert ids == [e["id"] for e in events[2:]]


def test_another_tenant_gets_404_on_every_route(server, finished):
    """Every route of the OpenAPI schema with a path parameter, called with tenant B's key on tenant A's objects;
    admin routes need the admin scope (403); B's own lists do not show A's objects."""
    _, other = server.tenant("beta")
    ids = {"job_id": finished["job"]["id"], "dataset_id": finished["dataset"]["id"],
           "tenant_id": finished["tenant"], "key_id": "key_unknown"}
    with server.client(other) as c:
        paths = c.get("/openapi.json").json()["paths"]
        walked = 0
        for path, ops in paths.items():
            for method in ops:
                url = path.format(**ids) if "{" in path else path
                r = c.request(method.upper(), url, json={"dataset_id": ids["dataset_id"], "recipe": "credit_tabular"}
                              if method == "post" else None)
                if path.startswith("/admin"):
                    assert r.status_code == 403, (method, path, r.status_code)
                elif "{" in path or (method == "post" and path == "/jobs"):
                    assert r.status_code == 404, (method, path, r.status_code, r.text)
                walked += 1
        assert walked >= 17
        assert c.get("/jobs").json() == [] and c.get("/datasets").json() == []
    # the pages too: B signed in with a browser session gets 404 for A's job page, and the API by cookie as well
    import re

    import httpx

    with httpx.Client(base_url=server.url, timeout=30) as browser:
        form = browser.get("/ui/signin")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        assert browser.post("/ui/signin", data={"key": other, "csrf": csrf}).status_code == 303
        assert browser.get("/ui").status_code == 200
        assert browser.get(f"/ui/jobs/{ids['job_id']}").status_code == 404
        assert browser.get(f"/jobs/{ids['job_id']}/report.html").status_code == 404
        assert browser.post(f"/ui/jobs/{ids['job_id']}/cancel", data={"csrf": "x"}).status_code == 403
        assert browser.get("/ui/admin").status_code == 403
    with server.client(finished["key"]) as c:  # A's objects are still there, untouched
        assert c.get(f"/jobs/{ids['job_id']}").json()["state"] == "succeeded"
        assert c.get(f"/datasets/{ids['dataset_id']}").status_code == 200


def test_cancel_stops_a_running_job(server, finished):
    with server.client(finished["key"]) as c:
        job = c.post("/jobs", json={"dataset_id": finished["dataset"]["id"], "recipe": "credit_tabular",
                                    "overrides": {**TINY, "generator.params": {"max_epochs": 400}}}).json()
        wait_for(c, job["id"], ("running",), timeout=60)
        started = time.monotonic()
        assert c.post(f"/jobs/{job['id']}/cancel").json()["cancel_requested"] is True
        done = wait_for(c, job["id"], FINAL, timeout=30)
        took = time.monotonic() - started
        assert done["state"] == "cancelled" and took < 10, (done, took)
        assert c.get(f"/jobs/{job['id']}/data.parquet").status_code == 409
        assert c.delete(f"/jobs/{job['id']}").status_code == 204
        assert c.get(f"/jobs/{job['id']}").status_code == 404
    assert not (server.data / "tenants" / finished["tenant"] / "jobs" / job["id"]).exists()


def test_client_and_revoked_key(server, finished, credit_seed_csv):
    import synthforge

    with synthforge.Client(server.url, finished["key"]) as client:
        assert finished["key"] not in repr(client)
        result = client.result(finished["job"]["id"])
        assert len(result.data()) == 200 and result.report()["status"] == "no_gates"
        assert [j["id"] for j in client.jobs()][-1] == finished["job"]["id"]
    tenant, key = server.tenant("gamma")
    with server.client(key) as c:
        me = c.get("/me").json()
        assert me["tenant_id"] == tenant and "key" not in me
    with server.admin() as a:
        keys = a.get(f"/admin/tenants/{tenant}/keys").json()
        assert all("hash" not in k and "key" not in k for k in keys)
        a.delete(f"/admin/keys/{keys[0]['id']}")
    with server.client(key) as c:
        assert c.get("/me").status_code == 401


def test_submit_command_reads_the_key_from_the_environment(server, finished, credit_seed_csv, tmp_path,
                                                          monkeypatch, capsys):
    from synthforge.cli import main

    monkeypatch.setenv("SYNTHFORGE_API_KEY", finished["key"])
    code = main(["submit", "example://credit_tabular", "--server", server.url,
                 "--dataset", finished["dataset"]["id"], "--rows", "50"])
    out, err = capsys.readouterr()
    assert code == 0 and out.strip().startswith("job_"), (out, err)
    assert finished["key"] not in out + err
    with server.client(finished["key"]) as c:
        assert c.post(f"/jobs/{out.strip()}/cancel").status_code == 200  # leave the worker free
    # a recipe file of the user's: its seed is uploaded, its paths stay on the user's machine
    seed = tmp_path / "seed.csv"
    seed.write_text("\n".join(credit_seed_csv.read_text().splitlines()[:301]) + "\n")
    (tmp_path / "mine.yaml").write_text("name: mine\nseed:\n  source: seed.csv\n  target: Status\n"
                                        "output:\n  rows: 50\n  folder: ../runs/mine\n")
    assert main(["submit", str(tmp_path / "mine.yaml"), "--server", server.url]) == 0
    job_id = capsys.readouterr().out.strip()
    with server.client(finished["key"]) as c:
        job = c.post(f"/jobs/{job_id}/cancel").json()
        assert job["recipe_name"] == "mine"
        assert [d["name"] for d in c.get("/datasets").json()][0] == "seed.csv"
    monkeypatch.delenv("SYNTHFORGE_API_KEY")
    assert main(["submit", "example://credit_tabular", "--server", server.url, "--dataset", "x"]) == 2
    assert "SYNTHFORGE_API_KEY" in capsys.readouterr().err


CHROMIUM = "/usr/bin/chromium"


def _launch(playwright):
    """Debian's headless Chromium with nothing reaching off the machine."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"])


@pytest.mark.browser
def test_pages_in_headless_chromium(server, finished, credit_seed_csv, tmp_path):
    """Sign in with the key, upload the seed through the page, start a shipped recipe with rows and family, watch
    its live progress, cancel it; open the finished job: its report inline and its Parquet download. No console
    errors, no request leaves the server's origin."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not installed")
    playwright = pytest.importorskip("playwright.sync_api")
    seed = tmp_path / "seed.csv"
    seed.write_text("\n".join(credit_seed_csv.read_text().splitlines()[:301]) + "\n")
    errors, requests = [], []
    with playwright.sync_playwright() as p:
        browser = _launch(p)
        try:
            page = browser.new_context(accept_downloads=True).new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(server.url + "/ui")
            page.fill("#key", "sf_0_wrong")
            page.click("#signin")
            assert page.locator("#error").is_visible()
            page.fill("#key", finished["key"])
            page.click("#signin")
            assert page.locator(f"a[href='/ui/jobs/{finished['job']['id']}']").is_visible()
            # upload + start a job from a shipped recipe
            before = page.locator("#datasets tr").count()
            page.set_input_files("#file", str(seed))
            with page.expect_navigation():
                page.click("#upload button")
            assert page.locator("#datasets tr").count() == before + 1
            page.select_option("#recipe", "credit_tabular")
            page.fill("#rows", "100")
            page.select_option("#family", "autoregressive")
            page.click("#submit")
            page.wait_for_url("**/ui/jobs/job_*")
            # live progress: events arrive over the stream (the page's CSP allows no eval: locators only)
            page.wait_for_selector("#events li:nth-child(2)", timeout=60_000)
            page.click("#cancel")
            playwright.expect(page.locator("#state")).to_have_text("cancelled", timeout=30_000)
            # the finished job: report inline, downloads
            page.goto(f"{server.url}/ui/jobs/{finished['job']['id']}")
            assert page.locator("#state").inner_text() == "succeeded"
            report = page.frame_locator("#report")
            assert report.locator("#summary").is_visible()
            with page.expect_download() as download:
                page.click("#download-data")
            data = pd.read_parquet(download.value.path())
            pd.testing.assert_frame_equal(data, finished["local"].data())
        finally:
            browser.close()
    assert errors == []
    assert all(url.startswith((server.url, "data:")) for url in requests), requests


@pytest.mark.slow
@pytest.mark.browser
def test_pages_full_flow_rows_equal_synthforge_run(server, credit_seed_csv, tmp_path):
    """Issue 34's browser check: upload credit_data as CSV in the page, start the credit recipe (rows, family), watch
    progress reach the end, open the report, download the Parquet: the rows equal `synthforge.run`'s."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not installed")
    playwright = pytest.importorskip("playwright.sync_api")
    import synthforge

    errors = []
    with playwright.sync_playwright() as p:
        browser = _launch(p)
        try:
            page = browser.new_context(accept_downloads=True).new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            # the admin makes a tenant and its key in the page; the key is shown once
            page.goto(server.url + "/ui")
            page.fill("#key", server.admin_key)
            page.click("#signin")
            page.click("#admin-link")
            page.fill("#tenant-name", "pages")
            page.click("#new-tenant button")
            page.select_option("#key-tenant", label="pages")
            page.click("#new-key-form button")
            key = page.locator("#new-key").inner_text().strip()
            assert key.startswith("sf_")
            page.goto(server.url + "/ui/admin")
            assert page.locator("#new-key").count() == 0 and key not in page.content()
            page.context.clear_cookies()  # a new person: the tenant's key
            page.goto(server.url + "/ui")
            page.fill("#key", key)
            page.click("#signin")
            page.set_input_files("#file", str(credit_seed_csv))
            with page.expect_navigation():
                page.click("#upload button")
            page.select_option("#recipe", "credit_tabular")
            page.fill("#rows", "300")
            page.select_option("#family", "autoregressive")
            page.click("#submit")
            page.wait_for_url("**/ui/jobs/job_*")
            job_id = page.url.rsplit("/", 1)[1]
            local = synthforge.run("example://credit_tabular", out=tmp_path / "local",
                                   **{"output.rows": 300, "generator.family": "autoregressive",
                                      "seed.source": str(credit_seed_csv)})
            # the page reloads itself when the stream says the job ended
            page.wait_for_selector("#report", timeout=600_000)
            assert page.locator("#state").inner_text() == ("succeeded" if local.passed else "failed_gates")
            assert page.frame_locator("#report").locator("#summary").is_visible()
            with page.expect_download() as download:
                page.click("#download-data")
            data = pd.read_parquet(download.value.path())
        finally:
            browser.close()
    assert errors == []
    assert job_id.startswith("job_")
    pd.testing.assert_frame_equal(data, local.data())
