"""``pcsep separate`` and ``pcsep batch`` with ``--format mp3|ogg|opus``, ``--bitrate``,
``--quality``, ``--stems``, ``--start`` and ``--duration``, through the CLI on real files.

Most runs use label mode (``--instruments``, no cloud) with a tiny random model: the whole
pipeline to files in about a second. The batch runs use the conftest's scene and model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers.audio import output_file, recording, sum_error
from helpers.models import save_tiny
from helpers.output import other_lines
from typer.testing import CliRunner

from pcsep_cli.cli import app
from pcsep_cli.io.atomic import TMP_MARKER

runner = CliRunner()
RATE = 44100
MP3_FRAME = 1152


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny model and a 2 s stereo 44.1 kHz float mixture."""
    root = tmp_path_factory.mktemp("opts")
    audio = 0.2 * np.random.default_rng(0).standard_normal((2 * RATE, 2))
    sf.write(root / "mix.wav", audio.astype(np.float32), RATE, subtype="FLOAT")
    save_tiny(root / "model")
    return {"mix": root / "mix.wav", "model": root / "model"}


def run(*args: str | Path):  # noqa: ANN201 - click's Result
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def separate(files: dict[str, Path], out: Path, *args: str, labels: str = "violin,cello"):  # noqa: ANN201
    return run("separate", files["mix"], "-o", out, "--model", files["model"],
               "--instruments", labels, *args)  # fmt: skip


def one_line_error(result: object) -> str:
    lines = other_lines(result.output)  # type: ignore[attr-defined]
    assert len(lines) == 1, result.output  # type: ignore[attr-defined]
    return lines[0]


def read(path: str | Path) -> np.ndarray:
    return sf.read(path, dtype="float64", always_2d=True)[0]


# -- formats ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fmt,subtype,file_rate",
    [
        ("mp3", "MPEG_LAYER_III", RATE),
        ("ogg", "VORBIS", RATE),
        ("opus", "OPUS", 48000),
    ],  # fmt: skip
)
def test_lossy_formats(files: dict[str, Path], tmp_path: Path, fmt, subtype, file_rate) -> None:  # noqa: ANN001
    result = separate(files, tmp_path, "--format", fmt, "--json")
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert manifest["lossy"] is True and manifest["sum_max_error"] is None
    assert (manifest["format"], manifest["subtype"]) == (fmt, subtype)
    assert manifest["output_sample_rate"] == file_rate
    want = round(2 * RATE * file_rate / RATE)
    for entry in [*manifest["stems"], manifest["residual"]]:
        assert Path(entry["path"]).suffix == f".{fmt}"
        info = sf.info(output_file(manifest, entry))
        assert (info.subtype, info.samplerate, info.channels) == (subtype, file_rate, 2)
        assert abs(len(read(output_file(manifest, entry))) - want) <= (
            MP3_FRAME if fmt == "mp3" else 0
        )
    # Lossy, yet the same recording: decoded stems + residual come near the mixture (white
    # noise is a perceptual codec's worst case: it may leave out ~10 % of its energy).
    if file_rate == RATE:
        total = sum(
            read(output_file(manifest, e)) for e in [*manifest["stems"], manifest["residual"]]
        )
        mix = read(files["mix"])
        assert np.sum((total - mix) ** 2) < 0.3 * np.sum(mix**2)
    assert not list(tmp_path.rglob(f"*{TMP_MARKER}*"))


def test_bitrate_sets_the_size(files: dict[str, Path], tmp_path: Path) -> None:
    sizes = {}
    for kbps in (64, 256):
        result = separate(files, tmp_path / str(kbps), "--format", "mp3", "--bitrate", str(kbps),
                          "--json")  # fmt: skip
        assert result.exit_code == 0, result.output
        manifest = json.loads(result.stdout)
        assert manifest["bitrate"] == kbps
        sizes[kbps] = Path(output_file(manifest, manifest["residual"])).stat().st_size
        assert sizes[kbps] * 8 / 2.0 / 1000 == pytest.approx(kbps, rel=0.2)  # 2 s of audio
    assert sizes[256] > 3.5 * sizes[64]
    ogg = separate(files, tmp_path / "q", "--format", "ogg", "--quality", "2", "--json")
    assert ogg.exit_code == 0 and json.loads(ogg.stdout)["quality"] == 2.0


