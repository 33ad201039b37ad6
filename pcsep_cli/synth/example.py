"""One dataset example (a scene), one batch of solo clips or one cloud scene, seed to files.

Each example draws from three generators spawned from ``SeedSequence([seed, kind, index])``:
geometry, music and room. Keeping them apart means a change in how many numbers one stage
draws leaves the others' output as it was.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pcsep_cli.errors import DatasetError
from pcsep_cli.synth import corpus, music, room, styles
from pcsep_cli.synth import sources as sound_sources
from pcsep_cli.synth.settings import (
    BODY_IDS,
    FORMAT_VERSION,
    POOL_RMS_DB,
    PREROLL_S,
    Settings,
    candidate_pieces,
)
from pcsep_cli.train.metrics import SILENT_DB, silent_rows

if TYPE_CHECKING:
    from pcsep_cli.synth.scene import SceneCloud, SceneObject

_SCENE, _POOL, _CLOUDS = 0, 1, 2
_FILES = {
    "scene": ("scene.ply", "labels.npy", "mixture.wav"),
    "pool": ("cloud.ply", "audio.wav"),
    "clouds": ("scene.ply", "labels.npy"),
}
_PEAK_RANGE = (0.3, 0.9)
_MUSIC_TRIES = 8  # draws of piece, parts and sources before an ensemble is given up


def _rngs(seed: int, kind: int, index: int) -> tuple[np.random.Generator, ...]:
    children = np.random.SeedSequence([seed, kind, index]).spawn(3)
    return tuple(np.random.default_rng(c) for c in children)


def is_finished(folder: Path, kind: str) -> bool:
    """Whether ``folder`` holds a complete example: a valid ``meta.json`` and its files."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
        files = list(_FILES[kind])
        files += [p["stem"] for p in meta.get("performers", []) if kind == "scene"]
        return meta["version"] == FORMAT_VERSION and all(
            (folder / f).is_file() and (folder / f).stat().st_size > 0 for f in files
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


def silent_parts(dry: np.ndarray, start: int) -> list[int]:
    """Parts of ``dry`` ``(P, S)`` that do not sound in the clip (``start:``): every part
    scored needs its own sound (a rest through the whole clip, or a sound source with no
    sample for the pitch, leaves a stem that no separation can be judged on)."""
    return silent_rows(dry[:, start:], SILENT_DB)


def sounding_music(
    music_rng: np.random.Generator,
    source_rng: np.random.Generator,
    settings: Settings,
    split: str,
    instruments: Sequence[str],
    order: Sequence[int] | None = None,
) -> tuple[corpus.Piece, list, list[str], np.ndarray]:
    """Piece, performances, sound sources and dry parts ``(P, pre-roll + clip)`` of an
    ensemble, drawn again until every part sounds in the clip (:func:`silent_parts`).

    The first draw takes the streams as a single draw always did, so an example whose music
    sounded is what it was. ``order`` puts the performers in another order before rendering.

    Raises:
        DatasetError: a part stayed silent in every one of :data:`_MUSIC_TRIES` draws.
    """
    sr = settings.sample_rate
    n, pre = round(settings.duration_s * sr), round(PREROLL_S * sr)
    allowed = sound_sources.for_split(settings.sources, split)
    for _ in range(_MUSIC_TRIES):
        piece = _draw_piece(music_rng, settings, split)
        plays = music.plan_ensemble(
            music_rng, piece, instruments, duration_s=settings.duration_s, preroll_s=PREROLL_S
        )
        used = sound_sources.choose(source_rng, plays, allowed)
        if order is not None:
            plays, used = [plays[k] for k in order], [used[k] for k in order]
        dry = sound_sources.render(plays, used, sample_rate=sr, num_samples=pre + n)
        if not silent_parts(dry, pre):
            return piece, plays, used, dry
    raise DatasetError(f"a part stayed silent in {_MUSIC_TRIES} draws of music and sounds")


def _draw_piece(rng: np.random.Generator, settings: Settings, split: str) -> corpus.Piece:
    """A random piece of ``split`` with parts, work first (pieces without parts: drawn again)."""
    works = candidate_pieces(settings, split)
    for _ in range(64):
        work = works[int(rng.integers(len(works)))]
        piece = corpus.load_piece(work[int(rng.integers(len(work)))])
        if piece.parts:
            return piece
    raise DatasetError(f"no piece with parts among {len(works)} {split} works drawn")


def _body_ids(rng: np.random.Generator, split: str, n: int) -> list[int]:
    low, high = BODY_IDS[split]
    return [int(b) for b in rng.integers(low, high, n)]


def _level(dry: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list[float]]:
    """Dry parts at equal RMS, then a random balance of ±6 dB (silent parts stay silent)."""
    gains = [float(g) for g in rng.uniform(-6.0, 6.0, len(dry))]
    rms = np.sqrt(np.mean(dry.astype(np.float64) ** 2, axis=1))
    scale = np.where(rms > 0, 10 ** (np.asarray(gains) / 20) / np.maximum(rms, 1e-12), 0.0)
    return (dry * scale[:, None]).astype(np.float32), gains


def _db(x: np.ndarray) -> float | None:
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return round(20 * math.log10(rms), 3) if rms > 0 else None


def _r(v: np.ndarray | Sequence[float]) -> list[float]:
    return [round(float(x), 6) for x in np.asarray(v, dtype=np.float64).reshape(-1)]


def _mic_pose(rng: np.random.Generator, scene, sources: np.ndarray) -> tuple[np.ndarray, ...]:
    """At the scanner (as a recorder set up beside it), or in front of the ensemble."""
    sensor = np.asarray(scene.sensor_position, dtype=np.float64)
    target = np.asarray(scene.sensor_target, dtype=np.float64)
    if rng.random() < 0.5:
        return sensor + rng.uniform(-0.1, 0.1, 3), target
    centre = sources.mean(axis=0)
    away = sensor - centre
    away[2] = 0.0
    away /= max(float(np.linalg.norm(away)), 1e-6)
    spot = centre + away * rng.uniform(1.5, 4.0)
    spot[2] = rng.uniform(1.2, 2.5)
    return spot, np.array([centre[0], centre[1], 1.2])


def _write_audio(path: Path, data: np.ndarray, settings: Settings) -> None:
    from pcsep_cli.io.audio_write import write_audio

    write_audio(path, data, settings.sample_rate, bits=settings.bits, overwrite=True)


def _write_json(path: Path, data: dict) -> None:
    from pcsep_cli.io.atomic import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=1) + "\n", overwrite=True)


