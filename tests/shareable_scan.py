"""Search a run's shareable folder for seed values (issue 32 item 2): the helper behind tests/test_shareable.py, also
run by hand on an older run folder to count what it held (`python tests/shareable_scan.py RUN SEED.csv`).

What counts as a seed value: every distinct value of a high-cardinality seed column (more than HIGH_DISTINCT
distinct values, or more than half its non-missing values distinct). Strings are searched as whole words (not inside
a longer word) in their raw, HTML-escaped and JSON-escaped forms; numbers are compared as numbers with every
number token of a text file (so 1169, 1169.0 and 1.169e3 are one value); dates in their ISO forms. Numbers with
fewer than MIN_DIGITS significant digits are not searched: 12, 250 or 0.5 print in any report as counts, settings
and rounded metrics, and the shareable suite's own bounds are rounded to 2 digits, so such a match says nothing about
the seed. Embedded PNG pictures (the report's plots, `data:image/png;base64,...`) are not text and are not searched.

Strings of three characters or fewer (airport codes such as ROC) are words of any report too ("ROC AUC"): they count
only where they stand alone as a value (a whole JSON string or key, a whole HTML table cell). Timestamps (the
report's creation time) are taken out of text before numbers are read from it. A value that the shareable rule
releases for a low-cardinality column (`quality.expectations.releasable_values`: at most 20 values, each seen 5
times, e.g. a plane's seat count) is not searched for another column that happens to share it (`released=`).

JSON files are read as JSON: an evenly spaced list of numbers (a histogram's edges, `numpy.linspace`) is only its two
ends (its inner points follow from them and the bin count), and numbers under COUNT_KEYS are counts of what the run
did or saw (epochs, rows, distinct values), not values of a column; the same numbers are then not searched in the
HTML page that shows them. `explained` in `scan_folder`'s result lists them, so a test can show what it skipped.
"""

import html
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HIGH_DISTINCT = 50
MIN_DIGITS = 3
# everything under these counts rows (children of one parent, rows a metric used, rows per table), not values
COUNT_PARENTS = {"children_per_parent", "computed_on", "seed_rows_train", "seed_rows_holdout", "tables", "failed"}
COUNT_KEYS = {"distinct", "epochs", "rows", "steps", "count", "best_epoch", "rows_sampled", "rows_valid", "index",
              "requested", "sampled", "rounds", "invalid", "start",
              "rows_requested", "rows_dropped", "seed_rows_train", "seed_rows_holdout", "train", "holdout",
              "train_distinct", "min_distinct"}  # the value-leak section's count of a column's distinct seed values
# a number the report writes as how many of something the model has ("117 quantile cells, 9 point masses"): a count
_COUNTED = re.compile(r"(?<![\w.])\d+ (?:quantile cells|point masses|cells|bins|categories|tokens)\b")
TEXT_SUFFIXES = {".json", ".html", ".yaml", ".yml", ".txt", ".csv", ".md"}
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w])")
_BASE64 = re.compile(r"data:image/[a-z]+;base64,[A-Za-z0-9+/=]+")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:[+-]\d{2}:\d{2}|Z)?")
SHORT = 3


def significant_digits(x: float) -> int:
    digits = f"{abs(float(x)):.15g}".split("e")[0].replace(".", "").lstrip("0").rstrip("0")
    return len(digits)


def high_cardinality(frame: pd.DataFrame) -> dict[str, pd.Series]:
    out = {}
    for col in frame.columns:
        s = frame[col].dropna()
        n = s.nunique()
        if len(s) and (n > HIGH_DISTINCT or n > 0.5 * len(s)):
            out[col] = pd.Series(s.unique())
    return out


def seed_values(frame: pd.DataFrame) -> tuple[dict[float, str], dict[str, str]]:
    """(number → column, string form → column) of the high-cardinality columns' distinct values."""
    numbers, strings = {}, {}
    for col, values in high_cardinality(frame).items():
        if pd.api.types.is_bool_dtype(values):
            continue
        if pd.api.types.is_numeric_dtype(values):
            for v in values.astype(float):
                if np.isfinite(v) and significant_digits(v) >= MIN_DIGITS:
                    numbers[float(v)] = col
            continue
        if pd.api.types.is_datetime64_any_dtype(values):
            for v in values:
                for form in {str(v), v.isoformat()}:
                    strings[form] = col
            continue
        for v in values.astype(str):
            if len(v) >= 3 or significant_digits_of_text(v) >= MIN_DIGITS:
                strings[v] = col
                try:  # a number stored as text ("01234") is also a number
                    f = float(v)
                    if np.isfinite(f) and significant_digits(f) >= MIN_DIGITS:
                        numbers[f] = col
                except ValueError:
                    pass
    return numbers, strings


def significant_digits_of_text(v: str) -> int:
    return len(v.strip().lstrip("0"))


def _string_pattern(strings: dict[str, str]) -> re.Pattern | None:
    forms = set()
    for s in (s for s in strings if len(s) > SHORT):
        forms |= {s, html.escape(s), json.dumps(s)[1:-1]}
    if not forms:
        return None
    alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])")


