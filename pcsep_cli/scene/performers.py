"""Performers: a scene's clusters as :class:`Performer`, in the cloud's coordinates, in order.

:func:`find_performers` runs the whole pipeline on a scene (background, clusters, specks,
left-to-right order); :func:`performer_from_cloud` wraps a cloud of one performer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pcsep_cli.errors import SceneError
from pcsep_cli.scene.background import _analyse, _keep_mask, _xyz
from pcsep_cli.scene.clusters import (
    _cluster,
    _dense,
    _footprint_centre,
    _groups,
    _main_axes,
    _merge_close,
    _merge_dependent,
    _merge_stacked,
    _split_wide,
)
from pcsep_cli.scene.planes import _planar

if TYPE_CHECKING:  # pragma: no cover
    from pcsep_cli.io.pointcloud import PointCloud

__all__ = [
    "MIN_PERFORMER_POINTS",
    "Performer",
    "find_performers",
    "find_scene_performers",
    "performer_from_cloud",
]

MIN_PERFORMER_POINTS = 50
"""Fewest points a performer can be seen with: :func:`find_performers` drops smaller clusters
as specks (a real scan of a person holds thousands), and a cloud passed as one performer is
held to the same bar."""
_TOO_FEW_HINT = (
    "a scan of a performer holds thousands of points: check that the file was exported whole "
    "and is not a selection or a subsample"
)


@dataclass(frozen=True, eq=False)
class Performer:
    """One cluster of a scene: a performer with their instrument, or a distractor.

    Attributes:
        points: float64 ``[M, 3]`` in the cloud's coordinates.
        rgb: uint8 ``[M, 3]`` colours, or ``None`` when the cloud has none.
        position: float64 ``[3]``, the centre of the footprint on the floor: the middle of the
            points' x and y extents in the floor frame, at floor level, mapped back to the
            cloud's coordinates (on synthetic scenes it lies within 5 cm of the centre of the
            object's whole footprint, median, though the sensor sees only its front).
        bbox: ``(min [3], max [3])`` float64, axis-aligned in the cloud's coordinates.
        index: int64 ``[M]`` indices of the points in the input cloud.
        frame: float64 ``[4, 4]`` the scene's floor frame (see :func:`floor_frame`).
    """

    points: np.ndarray
    rgb: np.ndarray | None
    position: np.ndarray
    bbox: tuple[np.ndarray, np.ndarray]
    index: np.ndarray
    frame: np.ndarray

    def local_points(self) -> np.ndarray:
        """The points in the performer's canonical frame, float64 ``[M, 3]``.

        The floor frame's axes with the origin moved to :attr:`position`: the floor at
        ``z = 0``, z up, the footprint centred on ``x = y = 0``. Safe to cast to float32.
        """
        return _apply(self.frame, self.points) - _apply(self.frame, self.position[None])[0]


def find_performers(
    cloud: PointCloud,
    *,
    min_points: int = 50,
    min_extent: float = 0.2,
    eps: float = 0.08,
    min_height: float = 0.3,
    merge_gap: float = 0.3,
    split_width: float = 1.3,
    viewer: np.ndarray | None = None,
) -> list[Performer]:
    """Find the performers (and distractors) standing on the floor of a whole-scene cloud.

    Args:
        cloud: the scene; ``xyz`` float64 ``[N, 3]`` in metres, ``rgb`` uint8 ``[N, 3]`` or None.
        min_points: clusters with fewer points are specks and dropped.
        min_extent: clusters whose largest side (m) is shorter are specks and dropped.
        min_height: clusters whose top is lower (m above the floor) are dropped: far, noisy
            returns of the floor, cables, bags; no performer or prop is that low.
        eps: points closer than this (m) belong to the same cluster. Raise it for sparse
            scans (e.g. 0.15 for a 16-beam LiDAR at 10 m).
        merge_gap: clusters closer than this (m) are joined while the union shows no more
            heads than its larger part: occlusion shadows cut bodies and instruments into
            pieces. Two headless things standing on the floor stay apart, and so do a
            performer and a headless thing wider together than ``split_width`` (a piano).
        split_width: a cluster whose footprint is wider than this (m) and that shows two or
            more heads is split into one cluster per head.
        viewer: optional ``[3]`` position of the sensor or listener, in the cloud's coordinates.

    Returns:
        The clusters, left to right as seen by the viewer: by the angle at which the viewer
        sees them when ``viewer`` is given, otherwise by increasing x in the floor frame (a
        viewer on the -y side looking towards +y).

    Raises:
        ValueError: ``cloud.xyz`` is not ``[N, 3]``, or ``viewer`` is not ``[3]``.
        SceneError: fewer than ``min_points`` points, or nothing but floor, walls and specks.
    """
    if viewer is not None:
        viewer = np.asarray(viewer, dtype=np.float64)
        if viewer.shape != (3,):
            raise ValueError(f"viewer must be [3], got {list(viewer.shape)}")
    _enough_points(cloud, max(min_points, 3))
    xyz = _xyz(cloud)
    bg = _analyse(xyz)
    frame = bg.frame()
    q = xyz - bg.centre
    kept = np.flatnonzero(_keep_mask(q, bg))
    local = (q[kept] - bg.origin) @ bg.rotation.T
    dense = _dense(local, eps / 2)
    kept, local = kept[dense], local[dense]
    labels = _cluster(local, eps)
    labels = _merge_stacked(local, labels)
    labels = _merge_dependent(local, labels, 2.5 * eps)
    labels = _merge_close(local, labels, eps, merge_gap, split_width)
    labels = _split_wide(local, labels, eps, split_width)

    performers: list[tuple[float, Performer]] = []
    rgb = getattr(cloud, "rgb", None)
    for members in _groups(labels) if len(labels) else []:
        pts = local[members]
        if (
            len(members) < min_points
            or np.ptp(pts, axis=0).max() < min_extent
            or pts[:, 2].max() < min_height
            or _background(pts)
        ):
            continue
        index = kept[members].astype(np.int64)
        foot = _footprint_centre(pts)
        points = xyz[index]
        performer = Performer(
            points=points,
            rgb=None if rgb is None else rgb[index],
            position=bg.rotation.T @ foot + bg.origin + bg.centre,
            bbox=(points.min(axis=0), points.max(axis=0)),
            index=index,
            frame=frame,
        )
        performers.append((float(foot[0]), performer))
    if not performers:
        raise SceneError(
            "no performer found: the cloud holds only a floor/walls or specks",
            path=getattr(cloud, "source", None),
            hint=_units_hint(cloud) or "pass one cloud per performer, or check --units",
        )
    if viewer is not None:
        return _left_to_right([p for _, p in performers], viewer, frame)
    return [p for _, p in sorted(performers, key=lambda item: item[0])]


TALLEST = 2.9
"""m: no performer's cluster reaches higher above the floor (the tallest in pcsep's synthetic
scenes: 2.56 m, a trombone's slide raised); a cluster that does is wall, curtain or stand."""
TALLEST_SPAN = 2.4
"""m: no performer's cluster spans more from its lowest to its highest points (0.5 and 99.5 %
quantiles; 1.93 m at most over 376 performers of whole-room validation scenes, where 29 strips
of wall and 22 light stands, loudspeakers on poles and wall pieces spanned more). Measured from
the cluster's own feet, so a performer on a riser is not taller for it."""
LONGEST = 3.8
"""m: no performer's footprint is longer (a grand piano with its bench and player: 3.1 m)."""


