"""Triangle meshes as plain arrays, and the primitives instruments and furniture are made of.

A scene joins a few dozen parts and the ray caster only needs vertices, faces and colours, so
meshes are plain arrays (:class:`Mesh`) rather than ``trimesh.Trimesh`` objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import PchipInterpolator

WOOD = [(120, 55, 20), (150, 75, 30), (95, 45, 20), (170, 95, 45)]
BRASS = [(200, 160, 60), (215, 175, 80), (180, 140, 50)]
SILVER = [(200, 200, 205), (180, 182, 190)]
BLACK = (25, 25, 28)
EBONY = (20, 18, 18)


@dataclass
class Mesh:
    """A triangle mesh with one colour per face.

    Attributes:
        vertices: float64 [V, 3] metres.
        faces: int64 [F, 3] vertex indices.
        face_rgb: uint8 [F, 3].
    """

    vertices: np.ndarray
    faces: np.ndarray
    face_rgb: np.ndarray

    def transformed(self, matrix: np.ndarray) -> Mesh:
        """This mesh moved by a rigid 4×4 ``matrix`` (shape [4, 4])."""
        v = self.vertices @ matrix[:3, :3].T + matrix[:3, 3]
        return Mesh(v, self.faces, self.face_rgb)

    def translated(self, offset: np.ndarray) -> Mesh:
        """This mesh moved by ``offset`` [3]."""
        return Mesh(self.vertices + offset, self.faces, self.face_rgb)

    @staticmethod
    def concat(meshes: list[Mesh]) -> Mesh:
        """All ``meshes`` as one (faces re-indexed)."""
        meshes = [m for m in meshes if len(m.faces)]
        if not meshes:
            return Mesh(np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros((0, 3), np.uint8))
        offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
        return Mesh(
            np.concatenate([m.vertices for m in meshes]),
            np.concatenate([m.faces + o for m, o in zip(meshes, offsets, strict=True)]),
            np.concatenate([m.face_rgb for m in meshes]),
        )


@dataclass
class Instrument:
    """An instrument (or piece of furniture) in its local frame.

    Attributes:
        name: class name (``"violin"``, ``"chair"`` ...).
        mesh: the main body.
        anchors: named points [3] in the local frame.
        params: the dimensions drawn for this sample (metres, or a variant name).
        bow: the bow of a bowed string instrument, in its own frame (frog at the origin,
            stick along +x), placed separately by the player's right hand.
    """

    name: str
    mesh: Mesh
    anchors: dict[str, np.ndarray]
    params: dict[str, float | str] = field(default_factory=dict)
    bow: Mesh | None = None


# --------------------------------------------------------------------------- primitives


def colour_faces(rgb: tuple[int, int, int], n: int) -> np.ndarray:
    """uint8 [n, 3]: ``rgb`` for each of n faces."""
    return np.tile(np.asarray(rgb, np.uint8), (n, 1))


def tube(
    path: np.ndarray,
    radius: float | np.ndarray,
    rgb: tuple[int, int, int],
    sides: int = 10,
    caps: bool = True,
) -> Mesh:
    """A tube swept along a polyline with parallel-transported frames.

    Args:
        path: [K, 3] centre line, K >= 2.
        radius: one radius or [K] radii (a flaring bell, a tapering cone).
        rgb: colour of every face.
        sides: vertices per ring.
        caps: close both ends with a fan.

    Returns:
        The mesh, K·sides (+2) vertices.
    """
    path = np.asarray(path, np.float64)
    k = len(path)
    radii = np.broadcast_to(np.asarray(radius, np.float64), (k,))
    tangents = np.gradient(path, axis=0)
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True) + 1e-12
    ref = np.array([0.0, 0.0, 1.0]) if abs(tangents[0, 2]) < 0.9 else np.array([1.0, 0, 0])
    normal = np.cross(tangents[0], ref)
    normal /= np.linalg.norm(normal)
    normals = np.empty_like(path)
    for i in range(k):
        normal = normal - normal.dot(tangents[i]) * tangents[i]
        normal /= np.linalg.norm(normal) + 1e-12
        normals[i] = normal
    binormals = np.cross(tangents, normals)
    theta = np.linspace(0, 2 * np.pi, sides, endpoint=False)
    ring = (
        np.cos(theta)[None, :, None] * normals[:, None]
        + np.sin(theta)[None, :, None] * (binormals[:, None])
    )
    vertices = (path[:, None] + radii[:, None, None] * ring).reshape(-1, 3)
    i = np.arange(k - 1)[:, None] * sides
    j = np.arange(sides)[None, :]
    a, b = i + j, i + (j + 1) % sides
    c, d = a + sides, b + sides
    faces = np.concatenate([np.stack([a, b, d], -1), np.stack([a, d, c], -1)]).reshape(-1, 3)
    if caps:
        n = len(vertices)
        vertices = np.vstack([vertices, path[0], path[-1]])
        first = np.stack([np.full(sides, n), (j[0] + 1) % sides, j[0]], -1)
        last = (k - 1) * sides
        second = np.stack([np.full(sides, n + 1), last + j[0], last + (j[0] + 1) % sides], -1)
        faces = np.vstack([faces, first, second])
    return Mesh(vertices, faces.astype(np.int64), colour_faces(rgb, len(faces)))


def loft(
    outline: np.ndarray,
    heights: np.ndarray,
    scales: np.ndarray,
    rgb: tuple[int, int, int],
    centre: np.ndarray | None = None,
) -> Mesh:
    """Rings of a closed 2D outline stacked along z, each scaled about ``centre``, capped.

    Args:
        outline: [M, 2] closed outline (last point not repeated), star-shaped from ``centre``.
        heights: [L] z of each ring, L >= 2.
        scales: [L] scale of each ring about ``centre`` (an arched top is a ring scaled < 1).
        rgb: colour.
        centre: [2] point the outline is star-shaped from (default: its mean).

    Returns:
        The closed mesh.
    """
    outline = np.asarray(outline, np.float64)
    centre = outline.mean(0) if centre is None else np.asarray(centre, np.float64)
    m = len(outline)
    rings = [
        np.column_stack([centre + s * (outline - centre), np.full(m, z)])
        for z, s in zip(heights, scales, strict=True)
    ]
    vertices = np.vstack(rings + [[*centre, heights[0]], [*centre, heights[-1]]])
    n_rings = len(rings)
    j = np.arange(m)
    faces = []
    for r in range(n_rings - 1):
        a, b = r * m + j, r * m + (j + 1) % m
        faces += [np.stack([a, b, b + m], -1), np.stack([a, b + m, a + m], -1)]
    bottom, top = n_rings * m, n_rings * m + 1
    faces.append(np.stack([np.full(m, bottom), (j + 1) % m, j], -1))
    last = (n_rings - 1) * m
    faces.append(np.stack([np.full(m, top), last + j, last + (j + 1) % m], -1))
    faces_arr = np.vstack(faces).astype(np.int64)
    return Mesh(vertices, faces_arr, colour_faces(rgb, len(faces_arr)))


def box(lo: np.ndarray, hi: np.ndarray, rgb: tuple[int, int, int]) -> Mesh:
    """An axis-aligned box between corners ``lo`` [3] and ``hi`` [3]."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    corners = np.array([[x, y, z] for z in (0, 1) for y in (0, 1) for x in (0, 1)], float)
    vertices = lo + corners * (hi - lo)
    faces = np.array(
        [
            [0, 2, 1],
            [1, 2, 3],
            [4, 5, 6],
            [5, 7, 6],
            [0, 1, 4],
            [1, 5, 4],
            [2, 6, 3],
            [3, 6, 7],
            [0, 4, 2],
            [2, 4, 6],
            [1, 3, 5],
            [3, 7, 5],
        ]
    )
    return Mesh(vertices, faces, colour_faces(rgb, 12))


