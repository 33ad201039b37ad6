"""Room acoustics: microphone arrays, shoebox rooms and recordings (real pyroomacoustics)."""

from __future__ import annotations

import numpy as np
import pytest

from pcsep_cli.synth import room

SR = 16000
C = 343.0


def _pair(rng: np.random.Generator) -> np.ndarray:
    return room.microphone_array(rng, "stereo", np.array([0.0, -3.0, 1.5]), np.zeros(3))


@pytest.mark.parametrize(("layout", "n"), [("mono", 1), ("stereo", 2), (4, 4), ("8", 8)])
def test_microphone_array_layouts(layout, n) -> None:
    centre = np.array([1.0, 2.0, 1.6])
    mics = room.microphone_array(np.random.default_rng(0), layout, centre, np.array([1, 5, 1.0]))
    assert mics.shape == (n, 3) and mics.dtype == np.float64
    np.testing.assert_allclose(mics.mean(axis=0), centre, atol=1e-9)
    np.testing.assert_allclose(mics[:, 2], 1.6)  # a horizontal array
    if n >= 3:
        radius = np.linalg.norm(mics - centre, axis=1)
        np.testing.assert_allclose(radius, radius[0])
        assert 0.03 <= radius[0] <= 0.1


def test_stereo_pair_puts_left_first_and_faces_the_target() -> None:
    # Facing +y from (0, -3), left is -x.
    mics = _pair(np.random.default_rng(1))
    assert mics[0, 0] < 0 < mics[1, 0]
    np.testing.assert_allclose(mics[:, 1], -3.0)
    assert 0.1 <= np.linalg.norm(mics[0] - mics[1]) <= 0.6


def test_microphone_array_rejects_bad_layouts() -> None:
    rng = np.random.default_rng(0)
    for bad in (0, 9, "surround"):
        with pytest.raises(ValueError, match="mono, stereo or 1..8"):
            room.microphone_array(rng, bad, np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match=r"centre must be \[3\]"):
        room.microphone_array(rng, "mono", np.zeros(2), np.ones(3))


def test_draw_room_contains_every_point_and_respects_walls() -> None:
    rng = np.random.default_rng(2)
    for _ in range(20):
        points = rng.uniform([-4, -4, 0.5], [4, 4, 2.0], (6, 3))
        r = room.draw_room(rng, points)
        local = points - r.origin
        assert (local > 0.2).all() and (local < r.dims - 0.2).all()
        assert r.origin[2] == 0.0  # the floor of the scene is the floor of the room
        assert 0.02 <= min(r.absorption.values()) and max(r.absorption.values()) <= 0.95
        assert 1 <= r.max_order <= room.MAX_ORDER and r.rt60 > 0
    walls = (np.array([-5.0, -6.0, 0.0]), np.array([5.0, 6.0, 3.0]))
    r = room.draw_room(rng, np.array([[0.0, 0.0, 1.0]]), walls=walls)
    np.testing.assert_allclose(r.origin, [-5.0, -6.0, 0.0])
    np.testing.assert_allclose(r.dims, [10.0, 12.0, 3.0])
    # A point beyond a wall grows the room instead of falling outside it.
    r = room.draw_room(rng, np.array([[0.0, 0.0, 1.0], [6.0, 0.0, 2.9]]), walls=walls)
    assert r.origin[0] + r.dims[0] >= 6.25 and r.origin[2] + r.dims[2] >= 3.15


def test_record_delays_and_attenuates_by_distance() -> None:
    rng = np.random.default_rng(3)
    sources = np.array([[-2.0, 1.0, 1.2]])
    mics = _pair(rng)
    r = room.draw_room(rng, np.concatenate([sources, mics]), rt60_range=(0.2, 0.25))
    dry = np.zeros((1, SR))
    dry[0, 100] = 1.0
    stems, rt60 = room.record(r, sources, mics, dry, SR)
    assert stems.shape == (1, 2, SR) and stems.dtype == np.float32
    assert 0.05 < rt60 < 1.0
    dist = np.linalg.norm(mics - sources[0], axis=1)
    for m in range(2):
        # pyroomacoustics centres an 81-tap fractional delay filter on the arrival.
        arrival = 100 + dist[m] / C * SR + 40
        assert int(np.argmax(np.abs(stems[0, m]))) == pytest.approx(arrival, abs=2)
    # The source is on the left: the left microphone hears it louder and earlier.
    assert np.abs(stems[0, 0]).max() > np.abs(stems[0, 1]).max()


def test_record_is_linear_in_the_sources_and_cuts_the_window() -> None:
    rng = np.random.default_rng(4)
    sources = np.array([[-1.5, 0.0, 1.0], [1.5, 0.5, 1.3]])
    mics = room.microphone_array(rng, 4, np.array([0.0, -2.5, 1.5]), np.zeros(3))
    r = room.draw_room(rng, np.concatenate([sources, mics]))
    dry = rng.standard_normal((2, 3 * SR)).astype(np.float32)
    both, _ = room.record(r, sources, mics, dry, SR, start=SR, num_samples=SR)
    assert both.shape == (2, 4, SR)
    for p in range(2):
        alone, _ = room.record(r, sources[p : p + 1], mics, dry[p : p + 1], SR, start=SR)
        np.testing.assert_allclose(alone[0, :, :SR], both[p], atol=1e-5)
    # Reverberation from the music before the window reaches into it.
    silent_after = dry.copy()
    silent_after[:, SR:] = 0.0
    tail, _ = room.record(r, sources, mics, silent_after, SR, start=SR, num_samples=SR)
    assert np.abs(tail[:, :, : SR // 20]).max() > 1e-3


def test_record_rejects_points_outside_the_room_and_bad_shapes() -> None:
    rng = np.random.default_rng(5)
    r = room.draw_room(rng, np.array([[0.0, 0.0, 1.0], [0.0, -2.0, 1.5]]))
    mics = np.array([[0.0, -2.0, 1.5]])
    outside = r.origin + r.dims + 1.0
    with pytest.raises(ValueError, match="outside the room"):
        room.record(r, outside[None, :], mics, np.zeros((1, 100)), SR)
    with pytest.raises(ValueError, match=r"dry must be \(P=1, S\)"):
        room.record(r, np.array([[0.0, 0.0, 1.0]]), mics, np.zeros((2, 100)), SR)
