"""E57 reading (pcsep_cli/io/e57.py) on real files written by pye57 / libE57Format.

Cartesian (double, single, scaled-integer) and spherical scans, several scans merged with their
poses, missing points, 8- and 16-bit colour, intensity; bad files give one PointCloudError
naming the file and the fix; ``pcsep inspect`` and ``pcsep separate`` take E57 scenes.
"""

from __future__ import annotations

import json
import os
import re
import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers.audio import output_file
from helpers.clouds import (
    E57Scan,
    e57_logical,
    e57_paged,
    e57_xml_span,
    patch_e57,
    write_e57_file,
)
from helpers.scenes import person_mesh, room
from scipy.spatial.transform import Rotation
from typer.testing import CliRunner

from pcsep_cli.cli import app
from pcsep_cli.errors import PointCloudError
from pcsep_cli.io.pointcloud import read_cloud

N = 300
runner = CliRunner()


@pytest.fixture
def cloud() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    xyz = rng.uniform(-4, 4, (N, 3)) + [512_000.0, 5_400_000.0, 100.0]
    rgb = rng.integers(0, 256, (N, 3), dtype=np.uint8)
    intensity = rng.uniform(0, 4000, N).astype(np.float32)
    return xyz, rgb, intensity


def _spherical(xyz: np.ndarray) -> np.ndarray:
    """(range, azimuth, elevation) of points, as E57 defines them."""
    r = np.linalg.norm(xyz, axis=1)
    return np.stack([r, np.arctan2(xyz[:, 1], xyz[:, 0]), np.arcsin(xyz[:, 2] / r)], axis=1)


def _fails(path: Path, *patterns: str) -> PointCloudError:
    with pytest.raises(PointCloudError) as info:
        read_cloud(path)
    err = info.value
    text = str(err)
    assert "\n" not in text and text.startswith(str(path)) and err.path == str(path)
    assert err.hint, "every error says how to fix it"
    for pattern in patterns:
        assert pattern in text, f"{pattern!r} not in {text!r}"
    return err


# --- what is read ---------------------------------------------------------------------------


def test_cartesian_double_keeps_coordinates_colour_and_intensity(tmp_path: Path, cloud) -> None:
    xyz, rgb, intensity = cloud
    path = write_e57_file(tmp_path / "scan.e57", E57Scan(xyz=xyz, rgb=rgb, intensity=intensity))
    pc = read_cloud(path)
    assert pc.format == "e57 (1 scan, cartesian)"
    assert pc.num_points == N and pc.dropped == 0 and pc.source == path
    np.testing.assert_array_equal(pc.xyz, xyz)  # georeferenced doubles survive exactly
    np.testing.assert_array_equal(pc.rgb, rgb)
    np.testing.assert_array_equal(pc.intensity, intensity)
    for array in (pc.xyz, pc.rgb, pc.intensity):
        assert array.flags.writeable and array.flags.owndata


@pytest.mark.parametrize(("coords", "tol"), [("single", 1e-6), ("scaled", 5e-5)])
def test_single_and_scaled_integer_coordinates(tmp_path: Path, coords: str, tol: float) -> None:
    xyz = np.random.default_rng(1).uniform(-3, 3, (N, 3))
    pc = read_cloud(write_e57_file(tmp_path / "s.e57", E57Scan(xyz=xyz, coords=coords)))
    assert pc.xyz.dtype == np.float64 and pc.rgb is None and pc.intensity is None
    assert np.abs(pc.xyz - xyz).max() <= tol * 3
    assert np.abs(pc.xyz - xyz).max() > 0  # really stored at that precision


@pytest.mark.parametrize("coords", ["double", "scaled"])
def test_spherical_scan_becomes_cartesian(tmp_path: Path, coords: str) -> None:
    xyz = np.random.default_rng(2).uniform(-6, 6, (N, 3))
    rae = _spherical(xyz)
    path = write_e57_file(tmp_path / "sph.e57", E57Scan(spherical=rae, coords=coords))
    pc = read_cloud(path)
    assert pc.format == "e57 (1 scan, spherical)"
    # double: exact up to rounding; scaled: 0.1 mm range and 1e-4 rad steps at up to 10 m
    np.testing.assert_allclose(pc.xyz, xyz, atol=1e-9 if coords == "double" else 2e-3)


