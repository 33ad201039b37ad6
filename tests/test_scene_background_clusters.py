"""Clusters that cannot be performers (:func:`pcsep_cli.scene.performers._background`): too tall
(above ``TALLEST``, 2.9 m), too long (a footprint past ``LONGEST``, 3.8 m), or a thin flat
upright panel at least 1.2 m wide and tall; :func:`find_performers` drops them and keeps the
people.

Objects are trimesh primitives sampled on their surfaces (tests/helpers/scenes.py); in the
direct checks of ``_background`` they stand on the floor at z = 0, which is the floor frame
``_background`` reads.
"""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from helpers.scenes import at, person_mesh, room, sample
from trimesh.creation import box, cylinder
from trimesh.transformations import rotation_matrix

from pcsep_cli.classes import INSTRUMENTS
from pcsep_cli.io.pointcloud import PointCloud
from pcsep_cli.scene import find_performers
from pcsep_cli.scene import performers as performers_module
from pcsep_cli.scene.performers import LONGEST, TALLEST, TALLEST_SPAN, _background
from pcsep_cli.synth import styles
from pcsep_cli.synth.scene import build_scene, performer_cloud


def turned(mesh: trimesh.Trimesh, degrees: float) -> trimesh.Trimesh:
    """``mesh`` turned about the vertical through its centre."""
    centre = mesh.bounds.mean(axis=0)
    return mesh.copy().apply_transform(rotation_matrix(np.radians(degrees), [0, 0, 1], centre))


def panel(x: float, y: float, width: float, height: float, thick: float = 0.03) -> trimesh.Trimesh:
    """A free-standing board on the floor, ``width`` along x."""
    return box((width, thick, height), transform=at(x, y, height / 2))


def pole(x: float, y: float, height: float) -> trimesh.Trimesh:
    return cylinder(radius=0.05, height=height, transform=at(x, y, height / 2))


def bench(x: float, y: float, length: float) -> trimesh.Trimesh:
    """A low row of seats: a 0.45 m high block, ``length`` along x."""
    return box((length, 0.45, 0.45), transform=at(x, y, 0.225))


def points(mesh: trimesh.Trimesh, seed: int = 0, density: float = 1500.0, noise: float = 0.005):
    pts = sample(mesh, density, seed)
    return pts + np.random.default_rng(seed + 100).normal(0.0, noise, pts.shape)


PEOPLE = [((-2.0, 2.0), False, "violin"), ((1.5, 2.2), True, "cello")]


def extras() -> dict[str, trimesh.Trimesh]:
    return {
        "panel": turned(panel(-0.3, 3.6, 2.0, 2.0), 25.0),  # 2 m x 2 m, at an angle
        "pole": pole(3.0, 3.5, 3.5),
        "slab": box((0.5, 0.3, 3.2), transform=at(-3.0, 3.8, 1.6)),  # narrow, up to 3.2 m
        "bench": bench(0.0, 0.4, 4.5),  # a row of seats in front
    }


def _objects(found, owner: np.ndarray) -> list[int]:
    """The object each cluster mostly holds (-1: floor and walls)."""
    out = []
    for p in found:
        votes = np.bincount(owner[p.index] + 1)
        out.append(int(votes.argmax()) - 1)
    return out


@pytest.mark.parametrize("noise", [0.005, 0.015])
def test_people_found_and_tall_long_and_panel_clusters_dropped(noise: float, monkeypatch) -> None:
    more = extras()
    people = [person_mesh(x, y, s, i) for (x, y), s, i in PEOPLE]
    xyz, owner = room([*people, *more.values()], noise=noise, seed=3)
    found = find_performers(PointCloud(xyz=xyz))
    assert len(found) == len(PEOPLE), _objects(found, owner)
    for p, ((x, y), _, _), obj in zip(found, PEOPLE, range(len(PEOPLE)), strict=True):
        # Left to right: the violinist, then the cellist; each cluster is its person.
        assert np.mean(owner[p.index] == obj) >= 0.95
        assert np.mean(owner[p.index] == obj) * len(p.index) >= 0.9 * np.sum(owner == obj)
        assert np.linalg.norm(p.position[:2] - [x, y]) < 0.3
    # The scene does test the rule: without it every extra object is a cluster of its own.
    monkeypatch.setattr(performers_module, "_background", lambda _pts: False)
    everything = find_performers(PointCloud(xyz=xyz))
    assert sorted(_objects(everything, owner)) == list(range(len(PEOPLE) + len(more)))


