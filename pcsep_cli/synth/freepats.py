"""Render performances with TiMidity++ and the freepats GUS patches.

Like :mod:`~pcsep_cli.synth.fluid`, all performances go into one MIDI file, one time slot
each, and one ``timidity`` run renders them (mono, 24 bit, reverb, chorus and delay off).

TiMidity++ always reads ``/etc/timidity/timidity.cfg`` (on Debian: FluidR3_GM) before the
``-c`` file given to it; the freepats lines read after it replace the programs that freepats
has, and :data:`PROGRAMS` keeps every other program away from it, so no note is ever played
from the default soundfont. A default config that loads a whole soundfont (``soundfont``
directive, searched before patches) would override freepats: it is refused.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pcsep_cli.errors import DatasetError
from pcsep_cli.synth.fluid import cut_slots, midi_bytes, slot_seconds
from pcsep_cli.synth.music import Performance

CONFIG = Path("/etc/timidity/freepats.cfg")
"""The freepats program table (Debian ``freepats``)."""
DEFAULT_CONFIG = Path("/etc/timidity/timidity.cfg")
SETUP_HINT = "install TiMidity++ and freepats with `make apt`"
PROGRAMS = frozenset({0, 24, 25, 40, 42, 56, 57, 65, 66, 71, 73})
"""The General MIDI programs of :data:`~pcsep_cli.synth.music.GM_PROGRAMS` that freepats has
(no contrabass, 43)."""


def check() -> None:
    """Raise :class:`DatasetError` unless TiMidity++ and freepats are there and usable."""
    if shutil.which("timidity") is None:
        raise DatasetError("the timidity program is not on PATH", hint=SETUP_HINT)
    if not CONFIG.is_file():
        raise DatasetError("freepats not found", path=CONFIG, hint=SETUP_HINT)
    if DEFAULT_CONFIG.is_file():
        text = DEFAULT_CONFIG.read_text(errors="replace")
        if re.search(r"^\s*soundfont\s", text, re.MULTILINE):
            raise DatasetError(
                "loads a whole soundfont, which TiMidity++ prefers to the freepats patches",
                path=DEFAULT_CONFIG,
                hint="let it `source` a per-program config such as fluidr3_gm.cfg instead",
            )


def plays(performance: Performance) -> bool:
    """Whether freepats has a patch for the performance's program."""
    return performance.program in PROGRAMS


def render(
    performances: Sequence[Performance], *, sample_rate: int, num_samples: int
) -> np.ndarray:
    """Render performances with TiMidity++ and freepats, each alone, as mono dry signals.

    Args:
        performances: what to play (programs in :data:`PROGRAMS`).
        sample_rate: Hz.
        num_samples: samples per performance (notes after the end are cut off).

    Returns:
        float32 ``(P, num_samples)``, one row per performance (not normalised).

    Raises:
        DatasetError: TiMidity++ or freepats is missing, a program has no patch, or
            TiMidity++ failed.
    """
    import soundfile

    if not performances:
        return np.zeros((0, num_samples), dtype=np.float32)
    check()
    for perf in performances:
        if not plays(perf):
            raise DatasetError(f"freepats has no patch for GM program {perf.program}")
    length_s = num_samples / sample_rate
    slot_s = slot_seconds(num_samples, sample_rate)
    with tempfile.TemporaryDirectory(prefix="pcsep-timidity-") as tmp:
        mid, wav = Path(tmp) / "parts.mid", Path(tmp) / "out.wav"
        mid.write_bytes(midi_bytes(performances, slot_s, length_s))
        cmd = [
            "timidity", "-c", str(CONFIG), "-s", str(sample_rate), "-Ow", "--output-mono",
            "--output-24bit", "-EFreverb=d", "-EFchorus=d", "-EFdelay=d", "-o", str(wav),
            str(mid),
        ]  # fmt: skip
        # HOME: TiMidity++ also reads ~/.timidity.cfg, which must not change the sound.
        env = {**os.environ, "HOME": tmp}
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        if proc.returncode != 0 or not wav.exists():
            raise DatasetError(
                f"timidity failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}",
                hint=SETUP_HINT,
            )
        mono, _ = soundfile.read(wav, dtype="float32", always_2d=False)
    return cut_slots(mono, len(performances), slot_s, sample_rate, num_samples)
