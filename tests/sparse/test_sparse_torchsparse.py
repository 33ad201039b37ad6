"""Conformance with torchsparse 2.1: same weights, same voxels, same outputs.

Runs only where torchsparse imports and CUDA is present (a GPU machine); elsewhere it is
the one skip allowed, because it needs hardware, not an install.
"""

from __future__ import annotations

import pytest
import torch
from sparse_reference import random_voxels

from pcsep_cli.sparse import Conv3d, SparseTensor

pytestmark = pytest.mark.gpu

SETTINGS = [
    # (kernel, stride, transposed)
    (3, 1, False),
    (2, 1, False),
    (5, 1, False),
    (2, 2, False),
    (3, 2, False),
    (2, 2, True),
    (3, 2, True),
]


def _by_coords(coords: torch.Tensor, feats: torch.Tensor) -> dict:
    return {tuple(c): f for c, f in zip(coords.tolist(), feats.cpu(), strict=True)}


def test_pcsep_matches_torchsparse() -> None:
    ts = pytest.importorskip("torchsparse")
    if not torch.cuda.is_available():
        pytest.skip("torchsparse conformance needs a CUDA device")
    for kernel, stride, transposed in SETTINGS:
        diff = _compare(ts, kernel, stride, transposed)
        assert diff <= 1e-3, f"kernel {kernel} stride {stride} transposed {transposed}: {diff}"


def _compare(ts, kernel: int, stride: int, transposed: bool) -> float:
    tsnn = ts.nn
    torch.manual_seed(0)
    coords = random_voxels(400, 2, 0, 24, seed=3).cuda()
    feats = torch.randn(coords.shape[0], 8, device="cuda")

    ours_x = SparseTensor(coords, feats)
    theirs_x = ts.SparseTensor(feats=feats, coords=coords)
    if transposed:  # both sides first run the strided conv the transposed one goes back along
        down_ours = Conv3d(8, 8, kernel, stride, engine="torch").cuda()
        down_theirs = tsnn.Conv3d(8, 8, kernel, stride).cuda()
        down_theirs.load_state_dict(down_ours.state_dict())
        ours_x, theirs_x = down_ours(ours_x), down_theirs(theirs_x)
    ours = Conv3d(8, 6, kernel, stride, bias=True, transposed=transposed, engine="torch").cuda()
    theirs = tsnn.Conv3d(8, 6, kernel, stride, bias=True, transposed=transposed).cuda()
    theirs.load_state_dict(ours.state_dict())  # same names and shapes, unchanged
    with torch.no_grad():
        a = ours(ours_x)
        b = theirs(theirs_x)
    got, want = _by_coords(a.coords, a.feats), _by_coords(b.coords, b.feats)
    assert got.keys() == want.keys(), f"kernel {kernel} stride {stride}: other voxels"
    diff = max(float((got[k] - want[k]).abs().max()) for k in got)
    if not transposed:  # pcsep's torchsparse bridge gives the same again
        bridged = Conv3d(8, 6, kernel, stride, bias=True, engine="torchsparse").cuda()
        bridged.load_state_dict(ours.state_dict())
        with torch.no_grad():
            c = bridged(SparseTensor(coords, feats))
        via = _by_coords(c.coords, c.feats)
        assert via.keys() == got.keys()
        diff = max(diff, max(float((via[k] - got[k]).abs().max()) for k in got))
    return diff
