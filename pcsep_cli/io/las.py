"""LAS 1.0-1.4 (point formats 0-10) and LAZ reading with laspy (+ lazrs for LAZ).

Points are read in chunks so memory follows what the file really holds, not what its header
promises; for uncompressed LAS the promise is also checked against the file size first.
Scale and offset are applied in float64 (georeferenced coordinates keep their millimetres).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np

from pcsep_cli.errors import PointCloudError
from pcsep_cli.io.cloud import RawCloud, check_promise, colours_to_uint8

_CHUNK = 1_000_000
_HINT = "re-export the LAS/LAZ file, e.g. with PDAL, LAStools or CloudCompare"


def read_las(path: Path, size: int) -> RawCloud:
    """Read every point of a LAS or LAZ file.

    Args:
        path: the file (its magic bytes are known to be ``LASF``).
        size: its size in bytes.

    Returns:
        The raw cloud: scaled float64 xyz [N, 3], uint8 rgb [N, 3] for point formats with
        colour (else None), float32 intensity [N].

    Raises:
        PointCloudError: bad header, truncated or corrupt point data, too many points.
    """
    import laspy

    _check_record_counts(path, size)
    try:
        reader = laspy.open(path)
    except laspy.LaspyException as err:
        raise PointCloudError(f"bad LAS header: {type(err).__name__}: {err}", path, _HINT) from None
    with reader:
        header = reader.header
        count = int(header.point_count)
        compressed = bool(header.are_points_compressed)
        fmt = "laz" if compressed else "las"
        label = f"{fmt} {header.version.major}.{header.version.minor} (point format "
        label += f"{header.point_format.id})"
        point_size = int(header.point_format.size)
        start = int(header.offset_to_point_data)
        if compressed:
            # Compressed size is unknown up front; chunked reading bounds memory instead.
            check_promise(path, "points", count, 0, 0)
            _check_chunk_size(path, header, point_size)
            _check_chunk_table(path, start, size)
            _check_chunk_bytes(path, header, start, size)
            _check_layers(path, header, start, size)
        else:
            check_promise(
                path,
                "points",
                count,
                count * point_size,
                max(size - start, 0),
                f"{point_size} bytes each",
            )
        has_rgb = "red" in header.point_format.dimension_names
        scales, offsets = _scales_and_offsets(path, header)
        xyz_parts, rgb_parts, intensity_parts = [], [], []
        try:
            for chunk in reader.chunk_iterator(_CHUNK):
                part = np.empty((len(chunk), 3), dtype=np.float64)
                for i, axis in enumerate("XYZ"):
                    part[:, i] = np.asarray(chunk[axis], dtype=np.float64)
                part *= scales
                part += offsets
                xyz_parts.append(part)
                intensity_parts.append(np.asarray(chunk.intensity, dtype=np.float32))
                if has_rgb:
                    rgb_parts.append(np.stack([chunk.red, chunk.green, chunk.blue], axis=1))
        except PointCloudError:
            raise
        except BaseException as err:  # noqa: BLE001 - laspy/lazrs raise many kinds
            if not isinstance(err, Exception) and type(err).__name__ != "PanicException":
                raise  # KeyboardInterrupt, SystemExit: not the file's fault
            # A Rust panic in lazrs (pyo3's PanicException is a BaseException) unwinds
            # cleanly: the decoder hit data it could not make sense of.
            read = sum(len(p) for p in xyz_parts)
            raise PointCloudError(
                f"{fmt.upper()} point data is corrupt or truncated after {read:,} of "
                f"{count:,} points ({type(err).__name__}: {err})",
                path,
                _HINT,
            ) from None
    read = sum(len(p) for p in xyz_parts)
    if read != count:
        raise PointCloudError(
            f"header promises {count:,} points, the file holds {read:,}: it is truncated",
            path,
            _HINT,
        )
    xyz = _concat(xyz_parts, (0, 3), np.float64)
    intensity = _concat(intensity_parts, (0,), np.float32)
    rgb = colours_to_uint8(_concat(rgb_parts, (0, 3), np.uint16)) if has_rgb else None
    return RawCloud(xyz, rgb, intensity, label)


def _scales_and_offsets(path: Path, header: Any) -> tuple[np.ndarray, np.ndarray]:
    """The header's scale factors and offsets, refused unless they can place a point.

    Coordinates are stored as integers times a scale plus an offset: a zero scale puts every
    point on one plane (all three zero: on one point, read silently as a cloud at the
    origin), a NaN or infinite one makes every coordinate non-finite.
    """
    scales = np.asarray(header.scales, dtype=np.float64)
    offsets = np.asarray(header.offsets, dtype=np.float64)
    for name, values, rule in (
        ("scale factor", scales, "a finite number other than 0"),
        ("offset", offsets, "a finite number"),
    ):
        for axis, value in zip("XYZ", values, strict=True):
            if not np.isfinite(value) or (name == "scale factor" and value == 0):
                raise PointCloudError(
                    f"header's {axis} {name} is {value:g}; it must be {rule}",
                    path,
                    f"the header is corrupt: {_HINT}",
                )
    return scales, offsets


def _check_record_counts(path: Path, size: int) -> None:
    """Refuse a header promising more records, or points further on, than the file holds.

    laspy reads that many records without checking for the end of the file, so a corrupt
    count (up to 2**32) loops for hours while memory grows. Offsets from the LAS 1.0-1.4
    header: uint32 offset to the point data at 96, uint32 VLR count at 100; LAS 1.4 uint64
    first-EVLR offset at 235, uint32 EVLR count at 243. A VLR header is 54 bytes, an EVLR
    header 60.
    """
    with open(path, "rb") as fh:
        head = fh.read(247)
    if len(head) < 104:
        return  # laspy reports the short header itself
    (point_data, vlrs) = struct.unpack_from("<II", head, 96)
    problem = None
    if point_data > size:
        # laspy reads everything up to there into one buffer: a corrupt offset asked for 4 GB.
        raise PointCloudError(
            f"header puts the points at byte {point_data:,}, past the end of the "
            f"{size:,}-byte file: it is corrupt",
            path,
            _HINT,
        )
    if vlrs * 54 > size:
        problem = f"header promises {vlrs:,} variable-length records"
    elif len(head) == 247 and head[24:26] == b"\x01\x04":
        first, evlrs = struct.unpack_from("<QI", head, 235)
        if evlrs and evlrs * 60 > size - min(first, size):
            problem = f"header promises {evlrs:,} extended variable-length records"
    if problem:
        raise PointCloudError(
            f"{problem}, more than its {size:,} bytes can hold: it is corrupt", path, _HINT
        )


def _chunk_table_offset(fh: Any, start: int, size: int) -> int | None:
    """The LAZ chunk table's offset: the int64 at the start of the point data, or, when that
    is -1, the int64 in the file's last 8 bytes (LASzip). None when the file ends first."""
    fh.seek(start)
    raw = fh.read(8)
    if len(raw) < 8:
        return None
    (offset,) = struct.unpack("<q", raw)
    if offset == -1 and size >= 8:
        fh.seek(size - 8)
        (offset,) = struct.unpack("<q", fh.read(8))
    return int(offset)


