"""Helpers for the service tests: a real `synthforge serve` on 127.0.0.1 (a free port, its own data folder), with
tenants and keys made through its admin API."""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

# a job small enough for the default suite: 300 seed rows, 200 generated, one epoch, no gates
TINY = {"output.rows": 200, "seed.max_rows": 300, "generator.family": "autoregressive",
        "generator.params": {"max_epochs": 1}, "quality.gates": {}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, data: Path, workers: int = 2, port: int | None = None, database: str | None = None,
                 executor: str | None = None):
        self.data, self.workers, self.port, self.database = data, workers, port or free_port(), database
        self.executor = executor
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.admin_key = None

    def start(self) -> "Server":
        env = {**os.environ, "SYNTHFORGE_POLL_SECONDS": "0.2"}
        env.pop("SYNTHFORGE_API_KEY", None)
        self.log = open(self.data.parent / f"serve-{self.port}.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "synthforge.cli", "serve", "--port", str(self.port),
                                      "--data", str(self.data), "--workers", str(self.workers),
                                      *(["--database", self.database] if self.database else []),
                                      *(["--executor", self.executor] if self.executor else [])],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        deadline = time.monotonic() + 60
        for line in iter(self.proc.stderr.readline, b""):
            text = line.decode()
            self.log.write(line)
            found = re.search(r"(sf_\S+)", text)
            if found:
                self.admin_key = found.group(1)
            if "serving on" in text or time.monotonic() > deadline:
                break
        threading.Thread(target=self._drain, daemon=True).start()  # a full pipe would stall the server
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError("server did not start")

    def _drain(self) -> None:
        for line in iter(self.proc.stderr.readline, b""):
            self.log.write(line)
            self.log.flush()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.admin_key}"}, timeout=30)

    def tenant(self, name: str, scopes=("read", "write")) -> tuple[str, str]:
        """(tenant id, a new key of it)."""
        with self.admin() as a:
            t = a.post("/admin/tenants", json={"name": name})
            assert t.status_code == 201, t.text
            k = a.post(f"/admin/tenants/{t.json()['id']}/keys", json={"name": "test", "scopes": list(scopes)})
            assert k.status_code == 201, k.text
        return t.json()["id"], k.json()["key"]

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)




def wait_for(client: httpx.Client, job_id: str, states, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["state"] in states:
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} not in {states} after {timeout}s: {job}")


class Postgres:
    """A throwaway PostgreSQL (Debian's binaries) on 127.0.0.1, run as the `postgres` user when we are root."""

    def __init__(self, folder: Path):
        self.folder, self.port = folder, free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self) -> "Postgres":
        import shutil

        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run("initdb", "-D", str(self.folder / "db"), "--auth=trust", "-U", "postgres")
        self._run("pg_ctl", "-D", str(self.folder / "db"), "-w", "-l", str(self.folder / "pg.log"), "-o",
                  f"-p {self.port} -k {self.folder} -h 127.0.0.1", "start")
        return self

    def database(self) -> str:
        """A new, empty database's URL."""
        import secrets

        import psycopg

        name = f"sf_{secrets.token_hex(4)}"
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")
        return self.url.rsplit("/", 1)[0] + "/" + name

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.folder / "db"), "-m", "fast", "stop")


def in_process_client(folder: Path, **settings):
    """A TestClient on the app in this process (no job processes) with one tenant's read/write key as its
    Authorization header; `.tenant_dir` is that tenant's storage. A context manager, like TestClient itself."""
    from contextlib import contextmanager

    from fastapi.testclient import TestClient

    from synthforge.service.app import create_app
    from synthforge.service.serve import admin_key
    from synthforge.service.settings import Settings

    @contextmanager
    def client():
        s = Settings(data=folder / "data", **settings)
        admin = admin_key(s, force=False)
        with TestClient(create_app(s, run_jobs=False)) as c:
            h = {"Authorization": f"Bearer {admin}"}
            t = c.post("/admin/tenants", json={"name": "acme"}, headers=h).json()
            key = c.post(f"/admin/tenants/{t['id']}/keys", json={"scopes": ["read", "write"]}, headers=h).json()["key"]
            c.headers["Authorization"] = f"Bearer {key}"
            c.tenant_dir = s.data / "tenants" / t["id"]
            yield c

    return client()
