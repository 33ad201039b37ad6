"""How each instrument is held: its pose against a posed body, and where the hands go.

Each ``hold_*`` function gets the anchors of a body whose trunk, legs and head are posed (see
``performers.py``; body frame: floor z = 0, facing -y, left = +x) and returns a :class:`Hold`:
the instrument's meshes in that frame, the palm targets and elbow directions for the arm IK,
and the point the instrument sounds from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from pcsep_cli.synth import instruments as inst
from pcsep_cli.synth import styles
from pcsep_cli.synth.furniture import baton
from pcsep_cli.synth.meshes import Instrument, Mesh

FORWARD, LEFT, UP = np.array([0.0, -1.0, 0.0]), np.array([1.0, 0.0, 0.0]), np.array([0, 0, 1.0])
BACK, RIGHT = -FORWARD, -LEFT


def _unit(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, float) / (np.linalg.norm(v) + 1e-12)


def _rot(axis: np.ndarray, degrees: float) -> np.ndarray:
    axis = _unit(axis)
    a = np.deg2rad(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * (k @ k)


def frame(y_axis: np.ndarray, z_hint: np.ndarray) -> np.ndarray:
    """3×3 rotation whose columns are local x, y, z: y along ``y_axis``, z as close to
    ``z_hint`` as orthogonality allows, x = y × z."""
    y = _unit(y_axis)
    z = _unit(z_hint - (z_hint @ y) * y)
    return np.column_stack([np.cross(y, z), y, z])


def pose_matrix(rotation: np.ndarray, local: np.ndarray, world: np.ndarray) -> np.ndarray:
    """4×4 taking the local point ``local`` [3] to ``world`` [3] with ``rotation`` [3, 3]."""
    m = np.eye(4)
    m[:3, :3] = rotation
    m[:3, 3] = world - rotation @ local
    return m


def apply(matrix: np.ndarray, point: np.ndarray) -> np.ndarray:
    """``matrix`` [4, 4] applied to ``point`` [3]."""
    return matrix[:3, :3] @ point + matrix[:3, 3]


@dataclass
class Hand:
    """A palm target [3] and the direction [3] the elbow swings towards."""

    target: np.ndarray
    pole: np.ndarray


@dataclass
class Hold:
    """An instrument held by a posed body (body frame).

    Attributes:
        parts: meshes of the instrument, its bow, endpin, furniture.
        sound: the sounding point [3] (f-holes, bell, embouchure, soundboard).
        left, right: hand targets, None to let the arm hang.
        params: what was drawn (instrument dimensions, angles).
    """

    parts: list[Mesh]
    sound: np.ndarray
    left: Hand | None
    right: Hand | None
    params: dict[str, float | str] = field(default_factory=dict)


def _along(ins: Instrument, a: str, b: str, t: float) -> np.ndarray:
    return ins.anchors[a] + t * (ins.anchors[b] - ins.anchors[a])


def _neck_grip(
    ins: Instrument,
    m: np.ndarray,
    a: dict[str, np.ndarray],
    lo: float,
    hi: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """A left-hand point on the neck between ``lo`` and ``hi`` (0: where the neck meets the
    body, 1: the nut) that the left arm reaches; the reachable draw nearest the shoulder."""
    shoulder, reach = a["shoulder_l"], float(a["reach_l"][0])
    best, best_d = None, np.inf
    for t in rng.uniform(lo, hi, 6):
        point = apply(m, _along(ins, "neck_body", "nut", float(t)))
        d = float(np.linalg.norm(point - shoulder))
        if d <= 0.92 * reach:
            return point
        if d < best_d:
            best, best_d = point, d
    return best


def _bow(
    ins: Instrument,
    m: np.ndarray,
    a: dict[str, np.ndarray],
    rng: np.random.Generator,
    *,
    crossing: float,
    towards_neck: float = 0.0,
) -> tuple[Mesh, np.ndarray]:
    """Place the bow across the strings at the bowing point, frog on the player's right, as
    far along the stroke as the right arm reaches; returns the bow and the palm point [3].
    ``towards_neck`` moves the bowing point from the bridge towards the fingerboard (0–1)."""
    rot = m[:3, :3]
    x_ax, y_ax, z_ax = rot.T
    contact = apply(m, _along(ins, "bridge", "neck_body", towards_neck))
    length = float(ins.params["bow_length"])
    shoulder, reach = a["shoulder_r"], float(a["reach_r"][0])
    best = None
    for _ in range(8):
        turn = _rot(y_ax, rng.uniform(-crossing, crossing))
        across, up = turn @ x_ax, turn @ z_ax
        if across @ LEFT > 0:
            across = -across
        frog = contact + rng.uniform(0.12, 0.85) * length * across
        palm = frog + 0.03 * up + 0.025 * across
        d = float(np.linalg.norm(palm - shoulder))
        if best is None or d < best[0]:
            best = (d, across, up, frog, palm)
        if d <= 0.92 * reach:
            break
    _, across, up, frog, palm = best
    bow_rot = np.column_stack([-across, np.cross(up, -across), up])
    return ins.bow.transformed(pose_matrix(bow_rot, np.zeros(3), frog)), palm


def hold_violin(rng: np.random.Generator, a: dict[str, np.ndarray]) -> Hold:
    """Violin under the left jaw, scroll forward-left, bowed by the right hand."""
    ins = inst.build("violin", rng)
    yaw, pitch, roll = rng.uniform(25, 50), rng.uniform(-5, 15), rng.uniform(15, 40)
    y_ax = (
        np.cos(np.deg2rad(pitch))
        * _unit(np.cos(np.deg2rad(yaw)) * FORWARD + np.sin(np.deg2rad(yaw)) * LEFT)
        + np.sin(np.deg2rad(pitch)) * UP
    )
    rot = frame(y_ax, _rot(y_ax, roll) @ UP)
    if rot[:, 2] @ LEFT > 0:
        rot = frame(y_ax, _rot(y_ax, -roll) @ UP)
    m = pose_matrix(rot, ins.anchors["chin"], a["jaw_l"] - 0.012 * UP)
    bow, frog = _bow(ins, m, a, rng, crossing=15)
    neck = _neck_grip(ins, m, a, 0.45, 1.0, rng)
    return Hold(
        [ins.mesh.transformed(m), bow],
        apply(m, ins.anchors["sound"]),
        Hand(neck - 0.025 * rot[:, 2], -UP + 0.5 * RIGHT),
        Hand(frog, RIGHT - 0.6 * UP + 0.2 * BACK),
        ins.params,
    )


def _upright_string(
    ins: Instrument,
    a: dict[str, np.ndarray],
    contact_world: np.ndarray,
    tilt: float,
    turn: float,
    side_lean: float,
    contact_y: float,
) -> tuple[np.ndarray, float]:
    """Pose a cello/bass leaning ``tilt`` degrees back towards the player with its endpin on
    the floor; returns the 4×4 pose and the endpin length."""
    rib = float(ins.params["rib"])
    for _ in range(30):
        t = np.deg2rad(tilt)
        y_ax = np.cos(t) * UP + np.sin(t) * BACK + side_lean * LEFT
        rot = frame(y_ax, _rot(UP, -turn) @ FORWARD)
        local = np.array([0.0, contact_y, 0.0])
        m = pose_matrix(rot, local, contact_world)
        # Endpin tip = contact + rot @ (0, -pin - contact_y, rib/2) on the floor (z = 0).
        pin = (contact_world[2] + rot[2, 2] * rib / 2) / rot[2, 1] - contact_y
        if pin < 0.04:
            tilt += 2.0
        elif pin > 0.55:
            tilt -= 2.0
        else:
            break
    return m, float(np.clip(pin, 0.0, 0.6))


def hold_cello(rng: np.random.Generator, a: dict[str, np.ndarray]) -> Hold:
    """Cello between the knees, endpin on the floor, upper back against the chest."""
    ins = inst.build("cello", rng)
    length = float(ins.params["body_length"])
    contact = (
        a["sternum"] + 0.03 * FORWARD - rng.uniform(0.0, 0.06) * UP + rng.uniform(0, 0.04) * LEFT
    )
    # Leaning back onto the chest and a little to the left: the neck passes the left ear.
    tilt, turn, side = rng.uniform(25, 40), rng.uniform(5, 20), rng.uniform(0.12, 0.28)
    m, pin = _upright_string(ins, a, contact, tilt, turn, side, 0.95 * length)
    ins.params["endpin"] = pin
    pin_mesh = inst.endpin(ins.anchors["endpin"], pin).transformed(m)
    bow, frog = _bow(ins, m, a, rng, crossing=20)
    neck = _neck_grip(ins, m, a, 0.0, 1.0, rng)
    return Hold(
        [ins.mesh.transformed(m), pin_mesh, bow],
        apply(m, ins.anchors["sound"]),
        Hand(neck - 0.03 * m[:3, 2] + 0.02 * LEFT, LEFT + 0.2 * UP + 0.3 * BACK),
        Hand(frog, RIGHT - 0.5 * UP + 0.3 * BACK),
        ins.params,
    )


def hold_double_bass(rng: np.random.Generator, a: dict[str, np.ndarray]) -> Hold:
    """Double bass standing on its endpin at the player's left front, leaning back onto the
    player's left hip; bowed or plucked."""
    ins = inst.build("double_bass", rng)
    length = float(ins.params["body_length"])
    contact = a["belly"] + rng.uniform(0.1, 0.2) * LEFT + 0.04 * FORWARD
    contact[2] = max(contact[2], 0.75)
    tilt = rng.uniform(8, 22)
    # A bassist sets the endpin so the nut is about eye level; that fixes where the
    # instrument's back meets the player's hip.
    t = np.deg2rad(tilt)
    nut_z = a["mouth"][2] + rng.uniform(0.0, 0.2)
    bottom_z = nut_z - float(ins.anchors["nut"][1]) * np.cos(t)
    contact_y = float(np.clip((contact[2] - bottom_z) / np.cos(t), 0.45 * length, 1.05 * length))
    m, pin = _upright_string(ins, a, contact, tilt, rng.uniform(15, 35), 0.0, contact_y)
    ins.params["endpin"] = pin
    parts = [ins.mesh.transformed(m), inst.endpin(ins.anchors["endpin"], pin).transformed(m)]
    neck = _neck_grip(ins, m, a, 0.05, 1.0, rng)
    if rng.random() < 0.6:
        bow, right = _bow(ins, m, a, rng, crossing=25, towards_neck=rng.uniform(0.0, 0.3))
        parts.append(bow)
        ins.params["technique"] = "arco"
    else:
        right = apply(m, _along(ins, "bridge", "neck_body", 0.45)) + 0.04 * m[:3, 2]
        ins.params["technique"] = "pizzicato"
    return Hold(
        parts,
        apply(m, ins.anchors["sound"]),
        Hand(neck - 0.035 * m[:3, 2], LEFT - 0.3 * UP + 0.2 * BACK),
        Hand(right, RIGHT - 0.6 * UP + 0.3 * BACK),
        ins.params,
    )


