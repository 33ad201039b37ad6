"""``train_spatial``: a spatial head trained on array recordings (pcsep_cli.synth.arrays, 8 kHz,
1 s) over a frozen tiny model; the result loads as a model that reads microphones, and a run
killed after a checkpoint resumes to the very weights of an uninterrupted one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from helpers.arrays import write_arrays
from helpers.models import save_tiny
from safetensors.torch import load_file

from pcsep_cli.errors import DatasetError
from pcsep_cli.hub import load_model
from pcsep_cli.train.spatial import SpatialTrainConfig, train_spatial


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three array examples: a NOS pair, an ORTF pair (three cellos), a square of four."""
    return write_arrays(tmp_path_factory.mktemp("arrays"), 3)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("base") / "tiny")


def config(base: Path, notes: int = 0) -> SpatialTrainConfig:
    # Half a second of each example keeps a step near 0.1 s on a busy CPU.
    return SpatialTrainConfig(
        base=str(base),
        steps=4,
        examples_per_step=1,
        checkpoint_every=2,
        seconds=0.5,
        hidden=4,
        notes=notes,
    )


def head(model_dir: Path) -> dict[str, torch.Tensor]:
    state = load_file(str(model_dir / "model.safetensors"))
    return {k: v for k, v in state.items() if k.startswith("spatial.")}


def test_the_trained_model_reads_microphones(data: Path, base: Path, tmp_path: Path) -> None:
    steps = []
    model_dir = train_spatial(
        data, tmp_path / "run", config(base), progress=lambda e: steps.append((e.stage, e.done))
    )
    assert model_dir == tmp_path / "run" / "model"
    assert steps == [("train", k) for k in range(1, 5)]
    net = load_model(str(model_dir))
    assert net.accepts_microphones and net.config.spatial.enabled
    assert net.config.spatial.hidden == 4
    log = json.loads((tmp_path / "run" / "train_log.json").read_text())
    assert log["steps"] == 4 and log["examples"] == 3
    assert log["config"]["base"] == str(base)
    # The mono weights are the base model's, untouched; the head learnt (its last layer
    # starts at zero).
    trained = load_file(str(model_dir / "model.safetensors"))
    for key, value in load_file(str(base / "model.safetensors")).items():
        assert torch.equal(trained[key], value), key
    layers = {int(k.split(".")[2]) for k in head(model_dir) if k.startswith("spatial.head.")}
    last = [k for k in head(model_dir) if k.startswith(f"spatial.head.{max(layers)}.")]
    assert last and any(trained[k].abs().max() > 0 for k in last)


def test_a_head_with_a_note_model_trains_its_sharpness(
    data: Path, base: Path, tmp_path: Path
) -> None:
    model_dir = train_spatial(data, tmp_path / "run", config(base, notes=4))
    net = load_model(str(model_dir))
    assert net.config.spatial.notes == 4
    kappa = head(model_dir)["spatial.log_note_kappa"]
    assert kappa.shape == (net.config.stft.bins, 1)
    assert not torch.allclose(kappa, torch.full_like(kappa, kappa.flatten()[0].item()))


@pytest.mark.parametrize("notes", [0, 4])
def test_a_killed_run_resumes_to_the_same_weights(
    data: Path, base: Path, tmp_path: Path, notes: int
) -> None:
    straight = train_spatial(data, tmp_path / "a", config(base, notes))

    class Killed(Exception):
        pass

    def kill_at_3(event) -> None:  # noqa: ANN001
        if event.done == 3:  # after the step-2 checkpoint, before the end
            raise Killed

    with pytest.raises(Killed):
        train_spatial(data, tmp_path / "b", config(base, notes), progress=kill_at_3)
    assert not (tmp_path / "b" / "model").exists()
    at_2 = torch.load(tmp_path / "b" / "spatial_ckpt.pt", weights_only=False)
    assert at_2["step"] == 2
    seen = []
    resumed = train_spatial(
        data, tmp_path / "b", config(base, notes), progress=lambda e: seen.append(e.done)
    )
    assert seen == [3, 4]  # steps 1 and 2 came from the checkpoint
    a, b = head(straight), head(resumed)
    assert a.keys() == b.keys() and len(a) > 2
    for key in a:
        assert torch.equal(a[key], b[key]), key
    log_a = json.loads((tmp_path / "a" / "train_log.json").read_text())
    log_b = json.loads((tmp_path / "b" / "train_log.json").read_text())
    for key in ("steps", "loss_first_100", "loss_last_100"):
        assert log_a[key] == log_b[key], key
    # Steps 3 and 4 did run after the resume: the head moved on from the checkpoint.
    assert any(not torch.equal(at_2["head"][k.removeprefix("spatial.")], v) for k, v in b.items())


def _copy_without(data: Path, dest: Path, change) -> Path:  # noqa: ANN001
    """The first example copied to ``dest/00000`` with its meta.json changed by ``change``."""
    folder = dest / "00000"
    shutil.copytree(data / "00000", folder)
    meta = json.loads((folder / "meta.json").read_text())
    change(meta)
    (folder / "meta.json").write_text(json.dumps(meta))
    return dest


def _no_mics(meta: dict) -> None:
    del meta["microphones"]


def _unknown_class(meta: dict) -> None:
    meta["performers"][0]["instrument"] = "piano"  # not one of the tiny model's classes


@pytest.mark.parametrize("change", [None, _no_mics, _unknown_class])
def test_no_usable_example_is_a_dataset_error(data, base, tmp_path, change) -> None:  # noqa: ANN001
    folder = tmp_path / "data"
    folder.mkdir()
    if change is not None:
        _copy_without(data, folder, change)
    with pytest.raises(DatasetError, match="no example with microphones"):
        train_spatial(folder, tmp_path / "run", config(base))
    assert not (tmp_path / "run" / "model").exists()