def test_each_rule_alone_drops_its_object_in_a_scene() -> None:
    # One extra object per scene beside one player: the one rule that applies removes it.
    for name, mesh in extras().items():
        xyz, owner = room([person_mesh(-2.0, 2.0, True, "cello"), mesh], seed=4)
        found = find_performers(PointCloud(xyz=xyz))
        assert _objects(found, owner) == [0], name
        np.testing.assert_allclose(found[0].position[:2], [-2.0, 2.0 - 0.1], atol=0.3)


# -- _background on one cluster --------------------------------------------------------------


def test_the_limits_are_those_documented() -> None:
    assert TALLEST == 2.9 and LONGEST == 3.8 and TALLEST_SPAN == 2.4


@pytest.mark.parametrize(
    ("mesh", "dropped"),
    [
        (pole(0.4, 1.0, 3.5), True),
        (pole(0.4, 1.0, 2.7), True),  # from the floor: spans more than any performer
        (pole(0.4, 1.0, 2.3), False),
        (box((0.5, 0.3, 3.2), transform=at(1.0, 2.0, 1.6)), True),
        (box((0.5, 0.3, 2.7), transform=at(1.0, 2.0, 1.35)), True),
        (box((0.5, 0.3, 2.2), transform=at(1.0, 2.0, 1.1)), False),
        # 1.8 m tall, its feet 0.9 m up (a stand on a riser): above 2.4 m, but spans less.
        (box((0.5, 0.3, 1.8), transform=at(1.0, 2.0, 1.8)), False),
        # A standing player raising a thin rod (a trombone's slide) to 2.3 m stays.
        (
            trimesh.util.concatenate(
                [person_mesh(0.0, 1.0), box((0.03, 0.03, 0.7), transform=at(0.2, 0.8, 1.95))]
            ),
            False,
        ),
    ],
    ids=[
        "pole-3.5",
        "pole-2.7",
        "pole-2.3",
        "slab-3.2",
        "slab-2.7",
        "slab-2.2",
        "slab-raised",
        "raised-slide-2.3",
    ],
)
def test_too_tall(mesh: trimesh.Trimesh, dropped: bool) -> None:
    assert _background(points(mesh)) == dropped


@pytest.mark.parametrize(
    ("mesh", "dropped"),
    [
        (bench(0.5, 1.0, 4.5), True),
        (turned(bench(0.5, 1.0, 4.5), 45.0), True),  # along a diagonal: not the box's x or y
        (bench(0.5, 1.0, 3.4), False),
        (turned(bench(0.5, 1.0, 3.4), 45.0), False),
    ],
    ids=["bench-4.5", "bench-4.5-diagonal", "bench-3.4", "bench-3.4-diagonal"],
)
def test_too_long(mesh: trimesh.Trimesh, dropped: bool) -> None:
    assert _background(points(mesh)) == dropped


@pytest.mark.parametrize(
    ("mesh", "dropped"),
    [
        (panel(0.0, 1.0, 2.0, 2.0), True),
        (turned(panel(0.0, 1.0, 2.0, 2.0), 60.0), True),
        (panel(0.0, 1.0, 1.3, 1.6), True),
        (panel(0.0, 1.0, 1.0, 2.0), False),  # narrower than 1.2 m
        (panel(0.0, 1.0, 2.0, 1.35), False),  # lower than 1.5 m: as tall as an upright piano
        (panel(0.0, 1.0, 2.0, 2.0, thick=0.5), False),  # a cabinet, not a board
    ],
    ids=["2x2", "2x2-turned", "1.3x1.6", "1.0-wide", "1.35-tall", "thick"],
)
def test_flat_upright_panel(mesh: trimesh.Trimesh, dropped: bool) -> None:
    for noise in (0.005, 0.015):
        assert _background(points(mesh, noise=noise)) == dropped, noise


def test_narrow_panel_stays_a_cluster_in_a_scene() -> None:
    # 1.0 m wide, 2 m tall: below the panel rule's width, so a distractor like any other.
    xyz, owner = room([person_mesh(-1.5, 2.0), panel(1.0, 2.5, 1.0, 2.0)], seed=5)
    found = find_performers(PointCloud(xyz=xyz))
    assert _objects(found, owner) == [0, 1]
    np.testing.assert_allclose(found[1].position[:2], [1.0, 2.5], atol=0.3)


