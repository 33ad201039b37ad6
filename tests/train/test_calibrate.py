"""Calibrating ``none_below``: the threshold's choice, the measurement on validation scenes, the
calibrated model folder, the separator's use of it, and ``pcsep models calibrate``.

Scenes: tests/helpers/training.py's (two performers and a chair each, where the scene step finds
three clusters) and, for the CLI, cloud scenes written by ``pcsep_cli.synth``. Models: the tiny
random ones of tests/helpers/models.py, whose classifier never says ``none``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.models import save_tiny
from helpers.training import make_dataset
from typer.testing import CliRunner

from pcsep_cli.cli import app
from pcsep_cli.errors import DatasetError, ModelError, SceneError
from pcsep_cli.hub.models import load_model
from pcsep_cli.io.pointcloud import read_cloud
from pcsep_cli.scene import find_scene_performers
from pcsep_cli.separate.separator import Separator
from pcsep_cli.train.calibrate import (
    ClusterRecord,
    calibrate,
    choose_threshold,
    collect,
    scene_folders,
    write_calibrated,
)

runner = CliRunner()
SCENES = [["violin", "cello"], ["flute", "violin"], ["cello", "flute"]]


def _rec(performer: bool, label: str, confidence: float, correct: bool = False) -> ClusterRecord:
    return ClusterRecord(performer=performer, correct=correct, label=label, confidence=confidence)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("model") / "tiny", seed=2)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset whose val split holds three scenes: 6 performers and 3 chairs."""
    root = tmp_path_factory.mktemp("scenes")
    make_dataset(root / "val", SCENES, seed=3)
    return root


class _Calls(list):
    def append_pair(self, done: int, total: int) -> None:
        self.append((done, total))


@pytest.fixture(scope="module")
def measured_calls(tiny_model: Path, scenes: Path):
    calls = _Calls()
    sep = Separator.from_pretrained(str(tiny_model), device="cpu")
    records, performers = collect(sep, scene_folders(scenes, "val"), calls.append_pair)
    return records, performers, list(calls)


# -- choose_threshold ----------------------------------------------------------------------


RECORDS = [
    _rec(True, "violin", 0.9, correct=True),
    _rec(True, "cello", 0.6),
    _rec(False, "flute", 0.7),
    _rec(False, "violin", 0.5),
    _rec(False, "none", 0.95),  # called none already: never a stem, whatever the threshold
]


def _above(x: float) -> float:
    """The next float32 above ``x``: the lowest threshold that drops a cluster at ``x``."""
    return float(np.nextafter(np.float32(x), np.float32(2.0)))


@pytest.mark.parametrize(
    ("max_spurious", "expected"),
    [
        # Spurious stems per performer (2): t <= 0.5: 2/2; 0.5 < t <= 0.7: 1/2; t > 0.7: 0.
        # A cluster whose confidence equals the threshold is kept (confidence >= threshold).
        (1.0, 0.0),
        (0.99, _above(0.5)),
        (0.5, _above(0.5)),
        (0.49, _above(0.7)),
        (0.0, _above(0.7)),
    ],
)
def test_choose_threshold_is_the_lowest_that_keeps_spurious_stems_down(max_spurious, expected):
    t = choose_threshold(RECORDS, performers=2, max_spurious=max_spurious)
    assert t == expected
    # Just below it the bound fails (unless it is 0).
    if t > 0:
        lower = float(np.nextafter(np.float32(t), np.float32(0.0)))
        stems = [r for r in RECORDS if r.label != "none" and r.confidence >= lower]
        assert sum(not r.performer for r in stems) / 2 > max_spurious


def test_choose_threshold_stays_below_one_when_the_bound_cannot_be_met():
    sure = [_rec(False, "piano", 1.0), _rec(True, "violin", 0.9, correct=True)]
    t = choose_threshold(sure, performers=1, max_spurious=0.0)
    assert 0.99 < t < 1.0


