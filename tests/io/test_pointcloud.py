"""read_cloud / write_ply on real PLY, LAS, LAZ and PCD files written by their own libraries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.clouds import (
    LAS_RGB_FORMATS,
    LAS_VARIANTS,
    PCD_ENCODINGS,
    PLY_ENCODINGS,
    pcd_header,
    write_las_file,
    write_pcd_compressed_by_hand,
    write_pcd_file,
    write_ply_file,
)

from pcsep_cli.errors import OutputExistsError, PcsepError
from pcsep_cli.io.pointcloud import PointCloud, read_cloud, write_ply

N = 257


@pytest.fixture
def cloud() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    xyz = rng.uniform(-20.0, 20.0, (N, 3)) + [512_345.0, 5_123_456.0, 250.0]
    rgb = rng.integers(0, 256, (N, 3), dtype=np.uint8)
    rgb[0] = [0, 128, 255]
    intensity = rng.uniform(0, 1000, N).astype(np.float32)
    return xyz, rgb, intensity


def _assert_bounds(pc: PointCloud, xyz: np.ndarray) -> None:
    lo, hi = pc.bounds
    assert lo.dtype == np.float64 and lo.shape == (3,)
    np.testing.assert_array_equal(lo, xyz.min(axis=0))
    np.testing.assert_array_equal(hi, xyz.max(axis=0))


# --- PLY ------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", PLY_ENCODINGS)
@pytest.mark.parametrize("coord", ["f4", "f8"])
@pytest.mark.parametrize("colour_dtype", ["u1", "u2"])
def test_ply_round_trip(tmp_path: Path, cloud, encoding: str, coord: str, colour_dtype: str):
    xyz, rgb, intensity = cloud
    if coord == "f4":
        xyz = xyz - xyz.min(axis=0)  # float32 holds no georeferenced millimetres
    path = write_ply_file(
        tmp_path / "a.ply",
        xyz,
        rgb,
        intensity,
        encoding=encoding,
        coord=coord,
        colour_dtype=colour_dtype,
        extras=True,
        faces=4,
    )
    pc = read_cloud(path)
    expected = xyz.astype(coord).astype(np.float64)
    assert pc.format == f"ply ({encoding})"
    assert pc.num_points == N and pc.dropped == 0 and pc.source == path
    assert pc.xyz.dtype == np.float64 and pc.xyz.shape == (N, 3)
    np.testing.assert_array_equal(pc.xyz, expected)
    _assert_bounds(pc, expected)
    assert pc.rgb is not None and pc.rgb.dtype == np.uint8
    np.testing.assert_array_equal(pc.rgb, rgb)
    assert pc.intensity is not None and pc.intensity.dtype == np.float32
    np.testing.assert_array_equal(pc.intensity, intensity)


@pytest.mark.parametrize(
    "names",
    [("r", "g", "b"), ("diffuse_red", "diffuse_green", "diffuse_blue"), ("Red", "Green", "Blue")],
)
def test_ply_colour_property_names(tmp_path: Path, cloud, names: tuple[str, str, str]) -> None:
    xyz, rgb, intensity = cloud
    path = write_ply_file(
        tmp_path / "a.ply",
        xyz,
        rgb,
        intensity,
        colour_names=names,
        intensity_name="scalar_intensity",
    )
    pc = read_cloud(path)
    np.testing.assert_array_equal(pc.rgb, rgb)
    np.testing.assert_array_equal(pc.intensity, intensity)


def test_ply_without_colour_or_intensity(tmp_path: Path, cloud) -> None:
    xyz = cloud[0]
    pc = read_cloud(write_ply_file(tmp_path / "a.ply", xyz, faces=3))
    assert pc.rgb is None and pc.intensity is None
    np.testing.assert_array_equal(pc.xyz, xyz)


def test_ply_float_colours_in_unit_range(tmp_path: Path) -> None:
    from plyfile import PlyData, PlyElement

    v = np.zeros(
        3,
        dtype=[
            ("x", "f4"),
            ("y", "f4"),
            ("z", "f4"),
            ("red", "f4"),
            ("green", "f4"),
            ("blue", "f4"),
        ],
    )
    v["x"] = [0, 1, 2]
    v["red"], v["green"], v["blue"] = [0.0, 0.5, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.2]
    PlyData([PlyElement.describe(v, "vertex")]).write(str(tmp_path / "f.ply"))
    pc = read_cloud(tmp_path / "f.ply")
    np.testing.assert_array_equal(pc.rgb, [[0, 255, 0], [128, 255, 0], [255, 255, 51]])


def test_ply_vertex_after_other_element(tmp_path: Path, cloud) -> None:
    """A fixed-size element before the vertices is skipped, in binary and ASCII."""
    from plyfile import PlyData, PlyElement

    xyz = cloud[0]
    cam = np.zeros(2, dtype=[("view_px", "f4"), ("view_py", "f8")])
    v = np.zeros(N, dtype=[("x", "f8"), ("y", "f8"), ("z", "f8")])
    v["x"], v["y"], v["z"] = xyz.T
    for text in (False, True):
        PlyData(
            [PlyElement.describe(cam, "camera"), PlyElement.describe(v, "vertex")], text=text
        ).write(str(tmp_path / "c.ply"))
        np.testing.assert_array_equal(read_cloud(tmp_path / "c.ply").xyz, xyz)


def test_ply_list_element_before_vertices(tmp_path: Path, cloud) -> None:
    """Lists before the vertices (rare) fall back to plyfile's own reader."""
    from plyfile import PlyData, PlyElement

    xyz = cloud[0][:5]
    tris = np.empty(2, dtype=[("vertex_indices", "O")])
    tris["vertex_indices"] = [np.array([0, 1, 2], "i4"), np.array([1, 2, 3, 4], "i4")]
    v = np.zeros(5, dtype=[("x", "f8"), ("y", "f8"), ("z", "f8")])
    v["x"], v["y"], v["z"] = xyz.T
    PlyData([PlyElement.describe(tris, "face"), PlyElement.describe(v, "vertex")]).write(
        str(tmp_path / "l.ply")
    )
    np.testing.assert_array_equal(read_cloud(tmp_path / "l.ply").xyz, xyz)


