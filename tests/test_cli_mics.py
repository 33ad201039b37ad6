"""``pcsep separate --mics`` on the shipped quartet (real FLAC, real PLY): the geometry is checked
against the recording and the scene before any model loads, scaled by ``--units``, recorded in
the manifest, and a model that ignores it says so in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers.models import save_tiny
from helpers.output import other_lines
from typer.testing import CliRunner

from pcsep_cli.cli import app
from pcsep_cli.io.pointcloud import PointCloud, read_cloud, write_ply

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "pcsep_cli" / "examples" / "quartet"
# A near-coincident cardioid pair (ORTF: 17 cm, ±55°) 3 m in front of the quartet, 1.6 m up.
ORTF = [
    {"position": [-0.085, -3.0, 1.6], "direction": [-0.819, 0.574, 0.0], "pattern": "cardioid"},
    {"position": [0.085, -3.0, 1.6], "direction": [0.819, 0.574, 0.0], "pattern": "cardioid"},
]
GUITAR = [0.0, 0.0]  # the guitarist's floor position in the example (meta.json)
runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The quartet's first 1.5 s (stereo, 44.1 kHz, 16-bit), its scene, a tiny model."""
    root = tmp_path_factory.mktemp("mics")
    audio, rate = sf.read(EXAMPLE / "mixture.flac", frames=int(1.5 * 44100), always_2d=True)
    sf.write(root / "take.flac", audio, rate, subtype="PCM_16")
    shutil.copy(EXAMPLE / "scene.ply", root / "scene.ply")
    save_tiny(root / "model")
    return {"mix": root / "take.flac", "scene": root / "scene.ply", "model": root / "model"}


def mics_file(path: Path, entries: list, scale: float = 1.0) -> Path:
    scaled = [
        {**e, "position": [v * scale for v in e["position"]]} if isinstance(e, dict) else e
        for e in entries
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"microphones": scaled}, indent=1))
    return path


def run(*args: str | Path):  # noqa: ANN201 - click's Result
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def one_line_error(result) -> str:  # noqa: ANN001
    lines = other_lines(result.output)
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: "), result.output
    return lines[0]


