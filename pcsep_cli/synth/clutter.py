"""What else a whole-room scan of a concert holds: audience seating, tables, loudspeakers,
microphone and lighting stands, instrument cases, bits of wall.

None of it plays; the scene step must call every piece ``none`` (or not see a performer in it
at all). Each builder returns an :class:`~pcsep_cli.synth.meshes.Instrument` in its own frame:
origin on the floor under its centre, front towards -y. :func:`draw` picks one kind.
"""

from __future__ import annotations

import numpy as np

from pcsep_cli.synth.meshes import BLACK, SILVER, WOOD, Instrument, Mesh, box, pick, tube, uniform

KINDS: tuple[str, ...] = (
    "seat_row",
    "table",
    "loudspeaker",
    "mic_stand",
    "light_stand",
    "case",
    "wall_piece",
)
"""Clutter kinds, in the order :func:`draw` weighs them (:data:`WEIGHTS`)."""

WEIGHTS: tuple[float, ...] = (0.3, 0.12, 0.14, 0.14, 0.1, 0.14, 0.06)

_FABRIC = [(90, 20, 25), (40, 40, 70), (30, 30, 32), (70, 70, 75), (120, 30, 40)]
_GREY = [(60, 60, 65), (90, 90, 95), (130, 130, 135)]


def _tripod(rng: np.random.Generator, top: float, colour, spread: float) -> list[Mesh]:
    """A pole from 0.25 m to ``top`` on three legs ``spread`` m out."""
    hub = uniform(rng, 0.2, 0.35)
    pole = tube([[0, 0, hub - 0.05], [0, 0, top]], 0.014, colour, sides=6)
    turn = uniform(rng, 0, 2 * np.pi / 3)
    legs = [
        tube([[0, 0, hub], [spread * np.cos(a), spread * np.sin(a), 0.0]], 0.009, colour, 5)
        for a in turn + np.array([0, 2, 4]) * np.pi / 3
    ]
    return [pole, *legs]


def seat_row(rng: np.random.Generator) -> Instrument:
    """A row of 2-8 joined audience seats (folding theatre seats with arms, or plain chairs
    bolted to a beam), 0.5-0.6 m apart, facing -y... that is, towards the stage when turned."""
    n = int(rng.integers(2, 9))
    pitch = uniform(rng, 0.5, 0.6)
    h = uniform(rng, 0.42, 0.48)
    depth = uniform(rng, 0.42, 0.5)
    back_h = uniform(rng, 0.35, 0.55)
    fabric, frame = pick(rng, _FABRIC), pick(rng, [BLACK, *_GREY])
    theatre = rng.random() < 0.6
    parts: list[Mesh] = []
    width = n * pitch
    x0 = -width / 2
    for i in range(n + 1):  # arms (theatre) or legs (chairs) between the seats
        x = x0 + i * pitch
        if theatre:
            parts.append(box([x - 0.03, -depth / 2, 0.0], [x + 0.03, depth / 2, h + 0.2], frame))
        elif i < n:
            for sx in (0.05, pitch - 0.05):
                for sy in (-depth / 2 + 0.04, depth / 2 - 0.04):
                    parts.append(tube([[x + sx, sy, 0.0], [x + sx, sy, h]], 0.012, frame, 5))
    for i in range(n):
        x = x0 + i * pitch
        folded = theatre and rng.random() < 0.5
        if folded:  # the seat flipped up against the back
            parts.append(
                box(
                    [x + 0.04, depth / 2 - 0.12, h - 0.05],
                    [x + pitch - 0.04, depth / 2 - 0.04, h + 0.3],
                    fabric,
                )
            )
        else:
            parts.append(
                box(
                    [x + 0.04, -depth / 2 + 0.03, h - 0.07],
                    [x + pitch - 0.04, depth / 2 - 0.03, h],
                    fabric,
                )
            )
        parts.append(
            box(
                [x + 0.04, depth / 2 - 0.04, h + 0.05],
                [x + pitch - 0.04, depth / 2 + 0.04, h + back_h],
                fabric,
            )
        )
    return Instrument("seat_row", Mesh.concat(parts), {}, {"seats": n, "width": width})