def _background(pts: np.ndarray) -> bool:
    """Whether a cluster (floor frame) cannot be a performer: it rises above :data:`TALLEST`
    or spans more than :data:`TALLEST_SPAN` from its own lowest points (a strip of wall, a
    light stand), its footprint is longer than :data:`LONGEST` (a piece of wall another view
    left behind, a row of seats), or it is a flat upright panel: at least 1.2 m wide and
    1.5 m tall (an upright piano seen from behind, 1.1-1.35 m, is as flat), 90 % of it
    within 6 cm of one plane, every 40 cm tile of it on that plane
    (:func:`~pcsep_cli.scene.planes._planar`; a seated player seen from one side can pass
    the tile test alone, not the thickness)."""
    if len(pts) < 50:
        return False
    low, top = np.quantile(pts[:, 2], [0.005, 0.995])
    if top > TALLEST or top - low > TALLEST_SPAN:
        return True
    along, across = _main_axes(pts)
    lo, hi = np.quantile(along, [0.02, 0.98])
    if hi - lo > LONGEST:
        return True
    if np.ptp(pts[:, 2]) < 1.5 or hi - lo < 1.2:
        return False
    thin_lo, thin_hi = np.quantile(across, [0.05, 0.95])
    return bool(thin_hi - thin_lo < 0.12 and _planar(pts, along, pts[:, 2]))


