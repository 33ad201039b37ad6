"""Recordings made with real microphone arrays: audio and geometry, no point clouds.

Spatial separation learns from what an array hears: time differences between spaced
capsules, level differences between coincident directional ones. Each example draws

1. an ensemble of 2 to 4 performers of distinct classes or, with ``same_class_prob``, 2 or 3
   of one class (two violins that only their place tells apart), standing in a row or an arc
   0.8 to 2 m apart, each sounding from a point 0.6 to 1.5 m above the floor;
2. a stereo pair or a small circle (:func:`draw_array`, :data:`ARRAYS`) 1 to 5 m in front of
   them, facing the ensemble's centre;
3. a shoebox room around everything (:func:`pcsep_cli.synth.room.draw_room`) and music from
   the corpus, rendered by the sound sources and recorded with the microphones' directivities
   (:func:`pcsep_cli.synth.room.record`).

An example folder holds ``mixture.wav`` and ``stems/<name>.wav`` (M channels, 32-bit float,
the mixture is the sum of the stems) and ``meta.json``, written last: a folder with one is
finished. Names are the class, then ``violin_2``, ``violin_3``... left to right as seen from
the array; performers are listed in that order. ``meta.json`` ``microphones`` are the
``{"position", "direction", "pattern"}`` objects of :mod:`pcsep_cli.io.mics`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pcsep_cli.classes import INSTRUMENTS
from pcsep_cli.errors import DatasetError
from pcsep_cli.progress import Progress, ProgressFn
from pcsep_cli.separate.types import stem_names
from pcsep_cli.synth import example, music, room
from pcsep_cli.synth import sources as sound_sources
from pcsep_cli.synth.settings import FORMAT_VERSION, PREROLL_S, Settings

__all__ = ["ARRAYS", "draw_array", "write_array_dataset", "write_array_example"]

ARRAYS = ("spaced", "ortf", "nos", "xy", "square", "circle8")
"""Array kinds: an AB pair of omnis, the ORTF, NOS and XY cardioid pairs, 4 and 8 omni circles."""

_KIND = 3  # example.py's generators use kinds 0-2 (scene, pool, clouds) of the same seed
_PAIRS = {"ortf": (0.17, 55.0), "nos": (0.30, 45.0), "xy": (0.0, 45.0)}  # spacing m, ± angle
_CIRCLES = {"square": 4, "circle8": 8}
_GAP = (0.8, 2.0)  # metres between neighbouring performers
_MIC_CLEARANCE = 0.5  # metres between any microphone and any source


def draw_array(
    rng: np.random.Generator, kind: str, centre: np.ndarray, target: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A horizontal microphone array at ``centre`` facing ``target``.

    ``spaced``: 2 omnis 0.3 to 1.0 m apart; ``ortf``: 2 cardioids 0.17 m apart, axes ±55° off
    the facing direction; ``nos``: 2 cardioids 0.30 m apart, ±45°; ``xy``: 2 cardioids at one
    point, ±45° (level differences only); ``square`` and ``circle8``: 4 and 8 omnis on a circle
    of radius 5 to 10 cm at a random rotation.

    Args:
        rng: draws the spacing, the radius and the rotation.
        kind: one of :data:`ARRAYS`.
        centre: float ``[3]`` array centre, scene coordinates.
        target: float ``[3]`` point the array faces (only its horizontal direction counts).

    Returns:
        ``(positions, directions, patterns)``: float64 ``[M, 3]`` positions, float64 ``[M, 3]``
        unit axes (omnis face ``target`` too; their axis plays no part) and ``M`` pattern
        names of :data:`pcsep_cli.io.mics.PATTERNS`. Pairs list the left one first, as seen
        from the array; a pair's left microphone points left.

    Raises:
        ValueError: unknown kind, or a centre/target that is not ``[3]``.
    """
    if kind not in ARRAYS:
        raise ValueError(f"unknown array kind {kind!r}; use one of {', '.join(ARRAYS)}")
    centre = room._vec3(centre, "centre")
    forward, left = room.facing(centre, room._vec3(target, "target"))
    if kind in _CIRCLES:
        n = _CIRCLES[kind]
        radius, phase = rng.uniform(0.05, 0.10), rng.uniform(0.0, 2 * math.pi)
        angles = phase + 2 * math.pi * np.arange(n) / n
        ring = np.cos(angles)[:, None] * forward + np.sin(angles)[:, None] * left
        return centre + radius * ring, np.tile(forward, (n, 1)), ["omni"] * n
    if kind == "spaced":
        half = rng.uniform(0.3, 1.0) / 2
        positions = np.stack([centre + half * left, centre - half * left])
        return positions, np.stack([forward, forward]), ["omni", "omni"]
    spacing, degrees = _PAIRS[kind]
    a = math.radians(degrees)
    positions = np.stack([centre + spacing / 2 * left, centre - spacing / 2 * left])
    directions = np.stack([math.cos(a) * forward + s * math.sin(a) * left for s in (1.0, -1.0)])
    return positions, directions, ["cardioid", "cardioid"]


