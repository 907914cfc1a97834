"""The command line: parse, build objects, call one library function, map errors to exit codes.

0 ok · 1 a quality gate failed (output kept, marked failing) · 2 bad input, or a disk that refused a write (full,
quota, read-only), printed as one line · 130 interrupted (Ctrl-C) · 143 terminated (SIGTERM, as sent by `kill`, a
scheduler or a container stop). After 130, 143 or a disk error the run continues with `--resume`.
"""

import errno
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from typer.exceptions import TyperException  # typer 0.2x vendors click: its usage errors derive from this

from synthforge.errors import GateFailed, UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Synthetic data from a small seed: fitted, validated and graded.")
err = Console(stderr=True, highlight=False)


DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C so the same cleanup runs (parts kept, locks released)."""


def _terminate(signum, frame):
    raise Terminated()


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"synthforge {version('synthforge')}")
        raise typer.Exit(0)


@app.callback()
def _options(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                          help="print the version and exit")) -> None:
    """Synthetic data from a small seed: fitted, validated and graded."""


@app.command("run")
def run_cmd(recipe: str = typer.Argument(..., help="recipe YAML, or example://NAME for a shipped one"),
            out: Optional[Path] = typer.Option(None, "--out", help="output folder (default: recipe output.folder)"),
            rows: Optional[int] = typer.Option(None, "--rows", help="rows to generate"),
            overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing output folder"),
            resume: bool = typer.Option(False, "--resume", help="continue an interrupted run"),
            device: Optional[str] = typer.Option(None, "--device", help="auto|cpu|cuda|mps"),
            executor: Optional[str] = typer.Option(None, "--executor", help="local|ray"),
            ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Ray cluster address"),
            licence: Optional[str] = typer.Option(None, "--licence",
                                                  help="permissive: never use a BSL-licensed backend (SDV)"),
            private_out: Optional[Path] = typer.Option(
                None, "--private-out", help="folder for the fitted model and the exact suite and profile (they hold "
                "seed values; default: <output>.private beside the output)"),
            no_model: bool = typer.Option(False, "--no-model", help="keep no private folder (no model to reuse); "
                                          "the shareable output is the same"),
            trust_remote_code: bool = typer.Option(
                False, "--trust-remote-code", help="let a base_model folder run its own Python (transformers "
                "auto_map); off by default, never a recipe key, named in the manifest"),
            quiet: bool = typer.Option(False, "--quiet", "-q", help="print nothing but the output folder")):
    """Fit a generator on the recipe's seed and write a validated, graded dataset."""
    from synthforge.recipe import load_recipe, recipe_base_dir

    r = load_recipe(recipe, **{"output.rows": rows, "generator.device": device, "execution.executor": executor,
                               "execution.ray_address": ray_address, "licence": licence,
                               "output.keep_private": False if no_model else None})
    from synthforge.engine.pipeline import run  # seconds of imports (torch, SDV): only for a recipe that parsed
    try:
        result = run(r, out=out, overwrite=overwrite, resume=resume, base_dir=recipe_base_dir(recipe),
                     console=Console(stderr=True, quiet=quiet), private_out=private_out,
                     trust_remote_code=trust_remote_code)
    except KeyboardInterrupt:
        # the same options again (a different --rows would be a different run) plus --resume; one line
        again = ["synthforge", "run", str(recipe), "--resume"]
        for flag, value in (("--out", out), ("--rows", rows), ("--device", device), ("--executor", executor),
                            ("--ray-address", ray_address), ("--licence", licence), ("--private-out", private_out)):
            if value is not None:
                again += [flag, str(value)]
        again += [flag for flag, on in (("--no-model", no_model), ("--trust-remote-code", trust_remote_code)) if on]
        err.print(f"interrupted; continue with: {shlex.join(again)}", markup=False, soft_wrap=True)
        raise typer.Exit(143 if isinstance(sys.exc_info()[1], Terminated) else 130)
    except GateFailed as e:
        _warn(e.result)
        raise
    _warn(result)
    print(result.folder)


def _warn(result) -> None:
    """What the run changed or left out of the seed (columns dropped, values read as missing), one line each."""
    for note in ((result.notes or result.report.notes) if result is not None else ()):  # with their examples
        err.print(f"warning: {note}", markup=False, soft_wrap=True)


