"""E57 (ASTM E2807) reading with pye57's binding of libE57Format.

Every scan of the file's ``data3D`` is read, its pose (unit quaternion + translation) applied,
and the scans merged into one cloud in the file's frame. Cartesian and spherical scans are
both read (range, azimuth, elevation → x, y, z as the standard gives it). Points that the
scanner marks missing (``cartesianInvalidState`` / ``sphericalInvalidState`` not 0) come back
as NaN, so :func:`~pcsep_cli.io.pointcloud.read_cloud` drops and counts them with the
non-finite ones.

pye57's ``read_scan`` is not used: it allocates every field at the size the header promises
before reading a byte, converts twice and needs every field present. Here points are read in
chunks of :data:`_CHUNK` records into fixed scratch buffers and copied into arrays sized once,
after the promise was checked against the file's size (the fewest bits each record can take,
from the prototype). libE57Format checks the CRC-32C of every 1024-byte page it reads, so a
damaged byte anywhere is reported, not decoded; :mod:`pcsep_cli.io.e57_check` looks at the
physical header and the XML first, to say plainly what is wrong with a cut or padded file and
to keep XML that would take the library minutes away from it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from pcsep_cli.errors import PointCloudError
from pcsep_cli.io.cloud import RawCloud, check_promise, colours_to_uint8
from pcsep_cli.io.e57_check import E57_HINT as _HINT
from pcsep_cli.io.e57_check import check_e57_file

_CHUNK = 1 << 18
_NO_SCAN_HINT = "export the point data too, not only images (the scanner software's E57 options)"
_CARTESIAN = ("cartesianX", "cartesianY", "cartesianZ")
_SPHERICAL = ("sphericalRange", "sphericalAzimuth", "sphericalElevation")
_COLOURS = ("colorRed", "colorGreen", "colorBlue")


class _Colour(NamedTuple):
    """How a scan's colours become uint8."""

    direct: bool  # integer fields within 0-255: read as uint8, kept as they are
    lo: float  # otherwise scaled from [lo, hi] to [0, 255]; NaN: colours_to_uint8 guesses
    hi: float


class _Scan(NamedTuple):
    """What a scan holds, from its XML (no point read yet)."""

    index: int
    points: Any  # libe57.CompressedVectorNode
    count: int
    bits: int  # the fewest bits one record takes
    spherical: bool
    coords: tuple[str, str, str]
    invalid: str | None  # the invalid-state field of ``coords``' system, if present
    colour: _Colour | None  # None: no colour
    intensity: bool
    rotation: np.ndarray | None  # [3, 3], None: identity
    translation: np.ndarray  # [3]


def read_e57(path: Path, size: int) -> RawCloud:
    """Read and merge every scan of an E57 file.

    Args:
        path: the file (its magic bytes are known to be ``ASTM-E57``).
        size: its size in bytes.

    Returns:
        The raw cloud: float64 xyz [N, 3] with each scan's pose applied (missing points NaN),
        uint8 rgb [N, 3] when every scan has colour, float32 intensity [N] when every scan has
        intensity.

    Raises:
        PointCloudError: bad physical header, truncated or padded file, damaged page (CRC),
            malformed XML, no scan, a scan without coordinates, more points promised than the
            file can hold or than it holds; any libE57Format error.
    """
    check_e57_file(path, size)
    from pye57 import libe57

    imf = None
    try:
        # bytes: a file name that is not UTF-8 still opens (pybind11 would refuse the str).
        imf = libe57.ImageFile(os.fsencode(path), "r", libe57.CHECKSUM_POLICY_ALL)
        scans = _scans(libe57, imf, path)
        counts = [s.count for s in scans]
        need = sum(math.ceil(s.count * s.bits / 8) for s in scans)
        each = f"{scans[0].bits} bits each" if len(scans) == 1 else "by their fields' sizes"
        check_promise(path, "points", sum(counts), need, size, each)
        raw = _read_points(libe57, imf, scans, path)
        imf.close()
        return raw
    except (PointCloudError, MemoryError):
        raise
    except Exception as err:  # noqa: BLE001 - libE57Format's errors, and odd nodes' TypeErrors
        raise PointCloudError(f"cannot read as E57: {_first_line(err)}", path, _HINT) from None
    finally:
        if imf is not None and imf.isOpen():
            imf.close()


def _scans(libe57: Any, imf: Any, path: Path) -> list[_Scan]:
    root = imf.root()
    if not root.isDefined("data3D"):
        raise PointCloudError("the E57 file has no data3D section", path, _NO_SCAN_HINT)
    data3d = root["data3D"]
    if not isinstance(data3d, libe57.VectorNode) or data3d.childCount() == 0:
        raise PointCloudError("the E57 file holds no 3D scan", path, _NO_SCAN_HINT)
    return [_scan(libe57, data3d[i], i, path) for i in range(data3d.childCount())]


