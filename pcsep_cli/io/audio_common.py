"""What reading, resampling and writing audio share: argument types, soundfile's errors,
the float subtypes and the array check. Each of :mod:`~pcsep_cli.io.audio`,
:mod:`~pcsep_cli.io.resample` and :mod:`~pcsep_cli.io.audio_write` imports it; the writer also
uses the resampler (Opus from rates it cannot hold), and nothing else imports another.
"""

from __future__ import annotations

from os import PathLike
from typing import Any

import numpy as np
import soundfile as sf

__all__ = ["FLOAT_SUBTYPES", "SF_ERRORS", "PathArg", "check_audio"]

PathArg = str | PathLike[str]
SF_ERRORS = (sf.SoundFileError, RuntimeError, OSError, ValueError, TypeError, AssertionError)
"""What soundfile raises besides its own classes: bad argument combinations, OS-level failures."""
FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})


def check_audio(x: Any, name: str, channels: int | None = None) -> np.ndarray:
    """``x`` as an array, checked to be float ``(channels, samples)`` (``channels`` if given).

    Raises:
        ValueError: another shape, no channel, or not floats (the message names ``name``).
    """
    x = np.asarray(x)
    if x.ndim != 2 or (channels is not None and x.shape[0] != channels):
        want = f"({channels}, samples)" if channels else "(channels, samples)"
        raise ValueError(f"{name} must be {want}, got shape {x.shape}")
    if x.shape[0] < 1:
        raise ValueError(f"{name} must have at least one channel, got shape {x.shape}")
    if x.dtype.kind != "f":
        raise ValueError(f"{name} must hold floats (full scale ±1), got dtype {x.dtype}")
    return x
