"""Procedural meshes of the ten instrument classes and of the furniture around musicians.

Every builder draws its dimensions per sample from the range real instruments span and returns
an :class:`Instrument` in its own local frame, in metres, with named anchor points (where the
hands go, where it touches the floor or the player, where it sounds). ``performers.py`` places
it against a posed body.

Local frames:
    * bowed strings and guitar: ``y`` runs along the instrument from its bottom (endpin or
      tail) to the scroll/headstock, ``z`` is the normal of the top plate, ``x = y × z``.
    * winds: the mouthpiece is the origin; see each builder for the axis it points along.

Each class has styles that differ in shape (``styles.py``: a soprano saxophone is straight, a
bass clarinet has a crook and an upturned bell); a builder given ``style=None`` draws among the
styles pcsep-base was trained on exactly as it always did.

Furniture (chairs, stands) lives in ``furniture.py``, mesh primitives in ``meshes.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pcsep_cli.classes import INSTRUMENTS
from pcsep_cli.synth import styles
from pcsep_cli.synth.meshes import (
    BLACK,
    BRASS,
    EBONY,
    SILVER,
    WOOD,
    Instrument,
    Mesh,
    arc,
    box,
    loft,
    pick,
    profile_outline,
    tube,
    uniform,
)

CLASSES: tuple[str, ...] = INSTRUMENTS


def _slab(
    length: float, stations: list[tuple[float, float]], height: float, rgb: tuple[int, int, int]
) -> Mesh:
    """A flat body: the outline of ``stations`` (half-widths along ``y``, as
    :func:`~pcsep_cli.synth.meshes.profile_outline`) extruded from z = 0 to ``height``."""
    return loft(
        profile_outline(length, stations),
        np.array([0.0, height]),
        np.array([1.0, 1.0]),
        rgb,
        centre=np.array([0.0, 0.5 * length]),
    )


def _pickups(length: float, depth: float, at: tuple[float, ...]) -> list[Mesh]:
    """An electric guitar's pickups across a body ``depth`` thick, at fractions ``at`` of it."""
    return [
        box([-0.045, length * f - 0.012, depth], [0.045, length * f + 0.012, depth + 0.012], BLACK)
        for f in at
    ]


# --------------------------------------------------------------------------- bowed strings


@dataclass(frozen=True)
class _BowedSpec:
    body: tuple[float, float]  # body length range
    lower: float  # lower bout / body length
    upper: float
    waist: float
    rib: float  # rib height / body length
    arch: float
    neck: float  # neck (nut to body) / body length
    scroll: float
    bridge: float  # bridge height / body length
    bow: float  # bow length
    sloped: bool  # viol-shaped shoulders (double bass)


_BOWED = {
    "violin": _BowedSpec((0.345, 0.36), 0.58, 0.47, 0.31, 0.09, 0.05, 0.37, 0.28, 0.092, 0.75, 0),
    "cello": _BowedSpec((0.74, 0.77), 0.59, 0.46, 0.31, 0.16, 0.03, 0.37, 0.23, 0.12, 0.72, 0),
    "double_bass": _BowedSpec((1.05, 1.16), 0.60, 0.47, 0.35, 0.17, 0.02, 0.40, 0.2, 0.15, 0.7, 1),
}


def bowed(name: str, rng: np.random.Generator, style: str | None = None) -> Instrument:
    """Violin, cello or double bass: body, neck, fingerboard, scroll, endpin and bow; or
    (``style="electric"``) an electric one: a narrow solid spine where the body was, with a
    thin frame tracing the bouts on the chin side (-x) or on both sides (as silent violins and
    stick basses have).

    Anchors: ``chin`` (chin rest), ``back_top`` (back plate at the top of the body, where a
    cello rests against the chest), ``endpin`` (tip), ``bridge`` (bowing point on the
    strings), ``neck_body`` / ``nut`` (the neck's two ends, on the fingerboard), ``sound``
    (between the f-holes). ``style="solid"``: a solid-body electric one, a paddle 45-65 % of
    the lower bout wide with no bouts and no frame.
    """
    spec = _BOWED[name]
    length = uniform(rng, *spec.body)
    lower = length * spec.lower * uniform(rng, 0.95, 1.05)
    upper = length * spec.upper * uniform(rng, 0.95, 1.05)
    waist = length * spec.waist * uniform(rng, 0.93, 1.07)
    rib = length * spec.rib * uniform(rng, 0.92, 1.08)
    wood = pick(rng, WOOD)
    arch = length * spec.arch
    top = rib + arch
    bridge_h = length * spec.bridge
    nut = np.array([0.0, length + length * spec.neck, top + bridge_h * 0.55])
    if style == "electric":
        body = _electric_bowed_body(length, lower, upper, waist, top, rng)
    elif style == "solid":
        body = _solid_bowed_body(length, lower, top, rng)
    else:
        body = _bowed_body(spec, length, lower, upper, waist, rib, wood)
    parts = [
        body,
        *_bowed_neck(spec, length, top, arch, bridge_h, nut, wood),
        *_bowed_fittings(length, top, arch, bridge_h),
    ]
    anchors = {
        "chin": np.array([-lower * 0.18, length * 0.05, top + length * 0.04]),
        "back_top": np.array([0.0, length * 0.97, 0.0]),
        "bridge": np.array([0.0, length * 0.5, top + bridge_h * 0.9]),
        "neck_body": np.array([0.0, length, nut[2]]),
        "nut": nut,
        "sound": np.array([0.0, length * 0.45, top]),
        "endpin": np.array([0.0, 0.0, rib / 2]),
    }
    if name == "violin":
        parts.append(_chin_rest(length, lower, top))
    params: dict[str, float | str] = {
        "body_length": length,
        "lower_bout": lower,
        "rib": rib,
        "endpin": 0.0,  # a cello's or bass's: the player sets it, performers.py extends it
    }
    if style in ("electric", "solid"):
        params["variant"] = style
    bow, bow_len = _bow(spec, name, rng)
    return Instrument(name, Mesh.concat(parts), anchors, params | {"bow_length": bow_len}, bow=bow)


def _bowed_body(
    spec: _BowedSpec,
    length: float,
    lower: float,
    upper: float,
    waist: float,
    rib: float,
    wood: tuple[int, int, int],
) -> Mesh:
    """The body: the bouts' outline lofted up the ribs to the arched top plate."""
    top_upper = upper / 2 if not spec.sloped else upper * 0.32
    stations = [
        (0.0, 0.0),
        (0.03, lower * 0.3),
        (0.12, lower * 0.46),
        (0.24, lower / 2),
        (0.38, lower * 0.42),
        (0.5, waist / 2),
        (0.62, upper * 0.42),
        (0.76, upper / 2),
        (0.9, top_upper * 0.85 if spec.sloped else upper * 0.43),
        (0.97, upper * 0.28),
        (1.0, 0.0),
    ]
    outline = profile_outline(length, stations)
    arch = length * spec.arch
    return loft(
        outline,
        np.array([0.0, rib, rib + arch * 0.6, rib + arch]),
        np.array([0.97, 1.0, 0.85, 0.55]),
        wood,
        centre=np.array([0.0, 0.5 * length]),
    )


