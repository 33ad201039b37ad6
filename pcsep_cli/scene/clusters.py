"""Clusters of a scene's foreground, in its floor frame (``local [N, 3]``, floor at ``z = 0``).

Flying pixels are dropped; what is left is split into connected components on voxels; pieces
are folded into their owner (slices stacked above one another, fragments too low for a head or
not standing on the floor, close pieces while the union adds no head); clusters too wide for
one performer that show two or more heads are split along the body from each head.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

_HEAD_MIN = 0.9  # m, lowest head top of a seated adult; lower clusters are fragments or props
_FLOAT_MIN = 0.3  # m, a cluster whose lowest point is higher does not stand on the floor
_SEATED_TOP = 1.45  # m, a one-head cluster lower than this is a seated player (head tops 1.1-1.35)


def _dense(local: np.ndarray, size: float) -> np.ndarray:
    """Mask ``[N]`` of points on surfaces: not flying pixels, the stray returns that depth
    cameras leave along the rays at the edges of objects.

    A point's density is what its voxel (``size``) and the 26 around it hold. It is kept when
    that is at least a tenth of the densest such count within ~30 cm (a surface seen from
    the same range: a far performer is sparser than a near one, not sparser than itself), and
    at least 3 in a dense scan (isolated trails far from any surface).
    """
    if len(local) == 0:
        return np.zeros(0, dtype=bool)
    cells = np.floor((local - local.min(axis=0)) / size).astype(np.int64)
    voxels, voxel_of, counts = np.unique(_keys(cells), return_inverse=True, return_counts=True)
    voxel_of = voxel_of.ravel()
    first = np.zeros(len(voxels), dtype=np.int64)
    first[voxel_of] = np.arange(len(local))
    cells = cells[first]  # one cell per voxel
    around = _sum_around(voxels, cells, counts)
    # The densest neighbourhood within ~30 cm: max over 7 x 7 x 7-voxel blocks and the 26
    # blocks around each.
    blocks, block_of = np.unique(_keys(cells // 7), return_inverse=True)
    block_of = block_of.ravel()
    peak = np.zeros(len(blocks), dtype=np.int64)
    np.maximum.at(peak, block_of, around)
    first_block = np.zeros(len(blocks), dtype=np.int64)
    first_block[block_of] = np.arange(len(voxels))
    ref = _max_around(blocks, cells[first_block] // 7, peak)[block_of]
    floor_count = 3 if np.median(around) >= 15 else 1
    keep = (around >= 0.1 * ref) & (around >= floor_count)
    return keep[voxel_of]


def _keys(cells: np.ndarray) -> np.ndarray:
    """One int64 per integer cell ``[N, 3]`` (cells ≥ -1, < 2**20 per axis)."""
    c = cells + 1
    return (c[:, 0] << 42) | (c[:, 1] << 21) | c[:, 2]


def _offsets() -> list[np.ndarray]:
    return [np.array([dx, dy, dz]) for dx in (-1, 0, 1) for dy in (-1, 0, 1) for dz in (-1, 0, 1)]


def _sum_around(keys: np.ndarray, cells: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per cell (``keys`` sorted, ``cells [V, 3]``), the sum of ``values`` over its 27 cells."""
    out = np.zeros(len(keys), dtype=values.dtype)
    for d in _offsets():
        other = _keys(cells + d)
        at = np.minimum(np.searchsorted(keys, other), len(keys) - 1)
        out += np.where(keys[at] == other, values[at], 0)
    return out