def test_scans_are_merged_with_their_poses(tmp_path: Path) -> None:
    """Each scan's points are in its own frame; the file's frame is R·p + t (unit quaternion
    w, x, y, z; a non-unit one is normalised)."""
    rng = np.random.default_rng(3)
    local = [rng.uniform(-2, 2, (120, 3)), rng.uniform(-2, 2, (80, 3)), rng.uniform(1, 3, (50, 3))]
    q1 = np.array([0.9, 0.1, -0.3, 0.2])
    q1 /= np.linalg.norm(q1)
    poses = [
        (tuple(q1), (10.0, -4.0, 1.5)),
        (tuple(2.0 * np.array([0.5, 0.5, 0.5, 0.5])), (0.0, 0.0, 0.0)),  # not unit: normalised
        (None, (-3.0, 2.0, 0.25)),  # translation only
    ]
    scans = [
        E57Scan(xyz=local[0], rotation=poses[0][0], translation=poses[0][1]),
        E57Scan(spherical=_spherical(local[1]), rotation=poses[1][0], translation=poses[1][1]),
        E57Scan(xyz=local[2], translation=poses[2][1], coords="scaled"),
    ]
    pc = read_cloud(write_e57_file(tmp_path / "three.e57", *scans))
    assert pc.format == "e57 (3 scans, cartesian + spherical)"
    expected = []
    for points, (q, t) in zip(local, poses, strict=True):
        w, x, y, z = q if q is not None else (1.0, 0.0, 0.0, 0.0)
        rot = Rotation.from_quat([x, y, z, w])  # scipy: scalar last
        expected.append(rot.apply(points) + np.array(t))
    np.testing.assert_allclose(pc.xyz, np.concatenate(expected), atol=2e-4)
    # Not the identity by accident: the first scan really turned.
    assert np.abs(pc.xyz[:120] - local[0]).max() > 1.0


def test_missing_points_are_dropped_and_counted(tmp_path: Path, cloud) -> None:
    xyz, rgb, intensity = cloud
    xyz = xyz - xyz.mean(axis=0)
    state = np.zeros(N, dtype=np.int8)
    state[[0, 5, 6, 100]] = 1  # no return
    state[[7, 299]] = 2  # direction only
    keep = state == 0
    for name, scan in (
        ("c.e57", E57Scan(xyz=xyz, rgb=rgb, intensity=intensity, invalid=state)),
        ("s.e57", E57Scan(spherical=_spherical(xyz), rgb=rgb, intensity=intensity, invalid=state)),
    ):
        pc = read_cloud(write_e57_file(tmp_path / name, scan))
        assert pc.num_points == N - 6 and pc.dropped == 6, name
        np.testing.assert_allclose(pc.xyz, xyz[keep], atol=1e-9)
        # colour and intensity stay with their points
        np.testing.assert_array_equal(pc.rgb, rgb[keep])
        np.testing.assert_array_equal(pc.intensity, intensity[keep])


def test_sixteen_bit_colour_is_scaled_to_eight(tmp_path: Path, cloud) -> None:
    xyz, rgb, _ = cloud
    path = write_e57_file(tmp_path / "c16.e57", E57Scan(xyz=xyz, rgb=rgb, colour_max=65535))
    assert b"65535" in e57_logical(path.read_bytes())  # stored as 16-bit values
    np.testing.assert_array_equal(read_cloud(path).rgb, rgb)


def test_colour_and_intensity_only_when_every_scan_has_them(tmp_path: Path, cloud) -> None:
    xyz, rgb, intensity = cloud
    path = write_e57_file(
        tmp_path / "mixed.e57",
        E57Scan(xyz=xyz[:100], rgb=rgb[:100], intensity=intensity[:100]),
        E57Scan(xyz=xyz[100:], intensity=intensity[100:]),
    )
    pc = read_cloud(path)
    assert pc.rgb is None
    np.testing.assert_array_equal(pc.intensity, intensity)


def test_units_and_magic_not_extension(tmp_path: Path) -> None:
    xyz = np.random.default_rng(4).uniform(0, 2000, (N, 3))  # millimetres
    path = write_e57_file(tmp_path / "scan.e57", E57Scan(xyz=xyz))
    misnamed = tmp_path / "scan.ply"
    misnamed.write_bytes(path.read_bytes())
    pc = read_cloud(misnamed, units="mm")
    assert pc.format.startswith("e57")
    np.testing.assert_allclose(pc.xyz, xyz / 1000)


def test_a_file_name_that_is_not_utf8(tmp_path: Path, cloud) -> None:
    xyz, _, _ = cloud
    path = tmp_path / os.fsdecode(b"caf\xe9 scan.e57")  # Latin-1 name on a UTF-8 system
    write_e57_file(tmp_path / "scan.e57", E57Scan(xyz=xyz)).rename(path)
    assert read_cloud(path).num_points == N


