"""Microphone geometry: ``mics.json`` (``--mics FILE``) and the ``microphones`` of ``meta.json``.

One entry per channel of the recording, in channel order, in the cloud's frame and units::

    {"microphones": [
      {"position": [-0.085, -3.0, 1.6], "direction": [-0.5, 0.866, 0], "pattern": "cardioid"},
      {"position": [0.085, -3.0, 1.6], "direction": [0.5, 0.866, 0], "pattern": "cardioid"}]}

``direction`` and ``pattern`` are optional: without a pattern a microphone is omni (a
``direction`` is then kept but plays no part); a directional pattern needs a direction, which
is normalised. A plain ``[x, y, z]`` stands for an omni at that point. Patterns are first-order
(:data:`PATTERNS`): the response at angle θ off the axis is ``a + (1 − a) cos θ``. Pattern names
are read without regard to case, spaces, ``-`` and ``_`` (``Super-Cardioid``, ``figure-8``).

Coordinates are scaled to metres by the same ``units`` as the cloud (``--units mm`` applies to
both). Two microphones at one point (within :data:`SAME_POINT_M`) that pick up alike (same
pattern and, unless omni, same direction) would record the same signal: a repeated entry, so
refused; coincident pairs that differ in direction (XY, Blumlein) or pattern (MS) are fine.

Files are untrusted: at most :data:`MAX_MICS_BYTES` are read and nesting deeper than
:data:`MAX_MICS_DEPTH` is refused before the JSON parser recurses into it. Every failure is a
:class:`~pcsep_cli.errors.MicrophoneError` (or the ``error`` class a caller passes, e.g.
:class:`~pcsep_cli.errors.DatasetError` for ``meta.json``): one line naming the file, the entry
and the fix.
"""

from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pcsep_cli.dataclass_json import parse_config_text
from pcsep_cli.errors import MicrophoneError, PcsepError
from pcsep_cli.io.pointcloud import UNITS

__all__ = [
    "MAX_MICROPHONES",
    "MAX_MICS_BYTES",
    "MAX_MICS_DEPTH",
    "PATTERNS",
    "Microphones",
    "parse_microphones",
    "read_mics",
]

PATTERNS: dict[str, float] = {
    "omni": 1.0,
    "subcardioid": 0.7,
    "cardioid": 0.5,
    "supercardioid": 0.37,
    "hypercardioid": 0.25,
    "figure8": 0.0,
}
"""First-order polar patterns: ``a`` of the response ``a + (1 − a) cos θ``."""

MAX_MICROPHONES = 8
"""Most microphones (channels) a geometry may hold."""
MAX_MICS_BYTES = 100_000
"""Largest ``mics.json`` read: eight microphones, pretty-printed, take about 2 kB."""
MAX_MICS_DEPTH = 8
"""Deepest nesting of objects and lists: a real file reaches 4."""
SAME_POINT_M = 0.001
"""Microphones closer than this (metres) stand at one point."""
_SAME_AXIS = math.cos(math.radians(1.0))  # directions within 1 degree are the same

FORMAT_HINT = (
    'write {"microphones": [{"position": [x, y, z], "direction": [dx, dy, dz], '
    '"pattern": "cardioid"}, ...]}, one per channel in channel order'
)
_KEYS = ("position", "direction", "pattern")


@dataclass(frozen=True, eq=False)
class Microphones:
    """The microphones of a recording, one per channel in channel order.

    Attributes:
        positions: float64 ``[M, 3]`` in metres (after ``units``), in the cloud's frame.
        directions: float64 ``[M, 3]`` unit vectors along each microphone's axis, rows of zeros
            where an entry gave none (omni); None when no entry gave one.
        patterns: ``M`` names from :data:`PATTERNS`.
        source: the file read, for messages and the manifest; None when built in memory.

    Raises:
        ValueError: arrays of the wrong shape, or a pattern that is not in :data:`PATTERNS`.
    """

    positions: np.ndarray
    directions: np.ndarray | None
    patterns: tuple[str, ...]
    source: Path | None = None

    def __post_init__(self) -> None:
        m = len(self.patterns)
        if self.positions.shape != (m, 3):
            raise ValueError(f"positions must be [{m}, 3], got {list(self.positions.shape)}")
        if self.directions is not None and self.directions.shape != (m, 3):
            raise ValueError(f"directions must be [{m}, 3], got {list(self.directions.shape)}")
        unknown = [p for p in self.patterns if p not in PATTERNS]
        if unknown:
            raise ValueError(f"unknown pattern {unknown[0]!r}; use one of {', '.join(PATTERNS)}")

    def __len__(self) -> int:
        return len(self.patterns)

    @property
    def coefficients(self) -> np.ndarray:
        """float64 ``[M]``: ``a`` of each microphone's response ``a + (1 − a) cos θ``."""
        return np.array([PATTERNS[p] for p in self.patterns], dtype=np.float64)

    def to_json(self) -> dict[str, Any]:
        """``{"positions": [[x, y, z], ...], "directions": [[dx, dy, dz] | None, ...],
        "patterns": [...]}``: metres, rounded to 0.1 mm (directions to 1e-6)."""
        dirs: list[list[float] | None] = [None] * len(self)
        if self.directions is not None:
            dirs = [[round(float(v), 6) for v in d] if np.any(d) else None for d in self.directions]
        return {
            "positions": [[round(float(v), 4) for v in p] for p in self.positions],
            "directions": dirs,
            "patterns": list(self.patterns),
        }


