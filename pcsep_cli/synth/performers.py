"""Performers: an anny body (``body.py``) posed to hold its instrument (``placement.py``),
dressed, seated on a chair or bench when the instrument is played seated.

Body frame: metres, z up, floor at z = 0, the body faces -y, its left hand is on +x.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pcsep_cli.synth import furniture as furniture_
from pcsep_cli.synth.body import (
    FORWARD,
    LEFT,
    REGIONS,
    UP,
    Body,
    BodyModel,
    body_model,
    posture,
    solve_arm,
)
from pcsep_cli.synth.meshes import Mesh

if TYPE_CHECKING:
    from pcsep_cli.synth import placement

SKIN_TONES = [(241, 194, 167), (224, 172, 138), (198, 134, 98), (160, 102, 70), (110, 70, 50)]
HAIR = [(30, 22, 18), (70, 45, 25), (140, 100, 55), (190, 160, 110), (120, 120, 120)]
CLOTHES = [(20, 20, 22), (35, 35, 40), (240, 240, 235), (40, 50, 90), (110, 30, 35), (90, 90, 95)]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / (np.linalg.norm(v) + 1e-12)


# Probability that a player of each class sits (cello, guitar and piano always do).
SEATED = {
    "violin": 0.6,
    "cello": 1.0,
    "double_bass": 0.0,
    "guitar": 1.0,
    "saxophone": 0.5,
    "flute": 0.65,
    "clarinet": 0.65,
    "trumpet": 0.6,
    "trombone": 0.6,
    "piano": 1.0,
}


@dataclass
class Performer:
    """A body with its instrument and furniture, in the body frame.

    Attributes:
        label: instrument class, or ``"none"``.
        mesh: everything, one mesh.
        body: the posed body alone.
        instrument: the instrument with its bow and endpin (a baton, or nothing, for
            ``"none"``).
        furniture: chair or bench (empty mesh when standing).
        sound: the sounding point [3].
        params: what was drawn (instrument dimensions, posture, mode of a ``none`` person)
            and ``hand_error_l`` / ``hand_error_r``: how far (m) each palm ended from where the
            instrument wants it (0 when the arm is free).
    """

    label: str
    mesh: Mesh
    body: Body
    instrument: Mesh
    furniture: Mesh
    sound: np.ndarray
    params: dict[str, float | str]


def _world_rotation(model: BodyModel, rotations: dict[str, np.ndarray], bone: str) -> np.ndarray:
    i = model.index[bone]
    while i >= 0:
        if model.labels[i] in rotations:
            return rotations[model.labels[i]]
        i = model.parents[i]
    return np.eye(3)


def make_performer(
    rng: np.random.Generator,
    label: str,
    body_id: int,
    *,
    mode: str | None = None,
    seated: bool | None = None,
) -> Performer:
    """Pose body ``body_id`` playing ``label`` (or a person without instrument for ``"none"``).

    Args:
        rng: draws everything but the body's shape and colouring.
        label: an instrument class or ``"none"``.
        body_id: fixes the body shape, skin and hair.
        mode: for ``"none"``: ``"conducting"``, ``"clasped"``, ``"hanging"`` (standing) or
            ``"lap"`` (seated on a chair); drawn when None.
        seated: True seats a player whose instrument can be played seated (all but the
            double bass), False stands one that can stand; None draws it per class.

    Returns:
        The performer in its body frame (floor z = 0, facing -y).

    Raises:
        ValueError: unknown label or mode.
        DatasetError: anny is not installed.
    """
    from pcsep_cli.synth import placement

    if label not in placement.HOLDS:
        raise ValueError(
            f"unknown performer label {label!r}; expected one of {sorted(placement.HOLDS)}"
        )
    model = body_model()
    # The rng is drawn in this order: stance, posture, seat, hold, free arms, colours, skirt.
    mode, seated = _stance(rng, label, mode, seated)
    kwargs, left_foot_up = _posture_kwargs(rng, label)
    post = posture(rng, seated, left_foot_up=left_foot_up, **kwargs)
    transforms, poses = model.forward(body_id, post.rotations)
    lift = _lift(model, body_id, transforms)
    anchors = _anchors(model, body_id, transforms, poses, lift, left_foot_up)
    seat, furniture = _seat(rng, model, body_id, transforms, lift, label, seated)
    hold = _hold(rng, label, anchors, mode)
    rotations, targets = _reach(
        rng, model, body_id, post.rotations, poses, lift, anchors, hold, seated
    )
    transforms, poses = model.forward(body_id, rotations)
    vertices = model.skin(body_id, transforms) + lift
    errors = _hand_errors(model, poses, lift, targets)
    face_rgb, skirt, skirt_kind = _dress(rng, model, body_id, vertices, anchors, seated)
    body = Body(vertices, model.faces, face_rgb, anchors, model.stature(body_id), seated, seat)
    instrument = Mesh.concat(hold.parts)
    clothes = [] if skirt is None else [skirt]
    mesh = Mesh.concat([body.mesh, *clothes, instrument, furniture])
    params = dict(hold.params) | {"seated": float(seated)} | errors
    params["skirt"] = skirt_kind
    if mode is not None:
        params["mode"] = mode
    return Performer(label, mesh, body, instrument, furniture, hold.sound, params)


def _stance(
    rng: np.random.Generator, label: str, mode: str | None, seated: bool | None
) -> tuple[str | None, bool]:
    """The mode of a person without instrument (drawn when None) and whether the body sits."""
    if label == "none":
        modes = ("conducting", "clasped", "hanging", "lap")
        mode = mode or str(rng.choice(modes, p=[0.5, 0.15, 0.15, 0.2]))
        if mode not in modes:
            raise ValueError(f"unknown mode {mode!r} for a person without instrument")
        return mode, mode == "lap"
    drawn = bool(rng.random() < SEATED[label])
    can_sit, can_stand = SEATED[label] > 0, SEATED[label] < 1
    sits = drawn if seated is None else (seated and can_sit) or (not can_stand)
    return mode, sits


def _posture_kwargs(rng: np.random.Generator, label: str) -> tuple[dict, float]:
    """The class's own posture arguments (head turn, knee spread, lean) and raised left foot."""
    kwargs: dict = {}
    left_foot_up = 0.0
    if label == "violin":
        kwargs["head"] = (rng.uniform(5, 15), rng.uniform(5, 15), rng.uniform(10, 25))
    elif label == "flute":
        kwargs["head"] = (0.0, -rng.uniform(0, 10), rng.uniform(5, 20))
    elif label == "cello":
        kwargs["spread"] = rng.uniform(22, 32)
    elif label == "guitar" and rng.random() < 0.6:
        left_foot_up = rng.uniform(10, 20)
    elif label == "piano":
        kwargs["lean"] = rng.uniform(2, 12)
    elif label == "double_bass":
        kwargs["lean"] = rng.uniform(6, 18)  # over the instrument, towards the bridge
        kwargs["bend_right"] = rng.uniform(0, 10)
    return kwargs, left_foot_up