def _scan(libe57: Any, node: Any, index: int, path: Path) -> _Scan:
    where = f"scan {index + 1}"
    if not isinstance(node, libe57.StructureNode) or not node.isDefined("points"):
        raise PointCloudError(f"{where} has no points", path, _HINT)
    points = node["points"]
    if not isinstance(points, libe57.CompressedVectorNode):
        raise PointCloudError(f"{where}'s points are not a compressed vector", path, _HINT)
    proto = libe57.StructureNode(points.prototype())
    fields = {proto[i].elementName(): proto[i] for i in range(proto.childCount())}
    if all(f in fields for f in _CARTESIAN):
        coords, state, spherical = _CARTESIAN, "cartesianInvalidState", False
    elif all(f in fields for f in _SPHERICAL):
        coords, state, spherical = _SPHERICAL, "sphericalInvalidState", True
    else:
        raise PointCloudError(
            f"{where} has neither cartesianX/Y/Z nor sphericalRange/Azimuth/Elevation "
            f"(fields: {', '.join(fields) or 'none'})",
            path,
            _HINT,
        )
    count = int(points.childCount())
    if count < 0:
        raise PointCloudError(
            f"{where}'s header gives a negative point count ({count})", path, _HINT
        )
    if count > 1 and sum(_bits(libe57, fields[c]) for c in coords) == 0:
        # Zero bits a coordinate: nothing in the file bounds the count (each record is free).
        raise PointCloudError(
            f"{where}'s prototype gives its coordinates no range: all {count:,} points would "
            "lie on one spot",
            path,
            _HINT,
        )
    rotation, translation = _pose(libe57, node, where, path)
    return _Scan(
        index=index,
        points=points,
        count=count,
        bits=sum(_bits(libe57, f) for f in fields.values()),
        spherical=spherical,
        coords=coords,
        invalid=state if state in fields else None,
        colour=_colour_range(libe57, node, fields),
        intensity="intensity" in fields,
        rotation=rotation,
        translation=translation,
    )


def _bits(libe57: Any, node: Any) -> int:
    """The fewest bits a field takes in each record (libE57Format's bitpack codec)."""
    if isinstance(node, libe57.FloatNode):
        return 32 if node.precision() == libe57.E57_SINGLE else 64
    if isinstance(node, (libe57.IntegerNode, libe57.ScaledIntegerNode)):
        return max(int(node.maximum()) - int(node.minimum()), 0).bit_length()
    if isinstance(node, (libe57.StructureNode, libe57.VectorNode)):
        return sum(_bits(libe57, node[i]) for i in range(node.childCount()))
    return 0


def _number(libe57: Any, parent: Any, name: str, default: float) -> float:
    if not parent.isDefined(name):
        return default
    node = parent[name]
    if isinstance(node, libe57.ScaledIntegerNode):
        return float(node.scaledValue())
    if isinstance(node, (libe57.FloatNode, libe57.IntegerNode)):
        return float(node.value())
    raise TypeError(f"{node.pathName()} is not a number")


def _pose(libe57: Any, node: Any, where: str, path: Path) -> tuple[np.ndarray | None, np.ndarray]:
    """The scan's rotation matrix (None: identity) and translation, from its ``pose``."""
    if not node.isDefined("pose"):
        return None, np.zeros(3)
    pose = node["pose"]
    q = np.array([1.0, 0.0, 0.0, 0.0])
    t = np.zeros(3)
    if pose.isDefined("rotation"):
        r = pose["rotation"]
        q = np.array(
            [_number(libe57, r, k, d) for k, d in zip("wxyz", (1.0, 0, 0, 0), strict=True)]
        )
    if pose.isDefined("translation"):
        t = np.array([_number(libe57, pose["translation"], k, 0.0) for k in "xyz"])
    norm = math.hypot(*q)  # inf, not an overflow warning, for absurd values
    if not (np.isfinite(norm) and norm > 1e-9 and np.isfinite(t).all()):
        raise PointCloudError(
            f"{where}'s pose is unusable (rotation {q.tolist()}, translation {t.tolist()})",
            path,
            _HINT,
        )
    w, x, y, z = q / norm
    if (w, x, y, z) == (1.0, 0.0, 0.0, 0.0):
        return None, t
    rotation = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )
    return rotation, t


def _colour_range(libe57: Any, node: Any, fields: dict[str, Any]) -> _Colour | None:
    """How to bring the scan's colours to uint8; None when a colour channel is missing.

    Integer fields bounded within 0-255 are kept as they are. Others are scaled from the
    scan's ``colorLimits``, else from the fields' own bounds (16-bit colour: 0-65535); float
    fields without limits are left to :func:`colours_to_uint8` (0-1 or 0-255).
    """
    if not all(c in fields for c in _COLOURS):
        return None
    channels = [fields[c] for c in _COLOURS]
    if all(
        isinstance(f, libe57.IntegerNode) and f.minimum() >= 0 and f.maximum() <= 255
        for f in channels
    ):
        return _Colour(True, 0.0, 255.0)
    if node.isDefined("colorLimits"):
        limits = node["colorLimits"]
        lo = _number(libe57, limits, "colorRedMinimum", math.nan)
        hi = _number(libe57, limits, "colorRedMaximum", math.nan)
        if math.isfinite(lo) and math.isfinite(hi) and hi > lo:
            return _Colour(False, lo, hi)
    red = channels[0]
    if isinstance(red, libe57.ScaledIntegerNode):
        return _Colour(False, float(red.scaledMinimum()), float(red.scaledMaximum()))
    if isinstance(red, libe57.IntegerNode):
        return _Colour(False, float(red.minimum()), float(red.maximum()))
    return _Colour(False, math.nan, math.nan)


