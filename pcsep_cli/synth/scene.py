"""Whole synthetic scenes: an ensemble of posed performers, distractors, a room, one sensor.

Layout: 1–5 (or more) performers 1–2.5 m apart (further for a piano or a bass), facing either
a focal point in front (a conductor, an arc as in an orchestra) or roughly the audience;
distractors (a conductor, empty chairs, music stands in front of players); a sensor 2–6 m from
the ensemble at 1–2.5 m height, mostly on the audience side. See ``sensor.py`` for what it
measures and ``performers.py`` for the bodies.

World frame: metres, z up, floor at z = 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pcsep_cli.synth import furniture
from pcsep_cli.synth.instruments import CLASSES
from pcsep_cli.synth.meshes import Mesh
from pcsep_cli.synth.sensor import Returns, Room, SensorSpec, sample_surface, scan

__all__ = [
    "CLASSES",
    "DISTRACTORS",
    "SceneObject",
    "SceneCloud",
    "build_scene",
    "performer_cloud",
]

DISTRACTORS: tuple[str, ...] = ("conductor", "chair", "music_stand")

FLOORS = [(150, 110, 70), (120, 85, 55), (90, 90, 95), (60, 50, 45), (170, 150, 120)]
WALLS = [(210, 205, 195), (180, 170, 160), (120, 100, 80), (60, 60, 65), (225, 225, 225)]


@dataclass
class SceneObject:
    """One performer or distractor of a scene.

    Attributes:
        name: unique in the scene (``"violin_0"``, ``"chair_1"``).
        kind: ``"performer"`` or ``"distractor"``.
        label: instrument class of a performer; ``"none"`` for distractors.
        distractor: ``"conductor"``, ``"chair"`` or ``"music_stand"``; None for performers.
        position: [3] the floor point (z = 0) under the centre of the object's footprint.
        source_position: [3] where its instrument sounds (f-holes, bell, embouchure,
            soundboard); a distractor's is its mouth or its centre.
        body_id: the body (performers and conductors), else None.
        yaw: direction the object faces, radians from world -y towards +x.
        params: what was drawn (instrument dimensions, posture ...).
    """

    name: str
    kind: str
    label: str
    distractor: str | None
    position: np.ndarray
    source_position: np.ndarray
    body_id: int | None
    yaw: float = 0.0
    params: dict[str, float | str] = field(default_factory=dict)


@dataclass
class SceneCloud:
    """A scanned scene.

    Attributes:
        xyz: float64 [N, 3] metres, z up, floor at z = 0.
        rgb: uint8 [N, 3].
        object_index: int32 [N]: index into ``objects``; -1 for floor, walls, ceiling.
        objects: the scene's performers and distractors.
        sensor_position: [3].
        sensor_target: [3] the point the sensor looks at.
        room: [2, 3] the room box's corners (floor-to-ceiling), None without walls.
    """

    xyz: np.ndarray
    rgb: np.ndarray
    object_index: np.ndarray
    objects: list[SceneObject]
    sensor_position: np.ndarray
    sensor_target: np.ndarray
    room: np.ndarray | None = None


@dataclass
class _Placed:
    mesh: Mesh  # local frame
    obj: SceneObject
    sound: np.ndarray  # local
    centre: np.ndarray  # local xy of the footprint's centre
    radius: float


def _yaw_matrix(yaw: float, offset: np.ndarray) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    m = np.eye(4)
    m[:3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
    m[:3, 3] = offset
    return m


def _footprint(mesh: Mesh) -> tuple[np.ndarray, float]:
    return _circle(mesh.vertices[:, :2])


def _circle(xy: np.ndarray) -> tuple[np.ndarray, float]:
    """``(centre [2], radius)``: the middle of the points' extents and the farthest point."""
    centre = (xy.min(0) + xy.max(0)) / 2
    return centre, float(np.linalg.norm(xy - centre, axis=1).max())