def _lift(model: BodyModel, body_id: int, transforms: np.ndarray) -> np.ndarray:
    """The offset [3] that puts the posed body's lowest sole on the floor."""
    ground = -float(model.skin(body_id, transforms, model.anchor_ids["soles"])[:, 2].min())
    return np.array([0.0, 0.0, ground])


def _anchors(
    model: BodyModel,
    body_id: int,
    transforms: np.ndarray,
    poses: np.ndarray,
    lift: np.ndarray,
    left_foot_up: float,
) -> dict[str, np.ndarray]:
    """The posed body's grounded anchors, with its shoulders and each arm's reach."""
    ids = model.anchor_ids
    anchors = {
        name: model.skin(body_id, transforms, idx).mean(0) + lift
        for name, idx in ids.items()
        if name not in ("soles", "buttocks")
    }
    heads = model.rest(body_id)["heads"]
    for side in ("l", "r"):
        s = side.upper()
        anchors[f"shoulder_{side}"] = poses[model.index[f"upperarm01.{s}"], :3, 3] + lift
        e, w, k = (model.index[f"{b}.{s}"] for b in ("lowerarm01", "wrist", "finger3-1"))
        reach = (
            np.linalg.norm(heads[e] - heads[model.index[f"upperarm01.{s}"]])
            + np.linalg.norm(heads[w] - heads[e])
            + 0.6 * np.linalg.norm(heads[k] - heads[w])
        )
        anchors[f"reach_{side}"] = np.array([reach])
    anchors["left_foot_up"] = np.array([left_foot_up])
    anchors["mode"] = np.array([0.0])
    return anchors