def table(rng: np.random.Generator) -> Instrument:
    """A table: a top 0.6-1.8 m wide at 0.72-1.1 m (a bar table when high), four legs or a
    pedestal, sometimes with a laptop or mixing desk on it."""
    w, d = uniform(rng, 0.6, 1.8), uniform(rng, 0.5, 0.9)
    h = uniform(rng, 0.72, 0.78) if rng.random() < 0.7 else uniform(rng, 0.95, 1.1)
    colour = pick(rng, [*WOOD, BLACK, (220, 220, 215)])
    parts = [box([-w / 2, -d / 2, h - 0.04], [w / 2, d / 2, h], colour)]
    if rng.random() < 0.7:
        for sx in (-1, 1):
            for sy in (-1, 1):
                p = [sx * (w / 2 - 0.05), sy * (d / 2 - 0.05)]
                parts.append(tube([[*p, 0.0], [*p, h - 0.04]], 0.02, colour, 6))
    else:
        parts.append(tube([[0, 0, 0.0], [0, 0, h - 0.04]], 0.04, colour, 8))
        parts.append(tube([[0, 0, 0.0], [0, 0, 0.03]], min(w, d) / 3, colour, 12))
    if rng.random() < 0.4:
        gear_w = uniform(rng, 0.3, min(0.8, w - 0.1))
        parts.append(
            box(
                [-gear_w / 2, -0.2, h],
                [gear_w / 2, 0.15, h + uniform(rng, 0.03, 0.12)],
                pick(rng, _GREY),
            )
        )
    return Instrument("table", Mesh.concat(parts), {}, {"height": h, "width": w})


def loudspeaker(rng: np.random.Generator) -> Instrument:
    """A PA cabinet on a tripod stand (top 1.65-2.5 m), a stack of cabinets on the floor, or a
    wedge monitor."""
    colour = pick(rng, [BLACK, BLACK, (45, 45, 50)])
    style = ["stand", "floor", "wedge"][int(rng.choice(3, p=[0.5, 0.25, 0.25]))]
    if style == "stand":
        w, d, hc = uniform(rng, 0.3, 0.5), uniform(rng, 0.3, 0.45), uniform(rng, 0.45, 0.8)
        base = uniform(rng, 1.2, 1.7)
        parts = [*_tripod(rng, base, colour, uniform(rng, 0.5, 0.7))]
        parts.append(box([-w / 2, -d / 2, base], [w / 2, d / 2, base + hc], colour))
    elif style == "floor":
        w, d = uniform(rng, 0.45, 0.7), uniform(rng, 0.45, 0.7)
        parts, z = [], 0.0
        for _ in range(int(rng.integers(1, 4))):
            hc = uniform(rng, 0.4, 0.8)
            parts.append(box([-w / 2, -d / 2, z], [w / 2, d / 2, z + hc], colour))
            z += hc
    else:
        w, d, hc = uniform(rng, 0.45, 0.65), uniform(rng, 0.35, 0.5), uniform(rng, 0.3, 0.4)
        wedge = box([-w / 2, -d / 2, 0.0], [w / 2, d / 2, hc], colour)
        low = wedge.vertices[:, 1] < 0  # the front slopes down towards the player
        wedge.vertices[low & (wedge.vertices[:, 2] > 0), 2] = hc * 0.35
        parts = [wedge]
    return Instrument("loudspeaker", Mesh.concat(parts), {}, {"style": style})


def mic_stand(rng: np.random.Generator) -> Instrument:
    """A microphone stand: tripod or round base, pole 0.9-1.7 m, often a boom and a mic."""
    colour = pick(rng, [BLACK, BLACK, *SILVER])
    top = uniform(rng, 0.9, 1.7)
    if rng.random() < 0.6:
        parts = _tripod(rng, top, colour, uniform(rng, 0.25, 0.35))
    else:
        parts = [
            tube([[0, 0, 0.0], [0, 0, 0.02]], uniform(rng, 0.12, 0.16), colour, 12),
            tube([[0, 0, 0.0], [0, 0, top]], 0.011, colour, 6),
        ]
    if rng.random() < 0.7:
        a, reach = uniform(rng, 0, 2 * np.pi), uniform(rng, 0.4, 0.8)
        rise = uniform(rng, -0.2, 0.4)
        end = np.array([reach * np.cos(a), reach * np.sin(a), top + rise])
        parts.append(tube([[0, 0, top], end], 0.008, colour, 5))
        tip = end + uniform(rng, 0.12, 0.2) * np.array([np.cos(a), np.sin(a), -0.3])
        parts.append(tube([end, tip], [0.012, 0.022], pick(rng, [BLACK, *SILVER]), 8))
    return Instrument("mic_stand", Mesh.concat(parts), {}, {"height": top})


