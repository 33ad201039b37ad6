"""Dense references for the sparse ops: scatter voxels into a grid, run F.conv3d, read back.

The grid is laid out (B, C, X, Y, Z). A sparse conv with kernel k, stride s, dilation d
reads inputs ``o·s + (i - (k-1)//2)·d`` for output ``o``; ``F.conv3d`` with padding 0 reads
``j·s + i·d`` for dense output ``j``. Placing voxel ``c`` at grid index ``c - base`` with
``base = s·(q - m) - (k-1)//2·d`` (``q = floor(min / s)``, ``m`` a margin of outputs) makes
dense output ``j`` the sparse output ``o = j + q - m``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def random_voxels(
    n: int, batch: int, low: int, high: int, seed: int, empty_items: tuple[int, ...] = ()
) -> Tensor:
    """Unique random coords ``[M, 4]`` int32 in ``[low, high)``; ``empty_items`` get none."""
    g = torch.Generator().manual_seed(seed)
    xyz = torch.randint(low, high, (n * batch, 3), generator=g)
    b = torch.randint(0, batch, (n * batch, 1), generator=g)
    keep = ~torch.isin(b[:, 0], torch.tensor(empty_items, dtype=torch.int64))
    coords = torch.unique(torch.cat((b, xyz), 1)[keep], dim=0)
    perm = torch.randperm(coords.shape[0], generator=g)  # the engine must not need sorted rows
    return coords[perm].to(torch.int32)


def _place(b: Tensor, g: Tensor, feats: Tensor, batch: int, size: int | None = None) -> Tensor:
    """``[B, C, S, S, S]`` grid with ``feats [N, C]`` at batch ``b``, grid index ``g [N, 3]``."""
    size = int(g.max()) + 1 if size is None else size
    dense = feats.new_zeros((batch, size, size, size, feats.shape[1]))
    dense = dense.index_put((b, g[:, 0], g[:, 1], g[:, 2]), feats)
    return dense.permute(0, 4, 1, 2, 3)


def dense_weight(w: Tensor, kernel: int) -> Tensor:
    """``[K, Cin, Cout]`` sparse kernel → ``[Cout, Cin, k, k, k]`` for F.conv3d on (X, Y, Z)."""
    cin, cout = w.shape[1], w.shape[2]
    if kernel**3 % 2 == 1:  # x fastest: index = ix + k·(iy + k·iz)
        return w.reshape(kernel, kernel, kernel, cin, cout).permute(4, 3, 2, 1, 0)
    return w.reshape(kernel, kernel, kernel, cin, cout).permute(4, 3, 0, 1, 2)  # z fastest


class Grid:
    """Placement of a sparse tensor's voxels in a dense grid for one conv setting."""

    def __init__(self, coords: Tensor, batch: int, kernel: int, stride: int, dilation: int):
        c0 = (kernel - 1) // 2
        lo = coords[:, 1:].long().min(0).values
        self.q = torch.div(lo, stride, rounding_mode="floor")
        self.m = -(-((kernel - 1 - c0) * dilation) // stride) + 1
        self.base = stride * (self.q - self.m) - c0 * dilation
        span = int((coords[:, 1:].long() - self.base).max()) + 1
        self.size = span + kernel * dilation + 2 * stride
        self.batch = batch

    def scatter(self, coords: Tensor, feats: Tensor) -> Tensor:
        """``[B, C, S, S, S]`` grid holding ``feats`` at ``coords`` (differentiable)."""
        g = coords[:, 1:].long() - self.base
        return _place(coords[:, 0].long(), g, feats, self.batch, self.size)

    def out_index(self, out_coords: Tensor) -> tuple[Tensor, ...]:
        """Dense-output indices of the sparse outputs ``out_coords`` (output resolution)."""
        j = out_coords[:, 1:].long() - (self.q - self.m)
        return out_coords[:, 0].long(), j[:, 0], j[:, 1], j[:, 2]


def dense_conv(
    coords: Tensor, feats: Tensor, weight: Tensor, batch: int, kernel: int, stride: int, dil: int
) -> tuple[Tensor, Grid]:
    """F.conv3d of the voxels, channels last: ``(out [B, X, Y, Z, Cout], grid)``.

    ``out[grid.out_index(out_coords)]`` is then ``[M, Cout]``.
    """
    grid = Grid(coords, batch, kernel, stride, dil)
    dense = grid.scatter(coords, feats)
    out = F.conv3d(dense, dense_weight(weight, kernel), stride=stride, dilation=dil)
    return out.permute(0, 2, 3, 4, 1), grid


def dense_support(coords: Tensor, batch: int, kernel: int, stride: int, dil: int) -> set:
    """Output voxels (b, x, y, z) whose receptive field holds at least one input."""
    grid = Grid(coords, batch, kernel, stride, dil)
    occ = grid.scatter(coords, torch.ones(coords.shape[0], 1))
    hits = F.conv3d(occ, torch.ones(1, 1, kernel, kernel, kernel), stride=stride, dilation=dil)
    nz = (hits[:, 0] > 0.5).nonzero()
    shift = (grid.q - grid.m).tolist()
    return {(int(b), x + shift[0], y + shift[1], z + shift[2]) for b, x, y, z in nz.tolist()}


def dense_conv_transpose(
    fine: Tensor, coarse: Tensor, feats: Tensor, weight: Tensor, batch: int, k: int, s: int, d: int
) -> Tensor:
    """Transposed conv back onto ``fine`` coords: ``[N_fine, Cout]`` from coarse ``feats``.

    ``F.conv_transpose3d`` writes coarse ``j`` to fine grid index ``j·s + i·d``; the coarse
    voxel ``o`` sits at ``j = o - jbase`` and the fine voxel ``c`` at ``c - jbase·s +
    (k-1)//2·d``.
    """
    c0 = (k - 1) // 2
    # One coarse cell of margin below every fine voxel, parented or not.
    low_fine = torch.div(fine[:, 1:].long().min(0).values, s, rounding_mode="floor")
    jbase = torch.minimum(coarse[:, 1:].long().min(0).values, low_fine) - 1
    dense = _place(coarse[:, 0].long(), coarse[:, 1:].long() - jbase, feats, batch)
    w = dense_weight(weight, k).transpose(0, 1)  # conv_transpose3d wants [Cin, Cout, ...]
    out = F.conv_transpose3d(dense, w, stride=s, dilation=d)
    gf = fine[:, 1:].long() - jbase * s + c0 * d
    # Fine voxels no coarse voxel reaches (k < s) may lie past the dense output: they get 0.
    extra = max(0, int(gf.max()) + 1 - min(out.shape[2:]))
    out = F.pad(out, (0, extra) * 3).permute(0, 2, 3, 4, 1)
    return out[fine[:, 0].long(), gf[:, 0], gf[:, 1], gf[:, 2]]
