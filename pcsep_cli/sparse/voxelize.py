"""Points → voxels, like torchsparse's ``sparse_quantize``, batched."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from pcsep_cli.sparse.keys import KeySpace

REDUCTIONS = ("mean", "first")
_COORD_LIMIT = 2**30


class Voxelized(NamedTuple):
    """What :func:`voxelize` returns.

    Attributes:
        coords: ``[M, 4]`` int32 (batch, x, y, z) of the occupied voxels, unique, sorted by
            (batch, z, y, x).
        feats: ``[M, C]`` one feature row per voxel.
        index: ``[M]`` int64, the first point (lowest index) that fell in each voxel.
        inverse: ``[N]`` int64, the voxel of each point: ``voxel_feats[inverse]`` scatters
            per-voxel values back onto the points.
    """

    coords: Tensor
    feats: Tensor
    index: Tensor
    inverse: Tensor


def voxelize(
    points: Tensor,
    voxel_size: float | tuple[float, float, float],
    features: Tensor | None = None,
    *,
    batch: Tensor | None = None,
    reduce: str = "mean",
) -> Voxelized:
    """Quantize points to voxels: ``floor(points / voxel_size)``, one row per occupied voxel.

    Args:
        points: ``[N, 3]`` floating point (x, y, z). Quantization runs in this dtype: pass
            float64 for georeferenced coordinates, or centre them first.
        voxel_size: edge length, one value or one per axis, in the points' units.
        features: ``[N, C]`` per-point features; ``None`` uses the points themselves.
        batch: ``[N]`` integer batch item of each point (≥ 0); ``None`` puts all in item 0.
        reduce: ``"mean"`` averages the features of the points in a voxel; ``"first"`` keeps
            those of the voxel's first point.

    Returns:
        :class:`Voxelized` ``(coords, feats, index, inverse)``.

    Raises:
        ValueError: bad shapes, non-finite points, voxel size ≤ 0, voxel coordinates beyond
            ±2**30, or an unknown ``reduce``.
    """
    if not isinstance(points, Tensor) or points.dim() != 2 or points.shape[1] != 3:
        shape = tuple(points.shape) if isinstance(points, Tensor) else type(points).__name__
        raise ValueError(f"points must be [N, 3], got {shape}")
    if not points.dtype.is_floating_point:
        raise ValueError(f"points must be floating point, got {points.dtype}")
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
    n = points.shape[0]
    sizes = (voxel_size,) * 3 if isinstance(voxel_size, int | float) else tuple(voxel_size)
    if len(sizes) != 3 or not all(float(s) > 0 for s in sizes):
        raise ValueError(f"voxel_size must be > 0 (one or three values), got {voxel_size!r}")
    feats_in = points if features is None else features
    if feats_in.dim() != 2 or feats_in.shape[0] != n:
        raise ValueError(f"features must be [{n}, C], got {tuple(feats_in.shape)}")
    if reduce == "mean" and not feats_in.dtype.is_floating_point:
        raise ValueError(f"reduce='mean' needs floating point features, got {feats_in.dtype}")
    if batch is None:
        batch = torch.zeros(n, dtype=torch.int64, device=points.device)
    elif batch.shape != (n,) or batch.dtype.is_floating_point:
        raise ValueError(f"batch must be [{n}] integers, got {tuple(batch.shape)} {batch.dtype}")
    if n == 0:
        empty = torch.empty(0, dtype=torch.int64, device=points.device)
        return Voxelized(
            torch.empty((0, 4), dtype=torch.int32, device=points.device),
            feats_in[:0],
            empty,
            empty,
        )
    if not bool(torch.isfinite(points).all()):
        raise ValueError("points hold NaN or infinite values; drop them before voxelizing")
    if int(batch.min()) < 0:
        raise ValueError("batch indices must be >= 0")
    scale = torch.tensor(sizes, dtype=points.dtype, device=points.device)
    grid = torch.floor(points / scale)
    if float(grid.abs().max()) >= _COORD_LIMIT:
        raise ValueError(
            f"voxel coordinates reach {float(grid.abs().max()):.3g}, beyond ±2**30: centre the "
            "points or use a larger voxel_size"
        )
    coords = torch.cat((batch.to(torch.int64).unsqueeze(1), grid.to(torch.int64)), dim=1)
    space = KeySpace.of(coords)
    uniq, inverse = torch.unique(space.encode(coords), sorted=True, return_inverse=True)
    m = uniq.numel()
    order = torch.arange(n, device=points.device)
    first = torch.full((m,), n, dtype=torch.int64, device=points.device)
    first = first.scatter_reduce(0, inverse, order, reduce="amin", include_self=True)
    if reduce == "first":
        feats = feats_in.index_select(0, first)
    else:
        sums = feats_in.new_zeros((m, feats_in.shape[1])).index_add_(0, inverse, feats_in)
        counts = torch.bincount(inverse, minlength=m).to(sums.dtype)
        feats = sums / counts.unsqueeze(1)
    return Voxelized(space.decode(uniq), feats, first, inverse)
