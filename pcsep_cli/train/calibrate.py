"""Calibrate the confidence below which a cluster is ``none`` (``config.none_below``).

A whole-room scan holds much that is not a performer: audience seats, tables, loudspeakers,
stands, cases, panels. The scene step cuts them into clusters like any other, and a classifier
that never saw a row of seats may call it a piano with confidence. Each such stem is a
spurious file for the user. :func:`calibrate` runs the scene step and the classifier on a
dataset's validation scenes (scenes and cloud scenes, never a test split), the same way
``pcsep separate`` does, matches clusters to performers (xy, Hungarian, 1 m:
:mod:`pcsep_cli.train.scene_match`), and picks the lowest threshold at which the clusters
that belong to no performer give at most ``max_spurious`` stems per performer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pcsep_cli.errors import DatasetError, SceneError

__all__ = [
    "Calibration",
    "ClusterRecord",
    "calibrate",
    "choose_threshold",
    "collect",
    "write_calibrated",
]


@dataclass(frozen=True)
class ClusterRecord:
    """One cluster the scene step found.

    Attributes:
        performer: whether it was matched to a performer.
        correct: matched and named right (by its most likely class, whatever the threshold).
        label: the most likely class.
        confidence: its probability.
    """

    performer: bool
    correct: bool
    label: str
    confidence: float


@dataclass(frozen=True)
class Calibration:
    """What :func:`calibrate` measured and chose.

    Attributes:
        threshold: the chosen ``none_below``.
        scenes: scenes read.
        performers: performers in them.
        clusters: clusters found.
        spurious: stems on no performer per performer, at the threshold (and at 0).
        detected: performers with a correctly named stem, as a share, at the threshold (and
            at 0).
        curve: ``(threshold, spurious, detected)`` rows on a grid, for the report.
    """

    threshold: float
    scenes: int
    performers: int
    clusters: int
    spurious: tuple[float, float]
    detected: tuple[float, float]
    curve: list[tuple[float, float, float]]


def _rates(records: Sequence[ClusterRecord], performers: int, t: float) -> tuple[float, float]:
    stems = [r for r in records if r.label != "none" and r.confidence >= t]
    spurious = sum(not r.performer for r in stems)
    detected = sum(r.correct for r in stems)
    return spurious / max(performers, 1), detected / max(performers, 1)


def choose_threshold(
    records: Sequence[ClusterRecord], performers: int, max_spurious: float = 0.01
) -> float:
    """The lowest threshold at which stems of clusters matched to no performer are at most
    ``max_spurious`` per performer: 0, or just above one of the records' confidences (a
    cluster at the threshold keeps its stem). Below 1 always (``none_below`` must be): when
    even the most confident spurious cluster would have to go and it sits at 1.0, the
    largest threshold below 1 is returned and the bound is not met (the report says so)."""
    top = float(np.nextafter(np.float32(1.0), np.float32(0.0)))
    # float32 steps: the Separator compares its float32 probabilities with the threshold.
    above = {float(np.nextafter(np.float32(r.confidence), np.float32(2.0))) for r in records}
    candidates = [0.0, *sorted(above)]
    for t in candidates:
        t = min(t, top)
        if _rates(records, performers, t)[0] <= max_spurious:
            return t
    return top


def collect(
    separator,  # noqa: ANN001 (a Separator; imported lazily with torch)
    folders: Sequence[Path],
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[ClusterRecord], int]:
    """Cluster and classify every scene in ``folders``; returns the records and the number
    of performers."""
    import json

    from pcsep_cli.io.pointcloud import read_cloud
    from pcsep_cli.scene import find_scene_performers
    from pcsep_cli.train.scene_match import match_meta

    records: list[ClusterRecord] = []
    total = 0
    for n, folder in enumerate(folders):
        try:
            meta = json.loads((folder / "meta.json").read_text())
        except (OSError, ValueError) as err:
            raise DatasetError(f"cannot read meta.json: {err}", folder / "meta.json") from None
        people = meta.get("performers", [])
        total += len(people)
        try:
            clusters = find_scene_performers([read_cloud(folder / "scene.ply")])
        except SceneError:
            clusters = []
        named = separator.classify(clusters) if clusters else []
        match = match_meta(np.array([c.position for c in clusters], dtype=np.float64), meta)
        owner = {s: i for i, s in enumerate(match.performer_stem) if s is not None}
        for k, (label, conf) in enumerate(named):
            i = owner.get(k)
            records.append(
                ClusterRecord(
                    performer=i is not None,
                    correct=i is not None and label == people[i]["instrument"],
                    label=label,
                    confidence=float(conf),
                )
            )
        if progress is not None:
            progress(n + 1, len(folders))
    return records, total


def scene_folders(dataset: str | Path, split: str) -> list[Path]:
    """The scenes and cloud scenes of ``split`` in a dataset (``DIR/<split>/*``,
    ``DIR/clouds/<split>/*``) that hold a ``scene.ply``."""
    root = Path(dataset)
    found = [
        f
        for base in (root / split, root / "clouds" / split)
        if base.is_dir()
        for f in sorted(base.iterdir())
        if (f / "scene.ply").is_file() and (f / "meta.json").is_file()
    ]
    if not found:
        raise DatasetError(
            f"no scenes in the {split} split",
            root,
            "give a dataset written by `pcsep synth` (scenes or --cloud-scenes)",
        )
    return found


def calibrate(
    model: str,
    datasets: Sequence[str | Path],
    *,
    split: str = "val",
    max_spurious: float = 0.01,
    views: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Calibration:
    """Measure the clusters of ``split``'s scenes and choose ``none_below``.

    Args:
        model: any model reference (it is run with its threshold switched off).
        datasets: dataset folders whose ``split`` scenes to use.
        split: never ``test``.
        max_spurious: stems on no performer allowed per performer.
        views: headings per cloud (the Separator's default when None).
        progress: called with (scenes done, scenes).

    Raises:
        ValueError: ``split`` is ``test`` or ``max_spurious`` out of [0, 1].
        DatasetError: no scene found.
    """
    import dataclasses

    from pcsep_cli.separate.separator import Separator

    if split == "test":
        raise ValueError("calibrate on a validation split: a test split must stay unseen")
    if not 0 <= max_spurious <= 1:
        raise ValueError(f"max_spurious must be in [0, 1], got {max_spurious}")
    folders = [f for d in datasets for f in scene_folders(d, split)]
    sep = Separator.from_pretrained(model, **({} if views is None else {"views": views}))
    sep.net.config = dataclasses.replace(sep.net.config, none_below=0.0)
    records, performers = collect(sep, folders, progress)
    t = choose_threshold(records, performers, max_spurious)
    grid = sorted({0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, t})
    curve = [(g, *_rates(records, performers, g)) for g in grid]
    at, zero = _rates(records, performers, t), _rates(records, performers, 0.0)
    return Calibration(
        threshold=t,
        scenes=len(folders),
        performers=performers,
        clusters=len(records),
        spurious=(at[0], zero[0]),
        detected=(at[1], zero[1]),
        curve=curve,
    )


def write_calibrated(model: str, threshold: float, out: str | Path, *, overwrite: bool = False):
    """Write ``model`` with ``none_below = threshold`` as a model folder ``out`` (atomically;
    the weights are unchanged).

    Raises:
        ModelError: the model fails its checks, or ``out`` holds a model and ``overwrite`` is
            off.
    """
    import dataclasses

    from pcsep_cli.errors import ModelError
    from pcsep_cli.hub.blend import check_out, write_model_folder
    from pcsep_cli.hub.models import load_model

    out = Path(out)
    check_out(out, overwrite)
    net = load_model(model)
    try:
        net.config = dataclasses.replace(net.config, none_below=float(threshold))
    except ValueError as err:
        raise ModelError(str(err), out, "choose a threshold in [0, 1)") from None
    write_model_folder(net, out)
    return out
