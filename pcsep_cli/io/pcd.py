"""PCD v0.7 reading (ascii, binary, binary_compressed), as PCL writes it.

A small reader rather than pypcd4's: pypcd4 silently returns fewer points from a binary file
truncated at a record boundary, accepts headers whose FIELDS/SIZE/TYPE/COUNT disagree, fails
on tab-separated ASCII data and imports pydantic (0.4 s). LZF blocks are decompressed with
``lzf`` (python-neo-lzf, the library pypcd4 itself uses).

Layouts (PCL ``pcd_io.cpp``): binary is row-major records in host (little-endian) order;
binary_compressed is ``uint32 compressed_size, uint32 uncompressed_size`` then one LZF block
holding each field's column in turn. PCL writes an ASCII ``rgb`` float as its uint32 bit
pattern (an integer token); other writers print the float itself: both are read.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np

from pcsep_cli.errors import PointCloudError
from pcsep_cli.io.cloud import RawCloud, check_promise

_HEADER_LINES = 200
_TYPES = {"F": (2, 4, 8), "U": (1, 2, 4, 8), "I": (1, 2, 4, 8)}
_KIND = {"F": "f", "U": "u", "I": "i"}
_ENCODINGS = ("ascii", "binary", "binary_compressed")
_HINT = "re-save the cloud, e.g. with PCL's pcl::io::savePCDFile or Open3D"
_HEADER_HINT = "fix the header: FIELDS, SIZE, TYPE and COUNT need one entry per field"


def read_pcd(path: Path, size: int) -> RawCloud:
    """Read a PCD v0.7 file.

    Args:
        path: the file (its first bytes are known to be a PCD header).
        size: its size in bytes.

    Returns:
        The raw cloud: float64 xyz [N, 3] (organized clouds flattened row by row, NaN points
        kept for the caller to drop), uint8 rgb [N, 3] from ``rgb``/``rgba``, float32
        intensity [N].

    Raises:
        PointCloudError: bad or inconsistent header, truncated or corrupt data.
    """
    with open(path, "rb") as f:
        header, data_start = _read_header(f, path)
        fields = _fields(header, path)
        points, encoding = _points(header, path), _encoding(header, path)
        have = size - data_start
        row = np.dtype([(name, dt, (count,)) for name, dt, count in fields])
        if encoding == "ascii":
            ntok = sum(count for _, _, count in fields)
            check_promise(path, "points", points, points * 2 * ntok, have, f"{ntok} values each")
            columns = _read_ascii(f, path, fields, points, ntok)
        elif encoding == "binary":
            check_promise(
                path, "points", points, points * row.itemsize, have, f"{row.itemsize} bytes each"
            )
            columns = _read_binary(path, data_start, row, points)
        else:
            columns = _read_compressed(f, path, fields, row, points, have)
    return _to_raw(columns, fields, points, f"pcd ({encoding})", path)


def _read_header(f: io.BufferedReader, path: Path) -> tuple[dict[str, list[str]], int]:
    header: dict[str, list[str]] = {}
    for _ in range(_HEADER_LINES):
        raw = f.readline(4096)
        if not raw:
            raise PointCloudError("PCD header ends before its DATA line", path, _HINT)
        try:
            line = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            raise PointCloudError(
                "PCD header holds non-text bytes before its DATA line", path, _HINT
            ) from None
        if not line or line.startswith("#"):
            continue
        key, *values = line.split()
        key = key.upper()
        if key in header:
            raise PointCloudError(f"PCD header repeats {key}", path, _HEADER_HINT)
        header[key] = values
        if key == "DATA":
            return header, f.tell()
    raise PointCloudError(f"PCD header has no DATA line in {_HEADER_LINES} lines", path, _HINT)


def _fields(header: dict[str, list[str]], path: Path) -> list[tuple[str, np.dtype, int]]:
    """``(name, dtype, count)`` per field, after checking FIELDS/SIZE/TYPE/COUNT agree."""
    names = header.get("FIELDS") or header.get("COLUMNS")
    if not names:
        raise PointCloudError("PCD header has no FIELDS line", path, _HEADER_HINT)
    n = len(names)
    sizes, types = header.get("SIZE"), header.get("TYPE")
    counts = header.get("COUNT", ["1"] * n)
    for key, values in (("SIZE", sizes), ("TYPE", types), ("COUNT", counts)):
        if values is None:
            raise PointCloudError(f"PCD header has no {key} line", path, _HEADER_HINT)
        if len(values) != n:
            raise PointCloudError(
                f"PCD header lists {n} FIELDS ({' '.join(names)}) but {len(values)} {key} "
                f"values ({' '.join(values)})",
                path,
                _HEADER_HINT,
            )
    out = []
    for i, (name, size, typ, count) in enumerate(zip(names, sizes, types, counts, strict=True)):
        typ = typ.upper()
        try:
            size_i, count_i = int(size), int(count)
        except ValueError:
            raise PointCloudError(
                f"PCD field {name!r} has a non-integer SIZE or COUNT ({size}, {count})",
                path,
                _HEADER_HINT,
            ) from None
        if typ not in _TYPES or size_i not in _TYPES[typ]:
            raise PointCloudError(
                f"PCD field {name!r} has TYPE {typ} with SIZE {size}, which is not a number type "
                "(F 2/4/8, U or I 1/2/4/8)",
                path,
                _HEADER_HINT,
            )
        if count_i < 1:
            raise PointCloudError(f"PCD field {name!r} has COUNT {count}", path, _HEADER_HINT)
        # PCL pads records with fields named "_"; names must be unique for numpy.
        key = f"_pad{i}" if name == "_" else name
        out.append((key, np.dtype(f"<{_KIND[typ]}{size_i}"), count_i))
    keys = [k for k, _, _ in out]
    if len(set(keys)) != len(keys):
        raise PointCloudError(f"PCD FIELDS repeat a name ({' '.join(names)})", path, _HEADER_HINT)
    for axis in "xyz":
        if axis not in keys:
            raise PointCloudError(
                f"PCD has no {axis!r} field (FIELDS {' '.join(names)})", path, _HEADER_HINT
            )
    return out


def _points(header: dict[str, list[str]], path: Path) -> int:
    def number(key: str, default: int | None) -> int:
        values = header.get(key)
        if values is None and default is not None:
            return default
        try:
            (value,) = values or []
            return int(value)
        except ValueError:
            raise PointCloudError(
                f"PCD header's {key} is {' '.join(values or []) or 'missing'}",
                path,
                "give WIDTH, HEIGHT and POINTS as whole numbers",
            ) from None

    width = number("WIDTH", None)
    height = number("HEIGHT", 1)
    points = number("POINTS", width * height)
    if points != width * height:
        raise PointCloudError(
            f"PCD header's POINTS {points:,} is not WIDTH × HEIGHT ({width:,} × {height:,})",
            path,
            "fix POINTS, WIDTH or HEIGHT in the header",
        )
    return points


def _encoding(header: dict[str, list[str]], path: Path) -> str:
    data = header["DATA"]
    encoding = data[0].lower() if len(data) == 1 else " ".join(data)
    if encoding not in _ENCODINGS:
        raise PointCloudError(
            f"PCD DATA is {encoding!r}, expected one of {', '.join(_ENCODINGS)}", path, _HINT
        )
    return encoding


def _read_ascii(
    f: io.BufferedReader, path: Path, fields: list, points: int, ntok: int
) -> dict[str, np.ndarray]:
    text = io.TextIOWrapper(f, encoding="ascii", newline=None)
    try:
        values = np.loadtxt(text, dtype=np.float64, max_rows=points, ndmin=2, comments=None)
    except (ValueError, UnicodeDecodeError) as err:
        raise PointCloudError(f"bad ASCII PCD data: {_numpy_reason(err)}", path, _HINT) from None
    if values.shape[0] < points:
        raise PointCloudError(
            f"header promises {points:,} points, the file holds {values.shape[0]:,}: "
            "it is truncated",
            path,
            _HINT,
        )
    if values.shape[1] != ntok:
        raise PointCloudError(
            f"ASCII PCD rows hold {values.shape[1]} values, the header declares {ntok}",
            path,
            _HEADER_HINT,
        )
    columns, col = {}, 0
    for name, dt, count in fields:
        block = values[:, col : col + count]
        col += count
        if name in ("rgb", "rgba") and count == 1:
            columns[name] = _ascii_packed_colour(block[:, 0], dt)
        else:
            columns[name] = block
    return columns


def _numpy_reason(err: Exception) -> str:
    # numpy appends advice about `usecols` that does not apply to a file format.
    return str(err).split("; use `usecols`")[0].rstrip(".")


def _ascii_packed_colour(values: np.ndarray, dt: np.dtype) -> np.ndarray:
    """uint32 [N] colour words from ASCII tokens of a packed ``rgb``/``rgba`` field."""
    finite = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    if dt.kind != "f":
        return finite.astype(np.uint32).reshape(-1, 1)
    # An integer token >= 1 is PCL's uint32 bit pattern; a genuine packed float is a tiny
    # denormal (alpha 0) or NaN (alpha 255) and never prints as such an integer.
    as_int = (finite >= 1) & (finite == np.floor(finite)) & (finite < 2.0**32)
    words = np.where(as_int, finite, 0).astype(np.uint32)
    bits = finite.astype(np.float32).view(np.uint32)
    return np.where(as_int, words, bits).reshape(-1, 1)


def _read_binary(path: Path, start: int, row: np.dtype, points: int) -> dict[str, np.ndarray]:
    if points == 0:
        return {}
    data = np.memmap(path, row, "r", start, (points,))
    return {name: data[name] for name in row.names}


def _read_compressed(
    f: io.BufferedReader, path: Path, fields: list, row: np.dtype, points: int, have: int
) -> dict[str, np.ndarray]:
    check_promise(path, "points", points, 0, 0)
    if points == 0:
        return {}
    sizes = f.read(8)
    if len(sizes) < 8:
        raise PointCloudError("binary_compressed PCD ends before its data block", path, _HINT)
    compressed, uncompressed = struct.unpack("<II", sizes)
    expected = points * row.itemsize
    if uncompressed != expected:
        raise PointCloudError(
            f"compressed block unpacks to {uncompressed:,} bytes, but {points:,} points of "
            f"{row.itemsize} bytes need {expected:,}",
            path,
            _HINT,
        )
    check_promise(path, "compressed bytes", compressed, compressed, have - 8)
    import lzf

    try:
        buffer = lzf.decompress(f.read(compressed), uncompressed)
    except ValueError:
        buffer = None
    if buffer is None or len(buffer) != uncompressed:
        raise PointCloudError("binary_compressed PCD data is corrupt (LZF)", path, _HINT)
    columns, offset = {}, 0
    for name, dt, count in fields:
        nbytes = points * count * dt.itemsize
        columns[name] = np.frombuffer(buffer, dt, points * count, offset).reshape(points, count)
        offset += nbytes
    return columns


def _to_raw(
    columns: dict[str, np.ndarray], fields: list, points: int, label: str, path: Path
) -> RawCloud:
    if points == 0:
        return RawCloud(np.empty((0, 3)), None, None, label)
    counts = {name: count for name, _, count in fields}
    for axis in "xyz":
        if counts[axis] != 1:
            raise PointCloudError(
                f"PCD field {axis!r} has COUNT {counts[axis]}, expected 1", path, _HEADER_HINT
            )
    xyz = np.empty((points, 3), dtype=np.float64)
    for i, axis in enumerate("xyz"):
        xyz[:, i] = columns[axis][:, 0]
    rgb = None
    for name in ("rgb", "rgba"):
        if name in columns and counts[name] == 1:
            word = np.asarray(columns[name][:, 0])
            word = word.view(np.uint32) if word.dtype.itemsize == 4 else word.astype(np.uint32)
            rgb = np.stack([(word >> 16) & 255, (word >> 8) & 255, word & 255], axis=1)
            rgb = rgb.astype(np.uint8)
            break
    intensity = None
    if "intensity" in columns and counts["intensity"] == 1:
        intensity = np.array(columns["intensity"][:, 0], dtype=np.float32)
    return RawCloud(xyz, rgb, intensity, label)
