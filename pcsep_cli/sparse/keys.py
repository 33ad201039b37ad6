"""Voxel coordinates packed into sortable int64 keys.

A key is a mixed-radix number over (batch, z, y, x) with x fastest, so sorting keys sorts
voxels row by row along x, and the neighbour ``(dx, dy, dz)`` of any voxel is ``key + delta``
with one ``delta`` for all voxels. The radices are the extents actually present (plus a
margin for the kernel's reach), not fixed bit fields: a tensor may hold coordinates anywhere
in the int32 range as long as ``batches × span_x × span_y × span_z < 2**63``. That covers
±2**19 voxels on every axis for up to 7 batch items, and any batch size at realistic spans
(a performer at 1 cm spans a few hundred voxels).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

_KEY_LIMIT = 2**63 - 1


@dataclass(frozen=True)
class KeySpace:
    """A box of voxel coordinates and its key packing.

    Attributes:
        lo: smallest (batch, x, y, z) of the box.
        size: extent of the box along (batch, x, y, z); the keys lie in ``[0, prod(size))``.
    """

    lo: tuple[int, int, int, int]
    size: tuple[int, int, int, int]

    @classmethod
    def covering(cls, lo: list[int], hi: list[int], margin: int = 0) -> KeySpace:
        """The box holding every coordinate in ``[lo, hi]`` widened by ``margin`` on x, y, z.

        Args:
            lo: smallest (batch, x, y, z).
            hi: largest (batch, x, y, z).
            margin: voxels added on both sides of the spatial axes, so that neighbours up to
                this far away still have valid keys.

        Raises:
            ValueError: the box is too large to number with 63-bit keys.
        """
        low = (lo[0], lo[1] - margin, lo[2] - margin, lo[3] - margin)
        size = (
            hi[0] - lo[0] + 1,
            hi[1] - lo[1] + 1 + 2 * margin,
            hi[2] - lo[2] + 1 + 2 * margin,
            hi[3] - lo[3] + 1 + 2 * margin,
        )
        total = size[0] * size[1] * size[2] * size[3]
        if total > _KEY_LIMIT:
            raise ValueError(
                f"coordinates span {size[1]}x{size[2]}x{size[3]} voxels over {size[0]} batch "
                "items, too many to hash in 64 bits; use a coarser voxel size or put fewer "
                "clouds in one SparseTensor"
            )
        return cls(low, size)

    @classmethod
    def of(cls, coords: Tensor, margin: int = 0) -> KeySpace:
        """The box around ``coords [N,4]`` (N ≥ 1), widened by ``margin``."""
        lo = coords.min(dim=0).values.tolist()
        hi = coords.max(dim=0).values.tolist()
        return cls.covering(lo, hi, margin)

    def encode(self, coords: Tensor) -> Tensor:
        """Keys of ``coords [N,4]`` (batch, x, y, z), as int64 ``[N]``."""
        c = coords.to(torch.int64)
        _, sx, sy, sz = self.size
        b0, x0, y0, z0 = self.lo
        key = c[:, 0] - b0
        key = key * sz + (c[:, 3] - z0)
        key = key * sy + (c[:, 2] - y0)
        return key * sx + (c[:, 1] - x0)

    def decode(self, keys: Tensor) -> Tensor:
        """Coordinates ``[N,4]`` int32 (batch, x, y, z) of int64 ``keys [N]``."""
        _, sx, sy, sz = self.size
        b0, x0, y0, z0 = self.lo
        x = torch.remainder(keys, sx)
        rest = torch.div(keys, sx, rounding_mode="floor")
        y = torch.remainder(rest, sy)
        rest = torch.div(rest, sy, rounding_mode="floor")
        z = torch.remainder(rest, sz)
        b = torch.div(rest, sz, rounding_mode="floor")
        out = torch.stack((b + b0, x + x0, y + y0, z + z0), dim=1)
        return out.to(torch.int32)

    def delta(self, dx: int, dy: int, dz: int) -> int:
        """Key difference between a voxel and its neighbour ``(dx, dy, dz)``."""
        _, sx, sy, _ = self.size
        return dx + sx * (dy + sy * dz)