def _seat(
    rng: np.random.Generator,
    model: BodyModel,
    body_id: int,
    transforms: np.ndarray,
    lift: np.ndarray,
    label: str,
    seated: bool,
) -> tuple[float | None, Mesh]:
    """The seat height and a chair or bench (piano) under the buttocks; None, empty standing."""
    if not seated:
        return None, Mesh.concat([])
    bottom = model.skin(body_id, transforms, model.anchor_ids["buttocks"]) + lift
    seat = float(bottom[:, 2].min())
    centre = bottom[bottom[:, 2] < seat + 0.03].mean(0)
    place = np.array([centre[0], centre[1] - 0.04, 0.0])
    if label == "piano":
        return seat, Mesh.concat([furniture_.bench(rng, seat).mesh.translated(place)])
    return seat, Mesh.concat([furniture_.chair(rng, seat).mesh.translated(place + [0, 0.03, 0])])


def _hold(
    rng: np.random.Generator, label: str, anchors: dict[str, np.ndarray], mode: str | None
) -> placement.Hold:
    """The instrument placed against the body (a ``none`` person's hold also gets its mode)."""
    from pcsep_cli.synth import placement

    hold_anchors = dict(anchors)
    if label == "none":
        hold_anchors["mode"] = mode  # type: ignore[assignment]
    return placement.HOLDS[label](rng, hold_anchors)


