"""Reading a seed table from CSV, Parquet, JSONL or an example, with every failure named by file.

Every way a seed file can be wrong that a user can fix (missing, unreadable, empty, not UTF-8, really a Parquet or
Excel file under another name, a binary file) becomes one `UserError` line naming the file and the fix. Nothing
here unpickles: CSV and JSONL are text, and Parquet is read by pyarrow (>= 15, which no longer deserialises the
pickled extension types of CVE-2023-47248).
"""

import difflib
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from synthforge.data import examples
from synthforge.errors import UserError

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_SNIFF = 8192
# what a seed file really is, from its first bytes, when that is not what its name or seed.format says
_MAGIC = ((b"PAR1", "parquet", "a Parquet file; name it .parquet or set seed.format: parquet"),
          (b"PK\x03\x04", None, "a zip archive (an Excel .xlsx?); export the sheet as CSV"),
          (b"\xd0\xcf\x11\xe0", None, "an old Excel (.xls) workbook; export the sheet as CSV"),
          (b"\x1f\x8b", None, "gzip-compressed; decompress it (gunzip) and point seed.source at the result"))
_SEPARATORS = (";", "\t", "|")


@dataclass(frozen=True)
class Seed:
    frame: pd.DataFrame
    path: Path  # resolved file the rows came from (for examples: the cached copy)
    sha256: str


def resolve(source: str, base: Path | None = None) -> Path:
    """The absolute, symlink-free path a seed is read from (what the manifest and the console report)."""
    if source.startswith("example://"):
        name = source.removeprefix("example://")
        if name not in examples.EXAMPLES:
            close = difflib.get_close_matches(name, list(examples.EXAMPLES), n=1)
            raise UserError(f"seed.source: no example named {name!r}"
                            + (f"; did you mean example://{close[0]}?" if close else "")
                            + f" (examples: {', '.join(sorted(examples.EXAMPLES))})")
        return examples.materialise(name)
    path = Path(source).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    return path.resolve()


def read_seed(source: str, fmt: str = "auto", base: Path | None = None, max_rows: int | None = None) -> Seed:
    path = resolve(source, base)
    if not path.exists():
        where = (f" (relative paths are read from the recipe's folder, {base})"
                 if base is not None and not Path(source).expanduser().is_absolute()
                 and not source.startswith("example://") else "")
        raise UserError(f"seed.source: file not found: {path}{where}")
    if path.is_dir():
        parts = sorted(path.glob("*.parquet"))
        if not parts:
            raise UserError(f"seed.source: {path} is a folder without Parquet parts; tabular seeds are one CSV, "
                            "Parquet or JSONL file, or a folder of Parquet parts (as a run's data/ folder)")
        frame = pd.concat([_read(p, "parquet") for p in parts], ignore_index=True)  # a run's data/ reads back whole
        digest = hashlib.sha256("".join(file_sha256(p) for p in parts).encode()).hexdigest()
        return Seed(frame=frame.iloc[:max_rows] if max_rows else frame, path=path, sha256=digest)
    fmt = FORMATS.get(path.suffix.lower()) if fmt == "auto" else fmt
    if fmt is None:
        raise UserError(f"seed.source: cannot tell the format of {path.name}; use .csv, .parquet or .jsonl, "
                        "or set seed.format")
    _sniff(path, fmt)
    frame = _read(path, fmt)
    if max_rows is not None and len(frame) > max_rows:
        frame = frame.iloc[:max_rows]
    if frame.shape[1] == 0:
        raise UserError(f"seed.source: {path} has no columns; give a table with a header row")
    if len(frame) == 0:
        raise UserError(f"seed.source: {path} has a header but no rows; add data rows below the header")
    return Seed(frame=frame.reset_index(drop=True), path=path, sha256=file_sha256(path))