def test_geometry_is_recorded_and_ignored_by_a_mono_model(files: dict, tmp_path: Path) -> None:
    mics = mics_file(tmp_path / "rig" / "mics.json", ORTF)
    out = tmp_path / "out"
    result = run("separate", files["mix"], files["scene"], "--mics", mics, "-o", out,
                 "--model", files["model"], "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert json.loads((out / "take" / "manifest.json").read_text()) == manifest
    record = manifest["microphones"]
    # The file as the manifest's folder reaches it, like the audio and clouds.
    assert record["file"] == "../../rig/mics.json"
    assert (out / "take" / record["file"]).resolve() == mics.resolve()
    assert record["positions"] == [m["position"] for m in ORTF]
    assert record["patterns"] == ["cardioid", "cardioid"]
    np.testing.assert_allclose(record["directions"], [m["direction"] for m in ORTF], atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(record["directions"], axis=1), 1.0, atol=1e-6)
    assert record["used"] is False
    assert record["note"] == (
        "model model ignores microphone geometry: --mics is recorded in the manifest, "
        "the stems are separated as without it"
    )
    # ... and said once on stderr, the stems as without --mics.
    assert result.stderr.count("ignores microphone geometry") == 1
    assert f"warning: {record['note']}" in result.stderr
    plain = run("separate", files["mix"], files["scene"], "-o", tmp_path / "plain",
                "--model", files["model"], "--json")  # fmt: skip
    assert plain.exit_code == 0 and "microphones" not in plain.stderr
    without = json.loads(plain.stdout)
    assert without["microphones"] is None
    for a, b in zip(manifest["stems"], without["stems"], strict=True):
        ours = sf.read(out / "take" / a["path"])[0]
        theirs = sf.read(tmp_path / "plain" / "take" / b["path"])[0]
        np.testing.assert_array_equal(ours, theirs)


def test_plain_lists_and_label_mode_without_cloud(files: dict, tmp_path: Path) -> None:
    mics = mics_file(tmp_path / "m.json", [[-0.5, -3.0, 1.5], [0.5, -3.0, 1.5]])
    result = run("separate", files["mix"], "--instruments", "cello,violin", "--mics", mics,
                 "-o", tmp_path / "o", "--model", files["model"], "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)["microphones"]
    assert record["patterns"] == ["omni", "omni"] and record["directions"] == [None, None]
    assert record["file"] == "../../m.json"


def test_units_scale_the_microphones_with_the_cloud(files: dict, tmp_path: Path) -> None:
    """A scan and a rig written in millimetres: --units mm brings both to metres, the check
    against the performers included (the guitarist would hold a microphone in mixed units)."""
    cloud = read_cloud(files["scene"])
    scene_mm = tmp_path / "scene_mm.ply"
    write_ply(scene_mm, PointCloud(cloud.xyz * 1000.0, rgb=cloud.rgb))
    mics = mics_file(tmp_path / "mics_mm.json", ORTF, scale=1000.0)
    result = run("separate", files["mix"], scene_mm, "--units", "mm", "--mics", mics,
                 "-o", tmp_path / "o", "--model", files["model"], "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    np.testing.assert_allclose(manifest["microphones"]["positions"],
                               [m["position"] for m in ORTF], atol=1e-9)  # fmt: skip
    assert manifest["stems"][0]["position"][1] == pytest.approx(-0.61, abs=0.1)  # metres too
    # A rig in millimetres beside a scan in metres: the microphones are kilometres away.
    far = run("separate", files["mix"], files["scene"], "--mics", mics, "-o", tmp_path / "f",
              "--model", files["model"])  # fmt: skip
    assert far.exit_code == 0, far.output
    assert (
        f"warning: {mics}: the microphones are 3,400 m from the nearest performer; check that "
        "their positions are in the cloud's frame and units, --units applying to both"
    ) in far.stderr.replace("\n", " ")


@pytest.fixture
def broken_model(tmp_path: Path) -> Path:
    """A model that fails to load: an error about microphones shows they were checked first."""
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "config.json").write_text("{not json")
    (folder / "model.safetensors").write_bytes(b"junk")
    return folder


def test_channel_count_must_match(files: dict, tmp_path: Path, broken_model: Path) -> None:
    three = mics_file(tmp_path / "three.json", [*ORTF, [0.0, -3.0, 2.5]])
    result = run("separate", files["mix"], files["scene"], "--mics", three, "-o", tmp_path / "o",
                 "--model", broken_model)  # fmt: skip
    assert result.exit_code == 1
    assert one_line_error(result) == (
        f"error: {three}: lists 3 microphones, but the recording {files['mix']} has 2 channels "
        "(list one microphone per channel of the recording, in channel order)"
    )
    one = mics_file(tmp_path / "one.json", [[0.0, -3.0, 1.5]])
    mono = run("separate", files["mix"], files["scene"], "--mics", one, "-o", tmp_path / "o",
               "--model", broken_model)  # fmt: skip
    assert "lists 1 microphone, but the recording" in one_line_error(mono)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("position", "inside"),
    [
        ([*GUITAR, 1.0], True),  # in the guitarist's chest
        ([GUITAR[0] + 0.1, GUITAR[1] - 0.1, 0.3], True),  # low, near the centre
        ([*GUITAR, 2.4], False),  # above the head: an overhead
        ([GUITAR[0] + 0.35, GUITAR[1] - 0.3, 0.8], False),  # a spot microphone in front
    ],
)
def test_a_microphone_inside_a_performer_is_refused(
    files: dict, tmp_path: Path, broken_model: Path, position: list, inside: bool
) -> None:
    mics = mics_file(tmp_path / "m.json", [ORTF[0], {**ORTF[1], "position": position}])
    result = run("separate", files["mix"], files["scene"], "--mics", mics, "-o", tmp_path / "o",
                 "--model", broken_model)  # fmt: skip
    assert result.exit_code == 1
    error = one_line_error(result)
    if inside:
        assert error.startswith(f"error: {mics}: microphones[1] (channel 2) at [")
        assert "m is inside the performer at [" in error
        assert "a close microphone stands at least 0.25 m from a performer's centre" in error
    else:  # clear of everyone: the broken model is what fails
        assert "cannot read config" in error and "inside the performer" not in error


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not JSON"),
        ('{"microphones": [[0, NaN, 1], [1, 0, 1]]}', "microphones[0] is [0.0, nan, 1.0]"),
        (
            '{"microphones": [{"position": [0, -3, 1], "pattern": "cardioid"}, [1, -3, 1]]}',
            "microphones[0] is cardioid but has no direction",
        ),
        ('{"microphones": [[0, -3, 1], [0, -3, 1]]}', "are one microphone"),
    ],
)
def test_bad_files_fail_before_the_model(
    files: dict, tmp_path: Path, broken_model: Path, content: str, expected: str
) -> None:
    mics = tmp_path / "mics.json"
    mics.write_text(content)
    result = run("separate", files["mix"], files["scene"], "--mics", mics, "-o", tmp_path / "o",
                 "--model", broken_model)  # fmt: skip
    assert result.exit_code == 1
    error = one_line_error(result)
    assert error.startswith(f"error: {mics}: ") and expected in error
    missing = run("separate", files["mix"], files["scene"], "--mics", tmp_path / "nope.json",
                  "--model", broken_model)  # fmt: skip
    assert "nope.json: no such file (check the --mics path)" in one_line_error(missing)
