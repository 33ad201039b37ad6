"""Ctrl-C during ``pcsep batch`` and ``pcsep separate``: the installed command stops cleanly
with exit status 130.

A real process gets a real SIGINT while an item is half written: finished items stay, the
interrupted one leaves neither a final file nor a temporary one, and a second run (resume)
completes the batch.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from pcsep_cli.io.atomic import TMP_MARKER

PCSEP = shutil.which("pcsep", path=str(Path(sys.executable).parent)) or "pcsep"


def _as_foreground() -> None:
    # Ctrl-C reaches a foreground job with SIGINT at its default. A suite started in the
    # background by a non-interactive shell (`.ci/run &`) inherits SIGINT *ignored*, and so
    # would the child: it would never see the signal and finish with 0.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt_once_writing(cmd: list[str], env: dict, folder: Path) -> tuple[int, str, str]:
    """Start ``cmd`` as a foreground job, send SIGINT once a temporary file appears under
    ``folder``; return its exit code, stdout and stderr."""
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_as_foreground,
    )
    try:
        deadline = time.monotonic() + 120
        while not list(folder.rglob(f".*{TMP_MARKER}*")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, f"{cmd[1]} never started writing in {folder}"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, stdout, stderr


def test_ctrl_c_stops_cleanly_and_resume_finishes(
    tmp_path: Path,
    model: Path,
    scene_ply: Path,
) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    rng = np.random.default_rng(0)
    for name, seconds in (("a", 0.3), ("b", 30.0)):
        audio = (0.1 * rng.standard_normal((int(seconds * 8000), 1))).astype(np.float32)
        sf.write(data / f"{name}.wav", audio, 8000)
        shutil.copy(scene_ply, data / f"{name}.ply")
    env = {
        **os.environ,
        "PCSEP_CONFIG_DIR": str(tmp_path / "config"),
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_OFFLINE": "1",
    }
    cmd = [PCSEP, "batch", str(data), "-o", str(out), "--model", str(model)]
    # Short chunks: b takes 60 of them, time enough to interrupt it halfway.
    code, stdout, stderr = _interrupt_once_writing([*cmd, "--segment", "0.5"], env, out / "b")
    assert code == 130, stdout + stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert json.loads((out / "a" / "manifest.json").read_text())["stems"]
    assert not list(out.rglob(f"*{TMP_MARKER}*"))
    assert not (out / "b").exists()  # the interrupted item leaves no empty folder behind

    again = subprocess.run([*cmd, "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    report = {i["name"]: i["status"] for i in json.loads(again.stdout)["items"]}
    assert report == {"a": "skipped", "b": "done"}


def test_ctrl_c_during_separate_leaves_nothing_and_exits_130(
    tmp_path: Path,
    model: Path,
    scene_ply: Path,
) -> None:
    audio, out = tmp_path / "long.wav", tmp_path / "out"
    noise = np.random.default_rng(1).standard_normal((30 * 8000, 2))
    sf.write(audio, (0.1 * noise).astype(np.float32), 8000)
    env = {**os.environ, "PCSEP_CONFIG_DIR": str(tmp_path / "c"), "HF_HUB_OFFLINE": "1"}
    cmd = [PCSEP, "separate", str(audio), str(scene_ply), "-o", str(out), "--model", str(model)]
    code, _, message = _interrupt_once_writing([*cmd, "--segment", "0.5"], env, out)
    assert code == 130, message
    assert message.strip().splitlines()[-1].startswith("interrupted"), message
    assert "Traceback" not in message
    assert not [p for p in out.rglob("*") if p.is_file()]  # no stem, no temporary file
