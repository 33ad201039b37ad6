"""The U-Net, FiLM and the STFT helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pcsep_cli.nets.audio import AudioDecoder, AudioEncoder, AudioNetConfig
from pcsep_cli.nets.film import FiLM
from pcsep_cli.nets.stft import LogFrequencyWarp, StftConfig, istft, log_positions, stft


def test_stft_istft_round_trip_and_shapes():
    cfg = StftConfig(n_fft=254, hop=64, warp_bins=32)
    x = torch.randn(2, 3, 4000)
    spec = stft(x, cfg)
    assert spec.shape == (2, 3, cfg.bins, cfg.frames(4000))
    torch.testing.assert_close(istft(spec, cfg, 4000), x, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match=r"istft expects \(\.\.\., 128, T\), got \(3, 7\)"):
        istft(torch.zeros(3, 7, dtype=torch.complex64), cfg, 100)


def test_log_warp_puts_more_rows_on_low_frequencies():
    pos = log_positions(512, 256).numpy()
    assert pos[0] == pytest.approx(0) and pos[-1] == pytest.approx(511)
    assert np.all(np.diff(pos) > 0)
    # Half of the rows cover the lowest ~4 % of the bins (below ~480 Hz at 11025 Hz).
    assert pos[128] < 0.05 * 511


def test_warp_then_unwarp_restores_a_smooth_mask():
    cfg = StftConfig(n_fft=1022, hop=256, warp_bins=256)
    warp = LogFrequencyWarp(cfg)
    # A mask that is smooth on the log axis is what the network outputs.
    rows = torch.linspace(0, 1, 256)
    net_mask = (0.5 + 0.4 * torch.sin(6 * rows))[:, None].repeat(1, 5)
    lin = warp.to_linear(net_mask)
    assert lin.shape == (512, 5)
    back = warp.to_net(lin)
    # Exact where a log row spans a linear bin or more; below, the linear grid (one value per
    # bin) cannot hold the log grid's finer detail.
    coarse = int(np.argmax(np.diff(log_positions(512, 256).numpy()) >= 1))
    torch.testing.assert_close(back[coarse:], net_mask[coarse:], atol=2e-3, rtol=0)
    torch.testing.assert_close(back, net_mask, atol=0.05, rtol=0)
    assert float(lin.min()) >= 0.1 and float(lin.max()) <= 0.9  # interpolation, no overshoot


def test_unwarped_grid_passes_bins_through():
    cfg = StftConfig(n_fft=254, hop=64, warp_bins=0)
    warp = LogFrequencyWarp(cfg)
    spec = torch.rand(3, 128, 4)
    torch.testing.assert_close(warp.to_net(spec), spec[:, :127])
    lin = warp.to_linear(spec[:, :127])
    torch.testing.assert_close(lin[:, :127], spec[:, :127])
    torch.testing.assert_close(lin[:, 127], spec[:, 126])


def test_film_starts_as_identity_and_then_conditions():
    film = FiLM(cond_dim=4, channels=3)
    x = torch.randn(2, 3, 5, 6)
    cond = torch.randn(2, 4)
    torch.testing.assert_close(film(x, cond), x)
    with torch.no_grad():
        film.proj.bias[3:] = 1.0  # beta = 1 for every channel
    torch.testing.assert_close(film(x, cond), x + 1)


def test_unet_shapes_and_skip_sharing():
    cfg = AudioNetConfig(levels=3, base_channels=4, max_channels=8)
    assert cfg.channels == (4, 8, 8)
    enc, dec = AudioEncoder(cfg).eval(), AudioDecoder(cfg, cond_dim=5).eval()
    x = torch.randn(2, 1, 32, 16)
    feats = enc(x)
    assert [tuple(f.shape) for f in feats] == [(2, 4, 16, 8), (2, 8, 8, 4), (2, 8, 4, 2)]
    mix_index = torch.tensor([0, 1, 1])
    out = dec(feats, torch.zeros(3, 5), mix_index)
    assert out.shape == (3, 1, 32, 16)
    # With FiLM at identity the two performers of mixture 1 get the same mask.
    torch.testing.assert_close(out[1], out[2])
    assert not torch.allclose(out[0], out[1])


def test_config_checks():
    with pytest.raises(ValueError, match="audio.levels"):
        AudioNetConfig(levels=1)
    with pytest.raises(ValueError, match="max_channels"):
        AudioNetConfig(base_channels=32, max_channels=16)
    with pytest.raises(ValueError, match="n_fft"):
        StftConfig(n_fft=255)
    with pytest.raises(ValueError, match="window"):
        StftConfig(window="kaiser")
