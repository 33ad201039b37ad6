"""``pcsep separate --mics`` with a spatial model (issue 15), through the real CLI: the geometry
steers the stems and the manifest says where each stem's sound was taken to come from; without
``--mics`` the model runs on the mono path and says so once.

The scene is conftest's: a seated cellist at x = -1 and a standing player at x = 1, both on
y = 0 facing -y. The recording is made here: band-limited noise from above each performer's
footprint, heard by a spaced pair of omnis 2.5 m in front of them after ``distance / c``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers.models import spatial_tiny
from typer.testing import CliRunner

from pcsep_cli.cli import app
from pcsep_cli.nets.spatial import SPEED_OF_SOUND

SR = 16000  # twice the model's rate: the channels are resampled before steering
# A spaced pair off the ensemble's axis, so that swapped channels do not just swap performers.
PAIR = [[0.3, -2.5, 1.5], [0.9, -2.5, 1.5]]
SOUNDS = [(-1.0, 0.0, 0.75), (1.0, 0.0, 0.95)]  # about where pcsep puts them (sound_point)
BANDS = [(300.0, 1500.0), (1500.0, 3500.0)]
MONO_NOTE = (
    "no microphone geometry (--mics): this spatial model ran on the mono path, as pcsep-base does"
)
runner = CliRunner()


def run(*args: str | Path):  # noqa: ANN201 - click's Result
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 1 s two-channel WAV of the scene's two performers, its mics.json, a spatial model."""
    root = tmp_path_factory.mktemp("spatial")
    n = SR
    rng = np.random.default_rng(3)
    freqs = np.fft.rfftfreq(n, 1 / SR)
    mics = np.array(PAIR)
    mix = np.zeros((2, n))
    for src, (lo, hi) in zip(SOUNDS, BANDS, strict=True):
        spectrum = np.fft.rfft(rng.standard_normal(n)) * ((freqs >= lo) & (freqs <= hi))
        dist = np.linalg.norm(mics - np.array(src), axis=1)
        delay = np.exp(-2j * np.pi * freqs[None] * (dist[:, None] / SPEED_OF_SOUND))
        mix += np.fft.irfft(spectrum[None] * delay / dist[:, None], n=n)
    mix *= 0.4 / np.abs(mix).max()
    sf.write(root / "take.wav", mix.T, SR, subtype="FLOAT")
    (root / "mics.json").write_text(json.dumps({"microphones": PAIR}))
    swapped = [{"position": p, "pattern": "omni"} for p in PAIR[::-1]]
    (root / "swapped.json").write_text(json.dumps({"microphones": swapped}))
    spatial_tiny().save_pretrained(root / "spatial")
    return {"mix": root / "take.wav", "mics": root / "mics.json",
            "swapped": root / "swapped.json", "model": root / "spatial"}  # fmt: skip


def test_the_geometry_steers_the_stems(files: dict, scene_ply: Path, tmp_path: Path) -> None:
    config = json.loads((files["model"] / "config.json").read_text())
    assert config["spatial"]["enabled"] is True
    out = tmp_path / "out"
    result = run("separate", files["mix"], scene_ply, "--mics", files["mics"], "-o", out,
                 "--model", files["model"], "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert json.loads((out / "take" / "manifest.json").read_text()) == manifest
    record = manifest["microphones"]
    assert record["used"] is True and record["note"] is None
    assert record["positions"] == PAIR
    stems = manifest["stems"]
    assert len(stems) == 2 and len(record["sources"]) == len(stems)
    for source, stem in zip(record["sources"], stems, strict=True):
        assert len(source) == 3
        # Straight above the stem's footprint, near chest height (0.55 of the performer).
        np.testing.assert_allclose(source[:2], stem["position"][:2], atol=0.02)
        assert 0.5 < source[2] - stem["position"][2] < 1.1
    check = record["channel_check"]
    assert set(check) == {"score", "best_order", "best_score"}
    assert sorted(check["best_order"]) == [1, 2]  # channels counted from 1
    assert 0.0 <= check["score"] <= check["best_score"] <= 1.0
    assert check["best_order"] == [1, 2] and manifest["notes"] == []
    assert "warning" not in result.stderr
    for stem in stems:
        audio, rate = sf.read(out / "take" / stem["path"], always_2d=True)
        assert rate == SR and audio.shape == (SR, 2)


def test_swapped_channels_are_named(files: dict, scene_ply: Path, tmp_path: Path) -> None:
    result = run("separate", files["mix"], scene_ply, "--mics", files["swapped"],
                 "-o", tmp_path / "out", "--model", files["model"], "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    check = manifest["microphones"]["channel_check"]
    assert check["best_order"] == [2, 1] and check["best_score"] > check["score"] + 0.03
    (note,) = manifest["notes"]
    assert note.startswith(f"{files['swapped']}: the recording's channels match the performers' ")
    assert "in the order 2,1 than as listed" in note
    assert f"warning: {note}" in result.stderr.replace("\n", " ")


def test_without_mics_the_spatial_model_says_it_ran_mono(
    files: dict, scene_ply: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = run("separate", files["mix"], scene_ply, "-o", out,
                 "--model", files["model"], "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert manifest["microphones"] is None
    assert manifest["notes"] == [MONO_NOTE]
    said = [line for line in result.stderr.splitlines() if "mono path" in line]
    assert said == [f"warning: {MONO_NOTE}"]
    # Not said when the geometry is there.
    steered = run("separate", files["mix"], scene_ply, "--mics", files["mics"],
                  "-o", tmp_path / "steered", "--model", files["model"])  # fmt: skip
    assert steered.exit_code == 0, steered.output
    assert "mono path" not in steered.stderr
    # ... and the stems differ: the head (random weights) steered them.
    ours = sf.read(out / "take" / manifest["stems"][0]["path"])[0]
    theirs = sf.read(tmp_path / "steered" / "take" / manifest["stems"][0]["path"])[0]
    assert np.abs(ours - theirs).max() > 1e-3


def test_batch_says_each_warning_once_and_counts_the_items_it_also_applies_to(
    files: dict, scene_ply: Path, tmp_path: Path
) -> None:
    """Two items without geometry and one with its own ``<name>.mics.json``: the mono-path
    warning is printed once, with the first item, then counted; the JSON has it on both items;
    ``--quiet`` still says it (at the end), as ``separate --quiet`` does."""
    folder = tmp_path / "takes"
    folder.mkdir()
    for name in ("a", "b", "c"):
        (folder / f"{name}.wav").write_bytes(files["mix"].read_bytes())
        (folder / f"{name}.ply").write_bytes(scene_ply.read_bytes())
    (folder / "c.mics.json").write_text(files["mics"].read_text())
    for quiet in ([], ["--quiet"]):
        out = tmp_path / f"out{len(quiet)}"
        result = run("batch", folder, "-o", out, "--model", files["model"], "--json", *quiet)
        assert result.exit_code == 0, result.output
        items = {i["name"]: i for i in json.loads(result.stdout)["items"]}
        assert items["a"]["notes"] == items["b"]["notes"] == [MONO_NOTE]
        assert items["c"]["notes"] == []
        err = " ".join(result.stderr.split())
        assert err.count(MONO_NOTE) == 2, err  # once with its item, once with the count
        assert f"warning: a: {MONO_NOTE}" in err or f"warning: b: {MONO_NOTE}" in err
        assert f"warning: 1 more item(s): {MONO_NOTE}" in err
