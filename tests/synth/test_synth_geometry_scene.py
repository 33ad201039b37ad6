"""Whole scenes and single-performer clouds: the contract the dataset writer relies on."""

from __future__ import annotations

import numpy as np
import pytest

from pcsep_cli.synth.scene import (
    CLASSES,
    DISTRACTORS,
    SceneCloud,
    build_scene,
    performer_cloud,
)
from pcsep_cli.synth.sensor import SensorSpec


@pytest.fixture(scope="module")
def quartet() -> SceneCloud:
    return build_scene(
        np.random.default_rng(5),
        ["violin", "cello", "flute", "trumpet"],
        distractors=("conductor", "chair", "music_stand"),
        body_ids=[10, 11, 12, 13, 14, 15, 16],
    )


def test_scene_contract(quartet: SceneCloud) -> None:
    s = quartet
    n = len(s.xyz)
    assert s.xyz.dtype == np.float64 and s.xyz.shape == (n, 3)
    assert s.rgb.dtype == np.uint8 and s.rgb.shape == (n, 3)
    assert s.object_index.dtype == np.int32 and s.object_index.shape == (n,)
    assert s.object_index.min() == -1 and s.object_index.max() < len(s.objects)
    assert [o.label for o in s.objects] == ["violin", "cello", "flute", "trumpet"] + ["none"] * 3
    assert [o.kind for o in s.objects] == ["performer"] * 4 + ["distractor"] * 3
    assert [o.distractor for o in s.objects][4:] == ["conductor", "chair", "music_stand"]
    assert len({o.name for o in s.objects}) == len(s.objects)
    assert [o.body_id for o in s.objects] == [10, 11, 12, 13, 14, None, None]
    for o in s.objects:
        assert o.position.shape == (3,) and o.position[2] == 0.0
        assert o.source_position.shape == (3,)
    assert s.sensor_position.shape == (3,) and s.sensor_target.shape == (3,)
    assert s.room is not None and s.room.shape == (2, 3)
    # inside the room up to the range noise, which reaches decimetres at 10 m
    d = np.linalg.norm(s.xyz - s.sensor_position, axis=1)
    tolerance = 5 * (0.002 + 0.0025 * (d - 0.5) ** 2)[:, None] + 0.01
    assert np.all((s.xyz >= s.room[0] - tolerance) & (s.xyz <= s.room[1] + tolerance))


def test_every_object_is_seen_with_realistic_density(quartet: SceneCloud) -> None:
    counts = np.bincount(quartet.object_index[quartet.object_index >= 0], minlength=7)
    assert counts[:4].min() > 0  # players may hide one another, not entirely in this scene
    assert np.median(counts[:4]) > 2000
    walls = quartet.xyz[(quartet.object_index < 0) & (quartet.xyz[:, 2] > 0.1)]
    assert len(walls) > 1000  # walls behind the ensemble


def test_layout(quartet: SceneCloud) -> None:
    s = quartet
    players = np.array([o.position[:2] for o in s.objects[:4]])
    gaps = np.linalg.norm(players[:, None] - players[None], axis=-1)
    np.fill_diagonal(gaps, np.inf)
    assert gaps.min() >= 1.0 and gaps.min(axis=1).max() <= 3.0
    centre = players.mean(0)
    assert 1.5 <= np.linalg.norm(s.sensor_position[:2] - centre) <= 7.5
    assert 1.0 <= s.sensor_position[2] <= 2.5
    # sounding points are near their player
    for o in s.objects[:4]:
        assert np.linalg.norm(o.source_position[:2] - o.position[:2]) < 1.2
        assert 0.3 < o.source_position[2] < 2.0


def test_deterministic() -> None:
    a = build_scene(np.random.default_rng(3), ["guitar", "clarinet"], walls=False)
    b = build_scene(np.random.default_rng(3), ["guitar", "clarinet"], walls=False)
    np.testing.assert_array_equal(a.xyz, b.xyz)
    np.testing.assert_array_equal(a.object_index, b.object_index)
    assert [o.body_id for o in a.objects] == [o.body_id for o in b.objects]
    assert a.room is None
    floor = a.xyz[a.object_index < 0]
    d = np.linalg.norm(floor - a.sensor_position, axis=1)
    # floor only: at z = 0 up to the range noise
    assert np.all(np.abs(floor[:, 2]) < 5 * (0.002 + 0.0025 * (d - 0.5) ** 2) + 0.005)


def test_full_surface_option() -> None:
    s = build_scene(
        np.random.default_rng(4), ["saxophone"], full_surface=True, walls=False, body_ids=[3]
    )
    body = s.xyz[s.object_index == 0]
    # every side of the player is sampled, not only what the sensor faces
    assert np.ptp(body[:, 0]) > 0.3 and np.ptp(body[:, 1]) > 0.25
    assert 5000 < len(body) < 20000  # 4000 points per m² on ~2-3 m² of surface
    assert np.all(s.xyz[s.object_index < 0][:, 2] == 0.0)


@pytest.mark.parametrize("label", ["violin", "double_bass", "piano", "none"])
def test_performer_cloud(label: str) -> None:
    counts = []
    for seed in range(3):
        cloud = performer_cloud(np.random.default_rng(seed), label, body_id=seed)
        assert [o.name.rsplit("_", 1)[0] for o in cloud.objects] != []
        assert cloud.objects[0].label == label
        mine = cloud.xyz[cloud.object_index == 0]
        distance = np.linalg.norm(cloud.sensor_position[:2] - mine[:, :2].mean(0))
        assert 1.0 < distance < 7.5
        counts.append(len(mine))
    assert 1000 < np.median(counts) < 60000  # a capture at 2-6 m, 0.1° between rays


def test_point_count_follows_the_resolution() -> None:
    fine = performer_cloud(np.random.default_rng(0), "cello", body_id=1)
    coarse = performer_cloud(
        np.random.default_rng(0), "cello", body_id=1, sensor=SensorSpec(resolution_deg=0.2)
    )
    ratio = (fine.object_index == 0).sum() / (coarse.object_index == 0).sum()
    assert 3.0 < ratio < 5.0  # a quarter of the rays at twice the angle


def test_distractor_kinds_and_seats() -> None:
    rng = np.random.default_rng(0)
    for d in DISTRACTORS:
        cloud = performer_cloud(rng, "none", body_id=5, distractor=d)
        obj = cloud.objects[0]
        assert obj.kind == "distractor" and obj.distractor == d and obj.label == "none"
        assert (obj.body_id is None) == (d != "conductor")
    seated = performer_cloud(rng, "trumpet", body_id=5, distractor="chair")
    assert seated.objects[0].params["seated"] == 1.0


def test_bad_arguments() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="instruments must be"):
        build_scene(rng, ["banjo"])
    with pytest.raises(ValueError, match="unknown distractors"):
        build_scene(rng, ["violin"], distractors=("audience",))
    with pytest.raises(ValueError, match="body_ids has 1 ids for 2"):
        build_scene(rng, ["violin", "cello"], body_ids=[1])
    with pytest.raises(ValueError, match="unknown label"):
        performer_cloud(rng, "banjo", body_id=1)
    with pytest.raises(ValueError, match="only be given a 'chair'"):
        performer_cloud(rng, "violin", body_id=1, distractor="music_stand")
    assert len(CLASSES) == 10