def _check_chunk_table(path: Path, start: int, size: int) -> None:
    """Refuse a LAZ chunk table that promises more chunks than the file has bytes.

    lazrs allocates the table before reading it, and a failed allocation aborts the whole
    process (a corrupt count asked it for 35 GB), so the count is checked here first.
    Layout (LASzip): an int64 table offset at the start of the point data (-1: stored in the
    file's last 8 bytes), then at that offset uint32 version and uint32 chunk count.
    """
    with open(path, "rb") as fh:
        offset = _chunk_table_offset(fh, start, size)
        if offset is None or not 0 <= offset <= size - 8:
            return  # no usable table: lazrs reads sequentially or reports the damage
        fh.seek(offset)
        _version, chunks = struct.unpack("<II", fh.read(8))
    if chunks > size:
        raise PointCloudError(
            f"LAZ chunk table promises {chunks:,} chunks in a {size:,}-byte file: it is corrupt",
            path,
            _HINT,
        )


def _laszip_record(header: Any) -> bytes | None:
    vlr = next((v for v in header.vlrs if getattr(v, "record_id", None) == 22204), None)
    return None if vlr is None else bytes(vlr.record_data)


_MAX_CHUNK_BYTES = 512 << 20
"""Largest chunk (points per chunk x point size) read: LASzip's default, 50,000 points, takes
a few MB; lazrs reserves a whole chunk before decoding it."""
_VARIABLE_CHUNKS = 0xFFFFFFFF


def _check_chunk_size(path: Path, header: Any, point_size: int) -> None:
    """Refuse a LASzip record whose fixed chunk size would need more than
    :data:`_MAX_CHUNK_BYTES` per chunk.

    lazrs's decompressor allocates ``chunk_size x point_size`` bytes when it is made, and a
    failed allocation aborts the process (a fuzzed chunk size of 2**28 points asked for
    9.7 GB: "Fatal Python error: Aborted", nothing to catch).
    """
    record = _laszip_record(header)
    if record is None or len(record) < 16:
        return  # laspy reports a missing or short record itself
    (chunk_size,) = struct.unpack_from("<I", record, 12)
    if chunk_size == _VARIABLE_CHUNKS:
        return
    need = chunk_size * max(point_size, 1)
    if need > _MAX_CHUNK_BYTES:
        raise PointCloudError(
            f"LAZ chunks of {chunk_size:,} points ({need / 1e9:.1f} GB each) are past what pcsep "
            f"reads ({_MAX_CHUNK_BYTES >> 20} MB): the LASzip record is corrupt",
            path,
            _HINT,
        )


