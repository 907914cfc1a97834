"""CI: `synthforge serve` with no flags, in the venv the README's first command made: it starts on 127.0.0.1:8000,
prints an admin key once, answers /health and GET /me with that key and serves the sign-in page; then it is stopped
and its data folder (./synthforge-data) removed. Standard library only, beside the installed synthforge."""

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

URL = "http://127.0.0.1:8000"


def get(path: str, key: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(URL + path, headers={"Authorization": f"Bearer {key}"} if key else {})
    with urllib.request.urlopen(request, timeout=10) as r:
        return r.status, r.read()


def main() -> int:
    data = Path("synthforge-data")
    if data.exists():
        raise SystemExit(f"{data} exists: refusing to start over someone's service data")
    server = subprocess.Popen(["synthforge", "serve"], stderr=subprocess.PIPE, text=True)
    try:
        key, deadline = None, time.monotonic() + 120
        for line in server.stderr:
            found = re.search(r"(sf_\S+)", line)
            key = found.group(1) if found else key
            if "serving on" in line or time.monotonic() > deadline:
                break
        if key is None:
            raise SystemExit("ci: synthforge serve printed no admin key")
        for _ in range(100):
            try:
                status, _ = get("/health")
                break
            except OSError:
                time.sleep(0.2)
        me = json.loads(get("/me", key)[1])
        page = get("/ui/signin")[1].decode()
        assert "admin" in " ".join(me.get("scopes", [])), me
        assert "<form" in page, page[:200]
        print(f"ci: synthforge serve with no flags answered (/health {status}, /me tenant {me.get('tenant_id')})")
        return 0
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
