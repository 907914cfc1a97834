"""Image seeds: a folder (one subfolder per class, or unlabelled), Parquet with image bytes, or an example.

Every image comes out as uint8 `(side, side, channels)`: greyscale or RGB as the recipe asks, padded to a square
and resized to `seed.image_size` (what was done is stated in `ImageSeed.notes`). Files that are not images or do
not decode are skipped and counted by reason; nothing usable left is a `UserError`.

Examples (no network): `example://digits` is scikit-learn's bundled 8×8 digits (1,797 images, 17 grey levels);
`example://fashion_mnist` reads the idx files of Debian's `dataset-fashion-mnist` (70,000 28×28 images; the
10,000 of its test file are marked as the held-out split).
"""

import gzip
import hashlib
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from synthforge.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
# Fashion-MNIST's class names, spelled so they are safe folder names (the original "T-shirt/top" has a slash)
FASHION_CLASSES = ("tshirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                   "ankle_boot")
IMAGE_EXAMPLES = ("digits", "fashion_mnist")


@dataclass(frozen=True)
class ImageSet:
    """Images as uint8 (n, side, side, channels), with their class names (None: unlabelled) and source ids."""

    images: np.ndarray
    labels: np.ndarray | None = None  # str per image
    ids: tuple[str, ...] = ()

    def __post_init__(self):
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (n, h, w, c), got {self.images.dtype} {self.images.shape}")
        if self.labels is not None and len(self.labels) != len(self.images):
            raise ValueError("labels and images differ in length")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def classes(self) -> tuple[str, ...]:
        return () if self.labels is None else tuple(sorted(set(self.labels.tolist()), key=natural_key))

    def take(self, index) -> "ImageSet":
        index = np.asarray(index, dtype=np.int64)
        return ImageSet(self.images[index], None if self.labels is None else self.labels[index],
                        tuple(self.ids[i] for i in index) if self.ids else ())


@dataclass(frozen=True)
class ImageSeed:
    data: ImageSet
    path: Path
    sha256: str
    test: np.ndarray | None = None  # bool per image: the seed's own held-out split, when it has one
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    skipped_examples: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def natural_key(text: str):
    """'2' < '10' and 'a' < 'b': labels sort like people expect."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", str(text)) if p]


def read_image_seed(source: str, *, base: Path | None = None, image_size: int | None = None,
                    channels: int | None = None, label_column: str | None = None, split_column: str | None = None,
                    drop: tuple[str, ...] = (), max_rows: int | None = None, random_seed: int = 0) -> ImageSeed:
    """The seed's images at the recipe's size and channels. `max_rows` keeps a seeded random subset (both splits,
    in proportion), not the first rows: image files and examples are often sorted by class."""
    if source.startswith("example://"):
        name = source.removeprefix("example://")
        if name not in IMAGE_EXAMPLES:
            raise UserError(f"seed.source: example://{name} is not an image example; choose one of "
                            f"{', '.join(IMAGE_EXAMPLES)}")
        raw, labels, test, path, sha, ids = _digits() if name == "digits" else _fashion_mnist()
        reader = _ArrayReader(raw)
        skipped, examples = Counter(), []
    else:
        path = Path(source).expanduser()
        if not path.is_absolute() and base is not None:
            path = base / path
        path = path.resolve()
        if not path.exists():
            raise UserError(f"seed.source: not found: {path}")
        if path.is_dir():
            reader, labels, ids, skipped, examples, sha = _scan_folder(path)
            test = None
        elif path.suffix.lower() in (".parquet", ".pq"):
            reader, labels, ids, test, skipped, examples, sha = _read_parquet(path, label_column, split_column, drop)
        else:
            raise UserError(f"seed.source: {path.name} is neither a folder of images nor a Parquet file with image "
                            "bytes (nor example://digits, example://fashion_mnist)")
    if max_rows is not None and len(ids) > max_rows:
        keep = np.sort(np.random.default_rng(random_seed).choice(len(ids), size=max_rows, replace=False))
        reader = reader.subset(keep)
        labels = None if labels is None else labels[keep]
        ids = tuple(ids[i] for i in keep)
        test = None if test is None else test[keep]
    images, ok, notes = _decode_all(reader, image_size, channels, skipped, examples)
    if not ok.any():
        why = ", ".join(f"{n} {r}" for r, n in skipped.items()) or "no image files"
        raise UserError(f"seed.source: no usable image in {path} ({why})")
    keep = np.flatnonzero(ok)
    labels = None if labels is None else labels[keep]
    data = ImageSet(images, labels, tuple(ids[i] for i in keep))
    if test is not None:
        test = test[keep]
    if skipped:
        notes.append("skipped " + ", ".join(f"{n} {r}" for r, n in sorted(skipped.items()))
                     + (f" (e.g. {', '.join(examples[:3])})" if examples else ""))
    return ImageSeed(data=data, path=path, sha256=sha, test=test, skipped=dict(skipped),
                     skipped_examples=tuple(examples[:20]), notes=tuple(notes))


# ---------------------------------------------------------------- sources


class _ArrayReader:
    """Already-decoded uint8 images (n, h, w) or (n, h, w, c): examples."""

    def __init__(self, arrays: np.ndarray):
        self.arrays = arrays

    def __len__(self):
        return len(self.arrays)

    def subset(self, keep):
        return _ArrayReader(self.arrays[keep])

    def items(self):
        from PIL import Image

        for a in self.arrays:
            yield Image.fromarray(a), None


class _BytesReader:
    """Encoded images: file paths (folders) or bytes (Parquet), decoded one at a time by Pillow."""

    def __init__(self, items: list, names: list[str], problems: list[str | None] | None = None):
        self.raw, self.names = items, names
        self.problems = problems or [None] * len(items)

    def __len__(self):
        return len(self.raw)

    def subset(self, keep):
        return _BytesReader([self.raw[i] for i in keep], [self.names[i] for i in keep],
                            [self.problems[i] for i in keep])

    def items(self):
        from PIL import Image, UnidentifiedImageError

        for raw, name, problem in zip(self.raw, self.names, self.problems):
            if problem is not None or raw is None:
                yield None, (problem or "missing image", name)
                continue
            try:
                img = Image.open(io.BytesIO(raw) if isinstance(raw, (bytes, bytearray)) else raw)
                img.load()  # decodes now: a truncated file fails here, not later
                yield img, None
            except UnidentifiedImageError:
                # a file named like an image that Pillow cannot even identify is a broken image, not a stray file
                broken = isinstance(raw, Path) and raw.suffix.lower() in IMAGE_SUFFIXES
                yield None, ("corrupt image" if broken else "not an image", name)
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
                yield None, ("corrupt image", name)


def _scan_folder(root: Path):
    """One subfolder per class (images anywhere below it), or, without subfolders, an unlabelled folder."""
    subdirs = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                     key=lambda p: natural_key(p.name))
    skipped: Counter = Counter()
    examples: list[str] = []
    files, labels = [], []
    if subdirs:
        for f in sorted(root.iterdir()):
            if f.is_file():
                skipped["files outside a class folder"] += 1
                examples.append(f.name)
        for d in subdirs:
            for f in sorted(p for p in d.rglob("*") if p.is_file()):
                files.append(f)
                labels.append(d.name)
    else:
        files = sorted(p for p in root.iterdir() if p.is_file())
    if not files:
        raise UserError(f"seed.source: {root} holds no files; put images in it, one subfolder per class")
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(root)).encode())
        h.update(hashlib.sha256(f.read_bytes()).digest())
    names = [str(f.relative_to(root)) for f in files]
    return (_BytesReader(files, names), np.array(labels, dtype=object) if subdirs else None, tuple(names), skipped,
            examples, h.hexdigest())


def _read_parquet(path: Path, label_column: str | None, split_column: str | None, drop: tuple[str, ...]):
    import pandas as pd

    try:
        df = pd.read_parquet(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises many types for a bad file; all mean the same here
        raise UserError(f"seed.source: {path} is not readable as Parquet ({str(e).splitlines()[0][:120]})") from None
    df = df.drop(columns=[c for c in drop if c in df.columns])
    candidates = [c for c in df.columns if _is_image_column(df[c])]
    if not candidates:
        raise UserError(f"seed.source: {path.name} has no column of image bytes (columns: "
                        f"{', '.join(map(str, df.columns))})")
    if len(candidates) > 1:
        raise UserError(f"seed.source: {path.name} has several image columns ({', '.join(candidates)}); list the "
                        "others under seed.drop")
    for key, col in (("seed.label_column", label_column), ("seed.split_column", split_column)):
        if col is not None and col not in df.columns:
            raise UserError(f"{key}: {col!r} is not a column of {path.name}; columns: "
                            f"{', '.join(map(str, df.columns))}")
    raw = [_bytes_of(v) for v in df[candidates[0]]]
    names = [f"row {i}" for i in range(len(df))]
    skipped: Counter = Counter()
    labels, problems = None, [None] * len(raw)
    if label_column is not None:
        missing = df[label_column].isna().to_numpy()
        problems = ["missing label" if m else None for m in missing]
        labels = df[label_column].map(lambda v: "" if v is None or v != v else str(v)).to_numpy(dtype=object)
    test = None
    if split_column is not None:
        test = (df[split_column].astype(str).str.lower() == "test").to_numpy()
    return _BytesReader(raw, names, problems), labels, tuple(names), test, skipped, [], _file_sha256(path)


def _is_image_column(s) -> bool:
    first = s.dropna().head(1)
    return len(first) == 1 and _bytes_of(first.iloc[0]) is not None


def _bytes_of(v):
    """Raw bytes, or Hugging Face's {'bytes': ..., 'path': ...} image struct."""
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    if isinstance(v, dict) and isinstance(v.get("bytes"), (bytes, bytearray)):
        return bytes(v["bytes"])
    return None


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    # 17 grey levels (0..16) stretched to 0..255; white digits on black, as scikit-learn stores them
    arrays = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)
    labels = np.array([str(t) for t in d.target], dtype=object)
    sha = hashlib.sha256(arrays.tobytes() + d.target.astype(np.int64).tobytes()).hexdigest()
    return arrays, labels, None, Path("sklearn:load_digits"), sha, tuple(f"digits[{i}]" for i in range(len(d.target)))


