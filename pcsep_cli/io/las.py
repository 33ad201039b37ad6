"""LAS 1.0-1.4 (point formats 0-10) and LAZ reading with laspy (+ lazrs for LAZ).

Points are read in chunks so memory follows what the file really holds, not what its header
promises; for uncompressed LAS the promise is also checked against the file size first.
Scale and offset are applied in float64 (georeferenced coordinates keep their millimetres).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pcsep_cli.errors import PointCloudError
from pcsep_cli.io.pointcloud import RawCloud, check_promise, colours_to_uint8

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
        scales, offsets = np.asarray(header.scales), np.asarray(header.offsets)
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
        except Exception as err:  # noqa: BLE001 - laspy/lazrs raise many kinds
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


def _concat(parts: list[np.ndarray], empty: tuple[int, ...], dtype: type) -> np.ndarray:
    if not parts:
        return np.empty(empty, dtype=dtype)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)