def _max_around(keys: np.ndarray, cells: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per cell, the max of ``values`` over its 27 cells."""
    out = values.copy()
    for d in _offsets():
        other = _keys(cells + d)
        at = np.minimum(np.searchsorted(keys, other), len(keys) - 1)
        out = np.maximum(out, np.where(keys[at] == other, values[at], 0))
    return out


def _cluster(local: np.ndarray, eps: float) -> np.ndarray:
    """Connected components of points closer than ``eps``, via voxels of ``eps / 2``."""
    if len(local) == 0:
        return np.zeros(0, dtype=np.int64)
    voxel_of, centroids = _voxelise(local, eps / 2)
    pairs = cKDTree(centroids).query_pairs(eps, output_type="ndarray")
    graph = sparse.coo_matrix(
        (np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])),
        shape=(len(centroids), len(centroids)),
    )
    _, vox_labels = csgraph.connected_components(graph, directed=False)
    return vox_labels[voxel_of].astype(np.int64)


def _voxelise(p: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
    """Voxel index of each point ``[N]`` and voxel centroids ``[V, 3]``."""
    keys = np.floor((p - p.min(axis=0)) / size).astype(np.int64)
    span = keys.max(axis=0) + 1
    if float(np.prod(span.astype(np.float64))) < 2.0**62:
        flat = (keys[:, 0] * span[1] + keys[:, 1]) * span[2] + keys[:, 2]
        _, voxel_of = np.unique(flat, return_inverse=True)
    else:  # a scene kilometres wide: one key would overflow int64
        _, voxel_of = np.unique(keys, axis=0, return_inverse=True)
    voxel_of = voxel_of.ravel()
    counts = np.bincount(voxel_of)
    centroids = np.stack([np.bincount(voxel_of, p[:, i]) for i in range(3)], axis=1)
    return voxel_of, centroids / counts[:, None]


def _groups(labels: np.ndarray) -> list[np.ndarray]:
    """Indices of each label's members, labels in increasing order."""
    order = np.argsort(labels, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(labels[order])) + 1)


def _merge_stacked(local: np.ndarray, labels: np.ndarray, cell: float = 0.1) -> np.ndarray:
    """Merge each cluster into a larger one covering half or more of its footprint.

    Sparse scans break a person into slices stacked above one another (scan lines, occlusion
    shadows); two separate objects never share most of their footprint. Each cluster merges
    only into a larger one, so a small fragment cannot chain two performers together.
    """
    if len(labels) == 0:
        return labels
    n_labels = int(labels.max()) + 1
    xy = np.floor((local[:, :2] - local[:, :2].min(axis=0)) / cell).astype(np.int64)
    cells = xy[:, 0] * (int(xy[:, 1].max()) + 1) + xy[:, 1]
    key = np.unique(cells * n_labels + labels)  # one entry per (cell, cluster), by cell
    cell_of, label_of = key // n_labels, key % n_labels
    area = np.bincount(label_of, minlength=n_labels)
    size = np.bincount(labels, minlength=n_labels)
    shared = np.flatnonzero(np.bincount(np.unique(cell_of, return_inverse=True)[1]) > 1)
    multi = np.isin(cell_of, np.unique(cell_of)[shared])
    overlap: dict[tuple[int, int], int] = {}
    for group in _split_sorted(label_of[multi], cell_of[multi]):  # cells with 2+ clusters
        for i, la in enumerate(group):
            for lb in group[i + 1 :]:
                overlap[(int(la), int(lb))] = overlap.get((int(la), int(lb)), 0) + 1
    best: dict[int, tuple[float, int]] = {}
    for (la, lb), n in overlap.items():
        small, big = (la, lb) if (size[la], la) < (size[lb], lb) else (lb, la)
        frac = n / area[small]
        if frac >= 0.5 and frac > best.get(small, (0.0, -1))[0]:
            best[small] = (frac, big)
    target = np.arange(n_labels)
    for small, (_, big) in best.items():
        target[small] = big
    for _ in range(len(best)):  # follow chains up to the largest cluster
        nxt = target[target]
        if np.array_equal(nxt, target):
            break
        target = nxt
    return target[labels]