@pytest.mark.parametrize(
    "args,match",
    [
        (["--format", "mp3", "--bits", "16"], "--bits applies to wav and flac"),
        (["--format", "wav", "--bitrate", "128"], "--bitrate applies to mp3 and opus"),
        (["--format", "ogg", "--bitrate", "128"], "Vorbis takes --quality"),
        (["--format", "opus", "--quality", "5"], "--quality applies to ogg"),
        # Bitrates no input could take (at any sample rate, any channel count): up front.
        (["--format", "mp3", "--bitrate", "999"], "--bitrate of mp3 must be 8 to 320 kbit/s"),
        (["--format", "mp3", "--bitrate", "4"], "--bitrate of mp3 must be 8 to 320 kbit/s"),
        (["--format", "opus", "--bitrate", "5"], "--bitrate of opus must be 6 to 65280 kbit/s"),
        (["--format", "opus", "--bitrate", "0"], "--bitrate of opus must be 6 to 65280 kbit/s"),
        (["--format", "aac"], "--format must be one of wav, flac, mp3, ogg, opus"),
        (["--start", "-1"], "--start must not be negative"),
        (["--start", "1:75"], "seconds after a colon must be below 60"),
        (["--start", "soon"], "--start 'soon' is not a time"),
        (["--duration", "0"], "--duration must be more than 0 seconds"),
        (["--duration", "-0.5"], "--duration must not be negative"),
        (["--stems", "viola"], "'viola' is not an instrument this model knows (violin, cello"),
        (["--stems", "none"], "'none' (no instrument) is never separated"),
        (["--stems", ","], "--stems needs instrument names"),
    ],
)
def test_bad_values_are_usage_errors(files: dict[str, Path], tmp_path: Path, args, match) -> None:  # noqa: ANN001
    result = separate(files, tmp_path / "o", *args)
    assert result.exit_code == 2
    assert match in one_line_error(result)
    assert not (tmp_path / "o").exists()


def test_what_this_recording_cannot_take_is_exit_1(files: dict[str, Path], tmp_path: Path) -> None:
    """Checked against the file before the model loads: the model here does not exist."""
    cases = [
        (["--format", "mp3", "--bitrate", "100"], "MP3 at 44100 Hz takes a bitrate of 32"),
        (["--start", "10"], "--start 10 s is past the end of the recording, which lasts 2 s"),
        (["--start", "0:02"], "past the end"),  # exactly the end: nothing left
    ]
    for args, match in cases:
        result = run("separate", files["mix"], "-o", tmp_path / "o", "--model",
                     tmp_path / "no-model", "--instruments", "violin", *args)  # fmt: skip
        assert result.exit_code == 1
        line = one_line_error(result)
        assert line.startswith(f"error: {files['mix']}: ") and match in line
    assert not (tmp_path / "o").exists()


# -- stems -----------------------------------------------------------------------------------


def test_stems_writes_only_those_and_the_residual_takes_the_rest(
    files: dict[str, Path], tmp_path: Path
) -> None:
    labels = "violin,cello,violin"
    full = json.loads(separate(files, tmp_path / "all", "--json", labels=labels).stdout)
    result = separate(files, tmp_path / "some", "--stems", "violin", "--json", labels=labels)
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    # Every performer of the class: violin and violin_2; cello goes to the residual.
    assert [s["name"] for s in manifest["stems"]] == ["violin", "violin_2"]
    assert manifest["selected_stems"] == ["violin"]
    assert [d["name"] for d in manifest["in_residual"]] == ["cello"]
    assert sorted(p.name for p in (tmp_path / "some" / "mix").iterdir()) == [
        "manifest.json", "residual.wav", "violin.wav", "violin_2.wav"]  # fmt: skip
    assert sum_error(manifest, files["mix"]) <= 1e-4 and manifest["sum_max_error"] <= 1e-4
    # The stems are those of a full run; the residual is the full run's plus the cello.
    by_name = {s["name"]: output_file(full, s) for s in full["stems"]}
    for stem in manifest["stems"]:
        np.testing.assert_allclose(
            read(output_file(manifest, stem)), read(by_name[stem["name"]]), atol=1e-6
        )
    np.testing.assert_allclose(
        read(output_file(manifest, manifest["residual"])),
        read(output_file(full, full["residual"])) + read(by_name["cello"]),
        atol=1e-5,
    )


def test_a_stem_not_in_the_scene_is_one_line(files: dict[str, Path], tmp_path: Path) -> None:
    result = separate(files, tmp_path / "o", "--stems", "cello,flute")
    assert result.exit_code == 1
    line = one_line_error(result)
    assert "--stems 'flute': not in the labels, which holds violin, cello" in line
    assert not (tmp_path / "o").exists()