def test_an_empty_scan_beside_a_full_one(tmp_path: Path, cloud) -> None:
    xyz, _, _ = cloud
    path = write_e57_file(tmp_path / "e.e57", E57Scan(xyz=np.zeros((0, 3))), E57Scan(xyz=xyz))
    np.testing.assert_array_equal(read_cloud(path).xyz, xyz)


# --- bad files ------------------------------------------------------------------------------


@pytest.fixture
def good(tmp_path: Path, cloud) -> Path:
    xyz, rgb, intensity = cloud
    return write_e57_file(tmp_path / "good.e57", E57Scan(xyz=xyz, rgb=rgb, intensity=intensity))


@pytest.mark.parametrize("keep", [20, 47, 1000, 1024, -1024, -3])
def test_truncated(tmp_path: Path, good: Path, keep: int) -> None:
    data = good.read_bytes()
    cut = tmp_path / "cut.e57"
    cut.write_bytes(data[:keep])
    _fails(cut, "truncated")


def test_padded_or_joined_file(tmp_path: Path, good: Path) -> None:
    joined = tmp_path / "joined.e57"
    joined.write_bytes(good.read_bytes() * 2)
    _fails(joined, "its header gives", "appended")


def test_wrong_magic(tmp_path: Path, good: Path) -> None:
    data = bytearray(good.read_bytes())
    data[:8] = b"ASTM-E58"
    (tmp_path / "bad.e57").write_bytes(data)
    _fails(tmp_path / "bad.e57", "named .e57 but not a PLY, LAS/LAZ, PCD or E57 file")


def test_damaged_byte_fails_its_page_checksum(tmp_path: Path, good: Path) -> None:
    data = bytearray(good.read_bytes())
    data[2000] ^= 0x10
    (tmp_path / "flip.e57").write_bytes(data)
    _fails(tmp_path / "flip.e57", "checksum")


@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [(8, 2, "E57 version 2.0"), (40, 4096, "page size of 4,096 bytes")],
)
def test_impossible_physical_header(
    tmp_path: Path, good: Path, offset: int, value: int, message: str
) -> None:
    logical = e57_logical(good.read_bytes())
    logical[offset : offset + (4 if offset < 16 else 8)] = struct.pack(
        "<I" if offset < 16 else "<Q", value
    )
    (tmp_path / "h.e57").write_bytes(e57_paged(logical))  # CRCs right: only the value is wrong
    _fails(tmp_path / "h.e57", message)


def _promise(path: Path, count: int) -> Path:
    """Make the first scan's ``recordCount`` say ``count`` (page CRCs made right)."""
    xml = bytes(e57_logical(path.read_bytes()))
    old = re.search(rb'recordCount="\d+"', xml[e57_xml_span(xml)]).group()
    return patch_e57(path, old, f'recordCount="{count}"'.encode())


def test_header_promising_more_points_than_the_file_holds(good: Path) -> None:
    """20 more points fit the file's size, so libE57Format reads: it finds 300."""
    _promise(good, N + 20)
    _fails(good, f"promises {N + 20:,} points, the file holds {N:,}", "truncated")


@pytest.mark.parametrize(
    ("count", "message"),
    [
        (400_000_000, "(248 bits each), which needs at least 12,400,000,000 bytes"),
        (999_999_999, "over pcsep's limit"),
    ],  # fmt: skip
)
def test_promise_of_billions_refused_before_allocating(good: Path, count: int, message: str):
    _promise(good, count)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        _fails(good, f"promises {count:,} points", message)
    finally:
        took = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert took < 1.0 and peak < 20 * 2**20


def test_file_without_scans(tmp_path: Path) -> None:
    _fails(write_e57_file(tmp_path / "none.e57"), "holds no 3D scan")


def test_scan_without_coordinates(tmp_path: Path, good: Path) -> None:
    patch_e57(good, b"<cartesianY ", b"<cartesianQ ")
    patch_e57(good, b"</cartesianY>", b"</cartesianQ>")
    _fails(good, "scan 1 has neither cartesianX/Y/Z nor sphericalRange", "cartesianQ")


def test_every_point_missing(tmp_path: Path, cloud) -> None:
    xyz, _, _ = cloud
    scan = E57Scan(xyz=xyz, invalid=np.ones(N, dtype=np.int8))
    _fails(write_e57_file(tmp_path / "gone.e57", scan), f"none of its {N:,} points", "missing")


def test_unusable_pose(tmp_path: Path, cloud) -> None:
    xyz, _, _ = cloud
    scan = E57Scan(xyz=xyz, rotation=(0.0, 0.0, 0.0, 0.0))
    _fails(write_e57_file(tmp_path / "pose.e57", scan), "scan 1's pose is unusable")


