"""A Great Expectations 1.x suite derived from the seed profile plus the recipe's own expectations, and row-level
validation: which synthetic rows break which expectation.

GE runs in an ephemeral context with analytics and progress bars off, so it writes nothing and reaches no network.
"""

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from synthforge.errors import UserError

_NUMERIC_KINDS = ("numerical",)


def _gx():
    import great_expectations as gx  # slow import (seconds): only when a suite is built

    return gx


def _context():
    gx = _gx()
    from great_expectations.data_context.types.base import (DataContextConfig, InMemoryStoreBackendDefaults,
                                                            ProgressBarsConfig)

    config = DataContextConfig(analytics_enabled=False, progress_bars=ProgressBarsConfig(globally=False),
                               store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False))
    return gx.get_context(mode="ephemeral", project_config=config)


def expectation_class(name: str):
    """`expect_column_values_to_be_between` → gx.expectations.ExpectColumnValuesToBeBetween, or None."""
    gx = _gx()
    if not re.fullmatch(r"expect_[a-z0-9_]+", name):
        return None
    cls = getattr(gx.expectations, "".join(p.capitalize() for p in name.split("_")), None)
    return cls if isinstance(cls, type) and issubclass(cls, gx.expectations.Expectation) else None


def build_suite(name: str, kinds: dict[str, str], seed: pd.DataFrame, *, auto: bool = True,
                user: tuple[tuple[str, dict[str, Any]], ...] = (), primary_key: str | None = None):
    """The suite as a GE ExpectationSuite. `user` items are (snake_case type, kwargs), already checked."""
    gx = _gx()
    _context()  # GE 1.x suites need an active (here ephemeral) context to exist
    suite = gx.ExpectationSuite(name=name)
    if auto:
        for exp in _derived(kinds, seed, primary_key):
            suite.add_expectation(exp)
    for i, (type_, kwargs) in enumerate(user):
        suite.add_expectation(user_expectation(i, type_, kwargs, list(seed.columns)))
    return suite


def user_expectation(i: int, type_: str, kwargs: dict[str, Any], columns: list[str]):
    where = f"quality.expectations.{i}"
    cls = expectation_class(type_)
    if cls is None:
        raise UserError(f"{where}.type: {type_!r} is not a Great Expectations expectation "
                        "(e.g. expect_column_values_to_be_between)")
    column = kwargs.get("column")
    if column is not None and column not in columns:
        raise UserError(f"{where}.kwargs.column: {column!r} is not a column of the seed")
    try:
        return cls(**kwargs)
    except Exception as e:  # GE raises pydantic errors of its own version; the message is what the user needs
        first = str(e).strip().splitlines()
        raise UserError(f"{where}.kwargs: {type_} rejected them ({' '.join(first[:3])[:200]})") from None


def _derived(kinds: dict[str, str], seed: pd.DataFrame, primary_key: str | None):
    E = _gx().expectations
    for col, kind in kinds.items():
        s = seed[col]
        yield E.ExpectColumnToExist(column=col)
        if s.notna().all():
            yield E.ExpectColumnValuesToNotBeNull(column=col)
        nn = s.dropna()
        if len(nn) == 0:
            continue
        if kind in _NUMERIC_KINDS:
            yield E.ExpectColumnValuesToBeBetween(column=col, min_value=float(nn.min()), max_value=float(nn.max()))
        elif kind in ("categorical", "boolean"):
            values = nn.unique().tolist()
            yield E.ExpectColumnValuesToBeInSet(column=col, value_set=[_plain(v) for v in values])
    if primary_key:
        yield E.ExpectColumnValuesToBeUnique(column=primary_key)


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


@dataclass
class Validation:
    """What one validation of a frame found: a row mask and per-expectation counts."""

    valid: np.ndarray  # bool per row
    failed: dict[str, int] = field(default_factory=dict)  # expectation id → unexpected rows
    table_failures: list[str] = field(default_factory=list)  # failed expectations that no row can be blamed for
    result: dict = field(default_factory=dict)  # GE's own result, JSON-ready

    @property
    def rows_invalid(self) -> int:
        return int((~self.valid).sum())


