"""The bad-input matrix for the text and image families: one line, exit 2, nothing that looks finished."""

import pandas as pd
import pytest
import yaml

from synthforge.cli import main


def _recipe(tmp_path, seed: dict):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "seed": seed}))
    return path


def _refused(tmp_path, capsys, recipe, *needles):
    out = tmp_path / "out"
    assert main(["run", str(recipe), "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    for needle in needles:
        assert needle in err
    assert not (out / "manifest.json").exists()


def test_text_column_empty_in_every_row(tmp_path, capsys):
    pd.DataFrame({"text": [""] * 30, "label": ["a", "b"] * 15}).to_csv(tmp_path / "s.csv", index=False)
    recipe = _recipe(tmp_path, {"source": "s.csv", "text_column": "text", "label_column": "label"})
    _refused(tmp_path, capsys, recipe, "seed.source", "0 documents")


def test_text_column_not_in_data(tmp_path, capsys):
    pd.DataFrame({"text": ["a few words"] * 30}).to_csv(tmp_path / "s.csv", index=False)
    _refused(tmp_path, capsys, _recipe(tmp_path, {"source": "s.csv", "text_column": "txt"}),
             "seed.text_column", "'txt'")


def test_label_column_not_in_data(tmp_path, capsys):
    pd.DataFrame({"text": ["a few words"] * 30, "label": ["a", "b"] * 15}).to_csv(tmp_path / "s.csv", index=False)
    recipe = _recipe(tmp_path, {"source": "s.csv", "text_column": "text", "label_column": "labl"})
    _refused(tmp_path, capsys, recipe, "seed.label_column", "'labl'")


def test_image_folder_with_only_broken_files(tmp_path, capsys):
    folder = tmp_path / "imgs" / "cat"
    folder.mkdir(parents=True)
    (folder / "a.png").write_bytes(b"not a png")
    (folder / "zero.png").write_bytes(b"")
    (folder / "notes.txt").write_text("hello")
    _refused(tmp_path, capsys, _recipe(tmp_path, {"source": "imgs"}), "no usable image", "corrupt")


def test_validate_checks_text_and_image_recipes_without_training(tmp_path, capsys):
    pd.DataFrame({"text": ["a few words about a drug"] * 30, "label": ["a", "b"] * 15}).to_csv(
        tmp_path / "s.csv", index=False)
    text = _recipe(tmp_path, {"source": "s.csv", "text_column": "text", "label_column": "label"})
    assert main(["validate", str(text)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "t", "generator": {"family": "causal_lm", "params": {"layerz": 2}},
                                   "seed": {"source": "s.csv", "text_column": "text"}}))
    assert main(["validate", str(bad)]) == 2
    assert "generator.params" in capsys.readouterr().err