def _check_chunk_bytes(path: Path, header: Any, start: int, size: int) -> None:
    """Refuse a LAZ chunk table whose chunks hold more bytes than the file.

    lazrs's parallel decoder reserves the sum of the table's byte counts before it reads: a
    corrupt entry (2**64 - 75,866 in a 1.7 kB file, found by fuzzing) made it panic with a
    capacity overflow and print a Rust backtrace.
    """
    import lazrs

    record = _laszip_record(header)
    if record is None:
        return  # laspy reports the missing LASzip record itself
    with open(path, "rb") as fh:
        offset = _chunk_table_offset(fh, start, size)
        if offset is None or not 8 <= offset <= size - 8:
            return
        fh.seek(offset)
        try:
            table = lazrs.read_chunk_table_only(fh, lazrs.LazVlr(record))
        except Exception:  # noqa: BLE001 - lazrs raises its own kinds; it reports later
            return
    total = sum(int(nbytes) for _, nbytes in table)
    if total > size - start:
        raise PointCloudError(
            f"LAZ chunk table gives its chunks {total:,} bytes, more than the "
            f"{max(size - start, 0):,} after the header: it is corrupt",
            path,
            _HINT,
        )


# LAZ 1.4 items stored in layers: item type -> layers (None: one per byte of the item).
_LAYERS = {10: 9, 11: 1, 12: 2, 13: 1, 14: None}


def _check_layers(path: Path, header: Any, start: int, size: int) -> None:
    """Refuse LAZ 1.4 chunks whose layer sizes do not fit the chunk.

    A layered chunk (point formats 6-10) starts with its first point uncompressed, a uint32
    point count and one uint32 byte count per layer; lazrs allocates each layer before
    reading it, so a corrupt size made it zero 4 GB and spend seconds failing (fuzzing found a
    900-byte file doing that). In a valid chunk the layers fill it exactly.
    """
    import lazrs

    record = _laszip_record(header)
    if record is None:
        return  # laspy reports the missing LASzip record itself
    if len(record) < 34:
        return
    (n_items,) = struct.unpack_from("<H", record, 32)
    if len(record) != 34 + 6 * n_items:
        raise PointCloudError(
            f"LAZ record lists {n_items} items in {len(record)} bytes: it is corrupt", path, _HINT
        )
    items = [struct.unpack_from("<HH", record, 34 + 6 * i) for i in range(n_items)]
    if not any(kind in _LAYERS for kind, _ in items):
        return  # LAZ 1.0-1.3 point formats: not layered
    first = sum(item_size for _, item_size in items)
    layers = sum(
        item_size if _LAYERS.get(kind, 0) is None else _LAYERS.get(kind, 0)
        for kind, item_size in items
    )
    with open(path, "rb") as fh:
        offset = _chunk_table_offset(fh, start, size)
        if offset is None:
            return  # truncated: lazrs reports it
        table: list[tuple[int, int]] = []
        if 8 <= offset <= size - 8:
            fh.seek(offset)
            try:
                table = [tuple(e) for e in lazrs.read_chunk_table_only(fh, lazrs.LazVlr(record))]
            except Exception:  # noqa: BLE001 - lazrs raises its own kinds; it reports later
                table = []
        chunks = table or [(0, size - start - 8)]  # no table: at least check the first chunk
        pos = start + 8
        for _, nbytes in chunks:
            fh.seek(pos + first)
            head = fh.read(4 + 4 * layers)
            if len(head) < 4 + 4 * layers:
                return  # truncated: lazrs reports it
            sizes = struct.unpack(f"<I{layers}I", head)[1:]
            room = min(nbytes, size - pos) - first - 4 - 4 * layers
            if sum(sizes) > max(room, 0):
                raise PointCloudError(
                    f"LAZ chunk at byte {pos:,} claims {sum(sizes):,} bytes of layers, more "
                    f"than the {max(room, 0):,} it has: it is corrupt",
                    path,
                    _HINT,
                )
            pos += nbytes
            if pos >= size:
                return


def _concat(parts: list[np.ndarray], empty: tuple[int, ...], dtype: type) -> np.ndarray:
    if not parts:
        return np.empty(empty, dtype=dtype)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)
