"""`synthforge report`: grade any real/synthetic pair of tables, made by synthforge or not."""

import shutil
from datetime import datetime, timezone
from pathlib import Path

from synthforge.data.sources import read_seed
from synthforge.errors import UserError
from synthforge.quality.evaluate import evaluate_frames
from synthforge.quality.gates import GATE_METRICS, check_gates, report_status
from synthforge.quality.html import render_html
from synthforge.quality.report_model import Report
from synthforge.sinks.files import write_json, write_text


def report_pair(real: Path, synthetic: Path, out: Path, *, holdout: Path | None = None, target: str | None = None,
                gates: dict[str, float] | None = None, overwrite: bool = False, random_seed: int = 0) -> Report:
    gates = dict(gates or {})
    for key in gates:
        if key not in GATE_METRICS:
            raise UserError(f"--gate {key}: unknown gate; valid: {', '.join(GATE_METRICS)}")
    frames = {}
    for label, path in (("--real", real), ("--synthetic", synthetic), ("--holdout", holdout)):
        if path is not None:
            try:
                frames[label] = read_seed(str(path)).frame
            except UserError as e:
                raise UserError(str(e).replace("seed.source", label, 1)) from None
    real_df, synth_df, hold_df = frames["--real"], frames["--synthetic"], frames.get("--holdout")
    common = [c for c in real_df.columns if c in synth_df.columns]
    if not common:
        raise UserError(f"--synthetic: {synthetic} shares no column with {real}")
    if hold_df is not None and any(c not in hold_df.columns for c in common):
        raise UserError(f"--holdout: {holdout} lacks columns of the real table")
    if target is not None and target not in common:
        raise UserError(f"--target: {target!r} is not a column of both tables; columns are {', '.join(common)}")
    out = Path(out)
    tmp = out.with_name(out.name + ".partial")
    _check_out(out, tmp, overwrite)
    tab = evaluate_frames(real_df, synth_df, holdout=hold_df, target=target, random_seed=random_seed)
    results = check_gates(tab.metrics(), gates)
    report = Report(title=f"synthforge report · {Path(synthetic).name} vs {Path(real).name}",
                    created=datetime.now(timezone.utc).isoformat(timespec="seconds"), status=report_status(results),
                    gates=results, tabular=tab,
                    run={"real": str(Path(real).resolve()), "synthetic": str(Path(synthetic).resolve()),
                         "holdout": str(Path(holdout).resolve()) if holdout else None, "target": target})
    shutil.rmtree(tmp, ignore_errors=True)
    write_json(tmp / "report.json", report.model_dump(mode="json"))
    write_text(tmp / "report.html", render_html(report))
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return report


REPORT_FILES = {"report.json", "report.html"}


def _is_report_folder(folder: Path) -> bool:
    """Only a folder holding nothing but a report's own files may be replaced or discarded: a user's document in it
    is never deleted (docs/security.md)."""
    return folder.is_dir() and {p.name for p in folder.iterdir()} <= REPORT_FILES


def _check_out(out: Path, tmp: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out: {out} is a file; choose a folder path")
    if out.exists() and not _is_report_folder(out):
        raise UserError(f"--out: {out} holds files that are not a synthforge report; synthforge never replaces "
                        "such a folder; choose a new or empty folder")
    if out.exists() and not overwrite:
        raise UserError(f"--out: {out} already exists; pass --overwrite to replace it")
    if tmp.exists() and not _is_report_folder(tmp):
        raise UserError(f"--out: {tmp} exists and holds files that are not a synthforge report; move it away")
