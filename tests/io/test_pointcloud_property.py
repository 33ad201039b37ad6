"""Random clouds round-trip through every format within that format's precision (hypothesis)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from helpers.clouds import write_las_file, write_pcd_file, write_ply_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pcsep_cli.io.pointcloud import read_cloud

# name -> (writer, keyword arguments, coordinate tolerance in metres, holds NaN)
FORMATS = {
    "ply-ascii": (write_ply_file, {"encoding": "ascii"}, 0.0, True),
    "ply-le": (write_ply_file, {"encoding": "binary_little_endian"}, 0.0, True),
    "ply-be-f4": (write_ply_file, {"encoding": "binary_big_endian", "coord": "f4"}, None, True),
    "las-1.2-pf3": (write_las_file, {"version": "1.2", "point_format": 3}, 0.0005, False),
    "las-1.4-pf8": (write_las_file, {"version": "1.4", "point_format": 8}, 0.0005, False),
    "las-1.4-pf10": (write_las_file, {"version": "1.4", "point_format": 10}, 0.0005, False),
    "laz-1.4-pf7": (write_las_file, {"version": "1.4", "point_format": 7}, 0.0005, False),
    # pypcd4's ASCII writer loses a float-packed rgb (see helpers/clouds.py): uint32 rgba.
    "pcd-ascii": (
        write_pcd_file,
        {"encoding": "ascii", "coord": np.float64, "packed_float_rgb": False},
        1e-9,
        True,
    ),
    "pcd-binary": (write_pcd_file, {"encoding": "binary", "coord": np.float64}, 0.0, True),
    "pcd-compressed": (
        write_pcd_file,
        {"encoding": "binary_compressed", "coord": np.float64},
        0.0,
        True,
    ),
}
SUFFIX = {"ply": ".ply", "las": ".las", "laz": ".laz", "pcd": ".pcd"}


@st.composite
def clouds(draw: st.DrawFn, with_nan: bool) -> tuple[np.ndarray, np.ndarray | None, int]:
    n = draw(st.integers(1, 300))
    offset = draw(
        st.sampled_from([0.0, 5_000_000.0, -2_500_000.0, 652_000.0])
        | st.floats(-6e6, 6e6, allow_nan=False)
    )
    local = draw(
        arrays(np.float64, (n, 3), elements=st.floats(-500, 500, allow_nan=False, width=64))
    )
    xyz = local + np.array([offset, -offset / 2, offset / 1000])
    rgb = draw(st.none() | arrays(np.uint8, (n, 3)))
    dropped = 0
    if with_nan and n > 1 and draw(st.booleans()):
        rows = draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=n - 1))
        xyz[sorted(rows), draw(st.integers(0, 2))] = np.nan
        dropped = len(rows)
    return xyz, rgb, dropped


def _check(name: str, data: st.DataObject) -> None:
    writer, kwargs, atol, holds_nan = FORMATS[name]
    xyz, rgb, dropped = data.draw(clouds(with_nan=holds_nan))
    kind = name.split("-")[0]
    with tempfile.TemporaryDirectory() as folder:
        path = writer(Path(folder) / f"c{SUFFIX[kind]}", xyz, rgb, **kwargs)
        pc = read_cloud(path)
    keep = np.isfinite(xyz).all(axis=1)
    expected = xyz[keep]
    assert pc.num_points == len(expected) and pc.dropped == dropped
    assert pc.format.startswith(kind)
    if atol is None:  # float32 coordinates: exactly the float32 value
        np.testing.assert_array_equal(pc.xyz, expected.astype(np.float32).astype(np.float64))
    else:
        # LAS stores integers times the scale; ASCII PCD prints 10 decimals; at 6e6 m float64
        # itself is off by up to 1e-9 m.
        np.testing.assert_allclose(pc.xyz, expected, rtol=0, atol=atol + 2e-9)
    lo, hi = pc.bounds
    np.testing.assert_array_equal(lo, pc.xyz.min(axis=0))
    np.testing.assert_array_equal(hi, pc.xyz.max(axis=0))
    if kind in ("las", "laz"):
        # Every LAS format here has colour fields (zeros when unset).
        assert pc.rgb is not None
        np.testing.assert_array_equal(pc.rgb, rgb if rgb is not None else 0)
    elif rgb is None:
        assert pc.rgb is None
    else:
        np.testing.assert_array_equal(pc.rgb, rgb[keep])


@pytest.mark.parametrize("name", sorted(FORMATS))
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_random_clouds_round_trip(name: str, data: st.DataObject) -> None:
    _check(name, data)
