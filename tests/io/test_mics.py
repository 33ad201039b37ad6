"""Microphone geometry files (``mics.json``): what reads, units, and every refusal as one line
naming the file and the fix."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from pcsep_cli.errors import DatasetError, MicrophoneError
from pcsep_cli.io.mics import (
    MAX_MICS_BYTES,
    MAX_MICS_DEPTH,
    PATTERNS,
    Microphones,
    parse_microphones,
    read_mics,
)

ORTF = [
    {"position": [-0.085, -3.0, 1.6], "direction": [-0.5, 0.866, 0], "pattern": "cardioid"},
    {"position": [0.085, -3.0, 1.6], "direction": [0.5, 0.866, 0], "pattern": "cardioid"},
]


def write(path: Path, data: object) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def refused(path: Path, **kwargs: str) -> str:
    with pytest.raises(MicrophoneError) as err:
        read_mics(path, **kwargs)
    text = str(err.value)
    assert text.startswith(f"{path}: ") and "\n" not in text, text
    assert text.endswith(")"), text  # every message ends with its fix, in parentheses
    return text


def test_objects_and_plain_lists_read_in_channel_order(tmp_path: Path) -> None:
    entries = [*ORTF, [0.0, -2.0, 1.2], {"position": [1, 2, 3], "pattern": "Super-Cardioid",
                                          "direction": [0, 0, -2]}]  # fmt: skip
    mics = read_mics(write(tmp_path / "mics.json", {"microphones": entries}))

    assert isinstance(mics, Microphones) and len(mics) == 4
    assert mics.source == tmp_path / "mics.json"
    assert mics.positions.dtype == np.float64
    np.testing.assert_array_equal(mics.positions[[0, 2, 3]], [ORTF[0]["position"],
                                                              [0, -2, 1.2], [1, 2, 3]])  # fmt: skip
    assert mics.patterns == ("cardioid", "cardioid", "omni", "supercardioid")
    np.testing.assert_allclose(mics.coefficients, [0.5, 0.5, 1.0, 0.37])
    assert mics.directions is not None
    np.testing.assert_allclose(np.linalg.norm(mics.directions[[0, 1, 3]], axis=1), 1.0)
    np.testing.assert_array_equal(mics.directions[2], 0.0)  # none given: omni
    np.testing.assert_allclose(mics.directions[3], [0, 0, -1])
    with pytest.raises(ValueError):
        mics.positions[0, 0] = 5.0  # frozen, arrays included
    record = mics.to_json()
    assert record["directions"][2] is None and record["patterns"][3] == "supercardioid"
    assert record["positions"][2] == [0.0, -2.0, 1.2]


def test_plain_lists_alone_have_no_directions(tmp_path: Path) -> None:
    mics = read_mics(write(tmp_path / "m.json", {"microphones": [[0, 0, 1], [0.5, 0, 1]]}))
    assert mics.directions is None and mics.patterns == ("omni", "omni")
    assert mics.to_json()["directions"] == [None, None]


def test_the_six_patterns_and_their_coefficients() -> None:
    assert PATTERNS == {"omni": 1.0, "subcardioid": 0.7, "cardioid": 0.5,
                        "supercardioid": 0.37, "hypercardioid": 0.25, "figure8": 0.0}  # fmt: skip
    for i, name in enumerate([*PATTERNS, "Figure-8", "HYPER_CARDIOID", "sub cardioid"]):
        entry = {"position": [i, 0, 0], "direction": [0, 1, 0], "pattern": name}
        assert parse_microphones([entry]).patterns[0] in PATTERNS


@pytest.mark.parametrize(("units", "scale"), [(None, 1.0), ("m", 1.0), ("mm", 0.001),
                                              ("CM", 0.01), ("ft", 0.3048)])  # fmt: skip
def test_units_scale_positions_like_the_cloud(tmp_path: Path, units: str | None, scale: float):
    file = write(tmp_path / "m.json", {"microphones": [
        {"position": [-85, -3000, 1600], "direction": [0, 1000, 0], "pattern": "cardioid"},
        [85, -3000, 1600]]})  # fmt: skip
    mics = read_mics(file, units=units)
    np.testing.assert_allclose(mics.positions, np.array([[-85, -3000, 1600],
                                                         [85, -3000, 1600]]) * scale)  # fmt: skip
    np.testing.assert_allclose(mics.directions[0], [0, 1, 0])  # directions are not scaled


def test_coincident_pairs_are_not_duplicates() -> None:
    xy = [{"position": [0, 0, 1], "direction": [1, 1, 0], "pattern": "cardioid"},
          {"position": [0, 0, 1], "direction": [-1, 1, 0], "pattern": "cardioid"}]  # fmt: skip
    ms = [{"position": [0, 0, 1], "direction": [0, 1, 0], "pattern": "cardioid"},
          {"position": [0, 0, 1], "direction": [1, 0, 0], "pattern": "figure8"}]  # fmt: skip
    assert len(parse_microphones(xy)) == 2 and len(parse_microphones(ms)) == 2


def one(**entry: object) -> dict:
    """A file of one microphone."""
    return {"microphones": [entry]}


UP = [0, 0, 1]
BAD = {
    "not JSON": ('{"microphones": [[0, 0, 0],]', "not JSON"),
    "not UTF-8": (b'{"microphones": [[0, 0, 0]], "x": "\xff"}', "not JSON"),
    "empty file": ("", "not JSON"),
    "a list": ([[0, 0, 0]], 'needs a "microphones" list, got a list'),
    "no microphones": ({"mics": [[0, 0, 0]]}, 'needs a "microphones" list, got an object'),
    "unknown key beside": ({"microphones": [[0, 0, 0]], "units": "mm"}, "unknown key 'units'"),
    "microphones not a list": ({"microphones": {"position": [0, 0, 0]}}, "must be a list"),
    "no microphone": ({"microphones": []}, "lists no microphone; pcsep takes 1 to 8"),
    "nine": ({"microphones": [[i, 0, 0] for i in range(9)]}, "lists 9 microphones"),
    "entry a string": ({"microphones": ["left"]}, "microphones[0] must be an object or [x, y, z]"),
    "two numbers": ({"microphones": [[0, 0]]}, "microphones[0] must be three numbers"),
    "four numbers": (one(position=[0, 0, 0, 1]), ".position must be three numbers"),
    "a string inside": ({"microphones": [[0, "1", 0]]}, "got a list holding a string"),
    "a boolean inside": ({"microphones": [[0, True, 0]]}, "got a list holding a boolean"),
    "no position": (one(pattern="omni"), "microphones[0] has no position"),
    "misspelt key": (one(position=UP, patern="cardioid"), "unknown key 'patern'"),
    "NaN": ('{"microphones": [[0, NaN, 1]]}', "microphones[0] is [0.0, nan, 1.0]: not finite"),
    "Infinity": ('{"microphones": [[Infinity, 0, 1]]}', "not finite"),
    "overflow": ('{"microphones": [[1e999, 0, 1]]}', "not finite"),
    "NaN direction": (
        '{"microphones": [{"position": [0, 0, 1], "direction": [0, NaN, 0]}]}',
        ".direction is [0.0, nan, 0.0]: not finite",
    ),
    "zero direction": (
        one(position=UP, direction=[0, 0, 0], pattern="cardioid"),
        "microphones[0].direction is [0, 0, 0], which points nowhere",
    ),
    "direction of two": (one(position=UP, direction=[0, 1]), ".direction must be three numbers"),
    "unknown pattern": (
        one(position=UP, direction=[0, 1, 0], pattern="shotgun"),
        "microphones[0].pattern 'shotgun' is not a pattern (use omni, ",
    ),
    "pattern a number": (one(position=UP, pattern=8), "pattern the number 8 is not a pattern"),
    "cardioid without direction": (
        one(position=UP, pattern="cardioid"),
        "microphones[0] is cardioid but has no direction",
    ),
    "duplicate omnis": (
        {"microphones": [[0, 0, 1], [1, 0, 1], [0, 0, 1.0004]]},
        "microphones[0] and [2] are one microphone: both at [0.0, 0.0, 1.0004] m",
    ),
    "duplicate cardioids": (
        {"microphones": [ORTF[0], ORTF[1], ORTF[0]]},
        "both cardioid, same direction",
    ),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_files_are_one_line_naming_file_and_fix(tmp_path: Path, case: str) -> None:
    content, expected = BAD[case]
    file = tmp_path / "mics.json"
    if isinstance(content, bytes):
        file.write_bytes(content)
    else:
        write(file, content)
    assert expected in refused(file)


def test_size_and_nesting_caps(tmp_path: Path) -> None:
    big = write(tmp_path / "big.json", '{"microphones": [[0, 0, 1]]}' + " " * MAX_MICS_BYTES)
    assert f"larger than {MAX_MICS_BYTES:,} bytes" in refused(big)
    deep = write(tmp_path / "deep.json", '{"microphones": ' + "[" * 40_000 + "]" * 40_000 + "}")
    assert f"nest more than {MAX_MICS_DEPTH} levels deep" in refused(deep)
    # The real thing is far inside both.
    text = json.dumps({"microphones": [ORTF[0]] * 8}, indent=2)
    assert len(text) < MAX_MICS_BYTES / 20


def test_missing_folder_and_pipe(tmp_path: Path) -> None:
    assert "no such file (check the --mics path)" in refused(tmp_path / "nope.json")
    assert "is a folder" in refused(tmp_path)
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    assert "not a regular file" in refused(fifo)  # refused without blocking on a read


def test_unknown_units_are_refused(tmp_path: Path) -> None:
    file = write(tmp_path / "m.json", {"microphones": [[0, 0, 1]]})
    assert "unknown units 'inch'" in refused(file, units="inch")


def test_meta_json_lists_take_another_error_class(tmp_path: Path) -> None:
    meta = tmp_path / "meta.json"
    with pytest.raises(DatasetError, match=r"meta.json: meta.json microphones\[1\] is cardioid"):
        entries = [[0, 0, 1], {"position": [1, 0, 1], "pattern": "cardioid"}]
        parse_microphones(entries, source=meta, where="meta.json microphones", error=DatasetError)
