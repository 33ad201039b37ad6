"""Point-cloud files written by the real libraries (plyfile, laspy, pypcd4, pye57) for the reader
tests.

tests/io/test_pointcloud_writers.py checks that the writers produce what they claim, so a reader
test never passes against a wrong fixture. ``ply`` and ``las`` are the smallest valid files,
for tests that only pair or list files.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
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


@dataclass
class E57Scan:
    """One scan for :func:`write_e57_file`.

    ``xyz`` [N, 3] Cartesian or ``spherical`` [N, 3] (range m, azimuth rad, elevation rad), in
    the scan's own frame; ``invalid`` [N] the matching ``*InvalidState`` (0 valid, 1 no return,
    2 direction only); ``rotation`` (w, x, y, z) and ``translation`` the pose, None for none;
    ``coords`` ``"double"``, ``"single"`` or ``"scaled"`` (0.1 mm integers); ``colour_max``
    255 (8-bit integer fields) or 65535 (16-bit: ``rgb * 257`` is stored).
    """

    xyz: np.ndarray | None = None
    spherical: np.ndarray | None = None
    rgb: np.ndarray | None = None
    intensity: np.ndarray | None = None
    invalid: np.ndarray | None = None
    rotation: tuple[float, float, float, float] | None = None
    translation: tuple[float, float, float] | None = None
    coords: str = "double"
    colour_max: int = 255


def write_e57_file(path: Path, *scans: E57Scan) -> Path:
    """Write an E57 file with pye57 (its header) and libE57Format's node API (the scans).

    pye57's ``write_scan_raw`` writes Cartesian float32 only; the node API writes what scanners
    export: double or scaled-integer coordinates, spherical scans, invalid states, poses.
    """
    import pye57
    from pye57 import libe57

    with pye57.E57(str(path), mode="w") as e57:
        imf = e57.image_file
        for k, scan in enumerate(scans):
            _e57_scan(libe57, imf, e57.data3d, scan, k)
    return path


def _e57_scan(libe57, imf, data3d, scan: E57Scan, k: int) -> None:  # noqa: ANN001
    spherical = scan.xyz is None
    values = scan.spherical if spherical else scan.xyz
    names = (
        ["sphericalRange", "sphericalAzimuth", "sphericalElevation"]
        if spherical
        else ["cartesianX", "cartesianY", "cartesianZ"]
    )
    node = libe57.StructureNode(imf)
    node.set("guid", libe57.StringNode(imf, f"{{scan-{k}}}"))
    node.set("name", libe57.StringNode(imf, f"scan {k}"))
    if scan.rotation is not None or scan.translation is not None:
        pose = libe57.StructureNode(imf)
        for part, keys, vals in (
            ("rotation", "wxyz", scan.rotation or (1.0, 0.0, 0.0, 0.0)),
            ("translation", "xyz", scan.translation or (0.0, 0.0, 0.0)),
        ):
            child = libe57.StructureNode(imf)
            for key, v in zip(keys, vals, strict=True):
                child.set(key, libe57.FloatNode(imf, float(v)))
            pose.set(part, child)
        node.set("pose", pose)
    proto = libe57.StructureNode(imf)
    columns: dict[str, np.ndarray] = {}
    for j, name in enumerate(names):
        col = np.ascontiguousarray(values[:, j], dtype=np.float64)
        lo, hi = (float(col.min()), float(col.max())) if len(col) else (0.0, 0.0)
        if scan.coords == "scaled":
            raw = (int(np.floor(lo / 1e-4)) - 1, int(np.ceil(hi / 1e-4)) + 1)
            proto.set(name, libe57.ScaledIntegerNode(imf, raw[0], raw[0], raw[1], 1e-4, 0.0))
        else:
            precision = libe57.E57_SINGLE if scan.coords == "single" else libe57.E57_DOUBLE
            proto.set(name, libe57.FloatNode(imf, lo, precision, lo, hi))
        columns[name] = col
    if scan.rgb is not None:
        scale = 257 if scan.colour_max == 65535 else 1
        limits = libe57.StructureNode(imf)
        for j, name in enumerate(("colorRed", "colorGreen", "colorBlue")):
            proto.set(name, libe57.IntegerNode(imf, 0, 0, scan.colour_max))
            columns[name] = scan.rgb[:, j].astype(np.uint16) * np.uint16(scale)
            limits.set(f"{name}Minimum", libe57.IntegerNode(imf, 0))
            limits.set(f"{name}Maximum", libe57.IntegerNode(imf, scan.colour_max))
        node.set("colorLimits", limits)
    if scan.intensity is not None:
        proto.set("intensity", libe57.FloatNode(imf, 0.0, libe57.E57_SINGLE))
        columns["intensity"] = np.ascontiguousarray(scan.intensity, dtype=np.float32)
    if scan.invalid is not None:
        state = "sphericalInvalidState" if spherical else "cartesianInvalidState"
        proto.set(state, libe57.IntegerNode(imf, 0, 0, 2))
        columns[state] = np.ascontiguousarray(scan.invalid, dtype=np.int8)
    points = libe57.CompressedVectorNode(imf, proto, libe57.VectorNode(imf, True))
    node.set("points", points)
    data3d.append(node)
    n = len(values)
    bufs = libe57.VectorSourceDestBuffer()
    for name, col in columns.items():
        bufs.append(libe57.SourceDestBuffer(imf, name, col, max(n, 1), True, True))
    writer = points.writer(bufs)
    if n:
        writer.write(n)
    writer.close()


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), which E57 keeps at the end of each 1024-byte page."""
    c = 0xFFFFFFFF
    for byte in data:
        c = _CRC32C[(c ^ byte) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def e57_logical(data: bytes) -> bytearray:
    """An E57 file's bytes without the CRCs: the first 1020 bytes of every page."""
    return bytearray(b"".join(data[i : i + 1020] for i in range(0, len(data), 1024)))


def e57_paged(logical: bytes) -> bytes:
    """Logical bytes cut into 1024-byte pages with their CRC-32C (big-endian), as E57 stores
    them; the header's file length is set to the result's."""
    logical = bytearray(logical) + bytes(-len(logical) % 1020)
    if len(logical) >= 24:
        logical[16:24] = struct.pack("<Q", len(logical) // 1020 * 1024)
    pages = [bytes(logical[i : i + 1020]) for i in range(0, len(logical), 1020)]
    return b"".join(p + struct.pack(">I", crc32c(p)) for p in pages)


def e57_xml_span(logical: bytes) -> slice:
    """Where the XML section lies in an E57 file's logical bytes (:func:`e57_logical`); the
    pages past it may hold stale XML that libE57Format never reads."""
    offset, length = struct.unpack_from("<QQ", logical, 24)  # physical offset, length
    start = offset - 4 * (offset // 1024)
    return slice(start, start + length)


def patch_e57(path: Path, old: bytes, new: bytes) -> Path:
    """Replace the first ``old`` by ``new`` in an E57 file's XML section and fix the header
    (XML length, file length) and every page's CRC: a file that libE57Format accepts as
    undamaged but that says something else. The XML is the file's last section (what follows
    it is stale padding, dropped)."""
    logical = e57_logical(path.read_bytes())
    xml = e57_xml_span(logical)
    at = logical.find(old, xml.start, xml.stop)
    assert at >= 0, f"{old!r} not in the XML of {path}"
    text = bytes(logical[xml.start : at]) + new + bytes(logical[at + len(old) : xml.stop])
    logical[xml.start :] = text
    logical[32:40] = struct.pack("<Q", len(text))
    path.write_bytes(e57_paged(logical))
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