def read_mics(path: str | os.PathLike[str], units: str | None = None) -> Microphones:
    """Read a ``mics.json``: ``{"microphones": [microphone, ...]}`` (module docstring).

    Args:
        path: the file.
        units: units of its coordinates, as the cloud's: ``None`` or ``"m"``, ``"cm"``,
            ``"mm"``, ``"ft"``; positions are scaled to metres.

    Returns:
        The microphones, ``source`` set to ``path``.

    Raises:
        MicrophoneError: the file is missing, not a regular file, larger than
            :data:`MAX_MICS_BYTES`, not UTF-8 JSON, nested deeper than :data:`MAX_MICS_DEPTH`,
            has no ``microphones`` list, or an entry is wrong (see :func:`parse_microphones`).
    """
    file = Path(path)
    data = _load(file)
    if not isinstance(data, dict) or "microphones" not in data:
        got = "an object without it" if isinstance(data, dict) else _kind(data)
        raise MicrophoneError(f'needs a "microphones" list, got {got}', file, FORMAT_HINT)
    extra = sorted(set(data) - {"microphones"})
    if extra:
        raise MicrophoneError(
            f"unknown key {extra[0]!r} beside microphones", file, 'keep only "microphones"'
        )
    return parse_microphones(data["microphones"], source=file, units=units)


def parse_microphones(
    entries: Any,
    *,
    source: str | os.PathLike[str] | None = None,
    units: str | None = None,
    where: str = "microphones",
    error: type[PcsepError] = MicrophoneError,
) -> Microphones:
    """Microphones from parsed JSON: a list of ``{"position", "direction", "pattern"}`` objects
    or plain ``[x, y, z]`` lists (omni), one per channel.

    Args:
        entries: the list.
        source: the file it came from, for messages.
        units: units of the coordinates (see :func:`read_mics`).
        where: how messages name the list (``microphones``, ``meta.json microphones``).
        error: error class raised.

    Raises:
        error: not a list, no entry or more than :data:`MAX_MICROPHONES`, an entry that is not
            an object or ``[x, y, z]``, an unknown key, a position or direction that is not three
            finite numbers, a zero direction, an unknown pattern, a directional pattern without
            a direction, or two entries that are the same microphone.
    """
    path = None if source is None else Path(source)
    scale = _unit_scale(units, path, error)
    if not isinstance(entries, list):
        raise error(f"{where} must be a list, got {_kind(entries)}", path, FORMAT_HINT)
    if not 1 <= len(entries) <= MAX_MICROPHONES:
        few = "no microphone" if not entries else f"{len(entries)} microphones"
        raise error(
            f"{where} lists {few}; pcsep takes 1 to {MAX_MICROPHONES}",
            path,
            "give one microphone per channel of the recording, in channel order",
        )
    positions, directions, patterns = [], [], []
    for i, entry in enumerate(entries):
        pos, direction, pattern = _entry(entry, f"{where}[{i}]", path, error)
        positions.append(pos)
        directions.append(direction)
        patterns.append(pattern)
    xyz = np.array(positions, dtype=np.float64) * scale
    given = [d is not None for d in directions]
    dirs = None
    if any(given):
        dirs = np.array([d if d is not None else (0.0, 0.0, 0.0) for d in directions])
        dirs.setflags(write=False)
    xyz.setflags(write=False)
    _check_distinct(xyz, dirs, patterns, where, path, error)
    return Microphones(xyz, dirs, tuple(patterns), path)


def _entry(
    entry: Any, name: str, path: Path | None, error: type[PcsepError]
) -> tuple[tuple[float, ...], tuple[float, ...] | None, str]:
    """``(position, unit direction or None, pattern)`` of one entry."""
    if isinstance(entry, list):
        return _vector(entry, name, path, error), None, "omni"
    if not isinstance(entry, dict):
        raise error(f"{name} must be an object or [x, y, z], got {_kind(entry)}", path, FORMAT_HINT)
    extra = sorted(set(entry) - set(_KEYS))
    if extra:
        raise error(
            f"{name} has an unknown key {extra[0]!r}",
            path,
            f"a microphone takes {', '.join(_KEYS)}; check the spelling",
        )
    if "position" not in entry:
        raise error(f"{name} has no position", path, 'add "position": [x, y, z]')
    position = _vector(entry["position"], f"{name}.position", path, error)
    pattern = _pattern(entry.get("pattern", "omni"), f"{name}.pattern", path, error)
    direction = None
    if entry.get("direction") is not None:
        vec = np.array(_vector(entry["direction"], f"{name}.direction", path, error))
        largest = float(np.abs(vec).max())
        if largest == 0:
            raise error(
                f"{name}.direction is [0, 0, 0], which points nowhere",
                path,
                "give the way the microphone points, e.g. [0, 1, 0], or leave it out for omni",
            )
        vec /= largest  # first: the norm of [1e308, 1e308, 0] would overflow
        direction = tuple(float(v) for v in vec / np.linalg.norm(vec))
    elif pattern != "omni":
        raise error(
            f"{name} is {pattern} but has no direction",
            path,
            'add "direction": [dx, dy, dz], the way it points, or make it "omni"',
        )
    return position, direction, pattern


