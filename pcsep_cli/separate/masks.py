"""Masks computed at the model's rate, carried to the input's own rate and normalised.

The network runs on the mono mixture at its own sample rate (``config.sample_rate``). Its
masks are applied to every channel of the input *at the input's rate*, so stems keep the
input's bandwidth and spatial image. :class:`RateMap` pairs the model's STFT with an STFT at
the input rate whose window and hop last as long in seconds (``hop`` scaled by
``sr_in / sr_model``, ``n_fft`` too, then moved to the nearest size the FFT does fast: 4096
rather than 4088 for 1022 at 4×); a mask is then read at each input bin's frequency and each
input frame's time by linear interpolation. Frequencies above the model's Nyquist (a 44.1 kHz input
and a 11.025 kHz model) take the mean mask of the model's top octave in that frame: the model
never saw them, and the top octave is the nearest evidence of who owns the treble.

:func:`normalise` makes the masks a partition of one: where they sum past 1 they are divided
by their sum; what is left (``1 - Σ masks``) is the residual's.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from pcsep_cli.nets.stft import StftConfig

__all__ = ["RateMap", "normalise"]


def _even(x: float) -> int:
    return max(16, 2 * round(x / 2))


def _fast_fft_size(x: float) -> int:
    """The even 5-smooth number (2^a 3^b 5^c) nearest ``x``: sizes pocketfft does fastest.

    Scaling the model's 1022 (2·7·73) by 4 gives 4088, whose factor 73 made the input-rate
    STFT and iSTFT of a 44.1 kHz recording 30-45 % slower than at 4096.
    """
    target = _even(x)

    def smooth(n: int) -> bool:
        for p in (2, 3, 5):
            while n % p == 0:
                n //= p
        return n == 1

    near = range(max(16, _even(target - target // 8)), target + target // 8 + 1, 2)
    return min((n for n in near if smooth(n)), key=lambda n: abs(n - x), default=target)


class RateMap:
    """Carry masks from the model's STFT grid to the STFT grid of an input rate.

    Args:
        model_stft: the model's STFT.
        sr_model: the model's rate (Hz).
        sr_in: the input's rate (Hz).

    Attributes:
        stft_in: STFT used on the input (``warp_bins`` 0: it never meets the network).
    """

    def __init__(self, model_stft: StftConfig, sr_model: int, sr_in: int) -> None:
        self.model_stft, self.sr_model, self.sr_in = model_stft, int(sr_model), int(sr_in)
        ratio = sr_in / sr_model
        n_fft = _fast_fft_size(model_stft.n_fft * ratio)
        hop = min(n_fft // 2, max(1, round(model_stft.hop * ratio)))
        self.stft_in = StftConfig(n_fft=n_fft, hop=hop, window=model_stft.window, warp_bins=0)
        f_model = model_stft.bins
        freqs = self.stft_in.frequencies(sr_in)
        pos = freqs * model_stft.n_fft / sr_model  # fractional model bin of each input bin
        above = pos > f_model - 1 + 1e-9
        pos = np.clip(pos, 0, f_model - 1)
        lo = np.minimum(np.floor(pos).astype(np.int64), f_model - 2)
        frac = pos - lo
        # Index f_model is a virtual bin holding the top octave's mean (see module docstring).
        lo[above], frac[above] = f_model, 0.0
        self._f_lo = torch.from_numpy(lo)
        self._f_frac = torch.from_numpy(frac.astype(np.float32))
        # When the scaled n_fft is itself a fast size (a model n_fft of 1024 and rates in a
        # whole ratio), input bins sit on model bins: one gather then. Frames of rates in a
        # whole ratio line up one to one either way (the hop is scaled exactly).
        self._f_exact = bool(np.all(frac < 1e-6))
        self._frames_per_frame = (self.stft_in.hop / sr_in) / (model_stft.hop / sr_model)
        self._top = slice(f_model // 2, f_model)

    def carry(self, masks: Tensor, samples_in: int) -> Tensor:
        """Masks on the model's linear grid → masks on the input's grid.

        Args:
            masks: ``(P, F_model, T_model)`` in [0, 1].
            samples_in: chunk length at the input rate (sets ``T_in``).

        Returns:
            ``(P, F_in, T_in)`` in [0, 1], ``F_in = stft_in.bins``,
            ``T_in = stft_in.frames(samples_in)``.
        """
        p, f_model, t_model = masks.shape
        if f_model != self.model_stft.bins:
            raise ValueError(
                f"masks must be (P, {self.model_stft.bins}, T), got {tuple(masks.shape)}"
            )
        top = masks[:, self._top].mean(dim=1, keepdim=True)
        padded = torch.cat([masks, top, top], dim=1)  # f_model, f_model + 1: the virtual bin
        lo = self._f_lo.to(masks.device)
        t_in = self.stft_in.frames(samples_in)
        if abs(self._frames_per_frame - 1) < 1e-9 and t_in <= t_model:
            padded = padded[..., :t_in]
            t_model = t_in
        if self._f_exact:
            m = padded[:, lo]
        else:
            frac = self._f_frac.to(masks.device)[None, :, None]
            m = padded[:, lo] * (1 - frac) + padded[:, lo + 1] * frac
        if t_in == t_model and abs(self._frames_per_frame - 1) < 1e-9:
            return m
        # Frame t is centred at t * hop samples (torch.stft, center=True) on both grids.
        tau = torch.arange(t_in, dtype=torch.float64, device=masks.device) * self._frames_per_frame
        tau = tau.clamp(0, t_model - 1)
        t_lo = tau.floor().long().clamp(max=max(t_model - 2, 0))
        t_frac = (tau - t_lo).to(masks.dtype)
        t_hi = (t_lo + 1).clamp(max=t_model - 1)
        return m[:, :, t_lo] * (1 - t_frac) + m[:, :, t_hi] * t_frac


def normalise(masks: Tensor) -> Tensor:
    """Scale masks so they sum to at most one in every bin; the rest is the residual's.

    Args:
        masks: ``(P, F, T)`` in [0, 1].

    Returns:
        ``(P, F, T)``, with ``masks.sum(0) <= 1``.
    """
    total = masks.sum(dim=0, keepdim=True)
    return masks / total.clamp(min=1.0)
