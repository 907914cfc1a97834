"""Zip uploads, checked before and while they are extracted into the tenant's storage.

A zip holds either images (a seed folder as `synthforge.data.images` reads it: one subfolder per class, or no
subfolders for unlabelled images) or tables (a relational seed: one CSV, Parquet or JSON lines file per table, the
table named by its file). Which one: every file named like a table → tables; otherwise every file must be an image.

1. The directory alone (no byte extracted yet): every member's name is relative (no `/` or drive at the start, no
   `..`, no backslash, no NUL), it is a regular file or a folder (a link or device is refused: its mode in
   `external_attr`), not encrypted, not a duplicate; at most `max_members` files; their declared sizes add up to at
   most `max_bytes`. `__MACOSX/` and hidden files (`.DS_Store`) are skipped: archivers add them.
2. Extraction: each member is read in chunks and the bytes that actually come out are counted; past the member's
   declared size or past `max_bytes` in all, extraction stops (a zip bomb can declare anything). Files are written
   under names the server makes (`000017.png`); of the client's names only a class folder's name (a label) or a
   table's name is kept, and only when it is a safe name.
3. Content: an image is one by its bytes (Pillow identifies it, `verify()` and a full decode pass, at most
   MAX_IMAGE_PIXELS); a table passes the same check as a single-table upload.

Any failure is a one-line UserError (TooLarge for the caps); the caller removes the half-written folder."""

import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from synthforge.errors import UserError

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members; an empty zip (refused below, by name)
TABLE_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".json": "jsonl"}
IMAGE_FORMATS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "BMP": "bmp", "TIFF": "tif", "WEBP": "webp",
                 "PPM": "ppm"}
MAX_IMAGE_PIXELS = 4096 * 4096  # a seed image is resized to seed.image_size; larger is a decompression bomb's size
# a label (class folder) or a table name: what the recipe names it by (recipe/schema.py's safe names, narrower)
LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")
TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
CHUNK = 1 << 16


class ArchiveTooLarge(Exception):
    """Past a cap while checking or extracting; the message names the cap."""


@dataclass(frozen=True)
class Extracted:
    format: str  # images | tables
    bytes: int  # extracted: what the tenant's quota counts
    rows: int  # images, or rows over every table
    names: list[str]  # the classes (images; [] when unlabelled) or the tables


def is_zip(head: bytes) -> bool:
    return head[:4] in ZIP_MAGIC


