"""The bad-input matrix: each row is an input, the exit code and the one-line message.

``pcsep separate`` / ``pcsep inspect`` run through ``CliRunner`` on real files built in
``tmp_path`` with a tiny model. Every error must be one non-empty line starting ``error:``
(usage errors, exit code 2, too), with no terminal control character in it, and nothing may be
left under ``-o``, not even an empty folder. The rows that are accepted (a 1-sample recording,
64 channels, 1 MHz) must give stems that sum to the mixture.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers.audio import output_file, sum_error
from helpers.clouds import E57Scan, patch_e57, write_e57_file
from helpers.models import save_tiny
from helpers.output import other_lines
from helpers.scenes import room
from typer.testing import CliRunner

from pcsep_cli.cli import app
from pcsep_cli.io.pointcloud import PointCloud, write_ply

runner = CliRunner()


@dataclass(frozen=True)
class Base:
    """Shared good inputs: a tiny model (8 kHz), a 1 s mono WAV, an empty room, a PLY, an
    E57 scan of 200 points (pye57)."""

    model: Path
    wav: Path
    empty_room: Path
    ply: Path
    e57: Path


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    root = tmp_path_factory.mktemp("bad")
    model = save_tiny(root / "model", sample_rate=8000)
    wav = _wav(root / "ok.wav", 8000, 1, 8000)
    walls, _ = room([], density=300.0)
    write_ply(root / "room.ply", PointCloud(walls))
    rng = np.random.default_rng(0)
    write_ply(root / "small.ply", PointCloud(rng.uniform(-1, 1, (200, 3))))
    write_e57_file(root / "small.e57", E57Scan(xyz=rng.uniform(-1, 1, (200, 3))))
    return Base(model, wav, root / "room.ply", root / "small.ply", root / "small.e57")


def _wav(path: Path, rate: int, channels: int, frames: int, subtype: str = "PCM_16") -> Path:
    t = np.arange(frames) / rate
    x = 0.3 * np.sin(2 * np.pi * 440 * t)[:, None] * np.linspace(0.5, 1, channels)
    sf.write(path, x.astype(np.float32), rate, subtype=subtype)
    return path


def _bytes(data: bytes, name: str) -> Callable[[Path, Base], Path]:
    def build(d: Path, b: Base) -> Path:
        (d / name).write_bytes(data)
        return d / name

    return build


def _cut(source: str, keep: int, name: str) -> Callable[[Path, Base], Path]:
    def build(d: Path, b: Base) -> Path:
        (d / name).write_bytes(getattr(b, source).read_bytes()[:keep])
        return d / name

    return build


def _e57_promising(count: int) -> Callable[[Path, Base], Path]:
    """The E57 scan with its record count changed in the XML (page CRCs made right)."""

    def build(d: Path, b: Base) -> Path:
        (d / "more.e57").write_bytes(b.e57.read_bytes())
        return patch_e57(d / "more.e57", b'recordCount="200"', f'recordCount="{count}"'.encode())

    return build


def _folder(d: Path, b: Base) -> Path:
    (d / "a_folder").mkdir()
    return d / "a_folder"


def _zero_hz(d: Path, b: Base) -> Path:
    data = bytearray(b.wav.read_bytes())
    data[24:28] = struct.pack("<I", 0)  # the fmt chunk's sample rate
    (d / "zero.wav").write_bytes(data)
    return d / "zero.wav"


def _nan_wav(d: Path, b: Base) -> Path:
    x = np.zeros((800, 1), np.float32)
    x[400] = np.nan
    sf.write(d / "nan.wav", x, 8000, subtype="FLOAT")
    return d / "nan.wav"


Build = Callable[[Path, Base], Path]


def _audio(build: Build) -> Callable[[Path, Base], list[str]]:
    """Separate in label mode (no cloud needed) from the audio ``build`` makes."""
    return lambda d, b: ["separate", str(build(d, b)), "--instruments", "violin"]


def _cloud(build: Build) -> Callable[[Path, Base], list[str]]:
    """Separate the good WAV with the cloud ``build`` makes."""
    return lambda d, b: ["separate", str(b.wav), str(build(d, b))]


def _inspect(build: Build) -> Callable[[Path, Base], list[str]]:
    return lambda d, b: ["inspect", str(build(d, b))]


def _args(*extra: str) -> Callable[[Path, Base], list[str]]:
    return lambda d, b: ["separate", str(b.wav), "--instruments", "violin", *extra]


def _named(name: str, *extra: str) -> Callable[[Path, Base], list[str]]:
    """Separate (label mode) a copy of the good WAV named ``name``."""

    def build(d: Path, b: Base) -> list[str]:
        (d / name).write_bytes(b.wav.read_bytes())
        return ["separate", str(d / name), "--instruments", "violin", *extra]

    return build


def _csv(text: str) -> Callable[[Path, Base], list[str]]:
    """``pcsep batch --manifest`` of a CSV holding ``text`` (the good WAV and PLY beside it)."""

    def build(d: Path, b: Base) -> list[str]:
        (d / "ok.wav").write_bytes(b.wav.read_bytes())
        (d / "small.ply").write_bytes(b.ply.read_bytes())
        (d / "m.csv").write_text(text, encoding="utf-8")
        return ["batch", str(d), "--manifest", str(d / "m.csv")]

    return build


WAV_HEAD = "RIFF"
# (id, how to build the command line, exit code, regex the message must match)
ERRORS: list[tuple[str, Callable[[Path, Base], list[str]], int, str]] = [
    ("audio-missing", _audio(lambda d, b: d / "nope.wav"), 1, r"nope\.wav: no such file"),
    ("audio-empty", _audio(_bytes(b"", "e.wav")), 1, r"e\.wav: is empty \(0 bytes\)"),
    ("audio-folder", _audio(_folder), 1, r"a_folder: is a folder, not an audio file"),
    ("audio-truncated-header", _audio(_cut("wav", 30, "cut.wav")), 1, r"cut\.wav: .*damaged"),
    ("audio-wrong-magic", _audio(_bytes(b"hello, world\n" * 40, "txt.wav")), 1,
     r"txt\.wav: not an audio file libsndfile can read"),
    ("audio-is-a-cloud", _audio(lambda d, b: b.ply), 1, r"small\.ply: is a PLY point cloud"),
    ("audio-0-hz", _audio(_zero_hz), 1, r"zero\.wav: .*impossible sample rate \(0 Hz\)"),
    ("audio-nan", _audio(_nan_wav), 1, r"nan\.wav: holds NaN or infinite samples"),
    ("audio-64-channels-flac", lambda d, b: [
        "separate", str(_wav(d / "c64.wav", 8000, 64, 800)), "--instruments", "violin",
        "--format", "flac"], 1, r"c64\.wav: FLAC holds at most 8 channels, this audio has 64"),
    ("cloud-missing", _cloud(lambda d, b: d / "nope.ply"), 1, r"nope\.ply: no such file"),
    ("cloud-empty", _cloud(_bytes(b"", "e.ply")), 1, r"e\.ply: .*empty"),
    ("cloud-folder", _cloud(_folder), 1, r"a_folder: .*folder"),
    ("cloud-truncated", _cloud(_cut("ply", 1500, "cut.ply")), 1, r"cut\.ply: .*truncated"),
    ("cloud-wrong-magic", _cloud(_bytes(b"\x00\x01garbage" * 50, "bin.ply")), 1,
     r"bin\.ply: named \.ply but not a PLY, LAS/LAZ, PCD or E57 file"),
    ("cloud-is-audio", _cloud(lambda d, b: b.wav), 1, r"ok\.wav: .*were AUDIO and CLOUD swapped"),
    ("cloud-e57-truncated", _cloud(_cut("e57", 3000, "cut.e57")), 1,
     r"cut\.e57: header gives a length of [\d,]+ bytes, the file holds 3,000: it is truncated"),
    ("cloud-e57-wrong-magic", _cloud(_bytes(b"ASTM-E58" + bytes(2040), "bad.e57")), 1,
     r"bad\.e57: named \.e57 but not a PLY, LAS/LAZ, PCD or E57 file"),
    ("cloud-e57-promises-more", _cloud(_e57_promising(230)), 1,
     r"more\.e57: scan 1's header promises 230 points, the file holds 200: it is truncated"),
    ("inspect-e57-promises-too-many", _inspect(_e57_promising(999)), 1,
     r"more\.e57: header promises 999 points \(192 bits each\), which needs at least 23,976 "
     r"bytes"),
    ("cloud-without-performers", _cloud(lambda d, b: b.empty_room), 1,
     r"room\.ply: no performer found"),
    ("no-cloud-no-labels", lambda d, b: ["separate", str(b.wav)], 1, r"no point cloud given"),
    ("labels-do-not-match-cloud", lambda d, b: [
        "separate", str(b.wav), str(b.empty_room), "--instruments", "violin"], 1,
     r"room\.ply: no performer found"),
    ("inspect-truncated", _inspect(_cut("ply", 1500, "cut.ply")), 1, r"cut\.ply: .*truncated"),
    ("inspect-audio", _inspect(lambda d, b: b.wav), 1, r"ok\.wav: .*were AUDIO and CLOUD"),
    ("filename-parent", _args("--filename", "../x/{stem}.{ext}"), 2,
     r"--filename '\.\./x/\{stem\}\.\{ext\}' leaves the output folder"),
    ("filename-absolute", _args("--filename", "/tmp/x/{stem}.{ext}"), 2,
     r"gives an absolute path; keep it inside -o"),
    ("filename-track-escape", _args("--filename", "{track}/../../{stem}.{ext}"), 2,
     r"leaves the output folder"),
    # Names that reach a path (issue 18): format specs once padded a name to 4.7 GB.
    ("filename-width-300M", _args("--filename", "{track}/{stem:>300000000}.{ext}"), 2,
     r"--filename field \{stem:>300000000\} has a format spec or conversion; write the plain "
     r"field \{stem\}"),
    ("filename-width-300", _args("--filename", "{track}/{stem:>300}.{ext}"), 2,
     r"field \{stem:>300\} has a format spec"),
    ("filename-conversion", _args("--filename", "{track}/{stem!r}.{ext}"), 2,
     r"field \{stem!r\} has a format spec or conversion"),
    ("filename-nested-spec", _args("--filename", "{track}/{stem:{ext}}.{ext}"), 2,
     r"field \{stem:\{ext\}\} has a format spec"),
    ("filename-control-char", _args("--filename", "{track}/\x1b[2J{stem}.{ext}"), 2,
     r"holds the control character '\\x1b'; remove it from the template"),
    ("filename-name-too-long", _args("--filename", "{track}/" + "x" * 300 + "{stem}.{ext}"), 2,
     r"gives a name of 308 bytes .*, longer than the 255 a file system allows"),
    ("filename-path-too-long", _args("--filename", ("y" * 250 + "/") * 17 + "{stem}.{ext}"), 1,
     r"gives a path of \d+ bytes, longer than the 4095 a file system allows"),
    ("recording-named-dots", _named("...wav"), 1,
     r"\.\.\.wav: --filename '\{track\}/\{stem\}\.\{ext\}' leaves the output folder "
     r"\('\.\./residual\.wav'\) \(rename the recording"),
    ("recording-name-too-long", _named("L" * 250 + ".wav", "--filename", "{track}_{stem}.{ext}"),
     1, r"L\.wav: --filename .* gives a name of 263 bytes .*\(rename the recording"),
    # What is printed is escaped: a file name cannot drive the terminal.
    ("cloud-name-escapes", _cloud(lambda d, b: d / "nope\x1b]0;owned\x07\x9b2J.ply"), 1,
     r"nope\\x1b\]0;owned\\x07\\x9b2J\.ply: no such file"),
    ("csv-name-nul", _csv("audio,cloud,name\nok.wav,small.ply,a\x00b\x1b[31m\n"), 1,
     r"m\.csv row 2: name 'a\\x00b\\x1b\[31m' holds the control character '\\x00'"),
    ("csv-path-nul", _csv("audio,cloud\nok\x00.wav,small.ply\n"), 1,
     r"m\.csv row 2: the audio path 'ok\\x00\.wav' holds a NUL byte \(fix the path\)"),
    ("csv-name-newline", _csv('audio,cloud,name\nok.wav,small.ply,"a\nb"\n'), 1,
     r"m\.csv row 2: name 'a\\nb' holds the control character '\\n'"),
    ("csv-name-too-long", _csv("audio,cloud,name\nok.wav,small.ply,s/" + "n" * 256 + "\n"), 1,
     r"row 2: name .* has a part of 256 bytes, longer than the 255 a file system allows"),
]  # fmt: skip


def _message(result: object, code: int) -> str:
    """The error: one line, after the progress lines of the stages that ran before it."""
    lines = other_lines(result.output)  # type: ignore[attr-defined]
    assert len(lines) == 1, result.output  # type: ignore[attr-defined]
    return lines[0]


def _files_under(folder: Path) -> list[Path]:
    """Everything under ``folder``: files and folders (a failed run leaves no empty folder)."""
    return sorted(folder.rglob("*")) if folder.exists() else []


def invoke(args: list[str], out: Path, model: Path) -> object:
    extra = ["-o", str(out), "--model", str(model)] if args[0] in ("separate", "batch") else []
    return runner.invoke(app, [*args, *extra])


def _no_controls(text: str) -> bool:
    return not any(unicodedata.category(c) == "Cc" for c in text.replace("\n", ""))


@pytest.mark.parametrize(("case", "build", "code", "pattern"), ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_input_gives_one_line_and_writes_nothing(
    case: str, build: Callable, code: int, pattern: str, base: Base, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = invoke(build(tmp_path, base), out, base.model)
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), case
    message = _message(result, code)
    assert re.search(pattern, message), message
    assert message.startswith("error: ")  # usage errors (2) too
    assert _no_controls(result.output), repr(result.output)
    assert _files_under(out) == []


# -- accepted edge cases: the stems must still sum to the mixture -----------------------
EDGES = [
    ("one-sample", 8000, 1, 1),
    ("0.1-s", 8000, 2, 800),
    ("64-channels", 8000, 64, 4000),
    ("1-MHz", 1_000_000, 1, 200_000),
]


@pytest.mark.parametrize(("case", "rate", "channels", "frames"), EDGES, ids=[e[0] for e in EDGES])
def test_edge_audio_is_separated_and_sums_to_the_mixture(
    case: str, rate: int, channels: int, frames: int, base: Base, tmp_path: Path
) -> None:
    """Shorter than 0.5 s is accepted (a 1-sample file too): nothing in the model needs a
    minimum length, and the stems and residual still add up to the input."""
    mix = _wav(tmp_path / "mix.wav", rate, channels, frames, subtype="FLOAT")
    result = runner.invoke(
        app,
        ["separate", str(mix), "--instruments", "violin", "-o", str(tmp_path / "o"),
         "--model", str(base.model), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    import json

    manifest = json.loads(result.stdout)
    stem = sf.info(output_file(manifest, manifest["stems"][0]))
    assert (stem.samplerate, stem.channels, stem.frames) == (rate, channels, frames)
    assert sum_error(manifest, mix) <= 1e-5


# -- output folder that cannot be written --------------------------------------------------
def _mount(folder: Path, options: str) -> bool:
    folder.mkdir()
    if os.geteuid() != 0:
        return False
    cmd = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)]
    return subprocess.run(cmd, capture_output=True).returncode == 0


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A read-only tmpfs (as root), else a folder without write permission."""
    folder = tmp_path / "ro"
    mounted = _mount(folder, "ro,size=64k")
    if not mounted:
        folder.chmod(0o555)
    yield folder
    if mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)
    else:
        folder.chmod(0o755)