def _fashion_mnist():
    paths = {(split, kind): FASHION_DIR / f"{split}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz"
             for split in ("train", "t10k") for kind in ("images", "labels")}
    missing = [p for p in paths.values() if not p.exists()]
    if missing:
        raise UserError(f"example://fashion_mnist: {missing[0]} not found; install Debian's package: "
                        "apt-get install -y dataset-fashion-mnist")
    h = hashlib.sha256()
    parts = {}
    for key, p in paths.items():
        data = gzip.decompress(p.read_bytes())
        h.update(data)
        parts[key] = np.frombuffer(data, np.uint8, offset=16 if key[1] == "images" else 8)
    images = np.concatenate([parts[("train", "images")], parts[("t10k", "images")]]).reshape(-1, 28, 28)
    target = np.concatenate([parts[("train", "labels")], parts[("t10k", "labels")]])
    labels = np.array([FASHION_CLASSES[t] for t in target], dtype=object)
    n_train = len(parts[("train", "labels")])
    test = np.arange(len(target)) >= n_train
    ids = tuple(f"{'train' if i < n_train else 't10k'}[{i if i < n_train else i - n_train}]"
                for i in range(len(target)))
    return images, labels, test, FASHION_DIR, h.hexdigest(), ids


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------- decoding, padding, resizing