def validate(suite, df: pd.DataFrame) -> Validation:
    context = _context()
    asset = context.data_sources.add_pandas("synthetic").add_dataframe_asset("rows")
    batch = asset.add_batch_definition_whole_dataframe("all").get_batch(
        batch_parameters={"dataframe": df.reset_index(drop=True)})
    res = batch.validate(suite, result_format={"result_format": "COMPLETE", "partial_unexpected_count": 0})
    valid = np.ones(len(df), dtype=bool)
    failed, table_failures = {}, []
    for r in res.results:
        if r.success:
            continue
        key = describe(r.expectation_config)
        index = (r.result or {}).get("unexpected_index_list")
        if index is None:
            table_failures.append(key)
            continue
        rows = np.asarray([i if np.isscalar(i) else i.get("index", i) for i in index], dtype=int)
        valid[rows] = False
        failed[key] = failed.get(key, 0) + int(len(rows))
    return Validation(valid=valid, failed=failed, table_failures=table_failures, result=_lean(res.to_json_dict()))


def describe(config) -> str:
    kwargs = config.kwargs
    col = kwargs.get("column")
    return f"{config.type}({col})" if col else config.type


def _lean(result: dict) -> dict:
    # the COMPLETE format lists every unexpected value and index; keep counts, drop the long lists
    for r in result.get("results", []):
        for key in ("unexpected_list", "unexpected_index_list", "partial_unexpected_list",
                    "partial_unexpected_index_list", "partial_unexpected_counts", "unexpected_index_query"):
            (r.get("result") or {}).pop(key, None)
    return result


def suite_json(suite) -> dict:
    return suite.to_json_dict()


def suite_from_json(d: dict):
    """The suite back from `suite_json` (how executors ship it to other processes)."""
    gx = _gx()
    _context()
    return gx.ExpectationSuite(**{k: d[k] for k in ("name", "expectations", "meta", "notes") if k in d})


# The shareable suite (issue 32 item 2): the exact suite holds the seed's own minima, maxima and category sets, so it
# stays in the run's private folder; the folder a user hands on gets this copy. The rule, in docs/security.md:
# * numeric bounds are rounded outward to SHARE_DIGITS significant digits (18,424 → 19,000; 250 → 250; 0.0137 →
#   0.013), so a bound is a seed value only when the seed's extreme already had no more digits than that;
# * a category set is kept only for a column with at most SHARE_MAX_CATEGORIES values, every one of them seen at
#   least SHARE_MIN_COUNT times in the rows the suite was built from (a rare value can single out a person); other
#   sets are left out, not cut (a cut set would be a wrong expectation);
# * the recipe's own expectations are kept as written: their values are the user's, already in recipe.yaml.
SHARE_DIGITS = 2
SHARE_MAX_CATEGORIES = 20
SHARE_MIN_COUNT = 5
SHARE_RULE = (f"numeric bounds rounded outward to {SHARE_DIGITS} significant digits; category sets kept only for "
              f"columns of at most {SHARE_MAX_CATEGORIES} values each seen at least {SHARE_MIN_COUNT} times; the "
              "recipe's own expectations as written; the exact suite is in the run's private folder")


def drop_examples(text: str) -> str:
    """A note or warning without the seed value it quotes as an example ("3 values are not dates (e.g. 'Jane
    Doe'); read as missing" → "3 values are not dates; read as missing"): what the shareable folder may say."""
    return re.sub(r"\s*\(e\.g\. [^)]*\)|,?\s*e\.g\. .*? in data row \d+", "", text)


def outward(x: float, up: bool, digits: int = SHARE_DIGITS) -> float:
    """`x` rounded away from the inside of a range to `digits` significant digits: up for a maximum, down for a
    minimum (so the rounded range still holds every seed value)."""
    import math

    x = float(x)
    if x == 0 or not math.isfinite(x):
        return x
    step = 10.0 ** (math.floor(math.log10(abs(x))) - digits + 1)
    k = round(x / step, 6)  # 1100 / 10 is 110.00000000000001: not a reason to round up
    v = (math.ceil(k) if up else math.floor(k)) * step
    return float(f"{v:.{digits + 1}g}")


