"""Render performances with FluidSynth and the FluidR3_GM soundfont.

All performances of a scene (or a batch of solo clips) go into one Standard MIDI File, one
time slot and MIDI channel each; the ``fluidsynth`` program renders it (reverb and chorus off:
the room adds its own) and the slots are cut apart. One FluidSynth start (~0.1 s, the
soundfont's samples are loaded on demand) thus serves many clips; rendering itself runs at
~500x real time for one part at 22.05 kHz.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pcsep_cli.errors import DatasetError
from pcsep_cli.synth.music import Performance

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
"""Default soundfont (Debian ``fluid-soundfont-gm``); ``PCSEP_SOUNDFONT`` overrides it."""

SETUP_HINT = "install FluidSynth and the soundfont with `make setup-train`"
_TICKS_PER_SECOND = 1920  # 960 ticks per quarter at the MIDI default of 120 bpm
_SLOT_GAP_S = 1.0


def soundfont_path() -> Path:
    """The soundfont to render with (``PCSEP_SOUNDFONT`` or :data:`SOUNDFONT`).

    Raises:
        DatasetError: the file or the ``fluidsynth`` program is missing.
    """
    return _checked(Path(os.environ.get("PCSEP_SOUNDFONT") or SOUNDFONT))


def _checked(soundfont: Path) -> Path:
    if not soundfont.is_file():
        raise DatasetError("soundfont not found", path=soundfont, hint=SETUP_HINT)
    if shutil.which("fluidsynth") is None:
        raise DatasetError("the fluidsynth program is not on PATH", hint=SETUP_HINT)
    return soundfont


def slot_seconds(num_samples: int, sample_rate: int) -> int:
    """Seconds each performance gets in a shared render: its length plus a silent gap."""
    return math.ceil(num_samples / sample_rate + _SLOT_GAP_S)


def cut_slots(
    mono: np.ndarray, count: int, slot_s: float, sample_rate: int, num_samples: int
) -> np.ndarray:
    """The ``count`` performances of a shared mono render, each ``num_samples`` long from the
    start of its slot (a render that ended early is padded with silence); float32
    ``(count, num_samples)``."""
    slot_n = int(round(slot_s * sample_rate))
    need = (count - 1) * slot_n + num_samples
    if len(mono) < need:
        mono = np.concatenate([mono, np.zeros(need - len(mono), np.float32)])
    return np.stack([mono[k * slot_n : k * slot_n + num_samples] for k in range(count)])


def midi_bytes(performances: Sequence[Performance], slot_s: float, length_s: float) -> bytes:
    from music21 import midi

    mf = midi.MidiFile()
    mf.ticksPerQuarterNote = _TICKS_PER_SECOND // 2  # at 120 bpm, the default tempo
    for k, perf in enumerate(performances):
        channel = 1 + (k % 15 if k % 15 < 9 else k % 15 + 1)  # 1-based, skipping drums (10)
        slot = k * slot_s
        events: list[tuple[float, int, int, object]] = [
            (slot, 0, midi.ChannelVoiceMessages.PROGRAM_CHANGE, perf.program),
            (slot, 1, midi.ChannelVoiceMessages.CONTROLLER_CHANGE, (121, 0)),  # reset all
            (slot, 2, midi.ChannelVoiceMessages.CONTROLLER_CHANGE, (7, 100)),
            # All sound off where the clip ends, so no tail runs into the next slot.
            (slot + length_s, 9, midi.ChannelVoiceMessages.CONTROLLER_CHANGE, (120, 0)),
        ]
        for onset, duration, pitch, velocity in perf.notes:
            if onset >= length_s:  # would start after the all-sound-off and never stop
                continue
            end = min(onset + duration, length_s)
            events.append((slot + onset, 4, midi.ChannelVoiceMessages.NOTE_ON, (pitch, velocity)))
            events.append((slot + end, 3, midi.ChannelVoiceMessages.NOTE_OFF, (pitch, 0)))
        track = midi.MidiTrack(k + 1)
        last_tick = 0
        for time_s, _, kind, data in sorted(events, key=lambda e: (e[0], e[1])):
            tick = int(round(time_s * _TICKS_PER_SECOND))
            track.events.append(midi.DeltaTime(track, time=tick - last_tick, channel=channel))
            last_tick = tick
            event = midi.MidiEvent(track, type=kind, channel=channel)
            if kind == midi.ChannelVoiceMessages.PROGRAM_CHANGE:
                event.data = int(data)  # type: ignore[arg-type]
            else:
                event.parameter1, event.parameter2 = (int(v) for v in data)  # type: ignore[union-attr]
            track.events.append(event)
        track.events.append(midi.DeltaTime(track, time=0))
        end = midi.MidiEvent(track, type=midi.MetaEvents.END_OF_TRACK)
        end.data = b""
        track.events.append(end)
        mf.tracks.append(track)
    return mf.writestr()


def render(
    performances: Sequence[Performance],
    *,
    sample_rate: int,
    num_samples: int,
    soundfont: Path | None = None,
) -> np.ndarray:
    """Render performances with FluidSynth, each alone, as mono dry signals.

    Args:
        performances: what to play; note times in seconds from the start of the rendering.
        sample_rate: Hz.
        num_samples: samples per performance (notes after the end are cut off).
        soundfont: an SF2 or SF3 file; ``None``: :func:`soundfont_path`.

    Returns:
        float32 ``(P, num_samples)``, one row per performance, FluidSynth's gain (not
        normalised).

    Raises:
        DatasetError: FluidSynth or the soundfont is missing, or FluidSynth failed.
    """
    if not performances:
        return np.zeros((0, num_samples), dtype=np.float32)
    sf2 = soundfont_path() if soundfont is None else _checked(soundfont)
    length_s = num_samples / sample_rate
    slot_s = slot_seconds(num_samples, sample_rate)
    with tempfile.TemporaryDirectory(prefix="pcsep-fluid-") as tmp:
        mid, raw = Path(tmp) / "parts.mid", Path(tmp) / "out.raw"
        mid.write_bytes(midi_bytes(performances, slot_s, length_s))
        cmd = [
            "fluidsynth", "-n", "-i", "-q", "-R", "0", "-C", "0", "-g", "0.3",
            "-r", str(sample_rate), "-T", "raw", "-O", "float", "-E", "little",
            "-o", "synth.dynamic-sample-loading=1", "-o", "synth.polyphony=512",
            "-F", str(raw), str(sf2), str(mid),
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not raw.exists():
            raise DatasetError(
                f"fluidsynth failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}",
                path=sf2,
                hint=SETUP_HINT,
            )
        stereo = np.fromfile(raw, dtype="<f4").reshape(-1, 2)
    mono = stereo.mean(axis=1, dtype=np.float32)
    return cut_slots(mono, len(performances), slot_s, sample_rate, num_samples)