def scan_text(text: str, numbers: dict[float, str], pattern: re.Pattern | None,
              short: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(column, value as found) for every seed value in `text`."""
    text = _BASE64.sub("", text)
    found = []
    for cell in re.findall(r">\s*([^<>]{1,%d}?)\s*<" % SHORT, text):
        if cell in (short or {}):
            found.append((short[cell], cell))
    if pattern is not None:
        found += [("(text)", m.group(0)) for m in pattern.finditer(text)]
    text = _TIMESTAMP.sub(" ", text)
    text = _COUNTED.sub(" ", text)
    for token in _NUMBER.findall(text):
        v = float(token)
        if v in numbers:
            found.append((numbers[v], token))
    return found


def _json_numbers(obj, key: str | None, out: list, counts: set, words: list | None = None) -> None:
    """Every number `obj` holds as a value (see the module's docstring for evenly spaced lists and COUNT_KEYS);
    `words` gets every string and key."""
    words = [] if words is None else words
    if isinstance(obj, dict):
        for k, v in obj.items():
            words.append(str(k))
            if k in COUNT_PARENTS:
                under: list = []
                _json_numbers(v, str(k), under, counts, words)
                counts.update(under)
                continue
            _json_numbers(v, str(k), out, counts, words)
    elif isinstance(obj, list):
        nums = [v for v in obj if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if len(nums) == len(obj) >= 3 and np.allclose(np.diff(nums), nums[1] - nums[0], rtol=1e-6, atol=1e-9):
            out.extend([nums[0], nums[-1]])
            return
        for v in obj:
            _json_numbers(v, key, out, counts, words)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        (counts.add(float(obj)) if key in COUNT_KEYS else out.append(float(obj)))
    elif isinstance(obj, str):
        words.append(obj)
        if _NUMBER.fullmatch(obj.strip()):
            out.append(float(obj))


def scan_json(text: str, numbers: dict[float, str], pattern: re.Pattern | None, counts: set,
              short: dict[str, str]) -> list[tuple]:
    found, values, words = [], [], []
    _json_numbers(json.loads(text), None, values, counts, words)
    found += [(numbers[v], v) for v in dict.fromkeys(values) if v in numbers]
    found += [(short[w], w) for w in dict.fromkeys(words) if w in short]
    if pattern is not None:
        found += [("(text)", m.group(0)) for m in pattern.finditer(_BASE64.sub("", text))]
    return found


def released_values(frames: list[pd.DataFrame]) -> set:
    from synthforge.quality.expectations import releasable_values

    out = set()
    for f in frames:
        for col in f.columns:
            for v in releasable_values(f[col]) or ():
                out |= {str(v)} | ({float(v)} if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                                  else set())
    return out


def scan_folder(folder: Path, seed: pd.DataFrame | list[pd.DataFrame], skip_data_columns=(),
                released: list[pd.DataFrame] = (), own_paths: tuple[str, ...] = ()) -> list[tuple]:
    """(file, column, value) for every seed value found in any file under `folder`. Parquet files are read as
    values (every column but `skip_data_columns`) and their key/value metadata as text; every other file must be
    text. `seed`: one frame, or several (a relational seed's tables). `own_paths`: the user's own paths (the seed
    file, the output folder), which the recipe and manifest name and whose digits are no seed values (a test's
    `pytest-112` folder once matched an income of 112)."""

    def read(path: Path) -> str:
        text = path.read_text(errors="replace")
        for own in sorted(own_paths, key=len, reverse=True):
            text = text.replace(own, "")
        return text

    frames = seed if isinstance(seed, list) else [seed]
    numbers, strings = {}, {}
    for f in frames:
        n, s = seed_values(f)
        numbers |= n
        strings |= s
    free = released_values([*frames, *released])
    numbers = {v: c for v, c in numbers.items() if v not in free}
    strings = {v: c for v, c in strings.items() if v not in free}
    short = {v: c for v, c in strings.items() if len(v) <= SHORT}
    pattern = _string_pattern(strings)
    hits, counts = [], set()
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file())
    for path in files:  # JSON first: the counts it names are then known when the HTML is searched
        if path.suffix == ".json":
            rel = str(path.relative_to(folder))
            hits += [(rel, c, v) for c, v in scan_json(read(path), numbers, pattern, counts, short)]
    text_numbers = {v: c for v, c in numbers.items() if v not in counts}
    for path in files:
        rel = str(path.relative_to(folder))
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            meta = pq.read_schema(path).metadata or {}
            text = " ".join(f"{k.decode(errors='replace')} {v.decode(errors='replace')}" for k, v in meta.items()
                            if not k.startswith(b"pandas") and not k.startswith(b"ARROW"))
            hits += [(rel + " (metadata)", c, v) for c, v in scan_text(text, numbers, pattern)]
            df = pd.read_parquet(path)
            for col in df.columns:
                if col in skip_data_columns:
                    continue
                for v in pd.unique(df[col].dropna()):
                    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
                        if float(v) in numbers:
                            hits.append((rel, col, v))
                    elif str(v) in strings:
                        hits.append((rel, col, v))
        elif path.suffix == ".json":
            continue
        elif path.suffix in TEXT_SUFFIXES or path.name.startswith("."):
            hits += [(rel, c, v) for c, v in scan_text(read(path), text_numbers, pattern, short)]
        else:
            hits.append((rel, "(unscanned file type)", path.suffix))
    return hits


if __name__ == "__main__":
    folder, *seeds = sys.argv[1:]
    found = scan_folder(Path(folder), [pd.read_csv(s) if s.endswith(".csv") else pd.read_parquet(s) for s in seeds],
                        skip_data_columns=set(os.environ.get("SKIP_COLUMNS", "").split(",")) - {""})
    by_file: dict[str, set] = {}
    for f, c, v in found:
        by_file.setdefault(f, set()).add((c, str(v)))
    for f, vals in sorted(by_file.items()):
        print(f"{f}: {len(vals)} distinct seed values, e.g. {sorted(vals)[:5]}")
    print("total distinct (file, value):", sum(len(v) for v in by_file.values()))