def hold_guitar(rng: np.random.Generator, a: dict[str, np.ndarray]) -> Hold:
    """Guitar on the lap: classical (waist on the raised left thigh, neck at 25–45°) or folk
    (waist on the right thigh, neck nearly level)."""
    ins = inst.build("guitar", rng)
    classical = bool(a["left_foot_up"][0] > 0)
    angle = rng.uniform(25, 45) if classical else rng.uniform(5, 20)
    t = np.deg2rad(angle)
    y_ax = np.cos(t) * LEFT + np.sin(t) * UP + rng.uniform(0.1, 0.35) * FORWARD
    rot = frame(y_ax, FORWARD + rng.uniform(0.0, 0.3) * UP)
    lap = a["lap_l"] if classical else a["lap_r"]
    depth = float(ins.params["depth"])
    target = np.array([lap[0], a["belly"][1] - depth / 2 - 0.04, lap[2] + 0.005])
    m = pose_matrix(rot, ins.anchors["waist_low"], target)
    neck = _neck_grip(ins, m, a, 0.1, 0.9, rng)
    ins.params["style"] = "classical" if classical else "folk"
    return Hold(
        [ins.mesh.transformed(m)],
        apply(m, ins.anchors["sound"]),
        Hand(neck - 0.03 * rot[:, 2], -UP + 0.3 * LEFT + 0.3 * BACK),
        Hand(apply(m, ins.anchors["pluck"]), 0.5 * RIGHT + 0.6 * UP + 0.6 * BACK),
        ins.params,
    )


