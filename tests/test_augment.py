"""`synthforge.augment()` for texts and images (tables: test_run_cli.py, test_notebook.py): validated synthetic data
shaped like what was passed in, from the same modality objects and shard loop as a run."""

import numpy as np
import pytest

import synthforge
from synthforge.data.images import read_image_seed
from synthforge.errors import UserError
from synthforge.quality.image_metrics import near_copies
from synthforge.quality.text_filters import NgramIndex
from test_text_run import TINY, corpus, one_thread  # noqa: F401  (one_thread: an autouse fixture)


def test_augment_texts_per_label():
    df = corpus()
    texts, labels = df["review"].tolist(), df["rating"].tolist()
    # the scratch family named: `auto` would also try SmolLM2 where it is installed (minutes on CPU)
    out = synthforge.augment(texts, 9, labels=labels, balance=True, random_seed=3, family="causal_lm",
                             params={**TINY, "epochs": 3}, max_rounds=20)
    assert list(out.columns) == ["text", "label"] and len(out) == 9
    assert out["label"].value_counts().to_dict() == {"negative": 3, "neutral": 3, "positive": 3}
    index = NgramIndex(texts, 12)
    assert not any(index.shares_run(t) for t in out["text"])  # the memorisation filter ran
    again = synthforge.augment(texts, 9, labels=labels, balance=True, random_seed=3, family="causal_lm",
                               params={**TINY, "epochs": 3}, max_rounds=20)
    assert again.equals(out)  # seeded


def test_augment_image_arrays():
    digits = read_image_seed("example://digits").data
    keep = np.flatnonzero(np.isin(digits.labels, ["0", "1"]))[:40]
    images, labels = digits.images[keep, :, :, 0], digits.labels[keep]  # (n, 8, 8): no channel axis
    out = synthforge.augment(images, 6, labels=labels, random_seed=1,
                             params={"block_out_channels": [16, 32], "batch_size": 16, "max_steps": 4})
    assert len(out) == 6 and set(out["label"]) <= {"0", "1"}
    stacked = np.stack(out["image"].to_list())
    assert stacked.shape == (6, 8, 8, 1) and stacked.dtype == np.uint8
    assert not near_copies(stacked, digits.images[keep], 0.05).any()  # the run's near-copy check ran


def test_augment_refuses_what_it_cannot_model():
    with pytest.raises(UserError, match="data: a DataFrame"):
        synthforge.augment({"a": 1}, 3)
    with pytest.raises(UserError, match="balance=True needs labels"):
        synthforge.augment(["some text here"] * 12, 3, balance=True)
    with pytest.raises(UserError, match="uint8"):
        synthforge.augment(np.zeros((4, 8, 8), dtype=np.float32), 3)