def _write_cloud(path: Path, xyz: np.ndarray, rgb: np.ndarray) -> None:
    from pcsep_cli.io.pointcloud import PointCloud, write_ply

    write_ply(path, PointCloud(np.ascontiguousarray(xyz, np.float64), np.ascontiguousarray(rgb)))


def _instruments(rng: np.random.Generator, settings: Settings, index: int) -> list[str]:
    from pcsep_cli.synth.scene import CLASSES

    low, high = settings.performers
    n = int(rng.integers(low, high + 1))
    if settings.cycle_instruments:
        return [CLASSES[(index * high + k) % len(CLASSES)] for k in range(n)]
    return [str(c) for c in rng.choice(CLASSES, n)]


def _draw_scene(
    geo_rng: np.random.Generator, settings: Settings, split: str, index: int, distract: float
) -> tuple[bool, SceneCloud, list[tuple[int, SceneObject]], list[tuple[int, SceneObject]], int]:
    """Instruments, distractors (with chance ``distract``), bodies, room: the scanned scene.
    With chance ``settings.clutter`` a whole-room scan: walls, 3-14 clutter pieces, 1-3 views.

    Returns:
        ``(walls, scene, players, others, views)``: players and others as ``(object index,
        object)``; ``views`` 0 unless a whole-room scan (then the scans merged, 1-3).
    """
    from pcsep_cli.synth.scene import DISTRACTORS, build_scene

    instruments = _instruments(geo_rng, settings, index)
    distractors: list[str] = []
    if geo_rng.random() < distract:
        distractors = [str(d) for d in geo_rng.choice(DISTRACTORS, int(geo_rng.integers(1, 3)))]
    bodies = _body_ids(geo_rng, split, len(instruments) + len(distractors))
    whole_room = settings.clutter > 0 and bool(geo_rng.random() < settings.clutter)
    walls = bool(geo_rng.random() < 0.5) or whole_room
    clutter, views = 0, 1
    if whole_room:
        clutter, views = int(geo_rng.integers(3, 15)), int(geo_rng.integers(1, 4))
    with styles.allowed(styles.for_split(settings.styles, split)):
        scene = build_scene(
            geo_rng,
            instruments,
            distractors=tuple(distractors),
            body_ids=bodies,
            walls=walls,
            clutter=clutter,
            views=views,
        )
    players = [(k, o) for k, o in enumerate(scene.objects) if o.kind == "performer"]
    others = [(k, o) for k, o in enumerate(scene.objects) if o.kind != "performer"]
    order = [o.label for _, o in players]
    if sorted(order) != sorted(instruments):
        raise RuntimeError(f"build_scene returned performers {order} for {instruments}")
    return walls, scene, players, others, views if whole_room else 0


