"""Kernel maps: which input row feeds which output row through which kernel offset.

Offsets follow torchsparse 2.1 (``lookup_coords_kernel`` / ``get_kernel_offsets``): along an
axis of kernel size ``k`` the offsets are ``i - (k - 1) // 2`` for ``i in range(k)`` (so
``k = 3 → -1, 0, 1``; ``k = 2 → 0, 1``; ``k = 4 → -1, 0, 1, 2``), scaled by the dilation.
The offset index is ``ix + kx·(iy + ky·iz)`` (x fastest) when the kernel volume is odd and
``iz + kz·(iy + ky·ix)`` (z fastest) when it is even, as in torchsparse. An output ``o`` at
conv stride ``s`` reads the inputs ``o·s + d·dilation``.

Maps are built from sorted int64 keys (:mod:`pcsep_cli.sparse.keys`) with
``torch.searchsorted`` and ``torch.unique``; no dense grid is ever allocated, so coordinates
may be negative and far apart.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from pcsep_cli.sparse.keys import KeySpace

Triple = tuple[int, int, int]
_SENTINEL = 2**63 - 1  # pads the sorted keys: never equal to a real key
_DUPLICATES = (
    "SparseTensor coords hold duplicate voxels; build it with voxelize(), which merges points "
    "that fall in one voxel"
)


def axis_offsets(size: int) -> list[int]:
    """torchsparse's offsets along one axis of kernel size ``size``."""
    return [i - (size - 1) // 2 for i in range(size)]


def kernel_index_order(kernel_size: Triple) -> list[Triple]:
    """``(ix, iy, iz)`` for offset index 0, 1, … (see the module docstring)."""
    kx, ky, kz = kernel_size
    if (kx * ky * kz) % 2 == 1:
        return [(ix, iy, iz) for iz in range(kz) for iy in range(ky) for ix in range(kx)]
    return [(ix, iy, iz) for ix in range(kx) for iy in range(ky) for iz in range(kz)]


def kernel_offsets(kernel_size: Triple, dilation: Triple = (1, 1, 1)) -> Tensor:
    """Offsets ``[K, 3]`` int64 (dx, dy, dz), dilation included, in offset-index order."""
    ox, oy, oz = (axis_offsets(k) for k in kernel_size)
    rows = [
        (ox[ix] * dilation[0], oy[iy] * dilation[1], oz[iz] * dilation[2])
        for ix, iy, iz in kernel_index_order(kernel_size)
    ]
    return torch.tensor(rows, dtype=torch.int64).view(-1, 3)


@dataclass(eq=False)
class KernelMap:
    """Input/output row pairs of one convolution, grouped by kernel offset.

    Within a group every input row and every output row appears at most once (one voxel has
    at most one neighbour per offset), which is what lets the scatter run as a CSR sum.

    Attributes:
        n_in: input rows.
        n_out: output rows.
        kernel_volume: K.
        groups: ``[(k, in_rows [n_k] int64, out_rows [n_k] int64)]`` for the non-empty
            offsets, ``k`` ascending.
        identity: offset that maps every row onto itself (the centre of a submanifold conv),
            kept out of ``groups`` and applied as a plain matmul; ``None`` if there is none.
        device: where the index tensors live.
    """

    n_in: int
    n_out: int
    kernel_volume: int
    groups: list[tuple[int, Tensor, Tensor]]
    identity: int | None
    device: torch.device
    # Index arrays derived from the pairs, shared with the transposed view (which reads
    # them with in/out swapped).
    _store: dict[str, Any] = field(default_factory=dict, repr=False)
    _flipped: bool = field(default=False, repr=False)
    _transposed: KernelMap | None = field(default=None, repr=False)

    @property
    def num_pairs(self) -> int:
        """Pairs, the identity offset excluded."""
        return sum(int(i.numel()) for _, i, _ in self.groups)

    @property
    def max_group(self) -> int:
        """Pairs in the largest group."""
        return max((int(i.numel()) for _, i, _ in self.groups), default=0)

    @property
    def bounds(self) -> list[tuple[int, int, int]]:
        """``[(k, start, end)]``: pairs ``start:end`` (in group order) use offset ``k``."""
        out, start = [], 0
        for k, i, _ in self.groups:
            out.append((k, start, start + int(i.numel())))
            start += int(i.numel())
        return out

    def pairs(self, side: str) -> Tensor:
        """Input (``side="in"``) or output (``"out"``) row of every pair, ``[P]`` int64."""
        key = "pairs_" + self._canonical(side)
        if key not in self._store:
            pick = 1 if side == "in" else 2
            self._store[key] = torch.cat([g[pick] for g in self.groups])
        return self._store[key]

    def _canonical(self, side: str) -> str:
        if side not in ("in", "out"):
            raise ValueError(f"side must be 'in' or 'out', got {side!r}")
        return {"in": "out", "out": "in"}[side] if self._flipped else side

    def csr(self, side: str) -> tuple[Tensor, Tensor]:
        """Pairs sorted by output (``side="out"``) or input (``"in"``) row, as CSR.

        Pairs are numbered group by group (``k`` ascending); the result ``(col, offsets)``
        lists, for each row ``r``, the pair numbers ``col[offsets[r]:offsets[r+1]]`` that
        write to it: ``F.embedding_bag(col, values, offsets, mode="sum")`` sums pair values
        into rows. Built once per map and side, without a sort: one counting pass.
        """
        key = "csr_" + self._canonical(side)
        if key not in self._store:
            n = self.n_out if side == "out" else self.n_in
            pick = 2 if side == "out" else 1
            offsets = torch.zeros(n, dtype=torch.int64, device=self.device)
            col = torch.empty(self.num_pairs, dtype=torch.int64, device=self.device)
            if self.groups and n > 1:
                counts = torch.bincount(self.pairs(side), minlength=n)
                torch.cumsum(counts[:-1], 0, out=offsets[1:])
            # Counting sort by row. A row appears at most once per group, so each group
            # takes the next free slot of each of its rows (per-group small ops beat one
            # vectorised pass over a [groups, rows] table here).
            fill, start = offsets.clone(), 0
            for group in self.groups:
                rows = group[pick]
                slot = fill.index_select(0, rows)
                col.scatter_(0, slot, torch.arange(start, start + rows.numel(), device=self.device))
                fill.scatter_(0, rows, slot + 1)
                start += rows.numel()
            self._store[key] = (col, offsets)
        return self._store[key]

    def transposed(self) -> KernelMap:
        """The same pairs read backwards: outputs become inputs (transposed conv)."""
        if self._transposed is None:
            t = KernelMap(
                self.n_out,
                self.n_in,
                self.kernel_volume,
                [(k, o, i) for k, i, o in self.groups],
                self.identity,
                self.device,
            )
            t._store, t._flipped = self._store, not self._flipped
            t._transposed = self
            self._transposed = t
        return self._transposed


def _assemble(
    groups: dict[int, tuple[Tensor, Tensor]],
    sizes: tuple[int, int, int],
    identity: int | None,
    device: torch.device,
) -> KernelMap:
    kept = [(k, i, o) for k, (i, o) in sorted(groups.items()) if i.numel() and k != identity]
    return KernelMap(sizes[0], sizes[1], sizes[2], kept, identity, device)


def _match_row(
    padded: Tensor, start: Tensor, base: Tensor, targets: list[int], window: int
) -> list[tuple[Tensor, Tensor]]:
    """Find keys ``base + t`` for every target ``t`` among the ``window`` keys after ``start``.

    Keys are unique integers, so ``base + t`` (if present) sits at most ``t`` places after
    the first key ``>= base``; one block of comparisons covers a whole kernel row.

    Args:
        padded: sorted keys ``[N]`` followed by at least ``window`` sentinels.
        start: ``[N]`` position where each row's window begins.
        base: ``[N]`` key that target 0 stands for.
        targets: key offsets to look for, ascending.
        window: keys to look at after ``start``.

    Returns:
        Per target, ``(rows, hits)``: the rows whose key was found, and where.
    """
    n, device = start.numel(), start.device
    want = torch.tensor(targets, dtype=base.dtype, device=device).unsqueeze(1)  # [T, 1]
    diff = padded.index_select(0, start) - base
    found, place = diff == want, (diff < want).to(torch.uint8)  # [T, N] each
    for m in range(1, window):
        diff = padded.index_select(0, start + m) - base
        found |= diff == want
        # Keys increase strictly along the window: a hit sits after every smaller key.
        place += diff < want
    flat = found.view(-1).nonzero().squeeze(1)  # sorted by target, then row
    rows = torch.remainder(flat, n)
    hits = start.index_select(0, rows) + place.view(-1).index_select(0, flat)
    counts = found.sum(dim=1).tolist()
    return list(zip(rows.split(counts), hits.split(counts), strict=True))


def build_submanifold_map(coords: Tensor, kernel_size: Triple, dilation: Triple) -> KernelMap:
    """Kernel map of a stride-1 conv whose outputs are its inputs.

    Keys are sorted once; for each kernel row ``(iy, iz)`` one ``searchsorted`` finds where
    the row's first neighbour would be, and the other offsets of the row are read from the
    next few sorted keys (x is the fastest key digit). With an all-odd kernel the map is
    symmetric (offset ``K-1-k`` holds the pairs of ``k`` swapped), so only half the rows are
    searched, and the centre is the identity.

    Args:
        coords: ``[N, 4]`` int32 (batch, x, y, z), no duplicates.
        kernel_size: (kx, ky, kz).
        dilation: (dx, dy, dz).

    Raises:
        ValueError: duplicate coordinates, or a span too large to hash.
    """
    device = coords.device
    n = coords.shape[0]
    kv = kernel_size[0] * kernel_size[1] * kernel_size[2]
    order = kernel_index_order(kernel_size)
    index_of = {ijk: k for k, ijk in enumerate(order)}
    offs = [[o * d for o in axis_offsets(k)] for k, d in zip(kernel_size, dilation, strict=True)]
    zero = tuple(offs[a].index(0) if 0 in offs[a] else -1 for a in range(3))
    identity = index_of[zero] if -1 not in zero else None
    if n == 0:
        return _assemble({}, (0, 0, kv), identity, device)

    reach = max(max(abs(o) for o in ax) for ax in offs)
    space = KeySpace.of(coords, margin=reach)
    keys = space.encode(coords)
    sorted_keys, perm = torch.sort(keys)
    if n > 1 and bool((sorted_keys[1:] == sorted_keys[:-1]).any()):
        raise ValueError(_DUPLICATES)
    arange = torch.arange(n, device=device)
    if bool(torch.equal(perm, arange)):
        perm = None  # already sorted (voxelize and strided convs emit sorted coords)

    symmetric = all(k % 2 == 1 for k in kernel_size)
    padded = torch.cat((sorted_keys, sorted_keys.new_full((2 * reach + 2,), _SENTINEL)))
    groups: dict[int, tuple[Tensor, Tensor]] = {}
    for iz, iy in itertools.product(range(kernel_size[2]), range(kernel_size[1])):
        dy, dz = offs[1][iy], offs[2][iz]
        if symmetric and (dz, dy) < (0, 0):
            continue  # mirror of a row searched below
        ixs = list(range(kernel_size[0]))
        if symmetric and (dz, dy) == (0, 0):
            ixs = [ix for ix in ixs if offs[0][ix] > 0]
        if not ixs:
            continue
        x_first = offs[0][ixs[0]]
        base = sorted_keys + space.delta(x_first, dy, dz)
        if symmetric and (dz, dy) == (0, 0):
            start, slack = arange + 1, x_first - 1  # x-neighbours follow in sorted order
        else:
            start, slack = torch.searchsorted(sorted_keys, base), 0
        targets = [offs[0][ix] - x_first for ix in ixs]
        matches = _match_row(padded, start, base, targets, targets[-1] + slack + 1)
        for ix, (out_rows, in_rows) in zip(ixs, matches, strict=True):
            if perm is not None:
                out_rows, in_rows = perm[out_rows], perm[in_rows]
            k = index_of[(ix, iy, iz)]
            groups[k] = (in_rows, out_rows)
            if symmetric:
                groups[kv - 1 - k] = (out_rows, in_rows)
    return _assemble(groups, (n, n, kv), identity, device)


def build_strided_map(
    coords: Tensor, kernel_size: Triple, stride: Triple, dilation: Triple
) -> tuple[Tensor, KernelMap]:
    """Output coordinates and kernel map of a strided (downsampling) conv.

    An output ``o`` exists where at least one input lies in its receptive field
    ``{o·s + d·dilation}``. Each input proposes the outputs it can reach (per axis, the
    offsets for which ``c - d·dilation`` divides by ``s``), and ``torch.unique`` merges the
    proposals; its inverse gives the pairs directly, so no search is needed.

    Args:
        coords: ``[N, 4]`` int32 (batch, x, y, z) at the input's resolution.
        kernel_size: (kx, ky, kz).
        stride: (sx, sy, sz), each ≥ 1.
        dilation: (dx, dy, dz).

    Returns:
        ``(out_coords [M, 4] int32, KernelMap)``; out_coords are sorted by (batch, z, y, x)
        and expressed at the output's resolution (divided by the stride).
    """
    device = coords.device
    n = coords.shape[0]
    kv = kernel_size[0] * kernel_size[1] * kernel_size[2]
    if n == 0:
        return coords.new_zeros((0, 4)), _assemble({}, (0, 0, kv), None, device)
    c = coords.to(torch.int64)
    per_axis: list[list[tuple[Tensor, Tensor]]] = []  # [axis][i] -> (valid [N], o [N])
    lo: list[int] = [int(c[:, 0].min())]
    hi: list[int] = [int(c[:, 0].max())]
    for a in range(3):
        s, d = stride[a], dilation[a]
        col = c[:, a + 1]
        entries = []
        for off in axis_offsets(kernel_size[a]):
            num = col - off * d
            entries.append((torch.remainder(num, s) == 0, torch.div(num, s, rounding_mode="floor")))
        per_axis.append(entries)
        cmin, cmax = int(col.min()), int(col.max())
        reach = max(abs(o) * d for o in axis_offsets(kernel_size[a]))
        lo.append((cmin - reach) // s)
        hi.append(-((-(cmax + reach)) // s))

    batch = c[:, 0]
    cand_in, cand_out, counts = [], [], []
    for ix, iy, iz in kernel_index_order(kernel_size):
        (vx, ox), (vy, oy), (vz, oz) = per_axis[0][ix], per_axis[1][iy], per_axis[2][iz]
        rows = (vx & vy & vz).nonzero().squeeze(1)
        cand_in.append(rows)
        cand_out.append(torch.stack((batch[rows], ox[rows], oy[rows], oz[rows]), dim=1))
        counts.append(rows.numel())
    space = KeySpace.covering(lo, hi)
    keys = space.encode(torch.cat(cand_out))
    uniq, inverse = torch.unique(keys, sorted=True, return_inverse=True)
    out_coords = space.decode(uniq)
    # Distinct inputs reach distinct outputs through one offset; a repeat means a repeated voxel.
    group_of = torch.repeat_interleave(
        torch.arange(kv, device=device), torch.tensor(counts, device=device)
    )
    if uniq.numel() and int(torch.bincount(group_of * uniq.numel() + inverse).max()) > 1:
        raise ValueError(_DUPLICATES)
    groups, start = {}, 0
    for k, (rows, cnt) in enumerate(zip(cand_in, counts, strict=True)):
        groups[k] = (rows, inverse[start : start + cnt])
        start += cnt
    return out_coords, _assemble(groups, (n, out_coords.shape[0], kv), None, device)
