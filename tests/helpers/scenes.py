"""Whole-scene clouds for tests: performers built from trimesh primitives (people as capsules,
spheres and boxes, chairs as boxes) in a room with a noisy floor and three walls.

Used by the scene tests (tests/test_scene.py) and by the separation and batch tests that need
a realistic scene; each point carries the index of the object it came from (-1 for floor and
walls).
"""

from __future__ import annotations

import numpy as np
import trimesh
from trimesh.creation import box, capsule, icosphere
from trimesh.transformations import translation_matrix


def at(x: float, y: float, z: float) -> np.ndarray:
    return translation_matrix((x, y, z))


def person_mesh(x: float, y: float, seated: bool = False, instrument: str = "") -> trimesh.Trimesh:
    """A performer facing -y: seated on a chair or standing, with an optional instrument."""
    parts = []
    if seated:
        parts.append(box((0.45, 0.45, 0.05), transform=at(x, y, 0.45)))
        parts += [
            box((0.03, 0.03, 0.45), transform=at(x + dx, y + dy, 0.225))
            for dx in (-0.2, 0.2)
            for dy in (-0.2, 0.2)
        ]
        parts.append(capsule(height=0.45, radius=0.16, transform=at(x, y, 0.85)))
        parts.append(box((0.3, 0.45, 0.15), transform=at(x, y - 0.2, 0.55)))
        parts.append(box((0.3, 0.12, 0.45), transform=at(x, y - 0.42, 0.25)))
        head = 1.28
    else:
        parts += [
            capsule(height=0.7, radius=0.07, transform=at(x + dx, y, 0.45)) for dx in (-0.1, 0.1)
        ]
        parts.append(capsule(height=0.5, radius=0.17, transform=at(x, y, 1.15)))
        head = 1.65
    parts.append(icosphere(subdivisions=2, radius=0.11).apply_translation((x, y, head)))
    if instrument == "cello":
        parts.append(box((0.4, 0.22, 1.1), transform=at(x, y - 0.3, 0.6)))
    elif instrument == "violin":
        parts.append(box((0.35, 0.12, 0.06), transform=at(x + 0.1, y - 0.25, head - 0.2)))
    elif instrument == "piano":  # an upright piano in front of a seated pianist
        parts.append(box((1.5, 0.6, 1.1), transform=at(x, y - 0.8, 0.55)))
    return trimesh.util.concatenate(parts)


def sample(mesh: trimesh.Trimesh, density: float, seed: int) -> np.ndarray:
    """Points on the mesh's surface, ``density`` per square metre."""
    points, _ = trimesh.sample.sample_surface(mesh, max(1, int(mesh.area * density)), seed=seed)
    return np.asarray(points, dtype=np.float64)


def room(
    meshes: list[trimesh.Trimesh],
    *,
    seed: int = 0,
    density: float = 600.0,
    floor_density: float = 400.0,
    walls: bool = True,
    noise: float = 0.005,
) -> tuple[np.ndarray, np.ndarray]:
    """A 8 x 6 m room (floor, back and side walls 3 m high) holding ``meshes``.

    Returns:
        ``xyz [N, 3]`` and ``owner [N]``: the mesh each point lies on, -1 for floor and walls.
    """
    rng = np.random.default_rng(seed)
    parts = [sample(m, density, seed + i) for i, m in enumerate(meshes)]
    owner = [np.full(len(p), i) for i, p in enumerate(parts)]

    def plane(n: int, fixed: int, value: float, lo: list[float], hi: list[float]) -> np.ndarray:
        p = rng.uniform(lo, hi, size=(n, 3))
        p[:, fixed] = value
        return p

    back = [plane(int(48 * floor_density), 2, 0.0, [-4, -1, 0], [4, 5, 0])]
    if walls:
        n_wall = int(24 * floor_density / 2)
        back += [
            plane(n_wall, 1, 5.0, [-4, 5, 0], [4, 5, 3]),
            plane(n_wall, 0, -4.0, [-4, -1, 0], [-4, 5, 3]),
            plane(n_wall, 0, 4.0, [4, -1, 0], [4, 5, 3]),
        ]
    background = np.concatenate(back)
    xyz = np.concatenate([*parts, background])
    xyz += rng.normal(0.0, noise, xyz.shape)
    return xyz, np.concatenate([*owner, np.full(len(background), -1)])


QUARTET = [
    ((-2.0, 2.0), True, "cello"),
    ((0.0, 2.2), False, "violin"),
    ((1.6, 1.8), True, "violin"),
    ((3.0, 2.5), False, ""),  # a conductor: a distractor, kept as a cluster
]