# -- part of a recording ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "args,start,frames",
    [
        (["--start", "0:00.5", "--duration", "0.75"], 22050, 33075),
        (["--start", "1.5"], 66150, 2 * RATE - 66150),  # to the end
        (["--start", "00:00:01", "--duration", "5:00"], RATE, RATE),  # past the end: stops there
    ],
)
def test_start_and_duration(files: dict[str, Path], tmp_path: Path, args, start, frames) -> None:  # noqa: ANN001
    result = separate(files, tmp_path, *args, "--segment", "0.5", "--json")
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert (manifest["start_frame"], manifest["frames"]) == (start, frames)
    assert manifest["start_s"] == pytest.approx(start / RATE)
    assert manifest["duration_s"] == pytest.approx(frames / RATE)
    parts = [read(output_file(manifest, s)) for s in manifest["stems"]] + [
        read(output_file(manifest, manifest["residual"]))
    ]
    assert all(p.shape == (frames, 2) for p in parts)
    # The stems are the separation of that slice of the input: they add up to it.
    np.testing.assert_allclose(sum(parts), read(files["mix"])[start : start + frames], atol=1e-4)


def test_start_and_duration_with_mp3_keep_the_length(
    files: dict[str, Path], tmp_path: Path
) -> None:
    result = separate(files, tmp_path, "--start", "0.25", "--duration", "1", "--format", "mp3",
                      "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    for stem in manifest["stems"]:
        assert abs(len(read(output_file(manifest, stem))) - RATE) <= MP3_FRAME


# -- batch -----------------------------------------------------------------------------------


def test_batch_fails_only_the_items_that_cannot_be_done(
    tmp_path: Path, model: Path, scene_ply: Path
) -> None:
    data = tmp_path / "data"
    recording(data / "long.wav", seed=0, seconds=1.0)
    recording(data / "short.wav", seed=1, seconds=0.3)
    for name in ("long", "short"):
        shutil.copy(scene_ply, data / f"{name}.ply")
    out = tmp_path / "out"
    result = run("batch", data, "-o", out, "--model", model, "--start", "0.5",
                 "--duration", "0.25", "--format", "ogg", "--json")  # fmt: skip
    assert result.exit_code == 1
    items = {i["name"]: i for i in json.loads(result.stdout)["items"]}
    assert items["long"]["status"] == "done" and items["short"]["status"] == "failed"
    assert f"{data / 'short.wav'}: --start 0.5 s is past the end" in items["short"]["error"]
    assert "lasts 0.3 s" in items["short"]["error"]
    manifest = json.loads((out / "long" / "manifest.json").read_text())
    assert (manifest["start_frame"], manifest["frames"]) == (8000, 4000)  # 16 kHz
    assert all(sf.info(output_file(manifest, s)).frames == 4000 for s in manifest["stems"])
    assert not (out / "short").exists()

    # --stems: an instrument missing from an item's scene fails that item, with the message.
    found = {s["instrument"] for s in manifest["stems"]}
    absent = next(c for c in ("violin", "cello", "flute") if c not in found)
    present = sorted(found)[0]
    again = run("batch", data, "-o", tmp_path / "o2", "--model", model, "--json",
                "--stems", f"{present},{absent}")  # fmt: skip
    assert again.exit_code == 1
    for item in json.loads(again.stdout)["items"]:
        assert item["status"] == "failed"
        assert f"--stems '{absent}': not in the scene, which holds" in item["error"]
        assert item["error"].startswith(str(data / f"{item['name']}.ply"))
    chosen = run("batch", data, "-o", tmp_path / "o3", "--model", model, "--stems", present)
    assert chosen.exit_code == 0, chosen.output
    for name in ("long", "short"):
        stems = json.loads((tmp_path / "o3" / name / "manifest.json").read_text())["stems"]
        assert stems and {s["instrument"] for s in stems} == {present}


def test_batch_usage_errors_come_first(tmp_path: Path, model: Path, scene_ply: Path) -> None:
    data = tmp_path / "data"
    recording(data / "a.wav", seed=0)
    shutil.copy(scene_ply, data / "a.ply")
    for args in (["--stems", "viola"], ["--duration", "0"], ["--format", "mp3", "--bits", "24"]):
        result = run("batch", data, "-o", tmp_path / "out", "--model", model, *args)
        assert result.exit_code == 2, result.output
        assert not (tmp_path / "out" / "a").exists()
