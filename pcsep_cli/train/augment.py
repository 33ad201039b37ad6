"""Point-cloud preparation and augmentation for one performer.

Every cloud the network sees is in the same canonical frame: centred horizontally on its
median, floor at z = 0 (its lowest point). Training then perturbs it the way real scans
differ: any facing direction, a slightly tilted sensor, other body sizes, registration
offsets, sparser or noisier sensors, and a sensor that only sees one side.
"""

from __future__ import annotations

import numpy as np

from pcsep_cli.train.config import AugmentConfig


def thin(points: np.ndarray, cell: float) -> np.ndarray:
    """Keep one point per ``cell``-sized cube (the first seen), to bound memory and time.

    Args:
        points: ``(N, 3)``.
        cell: cube edge in metres.

    Returns:
        ``(M, 3)``, M <= N, same dtype.
    """
    keys = np.floor(points / cell).astype(np.int64)
    _, first = np.unique(keys, axis=0, return_index=True)
    return points[np.sort(first)]


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    x, y, z = axis
    c, s = np.cos(angle), np.sin(angle)
    k = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def augment(points: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Randomly perturb a canonical cloud.

    Args:
        points: ``(N, 3)`` float32 in the canonical frame (:func:`pcsep_cli.scene.canonical`).
        rng: random source.
        cfg: what to vary and by how much.

    Returns:
        ``(M, 3)`` float32, M <= N (at least a tenth of the points survive).
    """
    pts = points.astype(np.float64)
    n = len(pts)
    keep = np.ones(n, dtype=bool)
    if cfg.partial_prob and rng.random() < cfg.partial_prob:
        # A sensor at horizontal direction d sees the points on its side of the body.
        theta = rng.uniform(0, 2 * np.pi)
        d = np.array([np.cos(theta), np.sin(theta)])
        side = pts[:, :2] @ d
        keep &= side > rng.uniform(-0.15, 0.0)
    if cfg.dropout:
        keep &= rng.random(n) >= rng.uniform(0, cfg.dropout)
    if keep.sum() < max(1, n // 10):
        keep = rng.random(n) < 0.5
        keep[rng.integers(n)] = True
    pts = pts[keep]
    rot = np.eye(3)
    if cfg.rotate_z:
        rot = _rotation(np.array([0.0, 0.0, 1.0]), rng.uniform(0, 2 * np.pi))
    if cfg.tilt_deg:
        phi = rng.uniform(0, 2 * np.pi)
        tilt = np.deg2rad(rng.uniform(0, cfg.tilt_deg))
        rot = _rotation(np.array([np.cos(phi), np.sin(phi), 0.0]), tilt) @ rot
    pts = pts @ rot.T
    if cfg.scale:
        pts *= rng.uniform(1 - cfg.scale, 1 + cfg.scale)
    if cfg.translate:
        pts += rng.uniform(-cfg.translate, cfg.translate, size=3)
    if cfg.noise:
        pts += rng.normal(0, cfg.noise, size=pts.shape)
    return pts.astype(np.float32)
