"""Room acoustics for synthetic recordings: shoebox rooms, microphone arrays, convolution.

A scene is recorded in a shoebox room simulated by pyroomacoustics' image source method:

1. :func:`microphone_array` places 1 to 8 omnidirectional microphones at a pose (centre and
   a point the array faces): one capsule, a spaced stereo pair (AB, left first as seen from
   the array), or a small horizontal circle like the arrays of smart speakers and 360° rigs.
2. :func:`draw_room` draws a room that contains every source and microphone (and the scene's
   walls, when the cloud has them): size, per-wall absorption from a target RT60 (Sabine), and
   the image source order. Reflections are truncated at :data:`MAX_ORDER` and air absorption
   is off (it costs 5x more): one room with 3 sources and 2 microphones takes ~0.15 s. Rooms
   whose target RT60 needs a higher order decay faster than asked: ``meta.json`` records both
   the Sabine RT60 of the walls and the RT60 measured on the simulated responses.
3. :func:`record` convolves each dry source with its room impulse responses
   (``scipy.signal.oaconvolve``) and returns every source's contribution at every microphone.
   The mixture is their sum, exactly: callers add the returned stems. Microphones are omni
   unless given directions and first-order patterns (:data:`pcsep_cli.io.mics.PATTERNS`),
   simulated as pyroomacoustics' ``CardioidFamily``, whose ``p`` is our ``a`` (response
   ``a + (1 − a) cos θ``, signed: a figure-8's rear lobe inverts), applied to every image
   source's direction of arrival.

Coordinates: callers pass scene coordinates (metres, z up, floor at z = 0). The room's corner
sits at :attr:`Room.origin` in scene coordinates; pyroomacoustics sees ``xyz - origin``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_ORDER = 20
"""Highest image source order (see the module docstring for the cost and the error)."""

LAYOUTS = {"mono": 1, "stereo": 2}
_CLEARANCE = 0.25  # metres kept between any source or microphone and a wall


@dataclass(frozen=True)
class Room:
    """A shoebox room placed in scene coordinates.

    Attributes:
        origin: float64 ``[3]``, the room's corner (min x, min y, floor) in scene coordinates.
        dims: float64 ``[3]``, length, width, height in metres.
        absorption: energy absorption per wall, keys ``west east south north floor ceiling``
            (pyroomacoustics' names for x-, x+, y-, y+, z-, z+).
        rt60: reverberation time predicted by Sabine's formula, seconds.
        max_order: image source order simulated.
    """

    origin: np.ndarray
    dims: np.ndarray
    absorption: dict[str, float]
    rt60: float
    max_order: int

    def to_json(self) -> dict:
        """JSON-ready description (for ``meta.json``)."""
        return {
            "origin": [round(float(v), 6) for v in self.origin],
            "dims": [round(float(v), 6) for v in self.dims],
            "absorption": {k: round(v, 6) for k, v in self.absorption.items()},
            "rt60_sabine": round(self.rt60, 4),
            "max_order": self.max_order,
        }


def channels_of(layout: str | int) -> int:
    """Number of microphones of a layout: ``"mono"``, ``"stereo"`` or 1 to 8.

    Raises:
        ValueError: unknown layout.
    """
    if isinstance(layout, str) and layout in LAYOUTS:
        return LAYOUTS[layout]
    try:
        n = int(layout)
    except (TypeError, ValueError):
        n = 0
    if not 1 <= n <= 8:
        raise ValueError(f"microphone layout must be mono, stereo or 1..8 channels, got {layout!r}")
    return n


def facing(centre: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal unit vectors ``(forward, left)`` of an array at ``centre`` facing ``target``
    (``+x`` when the target is straight above or below)."""
    forward = np.asarray(target, dtype=np.float64) - centre
    forward[2] = 0.0
    norm = float(np.linalg.norm(forward))
    forward = forward / norm if norm > 1e-6 else np.array([1.0, 0.0, 0.0])
    return forward, np.array([-forward[1], forward[0], 0.0])


def microphone_array(
    rng: np.random.Generator, layout: str | int, centre: np.ndarray, target: np.ndarray
) -> np.ndarray:
    """Microphone positions of an array at ``centre`` facing ``target``.

    Args:
        rng: draws the spacing (stereo 0.1 to 0.6 m; circle radius 3 to 10 cm) and the
            circle's rotation.
        layout: ``"mono"``, ``"stereo"`` or a channel count 1 to 8 (3+ is a circle).
        centre: float ``[3]`` array centre, scene coordinates.
        target: float ``[3]`` point the array faces (only its horizontal direction counts).

    Returns:
        float64 ``[M, 3]`` positions; for stereo, left first as seen from the array.

    Raises:
        ValueError: unknown layout or a centre/target that is not ``[3]``.
    """
    n = channels_of(layout)
    centre = _vec3(centre, "centre")
    forward, left = facing(centre, _vec3(target, "target"))
    if n == 1:
        return centre[None, :].copy()
    if n == 2:
        half = rng.uniform(0.05, 0.3)
        return np.stack([centre + half * left, centre - half * left])
    radius, phase = rng.uniform(0.03, 0.1), rng.uniform(0.0, 2 * math.pi)
    angles = phase + 2 * math.pi * np.arange(n) / n
    ring = np.cos(angles)[:, None] * forward + np.sin(angles)[:, None] * left
    return centre + radius * ring


def draw_room(
    rng: np.random.Generator,
    points: np.ndarray,
    *,
    walls: tuple[np.ndarray, np.ndarray] | None = None,
    rt60_range: tuple[float, float] = (0.2, 1.2),
) -> Room:
    """A shoebox room around ``points`` with random size and absorption.

    Args:
        rng: draws margins, height, RT60 and the spread of absorption between walls.
        points: float ``[K, 3]`` everything that must be inside (sources, microphones), scene
            coordinates, floor at z = 0.
        walls: ``(low [3], high [3])``, the corners of a room already drawn in the point
            cloud; the room is that box (grown only where a point would touch a wall).
        rt60_range: RT60 drawn log-uniformly in this range (seconds), then met through
            Sabine's formula as far as absorption in [0.02, 0.95] allows.

    Returns:
        The room.

    Raises:
        ValueError: ``points`` is not ``[K, 3]``.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
        raise ValueError(f"points must be [K, 3] with K > 0, got {points.shape}")
    low = points.min(axis=0) - _CLEARANCE
    high = points.max(axis=0) + _CLEARANCE
    if walls is not None:
        low = np.minimum(low, np.asarray(walls[0], dtype=np.float64))
        high = np.maximum(high, np.asarray(walls[1], dtype=np.float64))
    else:
        low[:2] -= rng.uniform(0.5, 6.0, 2)
        high[:2] += rng.uniform(0.5, 6.0, 2)
        high[2] = max(high[2], rng.uniform(2.8, 9.0))
    low[2] = min(0.0, low[2])
    dims = high - low

    target = math.exp(rng.uniform(math.log(rt60_range[0]), math.log(rt60_range[1])))
    lx, ly, lz = dims
    areas = {
        "west": ly * lz, "east": ly * lz, "south": lx * lz, "north": lx * lz,
        "floor": lx * ly, "ceiling": lx * ly,
    }  # fmt: skip
    volume = lx * ly * lz
    mean = 0.161 * volume / (sum(areas.values()) * target)
    absorption = {k: float(np.clip(mean * rng.uniform(0.6, 1.4), 0.02, 0.95)) for k in areas}
    rt60 = 0.161 * volume / sum(areas[k] * absorption[k] for k in areas)
    # The order Sabine asks for (pyroomacoustics' rule), capped for speed.
    c = 343.0
    order = math.ceil(c * rt60 / min(dims) - 1) if rt60 > 0 else 1
    return Room(low, dims, absorption, float(rt60), int(np.clip(order, 1, MAX_ORDER)))


def record(
    room: Room,
    sources: np.ndarray,
    microphones: np.ndarray,
    dry: np.ndarray,
    sample_rate: int,
    *,
    start: int = 0,
    num_samples: int | None = None,
    directions: np.ndarray | None = None,
    patterns: Sequence[str] | None = None,
) -> tuple[np.ndarray, float]:
    """Each source's contribution at each microphone.

    Args:
        room: from :func:`draw_room`.
        sources: float ``[P, 3]`` sounding points, scene coordinates.
        microphones: float ``[M, 3]`` scene coordinates.
        dry: float ``(P, S)`` dry mono signals.
        sample_rate: Hz.
        start: first sample kept (dry music before it only fills the room's reverberation).
        num_samples: samples kept from ``start`` (default: to the end of ``dry``).
        directions: float ``[M, 3]`` axis of each microphone (normalised here); needed where
            ``patterns`` names a directional pattern, ignored for omni ones.
        patterns: ``M`` names from :data:`pcsep_cli.io.mics.PATTERNS` (default: all omni).

    Returns:
        ``(stems, rt60)``: float32 ``(P, M, num_samples)``, each source at each microphone
        (their sum over P is the recording), and the RT60 measured on the simulated
        responses (seconds, mean over sources and microphones).

    Raises:
        ValueError: shapes disagree, a source or microphone is outside the room, an unknown
            pattern, or a directional pattern without a direction.
    """
    import pyroomacoustics as pra
    from scipy.signal import oaconvolve

    sources = np.asarray(sources, dtype=np.float64)
    microphones = np.asarray(microphones, dtype=np.float64)
    dry = np.asarray(dry)
    if sources.ndim != 2 or sources.shape[1] != 3:
        raise ValueError(f"sources must be [P, 3], got {sources.shape}")
    if microphones.ndim != 2 or microphones.shape[1] != 3:
        raise ValueError(f"microphones must be [M, 3], got {microphones.shape}")
    if dry.ndim != 2 or dry.shape[0] != len(sources):
        raise ValueError(f"dry must be (P={len(sources)}, S), got {dry.shape}")
    if num_samples is None:
        num_samples = dry.shape[1] - start
    for name, pts in (("source", sources), ("microphone", microphones)):
        local = pts - room.origin
        if ((local <= 0) | (local >= room.dims)).any():
            raise ValueError(f"a {name} lies outside the room {room.to_json()}: {pts.tolist()}")

    materials = {k: pra.Material(v) for k, v in room.absorption.items()}
    sim = pra.ShoeBox(
        room.dims,
        fs=sample_rate,
        materials=materials,
        max_order=room.max_order,
        air_absorption=False,
        ray_tracing=False,
    )
    for pos in sources:
        sim.add_source(pos - room.origin)
    directivity = _directivities(directions, patterns, len(microphones))
    sim.add_microphone_array((microphones - room.origin).T, directivity=directivity)
    sim.compute_rir()

    out = np.zeros((len(sources), len(microphones), num_samples), dtype=np.float32)
    end = start + num_samples
    for p in range(len(sources)):
        length = max(len(sim.rir[m][p]) for m in range(len(microphones)))
        rirs = np.zeros((len(microphones), length), dtype=np.float32)
        for m in range(len(microphones)):
            rirs[m, : len(sim.rir[m][p])] = sim.rir[m][p]
        # The tail past the kept window is never used: convolve only what reaches it.
        wet = oaconvolve(dry[p : p + 1, :end].astype(np.float32), rirs, axes=-1)
        kept = wet[:, start:end]
        out[p, :, : kept.shape[1]] = kept
    # T30 extrapolated: responses cut at MAX_ORDER may never fall by 60 dB.
    return out, float(np.nanmean(sim.measure_rt60(decay_db=30)))


def _directivities(
    directions: np.ndarray | None, patterns: Sequence[str] | None, count: int
) -> list | None:
    """pyroomacoustics directivities, one per microphone (None for an omni), or None for an
    all-omni array (pyroomacoustics' default path, so omni recordings stay as they were)."""
    if patterns is None:
        return None
    from pyroomacoustics.directivities import CardioidFamily

    from pcsep_cli.io.mics import PATTERNS

    patterns = list(patterns)
    if len(patterns) != count:
        raise ValueError(f"patterns must name {count} microphones, got {len(patterns)}")
    unknown = [p for p in patterns if p not in PATTERNS]
    if unknown:
        raise ValueError(f"unknown pattern {unknown[0]!r}; use one of {', '.join(PATTERNS)}")
    if all(PATTERNS[p] == 1.0 for p in patterns):
        return None
    if directions is None:
        raise ValueError("directional patterns need directions [M, 3]")
    directions = np.asarray(directions, dtype=np.float64)
    if directions.shape != (count, 3):
        raise ValueError(f"directions must be [{count}, 3], got {directions.shape}")
    out: list = []
    for pattern, axis in zip(patterns, directions, strict=True):
        a = PATTERNS[pattern]
        if a == 1.0:
            out.append(None)
            continue
        norm = float(np.linalg.norm(axis))
        if not norm > 1e-9:
            raise ValueError(f"a {pattern} microphone needs a non-zero direction, got {axis}")
        out.append(CardioidFamily(orientation=axis / norm, p=a))
    return out


def _vec3(v: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(v, dtype=np.float64).reshape(-1)
    if arr.shape != (3,):
        raise ValueError(f"{name} must be [3], got {np.shape(v)}")
    return arr.copy()