def arc(centre: np.ndarray, u: np.ndarray, v: np.ndarray, a0: float, a1: float, n: int = 8):
    """[n, 3] points of a circular arc ``centre + cos(a)·u + sin(a)·v`` for a in [a0, a1]."""
    a = np.linspace(a0, a1, n)[:, None]
    return np.asarray(centre) + np.cos(a) * np.asarray(u) + np.sin(a) * np.asarray(v)


def profile_outline(length: float, stations: list[tuple[float, float]], n: int = 40):
    """Closed symmetric outline [2n, 2] from half-widths at stations (fraction of length)."""
    u, w = np.array(stations, float).T
    s = np.linspace(0.0, 1.0, n)
    uu = (1 - np.cos(np.pi * s)) / 2  # dense near both ends, where the outline turns fast
    half = np.maximum(PchipInterpolator(u, w)(uu), 0.0)
    right = np.column_stack([half, uu * length])
    left = np.column_stack([-half[::-1], uu[::-1] * length])
    return np.vstack([right[:-1], left[:-1]])


def uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """One draw in [lo, hi) as a Python float."""
    return float(rng.uniform(lo, hi))


def pick(rng: np.random.Generator, options: list) -> tuple[int, int, int]:
    """One of ``options`` (colours)."""
    return tuple(options[int(rng.integers(len(options)))])