def light_stand(rng: np.random.Generator) -> Instrument:
    """A lighting stand: tripod, pole 1.8-3 m, one to four lamps (cans) or a bar."""
    colour = pick(rng, [BLACK, *SILVER])
    top = uniform(rng, 1.8, 3.0)
    parts = _tripod(rng, top, colour, uniform(rng, 0.5, 0.8))
    lamps = int(rng.integers(1, 5))
    bar_w = 0.0 if lamps == 1 else uniform(rng, 0.5, 1.2)
    if lamps > 1:
        parts.append(box([-bar_w / 2, -0.02, top], [bar_w / 2, 0.02, top + 0.04], colour))
    for i in range(lamps):
        x = 0.0 if lamps == 1 else -bar_w / 2 + bar_w * i / (lamps - 1)
        tilt = uniform(rng, 0.2, 0.7)
        length = uniform(rng, 0.2, 0.35)
        start = np.array([x, 0.0, top - 0.1])
        parts.append(
            tube(
                [start, start + length * np.array([0, -np.cos(tilt), -np.sin(tilt)])],
                uniform(rng, 0.08, 0.13),
                BLACK,
                10,
            )
        )
    return Instrument("light_stand", Mesh.concat(parts), {}, {"height": top, "lamps": lamps})


def case(rng: np.random.Generator) -> Instrument:
    """An instrument case or gig bag: lying on the floor, or standing on end (a cello or bass
    case, 1.2-1.9 m, is the size of a person)."""
    colour = pick(rng, [BLACK, BLACK, (40, 40, 70), (90, 20, 25), (150, 120, 80), *_GREY])
    kind = ["flat", "standing", "round"][int(rng.choice(3, p=[0.45, 0.3, 0.25]))]
    if kind == "flat":
        length, w, d = uniform(rng, 0.4, 1.3), uniform(rng, 0.2, 0.5), uniform(rng, 0.1, 0.25)
        mesh = box([-length / 2, -w / 2, 0.0], [length / 2, w / 2, d], colour)
    elif kind == "standing":
        length = uniform(rng, 0.8, 1.9)
        widths = np.array([0.5, 0.95, 0.75, 0.9, 0.35]) * uniform(rng, 0.28, 0.45)
        z = np.linspace(0.0, length, 5)
        mesh = tube(np.column_stack([np.zeros(5), np.zeros(5), z]), widths / 2, colour, 12)
        mesh.vertices[:, 1] *= 0.6  # flat front to back
    else:  # a cylindrical case lying down (flute, poster-tube, drum case)
        length, r = uniform(rng, 0.4, 1.0), uniform(rng, 0.06, 0.3)
        mesh = tube([[-length / 2, 0, r], [length / 2, 0, r]], r, colour, 14)
    return Instrument("case", mesh, {}, {"kind": kind})


def wall_piece(rng: np.random.Generator) -> Instrument:
    """A free-standing panel, screen, flight case or column: flat, tall and headless."""
    colour = pick(rng, [(200, 200, 195), (150, 150, 150), BLACK, *WOOD])
    w, d, h = uniform(rng, 0.5, 2.5), uniform(rng, 0.04, 0.6), uniform(rng, 1.0, 2.8)
    return Instrument(
        "wall_piece",
        box([-w / 2, -d / 2, 0.0], [w / 2, d / 2, h], colour),
        {},
        {"width": w, "height": h},
    )


BUILDERS = {
    "seat_row": seat_row,
    "table": table,
    "loudspeaker": loudspeaker,
    "mic_stand": mic_stand,
    "light_stand": light_stand,
    "case": case,
    "wall_piece": wall_piece,
}


def draw(rng: np.random.Generator) -> str:
    """One clutter kind, drawn by :data:`WEIGHTS`."""
    return KINDS[int(rng.choice(len(KINDS), p=np.asarray(WEIGHTS) / sum(WEIGHTS)))]