def _merge_dependent(local: np.ndarray, labels: np.ndarray, gap: float) -> np.ndarray:
    """Merge clusters that cannot be a whole person or prop into a cluster nearby.

    A cluster lower than a seated head (< :data:`_HEAD_MIN`) or that does not reach the floor
    (lowest point > :data:`_FLOAT_MIN`) is a fragment: surfaces seen at grazing angles (thighs,
    a cello's ribs) come out sparse, and an instrument held in front of the body hides the
    body behind it. Each fragment joins the closest whole cluster within ``gap``; fragments
    never join each other, so two performers cannot be chained together.
    """
    if len(labels) == 0:
        return labels
    top = np.full(int(labels.max()) + 1, -np.inf)
    bottom = np.full(len(top), np.inf)
    np.maximum.at(top, labels, local[:, 2])
    np.minimum.at(bottom, labels, local[:, 2])
    part = ((top < _HEAD_MIN) | (bottom > _FLOAT_MIN))[labels]
    if part.all() or not part.any():
        return labels
    mapping = np.arange(len(top))
    dist, nearest = cKDTree(local[~part]).query(local[part], distance_upper_bound=gap)
    found = np.isfinite(dist)
    if found.any():
        source = labels[part][found]
        target = labels[~part][nearest[found]]
        order = np.lexsort((dist[found], source))  # per fragment, its closest point first
        first = np.r_[True, np.diff(source[order]) != 0]
        mapping[source[order][first]] = target[order][first]
    # Something floating farther away (a piano's propped lid) joins the whole cluster whose
    # footprint, 30 cm wider, holds its own: nothing floats unsupported.
    lo = np.full((len(top), 2), np.inf)
    hi = np.full((len(top), 2), -np.inf)
    for axis in range(2):
        np.minimum.at(lo[:, axis], labels, local[:, axis])
        np.maximum.at(hi[:, axis], labels, local[:, axis])
    whole = np.flatnonzero(np.isfinite(top) & (top >= _HEAD_MIN) & (bottom <= _FLOAT_MIN))
    for label in np.flatnonzero((bottom > _FLOAT_MIN) & np.isfinite(bottom)):
        if mapping[label] != label or len(whole) == 0:
            continue
        centre = (lo[label] + hi[label]) / 2
        inside = np.all((lo[whole] - 0.3 <= centre) & (centre <= hi[whole] + 0.3), axis=1)
        if inside.any():
            middle = (lo[whole[inside]] + hi[whole[inside]]) / 2
            mapping[label] = whole[inside][np.argmin(np.linalg.norm(middle - centre, axis=1))]
    return mapping[labels]