def test_choose_threshold_is_zero_without_spurious_stems():
    only_performers = [_rec(True, "violin", 0.8), _rec(True, "flute", 0.4), _rec(False, "none", 1)]
    assert choose_threshold(only_performers, performers=2, max_spurious=0.0) == 0.0
    assert choose_threshold([], performers=3) == 0.0
    # Per performer: 1 spurious stem among 100 performers meets 0.01, among 50 it does not.
    one = [_rec(False, "cello", 0.3), _rec(True, "violin", 0.8)]
    assert choose_threshold(one, performers=100, max_spurious=0.01) == 0.0
    assert choose_threshold(one, performers=50, max_spurious=0.01) == _above(0.3)


# -- collect and calibrate -----------------------------------------------------------------


def test_collect_matches_clusters_to_performers(measured_calls):
    records, performers, calls = measured_calls
    assert performers == 6
    assert calls == [(1, 3), (2, 3), (3, 3)]
    # Each scene: its two performers and its chair, the chair matched to no performer.
    assert len(records) == 9
    assert sum(r.performer for r in records) == 6
    assert all(r.performer for r in records if r.correct)
    # The tiny classifier never says none; its most likely class has at least a third.
    assert all(r.label in ("violin", "cello", "flute") for r in records)
    assert all(1 / 3 - 1e-6 <= r.confidence <= 1 for r in records)


def test_collect_reads_the_real_capture_layout_alike(
    measured_calls, tiny_model: Path, scenes: Path, tmp_path: Path
):
    """Captures (no labels.npy: the README's recipe calibrates a fine-tuned model on them) are
    matched by their performers' positions, as the synthetic scenes are."""
    import shutil

    captured = tmp_path / "captured"
    shutil.copytree(scenes, captured)
    for labels in captured.rglob("labels.npy"):
        labels.unlink()
    sep = Separator.from_pretrained(str(tiny_model), device="cpu")
    records, performers = collect(sep, scene_folders(captured, "val"), lambda done, total: None)
    assert (records, performers) == measured_calls[:2]


def test_calibrate_measures_and_chooses_with_the_threshold_off(
    measured_calls, tiny_model: Path, scenes: Path, tmp_path: Path
):
    records, performers, _ = measured_calls
    # A model calibrated to call nearly everything none is measured as if uncalibrated.
    strict = write_calibrated(str(tiny_model), 0.99, tmp_path / "strict")
    result = calibrate(str(strict), [scenes], max_spurious=0.01)
    assert (result.scenes, result.performers, result.clusters) == (3, 6, 9)
    assert result.threshold == choose_threshold(records, performers, 0.01)
    assert result.spurious[1] == pytest.approx(3 / 6)  # three chairs, all stems at 0
    correct = sum(r.correct for r in records)
    assert result.detected[1] == pytest.approx(correct / 6)
    rows = {round(t, 4): (s, d) for t, s, d in result.curve}
    assert rows[0.0] == (result.spurious[1], result.detected[1])
    assert [t for t, _, _ in result.curve] == sorted(t for t, _, _ in result.curve)
    assert round(result.threshold, 4) in rows


def test_calibrate_refuses_a_test_split_and_bad_bounds(scenes: Path, tmp_path: Path):
    # Checked before any model is loaded: the model reference does not exist.
    with pytest.raises(ValueError, match="test split must stay unseen"):
        calibrate("no/such-model", [scenes], split="test")
    with pytest.raises(ValueError, match="max_spurious"):
        calibrate("no/such-model", [scenes], max_spurious=1.5)
    (tmp_path / "empty" / "val").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no scenes in the val split"):
        calibrate("no/such-model", [tmp_path / "empty"])


def test_scene_folders_takes_scenes_and_cloud_scenes_of_the_split(tmp_path: Path):
    make_dataset(tmp_path / "val", [["violin", "cello"]], seed=1)
    make_dataset(tmp_path / "clouds" / "val", [["flute"], ["cello"]], seed=2)
    make_dataset(tmp_path / "train", [["flute"]], seed=3)
    found = scene_folders(tmp_path, "val")
    assert [f.relative_to(tmp_path).as_posix() for f in found] == [
        "val/000000",
        "clouds/val/000000",
        "clouds/val/000001",
    ]


# -- the calibrated model ------------------------------------------------------------------


