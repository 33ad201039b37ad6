"""Separation with a spatial head (issue 15): microphones and performer positions steer the
masks; without them the model is exactly its mono self.

The recordings are made here, in the frequency domain: each performer is band-limited noise
from a point, heard by each omni microphone after ``distance / c`` seconds and at ``1 / d``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from helpers.models import spatial_tiny
from helpers.scenes import person_mesh, room

from pcsep_cli.io.mics import Microphones
from pcsep_cli.io.pointcloud import PointCloud
from pcsep_cli.nets.model import SeparationNet
from pcsep_cli.nets.spatial import SPEED_OF_SOUND, SpatialConfig
from pcsep_cli.scene import find_performers
from pcsep_cli.separate import Separator
from pcsep_cli.separate.separator import sound_point

SR = 8000
# Two performers 1.5 m left and 0.5 m right of a spaced pair of omnis 2.5 m in front of them
# (not symmetric about the pair's axis, so a swap of the channels does not just swap them).
SOURCES = np.array([[-1.5, 0.0, 1.0], [0.5, 0.0, 1.2]])
MICS = Microphones(np.array([[-0.4, -2.5, 1.5], [0.4, -2.5, 1.5]]), None, ("omni", "omni"))
BANDS = [(300.0, 1500.0), (1500.0, 3500.0)]  # performer 0 low, performer 1 high


def mono_twin(net: SeparationNet) -> SeparationNet:
    """The same model with its spatial head removed: a mono SeparationNet, same weights."""
    cfg = dataclasses.replace(net.config, spatial=SpatialConfig())
    mono = SeparationNet(cfg)
    state = {k: v for k, v in net.state_dict().items() if not k.startswith("spatial.")}
    assert len(state) < len(net.state_dict())  # the head was there
    mono.load_state_dict(state)  # strict: nothing else differs
    assert not mono.accepts_microphones
    return mono.eval()


def recording(
    sources: np.ndarray = SOURCES, seconds: float = 1.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``(mixture (2, n), images (P, 2, n))``: each source's band of noise at each microphone."""
    n = int(seconds * SR)
    rng = np.random.default_rng(seed)
    freqs = np.fft.rfftfreq(n, 1 / SR)
    images = []
    for src, (lo, hi) in zip(sources, BANDS, strict=True):
        spectrum = np.fft.rfft(rng.standard_normal(n)) * ((freqs >= lo) & (freqs <= hi))
        dist = np.linalg.norm(MICS.positions - src, axis=1)
        delay = np.exp(-2j * np.pi * freqs[None] * (dist[:, None] / SPEED_OF_SOUND))
        images.append(np.fft.irfft(spectrum[None] * delay / dist[:, None], n=n))
    images = np.stack(images)
    images *= 0.3 / np.abs(images.sum(0)).max()
    return images.sum(0).astype(np.float32), images.astype(np.float32)


@pytest.fixture(scope="module")
def mix() -> np.ndarray:
    return recording()[0]


def test_stems_and_residual_sum_to_the_mixture_with_geometry(mix: np.ndarray) -> None:
    sep = Separator(spatial_tiny(), device="cpu", segment=0.6, overlap=0.25)
    result = sep.separate(
        mix, SR, instruments=["violin", "cello"], microphones=MICS, sources=SOURCES
    )
    assert result.stems.shape == (2, 2, mix.shape[1])
    np.testing.assert_allclose(result.stems.sum(0) + result.residual, mix, atol=1e-4)
    cond = result.conditions
    assert cond is not None and cond.spatial_note is None
    assert cond.steer is not None and tuple(cond.steer.shape) == (2, 2, 128)  # P, M, bins
    np.testing.assert_allclose(cond.sources, SOURCES)
    check = cond.channel_check
    assert set(check) == {"score", "best_order", "best_score"}
    assert sorted(check["best_order"]) == [0, 1]
    assert 0.0 <= check["score"] <= check["best_score"] <= 1.0
    # Each stem holds a real part of the mixture: neither silent nor all of it.
    energy = (result.stems.astype(np.float64) ** 2).sum(axis=(1, 2)) / (mix**2).sum()
    assert np.all(energy > 1e-3) and np.all(energy < 0.95)


def test_channel_check_finds_swapped_channels(mix: np.ndarray) -> None:
    """Channels as the microphones list them score best in their own order; the same
    recording with its channels swapped is caught by the order that undoes the swap."""
    sep = Separator(spatial_tiny(head=False), device="cpu")
    kw = dict(instruments=["violin", "cello"], microphones=MICS, sources=SOURCES)
    right = sep.separate(mix, SR, **kw).conditions.channel_check
    swapped = sep.separate(mix[::-1].copy(), SR, **kw).conditions.channel_check
    assert right["best_order"] == [0, 1] and right["score"] == right["best_score"]
    assert swapped["best_order"] == [1, 0]
    assert swapped["best_score"] - swapped["score"] > 0.03  # geometry.SWAP_MARGIN
    assert swapped["best_score"] == pytest.approx(right["score"], abs=1e-4)