def _sniff(path: Path, fmt: str) -> None:
    """Refuse, by its first bytes, a file that is not what it claims to be, before a reader fails obscurely."""
    try:
        with open(path, "rb") as f:
            head = f.read(_SNIFF)
    except PermissionError:
        raise UserError(f"seed.source: {path} cannot be read (permission denied); check its permissions") from None
    except OSError as e:
        raise UserError(f"seed.source: {path} cannot be read ({e.strerror or type(e).__name__})") from None
    if not head:
        raise UserError(f"seed.source: {path} is empty (0 bytes); give a table with a header row and data rows")
    for magic, kind, what in _MAGIC:
        if head.startswith(magic) and kind != fmt:
            raise UserError(f"seed.source: {path} is {what}")
    if fmt in ("csv", "jsonl") and b"\x00" in head:
        raise UserError(f"seed.source: {path} is a binary file, not {fmt.upper()} text; export the table as CSV")


def _read(path: Path, fmt: str) -> pd.DataFrame:
    try:
        if fmt == "csv":
            frame = pd.read_csv(path, encoding="utf-8")
            sep = _other_separator(frame)
            frame = pd.read_csv(path, encoding="utf-8", sep=sep) if sep else frame
            return _codes_as_text(path, frame, sep or ",")
        if fmt == "parquet":
            return pd.read_parquet(path)
        return pd.read_json(path, lines=True, encoding="utf-8")
    except pd.errors.EmptyDataError:
        raise UserError(f"seed.source: {path} is empty (no header, no rows); give a table with a header row") \
            from None
    except UnicodeDecodeError:
        raise UserError(f"seed.source: {path} is not UTF-8 text ({_where_not_utf8(path)}); re-save it as UTF-8, "
                        "e.g. iconv -f latin1 -t utf-8") from None
    except PermissionError:
        raise UserError(f"seed.source: {path} cannot be read (permission denied); check its permissions") from None
    except (ValueError, pd.errors.ParserError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"seed.source: {path} is not readable as {fmt} ({first[:160]})") from None


def _codes_as_text(path: Path, frame: pd.DataFrame, sep: str) -> pd.DataFrame:
    """Columns pandas read as numbers that are codes in the file: digit strings of one length, some starting with 0
    (zip codes, account numbers: 01234 read as 1234 loses its zero), or any digits under a postcode header
    (zip, plz, cp ...). They are read again as text, as written."""
    from synthforge.data.pii import header_kind  # same layer: what a header names

    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])
               and not pd.api.types.is_bool_dtype(frame[c])]
    if not numeric:
        return frame
    raw = pd.read_csv(path, encoding="utf-8", sep=sep, dtype=str, usecols=numeric)
    for c in numeric:
        text = raw[c].dropna().str.strip()
        if not len(text) or not text.str.fullmatch(r"\d+").all():
            continue
        zeros = text.str.len().nunique() == 1 and text.str.len().iloc[0] >= 2 and text.str.startswith("0").any()
        if zeros or (header_kind(str(c)) == "postcode" and text.str.len().min() >= 3):
            frame[c] = raw[c].str.strip()
    return frame


def _other_separator(frame: pd.DataFrame) -> str | None:
    """A CSV read as one column whose header holds `;`, tab or `|` was written with that separator."""
    if frame.shape[1] != 1:
        return None
    header = str(frame.columns[0])
    found = [s for s in _SEPARATORS if s in header]
    return found[0] if len(found) == 1 else None


def _where_not_utf8(path: Path) -> str:
    """'line N, byte B' of the first byte that is not UTF-8 (read in blocks, so a big file is not loaded)."""
    offset, line, carry = 0, 1, b""  # carry: the start of a character split across two blocks
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            data, carry = carry + block, b""
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as e:
                if e.reason == "unexpected end of data" and len(data) - e.start < 4:
                    data, carry = data[:e.start], data[e.start:]
                else:
                    line += data[:e.start].count(b"\n")
                    return f"line {line}, byte {offset + e.start}: 0x{data[e.start]:02x}"
            line += data.count(b"\n")
            offset += len(data)
    return "the file ends inside a character"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
