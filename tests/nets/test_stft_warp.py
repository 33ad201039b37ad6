"""The log-frequency warp's ``band`` reading and the config fields that travel with it
(``stft.warp``, ``none_below``): what the network sees, and config.json round trips."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pcsep_cli.errors import ModelError
from pcsep_cli.nets.model import SeparatorConfig, load_config
from pcsep_cli.nets.stft import LogFrequencyWarp, StftConfig, log_positions, stft
from pcsep_cli.train.config import load_train_config

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "models" / "pcsep-base"
GRIDS = [(1022, 256), (1022, 128), (2046, 128)]  # (n_fft, warp_bins): 11 kHz and 22 kHz models


def _warps(n_fft: int, warp_bins: int) -> tuple[LogFrequencyWarp, LogFrequencyWarp]:
    point = LogFrequencyWarp(StftConfig(n_fft=n_fft, warp_bins=warp_bins))
    band = LogFrequencyWarp(StftConfig(n_fft=n_fft, warp_bins=warp_bins, warp="band"))
    return point, band


def _spacing(n_fft: int, warp_bins: int) -> np.ndarray:
    """Mean distance (linear bins) from each log row to its two neighbours."""
    gaps = np.diff(log_positions(n_fft // 2 + 1, warp_bins).numpy())
    return (np.concatenate([gaps[:1], gaps]) + np.concatenate([gaps, gaps[-1:]])) / 2


def test_point_is_the_default_and_unknown_warps_are_refused() -> None:
    assert StftConfig().warp == "point"
    with pytest.raises(ValueError, match=r"stft.warp must be one of \('point', 'band'\)"):
        StftConfig(warp="cubic")


@pytest.mark.parametrize(("n_fft", "warp_bins"), GRIDS)
def test_band_is_point_where_rows_are_denser_than_bins(n_fft: int, warp_bins: int) -> None:
    point, band = _warps(n_fft, warp_bins)
    dense = torch.from_numpy(_spacing(n_fft, warp_bins) <= 1.0)
    assert 0 < int(dense.sum()) < warp_bins  # both kinds of row on each grid
    torch.testing.assert_close(band.fwd[dense], point.fwd[dense], atol=1e-7, rtol=0)
    # Where rows are further apart than a bin, band reads them differently, and where they
    # are more than two bins apart, reads more bins than point's two.
    spacing = torch.from_numpy(_spacing(n_fft, warp_bins))
    assert torch.all((band.fwd[~dense] - point.fwd[~dense]).abs().amax(1) > 1e-6)
    wide = spacing > 2
    assert int(wide.sum()) > 0
    assert torch.all((band.fwd[wide] > 0).sum(1) > 2)
    assert torch.all((point.fwd > 0).sum(1) <= 2)
    # The way back to the linear grid does not depend on the warp.
    torch.testing.assert_close(band.inv, point.inv)


@pytest.mark.parametrize(("n_fft", "warp_bins"), GRIDS)
def test_band_rows_are_weights_summing_to_one(n_fft: int, warp_bins: int) -> None:
    _, band = _warps(n_fft, warp_bins)
    assert band.fwd.shape == (warp_bins, n_fft // 2 + 1)
    assert band.fwd.min() >= 0
    torch.testing.assert_close(band.fwd.sum(1), torch.ones(warp_bins), atol=1e-6, rtol=0)
    # Each row is centred on its own place on the log axis.
    centre = (band.fwd.double() * torch.arange(n_fft // 2 + 1)).sum(1)
    pos = log_positions(n_fft // 2 + 1, warp_bins)
    inner = slice(1, -1)  # the end rows' triangles are cut off by the grid's ends
    torch.testing.assert_close(centre[inner], pos[inner], atol=0.1, rtol=0)  # of a bin


def test_top_rows_of_a_22k_model_read_many_bins() -> None:
    point, band = _warps(2046, 128)
    assert torch.all((band.fwd[-10:] > 0).sum(1) > 20)
    assert torch.all((point.fwd[-10:] > 0).sum(1) <= 2)
    # Together the top rows read every bin of the top octave; point skips most of them.
    top = slice(512, 1024)
    assert torch.all(band.fwd[:, top].sum(0) > 0)
    assert (point.fwd[:, top].sum(0) > 0).float().mean() < 0.3


@pytest.mark.parametrize("warp", ["point", "band"])
def test_a_flat_spectrum_stays_flat(warp: str) -> None:
    net = LogFrequencyWarp(StftConfig(n_fft=2046, hop=512, warp_bins=128, warp=warp))
    flat = torch.full((2, 1, 1024, 5), 3.0)
    torch.testing.assert_close(net.to_net(flat), torch.full((2, 1, 128, 5), 3.0))


def test_a_tone_between_two_rows_is_seen_by_band_and_missed_by_point() -> None:
    cfg = StftConfig(n_fft=2046, hop=512, warp_bins=128)
    pos = log_positions(cfg.bins, cfg.warp_bins).numpy()
    k = int(round((pos[-3] + pos[-2]) / 2))  # a bin ~25 bins from the nearest row
    assert min(abs(pos - k)) > 20
    sr = 22050
    t = torch.arange(sr, dtype=torch.float64) / sr
    tone = torch.sin(2 * torch.pi * (k * sr / cfg.n_fft) * t).float()
    mag = stft(tone, cfg).abs()[:, 2:-2]  # frames clear of the zero padding at the ends
    energy = {}
    for warp in ("point", "band"):
        net = LogFrequencyWarp(dataclasses.replace(cfg, warp=warp)).to_net(mag)
        energy[warp] = float((net**2).sum())
    assert energy["band"] > 1000 * energy["point"]
    # Band gives it to the two rows around it, as much as a triangle that wide can.
    band = LogFrequencyWarp(dataclasses.replace(cfg, warp="band")).to_net(mag)
    loud = band.mean(1).argsort(descending=True)[:2].sort().values
    assert loud.tolist() == [cfg.warp_bins - 3, cfg.warp_bins - 2]


def _tiny() -> SeparatorConfig:
    return load_train_config("tiny").model


def test_the_bundled_config_round_trips_byte_for_byte() -> None:
    text = (BUNDLED / "config.json").read_text()
    cfg = load_config(BUNDLED)
    assert cfg.stft.warp == "point" and cfg.none_below == 0.0
    again = json.dumps(SeparatorConfig.from_dict(json.loads(text)).to_dict(), indent=2) + "\n"
    assert again == text
    data = cfg.to_dict()
    assert "warp" not in data["stft"] and "none_below" not in data


def test_a_band_config_writes_its_warp_and_round_trips() -> None:
    base = _tiny()
    cfg = dataclasses.replace(base, stft=dataclasses.replace(base.stft, warp="band"))
    data = json.loads(json.dumps(cfg.to_dict()))
    assert data["stft"]["warp"] == "band"
    assert SeparatorConfig.from_dict(data) == cfg
    # Without the key it is a point model's config, not a band one's.
    del data["stft"]["warp"]
    assert SeparatorConfig.from_dict(data).stft.warp == "point"
    data["stft"]["warp"] = "bands"
    with pytest.raises(ModelError, match="stft.warp must be one of"):
        SeparatorConfig.from_dict(data)


def test_none_below_is_written_only_when_set() -> None:
    cfg = dataclasses.replace(_tiny(), none_below=0.35)
    data = json.loads(json.dumps(cfg.to_dict()))
    assert data["none_below"] == 0.35
    assert SeparatorConfig.from_dict(data) == cfg
    off = dataclasses.replace(cfg, none_below=0.0)
    assert "none_below" not in off.to_dict()
    assert SeparatorConfig.from_dict(off.to_dict()) == off


@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5])
def test_none_below_out_of_range_is_refused(value: float) -> None:
    with pytest.raises(ValueError, match=r"none_below must be in \[0, 1\)"):
        dataclasses.replace(_tiny(), none_below=value)
    data = _tiny().to_dict()
    data["none_below"] = value
    with pytest.raises(ModelError, match=r"none_below must be in \[0, 1\)"):
        SeparatorConfig.from_dict(data)


def test_none_below_must_be_a_number() -> None:
    data = _tiny().to_dict()
    data["none_below"] = "0.5"
    with pytest.raises(ModelError, match="none_below must be float"):
        SeparatorConfig.from_dict(data)