def test_ply_crlf_line_endings(tmp_path: Path) -> None:
    header = b"ply\r\nformat ascii 1.0\r\ncomment from Windows\r\nelement vertex 2\r\n"
    header += b"property float x\r\nproperty float y\r\nproperty float z\r\nend_header\r\n"
    (tmp_path / "w.ply").write_bytes(header + b"1 2 3\r\n4 5 6\r\n")
    np.testing.assert_array_equal(read_cloud(tmp_path / "w.ply").xyz, [[1, 2, 3], [4, 5, 6]])
    binary = header.replace(b"ascii", b"binary_little_endian")
    (tmp_path / "b.ply").write_bytes(binary + np.arange(6, dtype="<f4").tobytes())
    np.testing.assert_array_equal(read_cloud(tmp_path / "b.ply").xyz, [[0, 1, 2], [3, 4, 5]])


# --- write_ply ------------------------------------------------------------------------------


@pytest.mark.parametrize("binary", [True, False])
def test_write_ply_round_trip_is_exact(tmp_path: Path, cloud, binary: bool) -> None:
    xyz, rgb, intensity = cloud
    src = PointCloud(xyz=xyz.copy(), rgb=rgb, intensity=intensity, format="memory")
    out = tmp_path / "scene.ply"
    write_ply(out, src, binary=binary)
    pc = read_cloud(out)
    assert pc.format == ("ply (binary_little_endian)" if binary else "ply (ascii)")
    np.testing.assert_array_equal(pc.xyz, xyz)
    np.testing.assert_array_equal(pc.rgb, rgb)
    np.testing.assert_array_equal(pc.intensity, intensity)
    assert [p.name for p in tmp_path.iterdir()] == ["scene.ply"]  # no temporary left


