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


@dataclass(frozen=True)
class PaddedLayout:
    """Chunked work-buffer layout of a :class:`KernelMap` (see :meth:`KernelMap.layout`).

    Attributes:
        chunk: rows per chunk.
        rows: total rows, ``chunks × chunk``.
        starts: first row of each group.
        kernel_index: ``[chunks]`` int64, the kernel offset each chunk multiplies by.
        pad_rows: ``[rows - pairs]`` int64, rows that hold no pair.
    """

    chunk: int
    rows: int
    starts: list[int]
    kernel_index: Tensor
    pad_rows: Tensor

    @property
    def chunks(self) -> int:
        """Number of chunks."""
        return int(self.kernel_index.numel())


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

    def _canonical(self, side: str) -> str:
        if side not in ("in", "out"):
            raise ValueError(f"side must be 'in' or 'out', got {side!r}")
        return {"in": "out", "out": "in"}[side] if self._flipped else side

    def layout(self) -> PaddedLayout:
        """Where each group's pairs sit in the padded ``[chunks × chunk, C]`` work buffer.

        Groups are cut into chunks of equal height so that all matmuls of a conv run as one
        ``torch.bmm``: per-group matmuls are dozens of separate parallel regions, and each
        one stalls when another process holds a core. A group starts at a chunk boundary;
        the tail of its last chunk is padding (about 1/16 of the rows).
        """
        if "layout" not in self._store:
            sizes = [int(g[1].numel()) for g in self.groups]
            chunk = max(16, -(-sum(sizes) // (8 * max(len(sizes), 1))))
            per_group = [-(-n // chunk) for n in sizes]
            starts, kernel_index, pad = [], [], []
            row = 0
            for (k, _, _), n, c in zip(self.groups, sizes, per_group, strict=True):
                starts.append(row)
                kernel_index += [k] * c
                pad.append(torch.arange(row + n, row + c * chunk))
                row += c * chunk
            self._store["layout"] = PaddedLayout(
                chunk,
                row,
                starts,
                torch.tensor(kernel_index, dtype=torch.int64, device=self.device),
                torch.cat(pad).to(self.device)
                if pad
                else torch.empty(0, dtype=torch.int64, device=self.device),
            )
        return self._store["layout"]

    def gather_index(self, side: str) -> Tensor:
        """``[layout().rows]`` int64: the input (``"in"``) or output (``"out"``) row behind
        each row of the padded work buffer (row 0 for padding)."""
        key = "gather_" + self._canonical(side)
        if key not in self._store:
            lay, pick = self.layout(), 1 if side == "in" else 2
            index = torch.zeros(lay.rows, dtype=torch.int64, device=self.device)
            for group, start in zip(self.groups, lay.starts, strict=True):
                index[start : start + group[pick].numel()] = group[pick]
            self._store[key] = index
        return self._store[key]

    def scatter_plan(self, side: str) -> tuple[Tensor, Tensor]:
        """CSR from padded work rows to output (``"out"``) or input (``"in"``) rows.

        Returns ``(col, offsets)``: row ``r`` sums the work rows
        ``col[offsets[r]:offsets[r+1]]``, i.e. ``F.embedding_bag(col, work, offsets,
        mode="sum")``. Built once per map and side by a counting sort (a row appears at
        most once per group, so each group takes the next free slot of each of its rows).
        """
        key = "csr_" + self._canonical(side)
        if key not in self._store:
            lay, pick = self.layout(), 2 if side == "out" else 1
            n = self.n_out if side == "out" else self.n_in
            offsets = torch.zeros(n, dtype=torch.int64, device=self.device)
            col = torch.empty(self.num_pairs, dtype=torch.int64, device=self.device)
            if self.groups and n > 1:
                counts = torch.bincount(torch.cat([g[pick] for g in self.groups]), minlength=n)
                torch.cumsum(counts[:-1], 0, out=offsets[1:])
            fill = offsets.clone()
            for group, start in zip(self.groups, lay.starts, strict=True):
                rows = group[pick]
                slot = fill.index_select(0, rows)
                col.scatter_(0, slot, torch.arange(start, start + rows.numel(), device=self.device))
                fill.scatter_(0, rows, slot + 1)
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


def _match_rows(
    padded: Tensor, start: Tensor, base: Tensor, targets: list[int], window: int
) -> list[list[tuple[Tensor, Tensor]]]:
    """Find keys ``base + t`` for every target ``t`` among the ``window`` keys after ``start``.

    Keys are unique integers, so ``base + t`` (if present) sits at most ``t`` places after
    the first key ``>= base``; one block of comparisons covers whole kernel rows. All kernel
    rows are handled together, so a map costs a few large ops rather than many small ones.

    Args:
        padded: sorted keys ``[N]`` followed by at least ``window`` sentinels.
        start: ``[R, N]`` position where each window begins (R kernel rows).
        base: ``[R, N]`` key that target 0 stands for.
        targets: key offsets to look for, ascending.
        window: keys to look at after ``start``.

    Returns:
        Per kernel row, per target: ``(rows, hits)``, the rows whose key was found and
        where it was found.
    """
    n_rows, n = start.shape
    want = torch.tensor(targets, dtype=base.dtype, device=base.device).view(1, -1, 1)
    base = base.unsqueeze(1)  # [R, 1, N]
    diff = padded[start].unsqueeze(1) - base
    found, place = diff == want, (diff < want).to(torch.uint8)  # [R, T, N] each
    for m in range(1, window):
        diff = padded[start + m].unsqueeze(1) - base
        found |= diff == want
        # Keys increase strictly along the window: a hit sits after every smaller key.
        place += diff < want
    flat = found.view(-1).nonzero().squeeze(1)  # sorted by kernel row, target, voxel
    rows = torch.remainder(flat, n)
    row_of = torch.div(flat, n * len(targets), rounding_mode="floor")
    hits = start.view(-1).index_select(0, row_of * n + rows) + place.view(-1)[flat]
    counts = found.sum(dim=2).view(-1).tolist()
    pieces = list(zip(rows.split(counts), hits.split(counts), strict=True))
    return [pieces[r * len(targets) : (r + 1) * len(targets)] for r in range(n_rows)]


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
    sorted_keys, perm = torch.sort(space.encode(coords))
    if n > 1 and bool((sorted_keys[1:] == sorted_keys[:-1]).any()):
        raise ValueError(_DUPLICATES)
    arange = torch.arange(n, device=device)
    if bool(torch.equal(perm, arange)):
        perm = None  # already sorted (voxelize and strided convs emit sorted coords)
    padded = torch.cat((sorted_keys, sorted_keys.new_full((2 * reach + 2,), _SENTINEL)))

    symmetric = all(k % 2 == 1 for k in kernel_size)
    all_rows = list(itertools.product(range(kernel_size[1]), range(kernel_size[2])))
    # A symmetric map searches only rows after the centre row; the centre row's x-neighbours
    # follow each voxel in sorted order and need no search at all.
    searched = [
        (iy, iz) for iy, iz in all_rows if not symmetric or (offs[2][iz], offs[1][iy]) > (0, 0)
    ]
    found: list[tuple[int, int, int, Tensor, Tensor]] = []  # (ix, iy, iz, out_rows, in_rows)
    if searched:
        x_first = offs[0][0]
        deltas = torch.tensor(
            [space.delta(x_first, offs[1][iy], offs[2][iz]) for iy, iz in searched],
            device=device,
        )
        base = sorted_keys.unsqueeze(0) + deltas.unsqueeze(1)  # [R, N]
        start = torch.searchsorted(sorted_keys, base)
        targets = [o - x_first for o in offs[0]]
        per_row = _match_rows(padded, start, base, targets, targets[-1] + 1)
        for (iy, iz), matches in zip(searched, per_row, strict=True):
            for ix, (out_rows, in_rows) in enumerate(matches):
                found.append((ix, iy, iz, out_rows, in_rows))
    centre = (offs[1].index(0), offs[2].index(0)) if symmetric else None
    if centre is not None:
        ixs = [ix for ix in range(kernel_size[0]) if offs[0][ix] > 0]
        if ixs:
            x_first = offs[0][ixs[0]]
            base = (sorted_keys + x_first).unsqueeze(0)
            targets = [offs[0][ix] - x_first for ix in ixs]
            (matches,) = _match_rows(
                padded, (arange + 1).unsqueeze(0), base, targets, targets[-1] + x_first
            )
            for ix, (out_rows, in_rows) in zip(ixs, matches, strict=True):
                found.append((ix, *centre, out_rows, in_rows))

    groups: dict[int, tuple[Tensor, Tensor]] = {}
    for ix, iy, iz, out_rows, in_rows in found:
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