def _electric_bowed_body(
    length: float,
    lower: float,
    upper: float,
    waist: float,
    top: float,
    rng: np.random.Generator,
) -> Mesh:
    """An electric bowed instrument's body: a spine 22-30 % of the lower bout wide, up to where
    the top plate would be (the bridge and a violin's chin rest sit on it), and a tube tracing
    the bouts on the chin side (-x) or on both sides."""
    spine_w = lower * uniform(rng, 0.22, 0.30)
    colour = pick(rng, [BLACK, (150, 20, 25), (35, 60, 140), (235, 235, 230), (120, 70, 35)])
    spine = _slab(length, [(0.0, spine_w * 0.3), (0.1, spine_w / 2), (0.9, spine_w / 2),
                           (1.0, spine_w * 0.3)], top, colour)  # fmt: skip
    stations = [(0.06, lower * 0.4), (0.24, lower / 2), (0.5, waist / 2), (0.76, upper / 2),
                (0.94, upper * 0.35)]  # fmt: skip
    u = np.linspace(0.06, 0.94, 14)
    half = np.interp(u, [a for a, _ in stations], [w for _, w in stations])
    radius = length * 0.012
    height = top * 0.5
    sides = (-1.0, 1.0) if rng.random() < 0.5 else (-1.0,)
    frames = []
    for side in sides:
        path = np.column_stack([side * half, u * length, np.full_like(u, height)])
        path = np.vstack([[side * spine_w * 0.4, 0.06 * length, height], path,
                          [side * spine_w * 0.4, 0.94 * length, height]])  # fmt: skip
        frames.append(tube(path, radius, colour, sides=6))
    return Mesh.concat([spine, *frames])


def _solid_bowed_body(length: float, lower: float, top: float, rng: np.random.Generator) -> Mesh:
    """A solid-body electric bowed instrument: a paddle narrowing from its rounded foot to the
    neck, as thick as the body's ribs and arch, in a lacquer colour."""
    width = lower * uniform(rng, 0.45, 0.65)
    colour = pick(rng, [BLACK, (150, 20, 25), (35, 60, 140), (235, 235, 230), (200, 140, 60)])
    stations = [(0.0, width * 0.25), (0.08, width * 0.47), (0.3, width / 2), (0.7, width * 0.36),
                (0.92, width * 0.25), (1.0, width * 0.12)]  # fmt: skip
    return _slab(length, stations, top, colour)


def _bowed_neck(
    spec: _BowedSpec,
    length: float,
    top: float,
    arch: float,
    bridge_h: float,
    nut: np.ndarray,
    wood: tuple[int, int, int],
) -> list[Mesh]:
    """Fingerboard, neck, pegbox and scroll."""
    fb_end = np.array([0.0, length * 0.62, top + bridge_h * 0.8])
    width_nut, width_end = length * 0.068, length * 0.12
    # Fingerboard: a flat tapered slab from the nut to its end over the top plate.
    fb = tube(
        np.linspace(fb_end, nut, 6),
        np.linspace(width_end / 2, width_nut / 2, 6),
        EBONY,
        sides=6,
    )
    fb.vertices[:, 2] = np.clip(fb.vertices[:, 2], nut[2] - width_nut * 0.6, None)
    neck = tube(
        [nut - [0, 0, width_nut * 0.5], [0, length * 0.98, top - arch * 0.5]],
        width_nut * 0.55,
        wood,
        sides=8,
    )
    scroll_len = length * spec.scroll
    pegbox_end = nut + np.array([0.0, scroll_len * 0.75, -scroll_len * 0.15])
    pegbox = tube([nut, pegbox_end], [width_nut * 0.45, width_nut * 0.5], wood, sides=8)
    scroll = tube(
        arc(
            pegbox_end + [0, 0, scroll_len * 0.12],
            [0, 0, -scroll_len * 0.12],
            [0, scroll_len * 0.12, 0],
            0,
            1.6 * np.pi,
            7,
        ),
        width_nut * 0.5,
        wood,
        sides=8,
    )
    return [fb, neck, pegbox, scroll]


def _bowed_fittings(length: float, top: float, arch: float, bridge_h: float) -> list[Mesh]:
    """The bridge and the tailpiece."""
    width_end = length * 0.12
    bridge = box(
        [-width_end * 0.45, length * 0.44, top - arch * 0.2],
        [width_end * 0.45, length * 0.455, top + bridge_h],
        (210, 180, 130),
    )
    tail_end = np.array([0.0, length * 0.03, top * 0.9])
    tailpiece = tube(
        [tail_end, [0.0, length * 0.3, top + bridge_h * 0.45]],
        [width_end * 0.2, width_end * 0.35],
        EBONY,
        sides=6,
    )
    return [bridge, tailpiece]


def _chin_rest(length: float, lower: float, top: float) -> Mesh:
    """A violin's chin rest, over the bottom of the body."""
    return box(
        [-lower * 0.38, length * 0.0, top * 0.8],
        [lower * 0.05, length * 0.12, top + length * 0.035],
        EBONY,
    )


def _bow(spec: _BowedSpec, name: str, rng: np.random.Generator) -> tuple[Mesh, float]:
    """The bow (stick, hair and frog; frog at the origin, stick along +x) and its length."""
    bow_len = spec.bow * uniform(rng, 0.97, 1.03)
    stick = tube(
        np.column_stack([np.linspace(0, bow_len, 8), np.zeros(8), np.linspace(0.02, 0.012, 8)]),
        np.linspace(0.0055, 0.0035, 8) * (1.4 if name == "double_bass" else 1.0),
        (60, 30, 20),
        sides=6,
    )
    hair = box([0.02, -0.005, -0.002], [bow_len, 0.005, 0.0], (235, 230, 215))
    frog = box([-0.01, -0.008, -0.01], [0.04, 0.008, 0.022], BLACK)
    return Mesh.concat([stick, hair, frog]), bow_len


def endpin(anchor: np.ndarray, length: float) -> Mesh:
    """The endpin of a cello or bass: a rod ``length`` m down the -y axis from ``anchor``."""
    tip = anchor - np.array([0.0, length, 0.0])
    return tube([anchor + [0, 0.02, 0], tip], [0.006, 0.004], SILVER[1], sides=6)


# --------------------------------------------------------------------------- guitar


