"""Render performances with physical models of the Synthesis ToolKit (STK).

Debian's ``stk`` package ships ``stk-demo``, STK's own demo program: it plays one instrument
class (``Bowed``, ``Clarinet``, ``Brass`` …) from a SKINI score file and writes a MAT file
(float64, so nothing is rounded to 16 bits). No Python binding of STK exists on PyPI (the
``stk`` and ``pystk`` packages there are unrelated), and compiling a C++ program against
``libstk-dev`` at run time would need a compiler on every machine; the demo program needs
neither and starts in ~10 ms, so each performance is one ``stk-demo`` run.

STK's noise generators (breath, bow noise) seed the C library's ``rand`` with the clock, so
two runs differ; ``faketime`` (Debian ``faketime``) pins the clock and the output becomes a
pure function of the score. The demo's reverb is set to dry (the room adds its own).

STK has no piano model: :data:`INSTRUMENTS` lists what it plays.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pcsep_cli.errors import DatasetError
from pcsep_cli.synth.music import Performance

SETUP_HINT = "install the STK demo program and faketime with `make apt`"

INSTRUMENTS: dict[str, tuple[str, int]] = {
    "violin": ("Bowed", 2),
    "cello": ("Bowed", 2),
    "double_bass": ("Bowed", 1),
    "guitar": ("Plucked", 6),
    "saxophone": ("Saxofony", 1),
    "flute": ("Flute", 1),
    "clarinet": ("Clarinet", 1),
    "trumpet": ("Brass", 1),
    "trombone": ("Brass", 1),
}
"""Class -> (STK instrument, voices). Winds and brass are monophonic models."""

_STEEL_GUITAR = ("StifKarp", 6)  # GM 25: a stiff string, brighter than Plucked
_VOLUME = 40  # of 128: keeps the louder models (Saxofony, Clarinet) clear of ±1 clipping
# Per-instrument controls (SKINI control numbers of each STK class) and their ranges; a value
# is drawn per performance from its notes, so one part always sounds the same.
_CONTROLS: dict[str, tuple[tuple[int, float, float], ...]] = {
    "Bowed": ((2, 40, 90), (4, 20, 70), (11, 40, 70), (1, 5, 25)),  # pressure, position, vib.
    "Clarinet": ((2, 50, 80), (4, 5, 20), (11, 40, 70), (1, 0, 15)),  # reed, noise, vibrato
    "Saxofony": ((2, 40, 80), (4, 5, 20), (11, 40, 70), (1, 0, 20)),
    "Flute": ((2, 50, 80), (4, 10, 30), (11, 40, 70), (1, 0, 20)),  # jet, noise, vibrato
    "Brass": ((11, 40, 70), (1, 0, 15)),  # vibrato (lips and slide follow each note)
    "Plucked": (),
    "StifKarp": ((2, 40, 90), (4, 60, 110)),  # pickup position, string sustain
}


def check() -> None:
    """Raise :class:`DatasetError` unless ``stk-demo`` and ``faketime`` are on PATH."""
    for program in ("stk-demo", "faketime"):
        if shutil.which(program) is None:
            raise DatasetError(f"the {program} program is not on PATH", hint=SETUP_HINT)


def plays(performance: Performance) -> bool:
    """Whether STK has a model for the performance's instrument."""
    return performance.instrument in INSTRUMENTS


def _score(perf: Performance, instrument: str, sample_rate: int, num_samples: int) -> str:
    """SKINI text: delta times that land each event on the sample it was planned for."""
    rng = np.random.default_rng(zlib.crc32(perf.notes.tobytes()))
    events: list[tuple[int, int, str]] = [(0, 0, "ControlChange\t{t}\t1\t44\t0")]  # dry
    events.append((0, 0, f"ControlChange\t{{t}}\t1\t7\t{_VOLUME}"))
    for number, low, high in _CONTROLS[instrument]:
        events.append((0, 1, f"ControlChange\t{{t}}\t1\t{number}\t{rng.uniform(low, high):.1f}"))
    for onset, duration, pitch, velocity in perf.notes:
        on = int(round(onset * sample_rate))
        off = int(round(min(onset + duration, num_samples / sample_rate) * sample_rate))
        if on >= num_samples:
            continue
        events.append((on, 3, f"NoteOn\t{{t}}\t1\t{int(pitch)}\t{int(velocity)}"))
        events.append((max(off, on + 1), 2, f"NoteOff\t{{t}}\t1\t{int(pitch)}\t64"))
    events.append((num_samples, 9, f"ControlChange\t{{t}}\t1\t7\t{_VOLUME}"))  # runs to the end
    lines, last = [], 0
    for tick, _, text in sorted(events, key=lambda e: (e[0], e[1])):
        # stk-demo waits int(dt · rate) samples: a quarter sample more keeps the truncation
        # from dropping one.
        lines.append(text.format(t=f"{(tick - last + 0.25) / sample_rate:.9f}"))
        last = tick
    return "\n".join(lines) + "\n"


def _run(perf: Performance, sample_rate: int, num_samples: int, tmp: Path) -> np.ndarray:
    from scipy.io import loadmat

    instrument, voices = INSTRUMENTS[perf.instrument]
    if perf.program == 25:
        instrument, voices = _STEEL_GUITAR
    score, out = tmp / "part.ski", tmp / "part.mat"
    score.write_text(_score(perf, instrument, sample_rate, num_samples))
    out.unlink(missing_ok=True)
    cmd = [
        "faketime", "2000-01-01 00:00:00", "stk-demo", instrument, "-n", str(voices),
        "-s", str(sample_rate), "-om", str(out), "-if", str(score),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=tmp)
    if proc.returncode != 0 or not out.is_file():
        raise DatasetError(
            f"stk-demo failed (exit {proc.returncode}): {proc.stdout.strip()[-300:]}",
            hint=SETUP_HINT,
        )
    data = loadmat(out)
    signal = next(v for k, v in data.items() if not k.startswith("__") and k != "fs")
    signal = np.asarray(signal, dtype=np.float32).ravel()[:num_samples]
    return np.pad(signal, (0, num_samples - len(signal)))


def render(
    performances: Sequence[Performance], *, sample_rate: int, num_samples: int
) -> np.ndarray:
    """Render performances with STK physical models, each alone, as mono dry signals.

    Args:
        performances: what to play (instruments in :data:`INSTRUMENTS`).
        sample_rate: Hz.
        num_samples: samples per performance (notes after the end are cut off).

    Returns:
        float32 ``(P, num_samples)``, one row per performance (not normalised).

    Raises:
        DatasetError: a program is missing, an instrument has no STK model, or stk-demo failed.
    """
    out = np.zeros((len(performances), num_samples), dtype=np.float32)
    if not performances:
        return out
    check()
    for perf in performances:
        if not plays(perf):
            raise DatasetError(f"STK has no model for {perf.instrument!r}")
    with tempfile.TemporaryDirectory(prefix="pcsep-stk-") as tmp:
        for k, perf in enumerate(performances):
            out[k] = _run(perf, sample_rate, num_samples, Path(tmp))
    return out