@app.command("validate")
def validate_cmd(recipe: str = typer.Argument(..., help="recipe YAML, or example://NAME")):
    """Check a recipe and its seed data without training anything."""
    from synthforge.engine.check import check_recipe

    print(check_recipe(recipe))


@app.command("report")
def report_cmd(real: Path = typer.Option(..., "--real", help="real rows (CSV/Parquet/JSONL)"),
               synthetic: Path = typer.Option(..., "--synthetic", help="synthetic rows"),
               out: Path = typer.Option(..., "--out", help="folder for report.html and report.json"),
               holdout: Optional[Path] = typer.Option(None, "--holdout", help="real rows the generator never saw"),
               target: Optional[str] = typer.Option(None, "--target", help="column for the utility metric"),
               gate: list[str] = typer.Option([], "--gate", help="KEY=VALUE, e.g. min_quality=0.8"),
               overwrite: bool = typer.Option(False, "--overwrite")):
    """Grade any real/synthetic pair of tables."""
    from synthforge.engine.report_pair import report_pair

    gates = {}
    for g in gate:
        key, _, value = g.partition("=")
        try:
            gates[key.strip()] = float(value)
        except ValueError:
            raise UserError(f"--gate {g!r}: expected KEY=NUMBER, e.g. min_quality=0.8") from None
    report = report_pair(real, synthetic, out, holdout=holdout, target=target, gates=gates, overwrite=overwrite)
    overall = report.tabular.overall.value if report.tabular else None
    print(f"{out / 'report.html'}  status={report.status}  overall={overall if overall is None else round(overall, 4)}")
    if report.status == "failed":
        from synthforge.engine.pipeline import failing_gates

        err.print(f"quality gate failed: {failing_gates(report)}", markup=False, soft_wrap=True)
        raise typer.Exit(1)


@app.command("recipes")
def recipes_cmd(folder: Optional[Path] = typer.Option(None, "--dir", help="list this folder's recipes instead of the "
                                                                          "shipped ones")):
    """List the shipped recipes (run one with `synthforge run example://NAME`), one line each."""
    import yaml

    from synthforge.recipe import shipped_recipes

    if folder is None:
        found = [(f"example://{name}", path) for name, path in shipped_recipes().items()]
    else:
        found = [(str(p), p) for p in sorted(folder.glob("*.yaml"))] if folder.is_dir() else []
        if not found:
            raise UserError(f"--dir: no recipes (*.yaml) in {folder.resolve()}")
    for name, path in found:
        first = next((ln[1:].strip() for ln in path.read_text().splitlines() if ln.startswith("#")), "")
        data = yaml.safe_load(path.read_text()) or {}
        print(f"{name:40s} {data.get('vertical', ''):12s} {first}")


@app.command("init")
def init_cmd(seed: Path = typer.Argument(..., help="seed file"),
             vertical: str = typer.Option("general", "--vertical", help="preset: general, finance, healthcare (synthforge/recipe/presets) or your recipes/presets/NAME.yaml"),
             out: Path = typer.Option(Path("recipe.yaml"), "--out"),
             overwrite: bool = typer.Option(False, "--overwrite")):
    """Write a commented starter recipe for a seed file."""
    from synthforge.engine.starter import starter_recipe
    from synthforge.sinks.files import write_text

    if out.exists() and not overwrite:
        raise UserError(f"--out: {out} already exists; pass --overwrite to replace it")
    write_text(out, starter_recipe(seed, vertical, out))
    print(out)


# --- the service (synthforge/service, docs/service.md): imported only by these two commands -------------------

