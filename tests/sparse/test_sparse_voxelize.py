"""voxelize against a NumPy reference: voxels, mean/first features, index, inverse, batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pcsep_cli.sparse import voxelize


def _reference(points: np.ndarray, size: float, feats: np.ndarray, batch: np.ndarray):
    grid = np.floor(points / size).astype(np.int64)
    coords = np.concatenate([batch[:, None], grid], axis=1)
    # Sorted by (batch, z, y, x): x is the fastest key digit.
    uniq, first, inverse = np.unique(
        coords[:, [0, 3, 2, 1]], axis=0, return_index=True, return_inverse=True
    )
    inverse = inverse.reshape(-1)
    sums = np.zeros((len(uniq), feats.shape[1]))
    np.add.at(sums, inverse, feats)
    mean = sums / np.bincount(inverse)[:, None]
    return uniq[:, [0, 3, 2, 1]], mean, first, inverse


def test_matches_numpy_reference_with_batches_and_negative_coordinates() -> None:
    rng = np.random.default_rng(0)
    points = rng.uniform(-0.5, 0.5, (3000, 3))
    feats = rng.normal(size=(3000, 4))
    batch = rng.integers(0, 3, 3000)
    vox = voxelize(
        torch.from_numpy(points),
        0.1,
        torch.from_numpy(feats),
        batch=torch.from_numpy(batch),
    )
    coords, mean, first, inverse = _reference(points, 0.1, feats, batch)
    assert vox.coords.dtype == torch.int32
    assert int(vox.coords[:, 1:].min()) < 0
    np.testing.assert_array_equal(vox.coords.numpy(), coords)
    np.testing.assert_allclose(vox.feats.numpy(), mean, atol=1e-12)
    np.testing.assert_array_equal(vox.index.numpy(), first)
    np.testing.assert_array_equal(vox.inverse.numpy(), inverse)
    # inverse scatters voxel values back onto their points
    np.testing.assert_array_equal(vox.coords[vox.inverse, 1:].numpy(), np.floor(points / 0.1))


def test_first_reduction_keeps_the_first_points_features() -> None:
    points = torch.tensor([[0.01, 0, 0], [0.02, 0, 0], [0.5, 0, 0], [0.03, 0, 0]])
    feats = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    vox = voxelize(points, 0.1, feats, reduce="first")
    assert vox.feats.tolist() == [[1.0], [3.0]]
    assert vox.index.tolist() == [0, 2]
    assert vox.inverse.tolist() == [0, 0, 1, 0]
    mean = voxelize(points, 0.1, feats)
    assert mean.feats[:, 0].tolist() == pytest.approx([7 / 3, 3.0])


def test_default_features_are_the_points_and_per_axis_sizes() -> None:
    points = torch.tensor([[0.05, 0.05, 0.05], [0.15, 0.05, 0.05], [0.12, 0.02, 0.3]])
    vox = voxelize(points, (0.2, 0.1, 0.1))
    assert vox.coords.tolist() == [[0, 0, 0, 0], [0, 0, 0, 3]]
    assert torch.allclose(vox.feats[0], points[:2].mean(0))


def test_georeferenced_float64_points_quantize_exactly() -> None:
    # 5,000 km east: float32 would merge neighbouring centimetre voxels.
    base = np.array([5_000_000.0, 4_000_000.0, 300.0])
    points = base + np.array([[0.001, 0, 0], [0.011, 0, 0], [0.021, 0, 0]])
    vox = voxelize(torch.from_numpy(points), 0.01)
    assert vox.coords[:, 1].tolist() == [500_000_000, 500_000_001, 500_000_002]


def test_empty_input() -> None:
    vox = voxelize(torch.empty(0, 3), 0.1, torch.empty(0, 2))
    assert vox.coords.shape == (0, 4) and vox.feats.shape == (0, 2)
    assert vox.inverse.numel() == 0


@pytest.mark.parametrize(
    ("points", "kwargs", "match"),
    [
        (torch.zeros(4, 2), {}, r"points must be \[N, 3\], got \(4, 2\)"),
        (torch.zeros(4, 3, dtype=torch.int64), {}, "floating point"),
        (torch.tensor([[0.0, float("nan"), 0.0]]), {}, "NaN"),
        (torch.zeros(4, 3), {"voxel_size": 0.0}, "voxel_size must be > 0"),
        (torch.zeros(4, 3), {"features": torch.zeros(3, 2)}, r"features must be \[4, C\]"),
        (torch.zeros(4, 3), {"reduce": "max"}, "reduce must be one of"),
        (torch.zeros(4, 3), {"batch": -torch.ones(4, dtype=torch.int64)}, ">= 0"),
        (torch.full((1, 3), 1e9, dtype=torch.float64), {}, "beyond"),
    ],
)
def test_bad_input_raises_value_error(points: torch.Tensor, kwargs: dict, match: str) -> None:
    kwargs.setdefault("voxel_size", 0.01)
    with pytest.raises(ValueError, match=match):
        voxelize(points, **kwargs)


@settings(max_examples=40, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 60), st.just(3)), elements=st.floats(-3, 3)),
    st.sampled_from([0.05, 0.3, 1.0]),
)
def test_property_every_point_lies_in_its_voxel(points: np.ndarray, size: float) -> None:
    vox = voxelize(torch.from_numpy(points), size)
    lo = vox.coords[vox.inverse, 1:].double() * size
    p = torch.from_numpy(points)
    assert bool(((p >= lo - 1e-9) & (p < lo + size + 1e-9)).all())
    assert len({tuple(c) for c in vox.coords.tolist()}) == vox.coords.shape[0]
    assert vox.coords.shape[0] == len(np.unique(np.floor(points / size), axis=0))