def _write_geometry(folder: Path, scene: SceneCloud) -> np.ndarray:
    """``scene.ply`` and ``labels.npy``; returns the point count of each object."""
    from pcsep_cli.io.atomic import atomic_path

    folder.mkdir(parents=True, exist_ok=True)
    _write_cloud(folder / "scene.ply", scene.xyz, scene.rgb)
    with atomic_path(folder / "labels.npy", overwrite=True) as tmp, open(tmp, "wb") as f:
        np.save(f, scene.object_index.astype(np.int16))
    return np.bincount(scene.object_index[scene.object_index >= 0], minlength=len(scene.objects))


def _distractor_meta(others: list[tuple[int, SceneObject]], counts: np.ndarray) -> list[dict]:
    return [
        {
            "kind": obj.distractor or obj.name,
            "position": _r(obj.position),
            "object": k,
            "points": int(counts[k]),
            "body_id": obj.body_id,
        }
        for k, obj in others
    ]


def write_cloud_scene(settings: Settings, folder: Path, split: str, index: int) -> None:
    """Write cloud scene ``index``: a scanned scene without sound, for the visual encoder.

    Drawn like an example's scene (performers, room, sensor) but always with 1 or 2
    distractors: it adds labelled performers and ``none`` objects that cost no rendering.
    """
    geo_rng = _rngs(settings.seed, _CLOUDS, index)[0]
    walls, scene, players, others, views = _draw_scene(geo_rng, settings, split, index, 1.0)
    counts = _write_geometry(folder, scene)
    meta = {
        "version": FORMAT_VERSION,
        "performers": [
            {
                "name": obj.name,
                "instrument": obj.label,
                "style": styles.style_of(obj.label, obj.params),
                "position": _r(obj.position),
                "object": k,
                "points": int(counts[k]),
                "body_id": obj.body_id,
            }
            for k, obj in players
        ],
        "distractors": _distractor_meta(others, counts),
        "source": "pcsep synth cloud scene: anny bodies, trimesh instruments, simulated scan",
        "split": split,
        "index": index,
        "seed": settings.seed,
        "sensor": {"position": _r(scene.sensor_position), "target": _r(scene.sensor_target)},
        "points": int(len(scene.xyz)),
        "labels": "labels.npy",
        "walls": walls,
        **({"whole_room": {"views": views}} if views else {}),
    }
    _write_json(folder / "meta.json", meta)


