"""The simulated depth sensor: noise law, occlusion, grazing dropout, surface sampling."""

from __future__ import annotations

import numpy as np
import pytest

from pcsep_cli.synth import sensor
from pcsep_cli.synth.meshes import Mesh, box, tube
from pcsep_cli.synth.sensor import Room, SensorSpec, sample_surface, scan

ORIGIN = np.array([0.0, 0.0, 1.0])
QUIET = dict(dropout=0.0, dark_dropout=0.0, grazing_deg=89.99)


def _objects(*meshes: Mesh) -> tuple[Mesh, np.ndarray]:
    faces = np.concatenate([np.full(len(m.faces), k, np.int32) for k, m in enumerate(meshes)])
    return Mesh.concat(list(meshes)), faces


def _panel(distance: float, size: float = 1.0, rgb=(200, 200, 200), thick=0.05) -> Mesh:
    """A square panel facing the sensor (normal -y) ``distance`` m ahead at sensor height."""
    h = size / 2
    return box([-h, distance, ORIGIN[2] - h], [h, distance + thick, ORIGIN[2] + h], rgb)


@pytest.mark.parametrize("distance", [1.0, 4.0])
def test_range_noise_follows_the_quadratic_law(distance: float) -> None:
    spec = SensorSpec(sigma0=0.0015, quadratic=0.002, **QUIET)
    mesh, faces = _objects(_panel(distance))
    ret = scan(
        np.random.default_rng(0), mesh, faces, Room(None, None), ORIGIN, ORIGIN + [0, 1, 0], spec
    )
    on = ret.object_index == 0
    measured = np.linalg.norm(ret.xyz[on] - ORIGIN, axis=1)
    error = measured - ret.distance[on]
    expected = spec.noise_sigma(ret.distance[on])
    assert on.sum() > 5000
    assert abs(error.mean()) < 3 * expected.mean() / np.sqrt(on.sum())  # unbiased
    assert error.std() == pytest.approx(np.sqrt(np.mean(expected**2)), rel=0.05)
    # the formula itself: 1.5 mm at 0.5 m, +2 mm per m² beyond
    assert spec.noise_sigma(np.array([0.5, 4.0])) == pytest.approx([0.0015, 0.0015 + 0.0245])


def test_point_density_follows_the_angular_resolution() -> None:
    mesh, faces = _objects(_panel(3.0))
    counts = []
    for res in (0.1, 0.2):
        spec = SensorSpec(resolution_deg=res, **QUIET)
        ret = scan(
            np.random.default_rng(0),
            mesh,
            faces,
            Room(None, None),
            ORIGIN,
            ORIGIN + [0, 1, 0],
            spec,
        )
        counts.append(int((ret.object_index == 0).sum()))
    expected = 1.0 / (3.0 * np.deg2rad(0.1)) ** 2  # 1 m² at 3 m, one ray per 0.1°×0.1°
    assert counts[0] == pytest.approx(expected, rel=0.1)
    assert counts[0] / counts[1] == pytest.approx(4.0, rel=0.1)


def test_nothing_is_seen_behind_a_wall_or_behind_another_object() -> None:
    spec = SensorSpec(**QUIET)
    # Object 0 stands outside the room, behind its +y wall (y = 3).
    mesh, faces = _objects(_panel(5.0))
    room = Room(np.array([-5.0, -1.0, 0.0]), np.array([5.0, 3.0, 4.0]))
    ret = scan(np.random.default_rng(0), mesh, faces, room, ORIGIN, ORIGIN + [0, 1, 0], spec)
    assert (ret.object_index == 0).sum() == 0
    wall = ret.xyz[ret.object_index == -1]
    assert len(wall) > 1000 and np.abs(wall[:, 1] - 3.0).min() < 0.01
    # Object 1 is hidden behind the larger object 0.
    mesh, faces = _objects(_panel(2.0, size=1.5), _panel(4.0, size=0.5))
    ret = scan(
        np.random.default_rng(0), mesh, faces, Room(None, None), ORIGIN, ORIGIN + [0, 1, 0], spec
    )
    assert (ret.object_index == 0).sum() > 1000 and (ret.object_index == 1).sum() == 0


def test_grazing_returns_drop_out() -> None:
    # A panel turned 80° away from the rays: with dropout from 60°, a third of it remains.
    panel = _panel(3.0, size=0.6, thick=1e-4)
    a = np.deg2rad(80.0)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])
    centre = np.array([0.0, 3.0, ORIGIN[2]])
    turned = Mesh((panel.vertices - centre) @ rot.T + centre, panel.faces, panel.face_rgb)
    mesh, faces = _objects(turned)
    counts = []
    for grazing in (89.99, 60.0):
        spec = SensorSpec(resolution_deg=0.05, dropout=0.0, dark_dropout=0.0, grazing_deg=grazing)
        ret = scan(np.random.default_rng(1), mesh, faces, Room(None, None), ORIGIN, centre, spec)
        counts.append((ret.object_index == 0).sum())
    assert counts[0] > 500
    assert counts[1] / counts[0] == pytest.approx(1 / 3, abs=0.06)


