"""Planes of a scene: the floor, stage tops standing on it, walls and a ceiling.

Everything here works in median-centred float64 coordinates ``q [N, 3]`` (see
:func:`pcsep_cli.scene.background._analyse`); a plane is a :data:`_Fit`
``(unit normal, offset h, noise sigma)`` with ``n · q = h``. The floor comes from per-point
normals (local PCA): their densest upward direction, then the lowest pile-up of points along
it. Walls and a ceiling come from point positions (the outermost dense slab in each direction,
tested for width, height, fill, planarity at the scale of 40 cm tiles, and no head-shaped bump
in its skyline): far returns of depth cameras are too noisy for normals.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from pcsep_cli.scene.clusters import _HEAD_MIN, _split_sorted

__all__ = ["MAX_TILT_DEG", "Plane"]

MAX_TILT_DEG = 40.0
"""Largest angle between the floor's normal and the cloud's z axis that is still a floor."""

Plane = tuple[np.ndarray, float]
"""``(normal [3], d)`` with ``normal · p + d = 0`` in the cloud's coordinates; the unit normal
points into the scene (up for the floor, inwards for walls, down for a ceiling)."""

_SAMPLE = 8000  # points used for normals and plane votes
_FIT_SAMPLE = 40000  # points used for least-squares plane fits
_NEIGHBOURS = 16
_FLAT = 0.05  # smallest PCA eigenvalue / sum below which a neighbourhood counts as planar
_BIN = 0.02  # m, offset histogram bins
_TOL_MIN = 0.02  # m, least tolerance of a plane
_BAND = 1.0  # m, widest tolerance of a plane (depth cameras' range noise reaches σ 0.2 m at 10 m)
_MIN_PLANE = 0.03  # fraction of the sample a floor/wall/ceiling must hold at least
_OUTSIDE = 0.03  # fraction of the sample allowed beyond a boundary plane (noise, reflections)
_WALL_HEIGHT = 1.0  # m, a vertical plane lower than this is furniture, not a wall
_WALL_WIDTH = 1.0  # m, nor one narrower than this
_CEILING_MIN = 2.2  # m above the floor
_PLATFORM_MAX = 1.2  # m, large horizontal planes up to this high above the floor are stages

_Fit = tuple[np.ndarray, float, float]  # (unit normal, offset h, noise sigma): n·q = h


def _normals(qs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit normals ``[S, 3]`` (sign arbitrary) and a planarity mask ``[S]`` by local PCA."""
    k = min(_NEIGHBOURS, len(qs))
    _, idx = cKDTree(qs).query(qs, k=k)
    nb = qs[idx] - qs[idx].mean(axis=1, keepdims=True)
    evals, evecs = np.linalg.eigh(nb.transpose(0, 2, 1) @ nb)
    flat = evals[:, 0] <= _FLAT * np.maximum(evals.sum(axis=1), 1e-12)
    return evecs[:, :, 0], flat


