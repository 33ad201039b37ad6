"""Hostile model folders through the CLI: each is refused with one line, before anything is
written (a model from the Hub is untrusted input)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers.audio import wav
from helpers.output import other_lines
from typer.testing import CliRunner

from pcsep_cli.cli import app

runner = CliRunner()


def _with_class(model: Path, folder: Path, name: str) -> Path:
    """A copy of ``model`` whose first class is called ``name``."""
    shutil.copytree(model, folder)
    config = json.loads((folder / "config.json").read_text())
    config["classes"][0] = name
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _one_line_error(output: str) -> str:
    """The error: one line, after the progress lines of the stages that ran before it."""
    lines = other_lines(output)
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    assert "Traceback" not in output and "\x1b" not in output
    return lines[0]


def test_inspect_refuses_a_class_name_with_terminal_escapes(
    model: Path, scene_ply: Path, tmp_path: Path
) -> None:
    bad = _with_class(model, tmp_path / "escapes", "vio\x1b[2J\x1b]0;pwned\x07lin")

    result = runner.invoke(app, ["inspect", str(scene_ply), "--model", str(bad)])

    assert result.exit_code == 1
    line = _one_line_error(result.stderr)
    assert "config.json: invalid config: classes[0]" in line
    assert result.stdout == ""  # no table, no performers printed


@pytest.mark.parametrize("name", ["../../x", "/etc/passwd", "a/b", ".."])
def test_separate_refuses_a_class_name_like_a_path_before_writing(
    model: Path, scene_ply: Path, tmp_path: Path, name: str
) -> None:
    bad = _with_class(model, tmp_path / "model", name)
    out = tmp_path / "work" / "out"
    out.mkdir(parents=True)

    result = runner.invoke(
        app,
        ["separate", str(wav(tmp_path / "mix.wav")), str(scene_ply), "-o", str(out)]
        + ["--model", str(bad)],
    )

    assert result.exit_code == 1
    assert "is not a class name" in _one_line_error(result.stderr)
    assert list(out.iterdir()) == [] and sorted(p.name for p in (tmp_path / "work").iterdir()) == [
        "out"
    ]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (b"[" * 200_000 + b"]" * 200_000, "nest more than 32 levels deep"),
        (b" " * 2_000_000 + b"{}", "larger than 1,000,000 bytes"),
    ],
)
def test_models_info_refuses_a_hostile_config_in_one_line(
    model: Path, tmp_path: Path, config: bytes, message: str
) -> None:
    bad = shutil.copytree(model, tmp_path / "model")
    (bad / "config.json").write_bytes(config)

    result = runner.invoke(app, ["models", "info", str(bad)])

    assert result.exit_code == 1
    assert message in _one_line_error(result.stderr)
