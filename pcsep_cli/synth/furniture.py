"""Furniture around musicians: orchestra chairs, piano benches, music stands, a podium, a baton.

Each builder returns an :class:`~pcsep_cli.synth.meshes.Instrument` (a mesh with anchors) in
its own frame: origin on the floor under its centre, front towards -y.
"""

from __future__ import annotations

import numpy as np

from pcsep_cli.synth.meshes import BLACK, Instrument, Mesh, box, pick, tube, uniform


def chair(rng: np.random.Generator, seat_height: float | None = None) -> Instrument:
    """An orchestra chair: origin on the floor under the seat centre, front towards -y.

    Args:
        rng: draws the style and size.
        seat_height: top of the seat (m); drawn in 0.42–0.50 m when None.
    """
    h = uniform(rng, 0.42, 0.5) if seat_height is None else seat_height
    w, d = uniform(rng, 0.4, 0.47), uniform(rng, 0.38, 0.45)
    frame = pick(rng, [BLACK, (60, 60, 65), (120, 80, 45)])
    seat_c = pick(rng, [BLACK, (40, 40, 70), (90, 20, 25), (120, 80, 45)])
    seat = box([-w / 2, -d / 2, h - 0.03], [w / 2, d / 2, h], seat_c)
    legs = [
        tube(
            [
                [sx * (w / 2 - 0.03), sy * (d / 2 - 0.03), 0.0],
                [sx * (w / 2 - 0.03), sy * (d / 2 - 0.03), h - 0.03],
            ],
            0.012,
            frame,
            sides=6,
        )
        for sx in (-1, 1)
        for sy in (-1, 1)
    ]
    back_h = uniform(rng, 0.3, 0.45)
    tilt = uniform(rng, 0.03, 0.12)
    back = box([-w / 2 + 0.01, d / 2 - 0.03, h + 0.12], [w / 2 - 0.01, d / 2, h + back_h], seat_c)
    rel = back.vertices[:, 2] - h
    back.vertices[:, 1] += tilt * rel
    posts = [
        tube(
            [
                [s * (w / 2 - 0.03), d / 2 - 0.02, h],
                [s * (w / 2 - 0.03), d / 2 - 0.02 + tilt * back_h, h + back_h],
            ],
            0.011,
            frame,
            sides=6,
        )
        for s in (-1, 1)
    ]
    anchors = {"seat": np.array([0.0, 0.0, h])}
    return Instrument("chair", Mesh.concat([seat, *legs, back, *posts]), anchors, {"seat": h})


def bench(rng: np.random.Generator, seat_height: float) -> Instrument:
    """A piano bench (0.55–0.8 m wide), origin on the floor under the seat centre."""
    w, d = uniform(rng, 0.55, 0.8), uniform(rng, 0.32, 0.38)
    colour = pick(rng, [BLACK, (70, 40, 25)])
    top = box([-w / 2, -d / 2, seat_height - 0.06], [w / 2, d / 2, seat_height], colour)
    legs = [
        tube(
            [
                [sx * (w / 2 - 0.04), sy * (d / 2 - 0.04), 0.0],
                [sx * (w / 2 - 0.04), sy * (d / 2 - 0.04), seat_height - 0.06],
            ],
            0.02,
            colour,
            6,
        )
        for sx in (-1, 1)
        for sy in (-1, 1)
    ]
    return Instrument("bench", Mesh.concat([top, *legs]), {"seat": np.r_[0, 0, seat_height]})


def music_stand(rng: np.random.Generator) -> Instrument:
    """A music stand: tripod, pole and a desk facing +y (the reader), tilted back.

    Origin on the floor under the pole.
    """
    desk_low = uniform(rng, 0.75, 1.25)
    w, hgt = uniform(rng, 0.46, 0.52), uniform(rng, 0.3, 0.36)
    colour = pick(rng, [BLACK, BLACK, (70, 70, 75)])
    pole = tube([[0, 0, 0.2], [0, 0, desk_low + 0.05]], 0.011, colour, sides=6)
    legs = [
        tube([[0, 0, 0.22], [0.28 * np.cos(a), 0.28 * np.sin(a), 0.0]], 0.007, colour, 5)
        for a in np.pi / 2 + np.array([0, 2, 4]) * np.pi / 3
    ]
    tilt = np.deg2rad(uniform(rng, 12, 35))
    desk = box([-w / 2, -0.004, 0.0], [w / 2, 0.004, hgt], colour)
    ledge = box([-w / 2, 0.0, -0.005], [w / 2, 0.05, 0.01], colour)
    parts = [desk, ledge]
    if rng.random() < 0.75:
        parts.append(
            box([-w / 2 + 0.02, 0.004, 0.01], [w / 2 - 0.02, 0.01, hgt - 0.01], (240, 240, 232))
        )
    c, s = np.cos(tilt), np.sin(tilt)
    rot = np.array([[1, 0, 0, 0], [0, c, -s, 0], [0, s, c, desk_low], [0, 0, 0, 1.0]])
    head = [p.transformed(rot) for p in parts]
    anchors = {"desk": np.array([0.0, 0.0, desk_low + hgt / 2])}
    return Instrument(
        "music_stand", Mesh.concat([pole, *legs, *head]), anchors, {"desk_low": desk_low}
    )


def podium(rng: np.random.Generator) -> Instrument:
    """A conductor's podium (0.15–0.25 m high), origin on the floor under its centre."""
    side, h = uniform(rng, 0.7, 1.0), uniform(rng, 0.15, 0.25)
    colour = pick(rng, [BLACK, (90, 20, 25), (70, 40, 25)])
    mesh = box([-side / 2, -side / 2, 0.0], [side / 2, side / 2, h], colour)
    return Instrument("podium", mesh, {"top": np.array([0.0, 0.0, h])}, {"height": h})


def baton(rng: np.random.Generator) -> Mesh:
    """A conductor's baton along +x from the grip (origin), 0.3–0.45 m."""
    length = uniform(rng, 0.3, 0.45)
    return tube([[-0.03, 0, 0], [length, 0, 0]], [0.009, 0.0025], (240, 240, 235), sides=6)