def hold_saxophone(rng: np.random.Generator, a: dict[str, np.ndarray]) -> Hold:
    """Saxophone on its strap in front of the torso, mouthpiece in the mouth; a tenor hangs
    further to the player's right with its bell turned right."""
    ins = inst.build("saxophone", rng)
    tenor = ins.params["variant"] in ("tenor", "baritone")
    side = rng.uniform(0.3, 0.55) if tenor else rng.uniform(0.1, 0.35)
    down = _unit(-UP + side * RIGHT + rng.uniform(0.15, 0.4) * FORWARD)
    if ins.params["variant"] == "soprano":  # held out in front like a clarinet
        down = _unit(down + 0.7 * FORWARD - side * RIGHT)
    z_ax = -down
    front = _rot(UP, -rng.uniform(0, 35 if tenor else 15)) @ FORWARD
    y_ax = _unit(front - (front @ z_ax) * z_ax)  # local y: the bell side, forward
    rot = np.column_stack([np.cross(y_ax, z_ax), y_ax, z_ax])
    m = pose_matrix(rot, np.zeros(3), a["mouth"] + 0.004 * FORWARD)
    return Hold(
        [ins.mesh.transformed(m)],
        apply(m, ins.anchors["sound"]),
        Hand(apply(m, ins.anchors["left_hand"]), LEFT - 0.5 * UP + 0.3 * BACK),
        Hand(apply(m, ins.anchors["right_hand"]), RIGHT - 0.3 * UP + 0.6 * BACK),
        ins.params,
    )


