"""Loading: same weights from a directory and from the Hub, and refusals before any tensor."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pytest
import torch

from pcsep_cli.errors import ModelError
from pcsep_cli.hub.models import describe, expected_tensors, load_model, resolve, verify
from pcsep_cli.nets.model import load_config


def _masks(net: torch.nn.Module) -> torch.Tensor:
    torch.manual_seed(1)
    bins = net.config.stft.bins
    mag = torch.rand(1, 1, bins, 23)
    with torch.no_grad():
        return net(mag, torch.tensor([0, 1]), torch.tensor([0, 0])).masks


def test_directory_and_hub_revision_give_identical_outputs(hub, make_model, as_files) -> None:
    directory = make_model()
    sha = hub.commit("me/tiny", as_files(directory), tags=("v1",))

    local = load_model(str(directory))
    remote = load_model("me/tiny@v1")

    assert not local.training and not remote.training
    state_local, state_remote = local.state_dict(), remote.state_dict()
    assert state_local.keys() == state_remote.keys()
    assert all(torch.equal(state_local[k], state_remote[k]) for k in state_local)
    masks = _masks(local)
    assert torch.equal(masks, _masks(remote))
    assert masks.std() > 0  # the comparison is not between two constants
    assert describe(remote) == {
        "id": "me/tiny",
        "revision": "v1",
        "commit": sha,
        "source": "hub",
        "path": str(resolve(f"me/tiny@{sha}").path),
    }
    assert describe(local)["source"] == "local"


def test_expected_tensors_on_meta_match_the_saved_state(make_model) -> None:
    directory = make_model()
    from safetensors import safe_open

    expected = expected_tensors(load_config(directory))

    with safe_open(str(directory / "model.safetensors"), "pt") as fh:
        saved = {k: fh.get_slice(k) for k in fh.keys()}  # noqa: SIM118 - safe_open API
        got = {k: (s.get_dtype(), tuple(s.get_shape())) for k, s in saved.items()}
    assert got == expected
    assert len(expected) > 10


def _edit_config(directory: Path, edit) -> None:  # noqa: ANN001
    path = directory / "config.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(sample_rate="fast"), "config field sample_rate must be int"),
        (lambda d: d["audio"].pop("levels"), "config field audio.levels is missing"),
        (lambda d: d.update(dropout=0.1), "unknown config field dropout"),
        (lambda d: d["stft"].update(hop=-1), "stft.hop"),
    ],
)
def test_malformed_config_is_refused_naming_the_field_before_weights(
    make_model, edit, message: str
) -> None:
    directory = make_model()
    _edit_config(directory, edit)
    # Garbage weights: were they read first, the error would be about them.
    (directory / "model.safetensors").write_bytes(b"\xff" * 64)

    with pytest.raises(ModelError, match=message) as err:
        load_model(str(directory))
    assert str(directory / "config.json") in str(err.value)


def test_malformed_config_from_the_hub_is_refused_naming_the_field(
    hub, make_model, as_files
) -> None:
    directory = make_model()
    _edit_config(directory, lambda d: d.update(classes="violin"))
    hub.commit("me/broken", as_files(directory))

    with pytest.raises(ModelError, match="config field classes must be a list"):
        load_model("me/broken")


def test_weights_for_another_config_are_refused_before_loading(make_model) -> None:
    small = make_model("small", base_channels=2, max_channels=4)
    other = make_model("other", base_channels=4, max_channels=8)
    (small / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())

    with pytest.raises(ModelError, match=r"is \[.*\] F32, the config expects \[.*\] F32"):
        load_model(str(small))


def test_trillion_element_tensor_in_a_model_dir_is_refused_at_once(make_model) -> None:
    directory = make_model()
    weights = directory / "model.safetensors"
    raw = weights.read_bytes()
    length = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + length])
    name = next(k for k in header if k != "__metadata__")
    header[name]["shape"] = [10**6, 10**6]
    blob = json.dumps(header).encode()
    weights.write_bytes(struct.pack("<Q", len(blob)) + blob + raw[8 + length :])
    start = time.perf_counter()

    with pytest.raises(ModelError, match=r"claims shape \[1000000, 1000000\]"):
        verify(resolve(str(directory)))

    assert time.perf_counter() - start < 2.0


def test_pickle_only_directory_is_refused(make_model) -> None:
    directory = make_model()
    (directory / "model.safetensors").rename(directory / "pytorch_model.bin")

    with pytest.raises(ModelError, match="holds only pickle weights"):
        load_model(str(directory))


def test_load_model_default_reference_and_device(
    make_model, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = make_model()
    monkeypatch.setenv("PCSEP_MODEL", str(directory))

    net = load_model(device="cpu")

    assert next(net.parameters()).device.type == "cpu"
    assert describe(net)["path"] == str(directory)
