"""Every sparse conv setting against dense F.conv3d / F.conv_transpose3d, values and gradients."""

from __future__ import annotations

import itertools

import pytest
import torch
from sparse_reference import dense_conv, dense_conv_transpose, dense_support, random_voxels

from pcsep_cli.sparse import SparseTensor, conv3d

KERNELS, STRIDES, DILATIONS, BATCHES = (1, 2, 3, 5), (1, 2, 3), (1, 2), (1, 3)
CASES = list(itertools.product(KERNELS, STRIDES, DILATIONS, BATCHES))
TOL = 1e-4


def _input(batch: int, seed: int, cin: int = 3) -> SparseTensor:
    # Batch 3 leaves item 1 empty; coordinates straddle zero.
    empty = (1,) if batch == 3 else ()
    coords = random_voxels(70, batch, -7, 6, seed, empty_items=empty)
    g = torch.Generator().manual_seed(seed + 1)
    feats = torch.randn(coords.shape[0], cin, generator=g, requires_grad=True)
    return SparseTensor(coords, feats, batch_size=batch)


@pytest.mark.parametrize(("k", "s", "d", "batch"), CASES)
def test_conv_matches_dense_values_and_gradients(k: int, s: int, d: int, batch: int) -> None:
    x = _input(batch, seed=k * 100 + s * 10 + d + batch)
    g = torch.Generator().manual_seed(7)
    w = torch.randn(k**3, 3, 4, generator=g, requires_grad=True)
    y = conv3d(x, w, k, s, d)

    assert y.stride == (s, s, s)
    assert y.batch_size == batch
    keys = {tuple(c) for c in y.coords.tolist()}
    assert len(keys) == y.num_points, "duplicate output voxels"
    if s == 1:
        assert torch.equal(y.coords, x.coords)
    else:
        assert keys == dense_support(x.coords, batch, k, s, d)
    if batch == 3:
        assert 1 not in set(y.coords[:, 0].tolist())

    x_dense = x.feats.detach().clone().requires_grad_(True)
    w_dense = w.detach().clone().requires_grad_(True)
    out, grid = dense_conv(x.coords, x_dense, w_dense, batch, k, s, d)
    ref = out[grid.out_index(y.coords)]
    assert y.feats.shape == ref.shape
    assert (y.feats - ref).abs().max().item() <= TOL

    probe = torch.randn(y.feats.shape, generator=g)
    (y.feats * probe).sum().backward()
    (ref * probe).sum().backward()
    assert (x.feats.grad - x_dense.grad).abs().max().item() <= TOL
    assert (w.grad - w_dense.grad).abs().max().item() <= TOL


@pytest.mark.parametrize(
    ("k", "s", "d", "batch"), list(itertools.product(KERNELS, (2, 3), DILATIONS, BATCHES))
)
def test_transposed_conv_matches_dense(k: int, s: int, d: int, batch: int) -> None:
    x = _input(batch, seed=k * 7 + s * 3 + d + batch)
    g = torch.Generator().manual_seed(11)
    down = conv3d(x, torch.randn(k**3, 3, 5, generator=g), k, s, d)
    coarse = down.replace(torch.randn(down.num_points, 5, generator=g, requires_grad=True))
    w = torch.randn(k**3, 5, 2, generator=g, requires_grad=True)
    up = conv3d(coarse, w, k, s, d, transposed=True)

    assert up.coords is x.coords
    assert up.stride == (1, 1, 1)
    c_dense = coarse.feats.detach().clone().requires_grad_(True)
    w_dense = w.detach().clone().requires_grad_(True)
    ref = dense_conv_transpose(x.coords, coarse.coords, c_dense, w_dense, batch, k, s, d)
    assert (up.feats - ref).abs().max().item() <= TOL

    probe = torch.randn(up.feats.shape, generator=g)
    (up.feats * probe).sum().backward()
    (ref * probe).sum().backward()
    assert (coarse.feats.grad - c_dense.grad).abs().max().item() <= TOL
    assert (w.grad - w_dense.grad).abs().max().item() <= TOL


@pytest.mark.parametrize("k", (2, 3))
def test_transposed_stride_one_is_the_flipped_kernel(k: int) -> None:
    # A stride-1 transposed conv is F.conv_transpose3d with stride 1 on the same voxels.
    x = _input(1, seed=5)
    w = torch.randn(k**3, 3, 2)
    up = conv3d(x, w, k, 1, 1, transposed=True)
    ref = dense_conv_transpose(x.coords, x.coords, x.feats.detach(), w, 1, k, 1, 1)
    assert (up.feats - ref).abs().max().item() <= TOL