def _instruments(
    rng: np.random.Generator, classes: Sequence[str], same_class_prob: float
) -> tuple[list[str], bool]:
    """The ensemble's classes, and whether they are all one class."""
    single = [c for c in classes if c != "piano"]  # three pianos on one stage: no
    if single and (len(classes) < 2 or rng.random() < same_class_prob):
        return [single[int(rng.integers(len(single)))]] * int(rng.integers(2, 4)), True
    n = int(rng.integers(2, min(4, len(classes)) + 1))
    return [str(c) for c in rng.choice(list(classes), n, replace=False)], False


def _stage(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Floor positions ``[n, 3]`` in a row or an arc (neighbours 0.8 to 2 m apart) and the
    sounding points ``[n, 3]`` above them; the audience is at -y, the ensemble centred on 0."""
    gaps = rng.uniform(*_GAP, n - 1)
    if rng.random() < 0.5:
        x = np.concatenate([[0.0], np.cumsum(gaps)])
        floor = np.stack([x, np.zeros(n), np.zeros(n)], axis=1)
    else:  # an arc around a point on the audience's side; chords are the gaps
        radius = rng.uniform(3.0, 8.0)
        phi = np.concatenate([[0.0], np.cumsum(2 * np.arcsin(gaps / (2 * radius)))])
        floor = np.stack([radius * np.sin(phi), radius * (1 - np.cos(phi)), np.zeros(n)], axis=1)
    floor[:, :2] -= floor[:, :2].mean(axis=0)
    angle, shift = rng.uniform(0, 2 * math.pi, n), rng.uniform(0.0, 0.25, n)
    heights = rng.uniform(0.6, 1.5, n)
    offsets = np.stack([shift * np.cos(angle), shift * np.sin(angle), heights], axis=1)
    return floor, floor + offsets


def _place(
    rng: np.random.Generator, floor: np.ndarray, sounding: np.ndarray, distance: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Turn the stage to a random heading and shift it; draw the array centre in front.

    Returns:
        ``(floor, sounding, centre, target)`` in scene coordinates.
    """
    yaw = rng.uniform(0, 2 * math.pi)
    c, s = math.cos(yaw), math.sin(yaw)
    turn = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    shift = np.append(rng.uniform(-3.0, 3.0, 2), 0.0)
    floor, sounding = floor @ turn.T + shift, sounding @ turn.T + shift
    middle = floor.mean(axis=0)
    target = np.array([middle[0], middle[1], float(sounding[:, 2].mean())])
    low, high = max(distance[0], 1.0), min(distance[1], 5.0)
    if low > high:
        raise ValueError(f"distance_range {distance} leaves nothing within 1 to 5 m")
    for _ in range(200):
        bearing = rng.uniform(-0.6, 0.6)  # radians off straight in front
        front = turn @ np.array([math.sin(bearing), -math.cos(bearing), 0.0])
        centre = middle + rng.uniform(low, high) * front
        centre[2] = rng.uniform(1.2, 2.5)
        # Clear of every source even with the widest spaced pair (0.5 m each side).
        if np.linalg.norm(sounding - centre, axis=1).min() >= _MIC_CLEARANCE + 0.5:
            return floor, sounding, centre, target
    raise RuntimeError("no array position clear of the performers in 200 draws")


def _left_to_right(sounding: np.ndarray, centre: np.ndarray, target: np.ndarray) -> list[int]:
    """Performer indices ordered by azimuth seen from the array, leftmost first."""
    forward, left = room.facing(centre, target)
    rel = sounding - centre
    azimuth = np.arctan2(rel @ left, rel @ forward)
    return [int(k) for k in np.argsort(-azimuth, kind="stable")]


def _mic_meta(positions: np.ndarray, directions: np.ndarray, patterns: list[str]) -> list[dict]:
    out = []
    for pos, axis, pattern in zip(positions, directions, patterns, strict=True):
        entry: dict = {"position": example._r(pos)}
        if pattern != "omni":
            entry["direction"] = example._r(axis)
        entry["pattern"] = pattern
        out.append(entry)
    return out


def write_array_example(
    folder: Path,
    *,
    seed: int,
    index: int,
    split: str = "train",
    sample_rate: int = 22050,
    duration_s: float = 4.0,
    kinds: Sequence[str] = ARRAYS,
    same_class_prob: float = 0.5,
    sources: Sequence[str] = sound_sources.DEFAULT_SOURCES,
    rt60_range: tuple[float, float] = (0.3, 0.7),
    distance_range: tuple[float, float] = (1.0, 5.0),
    pieces: Sequence[str] | None = None,
    instruments: Sequence[str] = INSTRUMENTS,
) -> dict:
    """Write array example ``index`` into ``folder`` (module docstring); a pure function of
    ``(seed, index)`` and the other arguments.

    Args:
        folder: created if missing; files already there are overwritten.
        seed: the dataset's seed.
        index: the example's number.
        split: ``train``, ``val`` or ``test``: the music, and the sound sources
            (:func:`pcsep_cli.synth.sources.for_split`), come from this split.
        sample_rate: Hz.
        duration_s: seconds.
        kinds: array kinds drawn from (:data:`ARRAYS`).
        same_class_prob: chance of 2 or 3 performers of one class (no piano) instead of 2 to
            4 of distinct classes.
        sources: allowed sound sources (``Settings.sources``).
        rt60_range: seconds, the room's RT60 drawn in it.
        distance_range: metres between the array and the ensemble's centre, within 1 to 5.
        pieces: corpus ids the music is drawn from (default: the whole corpus).
        instruments: classes drawn from; a single class always gives 2 or 3 performers of
            it. Piano never forms a one-class ensemble.

    Returns:
        The ``meta.json`` written.

    Raises:
        ValueError: an unknown kind or an empty ``kinds``, an unknown instrument, only
            piano, or a distance range outside 1 to 5 m.
        DatasetError: no music or no sound source for ``split`` (a missing soundfont...), or a
            part silent in every draw of music and sounds (e.g. a source with no sample for an
            instrument's range).
    """
    if not kinds or any(k not in ARRAYS for k in kinds):
        raise ValueError(f"kinds must be some of {', '.join(ARRAYS)}, got {list(kinds)}")
    classes = list(dict.fromkeys(instruments))
    if not classes or any(c not in music.GM_PROGRAMS for c in classes) or classes == ["piano"]:
        raise ValueError(
            f"instruments must be classes of {', '.join(INSTRUMENTS)} (not piano alone), "
            f"got {list(instruments)}"
        )
    settings = Settings(
        seed=seed,
        sample_rate=sample_rate,
        duration_s=duration_s,
        sources=tuple(sources),
        pieces=None if pieces is None else tuple(pieces),
    )
    geo_rng, music_rng, room_rng = example._rngs(seed, _KIND, index)

    ensemble, same_class = _instruments(geo_rng, classes, same_class_prob)
    floor, sounding = _stage(geo_rng, len(ensemble))
    floor, sounding, centre, target = _place(geo_rng, floor, sounding, distance_range)
    kind = str(kinds[int(geo_rng.integers(len(kinds)))])
    mics, axes, patterns = draw_array(geo_rng, kind, centre, target)
    # Parts go by register in drawn order (one class: the first gets the lowest part), and
    # stage slots at random, so that a performer's place says nothing of its part.
    slot = geo_rng.permutation(len(ensemble))
    floor, sounding = floor[slot], sounding[slot]

    sr = sample_rate
    n, pre = round(duration_s * sr), round(PREROLL_S * sr)
    source_rng = sound_sources.source_rng(seed, _KIND, index)
    order = _left_to_right(sounding, centre, target)
    floor, sounding = floor[order], sounding[order]
    try:
        piece, plays, used, dry = example.sounding_music(
            music_rng, source_rng, settings, split, ensemble, order
        )
    except DatasetError as err:
        raise DatasetError(f"recording {index}: {err.message}") from None
    names = stem_names([p.instrument for p in plays])
    dry, gains = example._level(dry, music_rng)

    lifted = floor + np.array([0.0, 0.0, 1.0])  # keep the players' bodies inside too
    space = room.draw_room(
        room_rng, np.concatenate([sounding, mics, lifted]), rt60_range=tuple(rt60_range)
    )
    stems, rt60 = room.record(
        space, sounding, mics, dry, sr, start=pre, num_samples=n, directions=axes, patterns=patterns
    )
    mixture = stems.sum(axis=0)
    peak = max(float(np.abs(mixture).max()), float(np.abs(stems).max()), 1e-9)
    stems *= np.float32(room_rng.uniform(*example._PEAK_RANGE) / peak)
    mixture = stems.sum(axis=0, dtype=np.float32)

    folder = Path(folder)
    (folder / "stems").mkdir(parents=True, exist_ok=True)
    for name, stem in zip(names, stems, strict=True):
        example._write_audio(folder / "stems" / f"{name}.wav", stem, settings)
    example._write_audio(folder / "mixture.wav", mixture, settings)
    meta = {
        "version": FORMAT_VERSION,
        "sample_rate": sr,
        "channels": len(mics),
        "duration_s": duration_s,
        "performers": [
            {
                "name": name,
                "instrument": play.instrument,
                "position": example._r(pos),
                "source_position": example._r(src_pos),
                "stem": f"stems/{name}.wav",
                "source": src,
                "program": play.program,
                "part": play.part,
                "part_name": play.part_name,
                "transpose": play.transpose,
                "articulation": play.articulation,
                "gain_db": round(gain, 3),
                "rms_db": example._db(stem),
            }
            for name, pos, src_pos, play, src, gain, stem in zip(
                names, floor, sounding, plays, used, gains, stems, strict=True
            )
        ],
        "distractors": [],
        "microphones": _mic_meta(mics, axes, patterns),
        "mic_layout": kind,
        "array": {"centre": example._r(centre), "target": example._r(target)},
        "same_class": same_class,
        "source": f"pcsep synth array: music21 corpus {piece.path}, sound sources "
        f"{', '.join(dict.fromkeys(used))}, pyroomacoustics shoebox, {kind} array",
        "split": split,
        "index": index,
        "seed": seed,
        "piece": piece.id,
        "bpm": round(plays[0].bpm, 3),
        "clip_start_s": round(plays[0].start_s + PREROLL_S, 4),
        "room": {**space.to_json(), "rt60_measured": round(rt60, 4)},
        "rms_db": example._db(mixture),
    }
    example._write_json(folder / "meta.json", meta)  # last, atomically: marks it finished
    return meta


def write_array_dataset(
    out: Path,
    *,
    seed: int,
    count: int,
    split: str = "train",
    start: int = 0,
    progress: ProgressFn | None = None,
    **kw,
) -> list[Path]:
    """Write array examples ``start .. start+count-1`` into ``out/<split>/<index:05d>/``.

    A folder that already holds ``meta.json`` is finished and left as it is, so an interrupted
    run resumes where it stopped (and writes what a fresh run would: every example is a pure
    function of its index).

    Args:
        out: the dataset's root.
        seed: the dataset's seed.
        count: examples to write.
        split: their split.
        start: the first index.
        progress: stage ``synth`` events, one per example.
        **kw: passed to :func:`write_array_example`.

    Returns:
        The ``count`` example folders, in index order.
    """
    folders = []
    for index in range(start, start + count):
        folder = Path(out) / split / f"{index:05d}"
        if not (folder / "meta.json").is_file():
            write_array_example(folder, seed=seed, index=index, split=split, **kw)
        folders.append(folder)
        if progress is not None:
            progress(Progress("synth", len(folders), count, "recording"))
    return folders