def _reach(
    rng: np.random.Generator,
    model: BodyModel,
    body_id: int,
    rotations: dict[str, np.ndarray],
    poses: np.ndarray,
    lift: np.ndarray,
    anchors: dict[str, np.ndarray],
    hold: placement.Hold,
    seated: bool,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Arm rotations putting each hand on its hold target (or lap, or hanging), and the targets."""
    from pcsep_cli.synth import placement

    rotations = dict(rotations)
    targets = {}
    for side, hand in (("L", hold.left), ("R", hold.right)):
        if hand is not None:
            targets[side] = hand.target
        else:
            hip = anchors[f"lap_{side.lower()}"]
            sign = 1.0 if side == "L" else -1.0
            if seated:
                hand = placement.Hand(hip + np.array([sign * 0.1, 0.12, 0.06]), -UP + 0.2 * LEFT)
            else:
                target = anchors[f"shoulder_{side.lower()}"] + np.array(
                    [sign * rng.uniform(0.04, 0.1), rng.uniform(-0.05, 0.08), -0.62]
                )
                hand = placement.Hand(target, sign * LEFT * 0.3 - FORWARD)
        parent = _world_rotation(model, rotations, f"shoulder01.{side}")
        upper, fore = solve_arm(
            model, body_id, side, poses, parent, hand.target - lift, _unit(hand.pole)
        )
        rotations[f"upperarm01.{side}"] = upper
        rotations[f"lowerarm01.{side}"] = fore
    return rotations, targets


def _hand_errors(
    model: BodyModel, poses: np.ndarray, lift: np.ndarray, targets: dict[str, np.ndarray]
) -> dict[str, float]:
    """How far (m) each posed palm ended from its target (0 for a free arm)."""
    errors = {}
    for side in ("L", "R"):
        wrist = poses[model.index[f"wrist.{side}"], :3, 3]
        knuckle = poses[model.index[f"finger3-1.{side}"], :3, 3]
        palm = wrist + 0.6 * (knuckle - wrist) + lift
        target = targets.get(side)
        errors[f"hand_error_{side.lower()}"] = (
            0.0 if target is None else float(np.linalg.norm(palm - target))
        )
    return errors


def _dress(
    rng: np.random.Generator,
    model: BodyModel,
    body_id: int,
    vertices: np.ndarray,
    anchors: dict[str, np.ndarray],
    seated: bool,
) -> tuple[np.ndarray, Mesh | None, str]:
    """Face colours, a skirt or dress (or None) and its kind: ``none``, ``long``, ``knee``."""
    face_rgb, outfit = _colours(model, body_id, rng)
    if model.phenotype(body_id)["gender"] > 0.6 and rng.random() < 0.5:
        long = bool(rng.random() < 0.6)
        colour = outfit["top" if long and rng.random() < 0.7 else "legs"]
        skirt = _skirt(model, vertices, anchors, seated, long, colour, rng)
        return face_rgb, skirt, "long" if long else "knee"
    return face_rgb, None, "none"


def _skirt(
    model: BodyModel,
    vertices: np.ndarray,
    anchors: dict[str, np.ndarray],
    seated: bool,
    long: bool,
    colour: np.ndarray,
    rng: np.random.Generator,
) -> Mesh:
    """A skirt or dress below the waist: the convex hull of the legs from the waist to the
    hem, flared at the hem; seated, it drapes from the knees down. anny bodies are unclothed,
    and a long concert dress changes a player's outline more than anything else they wear."""
    from scipy.spatial import ConvexHull

    legs = vertices[model.region == "legs"]
    waist = anchors["belly"][2] + 0.03
    knee = 0.5 * (anchors["knee_l"][2] + anchors["knee_r"][2])
    if seated:
        hem = rng.uniform(0.05, 0.25) if long else knee - rng.uniform(0.05, 0.15)
        upper = legs[(legs[:, 2] <= waist) & (legs[:, 2] >= knee - 0.08)]
        # fabric hangs from the front of the knees to the hem
        front = upper[upper[:, 1] < np.percentile(upper[:, 1], 15)]
        hang = np.column_stack([front[:, :2] - [0.0, 0.02], np.full(len(front), hem)])
        points = np.vstack([upper, hang])
    else:
        hem = rng.uniform(0.04, 0.2) if long else knee - rng.uniform(-0.05, 0.12)
        upper = legs[(legs[:, 2] <= waist) & (legs[:, 2] >= hem)]
        axis = upper[:, :2].mean(0)
        low = upper[upper[:, 2] < hem + 0.12]
        flare = rng.uniform(1.05, 1.3) if long else rng.uniform(1.0, 1.15)
        ring = np.column_stack([axis + (low[:, :2] - axis) * flare, np.full(len(low), hem)])
        points = np.vstack([upper, ring])
    hull = ConvexHull(points)
    used = np.unique(hull.simplices)
    remap = np.full(len(points), -1)
    remap[used] = np.arange(len(used))
    faces = remap[hull.simplices].astype(np.int64)
    rgb = np.tile(np.clip(colour, 0, 255).astype(np.uint8), (len(faces), 1))
    return Mesh(points[used], faces, rgb)


def _colours(
    model: BodyModel, body_id: int, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Face colours (skin and hair fixed by the body, clothes drawn per scene) and the
    clothes' colours."""
    own = np.random.default_rng([int(body_id), 0x636F6C])
    skin = np.array(SKIN_TONES[int(own.integers(len(SKIN_TONES)))], float)
    hair = np.array(HAIR[int(own.integers(len(HAIR)))], float)
    black = rng.random() < 0.55  # concert black
    top = np.array(CLOTHES[0 if black else int(rng.integers(len(CLOTHES)))], float)
    legs = np.array(CLOTHES[0 if black else int(rng.integers(len(CLOTHES)))], float)
    palette = {"head": skin, "hand": skin, "top": top, "legs": legs, "shoe": np.full(3, 15.0)}
    rgb = np.stack([palette[r] for r in REGIONS])[model.region_code]
    if own.random() < 0.9:
        rgb[model.hair_mask(long=bool(own.random() < 0.4))] = hair
    face_rgb = rgb[model.faces[:, 0]]
    face_rgb = np.clip(face_rgb * rng.uniform(0.9, 1.1), 0, 255).astype(np.uint8)
    return face_rgb, {"top": top, "legs": legs}