def _decode_all(reader, image_size: int | None, channels: int | None, skipped: Counter, examples: list[str]):
    """Decode every item; pick size and channels from the data when the recipe leaves them open; pad and resize."""
    from PIL import Image

    decoded, ok = [], np.zeros(len(reader), dtype=bool)
    for i, (img, problem) in enumerate(reader.items()):
        if problem is not None:
            skipped[problem[0]] += 1
            examples.append(problem[1])
            decoded.append(None)
            continue
        decoded.append(img)
        ok[i] = True
    usable = [im for im in decoded if im is not None]
    notes: list[str] = []
    if not usable:
        return np.zeros((0, 1, 1, 1), np.uint8), ok, notes
    sizes = Counter(im.size for im in usable)
    if image_size is None:
        image_size = max(sizes.most_common(1)[0][0])
        notes.append(f"image size {image_size}×{image_size} taken from the seed's most common size (seed.image_size "
                     "not set)")
    if channels is None:
        channels = 1 if all(_is_grey(im) for im in usable) else 3
        notes.append(f"{channels} channel{'s' if channels > 1 else ''} ({'grey' if channels == 1 else 'RGB'}) chosen "
                     "from the seed (seed.channels not set)")
    out = np.zeros((len(usable), image_size, image_size, channels), np.uint8)
    padded = resized = alpha = 0
    for j, im in enumerate(usable):
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            im = _flatten_alpha(im)
            alpha += 1
        im = im.convert("L" if channels == 1 else "RGB")
        w, h = im.size
        if w != h:
            im = _pad_square(im)
            padded += 1
        if im.size[0] != image_size:
            im = im.resize((image_size, image_size), Image.Resampling.LANCZOS)
            resized += 1
        a = np.asarray(im, dtype=np.uint8)
        out[j] = a[..., None] if a.ndim == 2 else a
    if alpha:
        notes.append(f"{alpha} images had transparency: flattened onto white")
    if padded:
        notes.append(f"{padded} images were not square: padded (centred) with their border's median colour")
    if resized:
        shown = ", ".join(f"{w}×{h}" for (w, h), _ in sizes.most_common(3))
        notes.append(f"{resized} images resized to {image_size}×{image_size} with Lanczos (seed sizes: {shown}"
                     f"{', …' if len(sizes) > 3 else ''})")
    return out, ok, notes


