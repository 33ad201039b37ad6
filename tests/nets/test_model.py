"""SeparationNet: shapes, conditioning modes, config round trip, strict save/load."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from pcsep_cli.errors import ModelError
from pcsep_cli.hub.models import load_model
from pcsep_cli.nets.model import SeparationNet, SeparatorConfig, load_config
from pcsep_cli.train.batch import clouds_to_tensor
from pcsep_cli.train.config import load_train_config

CLASSES = ("violin", "cello", "flute", "none")


def tiny_config(conditioning: str = "both") -> SeparatorConfig:
    """The test preset's model, in the wanted conditioning mode."""
    return dataclasses.replace(load_train_config("tiny").model, conditioning=conditioning)


def _clouds(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    pts = [rng.uniform([-0.3, -0.3, 0], [0.3, 0.3, 1.7], (400 + 50 * i, 3)) for i in range(n)]
    return clouds_to_tensor([p.astype(np.float32) for p in pts], 0.05)


def _inputs(cfg: SeparatorConfig, mixtures: int = 2, frames: int = 37):
    torch.manual_seed(0)
    mag = torch.rand(mixtures, 1, cfg.stft.bins, frames)
    mix_index = torch.tensor([0, 0, 1, 1, 1])[: 2 + mixtures + 1]
    return mag, mix_index


def test_forward_shapes_with_clouds_and_labels():
    cfg = tiny_config("both")
    net = SeparationNet(cfg).eval()
    mag, mix_index = _inputs(cfg)
    out = net(mag, _clouds(len(mix_index)), mix_index)
    assert out.masks.shape == (5, 1, cfg.stft.bins, 37)
    assert out.class_logits.shape == (5, len(CLASSES))
    masks = out.masks.detach()
    assert float(masks.min()) >= 0 and float(masks.max()) <= 1
    labels = torch.tensor([0, 1, 0, 1, 2])
    out_l = net(mag, labels, mix_index)
    assert out_l.masks.shape == out.masks.shape
    assert out_l.class_logits.argmax(1).tolist() == labels.tolist()


def test_each_performer_gets_its_own_mask_and_mixture():
    cfg = tiny_config("labels")
    net = SeparationNet(cfg).eval()
    with torch.no_grad():  # make the FiLM layers matter (they start at zero)
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    mag, _ = _inputs(cfg)
    a = net(mag, torch.tensor([0, 1]), torch.tensor([0, 0])).masks
    assert not torch.allclose(a[0], a[1])  # different labels, different masks
    b = net(mag, torch.tensor([0]), torch.tensor([1])).masks
    c = net(mag[1:], torch.tensor([0]), torch.tensor([0])).masks
    torch.testing.assert_close(b, c)  # mix_index picks the mixture's features


def test_wrong_inputs_name_the_shape():
    cfg = tiny_config("labels")
    net = SeparationNet(cfg)
    mag, mix_index = _inputs(cfg)
    with pytest.raises(ValueError, match=r"mag must be \(B, 1, 128, T\), got \(2, 128, 37\)"):
        net(mag[:, 0], torch.tensor([0, 1]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="mix_index must lie in"):
        net(mag, torch.tensor([0]), torch.tensor([2]))
    with pytest.raises(ValueError, match="conditioned on clouds"):
        SeparationNet(tiny_config("cloud"))(mag, torch.tensor([0]), torch.tensor([0]))
    with pytest.raises(ValueError, match="conditioned on labels"):
        net(mag, _clouds(1), torch.tensor([0]))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 4\)"):
        net(mag, torch.tensor([7]), torch.tensor([0]))


def test_config_round_trip_and_field_errors(tmp_path: Path):
    cfg = tiny_config("both")
    assert SeparatorConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    data = cfg.to_dict()
    data["audio"]["levelz"] = 3
    with pytest.raises(ModelError, match="unknown config field audio.levelz"):
        SeparatorConfig.from_dict(data)
    data = cfg.to_dict()
    del data["stft"]["hop"]
    with pytest.raises(ModelError, match="config field stft.hop is missing"):
        SeparatorConfig.from_dict(data)
    data = cfg.to_dict()
    data["sample_rate"] = "fast"
    with pytest.raises(ModelError, match="sample_rate must be int"):
        SeparatorConfig.from_dict(data, tmp_path / "config.json")
    data = cfg.to_dict()
    data["classes"] = ["violin", "cello"]
    with pytest.raises(ModelError, match="ending with 'none'"):
        SeparatorConfig.from_dict(data)
    data = cfg.to_dict()
    data["stft"]["warp_bins"] = 36
    with pytest.raises(ModelError, match="multiple of"):
        SeparatorConfig.from_dict(data)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../../x", r"classes\[0\] '\.\./\.\./x' is not a class name"),
        ("vio\x1b[31mlin", r"classes\[0\] 'vio\\x1b\[31mlin' is not a class name"),
        ("Violin", "is not a class name"),
        ("", "is not a class name"),
        ("2nd_violin", "is not a class name"),
        ("a" * 33, "is not a class name"),
        ("viol in", "is not a class name"),
        ("cello", r"classes\[1\] 'cello' appears twice"),
        ("none", "appears twice"),
    ],
)
def test_class_names_are_plain_unique_identifiers(tmp_path: Path, name: str, message: str) -> None:
    data = tiny_config().to_dict()
    data["classes"][0] = name
    file = tmp_path / "config.json"
    with pytest.raises(ModelError, match=message) as err:
        SeparatorConfig.from_dict(data, file)
    text = str(err.value)
    assert text.startswith(f"{file}: invalid config: ") and "\n" not in text
    assert "\x1b" not in text  # quoted, never raw


