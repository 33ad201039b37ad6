"""Read point clouds (PLY, LAS, LAZ, PCD, E57) into a :class:`~pcsep_cli.io.cloud.PointCloud`;
write PLY.

The format is decided by the file's first bytes, never by its extension alone. Each format has
its own module (:mod:`pcsep_cli.io.ply`, :mod:`pcsep_cli.io.las`, :mod:`pcsep_cli.io.pcd`,
:mod:`pcsep_cli.io.e57`), imported only when a file of that kind is read so ``pcsep --help``
stays fast. The readers return raw arrays; this module applies units, drops non-finite points
(and the points an E57 scan marks missing, which its reader hands over as NaN) and checks what
a scene must be.

Every failure is a :class:`~pcsep_cli.errors.PointCloudError` naming the file and how to fix it:
no exception of numpy, plyfile, laspy, lzf or pye57 escapes :func:`read_cloud`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np

from pcsep_cli.errors import PointCloudError
from pcsep_cli.io.cloud import MAX_POINTS, READ_HINT, PointCloud, RawCloud

__all__ = [
    "MAX_POINTS",
    "MAX_SPAN_M",
    "UNITS",
    "PointCloud",
    "read_cloud",
    "units_warning",
    "write_ply",
]

UNITS: dict[str, float] = {"m": 1.0, "cm": 0.01, "mm": 0.001, "ft": 0.3048}
"""Metres per unit for the ``units`` argument of :func:`read_cloud`."""

MAX_SPAN_M = 100_000.0
"""A scene spanning more than this (metres, after units) is refused: wrong units or junk."""

STAGE_SPAN_M = 200.0
"""A scene wider than this (metres, after units) gets a word from :func:`units_warning`."""

_SNIFF_BYTES = 4096

# Magic numbers of files people pass by mistake, to say what the file is rather than
# only what it is not.
_FOREIGN_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"WAVE", 8, "a WAV audio file"),
    (b"fLaC", 0, "a FLAC audio file"),
    (b"OggS", 0, "an Ogg audio file"),
    (b"ID3", 0, "an MP3 audio file"),
    (b"FORM", 0, "an AIFF audio file"),
    (b"PK\x03\x04", 0, "a ZIP archive"),
    (b"\x89PNG", 0, "a PNG image"),
    (b"\xff\xd8\xff", 0, "a JPEG image"),
    (b"\x93NUMPY", 0, "a NumPy .npy array"),
    (b"%PDF", 0, "a PDF document"),
)


def read_cloud(path: str | os.PathLike[str], units: str | None = None) -> PointCloud:
    """Read a PLY, LAS, LAZ, PCD or E57 point cloud.

    The format is found from the file's magic bytes (``ply``, ``LASF``, a PCD header,
    ``ASTM-E57``), so a misnamed file still reads and a non-cloud file gets a clear error.
    The scans of an E57 file are merged, each with its pose applied.

    Args:
        path: the file.
        units: units of the file's coordinates: ``None`` or ``"m"`` (metres), ``"cm"``,
            ``"mm"`` or ``"ft"``. Coordinates are scaled to metres.

    Returns:
        The cloud with its finite points only; ``dropped`` counts the others (with the
        points an E57 scan marks missing).

    Raises:
        PointCloudError: the file is missing, unreadable, not a point cloud, truncated,
            inconsistent, holds no finite point, promises more than :data:`MAX_POINTS` points,
            spans more than :data:`MAX_SPAN_M` metres, or ``units`` is unknown.
    """
    path = Path(path)
    scale = _unit_scale(units, path)
    size = _check_file(path)
    try:
        with open(path, "rb") as f:
            prefix = f.read(_SNIFF_BYTES)
    except PermissionError:
        raise _permission_error(path) from None
    except OSError as err:
        raise PointCloudError(f"cannot read the file: {err.strerror or err}", path) from None
    kind = _sniff(prefix, path)
    try:
        if kind == "ply":
            from pcsep_cli.io.ply import read_ply as reader
        elif kind == "las":
            from pcsep_cli.io.las import read_las as reader
        elif kind == "e57":
            from pcsep_cli.io.e57 import read_e57 as reader
        else:
            from pcsep_cli.io.pcd import read_pcd as reader
        raw = reader(path, size)
    except PointCloudError:
        raise
    except PermissionError:
        raise _permission_error(path) from None
    except MemoryError:
        raise PointCloudError(
            f"not enough memory to read this {kind.upper()} file",
            path,
            "subsample the cloud first, e.g. with CloudCompare or PDAL filters.sample",
        ) from None
    except Exception as err:  # noqa: BLE001 - no library exception may escape (see module doc)
        raise PointCloudError(
            f"cannot read as {kind.upper()}: {type(err).__name__}: {err}", path, READ_HINT
        ) from err
    return _finish(raw, path, scale)


def write_ply(
    path: str | os.PathLike[str], cloud: PointCloud, binary: bool = True, overwrite: bool = True
) -> None:
    """Write a cloud as PLY, atomically (temporary file in the same folder, then rename).

    Coordinates are written as float64 (``double``) so georeferenced values survive exactly;
    ``red/green/blue`` as uint8 and ``intensity`` as float32 when the cloud has them.

    Args:
        path: destination file; its folder must exist.
        cloud: the cloud to write.
        binary: binary little-endian when true, ASCII otherwise.
        overwrite: replace ``path`` if it exists.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false.
        PcsepError: the file cannot be written; the destination is left untouched.
    """
    from pcsep_cli.io.ply import write_ply as _write_ply

    _write_ply(Path(path), cloud, binary=binary, overwrite=overwrite)


def _finish(raw: RawCloud, path: Path, scale: float) -> PointCloud:
    xyz, rgb, intensity = raw.xyz, raw.rgb, raw.intensity
    total = xyz.shape[0]
    if total == 0:
        raise PointCloudError(
            f"the {raw.format} file holds no points", path, "export the scan again with points"
        )
    # Per column: isfinite(xyz).all(axis=1) takes 3x as long on large clouds.
    finite = np.isfinite(xyz[:, 0]) & np.isfinite(xyz[:, 1]) & np.isfinite(xyz[:, 2])
    kept = int(np.count_nonzero(finite))
    if kept == 0:
        raise PointCloudError(
            f"none of its {total:,} points has finite coordinates (all NaN, inf or missing)",
            path,
            "export the scan again; an organized cloud with no valid return holds no points",
        )
    if kept < total:
        xyz = xyz[finite]
        rgb = None if rgb is None else rgb[finite]
        intensity = None if intensity is None else intensity[finite]
    if scale != 1.0:
        xyz *= scale
    cloud = PointCloud(
        xyz=xyz, rgb=rgb, intensity=intensity, source=path, format=raw.format, dropped=total - kept
    )
    lo, hi = cloud.bounds
    span = float((hi - lo).max())
    if span > MAX_SPAN_M:
        raise PointCloudError(
            f"the cloud spans {span / 1000:,.1f} km, more than a scene can "
            f"({MAX_SPAN_M / 1000:,.0f} km)",
            path,
            "if its coordinates are not metres pass --units mm|cm|ft; otherwise crop the scene",
        )
    return cloud


def _unit_scale(units: str | None, path: Path) -> float:
    if units is None:
        return 1.0
    key = units.strip().lower() if isinstance(units, str) else units
    if key not in UNITS:
        raise PointCloudError(
            f"unknown units {units!r}",
            path,
            f"use one of: {', '.join(UNITS)}; m is metres, the default",
        )
    return UNITS[key]


def _check_file(path: Path) -> int:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise PointCloudError("no such file", path, "check the path and its spelling") from None
    except PermissionError:
        raise _permission_error(path) from None
    except OSError as err:
        raise PointCloudError(f"cannot open: {err.strerror or err}", path) from None
    if stat.S_ISDIR(st.st_mode):
        raise PointCloudError(
            "is a folder, not a point cloud file",
            path,
            "pass a .ply, .las, .laz, .pcd or .e57 file",
        )
    if not stat.S_ISREG(st.st_mode):
        # A FIFO or device would block or never end; clouds are read from regular files.
        raise PointCloudError(
            "is not a regular file (a pipe, socket or device)",
            path,
            "save the cloud to a file first",
        )
    if st.st_size == 0:
        raise PointCloudError(
            "the file is empty (0 bytes)", path, "the export or copy did not finish; redo it"
        )
    return int(st.st_size)


def _permission_error(path: Path) -> PointCloudError:
    return PointCloudError(
        "permission denied",
        path,
        "make the file readable to this user, e.g. chmod a+r, or copy it somewhere readable",
    )


def _sniff(prefix: bytes, path: Path) -> str:
    """Name the format from the first bytes: ``"ply"``, ``"las"``, ``"pcd"`` or ``"e57"``."""
    if prefix[:4] in (b"ply\n", b"ply\r"):
        return "ply"
    if prefix[:4] == b"LASF":
        return "las"
    if prefix[:8] == b"ASTM-E57":
        return "e57"
    if _looks_like_pcd(prefix):
        return "pcd"
    ext = path.suffix.lower()
    said = f"named {ext} but " if ext in (".ply", ".las", ".laz", ".pcd", ".e57") else ""
    what = _foreign(prefix)
    hint = "pcsep reads PLY, LAS, LAZ, PCD and E57 point clouds"
    if what and "audio" in what:
        hint = "it is audio: pass the point cloud here; were AUDIO and CLOUD swapped?"
    elif what is None and _looks_like_xyz_text(prefix):
        what = "plain-text XYZ coordinates"
        hint = "convert it to PLY, e.g. with CloudCompare or PDAL's readers.text"
    start = prefix[:8].hex(" ")
    looks = f"looks like {what}, " if what else ""
    raise PointCloudError(
        f"{said}not a PLY, LAS/LAZ, PCD or E57 file: {looks}starts with bytes {start}",
        path,
        hint,
    )


def _looks_like_pcd(prefix: bytes) -> bool:
    for line in prefix.split(b"\n")[:32]:
        line = line.strip()
        if line.startswith(b"# .PCD"):
            return True
        if not line or line.startswith(b"#"):
            continue
        return line.split(None, 1)[0].upper() in (b"VERSION", b"FIELDS")
    return False


def _foreign(prefix: bytes) -> str | None:
    for magic, offset, what in _FOREIGN_MAGIC:
        if prefix[offset : offset + len(magic)] == magic:
            return what
    if prefix[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "an MP3 audio file"
    return None


def _looks_like_xyz_text(prefix: bytes) -> bool:
    try:
        first = prefix.split(b"\n", 1)[0].decode("ascii").replace(",", " ").split()
        [float(v) for v in first]
    except (UnicodeDecodeError, ValueError):
        return False
    return len(first) >= 3


def units_warning(cloud: PointCloud) -> str | None:
    """A word on a cloud too big to be a stage in metres, naming the units it looks like.

    A scan exported in millimetres reads as a room kilometres wide: nothing fails, but no
    performer is found (clusters are sought at centimetre scale). When the cloud spans more
    than :data:`STAGE_SPAN_M` metres, its height (z extent: z is up) says which units fit: a
    performer stands 1-2 m tall, a room or hall 3-10 m, so of millimetres and centimetres the
    one that makes the height 0.5-30 m, closest to 2 m (on a log scale), with the width at
    most :data:`STAGE_SPAN_M`, is named. Feet differ from metres too little to be told apart,
    so they are only named as a possibility.

    Args:
        cloud: a cloud as read (``xyz`` in metres after ``units``).

    Returns:
        One sentence without the file's name (``"it spans 8,016 m across and 2,308 m high,
        too big for a stage: its coordinates look like millimetres; pass --units mm"``), or
        None when the cloud's size is plausible in metres.
    """
    xyz = np.asarray(cloud.xyz)
    if xyz.ndim != 2 or xyz.shape[0] == 0 or xyz.shape[1] != 3:
        return None
    extent = np.ptp(xyz, axis=0)
    width, height = float(extent.max()), float(extent[2])
    if width <= STAGE_SPAN_M:
        return None
    size = f"it spans {width:,.0f} m across and {height:,.0f} m high, too big for a stage"
    fits = [
        (abs(np.log(height * UNITS[unit] / 2.0)), unit, name)
        for unit, name in (("mm", "millimetres"), ("cm", "centimetres"))
        if 0.5 <= height * UNITS[unit] <= 30.0 and width * UNITS[unit] <= STAGE_SPAN_M
    ]
    if fits:
        _, unit, name = min(fits)
        return f"{size}: its coordinates look like {name}; pass --units {unit}"
    return f"{size}: if its coordinates are not metres, pass --units mm, cm or ft"
