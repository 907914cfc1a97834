"""Atomic file writes: a reader sees the old file, the new file, or nothing; never half of one."""

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


@contextlib.contextmanager
def _writing(path: Path, tmp: Path):
    """A failed write (disk full, quota, file size limit) leaves no temp file and names the file it was for: a
    write() error carries no file name of its own."""
    try:
        yield
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if e.errno and not e.filename:
            raise OSError(e.errno, e.strerror or os.strerror(e.errno), str(path)) from e
        raise


def write_bytes(path: Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    with _writing(path, tmp), open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def write_text(path: Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, default=str, sort_keys=False) + "\n")


def write_parquet(path: Path, df: pd.DataFrame, metadata: dict[str, str] | None = None) -> Path:
    """Parquet with our own key/value metadata (e.g. recipe name, shard seed) kept in the file's schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(df, preserve_index=False)
    if metadata:
        merged = {**(table.schema.metadata or {}), **{f"synthforge.{k}".encode(): str(v).encode()
                                                      for k, v in metadata.items()}}
        table = table.replace_schema_metadata(merged)
    tmp = _tmp(path)
    with _writing(path, tmp):
        pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def read_parquet_metadata(path: Path) -> dict[str, str]:
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    return {k.decode().removeprefix("synthforge."): v.decode() for k, v in meta.items()
            if k.startswith(b"synthforge.")}


def read_parts(folder: Path) -> pd.DataFrame:
    """Every committed part of a run folder (`data/part-*.parquet`), in shard order, as one frame."""
    parts = sorted((Path(folder) / "data").glob("part-*.parquet"))
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True) if parts else pd.DataFrame()
