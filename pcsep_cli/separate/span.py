"""The part of a recording to separate: ``--start`` and ``--duration``.

Times are seconds (``90``, ``90.5``), ``mm:ss`` (``1:30.5``) or ``hh:mm:ss`` (``1:02:03.25``)
(:func:`parse_time`); :func:`part_of` turns them into samples of one recording. A part is read
by seeking to its start (:func:`~pcsep_cli.io.audio.iter_blocks`), never by decoding what lies
before it into memory.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from pcsep_cli.errors import AudioError
from pcsep_cli.io.audio import AudioInfo

__all__ = ["format_seconds", "parse_time", "part_of"]

_FIELD = re.compile(r"\d+")
_SECONDS = re.compile(r"\d+(?:\.\d*)?|\.\d+")
_LONGEST = 40  # characters: no time is written longer (and int() refuses 4,300 digits)


def parse_time(text: str, option: str = "time") -> float:
    """Seconds from ``90``, ``90.5``, ``1:30`` or ``1:30.5`` (mm:ss), or ``1:02:03.25``
    (hh:mm:ss). Only the seconds take decimals; after a colon, minutes and seconds are below
    60; the first field may be as large as it likes (``90:00`` is an hour and a half).

    Args:
        text: what was given.
        option: the option's name, for the message (``--start``).

    Raises:
        ValueError: a negative time, or text of another form (the message names ``option``
            and the forms it takes).
    """
    given = text.strip()
    shown = repr(text) if len(text) <= _LONGEST else f"{text[:_LONGEST]!r}... ({len(text)} chars)"
    if given.startswith("-"):
        raise ValueError(f"{option} must not be negative, got {shown}")
    *fields, seconds = given.split(":")
    if (
        len(given) > _LONGEST
        or len(fields) > 2
        or not _SECONDS.fullmatch(seconds)
        or not all(_FIELD.fullmatch(f) for f in fields)
    ):
        raise ValueError(
            f"{option} {shown} is not a time: give seconds (90.5), mm:ss (1:30.5) "
            "or hh:mm:ss (1:01:30)"
        )
    value = float(seconds)
    if fields and value >= 60:
        raise ValueError(f"{option} {shown}: seconds after a colon must be below 60")
    if len(fields) == 2 and int(fields[1]) >= 60:
        raise ValueError(f"{option} {shown}: minutes in hh:mm:ss must be below 60")
    hours, minutes = ([0, 0] + [int(f) for f in fields])[-2:]
    value += 60 * minutes + 3600 * hours
    if not math.isfinite(value):
        raise ValueError(f"{option} {shown} is too large")
    return value


def part_of(
    audio: Path, info: AudioInfo, start: float, duration: float | None
) -> tuple[int, int | None]:
    """``(first sample, samples)`` of the part of ``audio`` from ``start`` seconds, lasting
    ``duration`` (None: to the end). A duration past the end stops at the end; a part is at
    least one sample long.

    Raises:
        AudioError: ``start`` lies at or past the end of this recording (the message gives
            its length).
    """
    first = round(start * info.sample_rate)
    if first >= info.frames:
        raise AudioError(
            f"--start {format_seconds(start)} is past the end of the recording, which lasts "
            f"{format_seconds(info.duration)}",
            audio,
            "choose an earlier --start",
        )
    if duration is None:
        return first, None
    return first, max(1, round(duration * info.sample_rate))


def format_seconds(value: float) -> str:
    """``12.5 s``; from a minute on with the clock beside it: ``95 s (1:35.000)``."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    if value < 60:
        return f"{text} s"
    minutes, secs = divmod(value, 60)
    hours, minutes = divmod(int(minutes), 60)
    clock = f"{hours}:{minutes:02d}:{secs:06.3f}" if hours else f"{minutes}:{secs:06.3f}"
    return f"{text} s ({clock})"
