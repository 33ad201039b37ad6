"""The point-cloud writers in tests/helpers/clouds.py produce what they claim, so a reader
test never passes against a wrong fixture."""

from __future__ import annotations

from pathlib import Path

import laspy
import numpy as np
import pypcd4
from helpers.clouds import (
    PCD_ENCODINGS,
    PLY_ENCODINGS,
    pcd_header,
    write_las_file,
    write_pcd_compressed_by_hand,
    write_pcd_file,
    write_ply_file,
)
from plyfile import PlyData


def _cloud(n: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    xyz = rng.uniform(-10, 10, (n, 3))
    return xyz, rng.integers(0, 256, (n, 3), dtype=np.uint8), rng.uniform(0, 1, n).astype("f4")


def test_ply_writer_encodings_and_order(tmp_path: Path) -> None:
    xyz, rgb, inten = _cloud()
    for enc in PLY_ENCODINGS:
        p = write_ply_file(tmp_path / f"{enc}.ply", xyz, rgb, inten, encoding=enc, extras=True)
        ply = PlyData.read(str(p))
        assert p.read_bytes().startswith(b"ply\nformat " + enc.encode())
        names = [prop.name for prop in ply["vertex"].properties]
        assert names.index("z") < names.index("x") < names.index("y")
        np.testing.assert_array_equal(ply["vertex"]["x"], xyz[:, 0])
        np.testing.assert_array_equal(ply["vertex"]["green"], rgb[:, 1])


def test_las_writer_versions(tmp_path: Path) -> None:
    xyz, rgb, inten = _cloud()
    p = write_las_file(tmp_path / "a.las", xyz, version="1.0", point_format=1)
    assert p.read_bytes()[24:26] == b"\x01\x00"
    p = write_las_file(tmp_path / "a.laz", xyz, rgb, version="1.2", point_format=3)
    with laspy.open(p) as reader:
        assert reader.header.are_points_compressed
        assert np.all(reader.read().red == rgb[:, 0].astype(np.uint16) * 257)


def test_pcd_writer_encodings(tmp_path: Path) -> None:
    xyz, rgb, inten = _cloud()
    for enc in PCD_ENCODINGS:
        p = write_pcd_file(tmp_path / f"{enc}.pcd", xyz, rgb, inten, encoding=enc)
        assert f"DATA {enc}\n".encode() in p.read_bytes()[:400]
    records = np.zeros(2, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4")])
    records["x"] = [1, 2]
    header = pcd_header("x y z", "4 4 4", "F F F", "1 1 1", 2, 1, "binary_compressed")
    p = write_pcd_compressed_by_hand(tmp_path / "hand.pcd", records, header)
    cloud = pypcd4.PointCloud.from_path(p)
    np.testing.assert_array_equal(cloud.numpy(("x",))[:, 0], [1, 2])
