"""The output folder's life cycle.

A run builds everything in `<folder>.partial/` and renames it to `<folder>` only after the manifest, written last,
says it is complete. So a folder named like the output is always a finished dataset; a killed run leaves only the
`.partial` folder, which `--resume` continues and `--overwrite` discards.

Rules, in the order `open_workspace` applies them:

* `<folder>` must be a folder path; an existing `<folder>` is replaced (at commit) only with `--overwrite` or
  `--resume`, and only if it is empty or a synthforge output (its manifest parses and has synthforge's own keys,
  and its recipe.yaml is there): never a folder of the user's, even one holding a file named manifest.json.
* a differentially private run keeps in the shareable folder only what ε covers: its report and full manifest are
  private too, and its suite and profile come from the DP codec (`dp_shareable_manifest` below).
* what is fitted from the seed (the model, the exact expectation suite, the exact profile) is written under
  `<folder>.partial/private/` and moved at commit to the private folder (`<folder>.private/` unless the recipe or
  `--private-out` names another; left out with `output.keep_private: false` / `--no-model`), so the folder a user
  hands on holds no seed value. A private folder is replaced only if it is one synthforge wrote (its `private.json`).
* a `.partial` holds `state.json` (the hash of the recipe + seed that made it) and, while a run writes it, an
  advisory lock (`.lock`, flock): a second run on the same folder is refused instead of writing into it.
* a `.partial` with progress (a fitted model, a training checkpoint or a committed part) is continued by `--resume`
  (same recipe and seed only) or discarded by `--overwrite`; without either flag the run stops and says which one to
  pass. One without progress (killed before anything was fitted) has nothing to keep and is started again.
"""

import errno
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from synthforge.errors import UserError
from synthforge.recipe import Recipe
from synthforge.recipe.schema import check_paths
from synthforge.sinks.files import write_json, write_text

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; everything else works the same
    fcntl = None

STATE = "state.json"
MANIFEST = "manifest.json"
LOCK = ".lock"
PRIVATE = "private"  # the private part of a `.partial`, moved out at commit
PRIVATE_MARK = "private.json"  # what marks a private folder as synthforge's (and names its shareable twin)
# what every complete run's manifest has (finish_run writes them): a folder whose manifest lacks one is not ours
MANIFEST_KEYS = ("complete", "status", "recipe", "recipe_sha256", "random_seed", "versions", "timings")
_LOCKS: dict[Path, int] = {}  # work folder → open, flock-ed descriptor, held until commit or process exit


@dataclass(frozen=True)
class Workspace:
    final: Path
    work: Path
    recipe_hash: str = ""  # of the recipe + seed that made it (state.json, the manifest)
    private_final: Path | None = None  # where the private part goes at commit; None: left out (deleted)

    def path(self, *parts: str) -> Path:
        return self.work.joinpath(*parts)

    def private(self, *parts: str) -> Path:
        """Inside the private part: the model, the exact suite and profile (never in the shareable folder)."""
        return self.work.joinpath(PRIVATE, *parts)


def open_run(recipe: Recipe, seed_sha256: str, out: str | Path | None, *, overwrite: bool,
             resume: bool, base_dir: Path | None = None, private_out: str | Path | None = None) -> Workspace:
    """Every family's run starts here: the workspace for this recipe + seed, with the recipe as run written first."""
    try:
        check_paths(recipe)  # a Recipe built in Python, not through load_recipe, is checked here too
    except ValueError as e:
        raise UserError(str(e)) from None
    # where shards run, and where (or whether) the private part is kept, change no row, so a run started on one
    # executor resumes on another
    recipe_hash = hashlib.sha256((recipe.model_dump_json(exclude={"execution": {"executor", "ray_address"},
                                                                  "output": {"private_folder", "keep_private"}})
                                  + seed_sha256).encode()).hexdigest()
    # every relative path in a recipe (seed, output folder) is read from the recipe's folder, so a recipe beside its
    # data can be committed and run from anywhere; --out, a command-line path, is relative to where the user is
    final = Path(out) if out else (Path(base_dir or ".") / (recipe.output.folder or Path("runs") / recipe.name))
    if private_out:
        private = Path(private_out)
    elif recipe.output.private_folder and not out:
        private = Path(base_dir or ".") / recipe.output.private_folder
    else:
        private = None  # beside the output: <folder>.private
    ws = open_workspace(final, recipe_hash, overwrite=overwrite, resume=resume, private=private,
                        keep_private=recipe.output.keep_private)
    write_text(ws.path("recipe.yaml"),  # by alias: the recipe's own keys, so the copy runs as it is
               yaml.safe_dump(recipe.model_dump(mode="json", by_alias=True), sort_keys=False))
    return ws


def _absolute(path: Path) -> Path:
    # `..` taken away by the letters of the path first: `recipes/../runs` is `runs` even when recipes/ is a link
    return Path(os.path.normpath(os.path.abspath(Path(path).expanduser()))).resolve()


