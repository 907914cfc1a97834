"""`synthforge report`: grade any real/synthetic pair of tables, made by synthforge or not."""

import shutil
from datetime import datetime, timezone
from pathlib import Path

from synthforge.data.sources import read_seed
from synthforge.errors import UserError
from synthforge.quality.evaluate import evaluate_tables, infer_kinds
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
    kinds = infer_kinds(real_df)
    missing = [c for c in kinds if c not in synth_df.columns]
    if missing:
        raise UserError(f"--synthetic: column {missing[0]!r} of the real table is missing from {synthetic}")
    if hold_df is not None and any(c not in hold_df.columns for c in kinds):
        raise UserError(f"--holdout: {holdout} lacks columns of the real table")
    if target is not None and target not in kinds:
        raise UserError(f"--target: {target!r} is not a column of {real}; columns are {', '.join(real_df.columns)}")
    out = Path(out)
    if out.exists() and not overwrite:
        raise UserError(f"--out: {out} already exists; pass --overwrite to replace it")
    tab = evaluate_tables(real_df, synth_df, kinds=kinds, holdout=hold_df, target=target, random_seed=random_seed)
    results = check_gates(tab.metrics(), gates)
    report = Report(title=f"synthforge report · {Path(synthetic).name} vs {Path(real).name}",
                    created=datetime.now(timezone.utc).isoformat(timespec="seconds"), status=report_status(results),
                    gates=results, tabular=tab,
                    run={"real": str(Path(real).resolve()), "synthetic": str(Path(synthetic).resolve()),
                         "holdout": str(Path(holdout).resolve()) if holdout else None, "target": target})
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    write_json(tmp / "report.json", report.model_dump(mode="json"))
    write_text(tmp / "report.html", render_html(report))
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return report