def hold_flute(rng: np.random.Generator, a: dict[str, np.ndarray]) -> Hold:
    """Flute level to the right of the head, embouchure under the lower lip."""
    ins = inst.build("flute", rng)
    yaw, dip = np.deg2rad(rng.uniform(8, 30)), np.deg2rad(rng.uniform(0, 15))
    x_ax = np.cos(dip) * (np.cos(yaw) * RIGHT + np.sin(yaw) * FORWARD) - np.sin(dip) * UP
    z_ax = _unit(UP - (UP @ x_ax) * x_ax)
    rot = np.column_stack([x_ax, np.cross(z_ax, x_ax), z_ax])
    m = pose_matrix(rot, ins.anchors["embouchure"], a["mouth"] - 0.016 * UP + 0.004 * FORWARD)
    return Hold(
        [ins.mesh.transformed(m)],
        apply(m, ins.anchors["sound"]),
        Hand(apply(m, ins.anchors["left_hand"]), -UP + 0.2 * LEFT + 0.3 * FORWARD),
        Hand(apply(m, ins.anchors["right_hand"]), 0.7 * RIGHT - 0.7 * UP),
        ins.params,
    )


def hold_clarinet(rng: np.random.Generator, a: dict[str, np.ndarray]) -> Hold:
    """Clarinet from the mouth down and forward, 25–45° from vertical."""
    ins = inst.build("clarinet", rng)
    t = np.deg2rad(rng.uniform(25, 45))
    if ins.params.get("variant") == "bass":
        t /= 3  # a bass clarinet stands nearly upright between the knees
    elif ins.params.get("variant") == "alto":
        t /= 1.8  # an alto clarinet hangs from a neck strap, more upright than a B-flat
    down = _rot(UP, rng.uniform(-8, 8)) @ (np.cos(t) * -UP + np.sin(t) * FORWARD)
    z_ax = -down
    y_ax = _unit(BACK - (BACK @ z_ax) * z_ax)  # hand anchors sit on the player's side (+y)
    rot = np.column_stack([np.cross(y_ax, z_ax), y_ax, z_ax])
    m = pose_matrix(rot, np.zeros(3), a["mouth"] + 0.006 * FORWARD)
    return Hold(
        [ins.mesh.transformed(m)],
        apply(m, ins.anchors["sound"]),
        Hand(apply(m, ins.anchors["left_hand"]), LEFT - 0.7 * UP),
        Hand(apply(m, ins.anchors["right_hand"]), RIGHT - 0.7 * UP),
        ins.params,
    )


def _brass_frame(rng: np.random.Generator, dip: float, yaw: float, roll: float) -> np.ndarray:
    x_ax = _rot(UP, yaw) @ (np.cos(np.deg2rad(dip)) * FORWARD - np.sin(np.deg2rad(dip)) * UP)
    z_ax = _rot(x_ax, roll) @ _unit(UP - (UP @ x_ax) * x_ax)
    return np.column_stack([x_ax, np.cross(z_ax, x_ax), z_ax])


def hold_trumpet(rng: np.random.Generator, a: dict[str, np.ndarray]) -> Hold:
    """Trumpet forward from the mouth, bell level or slightly down."""
    ins = inst.build("trumpet", rng)
    rot = _brass_frame(rng, rng.uniform(0, 20), rng.uniform(-8, 8), rng.uniform(-10, 10))
    m = pose_matrix(rot, np.zeros(3), a["mouth"] + 0.004 * FORWARD)
    return Hold(
        [ins.mesh.transformed(m)],
        apply(m, ins.anchors["sound"]),
        Hand(apply(m, ins.anchors["left_hand"]), 0.6 * LEFT - UP),
        Hand(apply(m, ins.anchors["right_hand"]), 0.6 * RIGHT - UP),
        ins.params,
    )