def private_beside(final: Path) -> Path:
    """The default private folder of an output folder: `<folder>.private` beside it."""
    return final.with_name(final.name + ".private")


def open_workspace(final: Path, recipe_hash: str, *, overwrite: bool, resume: bool, private: Path | None = None,
                   keep_private: bool = True) -> Workspace:
    final = _absolute(final)
    if not final.name or final == final.parent:
        raise UserError(f"output.folder: {final} cannot be an output folder; name a folder, e.g. runs/my_data")
    work = final.with_name(final.name + ".partial")
    private_final = (_absolute(private) if private else private_beside(final)) if keep_private else None
    if private_final is not None and (private_final == final or private_final in (work, *final.parents)
                                     or final in private_final.parents or work in private_final.parents):
        raise UserError(f"output.private_folder: {private_final} must be a folder of its own, not inside or around "
                        f"the shareable output {final}")
    if final.exists() and not final.is_dir():
        raise UserError(f"output.folder: {final} is a file; choose a folder path")
    if final.is_dir() and not _replaceable(final):
        raise UserError(f"output.folder: {final} holds files that are not a synthforge output (no {MANIFEST} with "
                        "synthforge's keys beside its recipe.yaml); synthforge never replaces such a folder; choose a "
                        "new or empty folder with --out")
    if private_final is not None and private_final.exists():
        if not is_private_folder(private_final) and not (private_final.is_dir() and not any(private_final.iterdir())):
            raise UserError(f"output.private_folder: {private_final} exists and is not a synthforge private folder "
                            f"(no {PRIVATE_MARK}); synthforge never replaces it; choose another with --private-out")
        if not overwrite and not resume:
            raise UserError(f"output.private_folder: {private_final} already exists; pass --overwrite to replace it "
                            "or choose another folder with --private-out")
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
        write_json(work / PRIVATE / PRIVATE_MARK, {
            "synthforge": "private", "shareable": str(final), "recipe_sha256": recipe_hash,
            "what": "the fitted model, the exact expectation suite and the exact seed profile (a differentially "
                    "private run's report and full manifest too): they hold seed values or figures graded on "
                    "them; never share this folder"})
    except UserError:
        _unlock(work)
        raise
    return Workspace(final=final, work=work, recipe_hash=recipe_hash, private_final=private_final)


def user_expectations(recipe: Recipe) -> tuple:
    """The recipe's own expectations as (type, kwargs): kept as written in the shareable suite."""
    return tuple((e.type, dict(e.kwargs)) for e in recipe.quality.expectations)


def write_suite(work: Path, name: str, exact: dict, rows, user: tuple = ()) -> None:
    """An expectation suite built from the seed: the exact one (what validation uses) into the private part, the
    shareable copy (`quality.expectations.shareable_suite`) into `expectations/` of the shareable folder."""
    from synthforge.quality.expectations import shareable_suite

    write_json(work / PRIVATE / "expectations" / name, exact)
    write_json(work / "expectations" / name, shareable_suite(exact, rows, user))


def write_released_suite(work: Path, name: str, suite: dict) -> None:
    """A differentially private run's suite, built from the DP codec's released statistics only
    (`quality.expectations.released_suite`): covered by ε, so the same file goes to both folders; the private copy is
    the one validation reads, as for any run."""
    write_json(work / PRIVATE / "expectations" / name, suite)
    write_json(work / "expectations" / name, suite)


# A differentially private run (generator.params.dp) shares only what ε covers or what the synthetic rows alone
# give: the report (fidelity, detection, privacy attacks, utility: graded against the training and holdout rows, as it
# must be) and the full manifest go to the private folder; the shareable manifest is this copy of it. What is left
# out is everything else read from the rows: the gates' verdict and values (computed from the report), and the
# seed file's SHA-256 with the recipe hash that includes it (a digest of the rows: whoever holds all but one row
# and a guess of the last can confirm it, the very test DP must defeat). The manifest says so in `withheld`.
DP_WITHHELD = {
    "status": "the gates' verdict, graded on the raw rows: in the private folder's manifest.json and report",
    "failing_gates": "gate values graded on the raw rows: in the private folder",
    "seed.sha256": "a digest of the seed file: in the private folder",
    "recipe_sha256": "here a digest of the recipe alone; the digest of recipe + seed is in the private folder",
}


def dp_shareable_manifest(manifest: dict) -> dict:
    """The manifest of a DP run's shareable folder: `manifest` less what was read from the rows (DP_WITHHELD)."""
    shared = dict(manifest, status="withheld", failing_gates=[], withheld=DP_WITHHELD,
                  seed={k: v for k, v in (manifest.get("seed") or {}).items() if k != "sha256"},
                  recipe_sha256=hashlib.sha256(json.dumps(manifest["recipe"], sort_keys=True).encode()).hexdigest())
    return shared


