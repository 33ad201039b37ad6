"""Recordings written with soundfile, and the check that stems sum to their mixture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def wav(path: Path, seconds: float = 0.05, rate: int = 8000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros((int(seconds * rate), 2), np.float32), rate)
    return path


def recording(path: Path, seed: int, seconds: float = 0.3, rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(seed).standard_normal((int(seconds * rate), 2))
    sf.write(path, (0.1 * noise).astype(np.float32), rate, subtype="PCM_16")
    return path


def sum_error(manifest: dict, mixture: Path) -> float:
    mix = sf.read(mixture, dtype="float64", always_2d=True)[0]
    total = sum(sf.read(s["path"], dtype="float64", always_2d=True)[0] for s in manifest["stems"])
    total = total + sf.read(manifest["residual"]["path"], dtype="float64", always_2d=True)[0]
    return float(np.abs(total - mix).max())
