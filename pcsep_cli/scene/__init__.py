"""Find the performers in a whole-scene point cloud.

Stages, each usable on its own:

1. :func:`floor_frame`: the floor (lowest large horizontal plane; scans may be tilted by up to
   :data:`MAX_TILT_DEG`) and a rigid transform to a frame with the floor at ``z = 0``, z up.
2. :func:`remove_background`: the floor, walls (large vertical planes that bound the cloud) and
   a ceiling, with everything beyond them, and the tops of stages standing on the floor.
3. :func:`find_performers`: flying pixels (stray returns along rays at objects' edges) are
   dropped; what is left is split into connected components (points closer than ``eps``, on
   voxels of ``eps / 2``); pieces are folded into their owner (slices stacked above one
   another; pieces too low for a head or not standing on the floor; pieces within
   ``merge_gap`` while the union shows one head), which grazing angles and occlusion leave
   behind; clusters too wide for one performer that show two or more heads are split along
   the body from each head; specks are dropped. Distractors (chairs, music stands, a
   conductor) come out as clusters too: the model calls them ``none``.

The floor comes from per-point normals (local PCA on 8,000 points): their densest upward
direction, then the lowest pile-up of points along it. Walls and a ceiling come from point
positions (the outermost dense slab in each direction, tested for width, height, fill,
planarity at the scale of 40 cm tiles, and no head-shaped bump in its skyline): far returns of
depth cameras are too noisy for normals. A least-squares fit on 40,000 points sharpens each
plane; the tolerance around it is measured per 1 m tile, as noise grows with range. Everything
runs in float64 after subtracting the cloud's median, so georeferenced coordinates (~5e6 m)
lose nothing. Only numpy and scipy are used: ~0.16 s of one core per 100,000 points.

When the user passes one cloud per performer (the paper's setting), :func:`performer_from_cloud`
wraps a whole cloud as one :class:`Performer` instead; :func:`find_scene_performers` picks between
the two by the number of clouds. :func:`canonical` puts a performer's points in the frame the
network reads (centred on the floor), for training and inference alike.

Modules, one per stage: :mod:`~pcsep_cli.scene.planes` (floor, stages, walls, ceiling),
:mod:`~pcsep_cli.scene.background` (floor frame, background mask),
:mod:`~pcsep_cli.scene.clusters` (flying pixels, components, merging, splitting) and
:mod:`~pcsep_cli.scene.performers` (the pipeline, specks, left-to-right order) and
:mod:`~pcsep_cli.scene.canonical` (the network's frame).
"""

from __future__ import annotations

from pcsep_cli.scene.background import floor_frame, remove_background
from pcsep_cli.scene.canonical import canonical
from pcsep_cli.scene.performers import (
    Performer,
    find_performers,
    find_scene_performers,
    performer_from_cloud,
)
from pcsep_cli.scene.planes import MAX_TILT_DEG, Plane

__all__ = [
    "MAX_TILT_DEG",
    "Performer",
    "Plane",
    "canonical",
    "find_performers",
    "find_scene_performers",
    "floor_frame",
    "performer_from_cloud",
    "remove_background",
]
