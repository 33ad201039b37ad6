"""Procedural instrument and furniture meshes: valid, closed, and sized like the real ones."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from pcsep_cli.synth import furniture, meshes
from pcsep_cli.synth import instruments as inst

# Overall extents (m) real instruments span, longest dimension first checked.
REAL_LENGTH = {
    "violin": (0.55, 0.62),  # 4/4 violin with scroll
    "cello": (1.15, 1.30),  # without endpin
    "double_bass": (1.60, 2.00),
    "guitar": (0.95, 1.06),
    "flute": (0.64, 0.70),
    "clarinet": (0.58, 0.72),
    "trumpet": (0.44, 0.52),
}


def _extent(mesh: meshes.Mesh) -> np.ndarray:
    return np.ptp(mesh.vertices, axis=0)


@pytest.mark.parametrize("name", inst.CLASSES)
def test_every_class_builds_a_valid_mesh(name: str) -> None:
    ins = inst.build(name, np.random.default_rng(0))
    mesh = ins.mesh
    assert mesh.vertices.dtype == np.float64 and mesh.vertices.shape[1] == 3
    assert mesh.faces.min() >= 0 and mesh.faces.max() < len(mesh.vertices)
    assert mesh.face_rgb.shape == (len(mesh.faces), 3) and mesh.face_rgb.dtype == np.uint8
    assert np.isfinite(mesh.vertices).all()
    tri = mesh.vertices[mesh.faces]
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    assert (area > 0).mean() > 0.95  # almost no degenerate triangles
    assert "sound" in ins.anchors


@pytest.mark.parametrize("name", sorted(REAL_LENGTH))
def test_lengths_stay_in_the_real_range(name: str) -> None:
    lo, hi = REAL_LENGTH[name]
    for seed in range(20):
        ins = inst.build(name, np.random.default_rng(seed))
        length = _extent(ins.mesh).max()
        assert lo <= length <= hi, (name, seed, length)


def test_bowed_string_bodies_and_bows() -> None:
    for seed in range(10):
        rng = np.random.default_rng(seed)
        violin, cello, bass = (inst.bowed(n, rng) for n in ("violin", "cello", "double_bass"))
        assert 0.34 <= violin.params["body_length"] <= 0.37
        assert 0.73 <= cello.params["body_length"] <= 0.78
        assert 1.04 <= bass.params["body_length"] <= 1.17
        assert 0.18 <= violin.params["lower_bout"] <= 0.22  # violin lower bout ~0.20 m
        assert 0.40 <= cello.params["lower_bout"] <= 0.48
        for ins in (violin, cello, bass):
            assert 0.65 <= _extent(ins.bow).max() <= 0.80


def test_winds_and_brass_details() -> None:
    for seed in range(20):
        rng = np.random.default_rng(seed)
        sax = inst.saxophone(rng)
        lo, hi = (0.5, 0.68) if sax.params["variant"] == "alto" else (0.65, 0.85)
        assert lo <= sax.params["height"] <= hi
        assert 0.11 <= sax.params["bell_diameter"] <= 0.16
        trumpet = inst.trumpet(rng)
        assert 0.11 <= trumpet.params["bell_diameter"] <= 0.13
        trombone = inst.trombone(rng)
        assert 0.0 <= trombone.params["slide_extension"] <= 0.6
        assert 0.2 <= trombone.params["bell_diameter"] <= 0.23
        # closed slide ~0.7 m + extension, bell section behind the mouthpiece
        span = _extent(trombone.mesh)[0]
        assert 0.95 + trombone.params["slide_extension"] <= span + 0.05
    short = inst.trombone(np.random.default_rng(0), max_extension=0.1)
    assert short.params["slide_extension"] <= 0.1


def test_piano_kinds_and_keyboard_height() -> None:
    kinds = set()
    for seed in range(20):
        piano = inst.piano(np.random.default_rng(seed))
        kinds.add(piano.params["variant"])
        assert 0.70 <= piano.params["key_height"] <= 0.76
        extent = _extent(piano.mesh)
        if piano.params["variant"] == "upright":
            assert 1.1 <= extent[2] <= 1.36 and 1.44 <= extent[0] <= 1.6
        else:
            assert 1.5 <= piano.params["length"] <= 2.75
            assert extent[1] >= piano.params["length"] - 0.01
    assert kinds == {"upright", "grand"}


def test_furniture() -> None:
    rng = np.random.default_rng(3)
    chair = furniture.chair(rng, seat_height=0.47)
    assert chair.mesh.vertices[:, 2].min() == pytest.approx(0.0)
    assert chair.anchors["seat"][2] == pytest.approx(0.47)
    stand = furniture.music_stand(rng)
    assert 1.0 <= stand.mesh.vertices[:, 2].max() <= 1.65
    assert furniture.podium(rng).params["height"] <= 0.25
    assert 0.3 <= _extent(furniture.baton(rng)).max() <= 0.5
    with pytest.raises(ValueError, match="unknown instrument"):
        inst.build("banjo", rng)


def test_primitives_are_closed_surfaces() -> None:
    """Tubes and lofts are watertight, so a ray never sees inside an instrument."""
    path = meshes.arc([0, 0, 0], [0.1, 0, 0], [0, 0.1, 0], 0, np.pi, 8)
    for mesh in (
        meshes.tube(path, 0.02, (1, 2, 3)),
        meshes.loft(
            np.array([[0, 0], [1, 0], [1, 1], [0, 1.0]]),
            np.array([0.0, 0.2, 0.3]),
            np.array([1.0, 1.0, 0.5]),
            (1, 2, 3),
        ),
        meshes.box([0, 0, 0], [1, 2, 3], (1, 2, 3)),
    ):
        tm = trimesh.Trimesh(mesh.vertices, mesh.faces, process=True)
        assert tm.is_watertight
        assert tm.volume > 0  # outward normals


def test_same_seed_same_instrument() -> None:
    a = inst.build("trombone", np.random.default_rng(7))
    b = inst.build("trombone", np.random.default_rng(7))
    np.testing.assert_array_equal(a.mesh.vertices, b.mesh.vertices)
