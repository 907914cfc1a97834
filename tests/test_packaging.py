"""An installed wheel carries what a user runs: the shipped recipes (`synthforge recipes`, `example://NAME`) and the
report's template, found from any folder (not only a checkout)."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_lists_and_runs_shipped_recipes_from_another_folder(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(ROOT),
                    "-w", str(tmp_path / "wheel")], check=True, capture_output=True)
    wheel = next((tmp_path / "wheel").glob("synthforge-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "synthforge/recipes/medical_text.yaml" in names and "synthforge/quality/templates/report.html.j2" in names
    # the vendored anonymeter (every report's three risks) with its Clear BSD notice, which must travel with it
    assert {"synthforge/quality/vendor/anonymeter/LICENSE.md",
            "synthforge/quality/vendor/anonymeter/evaluators/singling_out_evaluator.py"} <= set(names)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(tmp_path / "site"),
                    str(wheel)], check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}  # the wheel's synthforge, not the checkout's

    def cli(*args):
        code = "import sys, synthforge; from synthforge.cli import main; print(synthforge.__file__); " \
               f"sys.exit(main({list(args)!r}))"
        return subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True)

    listed = cli("recipes")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].startswith(str(tmp_path / "site"))
    assert {"example://credit_tabular", "example://medical_text", "example://digits_images"} <= \
        {line.split()[0] for line in listed.stdout.splitlines()[1:]}
    checked = cli("validate", "example://credit_tabular")
    assert checked.returncode == 0 and "ok: example://credit_tabular: tabular" in checked.stdout, checked.stderr
    unknown = cli("validate", "example://nope")
    assert unknown.returncode == 2 and "no shipped recipe 'nope'" in unknown.stderr