def dp_files_note(ws: Workspace) -> dict:
    """The manifest's `files` of a DP run: what each folder holds, and what ε covers in the shareable one."""
    private = str(ws.private_final) if ws.private_final else None
    return {"shareable": str(ws.final), "private": private,
            "report": str(ws.private_final / "report.html") if ws.private_final else None,
            "shareable_holds": "data (the synthetic rows), shards/ (rows drawn and rejected per shard), "
                               "expectations/suite.json (built from the DP codec's "
                               "released statistics only), expectations/result.json (the synthetic rows validated "
                               "against it), profile.json (the schema and the DP codec's released statistics), "
                               "recipe.yaml, manifest.json (less what was read from the rows: see `withheld`); "
                               "covered by ε: nothing in it is computed from the rows except through the DP "
                               "mechanisms in `differential_privacy` (the schema and the row count are taken as "
                               "public)",
            "private_holds": "report.json/html (fidelity, detection, privacy attacks, utility: graded on the raw "
                             "training and holdout rows, outside ε), manifest.json (the full one: status, gates, "
                             "the seed's digest), model/ (the DP codec and weights), expectations/suite.json (the "
                             "suite validation used, the same as the shareable one), profile.json (the exact "
                             "profile: seed values), seed files; never share it" if private else
                             "nothing kept (output.keep_private: false / --no-model): the report is not on disk"}


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


# written before any fitting (profile.json and seed.json: the seed files, in the private part)
_SCAFFOLD = {STATE, LOCK, "recipe.yaml", "profile.json", "seed.json", ".write-test", PRIVATE_MARK}


def has_progress(work: Path) -> bool:
    """Whether a `.partial` holds anything beyond what a run writes before it fits: a model, a training checkpoint
    (any family's), a committed part. Only such a folder is worth a --resume."""
    for p in work.iterdir():
        if p.name in _SCAFFOLD or (p.name.startswith(".") and ".tmp" in p.name):
            continue
        if p.is_dir() and p.name == PRIVATE and not has_progress(p):
            continue
        if p.is_dir() and not any(p.rglob("*")):
            continue
        return True
    return False


def is_synthforge_output(folder: Path) -> bool:
    """A run synthforge wrote: its manifest parses and has synthforge's own keys (`complete` among them, true or not:
    a folder whose manifest says false is an unfinished run that --resume redoes), and the recipe it ran is beside
    it. A folder that merely holds a file named manifest.json is not one."""
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(manifest, dict) and isinstance(manifest.get("complete"), bool)
            and all(k in manifest for k in MANIFEST_KEYS) and isinstance(manifest.get("versions"), dict)
            and "synthforge" in manifest["versions"] and (Path(folder) / "recipe.yaml").is_file())


def is_private_folder(folder: Path) -> bool:
    try:
        mark = json.loads((Path(folder) / PRIVATE_MARK).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(mark, dict) and mark.get("synthforge") == "private"


def _replaceable(folder: Path) -> bool:
    try:
        return is_synthforge_output(folder) or not any(folder.iterdir())
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
    """Swap the finished work folder into place; an old output (allowed by --overwrite) goes only after. The private
    part moves out first (to its own folder, or away with keep_private off), so the shareable folder never appears
    with the model inside."""
    if not is_complete(ws.work):
        raise RuntimeError(f"commit without a complete {MANIFEST} in {ws.work}")  # a bug: run() writes it first
    _sweep(ws.work)
    olds = []
    private = ws.work / PRIVATE
    if private.exists():
        if ws.private_final is None:
            shutil.rmtree(private)
        else:
            if ws.private_final.exists():
                olds.append(ws.private_final.with_name(ws.private_final.name + f".old{os.getpid()}"))
                os.replace(ws.private_final, olds[-1])
            ws.private_final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(private, ws.private_final)
            except OSError as e:  # --private-out on another file system: copied, then the original removed
                if e.errno != errno.EXDEV:
                    raise
                shutil.move(str(private), str(ws.private_final))
    (ws.work / STATE).unlink(missing_ok=True)
    (ws.work / LOCK).unlink(missing_ok=True)
    _unlock(ws.work)
    if ws.final.exists():
        olds.append(ws.final.with_name(ws.final.name + f".old{os.getpid()}"))
        os.replace(ws.final, olds[-1])
    os.replace(ws.work, ws.final)
    for old in olds:
        shutil.rmtree(old, ignore_errors=True)
    return ws.final


def _sweep(work: Path) -> None:
    """Leftovers of writes a killed run never finished: hidden temporary files and an unrenamed model folder."""
    for tmp in work.rglob(".*.tmp*"):
        if tmp.is_file():
            tmp.unlink()
    shutil.rmtree(work / "model.tmp", ignore_errors=True)
    shutil.rmtree(work / PRIVATE / "model.tmp", ignore_errors=True)


def is_complete(folder: Path) -> bool:
    try:
        return json.loads((Path(folder) / MANIFEST).read_text()).get("complete") is True
    except (OSError, ValueError, AttributeError):
        return False