def _merge_close(
    local: np.ndarray, labels: np.ndarray, eps: float, gap: float, width: float
) -> np.ndarray:
    """Join clusters less than ``gap`` apart, closest first, while the union adds no head.

    An instrument hides part of its player, a player part of the chair: the pieces lie a few
    centimetres to decimetres apart. Two performers, or a performer and a music stand, show
    two heads (height caps with a dip between them) and stay apart; a performer and a
    headless thing join only if the union is at most ``width`` across. A union may show as
    many heads as the larger of its two parts (at least one): a raised instrument can read as
    a second cap of its player, and the slivers cut off that player must still join it.
    """
    if len(labels) == 0:
        return labels
    n_labels = int(labels.max()) + 1
    # One entry per (10 cm voxel, cluster): enough to find which clusters come close.
    voxel_of, _ = _voxelise(local, 0.1)
    key, inverse = np.unique(voxel_of * n_labels + labels, return_inverse=True)
    inverse = inverse.ravel()
    counts = np.bincount(inverse)
    cent = np.stack([np.bincount(inverse, local[:, i]) for i in range(3)], axis=1) / counts[:, None]
    owner = key % n_labels
    pairs = cKDTree(cent).query_pairs(gap, output_type="ndarray")
    pairs = pairs[owner[pairs[:, 0]] != owner[pairs[:, 1]]]
    if len(pairs) == 0:
        return labels
    dist = np.linalg.norm(cent[pairs[:, 0]] - cent[pairs[:, 1]], axis=1)
    # Closest approach per pair of clusters.
    la, lb = np.sort(owner[pairs], axis=1).T
    order = np.lexsort((dist, lb, la))
    la, lb, dist = la[order], lb[order], dist[order]
    first = np.r_[True, (la[1:] != la[:-1]) | (lb[1:] != lb[:-1])]
    la, lb, dist = la[first], lb[first], dist[first]
    groups = _groups(labels)
    members = {int(labels[g[0]]): [g] for g in groups}
    tall = {int(labels[g[0]]): bool(local[g, 2].max() >= _HEAD_MIN) for g in groups}
    standing = {int(labels[g[0]]): bool(local[g, 2].min() <= _FLOAT_MIN) for g in groups}
    parent = np.arange(n_labels)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    heads: dict[int, int] = {}
    refused: set[tuple[int, int]] = set()  # pairs of roots, forgotten when either grows

    def count_heads(idx: np.ndarray) -> int:
        return len(_heads(_voxelise(local[idx], eps / 2)[1]))

    for k in np.argsort(dist, kind="stable"):
        a, b = root(int(la[k])), root(int(lb[k]))
        if a == b or (min(a, b), max(a, b)) in refused:
            continue
        refused.add((min(a, b), max(a, b)))
        if tall[a] and tall[b]:  # a low piece adds no head; two tall ones may be two people
            union = np.concatenate(members[a] + members[b])
            for r in (a, b):
                if r not in heads:
                    heads[r] = count_heads(np.concatenate(members[r]))
            if count_heads(union) > max(1, heads[a], heads[b]):
                continue
            # A standing player does not join a big headless thing (a piano): a neighbour
            # standing closer to it than its pianist would take the pianist's place. A seated
            # one does: the pianist at the keyboard, the piano split off by its own shadow.
            if heads[a] + heads[b] == 1 and _footprint(local[union]) > width:
                player = np.concatenate(members[a if heads[a] else b])
                if np.quantile(local[player, 2], 0.995) >= _SEATED_TOP:
                    continue
            # Two headless things standing on the floor (music stands, chairs) stay apart.
            if heads[a] + heads[b] == 0 and standing[a] and standing[b]:
                continue
        parent[b] = a
        members[a] += members.pop(b)
        tall[a] |= tall[b]
        standing[a] |= standing[b]
        heads.pop(a, None)
        heads.pop(b, None)
        refused = {pair for pair in refused if a not in pair and b not in pair}
    return np.array([root(i) for i in range(n_labels)])[labels]


def _split_sorted(values: np.ndarray, keys: np.ndarray) -> list[np.ndarray]:
    """``values`` grouped by runs of equal ``keys`` (``keys`` sorted)."""
    return np.split(values, np.flatnonzero(np.diff(keys)) + 1) if len(keys) else []


def _split_wide(local: np.ndarray, labels: np.ndarray, eps: float, width: float) -> np.ndarray:
    """Split clusters wider than ``width`` that show several heads, one part per head."""
    labels = labels.copy()
    next_label = int(labels.max(initial=-1)) + 1
    for members in _groups(labels) if len(labels) else []:
        if len(members) < 50 or _footprint(local[members]) <= width:
            continue
        voxel_of, centroids = _voxelise(local[members], eps / 2)
        heads = np.sort(_heads(centroids))
        if len(heads) < 2:
            continue
        pairs = cKDTree(centroids).query_pairs(eps, output_type="ndarray")
        lengths = np.linalg.norm(centroids[pairs[:, 0]] - centroids[pairs[:, 1]], axis=1)
        graph = sparse.coo_matrix(
            (lengths + 1e-9, (pairs[:, 0], pairs[:, 1])), shape=(len(centroids),) * 2
        )
        # Geodesic Voronoi cells around the heads: a player's arms, bow and legs hang from
        # their own head along their body, not across a neighbour.
        dist, _, source = csgraph.dijkstra(
            graph, directed=False, indices=heads, min_only=True, return_predecessors=True
        )
        part = np.searchsorted(heads, source)
        lost = ~np.isfinite(dist)
        if lost.any():  # voxels with no path: nearest head on the floor plan
            gap = centroids[lost, None, :2] - centroids[heads][None, :, :2]
            part[lost] = np.argmin(np.linalg.norm(gap, axis=2), axis=1)
        point_part = part[voxel_of]
        widths = [_footprint(local[members[point_part == i]]) for i in range(len(heads))]
        if max(widths) > width:
            continue  # one part is still too wide: a piano or a big instrument, keep it whole
        for i in range(1, len(heads)):
            labels[members[point_part == i]] = next_label
            next_label += 1
    return labels


