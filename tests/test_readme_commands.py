"""CI runs the README's two commands as the README writes them (.ci/readme_commands.py reads them), so they cannot
drift apart; these checks fail when the README's commands change shape in a way CI would no longer follow: the first
must install the base with the CPU torch and run a shipped recipe, the second must run the test suite."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("readme_commands", ROOT / ".ci" / "readme_commands.py")
readme = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(readme)


def test_ci_runs_both_readme_commands_read_from_the_readme():
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'first=$(python3 .ci/readme_commands.py first)' in ci and 'bash -c "$first"' in ci
    assert 'test_cmd=$(python3 .ci/readme_commands.py test)' in ci and 'bash -c "$test_cmd"' in ci
    # each in a fresh venv: the first command makes its own, and CI removes it before the test command's
    assert ci.index('rm -rf .venv\n') < ci.index('bash -c "$first"') < ci.index('rm -rf .venv runs') \
        < ci.index('bash -c "$test_cmd"')


def test_the_readme_commands_install_what_a_user_needs_and_run():
    commands = readme.readme_commands((ROOT / "README.md").read_text())
    first, test = commands["first"], commands["test"]
    assert first.startswith("python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && ")
    # the base, the examples and the service (`synthforge serve` with no flags works next), not the test extras
    assert "pip install -e '.[examples,service]'" in first and "[test" not in first
    assert "synthforge run recipes/credit_tabular.yaml" in first
    assert test.startswith(". .venv/bin/activate && pip install torch==2.13.0 && ")
    assert "pip install -e '.[test]'" in test and test.endswith("python -m pytest -q")


def test_the_script_prints_each_command_and_refuses_a_changed_readme(tmp_path):
    printed = subprocess.run([sys.executable, str(ROOT / ".ci" / "readme_commands.py"), "first"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert printed == readme.readme_commands((ROOT / "README.md").read_text())["first"]
    three = "## Two commands\n```bash\na\n```\n```bash\nb\n```\n```bash\nc\n```\n## Next\n"
    with pytest.raises(SystemExit, match="exactly two one-line bash blocks, found 3"):
        readme.readme_commands(three)
    with pytest.raises(SystemExit, match="no '## Two commands' section"):
        readme.readme_commands("# nothing here\n")
