"""STFT helpers shared by training, evaluation and inference.

The model reads the magnitude of a mono mixture on a log-frequency grid (low notes get
more rows than the top octave, as in the paper's code) and predicts masks on that grid;
:class:`LogFrequencyWarp` carries spectrograms to the grid and masks back to the
linear grid of ``torch.stft``. Both directions are fixed linear interpolations, stored as
non-persistent buffers so that checkpoints hold only learned weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

WINDOWS = ("hann", "hamming")
WARPS = ("point", "band")


@dataclass(frozen=True)
class StftConfig:
    """Short-time Fourier transform of the model's input.

    Attributes:
        n_fft: FFT size; the linear grid has ``n_fft // 2 + 1`` bins.
        hop: hop between frames, in samples.
        window: ``"hann"`` or ``"hamming"``.
        warp_bins: rows of the log-frequency grid the network sees (0 disables the warp:
            the network then sees the ``n_fft // 2`` lowest linear bins and the top bin's
            mask repeats the one below it).
        warp: how a log-grid row reads the linear grid: ``"point"`` interpolates the two bins
            at its place (models before full band), ``"band"`` averages the bins between its
            neighbours with a triangle (the same as ``"point"`` where rows are closer than a
            bin; where a row spans many bins, as in the top octaves of a 22.05 kHz model, it
            reads all of them instead of two).
    """

    n_fft: int = 1022
    hop: int = 256
    window: str = "hann"
    warp_bins: int = 256
    warp: str = "point"

    def __post_init__(self) -> None:
        if self.n_fft < 16 or self.n_fft % 2:
            raise ValueError(f"stft.n_fft must be an even number >= 16, got {self.n_fft}")
        if not 0 < self.hop <= self.n_fft:
            raise ValueError(f"stft.hop must be in (0, n_fft], got {self.hop}")
        if self.window not in WINDOWS:
            raise ValueError(f"stft.window must be one of {WINDOWS}, got {self.window!r}")
        if self.warp_bins < 0:
            raise ValueError(f"stft.warp_bins must be >= 0, got {self.warp_bins}")
        if self.warp not in WARPS:
            raise ValueError(f"stft.warp must be one of {WARPS}, got {self.warp!r}")

    @property
    def bins(self) -> int:
        """Rows of the linear grid (``n_fft // 2 + 1``)."""
        return self.n_fft // 2 + 1

    @property
    def net_bins(self) -> int:
        """Rows of the grid the network sees."""
        return self.warp_bins if self.warp_bins else self.n_fft // 2

    def frequencies(self, sample_rate: int) -> np.ndarray:
        """float64 ``[bins]``: the linear grid's frequencies (Hz) at ``sample_rate``."""
        return np.arange(self.bins) * (sample_rate / self.n_fft)

    def frames(self, samples: int) -> int:
        """Frames ``torch.stft(center=True)`` returns for ``samples`` samples."""
        return samples // self.hop + 1


def _window(cfg: StftConfig, device: torch.device | None = None) -> Tensor:
    fn = torch.hann_window if cfg.window == "hann" else torch.hamming_window
    return fn(cfg.n_fft, periodic=True, device=device)


def stft(x: Tensor, cfg: StftConfig) -> Tensor:
    """Complex STFT of signals.

    Args:
        x: waveforms ``(..., S)``, float.
        cfg: STFT parameters.

    Returns:
        Complex spectrogram ``(..., F, T)`` with ``F = cfg.bins``, ``T = cfg.frames(S)``.
    """
    if x.dim() < 1 or x.shape[-1] < 2:
        raise ValueError(f"stft expects (..., S) with S >= 2, got {tuple(x.shape)}")
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1])
    spec = torch.stft(
        flat,
        cfg.n_fft,
        hop_length=cfg.hop,
        window=_window(cfg, x.device),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    return spec.reshape(*lead, *spec.shape[-2:])


def istft(spec: Tensor, cfg: StftConfig, length: int) -> Tensor:
    """Inverse of :func:`stft`.

    Args:
        spec: complex spectrogram ``(..., F, T)``.
        cfg: STFT parameters used for the forward transform.
        length: samples to return.

    Returns:
        Waveforms ``(..., length)``.
    """
    if spec.dim() < 2 or spec.shape[-2] != cfg.bins:
        raise ValueError(f"istft expects (..., {cfg.bins}, T), got {tuple(spec.shape)}")
    lead = spec.shape[:-2]
    flat = spec.reshape(-1, *spec.shape[-2:])
    wav = torch.istft(
        flat,
        cfg.n_fft,
        hop_length=cfg.hop,
        window=_window(cfg, spec.device),
        center=True,
        length=length,
    )
    return wav.reshape(*lead, length)


# The fixed matrices are computed on the CPU even under a ``torch.device("meta")`` context
# (hub.expected_tensors): meta-device ``arange`` runs through torch's decompositions, which
# import torch._dynamo, ~0.9 s of a 6 s separation.
_CPU = torch.device("cpu")


def _interp_matrix(positions: Tensor, n_src: int) -> Tensor:
    """Rows that linearly interpolate a length-``n_src`` axis at fractional ``positions``."""
    pos = positions.clamp(0, n_src - 1)
    lo = pos.floor().long().clamp(max=n_src - 2)
    frac = pos - lo
    mat = torch.zeros(len(positions), n_src, dtype=torch.float64, device=_CPU)
    rows = torch.arange(len(positions), device=_CPU)
    mat[rows, lo] = 1 - frac
    mat[rows, lo + 1] += frac
    return mat.float()


def _band_matrix(positions: Tensor, n_src: int) -> Tensor:
    """Rows that average a length-``n_src`` axis with a triangle around each of the increasing
    ``positions``, its half-width the mean gap to the two neighbouring positions (so it
    reaches them), but never less than one bin: exactly :func:`_interp_matrix` where
    positions are closer than a bin."""
    pos = positions.clamp(0, n_src - 1)
    gaps = torch.diff(pos)
    left = torch.cat([gaps[:1], gaps])
    right = torch.cat([gaps, gaps[-1:]])
    half = torch.maximum((left + right) / 2, torch.ones_like(pos))
    grid = torch.arange(n_src, dtype=torch.float64, device=_CPU)
    mat = (1 - (grid[None, :] - pos[:, None]).abs() / half[:, None]).clamp(min=0)
    return (mat / mat.sum(1, keepdim=True)).float()


def log_positions(n_lin: int, n_log: int) -> Tensor:
    """Linear-bin position (fractional) of each log-grid row: ``n_lin**(j/(n_log-1)) - 1``."""
    j = torch.arange(n_log, dtype=torch.float64, device=_CPU)
    return torch.pow(float(n_lin), j / (n_log - 1)) - 1


class LogFrequencyWarp(nn.Module):
    """Fixed resampling between the linear STFT grid and the network's grid.

    Args:
        cfg: STFT parameters; ``cfg.warp_bins`` rows on the network side.
    """

    def __init__(self, cfg: StftConfig) -> None:
        super().__init__()
        self.cfg = cfg
        n_lin, n_net = cfg.bins, cfg.net_bins
        if cfg.warp_bins:
            pos = log_positions(n_lin, n_net)
            fwd = _band_matrix(pos, n_lin) if cfg.warp == "band" else _interp_matrix(pos, n_lin)
            # Each linear bin reads the mask at its own place on the log axis.
            lin = torch.arange(n_lin, dtype=torch.float64, device=_CPU)
            inv_pos = torch.log(lin + 1) / math.log(n_lin) * (n_net - 1)
            inv = _interp_matrix(inv_pos, n_net)
        else:
            fwd = torch.eye(n_lin, device=_CPU)[:n_net]
            eye = torch.eye(n_net, device=_CPU)
            inv = torch.cat([eye, eye[-1:]], dim=0)
        self.register_buffer("fwd", fwd, persistent=False)
        self.register_buffer("inv", inv, persistent=False)

    def to_net(self, spec: Tensor) -> Tensor:
        """Linear grid ``(..., F_lin, T)`` → network grid ``(..., F_net, T)``."""
        if spec.shape[-2] != self.cfg.bins:
            raise ValueError(f"expected (..., {self.cfg.bins}, T), got {tuple(spec.shape)}")
        return torch.einsum("gf,...ft->...gt", self.fwd, spec)

    def to_linear(self, mask: Tensor) -> Tensor:
        """Network grid ``(..., F_net, T)`` → linear grid ``(..., F_lin, T)``."""
        if mask.shape[-2] != self.cfg.net_bins:
            raise ValueError(f"expected (..., {self.cfg.net_bins}, T), got {tuple(mask.shape)}")
        return torch.einsum("fg,...gt->...ft", self.inv, mask)
