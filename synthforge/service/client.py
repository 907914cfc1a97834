"""`synthforge.Client(url, key)`: the service from Python.

    client = synthforge.Client("http://127.0.0.1:8000")          # key from SYNTHFORGE_API_KEY
    ds = client.upload("seed.csv")
    job = client.submit("credit_tabular", ds["id"], **{"output.rows": 500})
    result = client.wait(job["id"])                               # a progress bar on stderr
    df = client.result(job["id"]).data(); report = client.result(job["id"]).report()
"""

import io
import os
import time
from pathlib import Path
from typing import Any

import httpx

FINAL = ("succeeded", "failed_gates", "failed", "cancelled")
KEY_ENV = "SYNTHFORGE_API_KEY"


def _without_paths(recipe: dict) -> str:
    import yaml

    recipe = {k: (dict(v) if isinstance(v, dict) else v) for k, v in (recipe or {}).items()}
    for section, key in (("seed", "source"), ("output", "folder")):
        if isinstance(recipe.get(section), dict):
            recipe[section].pop(key, None)
    return yaml.safe_dump(recipe, sort_keys=False)


def seed_of(recipe: str | Path) -> Path | None:
    """The seed file a local recipe names (relative to the recipe's folder), if it names one."""
    import yaml

    text = str(recipe)
    if text.startswith("example://") or not text.endswith((".yaml", ".yml")):
        return None
    try:
        source = ((yaml.safe_load(Path(recipe).read_text(encoding="utf-8")) or {}).get("seed") or {}).get("source")
    except (OSError, yaml.YAMLError, AttributeError):
        return None  # the server says what is wrong with the recipe itself
    if not source or str(source).startswith("example://"):
        return None
    return (Path(recipe).resolve().parent / str(source)).resolve()


class ServiceError(Exception):
    """What the service refused, as its one-line reason (`HTTP 400: seed.source: ...`)."""


class Result:
    def __init__(self, client: "Client", job_id: str):
        self.client, self.job_id = client, job_id

    def data(self, table: str | None = None):
        """The rows (a table or text job); a relational job's rows one `table` at a time."""
        import pandas as pd

        params = {"table": table} if table is not None else None
        return pd.read_parquet(io.BytesIO(self.client._get(f"/jobs/{self.job_id}/data.parquet",
                                                           params=params).content))

    def images(self, to: str | Path) -> Path:
        """An image job's PNGs and metadata.parquet, extracted into the folder `to`."""
        import zipfile

        to = Path(to)
        with zipfile.ZipFile(io.BytesIO(self.client._get(f"/jobs/{self.job_id}/images.zip").content)) as zf:
            zf.extractall(to)  # our own zip: images/<label>/<id>.png and metadata.parquet, names made by the run
        return to

    def report(self) -> dict:
        return self.client._get(f"/jobs/{self.job_id}/report.json").json()

    def report_html(self) -> str:
        return self.client._get(f"/jobs/{self.job_id}/report.html").text

    def manifest(self) -> dict:
        return self.client._get(f"/jobs/{self.job_id}/manifest.json").json()


class Client:
    def __init__(self, url: str, key: str | None = None, *, timeout: float = 60.0):
        key = key or os.environ.get(KEY_ENV)
        if not key:
            raise ServiceError(f"no API key: pass key= or set {KEY_ENV}")
        self._http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout,
                                  headers={"Authorization": f"Bearer {key}"})

    def __repr__(self) -> str:  # never the key
        return f"Client({str(self._http.base_url)!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _check(self, r: httpx.Response) -> httpx.Response:
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text[:200]
            raise ServiceError(f"HTTP {r.status_code}: {detail}")
        return r

    def _get(self, path: str, **kw) -> httpx.Response:
        try:
            return self._check(self._http.get(path, **kw))
        except httpx.TransportError as e:
            raise ServiceError(f"cannot reach {self._http.base_url}: {e}") from None

    def _send(self, method: str, path: str, **kw) -> httpx.Response:
        try:
            return self._check(self._http.request(method, path, **kw))
        except httpx.TransportError as e:
            raise ServiceError(f"cannot reach {self._http.base_url}: {e}") from None

    def upload(self, path: str | Path, name: str | None = None) -> dict:
        path = Path(path)
        with open(path, "rb") as f:  # streamed from the file, never read whole into memory
            return self._send("POST", "/datasets", params={"name": name or path.name}, content=f,
                              headers={"Content-Type": "application/octet-stream"}).json()

    def submit(self, recipe: str | Path | dict, dataset_id: str, **overrides: Any) -> dict:
        """A shipped recipe (`credit_tabular` or `example://credit_tabular`), a recipe YAML file of yours, or a
        recipe as a dict. The server sets the seed (the dataset) and the output folder: a recipe of yours is sent
        without its `seed.source` and `output.folder`."""
        body: dict[str, Any] = {"dataset_id": dataset_id, "overrides": overrides}
        text = str(recipe)
        if isinstance(recipe, dict):
            body["recipe_yaml"] = _without_paths(recipe)
        elif text.startswith("example://") or (not text.endswith((".yaml", ".yml")) and "/" not in text):
            body["recipe"] = text
        else:
            import yaml

            body["recipe_yaml"] = _without_paths(yaml.safe_load(Path(recipe).read_text(encoding="utf-8")))
        return self._send("POST", "/jobs", json=body).json()

    def job(self, job_id: str) -> dict:
        return self._get(f"/jobs/{job_id}").json()

    def jobs(self) -> list[dict]:
        return self._get("/jobs").json()

    def datasets(self) -> list[dict]:
        return self._get("/datasets").json()

    def cancel(self, job_id: str) -> dict:
        return self._send("POST", f"/jobs/{job_id}/cancel").json()

    def events(self, job_id: str, after: int = 0) -> list[dict]:
        return self._get(f"/jobs/{job_id}/events", params={"after": after}).json()

    def wait(self, job_id: str, *, timeout: float | None = None, poll: float = 1.0, progress: bool = True) -> dict:
        """Poll until the job ends; with `progress`, its stage on stderr as it changes."""
        from rich.console import Console

        console = Console(stderr=True, quiet=not progress)
        started, stage = time.monotonic(), None
        with console.status("queued") as status:
            while True:
                job = self.job(job_id)
                label = f"{job['state']} {job['stage']}".strip()
                if label != stage:
                    stage = label
                    status.update(label)
                if job["state"] in FINAL:
                    return job
                if timeout is not None and time.monotonic() - started > timeout:
                    raise ServiceError(f"job {job_id} still {job['state']} after {timeout:g}s")
                time.sleep(poll)

    def result(self, job_id: str) -> Result:
        return Result(self, job_id)