def test_random_and_dark_dropout() -> None:
    mesh, faces = _objects(_panel(3.0, rgb=(255, 255, 255)), _panel(3.0, rgb=(0, 0, 0)))
    mesh.vertices[len(mesh.vertices) // 2 :, 0] += 1.5  # the black panel beside the white one
    base = dict(grazing_deg=89.99, max_range=6.0)
    full = scan(
        np.random.default_rng(0),
        mesh,
        faces,
        Room(None, None),
        ORIGIN,
        ORIGIN + [0.75, 3, 0],
        SensorSpec(dropout=0.0, dark_dropout=0.0, **base),
    )
    lossy = scan(
        np.random.default_rng(0),
        mesh,
        faces,
        Room(None, None),
        ORIGIN,
        ORIGIN + [0.75, 3, 0],
        SensorSpec(dropout=0.2, dark_dropout=1.0, **base),
    )
    white = [(r.object_index == 0).sum() for r in (full, lossy)]
    black = [(r.object_index == 1).sum() for r in (full, lossy)]
    assert white[1] / white[0] == pytest.approx(0.8, abs=0.03)
    # black loses a further dark_dropout * distance / max_range
    far = lossy.distance[lossy.object_index == 1].mean() / 6.0
    assert black[1] / black[0] == pytest.approx(0.8 * (1.0 - far), abs=0.04)


def test_colours_and_no_rgb_option() -> None:
    mesh, faces = _objects(_panel(2.0, rgb=(200, 40, 40)))
    ret = scan(
        np.random.default_rng(0),
        mesh,
        faces,
        Room(None, None),
        ORIGIN,
        ORIGIN + [0, 1, 0],
        SensorSpec(**QUIET),
    )
    rgb = ret.rgb[ret.object_index == 0].astype(float)
    assert rgb[:, 0].mean() > 150 and rgb[:, 1].mean() < 60  # red, lit from the sensor
    dark = scan(
        np.random.default_rng(0),
        mesh,
        faces,
        Room(None, None),
        ORIGIN,
        ORIGIN + [0, 1, 0],
        SensorSpec(rgb=False, **QUIET),
    )
    assert dark.rgb.dtype == np.uint8 and not dark.rgb.any()


def test_embree_and_the_pure_python_caster_agree() -> None:
    mesh = tube(np.array([[0.0, 2.0, 0.5], [0.0, 2.0, 1.5]]), 0.3, (1, 1, 1), sides=24)
    dirs, _ = sensor.ray_grid(ORIGIN, ORIGIN + [0, 1, 0], mesh.vertices, 0.5)
    d_fast, face_fast, _ = sensor._embree_hits(mesh, ORIGIN, dirs)
    d_slow, face_slow, _ = sensor._trimesh_hits(mesh, ORIGIN, dirs)
    hit, fast_hit = np.isfinite(d_slow), np.isfinite(d_fast)
    assert hit.sum() > 100
    assert (fast_hit == hit).mean() > 0.99  # float32 vs float64 may differ on silhouettes
    both = hit & fast_hit
    np.testing.assert_allclose(d_fast[both], d_slow[both], atol=1e-5)


def test_full_surface_sampling() -> None:
    panel = box([0, 0, 0], [1, 1, 1], (9, 9, 9))  # 6 m²
    mesh, faces = _objects(panel)
    crop = (np.array([-1.0, -1.0, 0.0]), np.array([2.0, 2.0, 0.0]))  # 9 m² of floor
    ret = sample_surface(np.random.default_rng(0), mesh, faces, 1000.0, Room(None, None), crop)
    on = ret.object_index == 0
    assert on.sum() == 6000 and (~on).sum() == 9000
    # every object point lies on a face of the unit cube
    p = ret.xyz[on]
    on_face = np.isclose(p, 0, atol=1e-9) | np.isclose(p, 1, atol=1e-9)
    assert on_face.any(axis=1).all()
    assert np.all(ret.xyz[~on][:, 2] == 0.0)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="resolution_deg"):
        SensorSpec(resolution_deg=0.0)
    mesh, faces = _objects(_panel(2.0))
    with pytest.raises(ValueError, match="face_object"):
        scan(
            np.random.default_rng(0),
            mesh,
            faces[:-1],
            Room(None, None),
            ORIGIN,
            ORIGIN,
            SensorSpec(),
        )
    with pytest.raises(ValueError, match=r"origin and target must be \[3\]"):
        scan(
            np.random.default_rng(0),
            mesh,
            faces,
            Room(None, None),
            ORIGIN[:2],
            ORIGIN,
            SensorSpec(),
        )


def test_flying_pixels_only_on_depth_edges() -> None:
    # A panel 2 m ahead of a wall 4 m ahead: mixed ranges appear between them, at its rim.
    mesh, faces = _objects(_panel(2.0, size=0.6))
    room = Room(np.array([-5.0, -1.0, -1.0]), np.array([5.0, 4.0, 4.0]))
    args = (mesh, faces, room, ORIGIN, ORIGIN + [0, 1, 0])
    clean = scan(np.random.default_rng(0), *args, SensorSpec(**QUIET))
    mixed = scan(np.random.default_rng(0), *args, SensorSpec(flying=1.0, **QUIET))
    above_floor = {k: r.xyz[r.xyz[:, 2] > 0.3] for k, r in (("clean", clean), ("mixed", mixed))}
    between = {k: ((v[:, 1] > 2.2) & (v[:, 1] < 3.7)).sum() for k, v in above_floor.items()}
    assert between["clean"] == 0
    # every edge pixel (about the panel's perimeter, from both sides) flies
    rim = 4 * 0.6 / (2.0 * np.deg2rad(0.1))
    assert 0.5 * rim < between["mixed"] < 4 * rim
    assert len(mixed.xyz) == len(clean.xyz)