def _make_object(
    rng: np.random.Generator,
    label: str,
    distractor: str | None,
    body_id: int | None,
    name: str,
    seat: str | None = None,
) -> _Placed:
    from pcsep_cli.synth.performers import make_performer

    if label != "none":
        performer = make_performer(rng, label, int(body_id), seated=seat == "chair" or None)
        mesh, sound, params = performer.mesh, performer.sound, performer.params
        kind, body = "performer", int(body_id)
    elif distractor == "conductor":
        performer = make_performer(rng, "none", int(body_id))
        mesh, sound, params = performer.mesh, performer.sound, performer.params
        if params.get("mode") == "conducting" and rng.random() < 0.4:
            stand = furniture.podium(rng)
            h = float(stand.params["height"])
            mesh = Mesh.concat([mesh.translated(np.array([0, 0, h])), stand.mesh])
            sound = sound + [0, 0, h]
        kind, body = "distractor", int(body_id)
    elif distractor in ("chair", "music_stand"):
        piece = furniture.chair(rng) if distractor == "chair" else furniture.music_stand(rng)
        mesh, params = piece.mesh, dict(piece.params)
        sound = mesh.vertices.mean(0)
        kind, body = "distractor", None
    else:
        raise ValueError(f"unknown distractor {distractor!r}; expected one of {DISTRACTORS}")
    centre, radius = _footprint(mesh)
    obj = SceneObject(name, kind, label, distractor, np.zeros(3), np.zeros(3), body, 0.0, params)
    return _Placed(mesh, obj, np.asarray(sound, float), centre, radius)


def _free(centres: list[np.ndarray], radii: list[float], xy: np.ndarray, r: float) -> bool:
    return all(
        np.linalg.norm(xy - c) >= max(1.0, r + q + 0.05)
        for c, q in zip(centres, radii, strict=True)
    )