def test_write_ply_replaces_atomically_and_cleans_up(tmp_path: Path, cloud) -> None:
    xyz = cloud[0]
    out = tmp_path / "scene.ply"
    write_ply(out, PointCloud(xyz=xyz))
    write_ply(out, PointCloud(xyz=xyz[:3]))
    assert read_cloud(out).num_points == 3
    with pytest.raises(OutputExistsError):
        write_ply(out, PointCloud(xyz=xyz), overwrite=False)
    assert read_cloud(out).num_points == 3
    # Destinations that cannot be written fail without leaving a temporary file.
    (tmp_path / "dir.ply").mkdir()
    with pytest.raises(PcsepError, match="is a folder"):
        write_ply(tmp_path / "dir.ply", PointCloud(xyz=xyz))
    with pytest.raises(PcsepError, match="output folder does not exist"):
        write_ply(tmp_path / "missing" / "a.ply", PointCloud(xyz=xyz))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.ply", "scene.ply"]
    with pytest.raises(ValueError, match="needs a PointCloud"):
        write_ply(out, xyz)  # type: ignore[arg-type]


# --- LAS / LAZ ------------------------------------------------------------------------------


@pytest.mark.parametrize("version,point_format", [("1.0", 1), *LAS_VARIANTS])
def test_las_round_trip(tmp_path: Path, cloud, version: str, point_format: int) -> None:
    xyz, rgb, intensity = cloud
    inten16 = (intensity * 60).astype(np.uint16)
    has_rgb = point_format in LAS_RGB_FORMATS
    path = write_las_file(
        tmp_path / "a.las",
        xyz,
        rgb if has_rgb else None,
        inten16,
        version=version,
        point_format=point_format,
    )
    pc = read_cloud(path)
    assert pc.format == f"las {version} (point format {point_format})"
    assert pc.num_points == N
    np.testing.assert_allclose(pc.xyz, xyz, rtol=0, atol=0.0005 + 1e-9)
    if has_rgb:
        np.testing.assert_array_equal(pc.rgb, rgb)
    else:
        assert pc.rgb is None
    np.testing.assert_array_equal(pc.intensity, inten16.astype(np.float32))


@pytest.mark.parametrize("version,point_format", [("1.2", 0), ("1.2", 3), ("1.4", 6), ("1.4", 8)])
def test_laz_round_trip(tmp_path: Path, cloud, version: str, point_format: int) -> None:
    xyz, rgb, _ = cloud
    has_rgb = point_format in LAS_RGB_FORMATS
    path = write_las_file(
        tmp_path / "a.laz",
        xyz,
        rgb if has_rgb else None,
        version=version,
        point_format=point_format,
    )
    pc = read_cloud(path)
    assert pc.format == f"laz {version} (point format {point_format})"
    np.testing.assert_allclose(pc.xyz, xyz, rtol=0, atol=0.0005 + 1e-9)
    assert (pc.rgb is not None) == has_rgb
    if has_rgb:
        np.testing.assert_array_equal(pc.rgb, rgb)


def test_las_colours_8bit_in_16bit_fields(tmp_path: Path, cloud) -> None:
    """Some exporters put 0-255 in LAS's 16-bit colour fields; >> 8 would make them black."""
    xyz, rgb, _ = cloud
    pc = read_cloud(write_las_file(tmp_path / "a.las", xyz, rgb, colour_scale=1))
    np.testing.assert_array_equal(pc.rgb, rgb)
    pc = read_cloud(write_las_file(tmp_path / "b.las", xyz, rgb, colour_scale=256))
    np.testing.assert_array_equal(pc.rgb, rgb)


def test_las_scale_and_offset_are_applied(tmp_path: Path) -> None:
    xyz = np.array([[654_321.125, 5_432_109.875, 12.5], [654_322.0, 5_432_110.0, 13.0]])
    pc = read_cloud(write_las_file(tmp_path / "g.las", xyz, scale=0.125))
    np.testing.assert_array_equal(pc.xyz, xyz)


