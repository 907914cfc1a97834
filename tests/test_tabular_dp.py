"""Differential privacy that holds: a DP codec with no seed value, secure noise, δ ≤ 1/n, ε accounted in full."""

import json

import numpy as np
import pandas as pd
import pytest

from synthforge.data.profile import Profile
from synthforge.errors import UserError
from synthforge.families import tabular_dp
from synthforge.families.tabular_ar import ARGenerator, check_params


def _table(n=1500, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.integers(2, 60, n) * 50
    segment = rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1]).astype(object)
    segment[:3] = ["lonely-1", "lonely-2", "lonely-3"]  # singleton categories: must never be released
    return pd.DataFrame({
        "segment": segment,
        "debt": np.where(rng.random(n) < 0.8, 0.0, np.round(rng.gamma(2, 500, n), 3) + 0.0003),
        "amount": amount,
        # continuous, nearly every value unique; never a dyadic fraction (x.xxxx3), so it cannot be a point of the
        # codec's public power-of-two grid by coincidence: an edge equal to one was read from the rows
        "rate": np.round(rng.normal(5, 1, n), 4) + 0.00003,
        "score": np.where(rng.random(n) < 0.1, np.nan, rng.normal(600, 50, n).round()),
    })


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    df = _table(1500)
    profile = Profile.from_frame(df)
    gen = ARGenerator(profile, {"dp": {"epsilon": 3.0, "epochs": 2}, "batch_size": 256},
                      random_state=0).fit(profile.prepare(df))
    folder = tmp_path_factory.mktemp("dp")
    gen.save(folder)
    return df, gen, folder


def test_dp_codec_holds_no_seed_value_of_a_continuous_column(fitted):
    df, gen, folder = fitted
    seed_values = set(df["rate"].tolist()) | set(df["debt"].tolist()) - {0.0}
    numbers = []
    for c in gen.codec_.codecs:
        if c.mode == "bins":
            assert not c.bin_values
            numbers += [*c.edges, c.low]
    assert numbers and not seed_values & set(numbers)
    assert all(gen.codec_.describe().values())  # the report's per-column line (a float column has no step)
    by_name = {c.name: c for c in gen.codec_.codecs}
    assert by_name["score"].step == 1.0 and by_name["rate"].step is None  # whole floats (with missing) stay whole
    # nor does anything saved: every number in codec.json and generator.json
    for name in ("codec.json", "generator.json"):
        text = (folder / name).read_text()
        floats = {float(t) for t in _numbers_in(text)}
        leaked = {v for v in df["rate"].tolist() if v in floats}
        assert not leaked, (name, sorted(leaked)[:5])
    config = json.loads((folder / "generator.json").read_text())
    assert config["marginals"] == [] and all(set(h) == {"epoch"} for h in config["history"])
    assert all(c["minimum"] is None and c["categories"] is None for c in config["profile"]["columns"])


def _numbers_in(text: str) -> list[str]:
    import re

    return re.findall(r"-?\d+\.\d+(?:[eE]-?\d+)?", text)


def test_a_singleton_category_never_appears(fitted):
    df, gen, folder = fitted
    seg = gen.codec_.codecs[gen.codec_.columns.index("segment")]
    assert "a" in seg.values and not {"lonely-1", "lonely-2", "lonely-3"} & set(seg.values)
    out = gen.sample(2000, seed=1)
    assert not out["segment"].isin(["lonely-1", "lonely-2", "lonely-3"]).any()
    assert "lonely-1" not in (folder / "codec.json").read_text() + (folder / "generator.json").read_text()


def test_epsilon_covers_codec_and_training(fitted):
    df, gen, _ = fitted
    spent = gen.dp_spent_
    share = tabular_dp.DEFAULT_CODEC_SHARE
    assert spent["codec"]["epsilon"] == pytest.approx(3 * share) and spent["sgd"]["epsilon"] <= 3 * (1 - share) + 1e-6
    assert spent["epsilon"] == pytest.approx(spent["codec"]["epsilon"] + spent["sgd"]["epsilon"])
    assert spent["epsilon"] <= 3.0 + 1e-6
    assert spent["delta"] == pytest.approx(1 / len(df) ** 2)  # default δ = 1/n²
    assert set(spent["codec"]["columns"]) == set(df.columns)