def _vector(value: Any, name: str, path: Path | None, error: type[PcsepError]) -> tuple[float, ...]:
    if not isinstance(value, list):
        got = _kind(value)
    elif not all(_is_number(v) for v in value):
        got = "a list holding " + next(_kind(v) for v in value if not _is_number(v))
    elif len(value) != 3:
        got = f"{len(value)} numbers"
    else:
        got = None
    if got is not None:
        raise error(
            f"{name} must be three numbers [x, y, z], got {got}",
            path,
            "write it as [x, y, z] in the cloud's frame and units",
        )
    if not all(math.isfinite(v) for v in value):
        raise error(
            f"{name} is {[float(v) for v in value]}: not finite (NaN or infinity)",
            path,
            "write the coordinates as plain numbers",
        )
    return tuple(float(v) for v in value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _pattern(value: Any, name: str, path: Path | None, error: type[PcsepError]) -> str:
    key = value.lower() if isinstance(value, str) else None
    key = None if key is None else "".join(c for c in key if c not in " -_")
    if key not in PATTERNS:
        shown = repr(value) if isinstance(value, str) else _kind(value)
        raise error(f"{name} {shown[:60]} is not a pattern", path, f"use {', '.join(PATTERNS)}")
    return key


def _check_distinct(
    xyz: np.ndarray,
    dirs: np.ndarray | None,
    patterns: list[str],
    where: str,
    path: Path | None,
    error: type[PcsepError],
) -> None:
    """Refuse two entries that are the same microphone (see the module docstring)."""
    for i in range(len(xyz)):
        for j in range(i):
            if np.linalg.norm(xyz[i] - xyz[j]) >= SAME_POINT_M or patterns[i] != patterns[j]:
                continue
            if patterns[i] != "omni" and dirs is not None and dirs[i] @ dirs[j] < _SAME_AXIS:
                continue  # a coincident pair: XY, Blumlein
            at = [round(float(v), 4) for v in xyz[i]]
            alike = "two omnis" if patterns[i] == "omni" else f"both {patterns[i]}, same direction"
            raise error(
                f"{where}[{j}] and [{i}] are one microphone: both at {at} m, {alike}",
                path,
                "each channel needs its own microphone: remove the repeated entry or fix its "
                "position; a coincident pair differs in direction or pattern",
            )


def _unit_scale(units: str | None, path: Path | None, error: type[PcsepError]) -> float:
    if units is None:
        return 1.0
    key = units.strip().lower()
    if key not in UNITS:
        raise error(f"unknown units {units!r}", path, f"use one of: {', '.join(UNITS)}")
    return UNITS[key]


def _load(file: Path) -> Any:
    """The parsed JSON of ``file``, within :data:`MAX_MICS_BYTES` and :data:`MAX_MICS_DEPTH`."""
    try:
        st = file.stat()
        if stat.S_ISDIR(st.st_mode):
            raise MicrophoneError("is a folder", file, "pass the mics.json file inside it")
        if not stat.S_ISREG(st.st_mode):
            # A FIFO or device would block or never end.
            raise MicrophoneError(
                "is not a regular file (a pipe, socket or device)", file, "save it to a file"
            )
        with file.open("rb") as fh:
            raw = fh.read(MAX_MICS_BYTES + 1)  # one past the cap: a growing file stops too
    except FileNotFoundError:
        raise MicrophoneError("no such file", file, "check the --mics path") from None
    except OSError as err:
        raise MicrophoneError(
            f"cannot read: {err.strerror or err}", file, "make the file readable"
        ) from None
    if len(raw) > MAX_MICS_BYTES:
        raise MicrophoneError(
            f"larger than {MAX_MICS_BYTES:,} bytes (a microphone file takes a few kB)",
            file,
            "pass the mics.json that lists the microphones",
        )
    try:
        return parse_config_text(raw.decode("utf-8"), max_depth=MAX_MICS_DEPTH)
    except (UnicodeDecodeError, ValueError) as err:
        raise MicrophoneError(f"not JSON: {err}", file, FORMAT_HINT) from None


def _kind(value: Any) -> str:
    """What a JSON value is, in words (``"a string"``, ``"null"``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value:g}"
    return {str: "a string", list: "a list", dict: "an object"}.get(type(value), "something else")
