"""Training material in memory: performers' solo audio at the model's rate and their clouds.

It is read from a synthetic dataset folder (``pcsep synth``, layout in
``pcsep_cli.synth.dataset``), from two places of each split:

- the solo pool ``DIR/pool/<split>/<index>/``: ``cloud.ply`` (one performer), ``audio.wav``
  (their reverberant solo), ``meta.json`` with ``instrument`` (clips marked ``silent`` are
  skipped);
- the scenes ``DIR/<split>/<index>/``: each performer's points are cut from ``scene.ply`` with
  ``labels.npy`` (the object of each point) and paired with their stem; distractors give
  ``none`` clouds (no audio), the only source of that class. A scene without ``labels.npy``
  is read in the real-capture layout (:mod:`pcsep_cli.train.capture`: close-microphone stems,
  ``performers/<name>.ply`` or the whole scan cut by the scene step), so a dataset of one's
  own recordings trains (and fine-tunes) the same way;
- with ``clouds=True``, the cloud scenes ``DIR/clouds/<split>/<index>/`` (``scene.ply``,
  ``labels.npy``, ``meta.json``; no sound): their performers become visual-only examples
  (``Pool.soundless``, for the classifier) and their distractors more ``none`` clouds.

Stems of one scene are mixed with other scenes' and the pool's stems on the fly, so every scene
adds performers to the pool. Loading resamples all audio once and thins each cloud to half the
voxel size: a training step only slices arrays, it reads no file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from pcsep_cli.errors import DatasetError
from pcsep_cli.scene.canonical import canonical
from pcsep_cli.train.augment import thin
from pcsep_cli.train.capture import (
    CAPTURE_LAYOUT,
    CLOUD_EXTS,
    find_file,
    performer_clouds,
    stem_file,
)

SPLITS = ("train", "val", "test")


@dataclass
class Solo:
    """One performer (or distractor) of the pool.

    Attributes:
        name: where it came from (``pool/train/000012`` or ``train/000003:p1``).
        instrument: class name.
        label: index of ``instrument`` in the model's classes.
        points: ``(N, 3)`` float32 canonical cloud.
        audio: ``(C, S)`` float32 at the model's rate; ``None`` for distractors.
        active: start samples of excerpts that are not silent; ``None`` for distractors.
        scene: the scene it was cut from (``train/000003``), whose other performers play the
            same piece on the same timeline; empty for the solo pool's clips.
    """

    name: str
    instrument: str
    label: int
    points: np.ndarray
    audio: np.ndarray | None
    active: np.ndarray | None
    scene: str = ""

    @cached_property
    def level(self) -> float:
        """RMS of the mono mix over the whole recording (coherent mixtures scale by it);
        computed once, on first use."""
        return float(np.sqrt(np.mean(self.audio.mean(0) ** 2)))


@dataclass
class Pool:
    """Performers of one split, grouped for sampling.

    Attributes:
        solos: performers with audio.
        distractors: ``none`` clouds.
        by_label: label → indices into ``solos``.
        soundless: performers without audio (from cloud scenes): clouds for the classifier only.
        soundless_by_label: label → indices into ``soundless``.
        skipped: captured performers left out: the scene step found no cluster at their
            ``position`` (hidden, or merged with a neighbour).
        ensembles: indices into ``solos`` of the performers of one scene, for each scene with
            at least two instruments (one performer per instrument: the first listed), for
            coherent mixtures (:func:`pcsep_cli.train.batch.make_batch`).
    """

    solos: list[Solo]
    distractors: list[Solo]
    by_label: dict[int, list[int]]
    soundless: list[Solo] = field(default_factory=list)
    soundless_by_label: dict[int, list[int]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    ensembles: list[list[int]] = field(default_factory=list)


@dataclass
class PoolMix:
    """Two pools one batch draws its mixtures from: ``own`` (recordings of one's own, the
    real-capture layout) with chance ``share``, ``base`` (synthetic) otherwise."""

    base: Pool
    own: Pool
    share: float

    def pick(self, rng: np.random.Generator) -> Pool:
        """The pool of the next mixture (one draw from ``rng``)."""
        return self.own if rng.random() < self.share else self.base


def pick(pool: Pool | PoolMix, rng: np.random.Generator) -> Pool:
    """``pool`` itself, or one of a :class:`PoolMix` (a single pool draws nothing)."""
    return pool.pick(rng) if isinstance(pool, PoolMix) else pool


def _active_starts(audio: np.ndarray, segment: int, hop: int) -> np.ndarray:
    """Excerpt starts whose energy is within 30 dB of the loudest excerpt's."""
    mono = audio.mean(0)
    if len(mono) <= segment:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, len(mono) - segment + 1, hop)
    csum = np.concatenate([[0.0], np.cumsum(mono.astype(np.float64) ** 2)])
    energy = (csum[starts + segment] - csum[starts]) / segment
    good = starts[energy > energy.max() * 1e-3]
    return good if len(good) else starts[:1]