def _footprint_centre(p: np.ndarray) -> np.ndarray:
    """``[3]``: middle of the x and y extents of ``p [M, 3]`` (floor frame), at z = 0.

    Not the median: a sensor sees the front of a performer, and the points' median sits
    forward of the footprint's centre by a quarter of its depth.
    """
    return np.array([*(p[:, :2].min(axis=0) + p[:, :2].max(axis=0)) / 2, 0.0])


def _main_axes(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points' horizontal coordinates ``(along, across)`` ``[M]`` on the main and minor
    axes of their footprint (centred on its mean)."""
    xy = p[:, :2] - p[:, :2].mean(axis=0)
    _, vecs = np.linalg.eigh(xy.T @ xy)
    return xy @ vecs[:, -1], xy @ vecs[:, 0]


def _footprint(p: np.ndarray) -> float:
    """Robust width (m) of the points' footprint along its main horizontal axis."""
    if len(p) < 3:
        return 0.0
    lo, hi = np.quantile(_main_axes(p)[0], [0.01, 0.99])
    return float(hi - lo)


def _cap_cells(hmap: np.ndarray, c: np.ndarray) -> int:
    """Cells of the 7 x 7 window around ``c`` within 10 cm of ``hmap[c]``."""
    window = hmap[max(0, c[0] - 3) : c[0] + 4, max(0, c[1] - 3) : c[1] + 4]
    return int(np.sum(window >= hmap[c[0], c[1]] - 0.1))


def _heads(centroids: np.ndarray, cell: float = 0.1) -> np.ndarray:
    """Voxel indices of head tops: height-map caps ≥ 0.9 m high, ≥ 0.5 m apart, with a dip."""
    xy = np.floor((centroids[:, :2] - centroids[:, :2].min(axis=0)) / cell).astype(np.int64)
    hmap = np.zeros(xy.max(axis=0) + 1)
    np.maximum.at(hmap, (xy[:, 0], xy[:, 1]), centroids[:, 2])
    peaks = (hmap == ndimage.maximum_filter(hmap, size=7)) & (hmap >= _HEAD_MIN)
    # A head is a cap: few cells within 10 cm of its top in the 70 cm window around it
    # (people: 3-13), where a piano's lid or top is a ridge or a plateau (16 and more).
    cand = np.argwhere(peaks)
    cand = np.array([c for c in cand if _cap_cells(hmap, c) <= 14], dtype=np.int64).reshape(-1, 2)
    cand = cand[np.argsort(-hmap[cand[:, 0], cand[:, 1]])]
    chosen: list[np.ndarray] = []
    for c in cand:
        ok = True
        for o in chosen:
            if np.linalg.norm((c - o) * cell) < 0.5:
                ok = False
                break
            line = np.linspace(c, o, int(np.abs(c - o).max()) + 1).round().astype(np.int64)
            if hmap[line[:, 0], line[:, 1]].min() > hmap[c[0], c[1]] - 0.25:
                ok = False  # no dip between them: one body (shoulder, raised instrument)
                break
        if ok:
            chosen.append(c)
    heads = []
    for c in chosen:
        in_cell = np.flatnonzero((xy[:, 0] == c[0]) & (xy[:, 1] == c[1]))
        heads.append(in_cell[np.argmax(centroids[in_cell, 2])])
    return np.asarray(heads, dtype=np.int64)
