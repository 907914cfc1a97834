"""Image seeds: folders (labelled and not), Parquet with bytes, examples, and what is skipped or changed."""

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from synthforge.data import images as img
from synthforge.data.images import read_image_seed
from synthforge.errors import UserError


def _png(a: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a, mode).save(buf, format="PNG")
    return buf.getvalue()


def _square(value: int, side: int = 8) -> np.ndarray:
    return np.full((side, side), value, np.uint8)


def test_folder_with_classes_counts_what_it_skips(tmp_path):
    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
        for i in range(3):
            (tmp_path / label / f"{i}.png").write_bytes(_png(_square(40 * i)))
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / "dog" / "broken.png").write_bytes(_png(_square(9))[:40])  # truncated
    (tmp_path / "stray.png").write_bytes(_png(_square(1)))
    seed = read_image_seed(str(tmp_path), image_size=8, channels=1)
    assert len(seed.data) == 6 and seed.data.classes == ("cat", "dog")
    assert seed.data.images.shape == (6, 8, 8, 1) and seed.data.images.dtype == np.uint8
    assert seed.skipped == {"not an image": 1, "corrupt image": 1, "files outside a class folder": 1}
    assert any("skipped" in n for n in seed.notes)
    assert len(seed.sha256) == 64


def test_unlabelled_folder_pads_resizes_and_flattens_alpha(tmp_path):
    wide = np.zeros((10, 20, 4), np.uint8)
    wide[..., 3] = 255
    (tmp_path / "a.png").write_bytes(_png(wide, "RGBA"))
    (tmp_path / "b.png").write_bytes(_png(np.full((16, 16, 3), (200, 10, 10), np.uint8)))
    seed = read_image_seed(str(tmp_path), image_size=8)
    assert seed.data.labels is None and seed.data.images.shape == (2, 8, 8, 3)  # colour found: 3 channels
    text = " ".join(seed.notes)
    assert "padded" in text and "resized to 8×8" in text and "transparency" in text and "3 channels" in text


def test_nothing_usable_is_a_clear_error(tmp_path):
    (tmp_path / "x.txt").write_text("no")
    with pytest.raises(UserError, match="no usable image.*1 not an image"):
        read_image_seed(str(tmp_path))
    with pytest.raises(UserError, match="not found"):
        read_image_seed(str(tmp_path / "missing"))


def test_parquet_with_bytes_labels_and_split(tmp_path):
    rows = [{"img": {"bytes": _png(_square(10 * i)), "path": None}, "y": str(i % 2),
             "part": "test" if i >= 8 else "train", "other": i} for i in range(10)]
    rows[3]["img"] = {"bytes": b"garbage", "path": None}
    rows[4]["y"] = None
    path = tmp_path / "seed.parquet"
    pd.DataFrame(rows).to_parquet(path)
    seed = read_image_seed(str(path), label_column="y", split_column="part", image_size=8, channels=1)
    assert len(seed.data) == 8 and seed.skipped == {"not an image": 1, "missing label": 1}
    assert seed.test.sum() == 2 and set(seed.data.labels) == {"0", "1"}
    with pytest.raises(UserError, match="seed.label_column: 'nope' is not a column"):
        read_image_seed(str(path), label_column="nope")


def test_digits_example_and_seeded_max_rows():
    seed = read_image_seed("example://digits")
    assert seed.data.images.shape == (1797, 8, 8, 1) and seed.data.classes == tuple("0123456789")
    assert seed.data.images.max() == 255
    a = read_image_seed("example://digits", max_rows=100, random_seed=1)
    b = read_image_seed("example://digits", max_rows=100, random_seed=1)
    assert len(a.data) == 100 and a.data.ids == b.data.ids and len(set(a.data.labels)) > 5


def test_fashion_mnist_missing_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(img, "FASHION_DIR", tmp_path)
    with pytest.raises(UserError, match="apt-get install -y dataset-fashion-mnist"):
        read_image_seed("example://fashion_mnist")


def test_safe_folder_names():
    assert img.safe_folder_name("T-shirt/top") == "T-shirt_top"
    assert img.safe_folder_name("../..") == "_"
