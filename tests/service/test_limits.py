"""Limits on FastAPI's TestClient (no job runs): a key's request rate (429 with Retry-After), a tenant's jobs
queued or running, a tenant's stored bytes (413 naming the quota, nothing left), and the audit log of key use."""

from fastapi.testclient import TestClient

from synthforge.service.app import create_app
from synthforge.service.serve import admin_key
from synthforge.service.settings import Settings

SEED = b"a,b\n" + b"".join(f"{i},{i % 7}\n".encode() for i in range(200))


def _tenant(settings: Settings):
    admin = admin_key(settings, force=False)
    client = TestClient(create_app(settings, run_jobs=False))
    h = {"Authorization": f"Bearer {admin}"}
    t = client.post("/admin/tenants", json={"name": "acme"}, headers=h).json()
    key = client.post(f"/admin/tenants/{t['id']}/keys", json={"scopes": ["read", "write"]}, headers=h).json()["key"]
    client.headers["Authorization"] = f"Bearer {key}"
    return client, t["id"], key


def test_rate_limit_per_key(tmp_path):
    client, _, _ = _tenant(Settings(data=tmp_path / "d", rate_per_minute=60, rate_burst=3))
    with client:
        codes = [client.get("/jobs").status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3] == 429
        r = client.get("/jobs")
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and "\n" not in r.json()["detail"]


def test_quotas_on_jobs_and_stored_bytes(tmp_path):
    settings = Settings(data=tmp_path / "d", max_active_jobs=1, max_stored_bytes=len(SEED) + 100)
    client, tenant, key = _tenant(settings)
    with client:
        ds = client.post("/datasets", content=SEED).json()
        again = client.post("/datasets", content=SEED)
        assert again.status_code == 413 and again.json()["detail"].startswith("quota:")
        files = sorted(p.name for p in (settings.data / "tenants" / tenant / "datasets").iterdir())
        assert len(files) == 1 and not files[0].startswith(".")
        body = {"dataset_id": ds["id"], "recipe": "credit_tabular", "overrides": {"output.rows": 10}}
        first = client.post("/jobs", json=body)
        assert first.status_code == 201
        second = client.post("/jobs", json=body)
        assert second.status_code == 429 and second.json()["detail"].startswith("quota:")
        client.post(f"/jobs/{first.json()['id']}/cancel")
        assert client.post("/jobs", json=body).status_code == 201
    audit = (settings.data / "audit.log").read_text()
    assert f" {tenant} POST /jobs 429" in audit and f" {tenant} POST /datasets 201" in audit
    assert key not in audit and key.split("_")[2] not in audit


def test_retention_deletes_old_ended_jobs_and_unused_datasets(tmp_path):
    from datetime import timedelta

    from sqlalchemy import update

    from synthforge.service.models import Dataset, Job, JobEvent, now
    from synthforge.service.retention import sweep

    settings = Settings(data=tmp_path / "d", retention_days=30)
    client, tenant, _ = _tenant(settings)
    with client:
        app = client.app
        old, kept = (client.post("/datasets", content=SEED).json() for _ in range(2))
        job = client.post("/jobs", json={"dataset_id": kept["id"], "recipe": "credit_tabular"}).json()
        client.post(f"/jobs/{job['id']}/cancel")
        folder = app.state.storage.job_dir(tenant, job["id"])
        folder.mkdir(parents=True)
        (folder / "data.parquet").write_bytes(b"x")
        with app.state.sessions() as s, s.begin():
            long_ago = now() - timedelta(days=31)
            s.execute(update(Job).values(finished_at=long_ago))
            s.execute(update(Dataset).where(Dataset.id == old["id"]).values(created_at=long_ago))
        assert sweep(app.state.sessions, app.state.storage, 30) == (1, 1)
        assert client.get(f"/jobs/{job['id']}").status_code == 404
        assert [d["id"] for d in client.get("/datasets").json()] == [kept["id"]]
        assert not folder.exists()
        with app.state.sessions() as s:
            assert s.query(JobEvent).count() == 0
        files = list((settings.data / "tenants" / tenant / "datasets").iterdir())
        assert len(files) == 1


def test_deleting_a_tenant_reaches_rows_and_files(tmp_path):
    settings = Settings(data=tmp_path / "d")
    client, tenant, key = _tenant(settings)
    admin = {"Authorization": f"Bearer {admin_key(settings, force=True)}"}
    with client:
        ds = client.post("/datasets", content=SEED).json()
        job = client.post("/jobs", json={"dataset_id": ds["id"], "recipe": "credit_tabular"}).json()
        assert client.delete(f"/admin/tenants/{tenant}", headers=admin).status_code == 409  # a job is queued
        client.post(f"/jobs/{job['id']}/cancel")
        folder = settings.data / "tenants" / tenant
        (folder / "jobs" / job["id"]).mkdir(parents=True)
        assert client.delete(f"/admin/tenants/{tenant}", headers=admin).status_code == 204
        assert not folder.exists()
        assert client.get("/jobs").status_code == 401  # its keys went with it
        tenants = client.get("/admin/tenants", headers=admin).json()
        assert tenant not in [t["id"] for t in tenants]
        assert client.delete(f"/admin/tenants/{tenant}", headers=admin).status_code == 404


def test_a_key_revoked_by_another_process_is_refused_once_its_fresh_window_ends(tmp_path):
    """Polls are answered from the verified-key cache for `fresh` seconds (no database round trip); a revocation
    written to the database by another process (not this server's DELETE /admin/keys, which forgets at once) takes
    effect when that window ends."""
    import time

    from sqlalchemy import update

    from synthforge.service.auth import VerifiedKeys
    from synthforge.service.models import ApiKey, now

    client, tenant, _ = _tenant(Settings(data=tmp_path / "d"))
    app = client.app
    app.state.verified_keys = VerifiedKeys(fresh=3.0)
    with client:
        assert client.get("/jobs").status_code == 200
        with app.state.sessions() as s, s.begin():
            s.execute(update(ApiKey).where(ApiKey.tenant_id == tenant).values(revoked_at=now()))
        assert client.get("/jobs").status_code == 200  # inside the window: answered from memory
        time.sleep(3.1)
        assert client.get("/jobs").status_code == 401
