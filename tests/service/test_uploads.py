"""Zip uploads on FastAPI's TestClient (no job runs): a zip of images or of tables is checked before and while it is
extracted (paths, links, member count, unzipped size, content), lands under server-generated names in the tenant's
folder, and decides which recipes a job on it may run. A refused zip leaves nothing behind."""

import io
import stat
import zipfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from synthforge.data.images import read_image_seed

from service.helpers import in_process_client

UNZIPPED = 256 * 1024
MEMBERS = 50


@pytest.fixture(scope="module")
def app_client(tmp_path_factory):
    with in_process_client(tmp_path_factory.mktemp("svc"), max_upload_bytes=64 * 1024, max_unzipped_bytes=UNZIPPED,
                           max_zip_members=MEMBERS) as c:
        c.datasets_dir = c.tenant_dir / "datasets"
        yield c


def png(digit: int, k: int = 0) -> bytes:
    digits = read_image_seed("example://digits").data
    i = np.flatnonzero(digits.labels == str(digit))[k]
    buf = io.BytesIO()
    Image.fromarray(digits.images[i, :, :, 0]).save(buf, "PNG")
    return buf.getvalue()


def zipped(members: dict[str, bytes], links: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


def on_disk(c) -> list[str]:
    return sorted(str(p.relative_to(c.datasets_dir)) for p in c.datasets_dir.rglob("*")) \
        if c.datasets_dir.exists() else []


def test_a_zip_of_class_folders_is_extracted_under_server_names(app_client):
    members = {f"my digits/{d}/photo {k}.png": png(d, k) for d in (3, 8) for k in range(4)}
    members |= {"__MACOSX/my digits/._photo 0.png": b"resource fork", "my digits/.DS_Store": b"finder"}
    r = app_client.post("/datasets", params={"name": "digits.zip"}, content=zipped(members),
                        headers={"Content-Type": "application/zip"})
    assert r.status_code == 201, r.text
    ds = r.json()
    assert (ds["format"], ds["rows"], ds["columns"]) == ("images", 8, ["3", "8"])
    folder = next(p for p in app_client.datasets_dir.iterdir() if p.is_dir())
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.png"))
    assert files == [f"3/{i:06d}.png" for i in range(4)] + [f"8/{i:06d}.png" for i in range(4, 8)]
    assert not list(folder.rglob("*photo*")) and not list(folder.rglob(".*"))  # no client name, no junk
    assert ds["bytes"] == sum(p.stat().st_size for p in folder.rglob("*.png"))  # the quota counts what is stored
    seed = read_image_seed(str(folder), image_size=8, channels=1)  # what an image job will read
    assert len(seed.data) == 8 and seed.data.classes == ("3", "8") and not seed.skipped
    assert not list(app_client.datasets_dir.glob("*.zip")) and not list(app_client.datasets_dir.glob(".*"))


@pytest.mark.parametrize("members, links, why", [
    ({"../escape.png": png(1)}, (), "'..'"),
    ({"0/../../escape.png": png(1)}, (), "'..'"),
    ({"/etc/cron.d/x.png": png(1)}, (), "absolute"),
    ({"C:/Windows/x.png": png(1)}, (), "absolute"),
    ({"0\\..\\x.png": png(1)}, (), "absolute or non-portable"),
    ({"0/a.png": png(0)}, ("0/b.png",), "is a link"),
    ({"0/a.png": png(0), "1/notes.txt": b"hello"}, (), "'1/notes.txt' is not an image"),
    ({"digits/0/a.png": png(0), "digits/0/cut.png": png(0)[:40]}, (), "'digits/0/cut.png' is not an image"),
    ({"0/a.png": png(0), "loose.png": png(1)}, (), "outside a class folder"),
    ({"bad:class/a.png": png(0), "ok/b.png": png(1)}, (), "not a safe name"),
    ({"a.csv": b"x,y\n1,2\n3,4\n", "b.png": png(0)}, (), "'a.csv' is not an image"),
    ({}, (), "holds no files"),
])
def test_unsafe_or_wrong_zips_are_400_and_leave_nothing(app_client, members, links, why):
    before = on_disk(app_client)
    r = app_client.post("/datasets", params={"name": "x.zip"}, content=zipped(members, links))
    assert r.status_code == 400, r.text
    assert why in r.json()["detail"] and "\n" not in r.json()["detail"], r.json()
    assert on_disk(app_client) == before


def test_zip_bombs_and_member_counts_are_413_and_leave_nothing(app_client):
    before, datasets = on_disk(app_client), len(app_client.get("/datasets").json())
    bomb = zipped({"0/a.png": b"\0" * (UNZIPPED + 1)})  # ~300 bytes sent, over the unzipped cap declared
    assert len(bomb) < 4096
    r = app_client.post("/datasets", params={"name": "bomb.zip"}, content=bomb)
    assert r.status_code == 413 and "unzipped" in r.json()["detail"], r.text
    many = zipped({f"0/{i}.png": png(0) for i in range(MEMBERS + 1)})
    r = app_client.post("/datasets", params={"name": "many.zip"}, content=many)
    assert r.status_code == 413 and f"more than {MEMBERS} files" in r.json()["detail"], r.text
    # a member that declares fewer bytes than it holds: zipfile stops at the declared size and the CRC fails
    honest = zipped({"0/a.png": png(0), "0/b.png": b"\0" * 5000})
    at = honest.index(b"0/b.png")  # the local header's file name; its sizes sit just before it
    lying = bytearray(honest)
    central = honest.rindex(b"0/b.png")
    for offset, size_at in ((at, at - 8), (central, central - 22)):
        lying[size_at:size_at + 4] = (10).to_bytes(4, "little")  # uncompressed size: 10 bytes
    r = app_client.post("/datasets", params={"name": "lying.zip"}, content=bytes(lying))
    assert r.status_code == 400 and "'0/b.png' cannot be read" in r.json()["detail"], r.text
    assert on_disk(app_client) == before and len(app_client.get("/datasets").json()) == datasets


def test_a_zip_of_tables_and_the_recipes_each_kind_runs(app_client):
    rng = np.random.default_rng(0)
    customers = pd.DataFrame({"customer_id": [f"C{i}" for i in range(30)], "age": rng.integers(20, 70, 30)})
    orders = pd.DataFrame({"order_id": range(90), "customer_id": rng.choice(customers["customer_id"], 90),
                           "amount": rng.gamma(2, 40, 90).round(2)})
    parquet = io.BytesIO()
    orders.to_parquet(parquet)
    r = app_client.post("/datasets", params={"name": "shop.zip"},
                        content=zipped({"shop/customers.csv": customers.to_csv(index=False).encode(),
                                        "shop/orders.parquet": parquet.getvalue()}))
    assert r.status_code == 201, r.text
    tables = r.json()
    assert (tables["format"], tables["rows"], tables["columns"]) == ("tables", 120, ["customers", "orders"])
    folder = app_client.datasets_dir / next(p.name for p in app_client.datasets_dir.iterdir()
                                            if (p / "customers.csv").exists())
    assert sorted(p.name for p in folder.iterdir()) == ["customers.csv", "orders.parquet"]
    bad = app_client.post("/datasets", content=zipped({"my table.csv": b"a,b\n1,2\n3,4\n"}))
    assert bad.status_code == 400 and "table's name" in bad.json()["detail"]
    broken = app_client.post("/datasets", content=zipped({"t.csv": b"a,b\n1,2\n"}))
    assert broken.status_code == 400 and "'t.csv'" in broken.json()["detail"] and "at least 2 rows" in \
        broken.json()["detail"]

    relational = ("name: shop\nmodality: relational\nseed:\n  tables:\n    customers: {primary_key: customer_id}\n"
                  "    orders:\n      primary_key: order_id\n      foreign_keys: {customer_id: customers.customer_id}\n"
                  "output: {rows: 10}\n")
    job = app_client.post("/jobs", json={"dataset_id": tables["id"], "recipe_yaml": relational})
    assert job.status_code == 201 and job.json()["modality"] == "relational", job.text
    missing = app_client.post("/jobs", json={"dataset_id": tables["id"], "recipe_yaml": relational.replace(
        "    orders:", "    invoices:")})
    assert missing.status_code == 400 and "no table 'invoices'; it has customers, orders" in missing.json()["detail"]
    escape = app_client.post("/jobs", json={"dataset_id": tables["id"], "recipe_yaml": relational.replace(
        "{primary_key: customer_id}", "{primary_key: customer_id, source: ../../other/customers.csv}")})
    assert escape.status_code == 400 and "seed.tables.customers.source" in escape.json()["detail"]
    flights = app_client.post("/jobs", json={"dataset_id": tables["id"], "recipe": "flights_relational"})
    assert flights.status_code == 400 and "no table 'planes'" in flights.json()["detail"]
    table_recipe = app_client.post("/jobs", json={"dataset_id": tables["id"], "recipe": "credit_tabular"})
    assert table_recipe.status_code == 400 and "zip of tables" in table_recipe.json()["detail"]

    images = next(d for d in app_client.get("/datasets").json() if d["format"] == "images")
    on_images = app_client.post("/jobs", json={"dataset_id": images["id"], "recipe": "credit_tabular"})
    assert on_images.status_code == 400 and "tabular recipe cannot run on this dataset (images)" in \
        on_images.json()["detail"]
    digits = app_client.post("/jobs", json={"dataset_id": images["id"], "recipe": "digits_images",
                                            "overrides": {"output.rows": 20}})
    assert digits.status_code == 201 and digits.json()["modality"] == "image", digits.text
    single = app_client.post("/datasets", content=customers.to_csv(index=False).encode()).json()
    on_table = app_client.post("/jobs", json={"dataset_id": single["id"], "recipe_yaml": relational})
    assert on_table.status_code == 400 and "runs on a zip of tables" in on_table.json()["detail"]
    for j in app_client.get("/jobs").json():
        app_client.post(f"/jobs/{j['id']}/cancel")