def test_write_calibrated_sets_none_below_and_keeps_the_weights(tiny_model: Path, tmp_path: Path):
    out = write_calibrated(str(tiny_model), 0.42, tmp_path / "cal")
    assert json.loads((out / "config.json").read_text())["none_below"] == 0.42
    assert "none_below" not in json.loads((tiny_model / "config.json").read_text())
    src, cal = load_model(str(tiny_model)), load_model(str(out))
    assert cal.config.none_below == 0.42
    assert cal.config == dataclasses.replace(src.config, none_below=0.42)
    a, b = src.state_dict(), cal.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # Never over a model without overwrite; with it, the new threshold replaces the old.
    with pytest.raises(ModelError, match="already holds a model"):
        write_calibrated(str(tiny_model), 0.1, out)
    assert load_model(str(out)).config.none_below == 0.42
    write_calibrated(str(tiny_model), 0.0, out, overwrite=True)
    assert "none_below" not in json.loads((out / "config.json").read_text())  # 0: off
    assert load_model(str(out)).config.none_below == 0.0


def test_separator_calls_clusters_below_none_below_none(
    tiny_model: Path, scenes: Path, tmp_path: Path
):
    clusters = find_scene_performers([read_cloud(scenes / "val" / "000000" / "scene.ply")])
    assert len(clusters) == 3
    plain = Separator.from_pretrained(str(tiny_model), device="cpu").classify(clusters)
    assert all(label != "none" for label, _ in plain)  # none_below 0: labels untouched
    confs = sorted(c for _, c in plain)
    assert confs[0] < confs[1]
    cut = (confs[0] + confs[1]) / 2  # just above the least confident cluster
    sep = Separator.from_pretrained(
        str(write_calibrated(str(tiny_model), cut, tmp_path / "cal")), device="cpu"
    )
    named = sep.classify(clusters)
    for (label, conf), (new_label, new_conf) in zip(plain, named, strict=True):
        assert new_conf == pytest.approx(conf, abs=1e-6)  # the confidence is still reported
        assert new_label == ("none" if conf < cut else label)
    # The none cluster gets no stem.
    cond = sep.condition(clusters)
    assert [d.name is None for d in cond.detections] == [c < cut for _, c in plain]
    assert cond.film.shape[0] == 2
    # Above every cluster's confidence: nothing left to separate.
    top = write_calibrated(str(tiny_model), confs[-1] + 1e-3, tmp_path / "top")
    with pytest.raises(SceneError, match="look like no instrument"):
        Separator.from_pretrained(str(top), device="cpu").condition(clusters)


# -- pcsep models calibrate ----------------------------------------------------------------


@pytest.fixture(scope="module")
def cloud_val(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two cloud scenes in the val split, written by the real synthesiser."""
    from pcsep_cli.synth.dataset import write_dataset

    root = tmp_path_factory.mktemp("synth") / "rooms"
    write_dataset(root, examples=0, cloud_scenes=2, seed=4, split_fractions=(0, 1, 0))
    return root


def test_cli_calibrates_and_writes_a_model(tiny_model: Path, cloud_val: Path, tmp_path: Path):
    out = tmp_path / "cal"
    ok = runner.invoke(
        app, ["models", "calibrate", str(tiny_model), str(cloud_val), "-o", str(out)]
    )
    assert ok.exit_code == 0, ok.output
    assert "2 scenes" in ok.output and "<- chosen" in ok.output
    cal = load_model(str(out))
    assert 0.0 <= cal.config.none_below < 1.0
    src = load_model(str(tiny_model)).state_dict()
    assert all(torch.equal(v, src[k]) for k, v in cal.state_dict().items())
    before = (out / "config.json").read_text()
    again = runner.invoke(
        app, ["models", "calibrate", str(tiny_model), str(cloud_val), "-o", str(out)]
    )
    assert again.exit_code == 1 and "already holds a model" in again.output
    assert (out / "config.json").read_text() == before
    test = runner.invoke(
        app,
        ["models", "calibrate", str(tiny_model), str(cloud_val), "-o", str(tmp_path / "t")]
        + ["--split", "test"],
    )
    assert test.exit_code == 2 and "test split" in test.output
    assert not (tmp_path / "t" / "model.safetensors").exists()