def write_scene(settings: Settings, folder: Path, split: str, index: int) -> None:
    """Write example ``index`` (a whole scene and its recording) into ``folder``.

    Raises:
        DatasetError: a part stayed silent in every draw of music and sounds (:data:`_MUSIC_TRIES`).
    """
    geo_rng, music_rng, room_rng = _rngs(settings.seed, _SCENE, index)
    walls, scene, players, others, views = _draw_scene(
        geo_rng, settings, split, index, settings.distractor_prob
    )
    instruments = [o.label for _, o in players]

    sr = settings.sample_rate
    n, pre = round(settings.duration_s * sr), round(PREROLL_S * sr)
    source_rng = sound_sources.source_rng(settings.seed, _SCENE, index)
    try:
        piece, plays, used, dry = sounding_music(
            music_rng, source_rng, settings, split, instruments
        )
    except DatasetError as err:
        raise DatasetError(f"scene {index}: {err.message}") from None
    dry, gains = _level(dry, music_rng)

    sources = np.array([o.source_position for _, o in players], dtype=np.float64)
    centre, target = _mic_pose(room_rng, scene, sources)
    box = None if scene.room is None else np.asarray(scene.room, dtype=np.float64)
    if box is not None:  # the recorder stands inside the scanned walls
        centre = np.clip(centre, box[0] + 0.5, box[1] - 0.5)
    mics = room.microphone_array(room_rng, settings.mics, centre, target)
    body = scene.xyz[scene.object_index >= 0]
    bounds = np.stack([body.min(axis=0), body.max(axis=0)]) if len(body) else sources
    space = room.draw_room(
        room_rng, np.concatenate([sources, mics, bounds]), walls=None if box is None else box
    )
    stems, rt60 = room.record(space, sources, mics, dry, sr, start=pre, num_samples=n)
    mixture = stems.sum(axis=0)
    peak = max(float(np.abs(mixture).max()), float(np.abs(stems).max()), 1e-9)
    stems *= np.float32(room_rng.uniform(*_PEAK_RANGE) / peak)
    mixture = stems.sum(axis=0, dtype=np.float32)

    (folder / "stems").mkdir(parents=True, exist_ok=True)
    names = [o.name for _, o in players]
    for name, stem in zip(names, stems, strict=True):
        _write_audio(folder / "stems" / f"{name}.wav", stem, settings)
    _write_audio(folder / "mixture.wav", mixture, settings)
    counts = _write_geometry(folder, scene)
    meta = {
        "version": FORMAT_VERSION,
        "sample_rate": sr,
        "channels": len(mics),
        "duration_s": settings.duration_s,
        "performers": [
            {
                "name": name,
                "instrument": obj.label,
                "style": styles.style_of(obj.label, obj.params),
                "position": _r(obj.position),
                "source_position": _r(obj.source_position),
                "stem": f"stems/{name}.wav",
                "object": k,
                "points": int(counts[k]),
                "body_id": obj.body_id,
                "program": play.program,
                "part": play.part,
                "part_name": play.part_name,
                "transpose": play.transpose,
                "articulation": play.articulation,
                "source": src,
                "gain_db": round(gain, 3),
                "rms_db": _db(stem),
            }
            for name, (k, obj), play, src, gain, stem in zip(
                names, players, plays, used, gains, stems, strict=True
            )
        ],
        "distractors": _distractor_meta(others, counts),
        "microphones": [_r(m) for m in mics],
        "mic_layout": settings.mics,
        "source": f"pcsep synth: music21 corpus {piece.path}, sound sources "
        f"{', '.join(dict.fromkeys(used))}, pyroomacoustics shoebox",
        "split": split,
        "index": index,
        "seed": settings.seed,
        "piece": piece.id,
        "bpm": round(plays[0].bpm, 3),
        "clip_start_s": round(plays[0].start_s + PREROLL_S, 4),
        "room": {**space.to_json(), "rt60_measured": round(rt60, 4)},
        "sensor": {"position": _r(scene.sensor_position), "target": _r(scene.sensor_target)},
        "points": int(len(scene.xyz)),
        "labels": "labels.npy",
        "walls": walls,
        **({"whole_room": {"views": views}} if views else {}),
        "rms_db": _db(mixture),
    }
    _write_json(folder / "meta.json", meta)


