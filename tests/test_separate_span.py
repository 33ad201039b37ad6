"""``--start`` / ``--duration``: the times they take and the part of a recording they give."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pcsep_cli.errors import AudioError
from pcsep_cli.io.audio import audio_info
from pcsep_cli.separate.span import format_seconds, parse_time, part_of


@pytest.mark.parametrize(
    "text,seconds",
    [
        ("90", 90.0),
        ("90.25", 90.25),
        (".5", 0.5),
        ("0", 0.0),
        ("1:30", 90.0),
        ("01:30.5", 90.5),
        ("90:00", 5400.0),  # the first field is not bounded
        ("1:02:03.25", 3723.25),
        ("0:00:00.5", 0.5),
        (" 2:05 ", 125.0),
    ],
)
def test_times_in_seconds_mm_ss_and_hh_mm_ss(text: str, seconds: float) -> None:
    assert parse_time(text, "--start") == pytest.approx(seconds, abs=1e-9)


@pytest.mark.parametrize(
    "text,match",
    [
        ("-5", "--start must not be negative"),
        ("-0:30", "must not be negative"),
        ("1:60", "seconds after a colon must be below 60"),
        ("1:60:00", "minutes in hh:mm:ss must be below 60"),
        ("1:2:3:4", "is not a time"),
        ("1.5:30", "is not a time"),
        ("abc", "is not a time"),
        ("", "is not a time"),
        ("1:", "is not a time"),
        ("inf", "is not a time"),
        ("nan", "is not a time"),
        ("1e3", "is not a time"),
        ("9" * 5000, r"is not a time"),  # refused before int() is asked for 5,000 digits
    ],
)
def test_other_text_is_refused_naming_the_option(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match) as err:
        parse_time(text, "--start")
    assert str(err.value).startswith("--start") and len(str(err.value)) < 200


def test_the_part_of_a_recording(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    sf.write(path, np.zeros((8000 * 3, 1), np.float32), 8000)
    info = audio_info(path)
    assert part_of(path, info, 0.0, None) == (0, None)
    assert part_of(path, info, 1.25, 0.5) == (10000, 4000)
    assert part_of(path, info, 2.5, 60.0) == (20000, 480000)  # the job stops it at the end
    assert part_of(path, info, 0.0, 1e-9) == (0, 1)  # never empty
    with pytest.raises(AudioError, match=r"a\.wav: --start 3 s is past the end .* lasts 3 s"):
        part_of(path, info, 3.0, None)
    assert format_seconds(3723.25) == "3723.25 s (1:02:03.250)"
