"""``evaluate`` on array recordings (pcsep_cli.synth.arrays: audio and microphones, no clouds):
a spatial model is scored in label mode with the microphones and the assumed sources, and
``mic_error`` moves the microphones (seeded) before separating."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers.arrays import write_arrays
from helpers.models import save_tiny, spatial_tiny

from pcsep_cli.train.evaluate import evaluate

SCORES = ("sdr", "sir", "sar", "si_sdr", "sdri", "si_sdri")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two array examples: two flutes before a NOS pair, three cellos before an ORTF pair."""
    return write_arrays(tmp_path_factory.mktemp("arrays"), 2)


@pytest.fixture(scope="module")
def spatial_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return spatial_tiny().save_pretrained(tmp_path_factory.mktemp("model") / "spatial")


def _stems(data: Path) -> int:
    return sum(len(json.loads((f / "meta.json").read_text())["performers"]) for f in data.iterdir())


def _run(model: Path, data: Path, **kw) -> dict:  # noqa: ANN003
    return evaluate(model, data, device="cpu", max_seconds=1, resamples=100, **kw)


def test_a_spatial_model_is_scored_with_the_microphones(data: Path, spatial_dir: Path) -> None:
    report = _run(spatial_dir, data)
    assert report["reads_microphones"] is True and report["mic_error"] == 0.0
    assert report["examples"] == 2 and report["stems"] == _stems(data) == 5
    overall = report["overall"]
    for m in SCORES:
        assert overall[m]["n"] == 5 and np.isfinite(overall[m]["mean"]), m
    assert overall["count"] == 5 and overall["scenes"] == 2
    # No clouds: the main figures are the labels condition's, and nothing is classified.
    assert report["baselines"]["labels"]["overall"] == overall
    assert report["classification"] is None and report["scene"] is None
    assert set(report["per_instrument"]) == {"flute", "cello"}


def test_mic_error_moves_the_figures_and_is_seeded(data: Path, spatial_dir: Path) -> None:
    exact = _run(spatial_dir, data)
    assert _run(spatial_dir, data, mic_error=0.0) == exact
    moved = _run(spatial_dir, data, mic_error=0.1)
    assert moved["mic_error"] == 0.1
    assert moved["overall"]["sdri"]["mean"] != exact["overall"]["sdri"]["mean"]
    jittered = _run(spatial_dir, data, mic_jitter=0.1)
    assert jittered["mic_jitter"] == 0.1
    assert jittered["overall"]["sdri"]["mean"] not in (
        exact["overall"]["sdri"]["mean"],
        moved["overall"]["sdri"]["mean"],
    )
    # The baselines owe nothing to the microphones.
    assert moved["baselines"]["mixture"] == exact["baselines"]["mixture"]
    assert moved["baselines"]["oracle_irm"] == exact["baselines"]["oracle_irm"]


def test_a_mono_model_ignores_the_microphones(data: Path, tmp_path: Path) -> None:
    mono = save_tiny(tmp_path / "mono")
    exact = _run(mono, data)
    assert exact["reads_microphones"] is False
    assert _run(mono, data, mic_error=0.1)["overall"] == exact["overall"]


def test_a_performer_silent_in_the_scored_seconds_is_separated_but_not_scored(
    data: Path, spatial_dir: Path, tmp_path: Path
) -> None:
    import shutil

    import soundfile as sf

    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    example = sorted(copy.iterdir())[1]  # three cellos
    meta = json.loads((example / "meta.json").read_text())
    stem_path = example / meta["performers"][0]["stem"]
    stem, rate = sf.read(stem_path, dtype="float32", always_2d=True)
    mixture, _ = sf.read(example / "mixture.wav", dtype="float32", always_2d=True)
    # The cello rests through the scored second: its share of the mixture goes too.
    sf.write(example / "mixture.wav", mixture - stem, rate, subtype="FLOAT")
    sf.write(stem_path, np.zeros_like(stem), rate, subtype="FLOAT")

    report = _run(spatial_dir, copy)
    assert report["silent_references"] == 1
    assert report["stems"] == report["overall"]["count"] == 4
    for m in SCORES:
        assert report["overall"][m]["n"] == 4 and np.isfinite(report["overall"][m]["mean"])
    assert _run(spatial_dir, data)["silent_references"] == 0