def releasable_values(values: pd.Series) -> list | None:
    """The distinct values of a column, if the shareable rule lets them out (few, none rare), else None."""
    counts = values.dropna().value_counts()
    if len(counts) == 0 or len(counts) > SHARE_MAX_CATEGORIES or counts.min() < SHARE_MIN_COUNT:
        return None
    return [_plain(v) for v in counts.index]


def shareable_suite(exact: dict, seed: pd.DataFrame, user: tuple[tuple[str, dict[str, Any]], ...] = ()) -> dict:
    """The exact suite (`suite_json`) made shareable by the rule above; `seed`: the rows it was built from."""
    kept, dropped = [], 0
    mine = [(t, dict(k)) for t, k in user]
    for e in exact.get("expectations", []):
        e = {k: v for k, v in e.items() if k != "id"}
        kwargs = dict(e.get("kwargs") or {})
        if (e.get("type"), kwargs) in mine:
            kept.append(e)
            continue
        col = kwargs.get("column")
        if e.get("type") in ("expect_column_values_to_be_between", "expect_column_value_lengths_to_be_between"):
            for key, up in (("min_value", False), ("max_value", True)):
                if isinstance(kwargs.get(key), (int, float)) and not isinstance(kwargs.get(key), bool):
                    kwargs[key] = outward(kwargs[key], up)
        elif e.get("type") == "expect_column_values_to_be_in_set":
            released = releasable_values(seed[col]) if col in seed else None
            if released is None:
                dropped += 1
                continue
            kwargs["value_set"] = sorted(released, key=str)
        kept.append({**e, "kwargs": kwargs})
    return {"name": exact.get("name"), "expectations": kept,
            "meta": {"synthforge": {"shareable": SHARE_RULE, "left_out": dropped}}}


# A differentially private run's suite (tabular_dp.py): built from what the DP codec released (`released`: each
# column's support, kept categories, whether a missing token was kept), never from the rows, so it is covered by ε
# and may go in the shareable folder as it is; it is also the suite validation uses, so no synthetic row is
# filtered by a raw minimum, maximum or category set either. It says only what the codec can emit: validation by it
# passes whatever the model draws, and the recipe's own expectations (the user's values, already in recipe.yaml)
# are what can still reject rows.
DP_RULE = ("built from the DP codec's released statistics only (cell ends and point masses on a public grid, "
           "categories that cleared the noisy threshold, whether a missing token was kept), covered by ε; plus the "
           "recipe's own expectations as written")


def released_suite(name: str, released: dict[str, dict], *, auto: bool = True,
                   user: tuple[tuple[str, dict[str, Any]], ...] = (), columns: list[str] | None = None):
    """The suite of a DP run from `released` (column → what the DP codec released), with no access to the rows."""
    gx = _gx()
    E = gx.expectations
    _context()
    suite = gx.ExpectationSuite(name=name, meta={"synthforge": {"shareable": DP_RULE}})
    if auto:
        for col, r in released.items():
            suite.add_expectation(E.ExpectColumnToExist(column=col))
            if not r.get("missing"):
                suite.add_expectation(E.ExpectColumnValuesToNotBeNull(column=col))
            if r["kind"] == "numerical" and r.get("minimum") is not None:
                suite.add_expectation(E.ExpectColumnValuesToBeBetween(
                    column=col, min_value=float(r["minimum"]), max_value=float(r["maximum"])))
            elif r["kind"] == "categorical" and r.get("categories"):
                suite.add_expectation(E.ExpectColumnValuesToBeInSet(column=col, value_set=list(r["categories"])))
    for i, (type_, kwargs) in enumerate(user):
        suite.add_expectation(user_expectation(i, type_, kwargs, columns or list(released)))
    return suite