def extract(archive: Path, target: Path, *, max_members: int, max_bytes: int) -> Extracted:
    """Check and extract `archive` into the new folder `target` (which the caller removes on any error)."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise UserError("upload: starts like a zip but its directory cannot be read") from None
    with zf:
        members = _members(zf, max_members, max_bytes)
        if all(PurePosixPath(name).suffix.lower() in TABLE_SUFFIXES for _, name in members):
            return _tables(zf, members, target, max_bytes)
        return _images(zf, members, target, max_bytes)


def _members(zf: zipfile.ZipFile, max_members: int, max_bytes: int) -> list[tuple[zipfile.ZipInfo, str]]:
    """Step 1: (member, its checked relative name) for every file to extract, from the directory alone."""
    files, seen, declared = [], set(), 0
    if len(zf.infolist()) > 2 * max_members:  # folders and skipped files too: each costs a check
        raise ArchiveTooLarge(f"upload: the zip has more than {2 * max_members} entries (this server's cap)")
    for i, info in enumerate(zf.infolist()):
        name = info.filename
        where = f"zip member {i + 1} ({name[:80]!r})"
        if "\x00" in name or "\\" in name or name.startswith("/") or re.match(r"[A-Za-z]:", name):
            raise UserError(f"upload: {where} has an absolute or non-portable path; a zip's names are relative, "
                            "with '/' between folders")
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise UserError(f"upload: {where} reaches outside the archive ('..')")
        kind = stat.S_IFMT(info.external_attr >> 16)  # 0: no type recorded (zipfile.writestr, Windows zips)
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise UserError(f"upload: {where} is a link or a device; a zip of a seed holds files and folders only")
        if info.flag_bits & 0x1:
            raise UserError(f"upload: {where} is encrypted")
        if info.is_dir() or not parts or parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts):
            continue
        clean = "/".join(parts)
        if clean in seen:
            raise UserError(f"upload: {where} appears twice in the zip")
        seen.add(clean)
        files.append((info, clean))
        declared += info.file_size
        if len(files) > max_members:
            raise ArchiveTooLarge(f"upload: the zip holds more than {max_members} files (this server's cap)")
        if declared > max_bytes:
            raise ArchiveTooLarge(f"upload: the zip's files add up to more than {max_bytes} bytes unzipped "
                                  "(this server's cap, or the tenant's quota left)")
    if not files:
        raise UserError("upload: the zip holds no files")
    return files


class _Counter:
    """Step 2: the bytes that come out of the zip, against what each member declared and the total cap."""

    def __init__(self, max_bytes: int):
        self.max_bytes, self.total = max_bytes, 0

    def copy(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, path: Path) -> int:
        written = 0
        try:
            with zf.open(info) as src, open(path, "xb") as dst:
                while chunk := src.read(CHUNK):
                    written += len(chunk)
                    self.total += len(chunk)
                    if written > info.file_size:
                        raise UserError(f"upload: zip member {name[:80]!r} unzips to more than the "
                                        f"{info.file_size} bytes it declares")
                    if self.total > self.max_bytes:
                        raise ArchiveTooLarge(f"upload: the zip unzips to more than {self.max_bytes} bytes "
                                              "(this server's cap, or the tenant's quota left)")
                    dst.write(chunk)
        except (zipfile.BadZipFile, EOFError, NotImplementedError) as e:  # bad CRC, truncated, unknown method
            raise UserError(f"upload: zip member {name[:80]!r} cannot be read "
                            f"({' '.join(str(e).split())[:80]})") from None
        return written


def _common_root(members: list[tuple[zipfile.ZipInfo, str]]) -> list[tuple[zipfile.ZipInfo, str]]:
    """One folder around everything (`digits/0/a.png`, as zipping a folder makes) is taken off. So a zip of a single
    class folder is unlabelled images: one class says nothing a model could condition on."""
    tops = {name.split("/")[0] for _, name in members}
    if len(tops) == 1 and all("/" in name for _, name in members):
        return [(info, name.split("/", 1)[1]) for info, name in members]
    return members


def _images(zf, members, target: Path, max_bytes: int) -> Extracted:
    from PIL import Image, UnidentifiedImageError

    members = _common_root(members)
    labelled = {name.count("/") > 0 for _, name in members}
    if len(labelled) > 1:
        loose = next(info.filename for info, name in members if "/" not in name)
        raise UserError(f"upload: zip of images: {loose[:80]!r} is outside a class folder; put every image in a "
                        "folder named by its class (or none in folders, for unlabelled images)")
    counter, classes = _Counter(max_bytes), set()
    for i, (info, name) in enumerate(members):
        label = name.split("/")[0] if "/" in name else None
        if label is not None:
            if not LABEL.fullmatch(label):
                raise UserError(f"upload: zip of images: class folder {label[:80]!r} is not a safe name (letters, "
                                "digits, '_', '.', '+', '-', at most 64, starting with a letter or digit)")
            classes.add(label)
        folder = target / label if label else target
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"{i:06d}.upload"
        counter.copy(zf, info, info.filename, tmp)
        try:
            with Image.open(tmp) as img:
                fmt = IMAGE_FORMATS.get(img.format or "")
                if fmt is None:
                    raise UserError(f"upload: zip member {info.filename[:80]!r} is a {img.format} image; images "
                                    f"are {', '.join(IMAGE_FORMATS)}")
                if img.width * img.height > MAX_IMAGE_PIXELS:
                    raise UserError(f"upload: zip member {info.filename[:80]!r} is {img.width}×{img.height} "
                                    f"pixels; at most {MAX_IMAGE_PIXELS} pixels an image")
                img.verify()
            with Image.open(tmp) as img:
                img.load()  # verify() reads the structure; a truncated image fails only when decoded
        except UserError:
            raise
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            raise UserError(f"upload: zip member {info.filename[:80]!r} is not an image Pillow can read; a zip of "
                            f"images holds only images ({', '.join(IMAGE_FORMATS)}), a zip of tables only tables"
                            ) from None
        tmp.rename(folder / f"{i:06d}.{fmt}")
    return Extracted("images", counter.total, len(members), sorted(classes))


def _tables(zf, members, target: Path, max_bytes: int) -> Extracted:
    from synthforge.service.storage import check_table

    members = _common_root(members)
    target.mkdir(parents=True, exist_ok=True)
    counter, names, rows = _Counter(max_bytes), [], 0
    for info, name in members:
        if "/" in name:
            raise UserError(f"upload: zip of tables: {info.filename[:80]!r} is in a folder; put one file per table "
                            "at the top of the zip (planes.csv, flights.csv)")
        table = PurePosixPath(name).stem
        if not TABLE.fullmatch(table):
            raise UserError(f"upload: zip of tables: {info.filename[:80]!r}: a table's name (its file name) is "
                            "letters, digits and '_', at most 64, not starting with a digit")
        if table in names:
            raise UserError(f"upload: zip of tables: two files for table {table!r}")
        tmp = target / f".{table}.upload"
        counter.copy(zf, info, info.filename, tmp)
        try:
            fmt, n, _ = check_table(tmp)
        except UserError as e:
            raise UserError(str(e).replace("upload:", f"upload: zip member {info.filename[:80]!r}:", 1)) from None
        tmp.rename(target / f"{table}.{fmt}")
        names.append(table)
        rows += n
    return Extracted("tables", counter.total, rows, sorted(names))


def table_files(folder: Path) -> dict[str, Path]:
    """A stored zip of tables: table name → its file (names were checked when it was extracted)."""
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")}