def guitar(rng: np.random.Generator, style: str | None = None) -> Instrument:
    """Classical or steel-string acoustic guitar (body 0.47–0.52 m, total 0.98–1.04 m), or
    (``style="electric"``) a solid-body electric guitar.

    Anchors: ``waist_low`` (lower edge of the waist, on the thigh), ``soundhole``, ``pluck``
    (right-hand point over the strings), ``neck_body``, ``nut``, ``sound``.
    """
    if style == "electric":
        return _electric_guitar(rng)
    if style == "semi":
        return _semi_hollow_guitar(rng)
    length = uniform(rng, 0.47, 0.52)
    lower = uniform(rng, 0.36, 0.40)
    upper = lower * uniform(rng, 0.74, 0.8)
    waist = lower * uniform(rng, 0.6, 0.68)
    depth = uniform(rng, 0.09, 0.12)
    stations = [
        (0.0, 0.0),
        (0.02, lower * 0.3),
        (0.1, lower * 0.44),
        (0.26, lower / 2),
        (0.45, lower * 0.4),
        (0.56, waist / 2),
        (0.72, upper / 2),
        (0.9, upper * 0.43),
        (0.98, upper * 0.24),
        (1.0, 0.0),
    ]
    wood = pick(rng, [(190, 140, 80), (160, 100, 50), (110, 60, 30), (40, 30, 25)])
    body = _slab(length, stations, depth, wood)
    hole = tube(
        [[0, length * 0.64, depth], [0, length * 0.64, depth + 0.001]], 0.043, (15, 10, 8), 16
    )
    neck_len = uniform(rng, 0.3, 0.34)
    nut = np.array([0.0, length + neck_len, depth + 0.008])
    neck = tube(
        [[0, length * 0.98, depth - 0.012], nut - [0, 0, 0.015]],
        [0.03, 0.026],
        (110, 60, 30),
        sides=8,
    )
    head_end = nut + np.array([0.0, 0.19, -0.04])
    headstock = tube([nut - [0, 0, 0.012], head_end], 0.035, (110, 60, 30), sides=4)
    bridge = box([-0.08, length * 0.2, depth], [0.08, length * 0.24, depth + 0.012], EBONY)
    anchors = {
        "waist_low": np.array([waist / 2, length * 0.53, depth / 2]),
        "soundhole": np.array([0.0, length * 0.64, depth]),
        "pluck": np.array([0.0, length * 0.45, depth + 0.05]),
        "neck_body": np.array([0.0, length, nut[2]]),
        "nut": nut,
        "sound": np.array([0.0, length * 0.64, depth]),
        "back": np.array([0.0, length * 0.35, 0.0]),
    }
    return Instrument(
        "guitar",
        Mesh.concat([body, hole, neck, headstock, bridge]),
        anchors,
        {"body_length": length, "lower_bout": lower, "depth": depth},
    )


def _electric_guitar(rng: np.random.Generator) -> Instrument:
    """Solid body (0.40–0.45 m long, 40–50 mm thick), a long bolt-on neck, pickups, a small
    headstock; loud colours. Same anchors as the acoustic guitar (``soundhole`` over the
    pickups)."""
    length = uniform(rng, 0.40, 0.45)
    lower = uniform(rng, 0.31, 0.34)
    upper = lower * uniform(rng, 0.8, 0.9)
    waist = lower * uniform(rng, 0.7, 0.78)
    depth = uniform(rng, 0.04, 0.05)
    stations = [
        (0.0, 0.0),
        (0.03, lower * 0.32),
        (0.2, lower / 2),
        (0.5, waist / 2),
        (0.75, upper / 2),
        (0.92, upper * 0.3),
        (1.0, 0.0),
    ]
    colour = pick(
        rng, [(180, 20, 25), (20, 20, 22), (235, 235, 230), (40, 80, 160), (200, 120, 40)]
    )
    body = _slab(length, stations, depth, colour)
    guard = box([-0.07, length * 0.15, depth], [0.09, length * 0.7, depth + 0.003], (240, 240, 235))
    pickups = _pickups(length, depth, (0.35, 0.55))
    neck_len = uniform(rng, 0.38, 0.42)
    nut = np.array([0.0, length + neck_len, depth + 0.012])
    neck = tube(
        [[0, length * 0.85, depth - 0.005], nut - [0, 0, 0.012]],
        [0.028, 0.024],
        (200, 160, 110),
        sides=8,
    )
    head_end = nut + np.array([0.0, 0.17, -0.015])
    headstock = tube([nut - [0, 0, 0.01], head_end], 0.03, colour, sides=4)
    bridge = box([-0.04, length * 0.2, depth], [0.04, length * 0.25, depth + 0.014], SILVER[0])
    anchors = {
        "waist_low": np.array([waist / 2, length * 0.5, depth / 2]),
        "soundhole": np.array([0.0, length * 0.45, depth]),
        "pluck": np.array([0.0, length * 0.4, depth + 0.05]),
        "neck_body": np.array([0.0, length, nut[2]]),
        "nut": nut,
        "sound": np.array([0.0, length * 0.45, depth]),
        "back": np.array([0.0, length * 0.35, 0.0]),
    }
    return Instrument(
        "guitar",
        Mesh.concat([body, guard, *pickups, neck, headstock, bridge]),
        anchors,
        {"variant": "electric", "body_length": length, "lower_bout": lower, "depth": depth},
    )


def _semi_hollow_guitar(rng: np.random.Generator) -> Instrument:
    """Semi-hollow electric (body 0.48-0.51 m long and 0.39-0.42 m wide, 45-55 mm deep, two
    rounded cutaway horns where the neck joins), f-holes, two pickups, a trapeze tailpiece.
    Same anchors as the acoustic guitar."""
    length = uniform(rng, 0.48, 0.51)
    lower = uniform(rng, 0.39, 0.42)
    depth = uniform(rng, 0.045, 0.055)
    stations = [
        (0.0, 0.0),
        (0.03, lower * 0.33),
        (0.2, lower / 2),
        (0.45, lower * 0.43),
        (0.56, lower * 0.38),
        (0.74, lower * 0.45),
        (0.84, lower * 0.4),
        (0.9, lower * 0.16),  # the cutaways: the neck joins between two horns
        (0.96, lower * 0.09),
        (1.0, 0.0),
    ]
    colour = pick(rng, [(150, 30, 20), (200, 120, 40), (30, 20, 15), (230, 215, 180)])
    body = _slab(length, stations, depth, colour)
    f_holes = [
        box([x - 0.012, length * 0.35, depth], [x + 0.012, length * 0.6, depth + 0.002], BLACK)
        for x in (-lower * 0.3, lower * 0.3)
    ]
    pickups = _pickups(length, depth, (0.4, 0.62))
    tail = box([-0.04, length * 0.02, depth], [0.04, length * 0.22, depth + 0.01], SILVER[0])
    neck_len = uniform(rng, 0.33, 0.37)
    nut = np.array([0.0, length + neck_len, depth + 0.012])
    neck = tube(
        [[0, length * 0.8, depth - 0.005], nut - [0, 0, 0.012]], [0.029, 0.025], (110, 60, 30)
    )
    head_end = nut + np.array([0.0, 0.18, -0.03])
    headstock = tube([nut - [0, 0, 0.01], head_end], 0.036, colour, sides=4)
    anchors = {
        "waist_low": np.array([lower * 0.19, length * 0.56, depth / 2]),
        "soundhole": np.array([0.0, length * 0.5, depth]),
        "pluck": np.array([0.0, length * 0.42, depth + 0.05]),
        "neck_body": np.array([0.0, length, nut[2]]),
        "nut": nut,
        "sound": np.array([0.0, length * 0.5, depth]),
        "back": np.array([0.0, length * 0.35, 0.0]),
    }
    return Instrument(
        "guitar",
        Mesh.concat([body, *f_holes, *pickups, tail, neck, headstock]),
        anchors,
        {"variant": "semi", "body_length": length, "lower_bout": lower, "depth": depth},
    )