class _Out(NamedTuple):
    xyz: np.ndarray
    rgb: np.ndarray | None
    intensity: np.ndarray | None


def _read_points(libe57: Any, imf: Any, scans: list[_Scan], path: Path) -> RawCloud:
    total = sum(s.count for s in scans)
    colour = all(s.colour is not None for s in scans)
    intensity = all(s.intensity for s in scans)
    out = _Out(
        np.empty((total, 3)),
        np.empty((total, 3), np.uint8) if colour else None,
        np.empty(total, np.float32) if intensity else None,
    )
    start = 0
    for scan in scans:
        _read_scan(libe57, imf, scan, out, start, path)
        start += scan.count
    systems = sorted({"spherical" if s.spherical else "cartesian" for s in scans})
    label = f"e57 ({len(scans)} scan{'s' if len(scans) > 1 else ''}, {' + '.join(systems)})"
    return RawCloud(out.xyz, out.rgb, out.intensity, label)


def _read_scan(libe57: Any, imf: Any, scan: _Scan, out: _Out, start: int, path: Path) -> None:
    """Read ``scan`` into ``out`` from row ``start``, in chunks through fixed scratch buffers
    (libE57Format fills a buffer to its capacity, so it never writes into ``out`` itself)."""
    if scan.count == 0:
        return
    cap = min(_CHUNK, scan.count)
    colour = scan.colour if scan.colour is not None else _Colour(True, 0.0, 255.0)
    scratch = {
        "coords": np.empty((cap, 3)),
        "rgb": np.empty((cap, 3), np.uint8 if colour.direct else np.float64),
        "intensity": np.empty(cap, np.float32),
        "invalid": np.empty(cap, np.int8),
    }
    bufs = libe57.VectorSourceDestBuffer()

    def add(name: str, column: np.ndarray) -> None:
        bufs.append(libe57.SourceDestBuffer(imf, name, column, cap, True, True, column.strides[0]))

    for j, name in enumerate(scan.coords):
        add(name, scratch["coords"][:, j])
    if out.rgb is not None:
        for j, name in enumerate(_COLOURS):
            add(name, scratch["rgb"][:, j])
    if out.intensity is not None:
        add("intensity", scratch["intensity"])
    if scan.invalid is not None:
        add(scan.invalid, scratch["invalid"])
    reader = scan.points.reader(bufs)
    try:
        # Absurd values (inf ranges, NaN angles) become NaN points, dropped later: no warning.
        with np.errstate(all="ignore"):
            done = _copy_chunks(reader, scan, scratch, colour, out, start)
    finally:
        reader.close()
    if done < scan.count:
        raise PointCloudError(
            f"scan {scan.index + 1}'s header promises {scan.count:,} points, the file holds "
            f"{done:,}: it is truncated",
            path,
            _HINT,
        )


def _copy_chunks(
    reader: Any, scan: _Scan, scratch: dict[str, np.ndarray], colour: _Colour, out: _Out, start: int
) -> int:
    """Read chunks until the scan's count or the data ends; returns the points read."""
    done = 0
    while done < scan.count:
        got = min(int(reader.read()), scan.count - done)
        if got == 0:
            break
        rows = slice(start + done, start + done + got)
        _place(scan, scratch, got, out.xyz[rows])
        if out.rgb is not None:
            out.rgb[rows] = _colours(scratch["rgb"][:got], colour)
        if out.intensity is not None:
            out.intensity[rows] = scratch["intensity"][:got]
        done += got
    return done


def _place(scan: _Scan, scratch: dict[str, np.ndarray], got: int, dest: np.ndarray) -> None:
    """Coordinates of one chunk into ``dest``: spherical to Cartesian, then the pose; missing
    points NaN."""
    c = scratch["coords"][:got]
    if scan.spherical:
        r, az, el = c[:, 0], c[:, 1], c[:, 2]
        flat = r * np.cos(el)
        c = np.stack([flat * np.cos(az), flat * np.sin(az), r * np.sin(el)], axis=1)
    if scan.rotation is None:
        dest[:] = c
    else:
        np.matmul(c, scan.rotation.T, out=dest)
    if scan.translation.any():
        dest += scan.translation
    if scan.invalid is not None:
        dest[scratch["invalid"][:got] != 0] = np.nan


def _colours(values: np.ndarray, colour: _Colour) -> np.ndarray:
    if colour.direct:
        return values
    if math.isnan(colour.lo):
        return colours_to_uint8(values)
    scaled = (values - colour.lo) * (255.0 / (colour.hi - colour.lo))
    return np.clip(np.nan_to_num(np.rint(scaled)), 0, 255).astype(np.uint8)


def _first_line(err: BaseException) -> str:
    """libE57Format's messages end in a multi-line debug report; its first line says it."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"
