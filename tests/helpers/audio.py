"""Recordings written with soundfile, and the check that stems sum to their mixture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def wav(path: Path, seconds: float = 0.05, rate: int = 8000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # The format from the name, as soundfile would, but also for "..wav" (splitext sees no
    # extension in a name that starts with dots).
    fmt = "WAV" if path.name.lower().endswith(".wav") else None
    sf.write(path, np.zeros((int(seconds * rate), 2), np.float32), rate, format=fmt)
    return path


def recording(path: Path, seed: int, seconds: float = 0.3, rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(seed).standard_normal((int(seconds * rate), 2))
    sf.write(path, (0.1 * noise).astype(np.float32), rate, subtype="PCM_16")
    return path


def output_file(manifest: dict, entry: dict) -> Path:
    """Where a stem or residual of ``manifest`` lies: its paths are relative to its folder."""
    return Path(manifest["manifest"]).parent / entry["path"]


def sum_error(manifest: dict, mixture: Path) -> float:
    mix = sf.read(mixture, dtype="float64", always_2d=True)[0]
    stems = [output_file(manifest, s) for s in manifest["stems"]]
    total = sum(sf.read(p, dtype="float64", always_2d=True)[0] for p in stems)
    residual = output_file(manifest, manifest["residual"])
    total = total + sf.read(residual, dtype="float64", always_2d=True)[0]
    return float(np.abs(total - mix).max())
