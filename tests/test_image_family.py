"""The diffusion family on tiny 8×8 images with a tiny UNet: params, seeds, save/load, fine-tuning, resume."""

import numpy as np
import pytest
import torch

from synthforge.data.images import ImageSet, read_image_seed
from synthforge.errors import UserError
from synthforge.families.diffusion import DiffusionGenerator, parse_params, parse_sampling
from synthforge.families.generator import Generator, NotFittedError

TINY = {"block_out_channels": [16, 32], "batch_size": 16, "warmup_steps": 2}


@pytest.fixture(autouse=True, scope="module")
def _threads():
    # what a run sets (engine.pipeline.default_threads): torch's default of all cores is many times slower on a shared
    # 2-core machine
    from synthforge.engine.pipeline import default_threads

    old = torch.get_num_threads()
    torch.set_num_threads(default_threads())
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def digits() -> ImageSet:
    data = read_image_seed("example://digits").data
    keep = np.flatnonzero(np.isin(data.labels, ["0", "1", "7"]))[:60]
    return data.take(keep)


def _gen(tmp_path=None, **params):
    return DiffusionGenerator({**TINY, **params}, {"steps": 4, "batch_size": 8}, image_size=8, channels=1,
                              checkpoint_dir=tmp_path, random_state=5)


def _weights(gen) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in gen.unet_.parameters()])


def test_unknown_and_bad_params_name_the_key():
    with pytest.raises(UserError, match=r"generator\.params\.epochs: not a parameter.*valid: block_out_channels"):
        parse_params({"epochs": 3})
    with pytest.raises(UserError, match=r"generator\.params\.learning_rate"):
        parse_params({"learning_rate": -1})
    with pytest.raises(UserError, match=r"norm_num_groups 8 must divide"):
        parse_params({"block_out_channels": [12, 24]})
    with pytest.raises(UserError, match=r"output\.sampling\.scheduler: .*'ddim'"):
        parse_sampling({"scheduler": "euler"})


def test_fit_sample_seeded_and_labelled(digits):
    gen = _gen(max_steps=3)
    with pytest.raises(NotFittedError):
        gen.sample(2, seed=0)
    assert gen.fit(digits) is gen and gen.fit_info_["steps"] == 3
    assert isinstance(gen, Generator) and gen.fit_info_["seconds"] >= 0
    a = gen.sample(5, seed=11, conditions={"label": "7"})
    b = gen.sample(5, seed=11, conditions={"label": "7"})
    assert list(a.columns) == ["label", "image", "seed"] and set(a["label"]) == {"7"}
    assert all((x == y).all() for x, y in zip(a["image"], b["image"]))
    assert a["image"][0].shape == (8, 8, 1) and a["image"][0].dtype == np.uint8
    # an image's seed alone reproduces it, whatever batch it was drawn in
    one = gen._sample_batch(np.array([gen.classes_.index("7")]), [int(a["seed"][2])])[0]
    assert np.abs(one.astype(int) - a["image"][2].astype(int)).max() <= 1
    assert gen.sample(4, seed=12)["label"].isin(["0", "1", "7"]).all()
    with pytest.raises(UserError, match="not a class"):
        gen.sample(1, seed=0, conditions={"label": "9"})


def test_save_load_roundtrip(tmp_path, digits):
    gen = _gen(max_steps=2).fit(digits)
    gen.save(tmp_path / "m")
    assert (tmp_path / "m" / "unet" / "diffusion_pytorch_model.safetensors").exists()
    assert not list((tmp_path / "m").rglob("*.bin")) and not list((tmp_path / "m").rglob("*.pkl"))
    back = DiffusionGenerator.load(tmp_path / "m")
    a, b = gen.sample(3, seed=1, conditions={"label": "0"}), back.sample(3, seed=1, conditions={"label": "0"})
    assert all((x == y).all() for x, y in zip(a["image"], b["image"]))
    assert back.fit_info_["steps"] == 2 and back.classes_ == ("0", "1", "7")


def test_fine_tune_from_a_saved_unet(tmp_path, digits):
    from diffusers import UNet2DModel

    # a plain diffusers UNet with another number of classes, saved the way diffusers saves it
    base = UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(16, 32), layers_per_block=1,
                       down_block_types=("DownBlock2D",) * 2, up_block_types=("UpBlock2D",) * 2, norm_num_groups=8,
                       num_class_embeds=11)
    base.save_pretrained(tmp_path / "base")
    gen = _gen(max_steps=2, base_model=str(tmp_path / "base")).fit(digits)
    assert gen.unet_.config.num_class_embeds == 4  # 3 classes + "no label"
    assert any("re-initialised" in n for n in gen.fit_info_["base_notes"])
    conv = base.state_dict()["conv_in.weight"]
    assert not torch.equal(conv, gen.unet_.state_dict()["conv_in.weight"])  # trained further ...
    assert torch.allclose(conv, gen.unet_.state_dict()["conv_in.weight"], atol=0.05)  # ... from the base
    # a pipeline-style folder (unet/ inside) of a synthforge model works too, class embedding kept
    gen.save(tmp_path / "ours")
    again = _gen(max_steps=1, base_model=str(tmp_path / "ours")).fit(digits)
    assert again.fit_info_["base_notes"] == [f"fine-tuned from {tmp_path / 'ours' / 'unet'}"]
    with pytest.raises(UserError, match="not a diffusers UNet folder"):
        _gen(max_steps=1, base_model=str(tmp_path)).fit(digits)


def test_resume_from_checkpoint_continues_exactly(tmp_path, digits):
    straight = _gen(max_steps=6, checkpoint_every=0).fit(digits)

    def stop_at_3(state):
        if state["step"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _gen(tmp_path, max_steps=6, checkpoint_every=0).fit(digits, progress=stop_at_3)
    assert (tmp_path / "train.safetensors").exists()
    resumed = _gen(tmp_path, max_steps=6, checkpoint_every=0).fit(digits)
    assert resumed.fit_info_["resumed_from_step"] == 3 and resumed.fit_info_["steps"] == 6
    assert torch.allclose(_weights(straight), _weights(resumed), atol=1e-6)
    # a checkpoint of another configuration is ignored, not loaded
    other = _gen(tmp_path, max_steps=2, checkpoint_every=1e9, learning_rate=5e-4).fit(digits)
    assert other.fit_info_["resumed_from_step"] is None


def test_time_budget_stops_training(digits):
    gen = DiffusionGenerator(TINY, {"steps": 2}, image_size=8, channels=1, time_budget=1.5).fit(digits)
    assert gen.fit_info_["stopped_by"] == "time_budget" and gen.fit_info_["steps"] >= 1
    assert gen.fit_info_["seconds"] < 10
