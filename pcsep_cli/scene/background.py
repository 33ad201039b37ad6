"""The background of a scene: its planes, the floor frame, and the points beyond the planes.

A least-squares fit on 40,000 points sharpens each plane of :mod:`pcsep_cli.scene.planes`; the
tolerance around it is measured per 1 m tile, as noise grows with range. Everything runs in
float64 after subtracting the cloud's median, so georeferenced coordinates (~5e6 m) lose
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pcsep_cli.scene.planes import (
    _BAND,
    _FIT_SAMPLE,
    _SAMPLE,
    _TOL_MIN,
    Plane,
    _basis,
    _find_ceiling,
    _find_floor,
    _find_walls,
    _Fit,
    _rotation_to_z,
)

if TYPE_CHECKING:  # pragma: no cover
    from pcsep_cli.io.pointcloud import PointCloud

__all__ = ["floor_frame", "remove_background"]

_TILE = 1.0  # m, plane noise is measured per tile: it grows with range


@dataclass(frozen=True)
class _Background:
    """Planes of a scene, in coordinates centred on ``centre`` (internal)."""

    centre: np.ndarray  # [3] subtracted before any other arithmetic
    floor: _Fit | None  # normal up
    others: list[_Fit]  # walls and ceiling, normals inwards: everything beyond is background
    platforms: list[_Fit]  # stage tops: only their surface is background
    rotation: np.ndarray  # [3, 3] floor normal -> +z
    origin: np.ndarray  # [3] centred coordinates of the floor frame's origin
    tolerances: dict[int, _TileTolerance]  # id(fit) -> its tolerance per tile

    def frame(self) -> np.ndarray:
        t = np.eye(4)
        t[:3, :3] = self.rotation
        t[:3, 3] = -self.rotation @ (self.centre + self.origin)
        return t

    def plane(self, n: np.ndarray, h: float) -> Plane:
        return n.copy(), float(-(h + n @ self.centre))


def floor_frame(cloud: PointCloud) -> np.ndarray:
    """Rigid transform from the cloud's coordinates to its floor frame.

    In the floor frame the floor is the plane ``z = 0``, z points up (away from the floor), the
    origin lies on the floor under the cloud's median, and x, y are the cloud's own x, y turned
    by the smallest rotation that levels the floor (so "left to right" keeps its meaning). When
    no floor is found (a cloud of one performer with its floor cropped), the cloud's z is taken
    as up and the lowest points (0.5th percentile) as floor level.

    Args:
        cloud: the scene; ``xyz`` float64 ``[N, 3]``, N ≥ 3.

    Returns:
        float64 ``[4, 4]``: ``p_floor = T[:3, :3] @ p + T[:3, 3]``.

    Raises:
        ValueError: ``cloud.xyz`` is not ``[N, 3]`` with N ≥ 3.
    """
    return _analyse(_xyz(cloud)).frame()


def remove_background(cloud: PointCloud) -> tuple[np.ndarray, Plane | None, list[Plane]]:
    """Mask out the floor, walls and ceiling with everything beyond them, and stage tops.

    Walls are vertical planes that bound the cloud and rise at least 1.5 m; a ceiling is a
    horizontal plane at least 2.2 m above the floor with nothing above it; a stage (riser,
    podium) is a horizontal plane as large as the floor up to 1.2 m above it: its top surface
    is removed so the performers standing on it come apart.

    Args:
        cloud: the scene; ``xyz`` float64 ``[N, 3]``.

    Returns:
        ``(keep, floor, walls)``: ``keep`` bool ``[N]``, true for points of the foreground;
        ``floor`` the floor plane or ``None`` when there is none; ``walls`` the other planes:
        vertical boundaries, then the ceiling, then stage tops (normals point into the scene).

    Raises:
        ValueError: ``cloud.xyz`` is not ``[N, 3]`` with N ≥ 3.
    """
    xyz = _xyz(cloud)
    bg = _analyse(xyz)
    keep = _keep_mask(xyz - bg.centre, bg)
    floor = None if bg.floor is None else bg.plane(bg.floor[0], bg.floor[1])
    return keep, floor, [bg.plane(n, h) for n, h, _ in bg.others + bg.platforms]


def _xyz(cloud: PointCloud) -> np.ndarray:
    xyz = getattr(cloud, "xyz", None)
    if not isinstance(xyz, np.ndarray) or xyz.ndim != 2 or xyz.shape[1] != 3 or len(xyz) < 3:
        shape = list(xyz.shape) if isinstance(xyz, np.ndarray) else type(xyz).__name__
        raise ValueError(f"cloud.xyz must be [N, 3] with N >= 3, got {shape}")
    return np.asarray(xyz, dtype=np.float64)


def _analyse(xyz: np.ndarray) -> _Background:
    """Floor, walls and ceiling of a cloud (planes in median-centred coordinates)."""
    rng = np.random.default_rng(0)  # deterministic: the same cloud gives the same performers
    # Votes use a small sample, least-squares fits a larger one: both are plenty for planes of
    # a few square metres, and the work no longer grows with the cloud.
    shuffled = rng.permutation(len(xyz))[:_FIT_SAMPLE]
    centre = np.median(xyz[shuffled[:_SAMPLE]], axis=0)
    qf = xyz[shuffled] - centre
    qs = qf[:_SAMPLE]
    found = _find_floor(qf, qs)
    if found is None:
        origin_h = float(np.quantile(qs[:, 2], 0.005))
        return _Background(centre, None, [], [], np.eye(3), np.array([0.0, 0.0, origin_h]), {})
    floor, platforms = found
    others = _find_walls(xyz, centre, qf, qs, floor) + _find_ceiling(qf, qs, floor)
    rotation = _rotation_to_z(floor[0])
    tolerances = {id(f): _tile_tolerance(qf, f) for f in [floor, *others]}
    tolerances |= {id(f): _tile_tolerance(qf, f, (f[1] - floor[1]) / 2) for f in platforms}
    return _Background(centre, floor, others, platforms, rotation, floor[0] * floor[1], tolerances)


def _keep_mask(q: np.ndarray, bg: _Background) -> np.ndarray:
    keep = np.ones(len(q), dtype=bool)
    for plane in ([bg.floor] if bg.floor is not None else []) + bg.others:
        res, tol = bg.tolerances[id(plane)].apply(q, plane)
        keep &= res > tol
    for plane in bg.platforms:
        res, tol = bg.tolerances[id(plane)].apply(q, plane)
        keep &= np.abs(res) > tol
    return keep


@dataclass(frozen=True)
class _TileTolerance:
    """How far from a plane its points may lie, per 1 m tile (depth noise grows with range)."""

    e1: np.ndarray  # [3] in-plane axes of the tiles
    e2: np.ndarray
    lo: np.ndarray  # [2] in-plane coordinates of the first tile's corner
    grid: np.ndarray  # [U, V] tolerance (m) per tile
    default: float  # outside the grid

    def apply(self, q: np.ndarray, plane: _Fit) -> tuple[np.ndarray, np.ndarray]:
        """Signed distances ``[N]`` of ``q [N, 3]`` to ``plane`` and the tolerance ``[N]``."""
        n, h, _ = plane
        res = q @ n - h
        tol = np.full(len(q), self.default)
        band = np.flatnonzero(np.abs(res) < _BAND)
        uv = np.stack([q[band] @ self.e1, q[band] @ self.e2], axis=1)
        tile = np.floor((uv - self.lo) / _TILE).astype(np.int64)
        inside = np.all((tile >= 0) & (tile < self.grid.shape), axis=1)
        tol[band[inside]] = self.grid[tile[inside, 0], tile[inside, 1]]
        return res, tol


def _tile_tolerance(q: np.ndarray, plane: _Fit, reach: float = _BAND) -> _TileTolerance:
    """4 σ per tile, σ from the points just behind the plane (nothing stands there).

    Tiles with fewer than 8 such points take the plane's own σ; every tolerance lies within
    [:data:`_TOL_MIN`, :data:`_BAND`].
    """
    n, h, sigma = plane
    default = min(max(4 * sigma, _TOL_MIN), _BAND)
    e1, e2 = _basis(n)
    res = q @ n - h
    band = np.abs(res) < reach
    uv = np.stack([q[band] @ e1, q[band] @ e2], axis=1)
    if len(uv) == 0:
        return _TileTolerance(e1, e2, np.zeros(2), np.full((1, 1), default), default)
    lo = uv.min(axis=0)
    tile = np.floor((uv - lo) / _TILE).astype(np.int64)
    grid = np.full(tuple(tile.max(axis=0) + 1), default)
    behind = res[band] < 0
    key = tile[behind, 0] * grid.shape[1] + tile[behind, 1]
    dist = -res[band][behind]
    order = np.lexsort((dist, key))
    key, dist = key[order], dist[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, int)
    counts = np.diff(np.r_[starts, len(key)])
    ok = counts >= 8
    medians = dist[starts[ok] + counts[ok] // 2]
    grid.flat[key[starts[ok]]] = np.clip(4 * 1.4826 * medians, _TOL_MIN, _BAND)
    return _TileTolerance(e1, e2, lo, grid, default)
