"""What the command line says before it does anything: help texts, and usage errors that come
before a file is read or a model loaded (``--units``, ``--device``, ``--no-resume``)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import typer
from typer.testing import CliRunner

from pcsep_cli.cli import app
from pcsep_cli.cli.doctor import EXAMPLES as DOCTOR_EXAMPLES
from pcsep_cli.cli.inspect import EXAMPLES as INSPECT_EXAMPLES
from pcsep_cli.cli.separate import BATCH_EXAMPLES, SEPARATE_EXAMPLES
from pcsep_cli.io.encoding import WRITE_FORMATS
from pcsep_cli.separate.job import CLIP_MODES

runner = CliRunner()


def _commands(group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:  # noqa: ANN001
    """Every command and group of the app, as the words that name it."""
    found = [path]
    for name, command in getattr(group, "commands", {}).items():
        found += _commands(command, (*path, name))
    return found


COMMANDS = _commands(typer.main.get_command(app))
EXAMPLES = {
    ("separate",): SEPARATE_EXAMPLES,
    ("batch",): BATCH_EXAMPLES,
    ("inspect",): INSPECT_EXAMPLES,
    ("doctor",): DOCTOR_EXAMPLES,
}


def _help(words: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COLUMNS", "80")
    result = runner.invoke(app, [*words, "--help"])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_every_command_is_walked() -> None:
    assert {("separate",), ("batch",), ("models", "info"), ("doctor",), ()} <= set(COMMANDS)
    assert len(COMMANDS) >= 13


@pytest.mark.parametrize("words", COMMANDS, ids=lambda w: " ".join(w) or "pcsep")
def test_help_shows_plain_metavars_and_nothing_cut(
    words: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = _help(words, monkeypatch)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text  # rich cuts a word too long for its column with an ellipsis
    # Typer's type names: <bool>, <path>, <list[Path]>, <int range>, <str> ...
    assert not re.search(r"<[a-zA-Z][\w \[\]]*>", text), text
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert "{" not in usage, usage  # Typer marks required arguments {audio}
    plain = r" Usage: pcsep[ a-z-]* \[OPTIONS\]( [A-Z.\[\]]+)*( COMMAND \[ARGS\]\.\.\.)?"
    assert re.fullmatch(plain, usage.rstrip()), usage
    lines = [line.rstrip() for line in text.splitlines()]  # rich pads lines to the width
    for line in EXAMPLES.get(words, "").splitlines()[1:]:
        assert f" {line}" in lines, f"example cut or wrapped: {line}"


@pytest.mark.parametrize("words", COMMANDS, ids=lambda w: " ".join(w) or "pcsep")
def test_the_first_help_line_is_one_short_sentence(words: tuple[str, ...]) -> None:
    """What ``pcsep --help`` lists beside a command: a docstring's first paragraph that ran
    over two lines was listed broken mid-sentence ("…or fine-tune one" / "on your own…")."""
    command = typer.main.get_command(app)
    for word in words:
        command = command.commands[word]  # type: ignore[attr-defined]
    first = inspect.cleandoc(command.help or "").split("\n\n")[0]
    assert "\n" not in first and first.endswith("."), first
    assert len(first) <= 90, first


def test_separate_help_in_detail(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _help(("separate",), monkeypatch)
    assert "Usage: pcsep separate [OPTIONS] AUDIO [CLOUD...]" in text
    assert "owner/name[@revision]" in text  # rich markup once swallowed "[@revision]"
    flags = [line for line in text.splitlines() if "--overwrite" in line or "--json" in line]
    assert flags and all("bool" not in line for line in flags)
    metavars = {"--out": "DIR", "--model": "REF", "--units": "m|cm|mm|ft",
                "--device": "auto|cpu|cuda|mps", "--segment": "SECONDS"}  # fmt: skip
    for option, metavar in metavars.items():
        assert re.search(rf"{option}\s+(-o\s+)?{re.escape(metavar)}\s", text), option


@pytest.mark.parametrize("command", ["separate", "batch"])
def test_output_options_show_their_choices(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """They showed TEXT; the choices are those the options take."""
    text = _help((command,), monkeypatch)
    metavars = {"--format": "|".join(WRITE_FORMATS), "--bits": "16|24|32f", "--stems": "NAMES",
                "--clip-mode": "|".join(CLIP_MODES)}  # fmt: skip
    for option, metavar in metavars.items():
        assert re.search(rf"{option}\s+{re.escape(metavar)}\s", text), option
    # Format-neutral: the residual is residual.mp3 with --format mp3.
    assert re.search(r"--no-residual\s+Do not write the residual file\.", text)
    assert "residual.wav" not in text


@pytest.mark.parametrize("command", ["separate", "batch"])
def test_bad_units_are_a_usage_error_before_any_file_is_read(tmp_path: Path, command: str) -> None:
    missing = tmp_path / "nothing-here"  # never opened: the option is refused first
    args = [command, str(missing), *([str(missing)] if command == "separate" else [])]
    result = runner.invoke(app, [*args, "--units", "inch", "-o", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: pcsep {command}: Invalid value for '--units': 'inch' is not one of 'm', 'cm', "
        f"'mm', 'ft' (see 'pcsep {command} --help')\n"
    )
    assert not (tmp_path / "o").exists()


def _available(device: str) -> bool:
    if device == "cuda":
        return torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


@pytest.mark.parametrize("command", ["separate", "batch"])
@pytest.mark.parametrize("device", ["cuda", "mps"])
def test_a_device_this_machine_lacks_is_a_usage_error(
    tmp_path: Path, command: str, device: str
) -> None:
    """Checked while the command line is parsed: the recording (missing here) is never
    opened. Where the device exists, the option passes and the missing file is the error."""
    missing = tmp_path / "take.wav"
    args = [command, str(missing), *([str(missing)] if command == "separate" else [])]
    result = runner.invoke(app, [*args, "--device", device, "-o", str(tmp_path / "o")])
    if _available(device):
        assert result.exit_code == 1 and "take.wav" in result.stderr
        return
    name = {"cuda": "CUDA", "mps": "MPS"}[device]
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: pcsep {command}: Invalid value for '--device': {name} is not available on "
        f"this machine; use --device cpu or auto (see 'pcsep {command} --help')\n"
    )


def test_an_unknown_device_names_the_choices(tmp_path: Path) -> None:
    result = runner.invoke(app, ["separate", str(tmp_path / "a.wav"), "--device", "gpu"])
    assert result.exit_code == 2
    assert "'gpu' is not one of 'auto', 'cpu', 'cuda', 'mps'" in result.stderr
    assert result.stderr.count("\n") == 1


def test_cpu_and_auto_pass(tmp_path: Path) -> None:
    sf.write(tmp_path / "a.wav", np.zeros((800, 1), np.float32), 8000)
    for device in ("cpu", "auto"):
        args = ["separate", str(tmp_path / "a.wav"), "--device", device, "-o", str(tmp_path)]
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and "no point cloud given" in result.stderr  # got that far
