"""PLY reading and writing with plyfile (ascii, binary little and big endian).

plyfile parses the header. The vertex element is then read directly: memory-mapped for
binary files (no copy of the other properties, faces never parsed), with ``numpy.loadtxt``
for ASCII files. plyfile's own element reader is used only for the rare files where an
element with list properties comes *before* the vertices; it walks rows in Python.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
from plyfile import PlyData, PlyElement, PlyListProperty, PlyParseError

from pcsep_cli.errors import PointCloudError
from pcsep_cli.io.cloud import PointCloud, RawCloud, check_promise, colours_to_uint8

_HEADER_LIMIT = 1 << 20
_COLOUR_NAMES = (
    ("red", "green", "blue"),
    ("r", "g", "b"),
    ("diffuse_red", "diffuse_green", "diffuse_blue"),
)
_INTENSITY_NAMES = ("intensity", "scalar_intensity")
_HINT = "re-export the cloud as binary PLY, e.g. with CloudCompare, MeshLab or Open3D"


def read_ply(path: Path, size: int) -> RawCloud:
    """Read the ``vertex`` element of a PLY file.

    Args:
        path: the file (its magic bytes are known to be ``ply``).
        size: its size in bytes.

    Returns:
        The raw cloud: float64 xyz [N, 3], uint8 rgb [N, 3] or None, float32 intensity or None.

    Raises:
        PointCloudError: malformed or truncated header or data, no vertex element, no x/y/z.
    """
    with open(path, "rb") as f:
        prefix = f.read(_HEADER_LIMIT)
    header_end = _header_end(prefix, path)
    try:
        # plyfile has no public "header only" reader; _parse_header is what PlyData.read uses.
        ply = PlyData._parse_header(io.BytesIO(prefix[:header_end]))
    except (PlyParseError, UnicodeDecodeError, ValueError) as err:
        raise PointCloudError(f"bad PLY header: {err}", path, _HINT) from None
    fmt = (
        "ascii"
        if ply.text
        else {"<": "binary_little_endian", ">": "binary_big_endian"}.get(ply.byte_order, "binary")
    )
    names = [e.name for e in ply.elements]
    if "vertex" not in names:
        raise PointCloudError(
            f"PLY has no 'vertex' element (elements: {', '.join(names) or 'none'})", path, _HINT
        )
    index = names.index("vertex")
    before, vertex = list(ply.elements[:index]), ply.elements[index]
    _check_sizes(path, ply, before + [vertex], size - header_end)
    props = {p.name.lower(): p.name for p in vertex.properties}
    missing = [a for a in "xyz" if a not in props]
    if missing:
        found = ", ".join(p.name for p in vertex.properties) or "none"
        raise PointCloudError(
            f"PLY vertices have no {'/'.join(missing)} coordinate (properties: {found})",
            path,
            _HINT,
        )
    if vertex.count == 0:
        return RawCloud(np.empty((0, 3)), None, None, f"ply ({fmt})")

    # ASCII rows are lines, so elements before the vertices are skipped whatever they hold.
    if _has_lists(vertex) or (not ply.text and any(_has_lists(e) for e in before)):
        data = _read_with_plyfile(path, ply.text)
    elif ply.text:
        data = _read_ascii(path, header_end, before, vertex)
    else:
        offset = header_end + sum(e.count * e.dtype(ply.byte_order).itemsize for e in before)
        data = np.memmap(path, vertex.dtype(ply.byte_order), "r", offset, (vertex.count,))

    xyz = np.empty((vertex.count, 3), dtype=np.float64)
    for i, axis in enumerate("xyz"):
        xyz[:, i] = data[props[axis]]
    rgb = None
    for names3 in _COLOUR_NAMES:
        if all(n in props for n in names3):
            channels = np.empty((vertex.count, 3), dtype=data.dtype[props[names3[0]]])
            for i, n in enumerate(names3):
                channels[:, i] = data[props[n]]
            rgb = colours_to_uint8(channels)
            break
    intensity = next(
        (np.array(data[props[n]], dtype=np.float32) for n in _INTENSITY_NAMES if n in props),
        None,
    )
    return RawCloud(xyz, rgb, intensity, f"ply ({fmt})")


def write_ply(path: Path, cloud: PointCloud, binary: bool = True, overwrite: bool = True) -> None:
    """Write ``cloud`` to ``path`` as PLY through :func:`pcsep_cli.io.atomic.atomic_path`.

    Args:
        path: destination.
        cloud: float64 xyz [N, 3], optional uint8 rgb [N, 3] and float32 intensity [N].
        binary: binary little-endian if true, else ASCII.
        overwrite: replace ``path`` if it exists.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false.
        PcsepError: the folder is missing or not writable, the disk is full (a
            :class:`PointCloudError` when writing itself fails).
    """
    from pcsep_cli.io.atomic import atomic_path, output_error

    if not isinstance(cloud, PointCloud):
        raise ValueError(f"write_ply needs a PointCloud, got {type(cloud).__name__}")
    fields: list[tuple[str, str]] = [("x", "f8"), ("y", "f8"), ("z", "f8")]
    if cloud.rgb is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    if cloud.intensity is not None:
        fields += [("intensity", "f4")]
    vertices = np.empty(cloud.num_points, dtype=fields)
    for i, axis in enumerate("xyz"):
        vertices[axis] = cloud.xyz[:, i]
    if cloud.rgb is not None:
        for i, name in enumerate(("red", "green", "blue")):
            vertices[name] = cloud.rgb[:, i]
    if cloud.intensity is not None:
        vertices["intensity"] = cloud.intensity
    ply = PlyData([PlyElement.describe(vertices, "vertex")], text=not binary, byte_order="<")
    try:
        with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "wb") as f:
            ply.write(f)
    except OSError as err:
        raise output_error(err, path, PointCloudError) from None


def _header_end(prefix: bytes, path: Path) -> int:
    """Byte offset just past ``end_header`` and its newline."""
    nl = b"\r\n" if prefix[3:5] == b"\r\n" else prefix[3:4]
    match = re.search(re.escape(nl) + rb"end_header[ \t]*" + re.escape(nl), prefix)
    if match is None:
        where = "file" if len(prefix) < _HEADER_LIMIT else f"first {_HEADER_LIMIT >> 20} MiB"
        raise PointCloudError(
            f"PLY header has no end_header line in the {where}: truncated or not a PLY file",
            path,
            _HINT,
        )
    return match.end()


def _has_lists(element: PlyElement) -> bool:
    return any(isinstance(p, PlyListProperty) for p in element.properties)


def _check_sizes(path: Path, ply: PlyData, elements: list[PlyElement], have: int) -> None:
    """Fail fast when the header promises more rows than the file can hold."""
    need = 0
    for e in elements:
        what = "vertices" if e.name == "vertex" else f"'{e.name}' rows"
        if ply.text:
            # Fewest bytes an ASCII row can take: one digit and a separator per value.
            per_row = 2 * len(e.properties)
        elif _has_lists(e):
            per_row = sum(
                np.dtype(
                    p.list_dtype(ply.byte_order)[0]
                    if isinstance(p, PlyListProperty)
                    else p.dtype(ply.byte_order)
                ).itemsize
                for p in e.properties
            )
        else:
            per_row = e.dtype(ply.byte_order).itemsize
        need += e.count * per_row
        unit = "at least " if ply.text or _has_lists(e) else ""
        check_promise(path, what, e.count, need, have, f"{unit}{per_row} bytes each")


def _read_ascii(
    path: Path, header_end: int, before: list[PlyElement], vertex: PlyElement
) -> np.ndarray:
    with open(path, "rb") as raw:
        raw.seek(header_end)
        text = io.TextIOWrapper(raw, encoding="ascii", errors="strict", newline=None)
        for _ in range(sum(e.count for e in before)):
            text.readline()
        try:
            values = np.loadtxt(
                text, dtype=np.float64, max_rows=vertex.count, ndmin=2, comments=None
            )
        except (ValueError, UnicodeDecodeError) as err:
            reason = str(err).split("; use `usecols`")[0].rstrip(".")
            raise PointCloudError(f"bad ASCII PLY vertex data: {reason}", path, _HINT) from None
    nprops = len(vertex.properties)
    if values.shape[0] < vertex.count:
        raise PointCloudError(
            f"header promises {vertex.count:,} vertices, the file holds {values.shape[0]:,}: "
            "it is truncated",
            path,
            _HINT,
        )
    if values.shape[1] != nprops:
        raise PointCloudError(
            f"ASCII PLY vertices have {values.shape[1]} values per line, the header declares "
            f"{nprops} properties",
            path,
            _HINT,
        )
    data = np.empty(vertex.count, dtype=vertex.dtype())
    for i, p in enumerate(vertex.properties):
        data[p.name] = values[:, i]
    return data


def _read_with_plyfile(path: Path, text: bool) -> np.ndarray:
    try:
        ply = PlyData.read(str(path), mmap=False)
    except PlyParseError as err:
        hint = _HINT if text else "re-export it without list properties before the vertices"
        raise PointCloudError(f"bad PLY data: {err}", path, hint) from None
    return ply["vertex"].data
