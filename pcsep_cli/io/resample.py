"""Resampling with soxr: a whole signal (:func:`resample`) or a long one block by block
(:class:`StreamResampler`, memory flat with duration).

Arrays are ``(channels, samples)``, full scale ±1. soxr's failures leave as
:class:`AudioError`; wrong array shapes and rates are :class:`ValueError`.
"""

from __future__ import annotations

import numpy as np
import soxr

from pcsep_cli.errors import AudioError
from pcsep_cli.io.audio_common import check_audio

__all__ = ["StreamResampler", "resample"]


def _check_rate(rate: float, name: str) -> float:
    if not np.isfinite(rate) or rate <= 0:
        raise ValueError(f"{name} must be a positive number of Hz, got {rate}")
    return float(rate)


def resample(x: np.ndarray, sr_from: float, sr_to: float, *, quality: str = "HQ") -> np.ndarray:
    """Resample a whole signal with soxr.

    Args:
        x: ``(channels, samples)`` float array.
        sr_from: its sample rate (Hz).
        sr_to: the rate wanted (Hz).
        quality: soxr quality (``"QQ"``, ``"LQ"``, ``"MQ"``, ``"HQ"``, ``"VHQ"``).

    Returns:
        ``(channels, round(samples * sr_to / sr_from))``, float64 if ``x`` is, else float32.
        A copy of ``x`` when the rates are equal.

    Raises:
        ValueError: wrong shape or dtype, or a rate that is not positive.
    """
    x = check_audio(x, "x")
    sr_from, sr_to = _check_rate(sr_from, "sr_from"), _check_rate(sr_to, "sr_to")
    dtype = np.float64 if x.dtype == np.float64 else np.float32
    if sr_from == sr_to:
        return x.astype(dtype, copy=True)
    if x.shape[1] == 0:
        return np.zeros((x.shape[0], 0), dtype)
    try:
        y = soxr.resample(np.ascontiguousarray(x.T, dtype), sr_from, sr_to, quality=quality)
    except (ValueError, RuntimeError, TypeError) as err:
        raise AudioError(f"resampling {sr_from:g} Hz to {sr_to:g} Hz failed ({err})") from err
    return np.ascontiguousarray(y.T)


class StreamResampler:
    """Resample a long signal block by block; the result matches :func:`resample`.

    Wraps :class:`soxr.ResampleStream`, which keeps the filter state between blocks, so the
    joins are seamless and the total length is the one-shot length.

    Args:
        sr_from: input rate (Hz).
        sr_to: output rate (Hz).
        channels: channel count of every block.
        dtype: ``np.float32`` or ``np.float64``.
        quality: soxr quality, as :func:`resample`.

    Raises:
        ValueError: a rate that is not positive, or ``channels < 1``.
    """

    def __init__(
        self,
        sr_from: float,
        sr_to: float,
        channels: int,
        *,
        dtype: type[np.floating] = np.float32,
        quality: str = "HQ",
    ) -> None:
        self.sr_from, self.sr_to = _check_rate(sr_from, "sr_from"), _check_rate(sr_to, "sr_to")
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self.channels = channels
        self.dtype = np.dtype(dtype)
        self.frames_in = 0
        self.frames_out = 0
        self._finished = False
        self._stream = None
        if self.sr_from != self.sr_to:
            try:
                self._stream = soxr.ResampleStream(
                    self.sr_from, self.sr_to, channels, dtype=self.dtype.name, quality=quality
                )
            except (ValueError, RuntimeError, TypeError) as err:
                raise AudioError(f"cannot start resampling ({err})") from err

    def process(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        """Feed one block; return the output ready so far.

        Args:
            block: ``(channels, n)`` float array (``n`` may be 0, e.g. to flush).
            last: true for the final block: flushes the filter's tail.

        Returns:
            ``(channels, m)`` array of ``self.dtype``; ``m`` varies from block to block.

        Raises:
            ValueError: wrong shape or dtype.
            RuntimeError: called again after ``last=True``.
        """
        block = check_audio(block, "block", self.channels)
        if self._finished:
            raise RuntimeError("StreamResampler.process called after last=True")
        x = np.ascontiguousarray(block.T, self.dtype)
        if self._stream is None:
            y = x.copy()
        else:
            try:
                y = self._stream.resample_chunk(x, last=last)
            except (ValueError, RuntimeError, TypeError) as err:
                raise AudioError(f"resampling failed ({err})") from err
        self._finished = last
        self.frames_in += x.shape[0]
        self.frames_out += y.shape[0]
        return np.ascontiguousarray(y.T)
