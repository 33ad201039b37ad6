"""Shell completions: the committed scripts are current, install works, and bash completes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pcsep_cli.completions import SHELLS, default_folder, generate, main

BIN = Path(sys.executable).parent
PCSEP = shutil.which("pcsep", path=str(BIN)) or "pcsep"
BASH = shutil.which("bash") or "/bin/bash"  # on every Linux and macOS pcsep supports
COMMITTED = default_folder()


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("_TYPER_") and k != "SHELL"}
    env.update(HOME=str(home), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", **extra)
    return env


def _body(text: str) -> str:
    """A script without the generator's header line (install writes Typer's bare script)."""
    return "\n".join(line for line in text.splitlines() if not line.startswith("# Generated"))


def test_committed_scripts_are_current() -> None:
    fresh = generate()
    assert set(fresh) == {f"pcsep.{s}" for s in SHELLS}
    for name, text in fresh.items():
        assert (COMMITTED / name).read_text(encoding="utf-8") == text, (
            f"completions/{name} is stale: run `python -m pcsep_cli.completions`"
        )
    assert fresh["pcsep.zsh"].startswith("#compdef pcsep\n")  # zsh autoload needs it first
    assert "_PCSEP_COMPLETE=complete_bash" in fresh["pcsep.bash"]


def test_check_mode_reports_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pcsep.bash", "pcsep.fish", "pcsep.zsh"]
    assert main([str(tmp_path), "--check"]) == 0
    (tmp_path / "pcsep.fish").write_text("# edited by hand\n")
    assert main([str(tmp_path), "--check"]) == 1
    out = capsys.readouterr().out
    assert "pcsep.fish: out of date" in out and "python -m pcsep_cli.completions" in out
    assert (tmp_path / "pcsep.fish").read_text() == "# edited by hand\n"  # --check writes nothing


@pytest.mark.parametrize(
    ("shell", "script", "rc_file", "rc_line"),
    [
        (
            "bash",
            ".bash_completions/pcsep.sh",
            ".bashrc",
            "source '{home}/.bash_completions/pcsep.sh'",
        ),
        ("zsh", ".zfunc/_pcsep", ".zshrc", "fpath+=~/.zfunc; autoload -Uz compinit; compinit"),
        ("fish", ".config/fish/completions/pcsep.fish", None, None),
    ],
)
def test_install_completion_for_a_named_shell(
    tmp_path: Path, shell: str, script: str, rc_file: str | None, rc_line: str | None
) -> None:
    env = _env(tmp_path, _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1")
    proc = subprocess.run(
        [PCSEP, "--install-completion", shell], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert f"{shell} completion installed in {tmp_path / script}" in proc.stdout
    installed = (tmp_path / script).read_text()
    assert _body(installed).strip() == _body((COMMITTED / f"pcsep.{shell}").read_text()).strip()
    if rc_file:
        assert rc_line.format(home=tmp_path) in (tmp_path / rc_file).read_text()


def test_install_completion_detects_bash(tmp_path: Path) -> None:
    # `; true` keeps bash alive as pcsep's parent, where shellingham looks for the shell.
    proc = subprocess.run(
        [BASH, "-c", f"'{PCSEP}' --install-completion; true"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
    )
    assert "bash completion installed" in proc.stdout, proc.stdout + proc.stderr
    assert (tmp_path / ".bash_completions" / "pcsep.sh").is_file()


@pytest.mark.parametrize(
    ("words", "cword", "expected"),
    [
        ("pcsep mo", 1, {"models"}),
        ("pcsep ba", 1, {"batch"}),
        (
            "pcsep models ",
            2,
            {"list", "download", "info", "use", "remove", "blend", "calibrate", "push"},
        ),
        ("pcsep batch --sh", 2, {"--shard"}),
    ],
)
def test_the_bash_script_completes(tmp_path: Path, words: str, cword: int, expected: set) -> None:
    words_array = " ".join(f"'{w}'" for w in words.split(" "))  # a trailing "" = empty word
    code = (
        f"source '{COMMITTED / 'pcsep.bash'}'\n"
        f"COMP_WORDS=({words_array}); COMP_CWORD={cword}\n"
        "_pcsep_completion pcsep\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    proc = subprocess.run([BASH, "-c", code], env=_env(tmp_path), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert set(proc.stdout.split()) == expected


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_protocols_answer(tmp_path: Path, shell: str) -> None:
    # What the zsh and fish scripts run at each Tab (no zsh or fish needed to check the answer).
    env = _env(tmp_path, _PCSEP_COMPLETE=f"complete_{shell}", _TYPER_COMPLETE_ARGS="pcsep mod")
    if shell == "fish":
        env["_TYPER_COMPLETE_FISH_ACTION"] = "get-args"
    proc = subprocess.run([PCSEP], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "models" in proc.stdout and "List, download" in proc.stdout