# --------------------------------------------------------------------------- woodwinds


def _flare(n: int, r0: float, r1: float, power: float) -> np.ndarray:
    return r0 + (r1 - r0) * np.linspace(0.0, 1.0, n) ** power


_SAX_SCALE = {"alto": 1.0, "tenor": 1.25, "baritone": 1.75}


def saxophone(rng: np.random.Generator, style: str | None = None) -> Instrument:
    """Alto, tenor or baritone saxophone (a baritone has a loop in its neck), or a straight
    soprano. Origin at the mouthpiece tip; the body tube hangs down -z, the bow and bell are
    on the +y (front) side, the bell opens upwards (a soprano's points down along the tube).

    Anchors: ``left_hand`` / ``right_hand`` (palm points on the player's side of the upper and
    lower stacks), ``sound`` (bell centre).
    """
    variant = style or ("alto" if rng.random() < 0.6 else "tenor")
    if variant == "soprano":
        return _soprano_saxophone(rng)
    scale = uniform(rng, 0.97, 1.03) * _SAX_SCALE[variant]
    body_len, bow_r, bell_h, bell_r = 0.40 * scale, 0.05 * scale, 0.30 * scale, 0.06 * scale
    colour = pick(rng, BRASS + [(60, 50, 40), (190, 190, 190)])
    top = np.array([0.0, 0.11, -0.13]) * (1.0 if variant == "alto" else 1.15)
    if variant == "baritone":
        top = np.array([0.0, 0.16, -0.10])
    neck_path = np.array([[0, 0, 0], [0, 0.03, -0.02], [0, 0.07, -0.06], top * [1, 0.95, 0.8], top])
    mouthpiece = tube(neck_path[:2], [0.008, 0.012], BLACK, sides=8)
    neck = tube(neck_path[1:], np.linspace(0.009, 0.013, 4), colour, sides=8)
    bottom = top - [0.0, 0.0, body_len]
    body = tube([top, bottom], [0.014, 0.032 * scale], colour, sides=12)
    bow = tube(
        arc(bottom + [0, bow_r, 0], [0, -bow_r, 0], [0, 0, -bow_r], 0, np.pi, 8),
        0.034 * scale,
        colour,
        sides=12,
    )
    bell_base = bottom + [0.0, 2 * bow_r, 0.0]
    bell_top = bell_base + [0.0, 0.03 * scale, bell_h]
    bell_path = np.linspace(bell_base, bell_top, 8)
    bell = tube(bell_path, _flare(8, 0.036 * scale, bell_r, 3.0), colour, sides=14)
    guard = box(
        top + [-0.025, -0.045, -body_len * 0.9], top + [0.025, -0.025, -body_len * 0.2], colour
    )
    anchors = {
        "left_hand": top + [0.0, -0.04, -body_len * 0.28],
        "right_hand": top + [0.0, -0.04, -body_len * 0.68],
        "sound": bell_top,
        "bottom": bottom + [0.0, bow_r, -bow_r],
    }
    parts = [mouthpiece, neck, body, bow, bell, guard]
    if variant == "baritone":  # the loop above the body that makes a baritone's neck
        parts.append(
            tube(
                arc(top + [0, -0.05, 0.03], [0, 0.05, 0], [0, 0, 0.06], -np.pi / 2, np.pi, 10),
                0.016,
                colour,
                sides=10,
            )
        )
    return Instrument(
        "saxophone",
        Mesh.concat(parts),
        anchors,
        {"variant": variant, "height": float(-anchors["bottom"][2]), "bell_diameter": 2 * bell_r},
    )


def _soprano_saxophone(rng: np.random.Generator) -> Instrument:
    """Straight soprano (0.62–0.68 m) along -z from the mouthpiece, its bell opening down."""
    length = uniform(rng, 0.62, 0.68)
    colour = pick(rng, BRASS + [(190, 190, 190)])
    mouthpiece = tube([[0, 0, 0], [0, 0, -0.07]], [0.007, 0.011], BLACK, sides=8)
    z = -np.linspace(0.07, length, 10)
    body = tube(
        np.column_stack([np.zeros(10), np.zeros(10), z]),
        _flare(10, 0.009, 0.038, 2.5),
        colour,
        sides=12,
    )
    keys = box([-0.012, -0.03, -length * 0.8], [0.012, -0.012, -0.14], colour)
    anchors = {  # on the player's side (-y), like the curved saxophones'
        "left_hand": np.array([0.0, -0.035, -length * 0.3]),
        "right_hand": np.array([0.0, -0.035, -length * 0.62]),
        "sound": np.array([0.0, 0.0, -length]),
        "bottom": np.array([0.0, 0.0, -length]),
    }
    return Instrument(
        "saxophone",
        Mesh.concat([mouthpiece, body, keys]),
        anchors,
        {"variant": "soprano", "height": length, "bell_diameter": 0.076},
    )


_FLUTES = {  # length range, bore radius, hand scale
    "concert": ((0.655, 0.68), 0.0095, 1.0),
    "piccolo": ((0.31, 0.33), 0.0065, 0.45),
    "alto": ((0.84, 0.88), 0.013, 1.25),
}