def test_output_folder_not_writable(read_only: Path, base: Base) -> None:
    result = invoke(["separate", str(base.wav), "--instruments", "violin"], read_only / "o",
                    base.model)  # fmt: skip
    assert result.exit_code == 1, result.output
    message = _message(result, 1)
    assert re.search(r"ro: cannot create outputs here: folder not writable", message), message
    assert _files_under(read_only) == []


def test_output_path_is_a_file(base: Base, tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("mine")
    result = invoke(["separate", str(base.wav), "--instruments", "violin"], tmp_path / "taken",
                    base.model)  # fmt: skip
    assert result.exit_code == 1
    assert re.search(r"taken: output path exists and is not a folder", _message(result, 1))
    assert (tmp_path / "taken").read_text() == "mine"


@pytest.mark.parametrize("command", ["separate", "batch"])
def test_output_path_under_a_file_says_it_is_not_a_folder(
    base: Base, tmp_path: Path, command: str
) -> None:
    (tmp_path / "taken").write_text("mine")
    inputs = [str(base.wav), "--instruments", "violin"]
    if command == "batch":  # checked once, before the model loads, not item by item
        (tmp_path / "in" / "take").mkdir(parents=True)
        shutil.copy(base.wav, tmp_path / "in" / "take" / "mixture.wav")
        shutil.copy(base.ply, tmp_path / "in" / "take" / "scene.ply")
        inputs = [str(tmp_path / "in")]
    result = invoke([command, *inputs], tmp_path / "taken" / "sub" / "o", base.model)
    assert result.exit_code == 1, result.output
    assert _message(result, 1) == (
        f"error: {tmp_path / 'taken'}: is a file, not a folder, so -o cannot go under it "
        "(choose another -o)"
    )
    assert (tmp_path / "taken").read_text() == "mine"


def test_disk_full_names_the_stem_and_leaves_no_file(full_disk: Path, base: Base) -> None:
    mix = _wav(full_disk.parent / "long.wav", 8000, 2, 80_000)  # 10 s: 640 KB of float stems
    result = invoke(["separate", str(mix), "--instruments", "violin"], full_disk / "o",
                    base.model)  # fmt: skip
    assert result.exit_code == 1, result.output
    message = _message(result, 1)
    # The streamed first pass used to lose ENOSPC ("System error."): it must say disk full.
    assert re.search(r"o/long/violin\.wav: disk full", message), message
    assert _files_under(full_disk) == []