def write_pool_chunk(
    settings: Settings,
    folders: Sequence[Path],
    splits: Sequence[str],
    start: int,
    todo: Sequence[bool],
) -> None:
    """Write solo clips ``start .. start+len(folders)-1`` (those flagged in ``todo``).

    All clips of the chunk are planned and rendered in one FluidSynth call, finished ones too,
    so that a resumed run renders exactly what a fresh one would.
    """
    from pcsep_cli.synth.scene import CLASSES, performer_cloud

    sr = settings.sample_rate
    n, pre = round(settings.duration_s * sr), round(PREROLL_S * sr)
    plans = []
    for j, split in enumerate(splits):
        geo_rng, music_rng, room_rng = _rngs(settings.seed, _POOL, start + j)
        instrument = CLASSES[(start + j) % len(CLASSES)]
        piece = _draw_piece(music_rng, settings, split)
        play = music.plan_solo(
            music_rng, piece, instrument, duration_s=settings.duration_s, preroll_s=PREROLL_S
        )
        plans.append((geo_rng, room_rng, piece, play))
    used = [
        sound_sources.choose(
            sound_sources.source_rng(settings.seed, _POOL, start + j),
            [plan[3]],
            sound_sources.for_split(settings.sources, split),
        )[0]
        for j, (split, plan) in enumerate(zip(splits, plans, strict=True))
    ]
    dry = sound_sources.render([p[3] for p in plans], used, sample_rate=sr, num_samples=pre + n)

    for j, (folder, split) in enumerate(zip(folders, splits, strict=True)):
        if not todo[j]:
            continue
        geo_rng, room_rng, piece, play = plans[j]
        body_id = _body_ids(geo_rng, split, 1)[0]
        with styles.allowed(styles.for_split(settings.styles, split)):
            cloud = performer_cloud(geo_rng, play.instrument, body_id=body_id)
        obj = cloud.objects[0]
        keep = cloud.object_index == 0
        source = np.asarray(obj.source_position, dtype=np.float64)

        # Microphones 1.5 to 6 m away, anywhere around the player, at head height or above.
        angle, dist = room_rng.uniform(0, 2 * math.pi), room_rng.uniform(1.5, 6.0)
        centre = source + dist * np.array([math.cos(angle), math.sin(angle), 0.0])
        centre[2] = room_rng.uniform(1.2, 2.5)
        mics = room.microphone_array(room_rng, settings.mics, centre, source)
        pts = cloud.xyz[keep]
        space = room.draw_room(
            room_rng, np.concatenate([source[None], mics, pts.min(0)[None], pts.max(0)[None]])
        )
        stems, rt60 = room.record(
            space, source[None], mics, dry[j : j + 1], sr, start=pre, num_samples=n
        )
        audio = stems[0]
        level = _db(audio)
        if level is not None:
            audio = audio * np.float32(10 ** ((POOL_RMS_DB - level) / 20))

        folder.mkdir(parents=True, exist_ok=True)
        _write_audio(folder / "audio.wav", audio, settings)
        _write_cloud(folder / "cloud.ply", pts, cloud.rgb[keep])
        meta = {
            "version": FORMAT_VERSION,
            "sample_rate": sr,
            "channels": len(mics),
            "duration_s": settings.duration_s,
            "instrument": play.instrument,
            "body_id": body_id,
            "position": _r(obj.position),
            "source_position": _r(source),
            "points": int(keep.sum()),
            "audio": "audio.wav",
            "cloud": "cloud.ply",
            "rms_db": _db(audio),
            "silent": level is None,
            "piece": piece.id,
            "part": play.part,
            "part_name": play.part_name,
            "program": play.program,
            "transpose": play.transpose,
            "articulation": play.articulation,
            "bpm": round(play.bpm, 3),
            "clip_start_s": round(play.start_s + PREROLL_S, 4),
            "microphones": [_r(m) for m in mics],
            "mic_layout": settings.mics,
            "room": {**space.to_json(), "rt60_measured": round(rt60, 4)},
            "sound_source": used[j],
            "source": f"pcsep synth solo: music21 corpus {piece.path}, sound source "
            f"{used[j]}, pyroomacoustics shoebox",
            "split": split,
            "index": start + j,
            "seed": settings.seed,
        }
        _write_json(folder / "meta.json", meta)