def flute(rng: np.random.Generator, style: str | None = None) -> Instrument:
    """Concert flute along +x from the crown (x = 0) to the foot (0.66–0.68 m), 19 mm bore;
    a piccolo (0.31–0.33 m) or an alto flute (0.84–0.88 m, 26 mm bore) by ``style``.

    Anchors: ``embouchure``, ``left_hand`` (under the head of the body joint), ``right_hand``,
    ``sound`` (embouchure: a flute radiates there and from its open holes).
    """
    if style == "bass":
        return _bass_flute(rng)
    variant = style or "concert"
    span, bore, hands = _FLUTES[variant]
    length = uniform(rng, *span)
    colour = pick(rng, SILVER if variant != "piccolo" else SILVER + [BLACK])
    body = tube([[0, 0, 0], [length, 0, 0]], bore, colour, sides=10)
    emb_x = uniform(rng, 0.05, 0.06) * (0.6 if variant == "piccolo" else 1.0)
    lip = box([emb_x - 0.02, -0.012, 0.004], [emb_x + 0.02, 0.012, 0.012], colour)
    keys = box([0.25 * hands, -0.008, 0.007], [length - 0.05 * hands, 0.008, 0.014], colour)
    anchors = {
        "embouchure": np.array([emb_x, 0.0, 0.01]),
        "left_hand": np.array([emb_x + hands * uniform(rng, 0.17, 0.22), -0.02, -0.02]),
        "right_hand": np.array([emb_x + hands * uniform(rng, 0.38, 0.44), -0.02, -0.02]),
        "sound": np.array([emb_x, 0.0, 0.0]),
        "foot": np.array([length, 0.0, 0.0]),
    }
    params: dict[str, float | str] = {"length": length}
    if style is not None:
        params["variant"] = variant
    return Instrument("flute", Mesh.concat([body, lip, keys]), anchors, params)


def _bass_flute(rng: np.random.Generator) -> Instrument:
    """Bass flute: a J-shaped head joint (from the crown past the embouchure to the player's
    left, then a U-bend down and forward) and a 36 mm body back to the right, 0.82-0.88 m, so
    the body runs below and in front of the head; the foot rests far out to the right."""
    length = uniform(rng, 0.82, 0.88)
    bend = uniform(rng, 0.045, 0.055)  # the U-bend's radius
    colour = pick(rng, SILVER)
    bore = 0.0175
    turn = np.array([-0.12, 0.0, 0.0])  # where the head joint bends
    down = np.array([0.0, 0.35, -0.94]) * bend  # from the bend's centre to the head's line
    centre = turn - down
    head = tube([[0.06, 0, 0], turn], bore, colour, sides=10)
    u_bend = tube(arc(centre, down, [-bend, 0, 0], 0.0, np.pi, 8), bore, colour, sides=10)
    start = centre - down
    foot = start + [length - 0.12, 0.0, 0.0]
    body = tube([start, foot], bore, colour, sides=10)
    emb_x = 0.02
    lip = box([emb_x - 0.022, -0.013, 0.006], [emb_x + 0.022, 0.013, 0.016], colour)
    keys = box(start + [0.28, -0.01, 0.012], foot + [-0.06, 0.01, 0.02], colour)
    anchors = {
        "embouchure": np.array([emb_x, 0.0, 0.013]),
        "left_hand": start + [uniform(rng, 0.3, 0.36), -0.025, -0.025],
        "right_hand": start + [uniform(rng, 0.55, 0.62), -0.025, -0.025],
        "sound": np.array([emb_x, 0.0, 0.0]),
        "foot": foot,
    }
    return Instrument(
        "flute",
        Mesh.concat([head, u_bend, body, lip, keys]),
        anchors,
        {"length": length, "variant": "bass"},
    )


def clarinet(rng: np.random.Generator, style: str | None = None) -> Instrument:
    """B-flat or A clarinet along -z from the mouthpiece tip (0.60–0.70 m), flared bell; or
    (``style="bass"``) a bass clarinet, (``"alto"``) an alto clarinet.

    Anchors: ``left_hand``, ``right_hand`` (palm points on the player's side, +y),
    ``sound`` (bell), ``bell``.
    """
    if style in _CROOKED:
        return _crooked_clarinet(rng, style)
    length = uniform(rng, 0.6, 0.7)
    n = 10
    z = -np.concatenate([np.linspace(0, length - 0.11, n), np.linspace(length - 0.09, length, 6)])
    radius = np.concatenate(
        [np.r_[0.006, 0.011, np.full(n - 2, 0.0145)], _flare(6, 0.017, 0.033, 2.2)]
    )
    path = np.column_stack([np.zeros_like(z), np.zeros_like(z), z])
    body = tube(path, radius, pick(rng, [BLACK, (45, 30, 25)]), sides=10)
    keys = box([-0.006, 0.012, -length * 0.75], [0.006, 0.018, -0.12], SILVER[0])
    anchors = {
        "left_hand": np.array([0.0, 0.03, -uniform(rng, 0.17, 0.21)]),
        "right_hand": np.array([0.0, 0.03, -uniform(rng, 0.36, 0.41)]),
        "sound": np.array([0.0, 0.0, -length]),
        "bell": np.array([0.0, 0.0, -length]),
    }
    return Instrument("clarinet", Mesh.concat([body, keys]), anchors, {"length": length})


_CROOKED = {  # body length range, crook and hand scale, body radius, bell arc radius, bell radii
    "bass": ((0.75, 0.85), 1.0, 0.025, 0.07, (0.026, 0.055)),
    "alto": ((0.56, 0.64), 0.75, 0.02, 0.05, (0.021, 0.042)),
}


def _crooked_clarinet(rng: np.random.Generator, variant: str) -> Instrument:
    """Bass clarinet: a bent metal crook from the mouthpiece, a straight body (0.75–0.85 m,
    50 mm) along -z set forward of the mouth, an upturned metal bell at its foot. An alto
    clarinet (``variant="alto"``) is the same design smaller (0.56–0.64 m, 40 mm)."""
    span, k, radius, bell_a, bell_r = _CROOKED[variant]
    length = uniform(rng, *span)
    wood, metal = pick(rng, [BLACK, (45, 30, 25)]), pick(rng, SILVER)
    top = np.array([0.0, -0.09, -0.14]) * k  # the crook brings the body forward (-y: away)
    crook = tube(
        np.array([[0, 0, 0], [0, -0.04, -0.02], [0, -0.08, -0.07], top + [0, 0, 0.02], top])
        * [1.0, k, k],
        [0.006, 0.008, 0.009, 0.01, 0.011],
        metal,
        sides=8,
    )
    foot = top - [0.0, 0.0, length]
    body = tube([top, foot], radius, wood, sides=12)
    bell = tube(
        arc(foot + [0, -bell_a, 0], [0, bell_a, 0], [0, 0, -bell_a], 0, np.pi, 9),
        _flare(9, *bell_r, 2.0),
        metal,
        sides=14,
    )
    keys = box([-0.01, 0.022, -length * 0.85], [0.01, 0.035, top[2] - 0.05], metal)
    bell_end = foot + [0.0, -2 * bell_a, 0.0]
    anchors = {
        "left_hand": top + [0.0, 0.04, -uniform(rng, 0.15, 0.2)],
        "right_hand": top + [0.0, 0.04, -uniform(rng, 0.4, 0.46) * k],
        "sound": bell_end,
        "bell": bell_end,
    }
    return Instrument(
        "clarinet",
        Mesh.concat([crook, body, bell, keys]),
        anchors,
        {"variant": variant, "length": length},
    )