def hold_trombone(rng: np.random.Generator, a: dict[str, np.ndarray]) -> Hold:
    """Trombone forward from the mouth, bell to the left of the face, slide out as far as
    the right arm reaches."""
    dip = rng.uniform(5, 25)
    tilt = rng.uniform(10, 35)
    rot = _brass_frame(rng, dip, rng.uniform(-5, 5), tilt)
    mouth = a["mouth"] + 0.004 * FORWARD
    reach = float(a["reach_r"][0])
    lateral = np.linalg.norm(
        (a["shoulder_r"] - mouth) - ((a["shoulder_r"] - mouth) @ rot[:, 0]) * rot[:, 0]
    )
    along = (a["shoulder_r"] - mouth) @ rot[:, 0]
    max_ext = np.sqrt(max(reach**2 - lateral**2, 0.0)) + along - 0.12
    ins = inst.trombone(rng, max_extension=float(max_ext), style=styles.draw("trombone", rng))
    m = pose_matrix(rot, np.zeros(3), mouth)
    return Hold(
        [ins.mesh.transformed(m)],
        apply(m, ins.anchors["sound"]),
        Hand(apply(m, ins.anchors["left_hand"]), LEFT - 0.7 * UP),
        Hand(apply(m, ins.anchors["right_hand"]), 0.6 * RIGHT - UP),
        ins.params,
    )


def hold_piano(rng: np.random.Generator, a: dict[str, np.ndarray]) -> Hold:
    """Pianist on a bench at the keyboard, hands on the keys."""
    ins = inst.build("piano", rng)
    front = a["sternum"][1] - rng.uniform(0.14, 0.26)
    m = pose_matrix(np.eye(3), np.zeros(3), np.array([rng.uniform(-0.12, 0.12), front, 0.0]))
    return Hold(
        [ins.mesh.transformed(m)],
        apply(m, ins.anchors["sound"]),
        Hand(apply(m, ins.anchors["keys_left"]), LEFT - 0.5 * UP + 0.4 * BACK),
        Hand(apply(m, ins.anchors["keys_right"]), RIGHT - 0.5 * UP + 0.4 * BACK),
        ins.params,
    )


def hold_none(rng: np.random.Generator, a: dict[str, np.ndarray]) -> Hold:
    """A person without an instrument: conducting (arms up, maybe a baton), hands clasped,
    arms hanging, or (seated) hands on the lap."""
    mode = str(a["mode"])
    params: dict[str, float | str] = {"mode": mode}
    parts: list[Mesh] = []
    if mode == "conducting":
        left = (
            a["shoulder_l"]
            + rng.uniform(0.2, 0.45) * FORWARD
            + rng.uniform(0.0, 0.3) * LEFT
            + rng.uniform(-0.2, 0.25) * UP
        )
        right = (
            a["shoulder_r"]
            + rng.uniform(0.2, 0.45) * FORWARD
            + rng.uniform(0.0, 0.3) * RIGHT
            + rng.uniform(-0.2, 0.3) * UP
        )
        if rng.random() < 0.7:
            direction = _unit(FORWARD + rng.uniform(-0.3, 0.6) * UP + rng.uniform(0, 0.5) * LEFT)
            stick = baton(rng)
            parts.append(
                stick.transformed(
                    pose_matrix(frame(direction, UP)[:, [1, 0, 2]], np.zeros(3), right)
                )
            )
        hands = (Hand(left, LEFT - UP), Hand(right, RIGHT - UP))
    elif mode == "lap":
        hands = (
            Hand(a["lap_l"] + 0.04 * UP, LEFT * 0.3 + BACK),
            Hand(a["lap_r"] + 0.04 * UP, RIGHT * 0.3 + BACK),
        )
    elif mode == "clasped":
        centre = a["belly"] + rng.uniform(0.08, 0.14) * FORWARD - rng.uniform(0.0, 0.15) * UP
        hands = (Hand(centre + 0.03 * LEFT, LEFT - UP), Hand(centre + 0.03 * RIGHT, RIGHT - UP))
    else:
        hands = (None, None)
    return Hold(parts, a["mouth"].copy(), hands[0], hands[1], params)


HOLDS: dict[str, Callable[[np.random.Generator, dict[str, np.ndarray]], Hold]] = {
    "violin": hold_violin,
    "cello": hold_cello,
    "double_bass": hold_double_bass,
    "guitar": hold_guitar,
    "saxophone": hold_saxophone,
    "flute": hold_flute,
    "clarinet": hold_clarinet,
    "trumpet": hold_trumpet,
    "trombone": hold_trombone,
    "piano": hold_piano,
    "none": hold_none,
}
