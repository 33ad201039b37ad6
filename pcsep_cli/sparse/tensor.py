"""SparseTensor: voxel coordinates, their features, and the kernel maps built on them.

Conventions (torchsparse 2.1): ``coords`` int32 ``[N, 4]`` = (batch, x, y, z), batch first;
``feats`` ``[N, C]``; ``stride`` is the tensor's cumulative stride (x, y, z) and ``coords``
are expressed at that resolution, i.e. already divided by the stride: a voxel at stride 2
with coords (b, 3, 0, -1) covers the stride-1 voxels x ∈ {6, 7}, y ∈ {0, 1}, z ∈ {-2, -1}.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import torch
from torch import Tensor

Triple = tuple[int, int, int]

_COORD_LIMIT = 2**30
_INT_DTYPES = (torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64)


def as_triple(value: int | tuple[int, ...] | list[int], name: str) -> Triple:
    """``3`` → ``(3, 3, 3)``; a 3-tuple is checked and returned as ints.

    Raises:
        ValueError: not one or three positive integers.
    """
    vals = (value,) * 3 if isinstance(value, int) else tuple(value)
    if len(vals) != 3 or not all(isinstance(v, int) and v >= 1 for v in vals):
        raise ValueError(f"{name} must be a positive int or three of them, got {value!r}")
    return (int(vals[0]), int(vals[1]), int(vals[2]))


class KernelCache:
    """Kernel maps and derived coordinates shared by every tensor of one network pass.

    A :class:`SparseTensor` built by hand gets a fresh cache; tensors that layers derive from
    it share that cache, so a kernel map is built once per (coordinates, stride, kernel,
    dilation) and reused by every layer that sees those coordinates. Entries are keyed by
    the identity of the coords tensor and hold a reference to it, so an id cannot be recycled
    while its entry lives.
    """

    def __init__(self) -> None:
        self._entries: dict[Hashable, tuple[Tensor, Any]] = {}
        # torchsparse keeps its own maps; when that engine runs, its cache object lives here.
        self.torchsparse: Any = None

    def get(self, kind: str, coords: Tensor, *key: Hashable) -> Any:
        """Cached value for ``(kind, coords, *key)``, or ``None``."""
        entry = self._entries.get((kind, id(coords), *key))
        if entry is None or entry[0] is not coords:
            return None
        return entry[1]

    def put(self, kind: str, coords: Tensor, *key: Hashable, value: Any) -> None:
        """Store ``value`` for ``(kind, coords, *key)``."""
        self._entries[(kind, id(coords), *key)] = (coords, value)

    def __len__(self) -> int:
        return len(self._entries)


class SparseTensor:
    """Features on a sparse set of voxels, batched.

    Args:
        coords: ``[N, 4]`` integer (batch, x, y, z); stored as int32. No voxel may appear
            twice (:func:`pcsep_cli.sparse.voxelize` merges points that share one).
        feats: ``[N, C]`` floating point, on the same device as ``coords``.
        stride: cumulative stride of the tensor, int or (sx, sy, sz).
        batch_size: number of batch items; defaults to ``max(batch) + 1`` (pass it when the
            last items are empty, so pooled outputs keep one row per item).
        cache: kernel-map cache to share; a fresh one when ``None``.

    Raises:
        ValueError: shapes, dtypes or values that do not fit the conventions above.
    """

    __slots__ = ("coords", "feats", "stride", "batch_size", "cache")

    def __init__(
        self,
        coords: Tensor,
        feats: Tensor,
        stride: int | tuple[int, ...] = 1,
        *,
        batch_size: int | None = None,
        cache: KernelCache | None = None,
    ) -> None:
        if not isinstance(coords, Tensor) or coords.dim() != 2 or coords.shape[1] != 4:
            shape = tuple(coords.shape) if isinstance(coords, Tensor) else type(coords).__name__
            raise ValueError(f"coords must be [N, 4] (batch, x, y, z), got {shape}")
        if coords.dtype not in _INT_DTYPES:
            raise ValueError(f"coords must hold integers, got {coords.dtype}")
        if not isinstance(feats, Tensor) or feats.dim() != 2 or feats.shape[0] != coords.shape[0]:
            shape = tuple(feats.shape) if isinstance(feats, Tensor) else type(feats).__name__
            raise ValueError(f"feats must be [N, C] with N = {coords.shape[0]}, got {shape}")
        if not feats.dtype.is_floating_point:
            raise ValueError(f"feats must be floating point, got {feats.dtype}")
        if feats.device != coords.device:
            raise ValueError(f"coords on {coords.device} but feats on {feats.device}")
        if coords.shape[0]:
            lo, hi = int(coords.min()), int(coords.max())
            if int(coords[:, 0].min()) < 0:
                raise ValueError("batch indices (coords[:, 0]) must be >= 0")
            if lo < -_COORD_LIMIT or hi >= _COORD_LIMIT:
                raise ValueError(f"coords must lie within ±2**30, got [{lo}, {hi}]")
        n_items = int(coords[:, 0].max()) + 1 if coords.shape[0] else 0
        if batch_size is None:
            batch_size = n_items
        elif batch_size < n_items:
            raise ValueError(f"batch_size {batch_size} < largest batch index + 1 ({n_items})")
        self.coords = coords.to(torch.int32).contiguous()
        self.feats = feats
        self.stride = as_triple(stride, "stride")
        self.batch_size = int(batch_size)
        self.cache = KernelCache() if cache is None else cache

    @classmethod
    def _derived(
        cls, coords: Tensor, feats: Tensor, stride: Triple, batch_size: int, cache: KernelCache
    ) -> SparseTensor:
        """A tensor made by a layer: inputs are trusted, no checks, shared cache."""
        out = cls.__new__(cls)
        out.coords, out.feats, out.stride = coords, feats, stride
        out.batch_size, out.cache = batch_size, cache
        return out

    def replace(self, feats: Tensor) -> SparseTensor:
        """Same voxels (and cache), new ``feats [N, C']``.

        Raises:
            ValueError: ``feats`` has another number of rows.
        """
        if feats.dim() != 2 or feats.shape[0] != self.coords.shape[0]:
            raise ValueError(f"feats must be [{self.coords.shape[0]}, C], got {tuple(feats.shape)}")
        return SparseTensor._derived(self.coords, feats, self.stride, self.batch_size, self.cache)

    def to(self, device: torch.device | str) -> SparseTensor:
        """Move coords and feats (a new cache: maps live on one device)."""
        return SparseTensor(
            self.coords.to(device),
            self.feats.to(device),
            self.stride,
            batch_size=self.batch_size,
        )

    @property
    def num_points(self) -> int:
        """N, the number of voxels."""
        return int(self.coords.shape[0])

    @property
    def num_channels(self) -> int:
        """C, the feature width."""
        return int(self.feats.shape[1])

    def __repr__(self) -> str:
        return (
            f"SparseTensor(points={self.num_points}, channels={self.num_channels}, "
            f"stride={self.stride}, batch_size={self.batch_size}, device={self.feats.device})"
        )