def test_sampling_is_reproducible_but_fitting_is_not(fitted):
    """Noise comes from os.urandom, not the recipe's seed: two fits at the same random_state differ."""
    df, gen, _ = fitted
    pd.testing.assert_frame_equal(gen.sample(300, seed=4), gen.sample(300, seed=4))
    profile = Profile.from_frame(df)
    params = {"dp": {"epsilon": 3.0, "epochs": 1}, "batch_size": 256}
    a = ARGenerator(profile, params, random_state=0).fit(profile.prepare(df))
    b = ARGenerator(profile, params, random_state=0).fit(profile.prepare(df))
    wa, wb = a.net_.state_dict(), b.net_.state_dict()
    assert any(not (wa[k] == wb[k]).all() for k in wa)


def test_delta_above_one_over_n_is_refused():
    df = _table(200)
    profile = Profile.from_frame(df)
    with pytest.raises(UserError, match=r"generator\.params\.dp\.delta"):
        ARGenerator(profile, {"dp": {"epsilon": 1.0, "delta": 0.01}}).fit(profile.prepare(df))


@pytest.mark.parametrize("params, message", [
    ({"dp": {"epsilon": 1.0}, "smoothing": 0.1}, "generator.params.smoothing"),
    ({"dp": {"epsilon": 1.0, "codec_share": 1.5}}, "generator.params.dp.codec_share"),
])
def test_dp_refusals_name_the_field(params, message):
    with pytest.raises(UserError, match=message.replace(".", r"\.")):
        check_params(params)


def test_laplace_noise_is_secure_and_calibrated():
    a, b = tabular_dp.laplace(2.0, 20000), tabular_dp.laplace(2.0, 20000)
    assert not np.array_equal(a, b)
    assert abs(np.mean(np.abs(a)) - 2.0) < 0.1  # E|Lap(b)| = b


def test_a_number_column_with_no_cell_above_the_threshold_is_its_point_mass():
    """97 % zeros and 45 values spread over six orders of magnitude: at ε = 0.05 no bucket but zero clears the
    threshold, so the column is released as zero alone and every row still encodes to one of its tokens. The noise is
    the operating system's (never seeded), and the threshold lets an empty bucket through with probability 5 % over
    the whole grid: so 10 fits, of which at least 6 release zero alone (P(fewer) < 0.001 at a 8 % chance per fit)."""
    rng = np.random.default_rng(0)
    n = 1500
    x = np.where(np.arange(n) < 45, 10.0 ** rng.uniform(0, 6, n), 0.0)
    df = pd.DataFrame({"debt": x, "segment": rng.choice(["a", "b"], n)})
    zero_alone = 0
    for _ in range(10):
        codec, spent = tabular_dp.fit_codec(df, {"debt": "numerical", "segment": "categorical"}, 0.1, 1e-7,
                                            max_bins=400, rows_per_bin=25, point_mass=0.01,
                                            dtypes={"debt": "float64", "segment": "object"})
        debt = codec.codecs[0]
        zero_alone += debt.mode == "values" and debt.values == [0.0]
        tokens = codec.encode(tabular_dp.conform(df, codec))
        assert (tokens < np.array(codec.cardinalities)).all()
        assert spent["debt"]["epsilon"] == pytest.approx(0.05)
    assert zero_alone >= 6, zero_alone


def test_dp_under_family_auto_is_refused_not_dropped(tmp_path, capsys):
    """auto hands its candidates no params: a `dp` there would have trained without DP while the recipe said DP."""
    from conftest import write_recipe
    from synthforge.cli import main

    seed = tmp_path / "t.csv"
    pd.DataFrame({"Status": ["good", "bad"] * 30, "x": range(60)}).to_csv(seed, index=False)
    path = write_recipe(tmp_path, seed, generator__family="auto", generator__params={"dp": {"epsilon": 1.0}})
    assert main(["validate", str(path)]) == 2
    assert "generator.params.dp: a differentially private run names its family" in capsys.readouterr().err
