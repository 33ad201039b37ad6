"""Bad input to read_cloud: one PointCloudError naming the file and the fix, never a library
exception, and promises of absurd sizes refused before anything is allocated."""

from __future__ import annotations

import os
import struct
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers.clouds import (
    pcd_header,
    write_las_file,
    write_pcd_compressed_by_hand,
    write_pcd_file,
    write_ply_file,
)

from pcsep_cli.errors import PointCloudError
from pcsep_cli.io.pointcloud import MAX_POINTS, read_cloud

N = 1000


@pytest.fixture
def xyz() -> np.ndarray:
    return np.random.default_rng(3).uniform(-5, 5, (N, 3))


def _fails(path: Path, *patterns: str, units: str | None = None) -> PointCloudError:
    with pytest.raises(PointCloudError) as info:
        read_cloud(path, units=units)
    err = info.value
    text = str(err)
    assert "\n" not in text
    assert err.path == str(path) and text.startswith(str(path))
    assert err.hint, "every error says how to fix it"
    for pattern in patterns:
        assert pattern in text, f"{pattern!r} not in {text!r}"
    return err


def _cut(src: Path, dst: Path, keep: int) -> Path:
    dst.write_bytes(src.read_bytes()[:keep])
    return dst


def _tail(path: Path, encoding: str) -> int:
    """Bytes to cut for a truncation: an ASCII file cut inside its last number still parses
    (a shorter number), so ASCII files lose their last line and a bit more."""
    if encoding != "ascii":
        return 5
    return len(path.read_bytes().rstrip(b"\n").rsplit(b"\n", 1)[1]) + 4


