"""Performances of real music: corpus parts given to instruments and played with variation.

:func:`plan_ensemble` and :func:`plan_solo` turn the parts of a :class:`~.corpus.Piece` into
:class:`Performance` objects, ready for :func:`pcsep_cli.synth.fluid.render`: parts go to
instruments by register, each is moved by whole octaves into the playing range of its
instrument, and a random tempo (with slow rubato), velocity curve, articulation and timing
jitter make each rendering different. An ensemble shares one tempo curve and one clip window,
chosen where every part plays most of the time.

Everything is a function of the ``numpy.random.Generator`` passed in: same generator state,
same notes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pcsep_cli.synth.corpus import Piece

GM_PROGRAMS: dict[str, tuple[int, ...]] = {
    "violin": (40,),
    "cello": (42,),
    "double_bass": (43,),
    "guitar": (24, 25),
    "saxophone": (65, 66),
    "flute": (73,),
    "clarinet": (71,),
    "trumpet": (56,),
    "trombone": (57,),
    "piano": (0,),
}
"""General MIDI programs (0-based) per instrument class; one is drawn per performance."""

PROGRAM_RANGES: dict[int, tuple[int, int, int]] = {
    40: (55, 96, 74),  # violin: G3 up; (low, high, centre of the comfortable register)
    42: (36, 76, 52),  # cello: C2 to E5
    43: (28, 60, 40),  # double bass (sounding): E1 to C4
    24: (40, 84, 60),  # nylon guitar: E2 to C6
    25: (40, 84, 60),  # steel guitar
    65: (49, 81, 66),  # alto saxophone (sounding): Db3 to A5
    66: (44, 76, 58),  # tenor saxophone (sounding): Ab2 to E5
    73: (60, 96, 79),  # flute: C4 to C7
    71: (50, 91, 67),  # clarinet (sounding): D3 to G6
    56: (54, 82, 70),  # trumpet: F#3 to Bb5
    57: (40, 72, 53),  # tenor trombone: E2 to C5
    0: (21, 108, 62),  # piano
}
"""Playing range of each program in MIDI pitch: (lowest, highest, centre)."""

_MONO_TOP = frozenset({"flute", "clarinet", "saxophone", "trumpet"})
_MONO_BOTTOM = frozenset({"trombone", "double_bass"})


@dataclass(frozen=True, eq=False)
class Performance:
    """One part as one instrument plays it, for a clip.

    Attributes:
        instrument: class name (``"violin"``).
        program: General MIDI program (0-based).
        piece_id: the piece's id.
        part: index of the part in ``Piece.parts``.
        part_name: the part's name in the score.
        transpose: semitones added to the written pitches (a multiple of 12).
        notes: float64 ``[M, 4]``: onset and duration in seconds from the start of the
            rendering, MIDI pitch, MIDI velocity.
        start_s: where the rendering starts in the performance of the whole piece (seconds).
        bpm: mean tempo in quarter notes per minute.
        articulation: ``"legato"``, ``"normal"`` or ``"staccato"``.
    """

    instrument: str
    program: int
    piece_id: str
    part: int
    part_name: str
    transpose: int
    notes: np.ndarray
    start_s: float
    bpm: float
    articulation: str


@dataclass(frozen=True)
class _Tempo:
    """Seconds of quarter position q: 60/bpm · (q + a·P/2π · (sin(2πq/P + φ) − sin φ))."""

    bpm: float
    rubato: float
    period_q: float
    phase: float

    def seconds(self, q: np.ndarray | float) -> np.ndarray:
        w = 2 * math.pi / self.period_q
        q = np.asarray(q, dtype=np.float64)
        wobble = self.rubato / w * (np.sin(w * q + self.phase) - math.sin(self.phase))
        return 60.0 / self.bpm * (q + wobble)


def _draw_tempo(rng: np.random.Generator, piece: Piece, fill_s: float) -> _Tempo:
    if piece.bpm is not None:
        base = piece.bpm
    else:
        # Unmarked scores (chorales, masses) are written in quarters or halves: pick the
        # tempo that makes their typical note last 0.35 to 0.8 s.
        durations = np.concatenate([p.notes[:, 1] for p in piece.parts])
        base = 60.0 * float(np.median(durations)) / rng.uniform(0.35, 0.8)
    # A short piece is taken slower rather than leaving the end of the clip silent.
    slowest = 60.0 * piece.quarters / fill_s if piece.quarters > 0 else 320.0
    bpm = float(np.clip(min(base * rng.uniform(0.85, 1.15), slowest), 40.0, 320.0))
    return _Tempo(bpm, rng.uniform(0.0, 0.08), rng.uniform(8.0, 32.0), rng.uniform(0, 2 * math.pi))


def _octave_shift(pitches: np.ndarray, program: int) -> int:
    low, high, centre = PROGRAM_RANGES[program]
    median = float(np.median(pitches))
    best, best_score = 0, -math.inf
    for k in range(-5, 6):
        shifted = pitches + 12 * k
        score = np.mean((shifted >= low) & (shifted <= high)) - abs(median + 12 * k - centre) / 240
        if score > best_score:
            best, best_score = 12 * k, score
    return best


def _fold_into(pitches: np.ndarray, low: int, high: int) -> np.ndarray:
    pitches = pitches.copy()
    while (below := pitches < low).any():
        pitches[below] += 12
    while (above := pitches > high).any():
        pitches[above] -= 12
    return np.maximum(pitches, low)  # a range narrower than an octave cannot hold every note


def _monophonic(notes: np.ndarray, top: bool) -> np.ndarray:
    """One note per onset (highest or lowest), each cut where the next one starts."""
    order = np.lexsort((-notes[:, 2] if top else notes[:, 2], notes[:, 0]))
    notes = notes[order]
    keep = np.ones(len(notes), dtype=bool)
    keep[1:] = notes[1:, 0] > notes[:-1, 0] + 1e-9
    notes = notes[keep].copy()
    ends = np.minimum(notes[:-1, 0] + notes[:-1, 1], notes[1:, 0])
    notes[:-1, 1] = ends - notes[:-1, 0]
    return notes


def _perform(
    rng: np.random.Generator,
    piece: Piece,
    part_index: int,
    instrument: str,
    clock: _Tempo,
    start_s: float,
    length_s: float,
) -> Performance:
    """Notes of one part in ``[start_s, start_s + length_s)``, as the instrument plays them."""
    part = piece.parts[part_index]
    notes = part.notes
    if instrument in _MONO_TOP or instrument in _MONO_BOTTOM:
        notes = _monophonic(notes, top=instrument in _MONO_TOP)
    program = int(rng.choice(GM_PROGRAMS[instrument]))
    low, high, _ = PROGRAM_RANGES[program]
    shift = _octave_shift(notes[:, 2], program)
    pitch = _fold_into(notes[:, 2] + shift, low, high)

    onset = clock.seconds(notes[:, 0])
    written = clock.seconds(notes[:, 0] + notes[:, 1]) - onset
    articulation = str(rng.choice(["legato", "normal", "staccato"], p=[0.4, 0.45, 0.15]))
    gate_low, gate_high = {"legato": (0.95, 1.0), "normal": (0.78, 0.92), "staccato": (0.35, 0.55)}[
        articulation
    ]
    gate = rng.uniform(gate_low, gate_high) + rng.normal(0.0, 0.03, len(notes))
    duration = np.maximum(written * np.clip(gate, 0.2, 1.0), 0.04)
    onset = np.maximum(onset + rng.normal(0.0, rng.uniform(0.0, 0.015), len(notes)), 0.0)

    # Dynamics: a level per player, a slow swell over the piece, a little per note.
    period, phase = rng.uniform(4.0, 14.0), rng.uniform(0, 2 * math.pi)
    velocity = (
        rng.uniform(55, 105)
        + rng.uniform(0, 20) * np.sin(2 * math.pi * onset / period + phase)
        + rng.normal(0.0, 5.0, len(notes))
    )
    velocity = np.clip(np.round(velocity), 15, 127)

    played = np.stack([onset - start_s, duration, pitch, velocity], axis=1)
    played = played[(played[:, 0] >= 0.0) & (played[:, 0] < length_s)]
    played = played[np.argsort(played[:, 0], kind="stable")]
    played = _untangle(played, mono=instrument in _MONO_TOP or instrument in _MONO_BOTTOM)
    return Performance(
        instrument=instrument,
        program=program,
        piece_id=piece.id,
        part=part_index,
        part_name=part.name,
        transpose=int(shift),
        notes=played,
        start_s=float(start_s),
        bpm=clock.bpm,
        articulation=articulation,
    )


def _untangle(notes: np.ndarray, mono: bool) -> np.ndarray:
    """End each note before the next onset of the same pitch (MIDI cannot overlap them), or of
    any pitch for a monophonic instrument (timing jitter may have moved onsets)."""
    notes = notes.copy()
    groups = (
        [np.arange(len(notes))]
        if mono
        else [np.flatnonzero(notes[:, 2] == pitch) for pitch in np.unique(notes[:, 2])]
    )
    for idx in groups:
        ends = np.minimum(notes[idx[:-1], 0] + notes[idx[:-1], 1], notes[idx[1:], 0] - 0.002)
        notes[idx[:-1], 1] = np.maximum(ends - notes[idx[:-1], 0], 0.01)
    return notes


def _activity(notes_s: np.ndarray, t0: float, t1: float, grid: int = 64) -> float:
    """Fraction of ``[t0, t1)`` during which at least one note sounds."""
    t = np.linspace(t0, t1, grid, endpoint=False)
    on = (notes_s[:, :1] <= t) & (t < notes_s[:, :1] + notes_s[:, 1:2])
    return float(on.any(axis=0).mean())


def _choose_window(
    rng: np.random.Generator,
    piece: Piece,
    parts: Sequence[int],
    clock: _Tempo,
    duration_s: float,
    tries: int = 24,
) -> float:
    """A clip start (seconds) where every chosen part plays most of the time."""
    total = float(clock.seconds(piece.quarters))
    timed = {
        i: np.stack(
            [
                clock.seconds(piece.parts[i].notes[:, 0]),
                clock.seconds(piece.parts[i].notes[:, 0] + piece.parts[i].notes[:, 1])
                - clock.seconds(piece.parts[i].notes[:, 0]),
            ],
            axis=1,
        )
        for i in set(parts)
    }
    best_t, best = 0.0, -1.0
    for _ in range(tries):
        t0 = float(rng.uniform(0.0, max(total - duration_s, 0.0)))
        score = min(_activity(timed[i], t0, t0 + duration_s) for i in timed)
        if score > best:
            best_t, best = t0, score
        if score >= 0.7:
            break
    return best_t


def _centre(instrument: str) -> int:
    return PROGRAM_RANGES[GM_PROGRAMS[instrument][0]][2]


def plan_ensemble(
    rng: np.random.Generator,
    piece: Piece,
    instruments: Sequence[str],
    *,
    duration_s: float,
    preroll_s: float = 1.0,
) -> list[Performance]:
    """Share out a piece's parts among instruments and perform them together.

    Parts and instruments are both sorted by register and matched in order (the lowest part to
    the lowest instrument). With more performers than parts, extra performers double a part
    (in their own octave), as a double bass doubles the cello in an orchestra.

    Args:
        rng: source of every random choice.
        piece: a piece with at least one part.
        instruments: class names, one per performer (order kept in the result).
        duration_s: length of the clip.
        preroll_s: music before the clip, rendered so that reverberation has built up when
            the clip starts (the clip is ``[preroll_s, preroll_s + duration_s)`` of the
            rendering).

    Returns:
        One :class:`Performance` per instrument, in the order given, note times measured from
        the start of the rendering (``preroll_s`` before the clip).

    Raises:
        ValueError: the piece has no parts, or an instrument is unknown.
    """
    if not piece.parts:
        raise ValueError(f"piece {piece.id} has no usable parts")
    for name in instruments:
        if name not in GM_PROGRAMS:
            raise ValueError(f"unknown instrument {name!r}; known: {sorted(GM_PROGRAMS)}")
    n, available = len(instruments), len(piece.parts)
    chosen = list(rng.choice(available, size=min(n, available), replace=False))
    chosen += list(rng.choice(available, size=n - len(chosen), replace=True))
    by_pitch = sorted(chosen, key=lambda i: (piece.parts[i].mean_pitch, i))
    by_register = sorted(range(n), key=lambda k: (_centre(instruments[k]), k))
    assignment = dict(zip(by_register, by_pitch, strict=True))

    clock = _draw_tempo(rng, piece, duration_s)
    t0 = _choose_window(rng, piece, chosen, clock, duration_s)
    start = t0 - preroll_s
    return [
        _perform(rng, piece, int(assignment[k]), name, clock, start, preroll_s + duration_s)
        for k, name in enumerate(instruments)
    ]


def plan_solo(
    rng: np.random.Generator,
    piece: Piece,
    instrument: str,
    *,
    duration_s: float,
    preroll_s: float = 1.0,
) -> Performance:
    """One random part of a piece, played alone by ``instrument`` (see :func:`plan_ensemble`)."""
    if not piece.parts:
        raise ValueError(f"piece {piece.id} has no usable parts")
    if instrument not in GM_PROGRAMS:
        raise ValueError(f"unknown instrument {instrument!r}; known: {sorted(GM_PROGRAMS)}")
    part = int(rng.integers(len(piece.parts)))
    clock = _draw_tempo(rng, piece, duration_s)
    t0 = _choose_window(rng, piece, [part], clock, duration_s)
    return _perform(rng, piece, part, instrument, clock, t0 - preroll_s, preroll_s + duration_s)
