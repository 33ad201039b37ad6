"""Examples of the real-capture layout: what a group that records its own ensembles has.

A captured example is a folder (``DATA/<split>/<example>/``) holding::

    meta.json               {"performers": [{"name": "alice", "instrument": "violin",
                                             "position": [x, y, z]}, ...],
                             "microphones": [microphone, ...]}   (optional)
    mixture.wav             the room microphones (any format libsndfile reads)
    stems/<name>.wav        each performer's close microphone (``stem`` in meta.json may name
                            another file), at the mixture's rate and channel count
    performers/<name>.ply   each performer's own cloud (PLY, LAS/LAZ, PCD, E57) ...
    scene.ply               ... or the whole scan: the scene step (as ``pcsep separate``)
                            finds the performers and each is matched to its ``position``
                            (horizontal distance, within 1 m, Hungarian)

No ``labels.npy``: that is what ``pcsep synth`` adds so its scenes can be cut point by point.
``position`` is in the cloud's frame and units (after ``--units``); it is needed only when
the clouds come from ``scene.*``. Close microphones hear the other performers too (spill):
trained on them, the model learns to leave that much of its neighbours in each stem, and
scores against them are capped by the spill (the reference itself holds the others).

``microphones`` (optional) places the room microphones, one per channel of the mixture in
channel order, in the cloud's frame: ``{"position", "direction", "pattern"}`` objects or plain
``[x, y, z]`` lists (omni), as in ``mics.json`` (:mod:`pcsep_cli.io.mics`;
:func:`example_microphones`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pcsep_cli.errors import DatasetError, SceneError

if TYPE_CHECKING:  # pragma: no cover
    from pcsep_cli.io.mics import Microphones

__all__ = [
    "AUDIO_EXTS",
    "FOOTPRINT_HEIGHT",
    "CAPTURE_LAYOUT",
    "CLOUD_EXTS",
    "assumed_sources",
    "example_microphones",
    "find_file",
    "performer_clouds",
    "stem_file",
]

AUDIO_EXTS = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3", ".opus")
CLOUD_EXTS = (".ply", ".las", ".laz", ".pcd", ".e57")
CAPTURE_LAYOUT = (
    "an example holds meta.json (performers: name, instrument, position), mixture.wav, "
    "stems/<name>.wav, and performers/<name>.ply or a whole scene.ply"
)


def find_file(folder: Path, stem: str, exts: Sequence[str]) -> Path | None:
    """``folder/stem`` with the first of ``exts`` that exists, or None."""
    for ext in exts:
        if (folder / f"{stem}{ext}").is_file():
            return folder / f"{stem}{ext}"
    return None


def example_microphones(meta: dict, folder: Path, channels: int) -> Microphones | None:
    """The microphones an example's ``meta.json`` lists, one per channel of its mixture.

    Args:
        meta: the parsed ``meta.json``.
        folder: the example (for messages).
        channels: the mixture's channel count.

    Returns:
        None when ``microphones`` is absent, null or empty (not known).

    Raises:
        DatasetError: an entry that :func:`~pcsep_cli.io.mics.parse_microphones` refuses, or
            not one microphone per channel.
    """
    from pcsep_cli.io.mics import parse_microphones

    entries = meta.get("microphones")
    if entries is None or entries == []:
        return None
    meta_file = folder / "meta.json"
    mics = parse_microphones(entries, source=meta_file, error=DatasetError)
    if len(mics) != channels:
        raise DatasetError(
            f"microphones lists {len(mics)}, but the mixture has {channels} channels",
            meta_file,
            "list one microphone per channel of the mixture, in channel order",
        )
    return mics


def _name(perf: dict, folder: Path) -> str:
    name = perf.get("name")
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise DatasetError(
            f"a performer in meta.json has no usable name ({name!r})",
            folder / "meta.json",
            'give each performer a plain name, e.g. "alice"',
        )
    return name


def stem_file(folder: Path, perf: dict) -> Path:
    """The close-microphone file of one performer: ``stem`` from meta.json, else
    ``stems/<name>.*``.

    Raises:
        DatasetError: no such file (naming what was looked for).
    """
    if perf.get("stem"):
        path = folder / str(perf["stem"])
        if not path.is_file():
            raise DatasetError(f"stem {perf['stem']} named in meta.json is missing", folder)
        return path
    name = _name(perf, folder)
    found = find_file(folder / "stems", name, AUDIO_EXTS)
    if found is None:
        raise DatasetError(
            f"performer {name!r} has no stems/{name}.wav (or .flac, .ogg ...)",
            folder,
            CAPTURE_LAYOUT,
        )
    return found


def performer_clouds(
    folder: Path,
    performers: Sequence[dict],
    scene_xyz: np.ndarray | None = None,
    *,
    unmatched: str = "raise",
) -> list[np.ndarray | None]:
    """Each performer's points ``(M, 3)`` in the cloud's frame, without ``labels.npy``.

    ``performers/<name>.*`` when the example has that folder; otherwise the scene step runs
    on ``scene.*`` (or ``scene_xyz``, when the caller read it already) and each performer
    gets the cluster nearest its ``position``.

    Args:
        folder: the example.
        performers: its ``meta.json`` entries.
        scene_xyz: the scene's points, when read already.
        unmatched: ``"raise"``, or ``"skip"``: None for a performer the scene step did not
            find (hidden, or merged with a neighbour) instead of an error.

    Raises:
        DatasetError: no clouds, a performer without a cloud file or a ``position``, or (with
            ``unmatched="raise"``) a performer with no cluster within 1 m of its position.
    """
    from pcsep_cli.io.pointcloud import read_cloud

    names = [_name(p, folder) for p in performers]
    own = folder / "performers"
    if own.is_dir():
        clouds: list[np.ndarray | None] = []
        for name in names:
            path = find_file(own, name, CLOUD_EXTS)
            if path is None:
                raise DatasetError(
                    f"performer {name!r} has no performers/{name}.ply (or .las, .pcd, .e57)",
                    folder,
                    CAPTURE_LAYOUT,
                )
            clouds.append(read_cloud(path).xyz)
        return clouds
    if scene_xyz is None:
        scene = find_file(folder, "scene", CLOUD_EXTS)
        if scene is None:
            raise DatasetError("no performers/ folder and no scene.ply", folder, CAPTURE_LAYOUT)
        scene_xyz = read_cloud(scene).xyz
    return _cut_by_scene_step(folder, performers, names, scene_xyz, unmatched == "skip")


def _cut_by_scene_step(
    folder: Path, performers: Sequence[dict], names: list[str], xyz: np.ndarray, skip: bool
) -> list[np.ndarray | None]:
    from pcsep_cli.io.pointcloud import PointCloud
    from pcsep_cli.scene import find_scene_performers
    from pcsep_cli.train.scene_match import MATCH_RADIUS, match_nearest

    positions = []
    for name, perf in zip(names, performers, strict=True):
        pos = perf.get("position")
        if not isinstance(pos, list) or len(pos) < 2 or not np.all(np.isfinite(pos[:2])):
            raise DatasetError(
                f"performer {name!r} has no position in meta.json, and the example has no "
                "performers/ folder",
                folder,
                'add "position": [x, y, z] (the scan\'s frame) or performers/<name>.ply',
            )
        positions.append([float(pos[0]), float(pos[1])])
    try:
        found = find_scene_performers([PointCloud(np.ascontiguousarray(xyz, dtype=np.float64))])
    except SceneError as err:
        raise DatasetError(f"the scene step found no performer ({err.message})", folder) from None
    pairs = dict(
        (i, j) for i, j in match_nearest(np.array(positions), np.array([f.position for f in found]))
    )
    missing = [names[i] for i in range(len(names)) if i not in pairs]
    if missing and not skip:
        raise DatasetError(
            f"no cluster of the scene lies within {MATCH_RADIUS:g} m of performer "
            f"{missing[0]!r}'s position",
            folder,
            "check the position (the scan's frame and units) or give performers/<name>.ply",
        )
    return [found[pairs[i]].points if i in pairs else None for i in range(len(names))]


FOOTPRINT_HEIGHT = 1.0
"""Metres above a performer's ``position`` (the footprint's centre, ``meta.json``) where its
sound is assumed to come from when only the footprint is known (label mode with positions)."""


def assumed_sources(performers: list[dict]) -> np.ndarray:
    """``[P, 3]``: each performer's ``position`` lifted by :data:`FOOTPRINT_HEIGHT` (z up),
    where pcsep assumes the sound comes from when scoring or training a spatial model."""
    pos = np.array([p["position"] for p in performers], dtype=np.float64).reshape(-1, 3)
    return pos + np.array([0.0, 0.0, FOOTPRINT_HEIGHT])
