"""Point-cloud files written by the real libraries (plyfile, laspy, pypcd4) for the reader tests.

tests/io/test_pointcloud_writers.py checks that the writers produce what they claim, so a reader
test never passes against a wrong fixture. ``ply`` and ``las`` are the smallest valid files,
for tests that only pair or list files.
"""

from __future__ import annotations

import struct
from pathlib import Path

import laspy
import lzf
import numpy as np
import pypcd4
from plyfile import PlyData, PlyElement

PLY_ENCODINGS = ("ascii", "binary_little_endian", "binary_big_endian")
PCD_ENCODINGS = ("ascii", "binary", "binary_compressed")
# (version, point format) pairs laspy writes; LAS 1.0 is made by patching a 1.1 file.
LAS_VARIANTS = [
    ("1.1", 0),
    ("1.1", 1),
    ("1.2", 2),
    ("1.2", 3),
    ("1.3", 4),
    ("1.3", 5),
    ("1.4", 0),
    ("1.4", 3),
    ("1.4", 6),
    ("1.4", 7),
    ("1.4", 8),
    ("1.4", 9),
    ("1.4", 10),
]
LAS_RGB_FORMATS = {2, 3, 5, 7, 8, 10}


def write_ply_file(
    path: Path,
    xyz: np.ndarray,
    rgb: np.ndarray | None = None,
    intensity: np.ndarray | None = None,
    *,
    encoding: str = "binary_little_endian",
    coord: str = "f8",
    colour_names: tuple[str, str, str] = ("red", "green", "blue"),
    colour_dtype: str = "u1",
    intensity_name: str = "intensity",
    extras: bool = False,
    faces: int = 0,
) -> Path:
    """Write a PLY with plyfile. ``extras`` puts normals and alpha around the known properties
    (in an unusual order); ``faces`` adds a face element with variable-length lists."""
    n = len(xyz)
    fields: list[tuple[str, str]] = []
    if extras:
        fields += [("nz", "f4"), ("alpha", "u1")]
    fields += [("z", coord), ("x", coord)]
    if rgb is not None:
        fields += [(colour_names[2], colour_dtype), (colour_names[0], colour_dtype)]
    if extras:
        fields += [("nx", "f8")]
    fields += [("y", coord)]
    if rgb is not None:
        fields += [(colour_names[1], colour_dtype)]
    if intensity is not None:
        fields += [(intensity_name, "f4")]
    v = np.zeros(n, dtype=fields)
    for i, axis in enumerate("xyz"):
        v[axis] = xyz[:, i]
    if rgb is not None:
        scale = 257 if colour_dtype == "u2" else 1
        for i, name in enumerate(colour_names):
            v[name] = rgb[:, i].astype(np.uint32) * scale
    if intensity is not None:
        v[intensity_name] = intensity
    if extras:
        v["nz"], v["alpha"], v["nx"] = 1.0, 255, -0.5
    elements = [PlyElement.describe(v, "vertex")]
    if faces:
        tris = np.empty(faces, dtype=[("vertex_indices", "O")])
        tris["vertex_indices"] = [
            np.arange(3 + k % 2, dtype=np.int32) % max(n, 1) for k in range(faces)
        ]
        elements.append(PlyElement.describe(tris, "face"))
    text = encoding == "ascii"
    order = ">" if encoding == "binary_big_endian" else "<"
    PlyData(elements, text=text, byte_order=order).write(str(path))
    return path


def write_las_file(
    path: Path,
    xyz: np.ndarray,
    rgb: np.ndarray | None = None,
    intensity: np.ndarray | None = None,
    *,
    version: str = "1.4",
    point_format: int = 7,
    scale: float = 0.001,
    colour_scale: int = 257,
) -> Path:
    """Write LAS, or LAZ when ``path`` ends with .laz (laspy + lazrs). ``rgb`` is 8-bit;
    it is stored as ``rgb * colour_scale`` in LAS's 16-bit fields."""
    target_version = version
    if version == "1.0":
        version = "1.1"
    header = laspy.LasHeader(version=version, point_format=point_format)
    header.scales = np.array([scale] * 3)
    header.offsets = np.floor(xyz.min(axis=0)) if len(xyz) else np.zeros(3)
    las = laspy.LasData(header)
    las.x, las.y, las.z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    if rgb is not None:
        c = rgb.astype(np.uint16) * colour_scale
        las.red, las.green, las.blue = c[:, 0], c[:, 1], c[:, 2]
    if intensity is not None:
        las.intensity = intensity
    las.write(str(path))
    if target_version == "1.0":
        # LAS 1.0 and 1.1 share the header layout (1.1 named a reserved field); laspy writes
        # 1.1 only, so the minor version byte (offset 25) is set to 0.
        data = bytearray(path.read_bytes())
        data[25] = 0
        path.write_bytes(bytes(data))
    return path


