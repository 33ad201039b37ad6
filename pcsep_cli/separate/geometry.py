"""Microphone geometry of a separation job (``--mics FILE``), checked before any model loads.

:func:`read_job_mics` reads the file (:func:`~pcsep_cli.io.mics.read_mics`, the cloud's
``--units``) and refuses one whose microphone count is not the recording's channel count.
:func:`check_mics_clear` refuses a microphone inside a performer once the performers are found.

*Inside a performer* means: closer than :data:`CLEARANCE_M` horizontally to the centre of a
found cluster's footprint (:attr:`~pcsep_cli.scene.Performer.position`) and lower than
:data:`HEADROOM_M` below its top, both in the scene's floor frame. That is a column through the
body of a performer, standing or seated. Not the cluster's bounding box: an axis-aligned box
around a performer who faces the room diagonally holds much empty space where spot microphones
stand, and a microphone stand close to a performer may be scanned into the performer's
cluster. Every cluster counts (a chair, a music stand), as it is checked before the model has
said which are performers; a microphone at the top of its own stand, scanned as a cluster of
its own, is clear of it by the headroom. Such a microphone is nearly always a position in
another frame or other units than the cloud's, or axes swapped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pcsep_cli.errors import MicrophoneError
from pcsep_cli.io.mics import Microphones, read_mics

if TYPE_CHECKING:  # pragma: no cover
    from pcsep_cli.scene import Performer

__all__ = [
    "CLEARANCE_M",
    "FAR_M",
    "HEADROOM_M",
    "check_mics_clear",
    "ignored_note",
    "mics_far_warning",
    "read_job_mics",
]

CLEARANCE_M = 0.25
"""A microphone nearer than this (horizontally) to a cluster's centre is inside it..."""
HEADROOM_M = 0.15
"""... unless it is no more than this below the cluster's top, or above it."""
FAR_M = 50.0
"""Microphones all farther than this from every performer get a word on frames and units."""
_FRAME_HINT = "positions are in the cloud's frame and units, --units applying to both"


def read_job_mics(
    path: str | os.PathLike[str], audio: Path, channels: int, units: str | None = None
) -> Microphones:
    """The microphones of a recording of ``channels`` channels.

    Raises:
        MicrophoneError: see :func:`~pcsep_cli.io.mics.read_mics`, or the file lists another
            number of microphones than the recording has channels (both named).
    """
    mics = read_mics(path, units=units)
    if len(mics) != channels:
        have = f"{len(mics)} microphone" + ("s" if len(mics) != 1 else "")
        raise MicrophoneError(
            f"lists {have}, but the recording {audio} has {channels} channel"
            + ("s" if channels != 1 else ""),
            path,
            "list one microphone per channel of the recording, in channel order",
        )
    return mics


def _floor_frame(performer: Performer, points: np.ndarray) -> np.ndarray:
    """``points`` in the performer's canonical frame (floor at z = 0, footprint centre at
    x = y = 0), like :meth:`~pcsep_cli.scene.Performer.local_points`."""
    return (points - performer.position) @ performer.frame[:3, :3].T  # rigid: no shift left


def check_mics_clear(mics: Microphones, performers: Sequence[Performer]) -> None:
    """Refuse a microphone inside a found cluster (module docstring).

    Raises:
        MicrophoneError: naming the first such microphone, the cluster's position and the fix.
    """
    for performer in performers:
        top = float(performer.local_points()[:, 2].max())
        local = _floor_frame(performer, mics.positions)
        across = np.hypot(local[:, 0], local[:, 1])
        inside = np.flatnonzero((across < CLEARANCE_M) & (local[:, 2] < top - HEADROOM_M))
        if inside.size:
            i = int(inside[0])
            at = ", ".join(f"{v:.2f}" for v in mics.positions[i])
            centre = ", ".join(f"{v:.2f}" for v in performer.position[:2])
            raise MicrophoneError(
                f"microphones[{i}] (channel {i + 1}) at [{at}] m is inside the performer at "
                f"[{centre}] m: {across[i]:.2f} m from its centre, {local[i, 2]:.2f} m up, "
                f"below its top at {top:.2f} m",
                mics.source,
                f"{_FRAME_HINT}; a close microphone stands at least {CLEARANCE_M} m from a "
                "performer's centre, or above their head",
            )


def mics_far_warning(mics: Microphones, performers: Sequence[Performer]) -> str | None:
    """A word when every microphone is more than :data:`FAR_M` from every performer (wrong
    units or frame, most likely), naming the file; None otherwise or without performers."""
    if not performers:
        return None
    centres = np.array([p.position for p in performers])
    nearest = float(np.linalg.norm(mics.positions[:, None] - centres[None], axis=2).min())
    if nearest <= FAR_M:
        return None
    return (
        f"{mics.source}: the microphones are {nearest:,.0f} m from the nearest performer; "
        f"check that their {_FRAME_HINT}"
    )


def ignored_note(model: dict[str, Any]) -> str:
    """What the run says when ``--mics`` is given to a model that does not read geometry.

    Args:
        model: the manifest's model entry (:meth:`Separator.model_info`).
    """
    name = model.get("id") or "this model"
    if model.get("source") == "local":
        name = Path(str(name)).name
    return (
        f"model {name} ignores microphone geometry: --mics is recorded in the manifest, "
        "the stems are separated as without it"
    )


SWAP_MARGIN = 0.03
"""How much better (mean spatial score, 0 to 1) another channel order must explain the
performers' bins before the run says the channels look swapped. Chosen on pcsep's training
arrays with the score weighted by each performer's mono mask: the right order was beaten by
more than 0.02 in under 1 recording in 10 (spaced omni pairs, the noisiest), a reversed pair of
mixed instruments by 0.06-0.09 (median). The Separator weights all louder bins alike; so run,
on 200 test recordings: 1 false alarm, 82 reversals found (the model card has the breakdown)."""


def channel_order_warning(check: dict[str, Any] | None, mics: Microphones | None) -> str | None:
    """A word when the channels' delays and levels match the performers better in another
    order (:func:`pcsep_cli.nets.spatial.channel_order_check`), naming the file; else None."""
    if check is None or mics is None:
        return None
    if check["best_score"] - check["score"] <= SWAP_MARGIN:
        return None
    order = ",".join(str(i + 1) for i in check["best_order"])
    where = f"{mics.source}: " if mics.source is not None else ""
    return (
        f"{where}the recording's channels match the performers' places better in the order "
        f"{order} than as listed (score {check['best_score']:.2f} against "
        f"{check['score']:.2f}): check the channel order of the microphones"
    )