@pytest.mark.parametrize(
    ("levels", "took"), [(100, 0.5), (50_000, 1.0)], ids=["100-levels", "50k-levels"]
)
def test_deeply_nested_xml_is_refused_before_the_library(good: Path, levels: int, took: float):
    """libE57Format's parse time grows with the square of the nesting: 100,000 levels took
    58 s; the XML's depth is checked first."""
    nest = b'<a type="Structure">' * levels + b"</a>" * levels
    patch_e57(good, b"</e57Root>", nest + b"</e57Root>")
    start = time.perf_counter()
    _fails(good, "nests elements more than 64 levels deep")
    assert time.perf_counter() - start < took


def test_document_type_declaration_is_refused(good: Path) -> None:
    doctype = b'<!DOCTYPE e57Root [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>\n<e57Root'
    patch_e57(good, b"<e57Root", doctype)
    _fails(good, "document type declaration")


def test_a_realistic_depth_is_read(good: Path) -> None:
    nest = b'<a type="Structure">' * 40 + b"</a>" * 40  # extensions nest a few levels
    patch_e57(good, b"</e57Root>", nest + b"</e57Root>")
    assert read_cloud(good).num_points == N


def test_malformed_xml_is_one_line_from_the_library(tmp_path: Path, good: Path) -> None:
    patch_e57(good, b"</e57Root>", b"</e57Ro0t>")
    _fails(good, "cannot read as E57: E57Exception: XML not well formed")


# --- through the CLI ------------------------------------------------------------------------


def test_inspect_reports_an_e57_scan(tmp_path: Path, cloud) -> None:
    xyz, rgb, intensity = cloud
    state = np.zeros(N, dtype=np.int8)
    state[:3] = 1
    path = write_e57_file(
        tmp_path / "site.e57",
        E57Scan(xyz=xyz[:150], rgb=rgb[:150], intensity=intensity[:150], invalid=state[:150]),
        E57Scan(
            xyz=xyz[150:] - [1, 0, 0],
            rgb=rgb[150:],
            intensity=intensity[150:],
            translation=(1.0, 0.0, 0.0),
        ),  # fmt: skip
    )
    result = runner.invoke(app, ["inspect", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["format"] == "e57 (2 scans, cartesian)" and report["points"] == N - 3
    assert report["has_rgb"] is True
    np.testing.assert_allclose(report["bounds"]["min"], xyz[3:].min(axis=0), atol=1e-6)
    table = runner.invoke(app, ["inspect", str(path)])
    assert table.exit_code == 0 and "3 non-finite or missing points" in table.stdout


def test_inspect_truncated_e57_is_one_line(tmp_path: Path, good: Path) -> None:
    cut = tmp_path / "cut.e57"
    cut.write_bytes(good.read_bytes()[:-1024])
    result = runner.invoke(app, ["inspect", str(cut)])
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "cut.e57" in lines[0] and "truncated" in lines[0]


def test_separate_takes_an_e57_scene_of_two_scans(tmp_path: Path, model: Path) -> None:
    """Two registered scans of one room: the same performers as the merged cloud."""
    xyz, _ = room([person_mesh(-1.0, 0.0, seated=True, instrument="cello"), person_mesh(1.0, 0.0)],
                  density=300, floor_density=150)  # fmt: skip
    half = len(xyz) // 2
    rot = Rotation.from_euler("z", 30, degrees=True)
    t = np.array([2.0, -1.0, 0.0])
    w = rot.as_quat()  # x, y, z, w
    scans = [
        E57Scan(xyz=xyz[:half]),
        # the second scanner's frame: points there are R⁻¹(p − t)
        E57Scan(
            xyz=rot.inv().apply(xyz[half:] - t), rotation=(w[3], *w[:3]), translation=tuple(t)
        ),  # fmt: skip
    ]
    scene = write_e57_file(tmp_path / "scene.e57", *scans)
    mix = tmp_path / "mix.wav"
    audio = 0.2 * np.random.default_rng(0).standard_normal((8000, 1))
    sf.write(mix, audio.astype(np.float32), 16000, subtype="FLOAT")
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["separate", str(mix), str(scene), "-o", str(out), "--model", str(model), "--json"]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    folder = Path(manifest["manifest"]).parent  # manifest v2: paths relative to its folder
    assert [(folder / c).resolve() for c in manifest["clouds"]] == [scene.resolve()]
    xs = sorted(s["position"][0] for s in manifest["stems"])
    assert np.allclose(xs, [-1.0, 1.0], atol=0.3)
    for stem in manifest["stems"]:
        assert sf.info(output_file(manifest, stem)).frames == 8000
