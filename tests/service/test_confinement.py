"""Pure-route checks on FastAPI's TestClient (no job runs): a recipe naming a path outside the tenant's storage is
refused with one line; an upload over the cap gets 413 and leaves nothing on disk; content checks; no secrets or
stack traces in responses; security headers."""

import pytest

from service.helpers import in_process_client

CAP = 64 * 1024


@pytest.fixture(scope="module")
def app_client(tmp_path_factory):
    with in_process_client(tmp_path_factory.mktemp("svc"), max_upload_bytes=CAP) as c:
        yield c


@pytest.fixture(scope="module")
def dataset(app_client, credit_seed_csv):
    small = "\n".join(credit_seed_csv.read_text().splitlines()[:300]).encode()
    r = app_client.post("/datasets", params={"name": "../../etc/credit.csv"}, content=small)
    assert r.status_code == 201, r.text
    return r.json()


@pytest.mark.parametrize("yaml_text, names", [
    ("name: x\nseed:\n  source: /etc/passwd\n", "seed.source: '/etc/passwd'"),
    ("name: x\nseed:\n  source: ../other-tenant/datasets/a.csv\n", "seed.source: '../other-tenant"),
    ("name: x\nseed:\n  source: credit.csv\noutput:\n  folder: /tmp/out\n", "seed.source: 'credit.csv'"),
    ("name: x\nseed: {}\noutput:\n  folder: ../../escape\n", "output.folder: '../../escape'"),
    ("name: x\nseed: {}\ngenerator:\n  params:\n    base_model: /root/model\n", "generator.params.base_model"),
    ("name: x\nseed: {}\ngenerator:\n  params:\n    trust_remote_code: true\n", "trust_remote_code"),
])
def test_recipe_paths_outside_the_tenant_are_400_one_line(app_client, dataset, yaml_text, names):
    r = app_client.post("/jobs", json={"dataset_id": dataset["id"], "recipe_yaml": yaml_text})
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert names in detail and "\n" not in detail and "Traceback" not in detail
    assert app_client.get("/jobs").json() == []


def test_overrides_cannot_reach_paths_or_execution(app_client, dataset):
    for overrides in ({"seed.source": "/etc/passwd"}, {"output.folder": "/tmp/x"},
                      {"execution.executor": "ray"}, {"generator.params": {"base_model": "~/.ssh/id_rsa"}}):
        r = app_client.post("/jobs", json={"dataset_id": dataset["id"], "recipe": "credit_tabular",
                                           "overrides": overrides})
        assert r.status_code == 400 and "\n" not in r.json()["detail"], (overrides, r.text)


def test_a_shipped_recipe_runs_on_the_tenants_dataset(app_client, dataset):
    r = app_client.post("/jobs", json={"dataset_id": dataset["id"], "recipe": "example://credit_tabular",
                                       "overrides": {"output.rows": 50}})
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["state"] == "queued" and job["recipe_name"] == "credit_tabular" and "recipe" not in job
    unknown = app_client.post("/jobs", json={"dataset_id": dataset["id"], "recipe": "nope"})
    assert unknown.status_code == 400 and "credit_tabular" in unknown.json()["detail"]
    assert app_client.post(f"/jobs/{job['id']}/cancel").json()["state"] == "cancelled"
    retried = app_client.post(f"/jobs/{job['id']}/retry").json()
    assert retried["state"] == "queued" and not retried["cancel_requested"] and retried["finished_at"] is None
    assert app_client.post(f"/jobs/{job['id']}/retry").status_code == 409  # queued: nothing to retry
    assert app_client.post(f"/jobs/{job['id']}/cancel").json()["state"] == "cancelled"


def test_upload_over_the_cap_is_413_and_leaves_nothing(app_client):
    before = sorted(p.name for p in (app_client.tenant_dir / "datasets").iterdir())
    body = b"a,b\n" + b"1,2\n" * (CAP // 4 + 10)

    def chunks():  # no Content-Length: the cap is enforced while streaming
        for i in range(0, len(body), 8192):
            yield body[i:i + 8192]

    r = app_client.post("/datasets", params={"name": "big.csv"}, content=chunks())
    assert r.status_code == 413, r.text
    r = app_client.post("/datasets", params={"name": "big.csv"}, content=body)  # with Content-Length
    assert r.status_code == 413
    assert sorted(p.name for p in (app_client.tenant_dir / "datasets").iterdir()) == before
    assert len(app_client.get("/datasets").json()) == len(before)


@pytest.mark.parametrize("body, why", [(b"\xff\xfe\x00binary", "not UTF-8"), (b"PAR1garbage", "Parquet"),
                                       (b"a,b\n1,2\n", "at least 2 rows")])
def test_uploads_are_content_checked(app_client, body, why):
    r = app_client.post("/datasets", params={"name": "x.csv"}, content=body)
    assert r.status_code == 400 and why in r.json()["detail"], r.text
    assert not [p for p in (app_client.tenant_dir / "datasets").iterdir() if p.name.startswith(".")]


def test_json_lines_and_parquet_uploads(app_client, tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"a": range(20), "b": ["x", "y"] * 10})
    lines = app_client.post("/datasets", params={"name": "s.jsonl"},
                            content=frame.to_json(orient="records", lines=True).encode())
    assert lines.status_code == 201 and lines.json()["format"] == "jsonl" and lines.json()["rows"] == 20
    frame.to_parquet(tmp_path / "s.parquet")
    parquet = app_client.post("/datasets", params={"name": "s.parquet"}, content=(tmp_path / "s.parquet").read_bytes())
    assert parquet.status_code == 201 and parquet.json()["format"] == "parquet"
    assert parquet.json()["columns"] == ["a", "b"]
    broken = app_client.post("/datasets", content=b'{"a": 1}\n{"a": \n')
    assert broken.status_code == 400 and "JSON lines" in broken.json()["detail"]


def test_dataset_name_is_a_label_not_a_path(app_client, dataset):
    stored = list((app_client.tenant_dir / "datasets").iterdir())
    assert dataset["name"] == "../../etc/credit.csv"
    assert all(".." not in p.name and "credit" not in p.name for p in stored)


def test_no_key_no_secret_no_trace_and_security_headers(app_client):
    anon = app_client.get("/jobs", headers={"Authorization": ""})
    assert anon.status_code == 401
    wrong = app_client.get("/jobs", headers={"Authorization": "Bearer sf_000000000000_nope"})
    assert wrong.status_code == 401
    for r in (anon, wrong, app_client.get("/jobs")):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["cache-control"] == "no-store"
    bad = app_client.post("/jobs", content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 422 and "\n" not in bad.json()["detail"]
    me = app_client.get("/me").json()
    assert set(me) == {"tenant_id", "tenant", "key_id", "key_prefix", "scopes"}
    assert app_client.get("/admin/tenants").status_code == 403
