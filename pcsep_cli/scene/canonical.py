"""The canonical frame every performer cloud is read in, by training and inference alike.

A performer's points are centred horizontally on their median and put on the floor (lowest
point at ``z = 0``); the network never sees absolute positions, so a performer is the same
wherever it stands. Scene code and the separator use it; training augments clouds in it.
"""

from __future__ import annotations

import numpy as np


def canonical(points: np.ndarray) -> np.ndarray:
    """Centre a performer's points horizontally and put its lowest point at z = 0.

    Args:
        points: ``(N, 3)`` metres, z up (float64 for georeferenced input is fine).

    Returns:
        ``(N, 3)`` float32.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) == 0:
        raise ValueError(f"points must be (N, 3) with N >= 1, got {pts.shape}")
    centre = np.array([*np.median(pts[:, :2], axis=0), pts[:, 2].min()])
    return (pts - centre).astype(np.float32)
