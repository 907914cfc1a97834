"""Tenant-confined files. Every path here is built from server-generated ids under `<data>/tenants/<tenant id>/`;
a client's file name is kept only as a label in the database, never joined into a path.

Uploads are streamed to a temporary name in the tenant's folder, counted as they arrive and refused past the cap
(the temporary file removed: nothing is left behind), content-checked (CSV parses into a table; Parquet has its
magic bytes and a readable schema; JSON lines parse into a table), then renamed to their final, server-generated key.
A zip (images, or several tables) is checked and extracted by archives.py into a folder under such a key, and the
zip itself removed: the folder is what the tenant stores and what its quota counts."""

import hashlib
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio

from synthforge.errors import UserError
from synthforge.service import archives


class TooLarge(Exception):
    """The upload went past a cap; nothing of it was kept. The message, when there is one, names the cap."""


@dataclass(frozen=True)
class Stored:
    key: str
    format: str
    bytes: int
    rows: int
    columns: list[str]
    sha256: str


class Storage:
    def __init__(self, root: Path):
        self.root = Path(root).resolve()

    def tenant(self, tenant_id: str) -> Path:
        return self._inside(self.root / "tenants" / tenant_id)

    def datasets(self, tenant_id: str) -> Path:
        return self.tenant(tenant_id) / "datasets"

    def dataset_path(self, tenant_id: str, key: str) -> Path:
        return self._inside(self.datasets(tenant_id) / key)

    def job_dir(self, tenant_id: str, job_id: str) -> Path:
        return self._inside(self.tenant(tenant_id) / "jobs" / job_id)

    def _inside(self, path: Path) -> Path:
        # ids are ours (token_urlsafe: no '/' or '..'); checked anyway, so a bug here cannot reach outside the root
        resolved = path.resolve()
        if not resolved.is_relative_to(self.root):
            raise ValueError(f"{path} is outside the storage root")
        return resolved

    async def save_upload(self, tenant_id: str, chunks: AsyncIterator[bytes], limit: int, *,
                          max_members: int = 20_000, max_unzipped: int | None = None) -> Stored:
        """`limit`: bytes of the body; `max_unzipped`: bytes a zip may extract to (default `limit`)."""
        folder = self.datasets(tenant_id)
        folder.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(16)
        tmp = folder / f".{key}.upload.tmp"
        digest, size = hashlib.sha256(), 0
        try:
            with open(tmp, "xb") as f:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise TooLarge()
                    digest.update(chunk)
                    f.write(chunk)
            with open(tmp, "rb") as f:
                zipped = archives.is_zip(f.read(4))
            if zipped:
                return await anyio.to_thread.run_sync(self._extract, tmp, folder, key, max_members,
                                                      limit if max_unzipped is None else max_unzipped,
                                                      digest.hexdigest())
            fmt, rows, columns = check_table(tmp)
            final = folder / f"{key}.{fmt}"
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return Stored(key=final.name, format=fmt, bytes=size, rows=rows, columns=columns, sha256=digest.hexdigest())

    def _extract(self, archive: Path, folder: Path, key: str, max_members: int, max_bytes: int,
                 sha256: str) -> Stored:
        work = folder / f".{key}.extract.tmp"
        try:
            try:
                got = archives.extract(archive, work, max_members=max_members, max_bytes=max_bytes)
            except archives.ArchiveTooLarge as e:
                raise TooLarge(str(e)) from None
            os.replace(work, folder / key)
        except BaseException:
            self.remove(work)
            raise
        finally:
            archive.unlink(missing_ok=True)
        return Stored(key=key, format=got.format, bytes=got.bytes, rows=got.rows, columns=got.names, sha256=sha256)

    def remove(self, path: Path) -> None:
        path = self._inside(path)
        if path.is_dir():
            import shutil

            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def check_table(path: Path) -> tuple[str, int, list[str]]:
    """(format, rows, columns) of an uploaded table, or a one-line UserError: Parquet by its magic bytes, JSON lines
    by a first line that is a JSON object, else CSV."""
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(0)
        first = f.readline(1 << 20).strip()
    if first.startswith(b"{") and first.endswith(b"}"):
        return _check_jsonl(path)
    if head == b"PAR1":
        import pyarrow.parquet as pq

        try:
            meta = pq.ParquetFile(path).metadata
            columns = list(pq.read_schema(path).names)
        except Exception:
            raise UserError("upload: starts like Parquet but its footer or schema cannot be read") from None
        if not columns or meta.num_rows < 2:
            raise UserError(f"upload: a Parquet file with {meta.num_rows} rows and {len(columns)} columns; "
                            "a seed needs at least 2 rows and 1 column")
        return "parquet", meta.num_rows, columns
    import pandas as pd

    try:
        df = pd.read_csv(path, encoding="utf-8", encoding_errors="strict", low_memory=False)
    except UnicodeDecodeError:
        raise UserError("upload: not UTF-8 text and not Parquet; send a CSV (UTF-8) or a Parquet file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as e:
        raise UserError(f"upload: not a readable CSV ({' '.join(str(e).split())[:120]})") from None
    if len(df) < 2 or len(df.columns) < 1:
        raise UserError(f"upload: a CSV with {len(df)} rows and {len(df.columns)} columns; a seed needs at least "
                        "2 rows and 1 column")
    return "csv", len(df), [str(c) for c in df.columns]


def _check_jsonl(path: Path) -> tuple[str, int, list[str]]:
    import pandas as pd

    try:
        df = pd.read_json(path, lines=True, encoding="utf-8", dtype=False)
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"upload: starts like JSON lines but is not ({' '.join(str(e).split())[:120]})") from None
    if len(df) < 2 or len(df.columns) < 1:
        raise UserError(f"upload: JSON lines with {len(df)} rows and {len(df.columns)} columns; a seed needs at least "
                        "2 rows and 1 column")
    return "jsonl", len(df), [str(c) for c in df.columns]