def test_bias_and_pointwise_kernel() -> None:
    x = _input(3, seed=3)
    w, b = torch.randn(3, 6), torch.randn(6)
    y = conv3d(x, w, 1, 1, 1, bias=b)
    assert torch.allclose(y.feats, x.feats @ w + b, atol=1e-6)
    y3 = conv3d(x, torch.zeros(27, 3, 6), 3, bias=b)
    assert torch.allclose(y3.feats, b.expand(x.num_points, 6))


def test_far_apart_coordinates_hash_without_collisions() -> None:
    # The same cloud at +2**19, -2**19 and near 0 in one tensor: every copy gets the same
    # result, shifted. 524286 is a multiple of the stride 3, so the grids line up.
    shift = 524286
    base = random_voxels(80, 1, -7, 7, seed=21)
    parts = []
    for item, offset in enumerate((shift, -shift, 0)):
        c = base.clone()
        c[:, 0] = item
        c[:, 1:] += offset
        parts.append(c)
    coords = torch.cat(parts)
    assert int(coords[:, 1:].max()) > 2**19 and int(coords[:, 1:].min()) < -(2**19)
    feats = torch.randn(base.shape[0], 4).repeat(3, 1)
    w = torch.randn(27, 4, 3)
    for stride in (1, 3):
        y = conv3d(SparseTensor(coords, feats), w, 3, stride)
        ref, grid = dense_conv(base, feats[: base.shape[0]], w, 1, 3, stride, 1)
        for item, offset in enumerate((shift, -shift, 0)):
            rows = y.coords[:, 0] == item
            local = y.coords[rows].clone()
            local[:, 0] = 0
            local[:, 1:] -= offset // stride
            got, want = y.feats[rows], ref[grid.out_index(local)]
            assert (got - want).abs().max().item() <= TOL


def test_span_too_wide_to_hash_is_a_clear_error() -> None:
    coords = torch.tensor([[b, s * 2**29, s * 2**29, s * 2**29] for b in range(8) for s in (-1, 1)])
    x = SparseTensor(coords, torch.randn(16, 2))
    with pytest.raises(ValueError, match="too many to hash"):
        conv3d(x, torch.randn(27, 2, 2), 3)


def test_gradcheck_float64() -> None:
    coords = random_voxels(8, 2, -2, 3, seed=2)
    feats = torch.randn(coords.shape[0], 2, dtype=torch.float64, requires_grad=True)
    w = torch.randn(8, 2, 2, dtype=torch.float64, requires_grad=True)
    w3 = torch.randn(27, 2, 2, dtype=torch.float64, requires_grad=True)
    x = SparseTensor(coords, feats.detach())  # one cache: maps are built once, not per probe

    def strided(f: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return conv3d(x.replace(f), weight, 2, 2).feats

    def subm(f: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return conv3d(x.replace(f), weight, 3, 1).feats

    assert torch.autograd.gradcheck(strided, (feats, w))
    assert torch.autograd.gradcheck(subm, (feats, w3))


def test_strided_conv_that_reaches_no_output() -> None:
    # 1x1x1 stride 2 keeps only even coordinates: odd-only inputs leave nothing.
    feats = torch.randn(2, 2, requires_grad=True)
    x = SparseTensor(torch.tensor([[0, 1, 1, 1], [0, 3, 1, 1]]), feats)
    y = conv3d(x, torch.randn(1, 2, 3), 1, 2)
    assert y.coords.shape == (0, 4) and y.feats.shape == (0, 3)
    y.feats.sum().backward()
    assert torch.equal(feats.grad, torch.zeros(2, 2))


@pytest.mark.parametrize("k", [1, 3])
def test_autocast_runs_the_conv_in_the_weights_dtype(k: int) -> None:
    # Isolated voxels (a 3x3x3 conv finds no neighbour, only its centre: a plain matmul that
    # autocast would run in bfloat16) and a clump of neighbours (gathers and sums into float32
    # buffers): under autocast both give float32, the values and gradients of no autocast.
    isolated = torch.tensor([[0, 0, 0, 0], [0, 5, 5, 5], [0, 10, 0, 0]], dtype=torch.int32)
    clump = torch.tensor([[0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], dtype=torch.int32)
    g = torch.Generator().manual_seed(3)
    w = torch.randn(k**3, 4, 8, generator=g)
    for coords in (isolated, clump):
        feats = torch.randn(3, 4, generator=g)
        grads = []
        for amp in (False, True):
            x = SparseTensor(coords, feats.clone().requires_grad_(True))
            wk = w.clone().requires_grad_(True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                y = conv3d(x, wk, k)
            assert y.feats.dtype == torch.float32
            (y.feats * torch.arange(8.0)).sum().backward()
            grads.append((y.feats.detach(), x.feats.grad, wk.grad))
        for plain, autocast in zip(*grads, strict=True):
            torch.testing.assert_close(autocast, plain, rtol=0, atol=0)
