"""What ``pcsep separate`` and ``pcsep batch`` show while they run, in real processes (issue 16).

In a terminal (a pseudo-terminal of 80 columns, as a user's): the live display with the
stages by name and the audio in seconds. In a pipe (a CI log, ``2> log.txt``): plain lines,
one per stage, never redrawn. And the result on stdout: every output path whole on a line of
its own, however long, at 80 columns or in a pipe.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers.output import PROGRESS_LINE, other_lines, progress_lines
from typer.testing import CliRunner

from pcsep_cli.cli import app

STAGES = [
    "reading scene",
    "finding performers",
    "loading model",
    "naming performers",
    "separating",
    "writing",
]
LONG = "o" * 100  # an output folder's name of 100 characters


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env["TERM"] = "xterm-256color"
    return env


def _pcsep(*args: object) -> list[str]:
    return [sys.executable, "-m", "pcsep_cli.cli", *(str(a) for a in args)]


def in_terminal(cmd: list[str], columns: int = 80, timeout: float = 300) -> tuple[int, str]:
    """Run ``cmd`` with stdin, stdout and stderr on a pseudo-terminal ``columns`` wide;
    return its exit code and everything it wrote."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=_env())
    os.close(slave)
    chunks, end = [], time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the process closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return proc.wait(timeout=30), b"".join(chunks).decode("utf-8", "replace")


@pytest.fixture(scope="module")
def take(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 s of stereo noise at 16 kHz."""
    path = tmp_path_factory.mktemp("take") / "take.wav"
    noise = 0.1 * np.random.default_rng(0).standard_normal((6 * 16000, 2))
    sf.write(path, noise.astype(np.float32), 16000)
    return path


def _outputs(out: Path) -> list[str]:
    manifest = json.loads((out / "take" / "manifest.json").read_text())
    # The manifest's paths are relative to its folder; the CLI prints them whole from here.
    folder = Path(manifest["manifest"]).parent
    paths = [str(folder / s["path"]) for s in manifest["stems"]]
    paths.append(str(folder / manifest["residual"]["path"]))
    assert all(Path(p).is_file() for p in paths)
    return [*paths, manifest["manifest"]]


def _whole_on_a_line(paths: list[str], text: str) -> None:
    lines = text.splitlines()
    for path in paths:
        assert len(path) > 100 and any(path in line for line in lines), (path, text)


def test_separate_in_a_terminal_shows_stages_and_seconds(
    model: Path, scene_ply: Path, take: Path, tmp_path: Path
) -> None:
    out = tmp_path / LONG
    code, text = in_terminal(_pcsep("separate", take, scene_ply, "-o", out, "--model", model))
    assert code == 0, text
    assert "\r" in text and "\x1b[" in text  # drawn live, redrawn in place
    at = [text.find(stage) for stage in STAGES]
    assert all(i >= 0 for i in at) and at == sorted(at), text  # every stage, in order
    assert "0.0 / 6.0 s" in text  # seconds of audio, not samples
    assert "-:--:--" not in text and "96000" not in text and "192000" not in text
    _whole_on_a_line(_outputs(out), text)


def test_separate_in_a_pipe_prints_plain_lines(
    model: Path, scene_ply: Path, take: Path, tmp_path: Path
) -> None:
    out = tmp_path / LONG
    run = subprocess.run(_pcsep("separate", take, scene_ply, "-o", out, "--model", model),
                         capture_output=True, text=True, env=_env(), timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "\r" not in run.stderr and "\x1b" not in run.stderr  # no bar, no colour
    lines = run.stderr.splitlines()
    assert lines == progress_lines(run.stderr)  # nothing else on stderr
    said = [line.split("] ", 1)[1] for line in lines]
    stages = [next(s for s in STAGES if text.startswith(s)) for text in said[:-1]]
    assert list(dict.fromkeys(stages)) == STAGES and stages == sorted(stages, key=STAGES.index)
    assert "separating: 6.0 s of audio" in said and "writing: 6.0 s of audio" in said
    assert said[-1].startswith("done: 6.0 s of audio in ")
    # stdout: the table, then every output path whole on its own line (80 columns: a pipe).
    _whole_on_a_line(_outputs(out), run.stdout)
    assert not progress_lines(run.stdout)


def test_quiet_and_json(model: Path, scene_ply: Path, take: Path, tmp_path: Path) -> None:
    run = subprocess.run(
        _pcsep("separate", take, scene_ply, "-o", tmp_path, "--model", model, "--json", "-q"),
        capture_output=True, text=True, env=_env(), timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    assert json.loads(run.stdout)["duration_s"] == 6.0


def _batch_folder(root: Path, take: Path, scene_ply: Path) -> Path:
    root.mkdir()
    for name in ("a", "b", "broken"):
        (root / f"{name}.wav").write_bytes(take.read_bytes())
        (root / f"{name}.ply").write_bytes(
            scene_ply.read_bytes()[: 400 if name == "broken" else None]
        )
    return root


def test_batch_in_a_pipe_and_in_a_terminal(
    model: Path, scene_ply: Path, take: Path, tmp_path: Path
) -> None:
    data = _batch_folder(tmp_path / "data", take, scene_ply)
    args = ("batch", data, "--model", model)
    run = subprocess.run(_pcsep(*args, "-o", tmp_path / "piped"), capture_output=True,
                         text=True, env=_env(), timeout=300)  # fmt: skip
    assert run.returncode == 1, run.stderr  # one item failed
    assert "\r" not in run.stderr and "\x1b" not in run.stderr
    said = [line.split("] ", 1)[1] for line in progress_lines(run.stderr)]
    assert said[0].startswith("loading model") and said[1] == "batch: 0/3 items"
    assert said[-1].startswith("batch: 3/3 items, 1 failed, done in ")
    assert any(line.startswith("failed: broken: ") for line in other_lines(run.stderr))
    assert all(PROGRESS_LINE.match(line) or "broken" in line or line.endswith(":")
               for line in run.stderr.splitlines() if line.strip())  # fmt: skip

    code, text = in_terminal(_pcsep(*args, "-o", tmp_path / "live"))
    assert code == 1, text
    assert "\r" in text and "\x1b[" in text
    for shown in ("batch", "loading model", "/3 items", "1 failed", "separating", "/ 6.0 s"):
        assert shown in text, (shown, text)


def test_tables_at_80_columns_keep_paths_whole(
    model: Path, scene_ply: Path, take: Path, tmp_path: Path
) -> None:
    """``COLUMNS=80``: what ``separate`` and ``inspect`` print never cuts a path, and each
    position stays on one line."""
    runner = CliRunner()
    out = tmp_path / LONG
    result = runner.invoke(app, ["separate", str(take), str(scene_ply), "-o", str(out),
                                 "--model", str(model)], env={"COLUMNS": "80"})  # fmt: skip
    assert result.exit_code == 0, result.output
    _whole_on_a_line(_outputs(out), result.stdout)
    assert str(take) in result.stdout.splitlines()
    manifest = json.loads((out / "take" / "manifest.json").read_text())
    for stem in manifest["stems"]:
        figures = [f"{v:.2f}" for v in stem["position"]]
        row = [line for line in result.stdout.splitlines() if line.startswith(f"│ {stem['name']} ")]
        assert len(row) == 1 and all(f in row[0] for f in figures), result.stdout

    cloud = tmp_path / LONG / "scene.ply"
    cloud.write_bytes(scene_ply.read_bytes())
    shown = runner.invoke(app, ["inspect", str(cloud)], env={"COLUMNS": "80"})
    assert shown.exit_code == 0, shown.output
    assert str(cloud) in shown.stdout.splitlines()