def _is_grey(im) -> bool:
    if im.mode in ("1", "L", "LA", "I", "I;16", "F"):
        return True
    if im.mode == "P":
        im = im.convert("RGB")
    if im.mode not in ("RGB", "RGBA"):
        return False
    a = np.asarray(im)[..., :3].astype(np.int16)
    return bool((np.abs(a[..., 0] - a[..., 1]).max() <= 2) and (np.abs(a[..., 1] - a[..., 2]).max() <= 2))


def _flatten_alpha(im):
    from PIL import Image

    rgba = im.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _pad_square(im):
    from PIL import Image

    a = np.asarray(im)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]]).reshape(-1, 1 if a.ndim == 2 else a.shape[2])
    colour = tuple(int(v) for v in np.median(border, axis=0))
    side = max(im.size)
    canvas = Image.new(im.mode, (side, side), colour[0] if im.mode == "L" else colour)
    canvas.paste(im, ((side - im.size[0]) // 2, (side - im.size[1]) // 2))
    return canvas


# ---------------------------------------------------------------- encoding


def to_png(image: np.ndarray) -> bytes:
    """One uint8 (h, w, c) image as PNG bytes."""
    from PIL import Image

    a = image[..., 0] if image.shape[-1] == 1 else image
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def read_png(path: Path, channels: int) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        a = np.asarray(im.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    return a[..., None] if a.ndim == 2 else a


def safe_folder_name(label: str) -> str:
    """A label as a folder name: letters, digits, '.', '_', '-' kept, anything else '_'."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", str(label)).strip("._") or "_"
    return name[:100]