# --- PCD ------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", PCD_ENCODINGS)
@pytest.mark.parametrize("coord", [np.float32, np.float64])
def test_pcd_round_trip(tmp_path: Path, cloud, encoding: str, coord: type) -> None:
    xyz, rgb, intensity = cloud
    if coord is np.float32:
        xyz = xyz - xyz.min(axis=0)
    path = write_pcd_file(
        tmp_path / "a.pcd",
        xyz,
        rgb,
        intensity,
        encoding=encoding,
        coord=coord,
        packed_float_rgb=encoding != "ascii",
    )
    pc = read_cloud(path)
    assert pc.format == f"pcd ({encoding})"
    expected = xyz.astype(coord).astype(np.float64)
    # pypcd4 prints ASCII floats with 10 decimals.
    atol = 1e-9 if encoding == "ascii" else 0
    np.testing.assert_allclose(pc.xyz, expected, rtol=0, atol=atol)
    np.testing.assert_array_equal(pc.rgb, rgb)
    np.testing.assert_allclose(pc.intensity, intensity, rtol=1e-6)


def test_pcd_binary_compressed_written_by_pypcd4(tmp_path: Path) -> None:
    """Grid coordinates compress, so pypcd4 itself writes the LZF block here."""
    grid = np.stack(np.meshgrid(np.arange(8), np.arange(8), np.arange(4), indexing="ij"), -1)
    xyz = grid.reshape(-1, 3) * 0.25 + [100.0, 200.0, 0.0]
    rgb = np.repeat(np.array([[255, 0, 0], [0, 0, 255]], np.uint8), len(xyz) // 2, axis=0)
    path = write_pcd_file(tmp_path / "g.pcd", xyz, rgb, encoding="binary_compressed")
    import pypcd4

    assert b"DATA binary_compressed\n" in path.read_bytes()[:300]
    np.testing.assert_array_equal(pypcd4.PointCloud.from_path(path).numpy(("x",))[:, 0], xyz[:, 0])
    pc = read_cloud(path)
    assert pc.format == "pcd (binary_compressed)"
    np.testing.assert_array_equal(pc.xyz, xyz)
    np.testing.assert_array_equal(pc.rgb, rgb)


def test_pcd_xyz_only(tmp_path: Path, cloud) -> None:
    xyz = cloud[0]
    pc = read_cloud(write_pcd_file(tmp_path / "a.pcd", xyz, coord=np.float64))
    assert pc.rgb is None and pc.intensity is None
    np.testing.assert_array_equal(pc.xyz, xyz)


def test_pcd_organized_cloud_drops_nan_points(tmp_path: Path) -> None:
    """An organized 4x3 depth image, hand-built as PCL writes it: NaN where no return."""
    rec = np.zeros(12, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<f4")])
    rec["x"] = np.arange(12)
    rec["y"], rec["z"] = 1.0, 2.0
    rec["z"][[0, 5, 11]] = np.nan
    rec["x"][7] = np.inf
    word = np.array([(255 << 24) | (i << 16) | (2 * i << 8) | 3 for i in range(12)], "<u4")
    rec["rgb"] = word.view("<f4")
    keep = np.ones(12, bool)
    keep[[0, 5, 7, 11]] = False
    for data in ("binary", "binary_compressed"):
        header = pcd_header("x y z rgb", "4 4 4 4", "F F F F", "1 1 1 1", 4, 3, data)
        path = tmp_path / f"{data}.pcd"
        if data == "binary":
            path.write_bytes(header + rec.tobytes())
        else:
            write_pcd_compressed_by_hand(path, rec, header)
        pc = read_cloud(path)
        assert pc.num_points == 8 and pc.dropped == 4
        np.testing.assert_array_equal(pc.xyz[:, 0], np.arange(12)[keep])
        np.testing.assert_array_equal(pc.rgb[:, 0], np.arange(12)[keep])
        np.testing.assert_array_equal(pc.rgb[:, 1], 2 * np.arange(12)[keep])


def test_pcd_hand_built_ascii_pcl_style(tmp_path: Path) -> None:
    """PCL prints an ASCII float ``rgb`` as its uint32 bit pattern; tabs and nan occur."""
    header = pcd_header("x y z rgb intensity", "4 4 4 4 4", "F F F F F", "1 1 1 1 1", 3, 1, "ascii")
    rows = (
        f"1.5 2 3\t{(255 << 24) | (10 << 16) | (20 << 8) | 30} 7\n"
        "nan nan nan 0 0\n"
        "-1e3  0.25 4 4278190335 9.5\n"
    )
    (tmp_path / "a.pcd").write_bytes(header + rows.encode())
    pc = read_cloud(tmp_path / "a.pcd")
    assert pc.dropped == 1
    np.testing.assert_array_equal(pc.xyz, [[1.5, 2, 3], [-1000, 0.25, 4]])
    np.testing.assert_array_equal(pc.rgb, [[10, 20, 30], [0, 0, 255]])
    np.testing.assert_array_equal(pc.intensity, [7, 9.5])


def test_pcd_ascii_packed_float_printed_exactly(tmp_path: Path) -> None:
    """Writers that print the packed float itself (a denormal) keep the colour bits."""
    word = np.array([(0 << 24) | (200 << 16) | (100 << 8) | 50], "<u4")
    text = repr(float(word.view("<f4")[0]))
    header = pcd_header("x y z rgb", "4 4 4 4", "F F F F", "1 1 1 1", 1, 1, "ascii")
    (tmp_path / "a.pcd").write_bytes(header + f"0 0 0 {text}\n".encode())
    np.testing.assert_array_equal(read_cloud(tmp_path / "a.pcd").rgb, [[200, 100, 50]])


def test_pcd_padding_and_multi_count_fields(tmp_path: Path) -> None:
    """PCL pads records with ``_`` fields and stores descriptors with COUNT > 1."""
    dt = [
        ("x", "<f8"),
        ("y", "<f8"),
        ("z", "<f8"),
        ("_", "u1", (4,)),
        ("fpfh", "<f4", (3,)),
        ("intensity", "<u2"),
    ]
    rec = np.zeros(6, dtype=dt)
    rec["x"], rec["y"], rec["z"] = np.arange(6) + 5e6, 2.0, -1.0
    rec["fpfh"] = 9.0
    rec["intensity"] = np.arange(6) * 100
    header_args = ("x y z _ fpfh intensity", "8 8 8 1 4 2", "F F F U F U", "1 1 1 4 3 1", 6, 1)
    (tmp_path / "b.pcd").write_bytes(pcd_header(*header_args, "binary") + rec.tobytes())
    compressed = tmp_path / "c.pcd"
    write_pcd_compressed_by_hand(compressed, rec, pcd_header(*header_args, "binary_compressed"))
    for path in (tmp_path / "b.pcd", compressed):
        pc = read_cloud(path)
        np.testing.assert_array_equal(pc.xyz[:, 0], np.arange(6) + 5e6)
        np.testing.assert_array_equal(pc.intensity, np.arange(6) * 100)
        assert pc.rgb is None


# --- shared behaviour -----------------------------------------------------------------------


def test_format_is_read_from_magic_not_extension(tmp_path: Path, cloud) -> None:
    xyz, rgb, _ = cloud
    ply_named_las = write_ply_file(tmp_path / "scan.las", xyz, rgb)
    las_named_ply = write_las_file(tmp_path / "scan.ply", xyz, rgb)
    pcd_named_txt = write_pcd_file(tmp_path / "scan.txt", xyz - 5e6, encoding="binary")
    assert read_cloud(ply_named_las).format.startswith("ply")
    assert read_cloud(las_named_ply).format.startswith("las")
    assert read_cloud(pcd_named_txt).format == "pcd (binary)"


@pytest.mark.parametrize(
    "units,factor",
    [(None, 1.0), ("m", 1.0), ("cm", 0.01), ("mm", 0.001), ("ft", 0.3048), ("MM", 0.001)],
)
def test_units_scale_to_metres(tmp_path: Path, cloud, units: str | None, factor: float) -> None:
    xyz = cloud[0] - 5e5
    path = write_ply_file(tmp_path / "a.ply", xyz)
    pc = read_cloud(path, units=units)
    np.testing.assert_array_equal(pc.xyz, xyz * factor)


def test_non_finite_points_are_dropped_and_counted(tmp_path: Path, cloud) -> None:
    xyz, rgb, intensity = cloud
    bad = xyz.copy()
    bad[[3, 10, 11], 1] = np.nan
    bad[20, 2] = np.inf
    bad[21, 0] = -np.inf
    pc = read_cloud(write_ply_file(tmp_path / "a.ply", bad, rgb, intensity))
    keep = np.isfinite(bad).all(axis=1)
    assert pc.dropped == 5 and pc.num_points == N - 5
    np.testing.assert_array_equal(pc.xyz, xyz[keep])
    np.testing.assert_array_equal(pc.rgb, rgb[keep])
    np.testing.assert_array_equal(pc.intensity, intensity[keep])


def test_point_cloud_checks_shapes() -> None:
    xyz = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"xyz must be \[N, 3\], got \[4, 2\]"):
        PointCloud(xyz=np.zeros((4, 2)))
    with pytest.raises(ValueError, match="float64"):
        PointCloud(xyz=xyz.astype(np.float32))
    with pytest.raises(ValueError, match=r"rgb must be uint8 \[4, 3\], got uint8 \[3, 3\]"):
        PointCloud(xyz=xyz, rgb=np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError, match=r"intensity must be float32 \[4\], got float64 \[4\]"):
        PointCloud(xyz=xyz, intensity=np.zeros(4))
    pc = PointCloud(xyz=np.array([[0.0, 1, 2], [3, -4, 5]]))
    assert pc.num_points == 2
    np.testing.assert_array_equal(pc.bounds[0], [0, -4, 2])
    np.testing.assert_array_equal(pc.bounds[1], [3, 1, 5])


def test_readers_hand_back_writable_arrays(tmp_path: Path, cloud) -> None:
    """Arrays are the caller's own: no read-only views of a memory-mapped file."""
    xyz, rgb, intensity = cloud
    for path in (
        write_ply_file(tmp_path / "a.ply", xyz, rgb, intensity),
        write_pcd_file(tmp_path / "a.pcd", xyz, rgb, intensity, encoding="binary"),
    ):
        pc = read_cloud(path)
        for array in (pc.xyz, pc.rgb, pc.intensity):
            assert array.flags.writeable and array.flags.owndata


def test_importing_the_reader_module_stays_light() -> None:
    """plyfile/laspy/lzf/pye57 load only when a file of their format is read (fast --help)."""
    code = (
        "import sys, pcsep_cli.io.pointcloud; "
        "print(sorted(m for m in ('plyfile', 'laspy', 'lzf', 'pye57', 'torch') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("point_format", [6, 7, 8, 9, 10])
def test_laz_14_with_extra_bytes_over_several_chunks(tmp_path: Path, point_format: int) -> None:
    """Layered LAZ (formats 6-10) written by laspy + lazrs, 3 chunks and 3 extra bytes per
    point: the layer-size check (io/las.py) passes every valid chunk."""
    import laspy

    header = laspy.LasHeader(point_format=point_format, version="1.4")
    header.add_extra_dim(laspy.ExtraBytesParams(name="tag", type=np.uint8))
    header.add_extra_dim(laspy.ExtraBytesParams(name="count", type=np.uint16))
    header.scales, header.offsets = np.full(3, 0.001), np.zeros(3)
    las = laspy.LasData(header)
    n = 120_001  # lazrs writes chunks of 50,000 points
    rng = np.random.default_rng(point_format)
    xyz = rng.uniform(-50, 50, (n, 3))
    las.x, las.y, las.z = xyz.T
    las.tag = rng.integers(0, 255, n, dtype=np.uint8)
    path = tmp_path / "big.laz"
    las.write(path)
    pc = read_cloud(path)
    assert pc.num_points == n
    np.testing.assert_allclose(pc.xyz, xyz, rtol=0, atol=0.0005 + 1e-9)