def test_without_microphones_the_spatial_model_is_its_mono_self(mix: np.ndarray) -> None:
    net = spatial_tiny()
    spatial = Separator(net, device="cpu").separate(mix, SR, instruments=["violin", "cello"])
    mono = Separator(mono_twin(net), device="cpu").separate(
        mix, SR, instruments=["violin", "cello"]
    )
    cond = spatial.conditions
    assert cond.steer is None and cond.channel_check is None and cond.sources is None
    assert "--mics" in cond.spatial_note and "mono path" in cond.spatial_note
    np.testing.assert_allclose(spatial.stems, mono.stems, atol=1e-6)
    np.testing.assert_allclose(spatial.residual, mono.residual, atol=1e-6)
    # One microphone, or no positions (label mode without sources): the mono path too.
    one = Microphones(MICS.positions[:1], None, ("omni",))
    alone = Separator(net, device="cpu").separate(
        mix[:1], SR, instruments=["violin", "cello"], microphones=one, sources=SOURCES
    )
    assert "one microphone" in alone.conditions.spatial_note
    nowhere = Separator(net, device="cpu").separate(
        mix, SR, instruments=["violin", "cello"], microphones=MICS
    )
    assert "no performer positions" in nowhere.conditions.spatial_note
    np.testing.assert_allclose(nowhere.stems, mono.stems, atol=1e-6)


def test_the_spatial_head_changes_the_stems(mix: np.ndarray) -> None:
    net = spatial_tiny()
    kw = dict(instruments=["violin", "cello"])
    mono = Separator(mono_twin(net), device="cpu").separate(mix, SR, **kw).stems
    steered = Separator(net, device="cpu").separate(
        mix, SR, microphones=MICS, sources=SOURCES, **kw
    )
    assert steered.conditions.steer is not None
    assert np.abs(steered.stems - mono).max() > 1e-2 * np.abs(mix).max()
    # A fresh head (last layer zero) leaves a performer alone in its class with its mono mask.
    fresh = spatial_tiny(head=False)
    untrained = Separator(fresh, device="cpu").separate(
        mix, SR, microphones=MICS, sources=SOURCES, **kw
    )
    plain = Separator(mono_twin(fresh), device="cpu").separate(mix, SR, **kw).stems
    np.testing.assert_allclose(untrained.stems, plain, atol=1e-4)


@pytest.mark.parametrize("which", ["fresh head", "pcsep-spatial", "covariance shares"])
def test_two_violins_are_told_apart_by_where_they_stand(which: str) -> None:
    """The same class twice: the mono path gives both the same stem; with microphones each
    gets its own, and each holds more of its own sound than of the other's (an untrained
    head, which splits by place alone, the bundled model, and the bundled model splitting a
    class by fitted spatial covariances, ``spatial.covariance``)."""
    from pcsep_cli.hub.models import load_model

    mix, images = recording(seed=1)
    net = spatial_tiny(head=False) if which == "fresh head" else load_model("pcsep-spatial")
    if which == "covariance shares":
        spatial = dataclasses.replace(net.config.spatial, covariance=30)
        net.config = dataclasses.replace(net.config, spatial=spatial)
    sep = Separator(net, device="cpu")
    violins = ["violin", "violin"]
    blind = sep.separate(mix, SR, instruments=violins)
    np.testing.assert_array_equal(blind.stems[0], blind.stems[1])
    result = sep.separate(mix, SR, instruments=violins, microphones=MICS, sources=SOURCES)
    assert result.names == ["violin", "violin_2"]
    assert not np.allclose(result.stems[0], result.stems[1], atol=1e-3)
    own = [float(np.sum(result.stems[i] * images[i])) for i in range(2)]
    other = [float(np.sum(result.stems[i] * images[1 - i])) for i in range(2)]
    assert own[0] > 5 * other[0] and own[1] > 5 * other[1]
    if which == "covariance shares":  # the fitted shares, not the head's, split the pair
        plain = Separator(load_model("pcsep-spatial"), device="cpu").separate(
            mix, SR, instruments=violins, microphones=MICS, sources=SOURCES
        )
        assert np.abs(plain.stems - result.stems).max() > 1e-2 * np.abs(mix).max()


@pytest.mark.parametrize("tilt", [0.0, 12.0])
@pytest.mark.parametrize("share", [0.0, 0.55, 1.0])
def test_sound_point_is_above_the_footprint(tilt: float, share: float) -> None:
    """``share`` of the performer's height (95th percentile above the floor) straight up from
    the footprint's centre, up being the floor's normal however the scan is tilted."""
    xyz, owner = room([person_mesh(0.5, 1.0)], density=400, floor_density=150)
    a = np.radians(tilt)
    turn = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(a), -np.sin(a)], [0.0, np.sin(a), np.cos(a)]])
    shift = np.array([2.0, -1.0, 0.7])
    (perf,) = find_performers(PointCloud(xyz @ turn.T + shift))
    # Measured on the level scene: the person's points, the floor at z = 0.
    body = xyz[owner == 0]
    height = float(np.percentile(body[:, 2], 95))
    assert 1.5 < height < 1.8
    footprint = (body[:, :2].min(0) + body[:, :2].max(0)) / 2
    expected = np.append(footprint, share * height) @ turn.T + shift
    point = sound_point(perf, share)
    assert point.shape == (3,) and point.dtype == np.float64
    np.testing.assert_allclose(point, expected, atol=0.03)
    if share:  # the lift is along the tilted floor's normal, not the cloud's z
        lift = point - sound_point(perf, 0.0)
        np.testing.assert_allclose(lift / np.linalg.norm(lift), turn[:, 2], atol=1e-3)