def _arc_layout(rng: np.random.Generator, radii: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Players on arcs around a focus in front (-y), as chamber groups and orchestras sit,
    filling outwards from the middle, a new row behind when an arc is full."""
    radius = rng.uniform(2.0, 3.5)
    focus = np.array([0.0, -radius])
    centres: list[np.ndarray] = []
    placed: list[float] = []
    ends = [0.0, 0.0]  # arc length used on each side of the current row
    for r in radii:
        for _ in range(50):
            if not centres:
                angle = 0.0
            else:
                side = int(rng.integers(2)) if ends[0] == ends[1] else int(ends[1] < ends[0])
                gap = rng.uniform(max(1.0, 2 * r + 0.1), max(1.8, 2 * r + 0.5))
                if max(ends) + gap > radius * np.deg2rad(75):  # this arc is full: next row
                    radius += rng.uniform(1.2, 1.8)
                    ends = [-gap / 2, -gap / 2]
                ends[side] += gap
                angle = (ends[side] if side else -ends[side]) / radius
            xy = focus + radius * np.array([np.sin(angle), np.cos(angle)])
            if _free(centres, placed, xy, r):
                break
            ends = [e + 0.3 for e in ends]
        centres.append(xy)
        placed.append(r)
    return np.array(centres), focus


def _cluster_layout(rng: np.random.Generator, radii: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """A loose group (a band, a jazz combo): each player 1–2.5 m from one already placed."""
    centres: list[np.ndarray] = []
    for r in radii:
        xy = np.zeros(2)
        for _ in range(200):
            if not centres:
                break
            mean = np.mean(centres, axis=0)
            j = int(np.argmin([np.linalg.norm(c - mean) + rng.uniform(0, 1) for c in centres]))
            near = max(1.0, r + radii[j] + 0.1)
            angle = rng.uniform(-np.pi, np.pi)
            xy = centres[j] + rng.uniform(near, max(2.5, near + 0.6)) * np.array(
                [np.cos(angle), np.sin(angle)]
            )
            if _free(centres, radii[: len(centres)], xy, r):
                break
        centres.append(xy)
    arr = np.array(centres)
    return arr, arr.mean(0) + np.array([0.0, -(np.ptp(arr[:, 1]) / 2 + rng.uniform(1.5, 4.0))])


def build_scene(
    rng: np.random.Generator,
    instruments: list[str],
    *,
    distractors: Sequence[str] = (),
    body_ids: Sequence[int] | None = None,
    full_surface: bool = False,
    walls: bool = True,
    sensor: SensorSpec | None = None,
    surface_density: float = 4000.0,
    clutter: int = 0,
    views: int = 1,
) -> SceneCloud:
    """Build and scan one scene.

    Args:
        rng: draws everything but the bodies' shapes.
        instruments: one class per performer (``CLASSES``), in the order of ``objects``.
        distractors: ``"conductor"``, ``"chair"``, ``"music_stand"`` (repeats allowed),
            placed after the performers.
        body_ids: one per performer then one per distractor (chairs and stands ignore
            theirs); drawn when None.
        full_surface: sample every surface evenly (``surface_density`` points/m²) instead of
            simulating the sensor.
        walls: a box room with walls and ceiling around the scene (else floor only).
        sensor: the sensor; drawn per scene (noise, dropout) at 0.15° when None.
        surface_density: points per m² for ``full_surface``.
        clutter: pieces of :mod:`~pcsep_cli.synth.clutter` (audience seat rows in front,
            tables, loudspeakers, stands, cases, panels elsewhere in the room), placed after
            the sensor, away from players and the sensor; a piece with no room is left out.
        views: scans merged into the cloud (registered views, as a terrestrial LiDAR survey
            gives): the first from the sensor, each other one from a new place, registered
            to within 5 mm.

    Returns:
        The scanned scene; ``objects`` holds the performers first, then the distractors, then
        the clutter (label ``none``, ``distractor`` its kind).

    Raises:
        ValueError: unknown instrument or distractor, wrong number of body ids.
    """
    unknown = [c for c in instruments if c not in CLASSES]
    if unknown or not instruments:
        raise ValueError(f"instruments must be 1+ of {CLASSES}, got {list(instruments)}")
    bad = [d for d in distractors if d not in DISTRACTORS]
    if bad:
        raise ValueError(f"unknown distractors {bad}; expected some of {DISTRACTORS}")
    total = len(instruments) + len(distractors)
    if body_ids is None:
        body_ids = [int(b) for b in rng.integers(0, 1_000_000, total)]
    if len(body_ids) != total:
        raise ValueError(f"body_ids has {len(body_ids)} ids for {total} performers+distractors")
    counts: dict[str, int] = {}

    def name(base: str) -> str:
        counts[base] = counts.get(base, 0) + 1
        return f"{base}_{counts[base] - 1}"

    players = [_make_object(rng, c, None, body_ids[i], name(c)) for i, c in enumerate(instruments)]
    others = [
        _make_object(rng, "none", d, body_ids[len(instruments) + i], name(d))
        for i, d in enumerate(distractors)
    ]
    n = len(players)
    chairs = [n + i for i, o in enumerate(others) if o.obj.distractor == "chair"]
    order = list(range(n)) + chairs  # index in ``objects`` of each placed item
    everything = players + others
    radii = [everything[k].radius for k in order]
    arc = rng.random() < 0.7
    centres, focus = (_arc_layout if arc else _cluster_layout)(rng, radii)
    yaws = []
    for xy in centres:
        if arc:  # face the focus (conductor, audience centre)
            to = focus - xy
            yaws.append(float(np.arctan2(to[0], -to[1]) + rng.uniform(-0.2, 0.2)))
        else:
            yaws.append(float(rng.uniform(-0.6, 0.6)))
    taken = [c for c in centres]
    for i, o in enumerate(others):
        if o.obj.distractor == "chair":
            continue
        if o.obj.distractor == "conductor" and _free(taken, radii, focus, o.radius):
            xy, yaw = focus + rng.normal(0, 0.15, 2), float(np.pi + rng.uniform(-0.3, 0.3))
        elif o.obj.distractor == "conductor":  # a second person: beside the group
            for _ in range(100):
                j = int(rng.integers(len(taken)))
                angle = rng.uniform(-np.pi, np.pi)
                xy = taken[j] + rng.uniform(1.2, 2.5) * np.array([np.cos(angle), np.sin(angle)])
                if _free(taken, radii, xy, o.radius):
                    break
            yaw = float(rng.uniform(-np.pi, np.pi))
        else:  # a music stand in front of a player, facing them
            j = int(rng.integers(n))
            ahead = np.array([np.sin(yaws[j]), -np.cos(yaws[j])])
            xy = centres[j] + ahead * (players[j].radius + rng.uniform(0.1, 0.4))
            yaw = yaws[j]
        centres = np.vstack([centres, xy])
        taken.append(xy)
        radii.append(o.radius)
        yaws.append(yaw)
        order.append(n + i)
    placed = [everything[k] for k in order]
    return _finish(
        rng,
        placed,
        centres,
        yaws,
        order,
        full_surface,
        walls,
        sensor,
        surface_density,
        clutter,
        views,
    )


def _put(p: _Placed, xy: np.ndarray, yaw: float, k: int, meshes: list, face_obj: list) -> None:
    """Move ``p`` to ``xy`` facing ``yaw``; its world mesh and face labels (``k``) appended."""
    local = _yaw_matrix(yaw, np.zeros(3))[:3, :3]
    offset = np.array([*xy, 0.0]) - local @ np.array([*p.centre, 0.0])
    m = _yaw_matrix(yaw, offset)
    mesh = p.mesh.transformed(m)
    meshes.append(mesh)
    face_obj.append(np.full(len(mesh.faces), k, np.int32))
    p.obj.position = np.array([*xy, 0.0])
    p.obj.source_position = m[:3, :3] @ p.sound + m[:3, 3]
    p.obj.yaw = yaw


def _finish(
    rng, placed, centres, yaws, order, full_surface, walls, sensor, density, clutter=0, views=1
):
    meshes, face_obj, objects = [], [], [None] * len(placed)
    for p, xy, yaw, k in zip(placed, centres, yaws, order, strict=True):
        _put(p, xy, yaw, k, meshes, face_obj)
        objects[k] = p.obj
    mesh = Mesh.concat(meshes)
    lo, hi = mesh.vertices.min(0), mesh.vertices.max(0)
    centre = (lo + hi) / 2
    radii = np.array([p.radius for p in placed])
    origin, target = _draw_sensor(rng, centres, radii, centre)
    if clutter:
        for p, xy, yaw in _place_clutter(rng, clutter, np.asarray(centres), radii, origin, lo):
            _put(p, xy, yaw, len(objects), meshes, face_obj)
            objects.append(p.obj)
        mesh = Mesh.concat(meshes)
        lo, hi = mesh.vertices.min(0), mesh.vertices.max(0)
    face_object = np.concatenate(face_obj)
    room_box = None
    if walls:
        pad = rng.uniform(0.5, 3.0, 4)
        span_lo = np.minimum(lo[:2], origin[:2]) - pad[:2] - 0.3
        span_hi = np.maximum(hi[:2], origin[:2]) + pad[2:] + 0.3
        ceiling = max(rng.uniform(3.0, 8.0), hi[2] + 0.5, origin[2] + 0.5)
        room_box = np.array([[*span_lo, 0.0], [*span_hi, ceiling]])
        room = Room(room_box[0], room_box[1], _pick(rng, FLOORS), _pick(rng, WALLS))
        crop = None
    else:
        room = Room(None, None, _pick(rng, FLOORS))
        margin = rng.uniform(0.8, 2.0)
        crop = (
            np.array([lo[0] - margin, lo[1] - margin, -0.1]),
            np.array([hi[0] + margin, hi[1] + margin, hi[2] + 1.0]),
        )
    if full_surface:
        floor_crop = crop or (
            np.array([lo[0] - 1, lo[1] - 1, 0]),
            np.array([hi[0] + 1, hi[1] + 1, 0]),
        )
        ret = sample_surface(rng, mesh, face_object, density, room, floor_crop)
    else:
        spec = sensor or SensorSpec.draw(rng)
        ret = scan(rng, mesh, face_object, room, origin, target, spec, crop)
        if views > 1:
            ret = _more_views(rng, ret, views - 1, mesh, face_object, room, crop, spec, room_box)
    return SceneCloud(ret.xyz, ret.rgb, ret.object_index, objects, origin, target, room_box)


def _footprints(mesh: Mesh, face_object: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """``(centre [2], radius)`` of each object's footprint circle in the world mesh."""
    return [
        _circle(mesh.vertices[np.unique(mesh.faces[face_object == k])][:, :2])
        for k in np.unique(face_object)
    ]


def _more_views(rng, first, extra, mesh, face_object, room, crop, spec, room_box):
    """``first`` and up to ``extra`` more scans of the scene merged: each from a place 1 m
    clear of every object's footprint circle (inside the room; a view that finds none is
    left out), aimed at the room's middle, registered to the first with an error of a few
    millimetres; coarser (0.15-0.3 degrees) since they cover the room."""
    parts = [first]
    verts = mesh.vertices
    box = room_box if room_box is not None else np.stack([verts.min(0) - 1, verts.max(0) + 1])
    middle = (box[0] + box[1]) / 2
    feet = _footprints(mesh, face_object)
    for _ in range(extra):
        for _attempt in range(100):
            xy = rng.uniform(box[0][:2] + 0.5, box[1][:2] - 0.5)
            if all(np.linalg.norm(xy - c) > r + 1.0 for c, r in feet):
                break
        else:
            continue  # no clear spot: one view fewer
        origin = np.array([*xy, rng.uniform(1.2, 2.0)])
        target = np.array([*(middle[:2] + rng.normal(0, 0.5, 2)), rng.uniform(0.6, 1.2)])
        view = SensorSpec.draw(rng, resolution_deg=float(rng.uniform(0.15, 0.3)))
        ret = scan(rng, mesh, face_object, room, origin, target, view, crop)
        ret.xyz = ret.xyz + rng.normal(0, 0.003, 3)
        parts.append(ret)
    return Returns(
        np.concatenate([r.xyz for r in parts]),
        np.concatenate([r.rgb for r in parts]),
        np.concatenate([r.object_index for r in parts]),
        np.concatenate([r.distance for r in parts]),
    )


def _place_clutter(rng, count, centres, radii, sensor, lo):
    """Up to ``count`` clutter pieces as ``(placed, xy, yaw)``: seat rows in a block in front
    of the ensemble (towards -y, facing it), placed first; the rest 1.2-7 m from the
    ensemble's centre. Every footprint stays 0.4 m clear of the others (a row's is its
    rectangle, another piece's its circle) and 1 m clear of the sensor; a piece with no room
    is left out."""
    from pcsep_cli.synth import clutter as kinds

    pieces, counts = [], {}
    for _ in range(count):
        kind = kinds.draw(rng)
        piece = kinds.BUILDERS[kind](rng)
        counts[kind] = counts.get(kind, 0) + 1
        obj = SceneObject(
            f"{kind}_{counts[kind] - 1}",
            "distractor",
            "none",
            kind,
            np.zeros(3),
            np.zeros(3),
            None,
            0.0,
            dict(piece.params),
        )
        centre, radius = _footprint(piece.mesh)
        pieces.append(_Placed(piece.mesh, obj, piece.mesh.vertices.mean(0), centre, radius))
    middle = centres.mean(0)
    front = float(lo[1]) - rng.uniform(1.5, 3.0)
    pitch = rng.uniform(0.85, 1.0)
    row_x = middle[0] + rng.uniform(-1.0, 1.0)
    out, boxes = [], []  # boxes: (xy, half extents) of the rows placed
    rows = [p for p in pieces if p.obj.distractor == "seat_row"]
    for k, p in enumerate(rows):
        xy = np.array([row_x + rng.normal(0, 0.15), front - k * pitch])
        yaw = float(np.pi + rng.normal(0, 0.03))
        v = p.mesh.vertices[:, :2] - p.centre
        half = np.abs(v).max(axis=0)
        if _box_distance(sensor[:2], xy, half) < 1.0:
            continue  # the sensor stands in or beside this row
        if any(_box_distance(c, xy, half) < r + 0.5 for c, r in zip(centres, radii, strict=True)):
            continue
        boxes.append((xy, half))
        out.append((p, xy, yaw))
    taken_c, taken_r = [*centres], [*radii]
    for p in pieces:
        if p.obj.distractor == "seat_row":
            continue
        for _attempt in range(60):
            angle = rng.uniform(-np.pi, np.pi)
            xy = middle + rng.uniform(1.2, 7.0) * np.array([np.cos(angle), np.sin(angle)])
            if (
                _free(taken_c, taken_r, xy, p.radius + 0.4)
                and np.linalg.norm(sensor[:2] - xy) > p.radius + 1.0
                and all(_box_distance(xy, c, h) > p.radius + 0.4 for c, h in boxes)
            ):
                break
        else:
            continue
        taken_c.append(xy)
        taken_r.append(p.radius)
        out.append((p, xy, float(rng.uniform(-np.pi, np.pi))))
    return out


def _box_distance(point: np.ndarray, centre: np.ndarray, half: np.ndarray) -> float:
    """Distance from ``point`` [2] to an axis-aligned rectangle (``centre`` [2], ``half``
    extents [2]); 0 inside. Rows turn by a few degrees at most: axis-aligned is close."""
    gap = np.maximum(np.abs(np.asarray(point) - centre) - half, 0.0)
    return float(np.linalg.norm(gap))


def _pick(rng: np.random.Generator, options: list) -> tuple[int, int, int]:
    rgb = np.asarray(options[int(rng.integers(len(options)))], float) * rng.uniform(0.85, 1.1)
    return tuple(int(c) for c in np.clip(rgb, 0, 255))


def _draw_sensor(rng, centres, radii, centre) -> tuple[np.ndarray, np.ndarray]:
    """Sensor 2–6 m from the ensemble's centre, 1–2.5 m high, mostly on the audience side
    (-y), never closer than 1 m to an object's footprint (1.3–1.5 m from a player)."""
    for attempt in range(200):
        if rng.random() < 0.8:
            azimuth = -np.pi / 2 + rng.uniform(-1.2, 1.2)
        else:
            azimuth = rng.uniform(-np.pi, np.pi)
        # a large ensemble may leave no clear spot that close: step back a little each try
        dist = rng.uniform(2.0, 6.0) + 0.03 * attempt
        xy = centre[:2] + dist * np.array([np.cos(azimuth), np.sin(azimuth)])
        clear = np.linalg.norm(centres - xy, axis=1) - radii
        if clear.min() > 1.0:
            break
    origin = np.array([*xy, rng.uniform(1.0, 2.5)])
    target = np.array([*(centre[:2] + rng.normal(0, 0.2, 2)), rng.uniform(0.6, 1.2)])
    return origin, target


def performer_cloud(
    rng: np.random.Generator,
    label: str,
    *,
    body_id: int,
    distractor: str | None = None,
    full_surface: bool = False,
    sensor: SensorSpec | None = None,
) -> SceneCloud:
    """One performer (or, for ``label == "none"``, one distractor) alone before a sensor.

    The training pool keeps the points with ``object_index == 0``.

    Args:
        rng: draws everything but the body.
        label: an instrument class, or ``"none"``.
        body_id: the body (ignored by chairs and stands).
        distractor: for ``"none"``: ``"conductor"``, ``"chair"``, ``"music_stand"`` (drawn
            when None). For an instrument: ``"chair"`` seats the player on a chair when the
            instrument can be played seated (all but the double bass); None draws the
            posture as usual.
        full_surface: sample surfaces evenly instead of simulating the sensor.
        sensor: the sensor (drawn when None).

    Returns:
        A scene with one object, floor only.

    Raises:
        ValueError: unknown label or distractor.
    """
    if label == "none":
        if distractor is None:
            distractor = str(rng.choice(DISTRACTORS, p=[0.6, 0.2, 0.2]))
        p = _make_object(rng, "none", distractor, body_id, f"{distractor}_0")
    elif label in CLASSES:
        if distractor not in (None, "chair"):
            raise ValueError(f"a {label} player can only be given a 'chair', not {distractor!r}")
        p = _make_object(rng, label, None, body_id, f"{label}_0", seat=distractor)
    else:
        raise ValueError(f"unknown label {label!r}; expected one of {CLASSES} or 'none'")
    # As in whole scenes, the sensor mostly sees players from the front (it stands on the
    # audience side, -y, and they face it), sometimes from anywhere.
    spread = np.pi / 3 if rng.random() < 0.75 else np.pi
    yaw = float(rng.uniform(-spread, spread))
    return _finish(rng, [p], np.zeros((1, 2)), [yaw], [0], full_surface, False, sensor, 4000.0)