def performer_from_cloud(cloud: PointCloud, *, eps: float = 0.08) -> Performer:
    """Wrap a cloud that holds one performer as a :class:`Performer`.

    Use this when the user passes one cloud per performer (the paper's setting). The floor,
    walls and ceiling are removed when the cloud has them, and flying pixels; the performer is
    the largest cluster with every other cluster whose footprint comes within 0.5 m of it (an
    instrument or a chair cut off by occlusion). Far specks of floor noise are left out.

    Args:
        cloud: one performer; ``xyz`` float64 ``[N, 3]``.
        eps: points closer than this (m) belong to the same cluster.

    Raises:
        ValueError: ``cloud.xyz`` is not ``[N, 3]``.
        SceneError: the cloud holds fewer than :data:`MIN_PERFORMER_POINTS` points, or fewer
            are left once the floor and walls are removed.
    """
    _enough_points(cloud, MIN_PERFORMER_POINTS)
    xyz = _xyz(cloud)
    bg = _analyse(xyz)
    q = xyz - bg.centre
    index = np.flatnonzero(_keep_mask(q, bg))
    local = (q[index] - bg.origin) @ bg.rotation.T
    dense = _dense(local, eps / 2)
    index, local = index[dense], local[dense]
    if index.size < MIN_PERFORMER_POINTS:
        raise SceneError(
            f"no performer found: {index.size} points are left once the floor and walls are "
            f"removed, a performer needs at least {MIN_PERFORMER_POINTS}",
            path=getattr(cloud, "source", None),
            hint=_units_hint(cloud) or "crop the cloud to the performer, or check --units",
        )
    labels = _merge_stacked(local, _cluster(local, eps))
    groups = sorted(_groups(labels), key=len, reverse=True)
    lo, hi = local[groups[0], :2].min(axis=0) - 0.5, local[groups[0], :2].max(axis=0) + 0.5
    near = [g for g in groups if np.all(local[g, :2].max(axis=0) >= lo)
            and np.all(local[g, :2].min(axis=0) <= hi)]  # fmt: skip
    members = np.sort(np.concatenate(near))
    index, local = index[members].astype(np.int64), local[members]
    foot = _footprint_centre(local)
    points = xyz[index]
    rgb = getattr(cloud, "rgb", None)
    return Performer(
        points=points,
        rgb=None if rgb is None else rgb[index],
        position=bg.rotation.T @ foot + bg.origin + bg.centre,
        bbox=(points.min(axis=0), points.max(axis=0)),
        index=index,
        frame=bg.frame(),
    )


def _units_hint(cloud: PointCloud) -> str | None:
    """The units a cloud too big for a stage looks like, for the hint of "no performer"."""
    from pcsep_cli.io.pointcloud import units_warning

    return units_warning(cloud)


def _enough_points(cloud: PointCloud, least: int) -> None:
    """Refuse a cloud too small to hold a performer before any stage tries (with 1 or 2 points
    they failed on shapes; with a few dozen they found nothing and blamed the floor)."""
    shape = np.shape(getattr(cloud, "xyz", None))
    if len(shape) == 2 and shape[1] == 3 and shape[0] < least:
        raise SceneError(
            f"the cloud holds {shape[0]} point{'s' * (shape[0] != 1)}; a performer needs at "
            f"least {least}",
            path=getattr(cloud, "source", None),
            hint=_TOO_FEW_HINT,
        )


def _apply(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    return p @ t[:3, :3].T + t[:3, 3]


def _left_to_right(
    performers: list[Performer], viewer: np.ndarray, frame: np.ndarray
) -> list[Performer]:
    """Order by the angle under which ``viewer`` sees each performer, leftmost first."""
    eye = _apply(frame, viewer[None])[0, :2]
    rel = np.array([_apply(frame, p.position[None])[0, :2] for p in performers]) - eye
    look = rel.mean(axis=0)
    angle = np.arctan2(look[0] * rel[:, 1] - look[1] * rel[:, 0], rel @ look)
    return [performers[i] for i in np.argsort(-angle, kind="stable")]


def find_scene_performers(clouds: Sequence[PointCloud]) -> list[Performer]:
    """One cloud: the performers found in the scene, left to right; several clouds: one
    performer per cloud, in the order given (the paper's setting, no clustering).

    Raises:
        SceneError: a scene with no performer, or a cloud holding only floor and walls.
    """
    if len(clouds) == 1:
        return find_performers(clouds[0])
    return [performer_from_cloud(c) for c in clouds]