# --------------------------------------------------------------------------- brass


_TRUMPETS = {  # length range, bell radius range, bell flare power
    "trumpet": ((0.45, 0.5), (0.058, 0.064), 4.0),
    "flugelhorn": ((0.5, 0.55), (0.075, 0.085), 2.0),
    "cornet": ((0.33, 0.37), (0.058, 0.064), 3.0),
}


def trumpet(rng: np.random.Generator, style: str | None = None) -> Instrument:
    """B-flat trumpet: mouthpiece at the origin, bell along +x (0.45–0.50 m), +y to the
    player's left, z up; three vertical valves. ``style``: a flugelhorn (wide conical bell,
    0.50–0.55 m), a cornet (0.33–0.37 m, a second wrap of tubing below) or a pocket trumpet.

    Anchors: ``left_hand`` (around the valve casing), ``right_hand`` (over the valve
    buttons), ``sound`` / ``bell`` (bell centre).
    """
    if style == "pocket":
        return _pocket_trumpet(rng)
    variant = style or "trumpet"
    span, bell_span, power = _TRUMPETS[variant]
    length = uniform(rng, *span)
    bell_r = uniform(rng, *bell_span)
    colour = pick(rng, BRASS + SILVER)
    lead = tube([[0, -0.012, 0], [length * 0.65, -0.012, 0]], [0.006, 0.0065], colour, sides=8)
    valve_x = length * np.array([0.42, 0.47, 0.52])
    valves = [tube([[x, 0.0, -0.075], [x, 0.0, 0.045]], 0.0095, colour, sides=10) for x in valve_x]
    buttons = [
        tube([[x, 0.0, 0.045], [x, 0.0, 0.075]], [0.004, 0.008], (235, 225, 200), sides=8)
        for x in valve_x
    ]
    loop = tube(
        arc([length * 0.65, -0.012, -0.035], [0, 0, 0.035], [0.035, 0, 0], 0, np.pi, 7),
        0.0065,
        colour,
        sides=8,
    )
    back = tube(
        arc([length * 0.16, 0.025, -0.035], [0, 0, -0.035], [-0.035, 0, 0], 0, np.pi, 7),
        0.007,
        colour,
        sides=8,
    )
    lower = tube([[length * 0.16, 0.025, -0.07], [length * 0.55, 0.0, -0.07]], 0.007, colour, 8)
    x = np.linspace(length * 0.16, length, 10)
    bell_path = np.column_stack([x, np.full(10, 0.025), np.zeros(10)])
    bell = tube(bell_path, _flare(10, 0.007, bell_r, power), colour, sides=16)
    anchors = {
        "left_hand": np.array([valve_x[1], 0.045, -0.04]),
        "right_hand": np.array([valve_x[0] - 0.03, -0.03, 0.055]),
        "sound": np.array([length, 0.025, 0.0]),
        "bell": np.array([length, 0.025, 0.0]),
    }
    parts = [lead, *valves, *buttons, loop, back, lower, bell]
    if variant == "cornet":  # the extra wrap that makes a cornet short and deep
        parts.append(
            tube(
                arc([length * 0.3, 0.0, -0.11], [0.12, 0, 0], [0, 0, -0.04], 0, 2 * np.pi, 12),
                0.0075,
                colour,
                sides=8,
            )
        )
    params: dict[str, float | str] = {"length": length, "bell_diameter": 2 * bell_r}
    if style is not None:
        params["variant"] = variant
    return Instrument("trumpet", Mesh.concat(parts), anchors, params)


def _pocket_trumpet(rng: np.random.Generator) -> Instrument:
    """Pocket trumpet: a trumpet's tubing wound into a tight coil (0.22-0.26 m long, three
    turns 0.13-0.15 m tall around the valves) behind a full-size bell; same frame and anchors
    as the trumpet."""
    length = uniform(rng, 0.22, 0.26)
    bell_r = uniform(rng, 0.056, 0.062)
    height = uniform(rng, 0.13, 0.15)
    colour = pick(rng, BRASS + SILVER + [(30, 30, 32)])
    lead = tube([[0, -0.012, 0], [length * 0.35, -0.012, 0]], [0.006, 0.0065], colour, sides=8)
    valve_x = length * np.array([0.42, 0.52, 0.62])
    valves = [tube([[x, 0.0, -0.06], [x, 0.0, 0.04]], 0.0095, colour, sides=10) for x in valve_x]
    buttons = [
        tube([[x, 0.0, 0.04], [x, 0.0, 0.07]], [0.004, 0.008], (235, 225, 200), sides=8)
        for x in valve_x
    ]
    coils = [
        tube(
            arc(
                [length * 0.5, y, -0.03],
                [length * 0.42, 0, 0],
                [0, 0, height / 2],
                0,
                2 * np.pi,
                14,
            ),
            0.0065,
            colour,
            sides=8,
        )
        for y in (-0.03, 0.0, 0.03)
    ]
    x = np.linspace(length * 0.2, length, 10)
    bell_path = np.column_stack([x, np.full(10, 0.045), np.zeros(10)])
    bell = tube(bell_path, _flare(10, 0.008, bell_r, 4.0), colour, sides=16)
    anchors = {
        "left_hand": np.array([valve_x[1], 0.045, -0.04]),
        "right_hand": np.array([valve_x[0] - 0.03, -0.03, 0.05]),
        "sound": np.array([length, 0.045, 0.0]),
        "bell": np.array([length, 0.045, 0.0]),
    }
    return Instrument(
        "trumpet",
        Mesh.concat([lead, *valves, *buttons, *coils, bell]),
        anchors,
        {"length": length, "bell_diameter": 2 * bell_r, "variant": "pocket"},
    )


