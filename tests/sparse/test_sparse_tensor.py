"""SparseTensor checks and the kernel-map cache shared along a network."""

from __future__ import annotations

import pytest
import torch
from sparse_reference import random_voxels

from pcsep_cli.sparse import Conv3d, SparseTensor, conv3d
from pcsep_cli.sparse.kmap import build_submanifold_map, kernel_offsets

I32 = torch.int32


def _tensor(batch: int = 2, channels: int = 3, seed: int = 0) -> SparseTensor:
    coords = random_voxels(60, batch, -5, 5, seed)
    return SparseTensor(coords, torch.randn(coords.shape[0], channels))


@pytest.mark.parametrize(
    ("coords", "feats", "match"),
    [
        (torch.zeros(5, 3, dtype=I32), torch.zeros(5, 2), r"coords must be \[N, 4\].*\(5, 3\)"),
        (torch.zeros(5, 4), torch.zeros(5, 2), "integers"),
        (torch.zeros(5, 4, dtype=I32), torch.zeros(4, 2), r"feats must be \[N, C\] with N = 5"),
        (torch.zeros(5, 4, dtype=I32), torch.zeros(5, 2, dtype=torch.int64), "floating"),
        (torch.tensor([[-1, 0, 0, 0]]), torch.zeros(1, 2), "batch indices"),
        (torch.tensor([[0, 2**31 - 1, 0, 0]]), torch.zeros(1, 2), "2\\*\\*30"),
    ],
)
def test_bad_tensors_raise(coords: torch.Tensor, feats: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SparseTensor(coords, feats)


def test_defaults_and_batch_size() -> None:
    coords = torch.tensor([[0, 1, 2, 3], [2, 0, 0, 0]], dtype=torch.int64)
    x = SparseTensor(coords, torch.zeros(2, 1))
    assert x.coords.dtype == torch.int32
    assert x.stride == (1, 1, 1) and x.batch_size == 3
    assert SparseTensor(coords, torch.zeros(2, 1), batch_size=5).batch_size == 5
    with pytest.raises(ValueError, match="batch_size 2 < largest batch index"):
        SparseTensor(coords, torch.zeros(2, 1), batch_size=2)
    with pytest.raises(ValueError, match="stride"):
        SparseTensor(coords, torch.zeros(2, 1), stride=0)
    with pytest.raises(ValueError, match=r"feats must be \[2, C\], got \(3, 1\)"):
        x.replace(torch.zeros(3, 1))
    assert "points=2" in repr(x)


def test_duplicate_voxels_are_refused_when_a_map_is_built() -> None:
    coords = torch.tensor([[0, 1, 1, 1], [0, 1, 1, 1]], dtype=torch.int32)
    x = SparseTensor(coords, torch.zeros(2, 1))
    with pytest.raises(ValueError, match="duplicate voxels.*voxelize"):
        conv3d(x, torch.zeros(27, 1, 1), 3)
    with pytest.raises(ValueError, match="duplicate voxels"):
        conv3d(SparseTensor(coords, torch.zeros(2, 1)), torch.zeros(8, 1, 1), 2, 2)


def test_layers_on_the_same_voxels_share_one_kernel_map() -> None:
    x = _tensor()
    a, b = Conv3d(3, 4, engine="torch"), Conv3d(4, 4, engine="torch")
    y = a(x)
    entries = len(x.cache)
    assert entries == 1
    z = b(y)
    assert y.cache is x.cache and z.cache is x.cache
    assert len(x.cache) == entries  # reused, not rebuilt
    kmap = x.cache.get("subm", x.coords, (1, 1, 1), (3, 3, 3), (1, 1, 1))
    assert kmap is not None
    Conv3d(4, 4, dilation=2, engine="torch")(z)
    assert len(x.cache) == entries + 1


def test_transposed_conv_reuses_the_strided_map_and_restores_voxels() -> None:
    x = _tensor()
    down = Conv3d(3, 8, kernel_size=2, stride=2, engine="torch")(x)
    assert down.stride == (2, 2, 2)
    n_entries = len(x.cache)
    up = Conv3d(8, 3, kernel_size=2, stride=2, transposed=True, engine="torch")(down)
    assert len(x.cache) == n_entries
    assert up.coords is x.coords and up.stride == (1, 1, 1)


def test_transposed_conv_without_its_strided_conv_is_an_error() -> None:
    x = _tensor()
    down = conv3d(x, torch.randn(8, 3, 3), 2, 2)
    with pytest.raises(ValueError, match="found no strided conv"):
        conv3d(down, torch.randn(27, 3, 3), 3, 2, transposed=True)
    fresh = SparseTensor(down.coords, down.feats, stride=2)
    with pytest.raises(ValueError, match="found no strided conv"):
        conv3d(fresh, torch.randn(8, 3, 3), 2, 2, transposed=True)


def test_row_order_does_not_change_the_result() -> None:
    x = _tensor(seed=4)
    perm = torch.randperm(x.num_points, generator=torch.Generator().manual_seed(0))
    w = torch.randn(27, 3, 2)
    y = conv3d(x, w, 3)
    yp = conv3d(SparseTensor(x.coords[perm], x.feats[perm]), w, 3)
    assert torch.allclose(y.feats[perm], yp.feats, atol=1e-5)


def test_kernel_offsets_follow_torchsparse_order() -> None:
    # Odd volume: x fastest, offsets -1..1. Even volume: z fastest, offsets 0..1.
    odd = kernel_offsets((3, 3, 3))
    assert odd[:4].tolist() == [[-1, -1, -1], [0, -1, -1], [1, -1, -1], [-1, 0, -1]]
    assert odd[13].tolist() == [0, 0, 0]
    even = kernel_offsets((2, 2, 2))
    assert even[:3].tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 0]]
    assert kernel_offsets((4, 1, 1))[:, 0].tolist() == [-1, 0, 1, 2]
    assert kernel_offsets((3, 3, 3), (2, 2, 2))[0].tolist() == [-2, -2, -2]


def test_submanifold_map_is_symmetric_with_identity_centre() -> None:
    x = _tensor(seed=9)
    kmap = build_submanifold_map(x.coords, (3, 3, 3), (1, 1, 1))
    assert kmap.identity == 13
    groups = {k: (i, o) for k, i, o in kmap.groups}
    for k, (i, o) in groups.items():
        mi, mo = groups[26 - k]
        assert torch.equal(i, mo) and torch.equal(o, mi)
        # every pair really is that offset apart
        d = x.coords[i, 1:] - x.coords[o, 1:]
        assert (d == kernel_offsets((3, 3, 3))[k].to(torch.int32)).all()
        assert torch.equal(x.coords[i, 0], x.coords[o, 0])


def test_to_moves_and_gives_a_fresh_cache() -> None:
    x = _tensor()
    conv3d(x, torch.randn(27, 3, 3), 3)
    y = x.to("cpu")
    assert len(y.cache) == 0 and torch.equal(y.coords, x.coords)