def test_longest_class_names_load() -> None:
    data = tiny_config().to_dict()
    data["classes"][:3] = ["a" * 32, "b_2", "z9"]
    assert SeparatorConfig.from_dict(data).classes[:3] == ("a" * 32, "b_2", "z9")


def test_save_load_gives_identical_output(tmp_path: Path):
    cfg = tiny_config("both")
    torch.manual_seed(3)
    net = SeparationNet(cfg)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    net.eval()
    mag, mix_index = _inputs(cfg)
    clouds = _clouds(len(mix_index))
    before = net(mag, clouds, mix_index)
    net.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]
    loaded = load_model(str(tmp_path / "m"))
    assert loaded.config == cfg and not loaded.training
    after = loaded(mag, _clouds(len(mix_index)), mix_index)
    torch.testing.assert_close(after.masks, before.masks)
    torch.testing.assert_close(after.class_logits, before.class_logits)
    assert load_config(tmp_path / "m") == cfg


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_saved_weights_follow_the_umask(tmp_path: Path, umask: int):
    """A model written on a shared machine is readable by whom the umask says, like any file
    (safetensors' own writer makes it 0600)."""
    old = os.umask(umask)
    try:
        SeparationNet(tiny_config("both")).save_pretrained(tmp_path / "m")
    finally:
        os.umask(old)
    for name in ("config.json", "model.safetensors"):
        assert (tmp_path / "m" / name).stat().st_mode & 0o777 == 0o666 & ~umask, name
    _read(tmp_path / "m")  # still a valid model


def _read(directory: Path) -> SeparationNet:
    """The network of ``directory``'s config, filled from its weights file (strict)."""
    return SeparationNet(load_config(directory)).read_weights(directory)


def test_strict_loading_refuses_missing_extra_and_misshapen(tmp_path: Path):
    net = SeparationNet(tiny_config("both"))
    net.save_pretrained(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    state = load_file(str(weights))
    name = next(iter(state))

    broken = dict(state)
    del broken[name]
    save_file(broken, str(weights))
    with pytest.raises(ModelError, match=f"tensors missing, e.g. {name}"):
        _read(tmp_path / "m")

    save_file({**state, "extra.weight": torch.zeros(2)}, str(weights))
    with pytest.raises(ModelError, match="unexpected tensors, e.g. extra.weight"):
        _read(tmp_path / "m")

    key = "audio_decoder.head.1.weight"
    save_file({**state, key: torch.zeros(1, 2, 3, 3)}, str(weights))
    with pytest.raises(ModelError, match=rf"tensor {key} is \(1, 2, 3, 3\)"):
        _read(tmp_path / "m")

    save_file({**state, key: state[key].double()}, str(weights))
    with pytest.raises(ModelError, match="float64"):
        _read(tmp_path / "m")

    weights.write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError, match="cannot read weights"):
        _read(tmp_path / "m")
    with pytest.raises(ModelError, match="no config.json"):
        _read(tmp_path)


def test_config_with_another_class_list_changes_the_heads():
    base = tiny_config("labels")
    visual = dataclasses.replace(base.visual, num_classes=3)
    cfg = dataclasses.replace(base, classes=("a", "b", "none"), visual=visual)
    net = SeparationNet(cfg)
    assert net.label_embedding.weight.shape[0] == 3


def test_encode_clouds_averages_headings_and_ignores_the_input_heading():
    torch.manual_seed(0)
    net = SeparationNet(tiny_config()).eval()
    rng = np.random.default_rng(4)
    clouds = [rng.uniform([-0.3, -0.3, 0], [0.3, 0.3, 1.7], (400 + 50 * i, 3)) for i in range(3)]
    with torch.no_grad():
        emb1, logp1 = net.encode_clouds(clouds, views=1)
        emb, logits = net.encode_condition(clouds_to_tensor(clouds, 0.05))
        # One view is the cloud as it is.
        torch.testing.assert_close(emb1, emb)
        torch.testing.assert_close(logp1, torch.log_softmax(logits, 1))
        # Four quarter turns: a cloud already turned by a quarter gives the same average.
        turned = [np.stack([-c[:, 1], c[:, 0], c[:, 2]], 1) for c in clouds]
        emb4, logp4 = net.encode_clouds(clouds, views=4)
        emb4t, logp4t = net.encode_clouds(turned, views=4)
    torch.testing.assert_close(emb4, emb4t, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(logp4, logp4t, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(emb4, emb1, atol=1e-3)
    assert torch.allclose(logp4.exp().sum(1), torch.ones(3), atol=0.2)
    with pytest.raises(ValueError, match="views"):
        net.encode_clouds(clouds, views=0)