def trombone(
    rng: np.random.Generator, max_extension: float = 0.6, style: str | None = None
) -> Instrument:
    """Tenor trombone: mouthpiece at the origin, slide along +x, the bell section in the same
    plane on the +y side (to the player's left), its tuning bow behind the head. A bass
    trombone (``style="bass"``) has a 9.5–10.5 inch bell and the coiled F attachment behind
    the bell brace; a valve trombone (``"valve"``) has no moving slide but three valves near
    the mouthpiece, the right hand on their buttons.

    The slide extension (0–0.6 m, first to seventh position; at most ``max_extension``, what
    the player's arm reaches) is drawn here. Anchors: ``left_hand``
    (bell brace near the mouthpiece), ``right_hand`` (slide brace), ``sound`` / ``bell``.
    """
    slide_len = uniform(rng, 0.66, 0.72)
    ext = uniform(rng, 0.0, max(0.0, min(0.6, max_extension)))
    if style == "valve":
        ext, slide_len = 0.0, slide_len * 0.8
    bell_r = uniform(rng, 0.1, 0.112) * (1.2 if style == "bass" else 1.0)
    bell_len = uniform(rng, 0.6, 0.68)
    sep = 0.095
    bell_y = sep + bell_r + 0.012
    colour = pick(rng, BRASS)
    inner = [
        tube([[0.0, y, 0.0], [slide_len, y, 0.0]], 0.0065, colour, sides=8) for y in (0.0, sep)
    ]
    outer = [
        tube([[0.08 + ext, y, 0.0], [slide_len + ext, y, 0.0]], 0.0085, colour, sides=8)
        for y in (0.0, sep)
    ]
    crook = tube(
        arc([slide_len + ext, sep / 2, 0.0], [0, -sep / 2, 0], [sep / 2, 0, 0], 0, np.pi, 8),
        0.0085,
        colour,
        sides=8,
    )
    brace = tube([[0.1 + ext, 0.0, 0.0], [0.1 + ext, sep, 0.0]], 0.006, colour, sides=6)
    x = np.linspace(-0.05, bell_len, 12)
    bell_path = np.column_stack([x, np.full(12, bell_y), np.zeros(12)])
    bell = tube(bell_path, _flare(12, 0.008, bell_r, 5.0), colour, sides=18)
    bow_r = (bell_y - sep) / 2
    bow = tube(
        arc([-0.25, sep + bow_r, 0.0], [0, bow_r, 0], [-bow_r, 0, 0], 0, np.pi, 8),
        0.008,
        colour,
        sides=8,
    )
    joins = [
        tube([[-0.25, bell_y, 0.0], [-0.05, bell_y, 0.0]], 0.008, colour, sides=8),
        tube([[-0.25, sep, 0.0], [0.0, sep, 0.0]], 0.008, colour, sides=8),
    ]
    anchors = {
        "left_hand": np.array([0.09, sep * 0.6, -0.03]),
        "right_hand": np.array([0.1 + ext, sep * 0.35, -0.02]),
        "sound": np.array([bell_len, bell_y, 0.0]),
        "bell": np.array([bell_len, bell_y, 0.0]),
    }
    parts = [*inner, *outer, crook, brace, bell, bow, *joins]
    params: dict[str, float | str] = {
        "slide_extension": ext,
        "bell_diameter": 2 * bell_r,
        "slide_length": slide_len,
    }
    if style == "valve":  # three upright valves on the mouthpiece tube, their slides below
        valve_x = 0.18 + 0.045 * np.arange(3)
        for x in valve_x:
            parts.append(tube([[x, 0.0, -0.08], [x, 0.0, 0.05]], 0.011, colour, sides=10))
            parts.append(tube([[x, 0.0, 0.05], [x, 0.0, 0.08]], [0.004, 0.008], (235, 225, 200)))
        parts.append(tube(arc([0.225, 0.0, -0.08], [0.06, 0, 0], [0, 0, -0.05], 0, np.pi, 7),
                          0.0075, colour))  # fmt: skip
        anchors["right_hand"] = np.array([valve_x[0] - 0.03, -0.03, 0.06])
        params["variant"] = "valve"
    if style == "bass":  # F attachment: a coil of tubing between the bell and the tuning bow
        centre = np.array([-0.14, bell_y - 0.02, -0.06])
        parts.append(tube(arc(centre, [0.09, 0, 0], [0, 0, 0.09], 0, 2 * np.pi, 14), 0.009, colour))
        parts.append(tube([[-0.05, bell_y, 0.0], centre + [0.0, 0.0, 0.09]], 0.012, colour))
        params["variant"] = "bass"
    return Instrument("trombone", Mesh.concat(parts), anchors, params)


# --------------------------------------------------------------------------- piano


def _keyboard(key_h: float, width: float, colour: tuple[int, int, int]) -> list[Mesh]:
    """Key bed, white keys and the 36 black keys, front edge at y = 0 (+y towards the player)."""
    half = width / 2
    bed = box([-half - 0.05, -0.3, key_h - 0.12], [half + 0.05, 0.0, key_h - 0.025], colour)
    white = box([-half, -0.15, key_h - 0.025], [half, 0.0, key_h], (235, 235, 228))
    octave = width / (52 / 7)
    black = []
    for i in range(52):
        if i % 7 in (2, 5) or i == 51:  # no black key after E and B (white key 0 is A0)
            continue
        x = half - (i + 1) * width / 52
        black.append(box([x - 0.006, -0.15, key_h], [x + 0.006, -0.055, key_h + 0.012], EBONY))
    del octave
    return [bed, white, *black]


def _cheek(side: int, half: float, low: float, high: float, colour) -> Mesh:
    """The block closing the keyboard on one side (+1: bass/left, -1: treble/right)."""
    inner, outer = side * (half - 0.07), side * half
    return box([min(inner, outer), -0.3, low], [max(inner, outer), 0.0, high], colour)