@pytest.mark.parametrize(
    ("seated", "instrument"),
    [(True, "cello"), (True, "piano"), (True, ""), (False, "violin"), (False, "")],
)
def test_performers_are_not_background(seated: bool, instrument: str) -> None:
    # The seated pianist behind an upright's 1.5 m x 1.1 m box is wide and tall enough for
    # the panel rule: only its thickness keeps it.
    mesh = person_mesh(0.7, 1.5, seated, instrument)
    for seed in range(3):
        assert not _background(points(mesh, seed=seed, noise=0.01))
    # Seen from the front only (the half facing -y), as one sensor sees them.
    pts = points(mesh, seed=7)
    front = pts[pts[:, 1] < np.median(pts[:, 1])]
    assert not _background(front)


def test_a_performer_on_a_riser_is_not_background() -> None:
    # A standing violinist 0.8 m up (a riser the background step did not take as the floor):
    # the top is 2.5 m above the floor, the span from the feet a person's.
    for seed in range(3):
        pts = points(person_mesh(0.7, 1.5, False, "violin"), seed=seed, noise=0.01)
        raised = pts + [0.0, 0.0, 0.8]
        assert np.quantile(raised[:, 2], 0.995) > TALLEST_SPAN
        assert not _background(raised)


def test_no_performer_of_the_generator_spans_more_than_the_limit() -> None:
    # Every class in every style, as one sensor scans it: the tallest (a standing bassist
    # with the scroll at head height) spans ~2.0 m, well inside the 2.4 m limit.
    for cls in INSTRUMENTS:
        for style in styles.all_styles(cls):
            with styles.allowed({**styles.SEEN, cls: (style,)}):
                cloud = performer_cloud(np.random.default_rng(11), cls, body_id=11)
            low, top = np.quantile(cloud.xyz[:, 2], [0.005, 0.995])
            assert top - low < TALLEST_SPAN - 0.25, (cls, style, top - low)


def test_fewer_than_50_points_are_never_background() -> None:
    pts = points(pole(0.0, 0.0, 3.5))
    assert _background(pts)
    few = pts[np.random.default_rng(0).choice(len(pts), 49, replace=False)]
    assert few[:, 2].max() > TALLEST
    assert not _background(few)


def test_upright_piano_seen_from_behind_is_a_performer():
    # An upright piano (1.1-1.35 m tall, ~1.5 m wide) with its pianist, seen from the audience:
    # the piano's flat back faces the sensor. A panel rule down to 1.2 m dropped these two.
    for seed in (9, 39):
        scene = build_scene(np.random.default_rng(seed), ["piano", "violin"], walls=False)
        assert scene.objects[0].params["variant"] == "upright"
        found = find_performers(PointCloud(xyz=scene.xyz), viewer=scene.sensor_position)
        owners = [np.bincount(scene.object_index[p.index] + 1).argmax() - 1 for p in found]
        assert 0 in owners, (seed, owners)


def grand_body(x: float, y: float) -> trimesh.Trimesh:
    """A grand piano's case on its legs, lid closed: 1.5 m wide, 2 m deep, 1 m high, no head."""
    parts = [box((1.5, 2.0, 0.35), transform=at(x, y + 1.0, 0.82))]
    parts += [
        cylinder(radius=0.05, height=0.65, transform=at(x + dx, y + dy, 0.325))
        for dx, dy in ((-0.65, 0.15), (0.65, 0.15), (0.0, 1.85))
    ]
    return trimesh.util.concatenate(parts)


@pytest.mark.parametrize(("seated", "together"), [(True, True), (False, False)])
def test_a_seated_pianist_joins_the_piano_a_standing_neighbour_does_not(
    seated: bool, together: bool
) -> None:
    # The pianist's knees 0.2 m from the case: apart they are two clusters, the case a headless
    # thing wider than a performer. Seated at the keyboard (head 1.3 m up) the player is the
    # piano's: one performer. A standing player as close is a neighbour and stays apart.
    body = grand_body(0.0, 2.0)
    y = 1.35 if seated else 1.7  # knees / belly 0.15-0.2 m from the case
    player = person_mesh(0.0, y, seated=seated)
    player.apply_transform(rotation_matrix(np.pi, [0, 0, 1], point=(0.0, y, 0.0)))  # face it
    for seed in (0, 1):
        xyz, owner = room([body, player], seed=seed)
        found = find_performers(PointCloud(xyz=xyz))
        held = [sorted(set(np.unique(owner[p.index])) - {-1}) for p in found]
        assert sorted(held) == ([[0, 1]] if together else [[0], [1]]), (seed, held)
