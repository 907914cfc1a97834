"""The output folder's life cycle.

A run builds everything in `<folder>.partial/` and renames it to `<folder>` only after the manifest, written last,
says it is complete. So a folder named like the output is always a finished dataset; a killed run leaves only the
`.partial` folder, which `--resume` continues and `--overwrite` discards.

Rules, in the order `open_workspace` applies them:

* `<folder>` must be a folder path; an existing `<folder>` is replaced (at commit) only with `--overwrite` or
  `--resume`, and only if it is empty or a synthforge output (it has a manifest): never a folder of the user's.
* a `.partial` holds `state.json` (the hash of the recipe + seed that made it) and, while a run writes it, an
  advisory lock (`.lock`, flock): a second run on the same folder is refused instead of writing into it.
* a `.partial` with progress (a fitted model, a training checkpoint or a committed part) is continued by `--resume`
  (same recipe and seed only) or discarded by `--overwrite`; without either flag the run stops and says which one to
  pass. One without progress (killed before anything was fitted) has nothing to keep and is started again.
"""

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from synthforge.errors import UserError
from synthforge.recipe import Recipe
from synthforge.sinks.files import write_json, write_text

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; everything else works the same
    fcntl = None

STATE = "state.json"
MANIFEST = "manifest.json"
LOCK = ".lock"
_LOCKS: dict[Path, int] = {}  # work folder → open, flock-ed descriptor, held until commit or process exit


@dataclass(frozen=True)
class Workspace:
    final: Path
    work: Path
    recipe_hash: str = ""  # of the recipe + seed that made it (state.json, the manifest)

    def path(self, *parts: str) -> Path:
        return self.work.joinpath(*parts)


def open_run(recipe: Recipe, seed_sha256: str, out: str | Path | None, *, overwrite: bool,
             resume: bool, base_dir: Path | None = None) -> Workspace:
    """Every family's run starts here: the workspace for this recipe + seed, with the recipe as run written first."""
    # where shards run changes no row, so a run started on one executor resumes on another
    recipe_hash = hashlib.sha256((recipe.model_dump_json(exclude={"execution": {"executor", "ray_address"}})
                                  + seed_sha256).encode()).hexdigest()
    # every relative path in a recipe (seed, output folder) is read from the recipe's folder, so a recipe beside its
    # data can be committed and run from anywhere; --out, a command-line path, is relative to where the user is
    final = Path(out) if out else (Path(base_dir or ".") / (recipe.output.folder or Path("runs") / recipe.name))
    ws = open_workspace(final, recipe_hash, overwrite=overwrite, resume=resume)
    write_text(ws.path("recipe.yaml"),  # by alias: the recipe's own keys, so the copy runs as it is
               yaml.safe_dump(recipe.model_dump(mode="json", by_alias=True), sort_keys=False))
    return ws


def open_workspace(final: Path, recipe_hash: str, *, overwrite: bool, resume: bool) -> Workspace:
    # `..` taken away by the letters of the path first: `recipes/../runs` is `runs` even when recipes/ is a link
    final = Path(os.path.normpath(os.path.abspath(Path(final).expanduser()))).resolve()
    if not final.name or final == final.parent:
        raise UserError(f"output.folder: {final} cannot be an output folder; name a folder, e.g. runs/my_data")
    work = final.with_name(final.name + ".partial")
    if final.exists() and not final.is_dir():
        raise UserError(f"output.folder: {final} is a file; choose a folder path")
    if final.is_dir() and not _replaceable(final):
        raise UserError(f"output.folder: {final} holds files that are not a synthforge output (no {MANIFEST}); "
                        "synthforge never replaces such a folder; choose a new or empty folder with --out")
    if final.exists() and not overwrite and not resume:
        raise UserError(f"output.folder: {final} already exists; pass --overwrite to replace it or --out to "
                        "choose another folder")
    if final.exists() and resume and not work.exists() and is_complete(final):
        raise UserError(f"output.folder: {final} is already complete; nothing to resume (use --overwrite to redo)")
    try:
        if work.exists():
            _reuse_or_discard(work, recipe_hash, overwrite=overwrite, resume=resume)
        _create(work, final)
        _lock(work)
        if not (work / STATE).exists():
            write_json(work / STATE, {"recipe_sha256": recipe_hash})
    except UserError:
        _unlock(work)
        raise
    return Workspace(final=final, work=work, recipe_hash=recipe_hash)


