"""Keys between tables, detected from the data alone (what `synthforge init FOLDER` proposes): a table's primary key
is a column whose values are all present and all different; a foreign key is a column whose values (most of them:
real databases have orphans) are values of another table's primary key."""

from dataclasses import dataclass

import pandas as pd

_KEY_WORDS = ("id", "key", "code", "num", "no", "sku")
MIN_COVERAGE = 0.8  # share of a column's rows whose value is a parent key, for the column to count as a link


@dataclass(frozen=True)
class Link:
    child: str
    column: str
    parent: str
    key: str
    coverage: float  # share of the child's non-null rows whose value is a parent key

    def describe(self) -> str:
        return f"{self.child}.{self.column} → {self.parent}.{self.key} ({self.coverage:.1%} of rows resolve)"


def primary_key(frame: pd.DataFrame) -> str | None:
    """The most key-like column that is complete and unique: text or integers, named like a key first, then the
    leftmost (floats, dates and booleans are not keys)."""
    candidates = []
    for i, col in enumerate(frame.columns):
        s = frame[col]
        if len(s) < 2 or s.isna().any() or not s.is_unique:
            continue
        if not (pd.api.types.is_integer_dtype(s) or pd.api.types.is_object_dtype(s)
                or pd.api.types.is_string_dtype(s)):
            continue
        named = any(w in str(col).lower() for w in _KEY_WORDS)
        candidates.append((not named, i, str(col)))
    return min(candidates)[2] if candidates else None


def detect_links(tables: dict[str, pd.DataFrame], keys: dict[str, str | None]) -> list[Link]:
    """Every (child column → parent key) whose values mostly occur among the parent's keys, best first."""
    links = []
    for parent, key in keys.items():
        if key is None:
            continue
        values = set(tables[parent][key].dropna().astype(str))
        for child, frame in tables.items():
            if child == parent:
                continue
            for col in frame.columns:
                s = frame[col].dropna()
                if col == keys.get(child) or s.empty or s.nunique() < 2 or pd.api.types.is_float_dtype(s):
                    continue
                coverage = float(s.astype(str).isin(values).mean())
                if coverage >= MIN_COVERAGE:
                    links.append(Link(child, str(col), parent, key, coverage))
    # the same name on both sides first, then the finer parent (a plane says more about a flight than its airline
    # does), then coverage
    return sorted(links, key=lambda lk: (lk.column != lk.key, -len(tables[lk.parent]), -lk.coverage, lk.child,
                                         lk.column))


def second_parents(links: list[Link], members: list[str]) -> list[Link]:
    """Links from a table of the tree to a lookup table: one outside the tree that is no table's child itself (a
    side table, drawn once; a child may point at several, or at one through several columns)."""
    children = {lk.child for lk in links}
    return [lk for lk in links if lk.child in members and lk.parent not in members and lk.parent not in children]


def one_tree(tables: dict[str, pd.DataFrame], links: list[Link]) -> tuple[str, list[Link]]:
    """The tree synthforge draws: one root and one parent per table. The tree that holds the largest table: each
    table keeps its best link, and links are followed up from the largest table."""
    best: dict[str, Link] = {}
    for lk in links:
        best.setdefault(lk.child, lk)
    start = max(tables, key=lambda t: len(tables[t]))
    members, todo = [], [start]
    while todo:
        t = todo.pop()
        if t in members:
            continue
        members.append(t)
        if t in best:
            todo.append(best[t].parent)
        todo += [c for c, lk in best.items() if lk.parent == t]
    chosen = [best[t] for t in members if t in best and best[t].parent in members]
    root = next((t for t in members if t not in best or best[t].parent not in members), None)
    if root is None:  # the best links form a cycle: the largest table gives up its link and becomes the root
        root, chosen = start, [lk for lk in chosen if lk.child != start]
    return root, chosen
