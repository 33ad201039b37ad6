"""Match the stems of the scene step to a dataset's performers and distractors.

``pcsep evaluate --scene`` lets the scene step find the performers in the whole cloud, as
``pcsep separate`` does. Each stem has the footprint centre of its cluster
(:attr:`~pcsep_cli.separate_types.Detection.position`); ``meta.json`` places each performer at
its floor point or at its instrument's centre. Stems are given to performers one to one by
horizontal (xy) distance with the Hungarian algorithm, only within :data:`MATCH_RADIUS`;
stems left over are then matched the same way to the visible distractors. A performer split
into two clusters thus gets one stem, and the other piece is spurious.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "MATCH_RADIUS",
    "SceneMatch",
    "match_meta",
    "match_nearest",
    "match_scene",
    "visible_distractors",
]

MATCH_RADIUS = 1.0  # m: meta positions may be an instrument's centre, not the floor point
_FAR = 1e9  # cost of a pair farther apart than the radius: never chosen over a real pair


def match_nearest(
    a: np.ndarray, b: np.ndarray, radius: float = MATCH_RADIUS
) -> list[tuple[int, int]]:
    """Pairs ``(i, j)`` of ``a`` and ``b`` points, one to one, within ``radius`` (xy only).

    Among the assignments with the most pairs within ``radius``, the one with the smallest
    total distance (the Hungarian algorithm, :func:`scipy.optimize.linear_sum_assignment`).

    Args:
        a: ``(N, 2+)`` positions (only x and y are used).
        b: ``(M, 2+)`` positions.
        radius: largest distance of a pair, metres.

    Returns:
        The pairs, sorted by ``i``.
    """
    from scipy.optimize import linear_sum_assignment

    a, b = _xy(a), _xy(b)
    if not len(a) or not len(b):
        return []
    dist = np.linalg.norm(a[:, None] - b[None], axis=-1)
    rows, cols = linear_sum_assignment(np.where(dist <= radius, dist, _FAR))
    return sorted((int(i), int(j)) for i, j in zip(rows, cols, strict=True) if dist[i, j] <= radius)


def _xy(points: np.ndarray) -> np.ndarray:
    arr = np.asarray(points, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 2))
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise ValueError(f"positions must be (N, 2) or (N, 3), got {arr.shape}")
    return arr[:, :2]


@dataclass(frozen=True)
class SceneMatch:
    """Which stem went to whom in one scene.

    Attributes:
        performer_stem: for each performer, the index of its stem, or None (missed).
        distractor_stem: for each distractor, the index of the stem matched to it, or None.
        spurious: indices of the stems matched to no performer (some may be on distractors).
    """

    performer_stem: list[int | None]
    distractor_stem: list[int | None]
    spurious: list[int]

    @property
    def detected(self) -> int:
        """Performers with a stem."""
        return sum(s is not None for s in self.performer_stem)

    @property
    def distractors_with_stem(self) -> int:
        """Distractors a stem was matched to."""
        return sum(s is not None for s in self.distractor_stem)


def match_scene(
    stems: np.ndarray,
    performers: np.ndarray,
    distractors: np.ndarray,
    radius: float = MATCH_RADIUS,
) -> SceneMatch:
    """Give stems to performers, then the stems left over to distractors (module docstring).

    Args:
        stems: ``(S, 2+)`` positions of the stems' clusters.
        performers: ``(P, 2+)`` positions of the performers (``meta.json``).
        distractors: ``(D, 2+)`` positions of the visible distractors.
        radius: largest distance of a match, metres.

    Returns:
        The :class:`SceneMatch`.
    """
    to_performer = dict((j, i) for i, j in match_nearest(stems, performers, radius))
    spurious = sorted(set(range(len(stems))) - set(to_performer.values()))
    left = _xy(stems)[spurious]
    to_distractor = {j: spurious[i] for i, j in match_nearest(left, distractors, radius)}
    return SceneMatch(
        performer_stem=[to_performer.get(j) for j in range(len(performers))],
        distractor_stem=[to_distractor.get(j) for j in range(len(distractors))],
        spurious=spurious,
    )


def visible_distractors(meta: dict) -> list[dict]:
    """A ``meta.json``'s distractors the sensor saw (one it never saw is not in the cloud)."""
    return [d for d in meta.get("distractors", []) if d.get("points", 1) > 0]


def match_meta(stems: np.ndarray, meta: dict, radius: float = MATCH_RADIUS) -> SceneMatch:
    """:func:`match_scene` of stem positions ``(S, 2+)`` against a ``meta.json``'s performers
    and :func:`visible_distractors`."""
    return match_scene(
        stems,
        np.array([p["position"] for p in meta.get("performers", [])], dtype=np.float64),
        np.array([d["position"] for d in visible_distractors(meta)], dtype=np.float64),
        radius,
    )