def _create(work: Path, final: Path) -> None:
    try:
        work.mkdir(parents=True, exist_ok=True)
        probe = work / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except PermissionError:
        raise UserError(f"output.folder: cannot write in {work.parent} (permission denied); choose a folder you "
                        "can write with --out") from None
    except (NotADirectoryError, FileExistsError):
        raise UserError(f"output.folder: a parent of {final} is a file; choose another folder") from None
    except OSError as e:
        raise UserError(f"output.folder: cannot create {work} ({e.strerror})") from None


def _reuse_or_discard(work: Path, recipe_hash: str, *, overwrite: bool, resume: bool) -> None:
    if not work.is_dir() or not (work / STATE).exists():
        raise UserError(f"output.folder: {work} exists but was not made by synthforge (no {STATE}); move it "
                        "away or choose another folder with --out")
    _lock(work)  # refuses while another run writes it
    same = _saved_hash(work) == recipe_hash
    if resume and same:
        return
    if resume and not overwrite:
        raise UserError(f"output.folder: the unfinished run in {work} was made by a different recipe or seed; "
                        "pass --overwrite to start again")
    if overwrite or not has_progress(work):
        _unlock(work)
        shutil.rmtree(work)
        return
    if same:
        raise UserError(f"output.folder: an unfinished run is in {work}; pass --resume to continue it or "
                        "--overwrite to start again")
    raise UserError(f"output.folder: an unfinished run of a different recipe or seed is in {work}; pass "
                    "--overwrite to discard it or --out to choose another folder")


_SCAFFOLD = {STATE, LOCK, "recipe.yaml", "profile.json", ".write-test"}  # written before any fitting


def has_progress(work: Path) -> bool:
    """Whether a `.partial` holds anything beyond what a run writes before it fits: a model, a training checkpoint
    (any family's), a committed part. Only such a folder is worth a --resume."""
    for p in work.iterdir():
        if p.name in _SCAFFOLD or (p.name.startswith(".") and ".tmp" in p.name):
            continue
        if p.is_dir() and not any(p.rglob("*")):
            continue
        return True
    return False


def _replaceable(folder: Path) -> bool:
    try:
        return (folder / MANIFEST).exists() or not any(folder.iterdir())
    except PermissionError:
        raise UserError(f"output.folder: cannot read {folder} (permission denied)") from None


def _saved_hash(work: Path) -> str | None:
    try:
        return json.loads((work / STATE).read_text()).get("recipe_sha256")
    except (OSError, ValueError, AttributeError):
        return None


def _lock(work: Path) -> None:
    if fcntl is None:
        return
    _unlock(work)  # a run in this process that failed earlier still holds it; runs in one process are sequential
    try:
        fd = os.open(work / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except PermissionError:
        raise UserError(f"output.folder: cannot write in {work} (permission denied)") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UserError(f"output.folder: another synthforge run is writing {work}; wait for it to finish or "
                        "choose another folder with --out") from None
    _LOCKS[work] = fd


def _unlock(work: Path) -> None:
    fd = _LOCKS.pop(work, None)
    if fd is not None:
        os.close(fd)


def release_locks() -> None:
    """Let other processes at the `.partial` folders of runs that ended here without committing (an error, an
    interrupt): their lock would otherwise last as long as this process, e.g. a notebook's kernel."""
    for work in list(_LOCKS):
        _unlock(work)


def commit(ws: Workspace) -> Path:
    """Swap the finished work folder into place; an old output (allowed by --overwrite) goes only after."""
    if not is_complete(ws.work):
        raise RuntimeError(f"commit without a complete {MANIFEST} in {ws.work}")  # a bug: run() writes it first
    (ws.work / STATE).unlink(missing_ok=True)
    _sweep(ws.work)
    (ws.work / LOCK).unlink(missing_ok=True)
    _unlock(ws.work)
    old = None
    if ws.final.exists():
        old = ws.final.with_name(ws.final.name + f".old{os.getpid()}")
        os.replace(ws.final, old)
    os.replace(ws.work, ws.final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return ws.final


def _sweep(work: Path) -> None:
    """Leftovers of writes a killed run never finished: hidden temporary files and an unrenamed model folder."""
    for tmp in work.rglob(".*.tmp*"):
        if tmp.is_file():
            tmp.unlink()
    shutil.rmtree(work / "model.tmp", ignore_errors=True)


def is_complete(folder: Path) -> bool:
    try:
        return json.loads((Path(folder) / MANIFEST).read_text()).get("complete") is True
    except (OSError, ValueError, AttributeError):
        return False