def _read_meta(folder: Path) -> dict:
    file = folder / "meta.json"
    try:
        return json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DatasetError(f"cannot read meta.json: {err}", file, "regenerate it") from None


def _cloud_file(folder: Path, stem: str) -> Path | None:
    return find_file(folder, stem, CLOUD_EXTS)


def _folders(base: Path) -> Iterator[Path]:
    if base.is_dir():
        yield from sorted(p for p in base.iterdir() if (p / "meta.json").is_file())


class _Loader:
    def __init__(self, classes: tuple[str, ...], rate: int, voxel: float, segment: int) -> None:
        self.classes, self.rate, self.voxel, self.segment = classes, rate, voxel, segment
        self.solos: list[Solo] = []
        self.distractors: list[Solo] = []
        self.soundless: list[Solo] = []
        self.skipped: list[str] = []

    def _audio(self, path: Path) -> tuple[np.ndarray, np.ndarray] | None:
        from pcsep_cli.io.audio import read_audio
        from pcsep_cli.io.resample import resample

        audio, sr = read_audio(path)
        if sr != self.rate:
            audio = resample(audio, sr, self.rate)
        if not np.any(audio):
            return None
        return audio, _active_starts(audio, self.segment, max(1, self.segment // 4))

    def add(
        self,
        name: str,
        instrument: str,
        xyz: np.ndarray,
        audio: Path | None,
        soundless: bool = False,
        scene: str = "",
    ) -> None:
        if instrument not in self.classes or len(xyz) < 10:
            return
        points = thin(canonical(xyz), self.voxel / 2)
        label = self.classes.index(instrument)
        if instrument == "none" or soundless:
            into = self.distractors if instrument == "none" else self.soundless
            into.append(Solo(name, instrument, label, points, None, None))
            return
        got = self._audio(audio) if audio is not None else None
        if got is not None:
            self.solos.append(Solo(name, instrument, label, points, *got, scene=scene))

    def add_solo(self, folder: Path, name: str) -> None:
        from pcsep_cli.io.pointcloud import read_cloud

        meta = _read_meta(folder)
        cloud = _cloud_file(folder, "cloud")
        audio = folder / meta.get("audio", "audio.wav")
        if meta.get("silent") or cloud is None or meta.get("instrument") not in self.classes:
            return
        self.add(
            name, meta["instrument"], read_cloud(cloud).xyz, audio if audio.is_file() else None
        )

    def add_scene(self, folder: Path, name: str, soundless: bool = False) -> None:
        from pcsep_cli.io.pointcloud import read_cloud

        meta = _read_meta(folder)
        if not (folder / "labels.npy").is_file():
            self.add_capture(folder, name, meta, soundless)
            return
        cloud = _cloud_file(folder, "scene")
        if cloud is None:
            raise DatasetError("labels.npy without a scene.ply", folder, CAPTURE_LAYOUT)
        xyz = read_cloud(cloud).xyz
        labels = np.load(folder / "labels.npy", allow_pickle=False)
        if labels.shape != (len(xyz),):
            raise DatasetError(
                f"labels.npy holds {labels.shape} labels for {len(xyz)} points", folder
            )
        for perf in meta.get("performers", []):
            pts = xyz[labels == perf.get("object", -2)]
            stem = None if soundless else folder / perf["stem"]
            self.add(f"{name}:{perf['name']}", perf["instrument"], pts, stem, soundless, name)
        for k, dis in enumerate(meta.get("distractors", [])):
            pts = xyz[labels == dis.get("object", -2)]
            self.add(f"{name}:d{k}", "none", pts, None)

    def add_capture(self, folder: Path, name: str, meta: dict, soundless: bool) -> None:
        """An example of the real-capture layout (:mod:`pcsep_cli.train.capture`)."""
        performers = [p for p in meta.get("performers", []) if p.get("instrument") in self.classes]
        if not performers:
            return
        clouds = performer_clouds(folder, performers, unmatched="skip")
        for perf, xyz in zip(performers, clouds, strict=True):
            if xyz is None:
                self.skipped.append(f"{name}:{perf['name']}")
                continue
            stem = None if soundless else stem_file(folder, perf)
            self.add(f"{name}:{perf['name']}", perf["instrument"], xyz, stem, soundless, name)


def load_pool(
    root: str | Path,
    split: str,
    classes: tuple[str, ...],
    sample_rate: int,
    voxel_size: float,
    segment: int,
    *,
    scenes: bool = True,
    clouds: bool = False,
    more_clouds: str | Path = "",
) -> Pool:
    """Read one split of a synthetic dataset's solo pool (and scenes) into memory.

    Args:
        root: dataset directory (``DIR`` above).
        split: ``"train"``, ``"val"`` or ``"test"``.
        classes: the model's classes (``none`` last); other instruments are skipped.
        sample_rate: the model's rate; audio is resampled to it.
        voxel_size: the model's voxel edge (clouds are thinned to half of it).
        segment: excerpt length in samples (to find the non-silent excerpts).
        scenes: also take performers and distractors from ``DIR/<split>/`` scenes.
        clouds: also take the cloud scenes ``DIR/clouds/<split>/`` (visual-only performers
            and distractors).
        more_clouds: with ``clouds``, another dataset whose cloud scenes are taken too (one
            written with other settings, e.g. ``pcsep synth --clutter``).

    Raises:
        DatasetError: missing folder, unreadable files, or no performer with audio.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    base = Path(root)
    if not base.is_dir():
        raise DatasetError("pool folder not found", base, "generate one with `pcsep synth`")
    loader = _Loader(classes, sample_rate, voxel_size, segment)
    for folder in _folders(base / "pool" / split):
        loader.add_solo(folder, f"pool/{split}/{folder.name}")
    if scenes:
        for folder in _folders(base / split):
            loader.add_scene(folder, f"{split}/{folder.name}")
    if clouds:
        for folder in _folders(base / "clouds" / split):
            loader.add_scene(folder, f"clouds/{split}/{folder.name}", soundless=True)
    if clouds and more_clouds:
        extra = require_clouds(more_clouds, split)
        for folder in _folders(extra / "clouds" / split):
            loader.add_scene(folder, f"{extra.name}/clouds/{split}/{folder.name}", soundless=True)
    if not loader.solos:
        raise DatasetError(
            f"no performer with audio in split {split!r}",
            base,
            "a dataset holds pool/<split>/<i>/{cloud.ply, audio.wav, meta.json} and/or "
            "<split>/<i>/ scenes with labels.npy; generate one with `pcsep synth`",
        )
    return Pool(
        loader.solos,
        loader.distractors,
        _by_label(loader.solos),
        loader.soundless,
        _by_label(loader.soundless),
        loader.skipped,
        _ensembles(loader.solos),
    )


def require_clouds(root: str | Path, split: str) -> Path:
    """``root`` as a Path, if it holds cloud scenes of ``split`` (``clouds/<split>/``).

    Raises:
        DatasetError: it does not.
    """
    base = Path(root)
    if not (base / "clouds" / split).is_dir():
        raise DatasetError(
            f"no cloud scenes of split {split!r}",
            base,
            "generate them with `pcsep synth --cloud-scenes N`",
        )
    return base


def _ensembles(solos: list[Solo]) -> list[list[int]]:
    groups: dict[str, dict[int, int]] = {}
    for i, solo in enumerate(solos):
        if solo.scene:
            groups.setdefault(solo.scene, {}).setdefault(solo.label, i)
    return [sorted(g.values()) for g in groups.values() if len(g) >= 2]


def _by_label(items: list[Solo]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for i, item in enumerate(items):
        out.setdefault(item.label, []).append(i)
    return out
