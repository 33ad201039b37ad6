"""``pcsep batch`` killed with SIGKILL at random points, then run again: nothing lost or mixed.

A preempted cluster job or a laptop whose battery dies gets no chance to clean up. Each trial
starts the installed command on the same folder, kills it (SIGKILL) either after a random
delay or just after a random item has begun writing, and runs it again to the end. Every
output must then be byte-identical to an uninterrupted run's, with no temporary file left.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from helpers.batch import folder_of, output_files

from pcsep_cli.io.atomic import TMP_MARKER

PCSEP = shutil.which("pcsep", path=str(Path(sys.executable).parent)) or "pcsep"
TRIALS = 20
NAMES = "abcd"


def test_sigkill_at_random_points_then_rerun_gives_identical_outputs(
    tmp_path: Path,
    model: Path,
    scene_ply: Path,
) -> None:
    data = folder_of(tmp_path / "data", scene_ply, NAMES)
    for name in "bd":  # two longer items, so kills also land inside a half-written item
        noise = np.random.default_rng(ord(name)).standard_normal((3 * 16000, 2))
        sf.write(data / f"{name}.wav", (0.1 * noise).astype(np.float32), 16000, "PCM_16")
    env = {
        **os.environ,
        "PCSEP_CONFIG_DIR": str(tmp_path / "config"),
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_OFFLINE": "1",
    }

    def command(out: Path) -> list[str]:
        return [PCSEP, "batch", str(data), "-o", str(out), "--model", str(model)] + [
            "--segment",
            "0.5",
            "--jobs",
            "2",
        ]

    started = time.monotonic()
    ref = subprocess.run(command(tmp_path / "ref"), env=env, capture_output=True, timeout=300)
    full_run = time.monotonic() - started
    assert ref.returncode == 0, ref.stderr
    expected = output_files(tmp_path / "ref")
    assert sum(name.endswith("manifest.json") for name in expected) == len(NAMES)

    rng = np.random.default_rng(20261126)
    killed_mid_write = 0
    for trial in range(TRIALS):
        out = tmp_path / f"out{trial}"
        proc = subprocess.Popen(
            command(out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            if trial % 2:
                # Wait for a random item to start writing, then kill a moment later.
                item = out / NAMES[rng.integers(len(NAMES))]
                deadline = time.monotonic() + 120
                while proc.poll() is None and time.monotonic() < deadline:
                    if list(item.glob(f".*{TMP_MARKER}*")):
                        break
                    time.sleep(0.005)
                time.sleep(rng.uniform(0.0, 0.1))
            else:
                time.sleep(rng.uniform(0.0, full_run))
        finally:
            proc.kill()
            proc.wait()
        killed_mid_write += bool(list(out.rglob(f".*{TMP_MARKER}*")))

        again = subprocess.run(command(out), env=env, capture_output=True, timeout=300)
        assert again.returncode == 0, (trial, again.stderr)
        assert output_files(out) == expected, f"trial {trial}: outputs differ after the rerun"

    # The trials did hit the interesting case: a process killed with a temporary on disk.
    assert killed_mid_write >= TRIALS // 4, killed_mid_write
