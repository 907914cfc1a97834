"""Reading a seed table from CSV, Parquet, JSONL or an example, with every failure named by file."""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from synthforge.data import examples
from synthforge.errors import UserError

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass(frozen=True)
class Seed:
    frame: pd.DataFrame
    path: Path  # resolved file the rows came from (for examples: the cached copy)
    sha256: str


def resolve(source: str, base: Path | None = None) -> Path:
    if source.startswith("example://"):
        return examples.materialise(source.removeprefix("example://"))
    path = Path(source).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    return path.resolve()


def read_seed(source: str, fmt: str = "auto", base: Path | None = None, max_rows: int | None = None) -> Seed:
    path = resolve(source, base)
    if not path.exists():
        raise UserError(f"seed.source: file not found: {path}")
    if path.is_dir():
        raise UserError(f"seed.source: {path} is a folder; tabular seeds are one CSV, Parquet or JSONL file")
    fmt = FORMATS.get(path.suffix.lower()) if fmt == "auto" else fmt
    if fmt is None:
        raise UserError(f"seed.source: cannot tell the format of {path.name}; use .csv, .parquet or .jsonl, "
                        "or set seed.format")
    frame = _read(path, fmt)
    if max_rows is not None and len(frame) > max_rows:
        frame = frame.iloc[:max_rows]
    if frame.shape[1] == 0:
        raise UserError(f"seed.source: {path} has no columns")
    if len(frame) == 0:
        raise UserError(f"seed.source: {path} has a header but no rows")
    return Seed(frame=frame.reset_index(drop=True), path=path, sha256=file_sha256(path))


def _read(path: Path, fmt: str) -> pd.DataFrame:
    try:
        if fmt == "csv":
            return pd.read_csv(path, encoding="utf-8")
        if fmt == "parquet":
            return pd.read_parquet(path)
        return pd.read_json(path, lines=True, encoding="utf-8")
    except pd.errors.EmptyDataError:
        raise UserError(f"seed.source: {path} is empty") from None
    except UnicodeDecodeError as e:
        raise UserError(f"seed.source: {path} is not UTF-8 (byte {e.start}); re-save it as UTF-8") from None
    except PermissionError:
        raise UserError(f"seed.source: {path} cannot be read (permission denied)") from None
    except (ValueError, pd.errors.ParserError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"seed.source: {path} is not readable as {fmt} ({first[:120]})") from None


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
