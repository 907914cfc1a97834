"""The output folder's life cycle.

A run builds everything in `<folder>.partial/` and renames it to `<folder>` only after the manifest, written last,
says it is complete. So a folder named like the output is always a finished dataset; a killed run leaves only the
`.partial` folder, which `--resume` continues and `--overwrite` discards.
"""

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from synthforge.errors import UserError

STATE = "state.json"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Workspace:
    final: Path
    work: Path

    def path(self, *parts: str) -> Path:
        return self.work.joinpath(*parts)


def open_workspace(final: Path, recipe_hash: str, *, overwrite: bool, resume: bool) -> Workspace:
    final = Path(final).absolute()
    work = final.with_name(final.name + ".partial")
    if final.exists() and not final.is_dir():
        raise UserError(f"output.folder: {final} is a file; choose a folder path")
    if final.exists() and not overwrite and not resume:
        raise UserError(f"output.folder: {final} already exists; pass --overwrite to replace it or --out to "
                        "choose another folder")
    if final.exists() and resume and not work.exists() and is_complete(final):
        raise UserError(f"output.folder: {final} is already complete; nothing to resume (use --overwrite to redo)")
    if work.exists():
        if resume:
            _check_same_run(work, recipe_hash)
        elif overwrite:
            shutil.rmtree(work)
        else:
            raise UserError(f"output.folder: an unfinished run is in {work}; pass --resume to continue it or "
                            "--overwrite to start again")
    try:
        work.mkdir(parents=True, exist_ok=True)
        probe = work / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except PermissionError:
        raise UserError(f"output.folder: cannot write in {work.parent} (permission denied)") from None
    except NotADirectoryError:
        raise UserError(f"output.folder: a parent of {final} is a file") from None
    except OSError as e:
        raise UserError(f"output.folder: cannot create {work} ({e.strerror})") from None
    state = work / STATE
    if not state.exists():
        state.write_text(json.dumps({"recipe_sha256": recipe_hash}))
    return Workspace(final=final, work=work)


def _check_same_run(work: Path, recipe_hash: str) -> None:
    try:
        saved = json.loads((work / STATE).read_text()).get("recipe_sha256")
    except (OSError, ValueError):
        saved = None
    if saved != recipe_hash:
        raise UserError(f"output.folder: the unfinished run in {work} was made by a different recipe or seed; "
                        "pass --overwrite to start again")


def commit(ws: Workspace) -> Path:
    """Swap the finished work folder into place; an old output (allowed by --overwrite) goes only after."""
    (ws.work / STATE).unlink(missing_ok=True)
    old = None
    if ws.final.exists():
        old = ws.final.with_name(ws.final.name + f".old{os.getpid()}")
        os.replace(ws.final, old)
    os.replace(ws.work, ws.final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return ws.final


def is_complete(folder: Path) -> bool:
    try:
        return json.loads((Path(folder) / MANIFEST).read_text()).get("complete") is True
    except (OSError, ValueError):
        return False