def write_pcd_file(
    path: Path,
    xyz: np.ndarray,
    rgb: np.ndarray | None = None,
    intensity: np.ndarray | None = None,
    *,
    encoding: str = "binary_compressed",
    coord: type = np.float32,
    packed_float_rgb: bool = True,
) -> Path:
    """Write PCD with pypcd4. ``packed_float_rgb`` stores colour as PCL's float-packed ``rgb``;
    otherwise as a ``rgba`` uint32 (pypcd4's ASCII writer prints floats with %.10f, which
    turns the packed float's denormal bit pattern into 0, so ASCII tests use the uint form)."""
    columns = [xyz[:, 0].astype(coord), xyz[:, 1].astype(coord), xyz[:, 2].astype(coord)]
    names, types = ["x", "y", "z"], [coord, coord, coord]
    if rgb is not None:
        if packed_float_rgb:
            columns.append(pypcd4.PointCloud.encode_rgb(rgb))
            names.append("rgb")
            types.append(np.float32)
        else:
            word = (
                (np.uint32(255) << 24)
                | (rgb[:, 0].astype(np.uint32) << 16)
                | (rgb[:, 1].astype(np.uint32) << 8)
                | rgb[:, 2].astype(np.uint32)
            )
            columns.append(word)
            names.append("rgba")
            types.append(np.uint32)
    if intensity is not None:
        columns.append(intensity.astype(np.float32))
        names.append("intensity")
        types.append(np.float32)
    pc = pypcd4.PointCloud.from_points(columns, tuple(names), tuple(types))
    pc.save(path, encoding=pypcd4.Encoding(encoding))
    if encoding == "binary_compressed" and b"DATA binary\n" in path.read_bytes()[:1000]:
        # pypcd4 falls back to binary when LZF cannot shrink the data (random floats);
        # PCL compresses anyway with a larger output buffer, so do what PCL does.
        header = pc.metadata.compose_header(pypcd4.Encoding.BINARY_COMPRESSED).encode()
        write_pcd_compressed_by_hand(path, pc.pc_data, header)
    return path


def pcd_header(
    fields: str,
    size: str,
    typ: str,
    count: str,
    width: int,
    height: int,
    data: str,
    points: int | None = None,
) -> bytes:
    """A PCD v0.7 header as PCL writes it."""
    points = width * height if points is None else points
    return (
        "# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\n"
        f"FIELDS {fields}\nSIZE {size}\nTYPE {typ}\nCOUNT {count}\n"
        f"WIDTH {width}\nHEIGHT {height}\nVIEWPOINT 0 0 0 1 0 0 0\n"
        f"POINTS {points}\nDATA {data}\n"
    ).encode()


def write_pcd_compressed_by_hand(path: Path, records: np.ndarray, header: bytes) -> Path:
    """binary_compressed as PCL lays it out: each field's column in turn, one LZF block."""
    columns = b"".join(
        np.ascontiguousarray(records[name]).tobytes() for name in records.dtype.names
    )
    block = lzf.compress(columns, len(columns) + len(columns) // 16 + 64)
    path.write_bytes(header + struct.pack("<II", len(block), len(columns)) + block)
    return path


def ply(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    v = np.zeros(4, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])
    v["x"] = np.arange(4)
    PlyData([PlyElement.describe(v, "vertex")]).write(str(path))
    return path


def las(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = laspy.create(point_format=3, file_version="1.2")
    data.x, data.y, data.z = np.arange(3.0), np.zeros(3), np.ones(3)
    data.write(str(path))
    return path