def piano(rng: np.random.Generator, style: str | None = None) -> Instrument:
    """Upright (1.1–1.35 m tall) or grand (1.5–2.75 m long) piano, or (``style="keyboard"``) a
    stage keyboard on an X stand.

    Local frame = the pianist's: origin on the floor under the middle of the keyboard's front
    edge, +y towards the pianist, +x to the pianist's left (bass), z up. ``bench`` is a
    separate furniture builder. Anchors: ``keys_left`` / ``keys_right`` (hand points over the
    keys), ``sound`` (soundboard centre).
    """
    kind = style or ("grand" if rng.random() < 0.5 else "upright")
    if kind == "keyboard":
        return _stage_keyboard(rng)
    key_h = uniform(rng, 0.71, 0.75)
    colour = pick(rng, [BLACK, BLACK, (70, 40, 25), (110, 70, 40)])
    width = uniform(rng, 1.45, 1.58)
    keys = _keyboard(key_h, 1.22, colour)
    half = width / 2
    if kind == "upright":
        height = uniform(rng, 1.1, 1.35)
        depth = uniform(rng, 0.28, 0.38)
        case = box([-half, -0.3 - depth, 0.0], [half, -0.3, height], colour)
        cheeks = [_cheek(s, half, 0.55, key_h + 0.1, colour) for s in (-1, 1)]
        toes = [
            box(
                [s * (half - 0.04) - 0.03, -0.3, 0.0],
                [s * (half - 0.04) + 0.03, -0.02, 0.06],
                colour,
            )
            for s in (-1, 1)
        ]
        panel = box([-half, -0.36, key_h + 0.05], [half, -0.3, height - 0.05], colour)
        parts = [case, *cheeks, *toes, panel, *keys]
        sound = np.array([0.0, -0.3 - depth, height * 0.5])
        params: dict[str, float | str] = {"variant": kind, "height": height, "width": width}
    else:
        length = uniform(rng, 1.5, 2.75)
        rim_low, rim_top = key_h - 0.1, key_h + uniform(rng, 0.24, 0.3)
        t = np.linspace(0.0, 1.0, 14)
        y_side = -0.3 - t * (length - 0.3)
        treble = -half + width * 0.68 * np.clip((t - 0.25) / 0.75, 0, 1) ** 1.3
        tail = arc(
            [half - 0.35 * width, -length + 0.35 * width, 0],
            [0.35 * width, 0, 0],
            [0, -0.35 * width, 0],
            0.0,
            np.pi / 2,
            6,
        )[:, :2]
        tail[:, 1] = np.maximum(tail[:, 1], -length)
        outline = np.vstack(
            [
                [[half, -0.3]],
                [[half, -length + 0.35 * width]],
                tail,
                np.column_stack([treble, y_side])[::-1][1:],
            ]
        )
        centre = np.array([0.05 * width, -0.3 - 0.35 * (length - 0.3)])
        rim = loft(outline, np.array([rim_low, rim_top]), np.array([1.0, 1.0]), colour, centre)
        lid_angle = float(
            rng.choice([0.0, np.deg2rad(uniform(rng, 15, 22)), np.deg2rad(uniform(rng, 30, 40))])
        )
        lid = loft(
            outline, np.array([rim_top, rim_top + 0.02]), np.array([1.0, 1.0]), colour, centre
        )
        c, s = np.cos(lid_angle), np.sin(lid_angle)
        rel = lid.vertices - [half, 0.0, rim_top]
        # The lid hinges on the straight bass side and opens towards the treble (audience) side.
        lid.vertices = np.column_stack(
            [c * rel[:, 0] + s * rel[:, 2], rel[:, 1], -s * rel[:, 0] + c * rel[:, 2]]
        ) + [half, 0, rim_top]
        legs = [
            tube([[x, y, 0.0], [x, y, rim_low + 0.02]], 0.045, colour, sides=8)
            for x, y in [
                (half - 0.1, -0.45),
                (-half + 0.1, -0.45),
                (half - 0.3 * width, -length + 0.3),
            ]
        ]
        lyre = box([-0.06, -0.5, 0.0], [0.06, -0.42, rim_low], colour)
        cheeks = [_cheek(s, half, rim_low, rim_top - 0.05, colour) for s in (-1, 1)]
        parts = [rim, lid, *legs, lyre, *cheeks, *keys]
        if lid_angle > 0:
            prop_foot = np.array([-half + 0.15, -0.3 - 0.5 * (length - 0.3), rim_top])
            reach = width - 0.15
            prop_top = np.array([half - c * reach, prop_foot[1], rim_top + s * reach])
            parts.append(tube([prop_foot, prop_top], 0.008, colour, sides=6))
        sound = np.array([0.1 * width, -0.3 - 0.4 * (length - 0.3), rim_top])
        params = {"variant": kind, "length": length, "width": width, "lid": lid_angle}
    anchors = {
        "keys_left": np.array([uniform(rng, 0.08, 0.45), -0.07, key_h + 0.045]),
        "keys_right": np.array([-uniform(rng, 0.08, 0.45), -0.07, key_h + 0.045]),
        "sound": sound,
        "key_height": np.array([0.0, 0.0, key_h]),
    }
    return Instrument("piano", Mesh.concat(parts), anchors, params | {"key_height": key_h})


def _stage_keyboard(rng: np.random.Generator) -> Instrument:
    """A 76- or 88-key stage keyboard (a slab 1.05–1.35 m wide, 0.1 m deep) on an X stand;
    same frame and anchors as :func:`piano`."""
    key_h = uniform(rng, 0.72, 0.8)
    width = uniform(rng, 1.05, 1.35)
    half = width / 2
    colour = pick(rng, [BLACK, (180, 30, 30), (90, 90, 95)])
    slab = box([-half, -0.34, key_h - 0.1], [half, 0.0, key_h - 0.02], colour)
    keys = _keyboard(key_h, width - 0.12, colour)[1:]  # no key bed: the slab is the body
    panel = box([-half, -0.34, key_h - 0.02], [half, -0.16, key_h + 0.015], colour)
    legs = []
    for side in (-1, 1):
        x = side * (half - uniform(rng, 0.15, 0.3))
        for y0, y1 in ((-0.45, 0.1), (0.1, -0.45)):
            legs.append(tube([[x, y0, 0.0], [x, y1, key_h - 0.1]], 0.015, BLACK, sides=6))
    cross = tube(
        [[-half + 0.2, -0.17, key_h * 0.45], [half - 0.2, -0.17, key_h * 0.45]], 0.015, BLACK, 6
    )
    anchors = {
        "keys_left": np.array([uniform(rng, 0.08, 0.4), -0.07, key_h + 0.045]),
        "keys_right": np.array([-uniform(rng, 0.08, 0.4), -0.07, key_h + 0.045]),
        "sound": np.array([0.0, -0.17, key_h]),
        "key_height": np.array([0.0, 0.0, key_h]),
    }
    parts = [slab, *keys, panel, *legs, cross]
    params = {"variant": "keyboard", "width": width, "key_height": key_h}
    return Instrument("piano", Mesh.concat(parts), anchors, params)


BUILDERS = {
    "violin": lambda rng, style=None: bowed("violin", rng, style),
    "cello": lambda rng, style=None: bowed("cello", rng, style),
    "double_bass": lambda rng, style=None: bowed("double_bass", rng, style),
    "guitar": guitar,
    "saxophone": saxophone,
    "flute": flute,
    "clarinet": clarinet,
    "trumpet": trumpet,
    "trombone": lambda rng, style=None: trombone(rng, style=style),
    "piano": piano,
}


def build(name: str, rng: np.random.Generator) -> Instrument:
    """Build one instrument of class ``name`` (one of :data:`CLASSES`) with drawn dimensions,
    in a style the current :func:`~pcsep_cli.synth.styles.allowed` policy lets it draw.

    Raises:
        ValueError: ``name`` is not an instrument class.
    """
    try:
        builder = BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown instrument {name!r}; expected one of {CLASSES}") from None
    return builder(rng, styles.draw(name, rng))