def find_peaks(x: np.ndarray, distance: int = 1) -> np.ndarray:
    """Indices of the local maxima of ``x``, as ``scipy.signal.find_peaks(x, distance=...)``.

    A flat top counts once, at its middle (rounded down); of two peaks closer than
    ``distance`` samples the higher stays. Written here because importing ``scipy.signal``
    takes ~0.5 s (it pulls in scipy.stats), a tenth of a minute's separation.
    """
    peaks = []
    i, last = 1, len(x) - 1
    while i < last:
        if x[i - 1] < x[i]:
            ahead = i + 1
            while ahead < last and x[ahead] == x[i]:
                ahead += 1
            if x[ahead] < x[i]:
                peaks.append((i + ahead - 1) // 2)
                i = ahead
        i += 1
    found = np.asarray(peaks, dtype=np.int64)
    if distance <= 1 or len(found) < 2:
        return found
    keep = np.ones(len(found), dtype=bool)
    for j in np.argsort(x[found])[::-1]:  # highest first, the order scipy uses
        if not keep[j]:
            continue
        near = np.abs(found - found[j]) < distance
        near[j] = False
        keep &= ~near
    return found[keep]


def _peaks(values: np.ndarray, min_count: int) -> list[tuple[float, int]]:
    """Offsets where ``values`` pile up: ``[(offset, count within ±2 bins)]``, by offset."""
    if values.size == 0:
        return []
    lo = values.min() - 3 * _BIN
    hist = np.bincount(((values - lo) / _BIN).astype(np.int64))
    smooth = np.convolve(hist, [1, 2, 3, 2, 1], mode="same") / 9
    found = find_peaks(np.pad(smooth, 1), distance=max(1, round(0.1 / _BIN)))
    out = []
    for b in found - 1:
        count = int(hist[max(0, b - 2) : b + 3].sum())
        if count >= min_count:
            out.append((lo + (b + 0.5) * _BIN, count))
    return out


def _refine(q: np.ndarray, n: np.ndarray, h: float, reach: float = _BAND) -> _Fit | None:
    """Least-squares plane on the points near ``n · q = h``: ``(normal, offset, sigma)``.

    Sigma, the noise, is read from the points behind the plane only (``n · q < h``, up to
    ``reach``): nothing stands there, so feet and chair legs cannot inflate it. A stage's top
    has the floor below it: its ``reach`` stops short of the floor. ``None`` when the fit
    turns more than 10 degrees away from ``n``: the points were no plane (a wall's top edge).
    """
    start = n
    tol, sigma = 0.15, 0.05
    for _ in range(3):
        near = q[np.abs(q @ n - h) < tol]
        if len(near) < 3:
            break
        mean = near.mean(axis=0)
        centred = near - mean
        _, vecs = np.linalg.eigh(centred.T @ centred)
        n = vecs[:, 0] if vecs[:, 0] @ n > 0 else -vecs[:, 0]
        h = float(mean @ n + np.median(centred @ n))
        res = q @ n - h
        behind = res[(res < 0) & (res > -reach)]
        if behind.size:
            sigma = 1.4826 * float(np.median(-behind))
        tol = min(max(3 * sigma, _TOL_MIN), _BAND)
    if n @ start < np.cos(np.radians(10)):
        return None
    return n, h, sigma


def _mode_direction(dirs: np.ndarray, start: np.ndarray, cone_deg: float = 10.0) -> np.ndarray:
    """Mean shift on the sphere: the densest direction of ``dirs`` near ``start``."""
    n = start / np.linalg.norm(start)
    cos = np.cos(np.radians(cone_deg))
    for _ in range(5):
        near = dirs[dirs @ n > cos]
        if len(near) == 0:
            break
        n = near.mean(axis=0)
        n /= np.linalg.norm(n)
    return n


def _find_floor(q: np.ndarray, qs: np.ndarray) -> tuple[_Fit, list[_Fit]] | None:
    """The floor, and platforms (stage, risers) standing on it; ``None`` without a floor.

    The floor's direction is the densest direction of the upward normals of planar
    neighbourhoods, else of all neighbourhoods (noisy scans have few planar ones), else the
    cloud's z; the floor is the lowest large pile-up of points along it with next to nothing
    below.
    """
    normals, flat = _normals(qs)
    cone = np.abs(normals[:, 2]) > np.cos(np.radians(MAX_TILT_DEG))
    min_count = max(20, int(_MIN_PLANE * len(qs)))
    z = np.array([0.0, 0.0, 1.0])
    for up_like in (flat & cone, cone, None):
        if up_like is None:
            n, on = z, np.ones(len(qs), dtype=bool)
        elif up_like.sum() < min_count:
            continue
        else:
            dirs = normals[up_like] * np.sign(normals[up_like, 2:3])
            n = _mode_direction(dirs, _mode_direction(dirs, z, MAX_TILT_DEG))
            on = np.zeros(len(qs), dtype=bool)
            on[np.flatnonzero(up_like)[dirs @ n > np.cos(np.radians(25))]] = True
        found = _lowest_plane(q, qs, n, on, min_count)
        if found is not None:
            return found
    return None


def _lowest_plane(
    q: np.ndarray, qs: np.ndarray, n: np.ndarray, on: np.ndarray, min_count: int
) -> tuple[_Fit, list[_Fit]] | None:
    """The lowest large pile-up along ``n`` of the points ``qs[on]``, and those above it."""
    peaks = _peaks(qs[on] @ n, min_count)
    large = [h for h, count in peaks if count >= 0.3 * max((c for _, c in peaks), default=0)]
    h_all = qs @ n
    for i, h in enumerate(large):  # lowest first
        floor = _refine(q, n, h)
        if floor is None or np.mean(h_all < floor[1] - max(0.1, 4 * floor[2])) > _OUTSIDE:
            continue
        stages = [p for p in large[i + 1 :] if p - h < _PLATFORM_MAX]
        fits = [_refine(q, floor[0], p, (p - h) / 2) for p in stages]
        return floor, [f for f in fits if f is not None]
    return None


def _basis(up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors spanning the plane normal to ``up``."""
    e1 = np.cross(up, [1.0, 0.0, 0.0] if abs(up[0]) < 0.9 else [0.0, 1.0, 0.0])
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(up, e1)


def _boundary_slab(
    proj: np.ndarray, counted: np.ndarray, min_count: int, outside: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per column of ``proj [S, A]``: the densest 25 cm slab with few points beyond it.

    Only points where ``counted [S]`` is true fill the slab; all count as beyond it (from
    0.4 m past its centre: far walls are noisy), where at most a fraction ``outside`` may lie.

    Returns ``(offset [A], count [A])``; count 0 where no slab holds ``min_count`` points.
    """
    lo = proj.min(axis=0)
    bins = ((proj - lo) / 0.05).astype(np.int64)
    nb = int(bins.max()) + 1
    flat = bins + nb * np.arange(proj.shape[1])
    size = nb * proj.shape[1]
    hist = np.bincount(flat[counted].ravel(), minlength=size).reshape(-1, nb)
    every = np.bincount(flat.ravel(), minlength=size).reshape(-1, nb)
    slab = ndimage.uniform_filter1d(hist.astype(np.float64), 5, axis=1, mode="constant") * 5
    beyond = np.cumsum(every[:, ::-1], axis=1)[:, ::-1]  # points in this bin and above
    beyond = np.concatenate([beyond[:, 8:], np.zeros((len(hist), 8))], axis=1)
    valid = (slab >= min_count) & (beyond <= outside * len(proj))
    score = np.where(valid, slab, 0.0)
    best = score.argmax(axis=1)
    return lo + (best + 0.5) * 0.05, score[np.arange(len(score)), best]


def _find_walls(
    xyz: np.ndarray, centre: np.ndarray, q: np.ndarray, qs: np.ndarray, floor: _Fit
) -> list[_Fit]:
    """Vertical planes bounding the cloud: the outermost dense slab in some direction.

    Found from point positions, not normals: far returns of depth cameras are too noisy
    (σ of 5–20 cm at 5–10 m) for local normals, but still pile up in a slab.
    """
    up, h_floor, _ = floor
    e1, e2 = _basis(up)
    qs = qs[: _SAMPLE // 2]
    heights = qs @ up - h_floor
    # Floor points do not fill a wall's slab (where the sensor's view ends, the floor's edge
    # looks like one) but count beyond it: a wall has no floor behind it, a piano does.
    above = heights > 0.15
    if above.sum() < 20:
        return []
    angles = np.radians(np.arange(0.0, 360.0, 2.0))
    dirs = np.cos(angles)[:, None] * e1 + np.sin(angles)[:, None] * e2
    # Walls may be mostly out of view: a 1 % share will do, nearly nothing beyond it.
    min_count = max(20, int(0.01 * len(qs)))
    offsets, score = _boundary_slab(qs @ dirs.T, above, min_count, 0.01)
    qs, heights = qs[above], heights[above]
    top = float(np.quantile(heights, 0.995))
    walls: list[_Fit] = []
    seen: list[int] = []
    for a in np.argsort(-score):
        if score[a] == 0:
            break
        if any(min((a - b) % 180, (b - a) % 180) < 15 for b in seen):
            continue  # within 30 degrees of a slab already judged: a room's corner
        seen.append(int(a))
        # Judged on the larger fitting sample: the vote's sample is too thin to fill a wall.
        heights_q = q @ up - h_floor
        on = (np.abs(q @ dirs[a] - offsets[a]) < 0.25) & (heights_q > 0.15)
        along, height = q[on] @ np.cross(up, dirs[a]), heights_q[on]
        low, high = np.quantile(height, [0.02, 0.98])
        # A wall rises to the top of the scan (which a sensor's field of view may cut low).
        tall = high >= max(0.6 * top, _WALL_HEIGHT) and low <= 0.5
        wide = np.ptp(np.quantile(along, [0.02, 0.98])) >= _WALL_WIDTH
        if not (tall and wide and _filled(along, height) and _planar(q[on], along, height)):
            continue
        # A performer at the edge of the view (no floor scanned behind them) can pass all the
        # above; their head gives them away: a bump in the slab's skyline. A wall's skyline is
        # where the sensor's view stops: level, sloping, or a valley, never a bump.
        slab = np.flatnonzero(np.abs(xyz @ dirs[a] - centre @ dirs[a] - offsets[a]) < 0.25)
        body = xyz[slab] - centre
        height = body @ up - h_floor
        if _has_bump(body[height > 0.15] @ np.cross(up, dirs[a]), height[height > 0.15]):
            continue
        fit = _refine(q, -dirs[a], -offsets[a])
        if fit is None or abs(fit[0] @ up) > np.sin(np.radians(5)):
            continue
        if not any(fit[0] @ w[0] > 0.98 and abs(fit[1] - w[1]) < 0.5 for w in walls):
            walls.append(fit)
        if len(walls) == 4:
            break
    return walls


def _has_bump(u: np.ndarray, v: np.ndarray, cell: float = 0.1) -> bool:
    """Whether the skyline of points (``v`` over ``u``) rises ≥ 15 cm above both sides: a head.

    The skyline is the highest ``v`` per ``cell`` of ``u``; the sides are 20–40 cm away.
    """
    if len(u) == 0:
        return False
    col = ((u - u.min()) / cell).astype(np.int64)
    sky = np.full(int(col.max()) + 1, -np.inf)
    np.maximum.at(sky, col, v)
    sky = np.where(np.isfinite(sky), sky, 0.0)
    padded = np.pad(sky, 4)
    left = np.maximum(padded[0:-8], padded[1:-7])
    right = np.maximum(padded[7:-1], padded[8:])
    bump = (sky >= _HEAD_MIN) & (sky - left >= 0.15) & (sky - right >= 0.15)
    return bool(bump.any())


def _planar(p: np.ndarray, u: np.ndarray, v: np.ndarray, cell: float = 0.4) -> bool:
    """Whether points ``p [M, 3]`` lie on one plane at the scale of ``cell`` tiles of (u, v).

    Per tile, the median distance to the least-squares plane: on a wall these agree to within
    their own standard error however noisy the sensor, while a body, arms and an instrument
    leave ±10–20 cm.
    """
    centred = p - p.mean(axis=0)
    _, vecs = np.linalg.eigh(centred.T @ centred)
    res = centred @ vecs[:, 0]
    tiles = np.floor(np.stack([u - u.min(), v - v.min()], axis=1) / cell).astype(np.int64)
    key = tiles[:, 0] * (int(tiles[:, 1].max()) + 1) + tiles[:, 1]
    order = np.argsort(key, kind="stable")
    medians, errors = [], []
    for tile in _split_sorted(res[order], key[order]):
        if len(tile) >= 8:
            m = float(np.median(tile))
            medians.append(m)
            errors.append(1.2533 * 1.4826 * float(np.median(np.abs(tile - m))) / np.sqrt(len(tile)))
    if len(medians) < 4:
        return False
    spread = float(np.median(np.abs(np.asarray(medians) - np.median(medians))))
    return spread < 0.03 + 2 * float(np.median(errors))


def _filled(u: np.ndarray, v: np.ndarray, cell: float = 0.25) -> bool:
    """Whether points cover half the cells of their box or more: a wall, not a row of people."""
    lo_u, hi_u = np.quantile(u, [0.02, 0.98])
    lo_v, hi_v = np.quantile(v, [0.02, 0.98])
    inside = (u >= lo_u) & (u <= hi_u) & (v >= lo_v) & (v <= hi_v)
    iu = ((u[inside] - lo_u) / cell).astype(np.int64)
    iv = ((v[inside] - lo_v) / cell).astype(np.int64)
    cells = (int(iu.max(initial=0)) + 1) * (int(iv.max(initial=0)) + 1)
    return np.unique(iu * (int(iv.max(initial=0)) + 1) + iv).size >= 0.5 * cells


def _find_ceiling(q: np.ndarray, qs: np.ndarray, floor: _Fit) -> list[_Fit]:
    """The outermost dense horizontal slab at least :data:`_CEILING_MIN` above the floor."""
    up, h_floor, _ = floor
    min_count = max(20, int(_MIN_PLANE * len(qs)))
    offset, score = _boundary_slab((qs @ up)[:, None], np.ones(len(qs), bool), min_count, _OUTSIDE)
    h = float(offset[0])
    if score[0] == 0 or h - h_floor < _CEILING_MIN:
        return []
    on = np.abs(qs @ up - h) < 0.25
    e1, e2 = _basis(up)
    u, v = qs[on] @ e1, qs[on] @ e2
    spans = [np.ptp(np.quantile(x, [0.02, 0.98])) for x in (u, v)]
    # Where the sensor's view stops, the walls' top edges pile up too: lines, not a plane.
    if min(spans) < _WALL_WIDTH or not _filled(u, v):
        return []
    fit = _refine(q, -up, -h)
    return [] if fit is None or fit[0] @ -up < np.cos(np.radians(5)) else [fit]


def _rotation_to_z(n: np.ndarray) -> np.ndarray:
    """Smallest rotation taking unit vector ``n`` to +z (Rodrigues)."""
    z = np.array([0.0, 0.0, 1.0])
    v, c = np.cross(n, z), float(n @ z)
    if np.linalg.norm(v) < 1e-12:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)