def _refused_fast(path: Path, *patterns: str) -> None:
    """A promise of 10^12 points fails in milliseconds without allocating it."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        _fails(path, *patterns)
    finally:
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert elapsed < 0.5
    assert peak < 20 * 2**20


# --- files that are not there or not clouds ------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    _fails(tmp_path / "nope.ply", "no such file")


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "scan.ply").mkdir()
    _fails(tmp_path / "scan.ply", "is a folder")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "e.ply").write_bytes(b"")
    _fails(tmp_path / "e.ply", "empty")


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.ply"
    os.mkfifo(fifo)
    _fails(fifo, "not a regular file")


def _as_unprivileged_user(fn) -> None:  # noqa: ANN001
    """Run fn with the effective uid of 'nobody' when root (root ignores file modes)."""
    if os.geteuid() != 0:
        fn()
        return
    os.seteuid(65534)
    try:
        fn()
    finally:
        os.seteuid(0)


def test_unreadable_file(xyz: np.ndarray) -> None:
    folder = Path(tempfile.mkdtemp(prefix="pcsep-perm-"))
    try:
        folder.chmod(0o755)
        path = write_ply_file(folder / "secret.ply", xyz)
        path.chmod(0)
        _as_unprivileged_user(lambda: _fails(path, "permission denied"))
        locked = folder / "locked"
        locked.mkdir()
        write_ply_file(locked / "a.ply", xyz)
        locked.chmod(0)
        _as_unprivileged_user(lambda: _fails(locked / "a.ply", "permission denied"))
    finally:
        for p in (folder / "locked",):
            if p.exists():
                p.chmod(0o755)
        for p in sorted(folder.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        folder.rmdir()


def test_wav_renamed_ply(tmp_path: Path) -> None:
    path = tmp_path / "scene.ply"
    sf.write(path, np.zeros((800, 2), np.float32), 8000, format="WAV")
    err = _fails(path, "named .ply but not a PLY, LAS/LAZ, PCD or E57 file", "WAV audio")
    assert "AUDIO and CLOUD" in err.hint


def test_text_xyz_and_garbage(tmp_path: Path) -> None:
    (tmp_path / "a.xyz").write_text("1.0 2.0 3.0\n4 5 6\n")
    _fails(tmp_path / "a.xyz", "plain-text XYZ", "convert it to PLY")
    (tmp_path / "b.pcd").write_bytes(bytes(range(256)) * 4)
    _fails(tmp_path / "b.pcd", "named .pcd but not a PLY", "starts with bytes 00 01 02")


def test_unknown_units(tmp_path: Path, xyz: np.ndarray) -> None:
    err = _fails(
        write_ply_file(tmp_path / "a.ply", xyz), "unknown units 'furlong'", units="furlong"
    )
    for unit in ("m", "cm", "mm", "ft"):
        assert unit in err.hint


def test_extent_over_100_km_unless_units_say_so(tmp_path: Path, xyz: np.ndarray) -> None:
    far = xyz.copy()
    far[0, 0] = 150_000.0
    path = write_ply_file(tmp_path / "a.ply", far)
    err = _fails(path, "spans 150.0 km")
    assert "--units" in err.hint
    assert read_cloud(path, units="mm").bounds[1][0] == pytest.approx(150.0)


def test_no_finite_point(tmp_path: Path) -> None:
    bad = np.full((4, 3), np.nan)
    bad[1] = [np.inf, 0, 0]
    _fails(write_ply_file(tmp_path / "a.ply", bad), "none of its 4 points has finite coordinates")


def test_zero_points(tmp_path: Path) -> None:
    _fails(write_ply_file(tmp_path / "a.ply", np.zeros((0, 3))), "holds no points")
    header = pcd_header("x y z", "4 4 4", "F F F", "1 1 1", 0, 1, "binary")
    (tmp_path / "a.pcd").write_bytes(header)
    _fails(tmp_path / "a.pcd", "holds no points")


# --- PLY ------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["binary_little_endian", "binary_big_endian", "ascii"])
def test_ply_truncated(tmp_path: Path, xyz: np.ndarray, encoding: str) -> None:
    full = write_ply_file(tmp_path / "a.ply", xyz, encoding=encoding)
    size = full.stat().st_size
    _fails(_cut(full, tmp_path / "cut.ply", size - _tail(full, encoding)), "truncated")
    _fails(_cut(full, tmp_path / "cut.ply", size // 2), "truncated")
    _fails(_cut(full, tmp_path / "cut.ply", 40), "no end_header", "truncated")


@pytest.mark.parametrize("encoding", ["binary_little_endian", "ascii"])
def test_ply_header_promises_more(tmp_path: Path, xyz: np.ndarray, encoding: str) -> None:
    data = write_ply_file(tmp_path / "a.ply", xyz, encoding=encoding).read_bytes()
    more = data.replace(b"element vertex 1000\n", b"element vertex 1800\n", 1)
    (tmp_path / "more.ply").write_bytes(more)
    _fails(tmp_path / "more.ply", "1,800 vertices", "truncated")
    huge = data.replace(b"element vertex 1000\n", b"element vertex 1000000000000\n", 1)
    (tmp_path / "huge.ply").write_bytes(huge)
    _refused_fast(tmp_path / "huge.ply", "1,000,000,000,000 vertices", "limit of 500,000,000")
    over = data.replace(b"element vertex 1000\n", b"element vertex 400000000\n", 1)
    (tmp_path / "over.ply").write_bytes(over)
    _refused_fast(tmp_path / "over.ply", "400,000,000 vertices", "file holds only")


def test_ply_faces_promised_beyond_the_file(tmp_path: Path, xyz: np.ndarray) -> None:
    """Faces after the vertices are never read, but a face count the file cannot hold is
    refused only if it comes before the vertices; after them it is ignored."""
    path = write_ply_file(tmp_path / "a.ply", xyz, faces=3)
    data = path.read_bytes().replace(b"element face 3\n", b"element face 999999999\n", 1)
    (tmp_path / "f.ply").write_bytes(data)
    assert read_cloud(tmp_path / "f.ply").num_points == N


def test_ply_bad_headers(tmp_path: Path, xyz: np.ndarray) -> None:
    data = write_ply_file(tmp_path / "a.ply", xyz).read_bytes()
    cases = {
        "no_vertex.ply": (data.replace(b"element vertex", b"element points", 1), "no 'vertex'"),
        "no_z.ply": (data.replace(b"property double z\n", b"property double w\n", 1), "no z"),
        "bad_type.ply": (data.replace(b"property double x", b"property quad x", 1), "bad PLY"),
        "bad_format.ply": (
            data.replace(b"format binary_little_endian 1.0", b"format bin 1.0"),
            "bad PLY header",
        ),
        "bad_count.ply": (data.replace(b"element vertex 1000", b"element vertex lots"), "integer"),
    }
    for name, (content, pattern) in cases.items():
        (tmp_path / name).write_bytes(content)
        _fails(tmp_path / name, pattern)


def test_ply_ascii_rows_that_do_not_match_the_header(tmp_path: Path) -> None:
    head = b"ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\n"
    head += b"property float z\nend_header\n"
    (tmp_path / "short.ply").write_bytes(head + b"1.0 2.0 3.0\n4.0 5.0\n")
    _fails(tmp_path / "short.ply", "ASCII PLY")
    (tmp_path / "long.ply").write_bytes(head + b"1 2 3 4\n4 5 6 7\n")
    _fails(tmp_path / "long.ply", "4 values per line", "3 properties")
    (tmp_path / "word.ply").write_bytes(head + b"1 2 3\n4 five 6\n")
    _fails(tmp_path / "word.ply", "bad ASCII PLY vertex data")


# --- LAS / LAZ ------------------------------------------------------------------------------


def _set_las_count(data: bytes, count: int, version: str) -> bytes:
    out = bytearray(data)
    if version == "1.4":
        out[247:255] = struct.pack("<Q", count)  # extended point count
    out[107:111] = struct.pack("<I", min(count, 2**32 - 1) if version != "1.4" else 0)
    return bytes(out)


@pytest.mark.parametrize("ext", ["las", "laz"])
@pytest.mark.parametrize("version,point_format", [("1.2", 3), ("1.4", 7)])
def test_las_truncated_and_overpromising(
    tmp_path: Path, xyz: np.ndarray, ext: str, version: str, point_format: int
) -> None:
    path = write_las_file(tmp_path / f"a.{ext}", xyz, version=version, point_format=point_format)
    data = path.read_bytes()
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(data[: len(data) * 2 // 3])
    _fails(cut, "truncated")
    more = tmp_path / f"more.{ext}"
    more.write_bytes(_set_las_count(data, N + 500, version))
    _fails(more, f"{N + 500:,}", "truncated")
    huge = tmp_path / f"huge.{ext}"
    huge.write_bytes(_set_las_count(data, 10**12, version))
    _refused_fast(huge, f"over pcsep's limit of {MAX_POINTS:,}")
    cut.write_bytes(data[:100])
    _fails(cut, "bad LAS header")


def test_las_corrupt_header(tmp_path: Path, xyz: np.ndarray) -> None:
    data = bytearray(
        write_las_file(tmp_path / "a.las", xyz, version="1.2", point_format=3).read_bytes()
    )
    data[104] = 42  # point data format id 42 does not exist
    (tmp_path / "b.las").write_bytes(bytes(data))
    _fails(tmp_path / "b.las", "LAS")


# Header byte offsets of the X scale factor and X offset (float64 each, then Y and Z).
_LAS_SCALE, _LAS_OFFSET = 131, 155


@pytest.mark.parametrize("ext", ["las", "laz"])
@pytest.mark.parametrize(
    ("at", "value", "message"),
    [
        (_LAS_SCALE, 0.0, "X scale factor is 0; it must be a finite number other than 0"),
        (_LAS_SCALE + 8, float("nan"), "Y scale factor is nan"),
        (_LAS_SCALE + 16, float("-inf"), "Z scale factor is -inf"),
        (_LAS_OFFSET + 8, float("inf"), "Y offset is inf; it must be a finite number"),
    ],
)
def test_las_scale_or_offset_that_places_no_point_is_refused(
    tmp_path: Path, xyz: np.ndarray, ext: str, at: int, value: float, message: str
) -> None:
    path = write_las_file(tmp_path / f"a.{ext}", xyz)
    data = bytearray(path.read_bytes())
    struct.pack_into("<d", data, at, value)
    path.write_bytes(bytes(data))
    # Before: a zero scale read every point as 0 on that axis (all three: one point at the
    # origin); a non-finite one blamed the points for being NaN.
    _fails(path, message, "header is corrupt")


def test_all_scales_zero_is_refused_not_read_as_a_point_at_the_origin(
    tmp_path: Path, xyz: np.ndarray
) -> None:
    path = write_las_file(tmp_path / "a.las", xyz)
    data = bytearray(path.read_bytes())
    struct.pack_into("<6d", data, _LAS_SCALE, *[0.0] * 6)
    path.write_bytes(bytes(data))
    _fails(path, "X scale factor is 0")


# --- PCD ------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["ascii", "binary", "binary_compressed"])
def test_pcd_truncated(tmp_path: Path, xyz: np.ndarray, encoding: str) -> None:
    full = write_pcd_file(tmp_path / "a.pcd", xyz, encoding=encoding)
    size = full.stat().st_size
    _fails(_cut(full, tmp_path / "cut.pcd", size - _tail(full, encoding)), "truncated")
    _fails(_cut(full, tmp_path / "cut.pcd", 60), "PCD header ends before its DATA line")


def test_pcd_binary_cut_at_a_record_boundary(tmp_path: Path, xyz: np.ndarray) -> None:
    """pypcd4 silently returns fewer points here; the promise must be checked."""
    full = write_pcd_file(tmp_path / "a.pcd", xyz, encoding="binary")
    _fails(
        _cut(full, tmp_path / "cut.pcd", full.stat().st_size - 12 * 10), "1,000 points", "truncated"
    )


@pytest.mark.parametrize("encoding", ["ascii", "binary", "binary_compressed"])
def test_pcd_promise_of_a_trillion_points(tmp_path: Path, encoding: str) -> None:
    header = pcd_header("x y z", "4 4 4", "F F F", "1 1 1", 1_000_000, 1_000_000, encoding)
    (tmp_path / "huge.pcd").write_bytes(header + b"\0" * 64)
    _refused_fast(tmp_path / "huge.pcd", "1,000,000,000,000 points", "limit")
    header = pcd_header("x y z", "4 4 4", "F F F", "1 1 1", 20_000, 20_000, encoding)
    (tmp_path / "big.pcd").write_bytes(header + b"\0" * 64)
    _refused_fast(tmp_path / "big.pcd", "400,000,000")


@pytest.mark.parametrize(
    "fields,size,typ,count,message",
    [
        ("x y z", "4 4 4 4", "F F F", "1 1 1", "3 FIELDS (x y z) but 4 SIZE"),
        ("x y z", "4 4 4", "F F", "1 1 1", "but 2 TYPE"),
        ("x y z rgb", "4 4 4 4", "F F F F", "1 1 1", "but 3 COUNT"),
        ("x y z", "4 4 3", "F F F", "1 1 1", "TYPE F with SIZE 3"),
        ("x y z", "4 4 4", "F F Q", "1 1 1", "TYPE Q"),
        ("x y z", "4 4 4", "F F F", "1 1 0", "COUNT 0"),
        ("x y w", "4 4 4", "F F F", "1 1 1", "no 'z' field"),
        ("x y z x", "4 4 4 4", "F F F F", "1 1 1 1", "repeat a name"),
        ("x y z", "4 4 4", "F F F", "1 2 1", "'y' has COUNT 2"),
    ],
)
def test_pcd_inconsistent_header(
    tmp_path: Path, fields: str, size: str, typ: str, count: str, message: str
) -> None:
    header = pcd_header(fields, size, typ, count, 2, 1, "binary")
    (tmp_path / "h.pcd").write_bytes(header + b"\0" * 200)
    err = _fails(tmp_path / "h.pcd", message)
    assert "header" in err.hint


def test_pcd_other_header_faults(tmp_path: Path) -> None:
    ok = ("x y z", "4 4 4", "F F F", "1 1 1")
    (tmp_path / "p.pcd").write_bytes(pcd_header(*ok, 2, 2, "binary", points=3) + b"\0" * 99)
    _fails(tmp_path / "p.pcd", "POINTS 3 is not WIDTH × HEIGHT")
    (tmp_path / "d.pcd").write_bytes(pcd_header(*ok, 2, 1, "zipped") + b"\0" * 99)
    _fails(tmp_path / "d.pcd", "DATA is 'zipped'")
    (tmp_path / "w.pcd").write_bytes(
        pcd_header(*ok, 2, 1, "binary").replace(b"WIDTH 2", b"WIDTH two")
    )
    _fails(tmp_path / "w.pcd", "WIDTH is two")


def test_pcd_corrupt_compressed_block(tmp_path: Path, xyz: np.ndarray) -> None:
    path = write_pcd_file(tmp_path / "a.pcd", xyz, encoding="binary_compressed")
    data = bytearray(path.read_bytes())
    start = data.index(b"DATA binary_compressed\n") + len(b"DATA binary_compressed\n")
    bad_size = bytearray(data)
    bad_size[start + 4 : start + 8] = struct.pack("<I", 12 * N + 4)
    (tmp_path / "size.pcd").write_bytes(bytes(bad_size))
    _fails(tmp_path / "size.pcd", "unpacks to 12,004 bytes", "need 12,000")
    garbled = bytearray(data)
    garbled[start + 8 : start + 40] = b"\xff" * 32
    (tmp_path / "lzf.pcd").write_bytes(bytes(garbled))
    _fails(tmp_path / "lzf.pcd", "corrupt")


def test_pcd_ascii_rows_that_do_not_match_the_header(tmp_path: Path) -> None:
    header = pcd_header("x y z", "4 4 4", "F F F", "1 1 1", 2, 1, "ascii")
    (tmp_path / "a.pcd").write_bytes(header + b"1 2 3 4\n5 6 7 8\n")
    _fails(tmp_path / "a.pcd", "rows hold 4 values, the header declares 3")
    (tmp_path / "b.pcd").write_bytes(header + b"1 2 3\n5 x 7\n")
    _fails(tmp_path / "b.pcd", "bad ASCII PCD data")


def test_hand_built_compressed_with_wrong_columns(tmp_path: Path) -> None:
    rec = np.zeros(3, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4")])
    header = pcd_header("x y z", "4 4 4", "F F F", "1 1 1", 4, 1, "binary_compressed")
    write_pcd_compressed_by_hand(tmp_path / "c.pcd", rec, header)
    _fails(tmp_path / "c.pcd", "unpacks to 36 bytes", "4 points")
