"""Recipes never run code, never write outside their folder, and the flags that delete or execute are explicit
(issue 32 item 6). Each test runs the attack, not a search for a string."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import write_recipe
from synthforge.cli import main
from synthforge.errors import UserError

EVIL_CONFIG = '''
from pathlib import Path
Path({marker!r}).write_text("ran")  # what an attacker's model folder does on import
from transformers import GPT2Config


class EvilConfig(GPT2Config):
    model_type = "evil"
'''


def evil_model_folder(folder: Path, marker: Path) -> Path:
    """A model folder whose `auto_map` sends transformers to its own Python, which writes `marker` when imported."""
    folder.mkdir(parents=True)
    (folder / "configuration_evil.py").write_text(EVIL_CONFIG.format(marker=str(marker)))
    (folder / "modeling_evil.py").write_text(EVIL_CONFIG.format(marker=str(marker)))
    (folder / "config.json").write_text(json.dumps({
        "model_type": "evil", "architectures": ["EvilModel"],
        "auto_map": {"AutoConfig": "configuration_evil.EvilConfig",
                     "AutoModelForCausalLM": "modeling_evil.EvilModel",
                     "AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]}}))
    (folder / "tokenization_evil.py").write_text(EVIL_CONFIG.format(marker=str(marker)))
    (folder / "tokenizer_config.json").write_text(json.dumps({"auto_map": {
        "AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]}}))
    return folder


def text_recipe(tmp_path: Path, base_model: Path, **params) -> Path:
    seed = tmp_path / "docs.csv"
    pd.DataFrame({"text": [f"document number {i} says something plain." for i in range(40)],
                  "label": ["a", "b"] * 20}).to_csv(seed, index=False)
    recipe = {"name": "t", "random_seed": 1, "seed": {"source": str(seed), "text_column": "text",
                                                      "label_column": "label"},
              "generator": {"family": "causal_lm", "time_budget": 5,
                            "params": {"base_model": str(base_model), "adaptation": "full", "epochs": 1, **params}},
              "output": {"rows": 4}}
    path = tmp_path / "text.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_base_model_code_never_runs_without_the_flag(tmp_path, capsys):
    marker = tmp_path / "MARKER"
    folder = evil_model_folder(tmp_path / "evil", marker)
    # the recipe key is gone: one line, exit 2, nothing read or run
    recipe = text_recipe(tmp_path, folder, trust_remote_code=True)
    assert main(["run", str(recipe), "--out", str(tmp_path / "o1"), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "generator.params.trust_remote_code: not a recipe key" in err[0], err
    assert not marker.exists()
    # the same folder as an ordinary base model: transformers refuses its auto_map, the run stops with one line
    recipe = text_recipe(tmp_path, folder)
    assert main(["run", str(recipe), "--out", str(tmp_path / "o2"), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "base_model" in err[0], err
    assert not marker.exists()
    assert not (tmp_path / "o2").exists()
    # the attack is real: with the explicit flag (what --trust-remote-code switches on) the folder's code runs
    from synthforge.families.causal_lm import check_params
    from synthforge.families.lm_models import load_pretrained, remote_code_allowed

    with remote_code_allowed(True), pytest.raises((UserError, Exception)):
        load_pretrained(check_params({"base_model": str(folder), "adaptation": "full"}))
    assert marker.read_text() == "ran"


def test_trust_remote_code_is_a_cli_flag_off_by_default():
    proc = subprocess.run([sys.executable, "-m", "synthforge.cli", "run", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert "--trust-remote-code" in proc.stdout
    from synthforge.families.lm_models import REMOTE_CODE

    assert REMOTE_CODE.get() is False


@pytest.mark.parametrize("field, patch", [
    ("seed.tables.../escape", {"seed": {"tables": {"../escape": {"source": "x.csv"}}}}),
    ("name", {"name": ".."}),
    ("output.folder", {"output": {"folder": "runs/.."}}),
    ("output.private_folder", {"output": {"private_folder": "runs/../.."}}),
])
def test_path_segments_from_a_recipe_are_safe(tmp_path, credit_csv, capsys, field, patch):
    data = {"name": "t", "seed": {"source": str(credit_csv)}, "generator": {"family": "gaussian_copula"}}
    for key, value in patch.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) and key != "seed" else value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{field}: " in err[0] and "not a safe name" in err[0], err
    assert not any(p.name.startswith("escape") for p in tmp_path.parent.iterdir())


def test_overwrite_never_deletes_a_decoy_with_a_manifest(tmp_path, credit_csv, capsys):
    recipe = write_recipe(tmp_path, credit_csv)
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    (decoy / "manifest.json").write_text(json.dumps({"complete": True, "status": "passed", "name": "my project"}))
    (decoy / "thesis.docx").write_text("a user's document")
    assert main(["run", str(recipe), "--out", str(decoy), "--overwrite", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a synthforge output" in err[0], err
    assert (decoy / "thesis.docx").read_text() == "a user's document"
    # nor a private folder that is not synthforge's
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    assert main(["run", str(recipe), "--out", str(tmp_path / "o"), "--private-out", str(mine), "--overwrite",
                 "-q"]) == 2
    assert "not a synthforge private folder" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "keep"