@app.command("serve")
def serve_cmd(host: Optional[str] = typer.Option(None, "--host", help="address to bind (default 127.0.0.1)"),
              port: Optional[int] = typer.Option(None, "--port", help="port (default 8000)"),
              data: Optional[Path] = typer.Option(None, "--data", help="storage folder (default ./synthforge-data)"),
              database: Optional[str] = typer.Option(None, "--database",
                                                     help="SQLAlchemy URL (default: SQLite in the data folder)"),
              workers: Optional[int] = typer.Option(None, "--workers", help="job processes at a time (default 1)"),
              executor: Optional[str] = typer.Option(None, "--executor",
                                                     help="local (default), or ray / ray://HOST:PORT: an existing "
                                                          "Ray cluster runs the jobs' shards"),
              create_admin_key: bool = typer.Option(False, "--create-admin-key",
                                                    help="print a new admin API key and exit")):
    """Serve the HTTP API and web pages: tenants, datasets, jobs, results (docs/service.md)."""
    from pydantic import ValidationError

    try:
        from synthforge.service.serve import serve
        from synthforge.service.settings import Settings
    except ImportError as e:
        raise UserError(f"serve: the service needs its extra ({e.name} missing): pip install 'synthforge[service]'")
    try:
        settings = Settings.from_env(host=host, port=port, data=data, database=database, workers=workers,
                                     executor=executor)
    except ValidationError as e:
        first = e.errors()[0]
        raise UserError(f"serve: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    serve(settings, create_admin_key=create_admin_key)


@app.command("submit")
def submit_cmd(recipe: str = typer.Argument(..., help="example://NAME (a shipped recipe) or a recipe YAML to upload"),
               server: str = typer.Option(..., "--server", help="the service's URL, e.g. http://127.0.0.1:8000"),
               data: Optional[Path] = typer.Option(None, "--data", help="seed file (CSV/Parquet) to upload"),
               dataset: Optional[str] = typer.Option(None, "--dataset", help="an uploaded dataset's id"),
               rows: Optional[int] = typer.Option(None, "--rows", help="rows to generate"),
               wait: bool = typer.Option(False, "--wait", help="wait for the job and print where it ended")):
    """Submit a job to a synthforge service; the API key is read from SYNTHFORGE_API_KEY (never printed). A recipe
    file of yours is sent without its paths; its seed file is uploaded unless --data or --dataset says otherwise."""
    from synthforge.service.client import Client, ServiceError, seed_of

    if data is not None and dataset is not None:
        raise UserError("submit: give --data FILE or --dataset ID, not both")
    if data is None and dataset is None:
        data = seed_of(recipe)
        if data is None:
            raise UserError("submit: give --data FILE (uploaded first) or --dataset ID")
    if data is not None and not data.is_file():
        raise UserError(f"submit: no seed file {data}")
    try:
        client = Client(server)
        dataset_id = dataset or client.upload(data)["id"]
        job = client.submit(recipe, dataset_id, **({"output.rows": rows} if rows else {}))
        print(job["id"])
        if wait:
            job = client.wait(job["id"], progress=True)
            print(f"{job['id']} {job['state']}" + (f": {job['error']}" if job.get("error") else ""))
            if job["state"] != "succeeded":
                raise typer.Exit(1 if job["state"] == "failed_gates" else 2)
    except ServiceError as e:
        raise UserError(str(e)) from None


def main(argv: list[str] | None = None) -> int:
    in_main = threading.current_thread() is threading.main_thread()  # signal handlers can only be set there
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main else None
    try:
        code = app(args=argv, standalone_mode=False)  # without standalone mode, typer.Exit(n) comes back as n
        return code if isinstance(code, int) else 0
    except UserError as e:
        err.print(f"error: {' '.join(str(e).split())}", markup=False, soft_wrap=True)  # always one line
        return 2
    except GateFailed as e:
        err.print(f"{e}", markup=False, soft_wrap=True)
        if e.result is not None:
            print(e.result.folder)
        return 1
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort as e:  # click turns a KeyboardInterrupt outside `run` into Abort
        err.print("interrupted")
        return 143 if isinstance(e.__cause__, Terminated) else 130
    except TyperException as e:
        message = e.format_message() if hasattr(e, "format_message") else str(e)
        if message.strip():  # bare `synthforge` prints the help and raises with no message: no empty error line
            err.print(f"error: {message}", markup=False, soft_wrap=True)
        return 2
    except OSError as e:
        if e.errno not in DISK_ERRORS:
            raise
        # the machine's, not synthforge's: say which file, keep what was written (a run resumes with --resume)
        err.print(f"error: {e.strerror}: {e.filename or 'writing output'}", markup=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt as e:
        err.print("interrupted")
        return 143 if isinstance(e, Terminated) else 130
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
        workspace = sys.modules.get("synthforge.engine.workspace")  # imported only if a run got that far
        if workspace is not None:
            workspace.release_locks()


if __name__ == "__main__":
    sys.exit(main())
