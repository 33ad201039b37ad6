"""``pcsep evaluate MODEL DATASET``: separation quality on a dataset, with baselines.

The model is loaded and run by the :class:`~pcsep_cli.separate.Separator` that ``pcsep
separate`` uses (``Separator.from_pretrained``: the same checks of config and weights; the
same mono analysis at the model's rate, masks carried to the input's rate and channels,
normalised, chunks cross-faded). For every example (``<example>/meta.json``, ``scene.*``,
``mixture.*``, ``stems/<name>.*``) the first ``max_seconds`` of the mixture are separated at
their own rate and each estimate is scored against its stem at that rate, channel by channel,
with SDR / SIR / SAR (BSS Eval) and SI-SDR. The conditions:

- ``model`` (the main figures): :meth:`Separator.separate` given one cloud per performer, as
  ``pcsep separate AUDIO P1.ply P2.ply …`` (the paper's setting). Each performer's points are
  cut from the scene with ``labels.npy`` (the object of each point, written by ``pcsep
  synth``) and the ``object`` index in ``meta.json``; scenes without it are cut with a
  vertical cylinder of ``crop_radius`` around the performer's ``position``, points below
  ``floor + 0.02`` m dropped (the floor is the scene's 1st height percentile). The Separator
  classifies each cloud; ``none`` distractors are cut the same way and only classified.
- ``scene=True`` (``--scene``): :meth:`Separator.separate` given the whole ``scene.*`` cloud,
  so the scene step finds the performers, as ``pcsep separate AUDIO SCENE.ply`` does. Stems
  are matched to performers and distractors by :mod:`pcsep_cli.train.scene_match` (xy
  distance, Hungarian, within 1 m), which adds the ``scene`` rates.
- ``labels``: label mode, the instruments given by hand (the paper's reference; needs a model
  built with ``conditioning="labels"`` or ``"both"``).
- ``oracle_irm``: the ideal ratio mask ``|S_i| / Σ_j |S_j|`` with the STFT the Separator
  applies its masks with at the input's rate (an upper bound for any such mask).
- ``mixture``: the unprocessed mixture as every estimate (the lower bound); a method's
  improvement over it is ``sdri`` / ``si_sdri``.

A performer left without a stem (its cloud empty or called ``none``, missed by the scene step,
or the whole scene called ``none``) is scored with the mixture as its estimate: 0 dB
improvement. Performers whose instrument is not among the model's classes are left out of the
scores (in ``--scene`` they still take the stems found on them).

A performer whose reference stem is silent in the scored seconds (every sample zero, or 50 dB
under the loudest performer's) is separated but not scored: SDR against silence is the floor
of the arithmetic. ``silent_references`` counts them; ``stems`` counts the stems scored.

Report (a JSON object): ``{"model", "dataset", "examples", "stems", "silent_references",
"max_seconds", "views", "conditioning", "scene_step", "bootstrap": {"resamples", "seed"},
"overall", "by_performers", "per_instrument", "classification", "scene", "baselines": {"labels",
"oracle_irm", "mixture"}}``. A metric block (``overall``, each entry of ``by_performers`` —
``"2"``, ``"3-4"``, ``"5+"`` performers and ``"1"`` for solos, see :func:`group_name` — and of
``per_instrument``) maps ``sdr, sir, sar, si_sdr, sdri, si_sdri`` to a figure and holds
``count`` (stems) and ``scenes`` (examples). A figure is ``{"mean", "ci95": [lo, hi], "n"}``:
the mean in dB over ``n`` values and its 95 % bootstrap interval, from resampling the examples
with replacement (stems of one scene are correlated), seeded, so the same data give the same
interval. ``classification`` (cloud conditions, None with ``--scene``): ``{"accuracy",
"none_accuracy"}`` figures (shares of performers given their instrument and of distractors given
``none`` or no stem) and ``performers`` / ``distractors`` counts. ``scene`` (None without
``--scene``): ``detected`` (share of performers with a stem), ``classified`` (share whose stem
has the right instrument), ``spurious`` (stems matched to no performer, per performer, with
their ``count``), ``distractors_with_stem`` (share of visible distractors, with ``count``), and
the ``performers``, ``distractors``, ``stems``, ``scenes`` counts. ``baselines.labels`` is None
when the model cannot take labels."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pcsep_cli.errors import DatasetError, ModelError, SceneError
from pcsep_cli.nets.model import DEFAULT_VIEWS
from pcsep_cli.progress import Progress, ProgressFn
from pcsep_cli.train.capture import (
    AUDIO_EXTS,
    CLOUD_EXTS,
    assumed_sources,
    example_microphones,
    find_file,
    performer_clouds,
    stem_file,
)
from pcsep_cli.train.metrics import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    bootstrap,
    bss_eval,
    silent_rows,
)
from pcsep_cli.train.scene_match import match_meta, visible_distractors

if TYPE_CHECKING:  # pragma: no cover
    from pcsep_cli.io.mics import Microphones
    from pcsep_cli.scene import Performer
    from pcsep_cli.separate.separator import Separator

METRICS = ("sdr", "sir", "sar", "si_sdr")
SCORES = (*METRICS, "sdri", "si_sdri")
METHODS = ("model", "labels", "oracle_irm", "mixture")
FLOOR_MARGIN = 0.02
NONE = "none"
LAYOUT = (
    "an example folder holds meta.json, scene.ply (or .las/.laz/.pcd/.e57) or "
    "performers/<name>.ply, mixture.wav (or .flac/.ogg/.aiff) and stems/<name>.wav"
)


@dataclass(frozen=True)
class Example:
    """One example read from disk, cut to the seconds scored.

    Attributes:
        folder: the example's folder.
        meta: ``meta.json``.
        mixture: float32 ``(C, S)`` at ``sample_rate``.
        stems: one float32 ``(C, S)`` per ``meta["performers"]`` entry, in that order.
        sample_rate: the rate of ``mixture`` and ``stems`` (Hz).
        microphones: ``meta["microphones"]``, one per channel
            (:func:`~pcsep_cli.train.capture.example_microphones`), or None.
    """

    folder: Path
    meta: dict
    mixture: np.ndarray
    stems: list[np.ndarray]
    sample_rate: int
    microphones: Microphones | None = None

    def visible_distractors(self) -> list[dict]:
        """Distractors the sensor saw (one it never saw is not in the cloud)."""
        return visible_distractors(self.meta)


@dataclass
class ExampleScores:
    """The scores of one example, before averaging.

    Attributes:
        group: :func:`group_name` of its performer count.
        instruments: the scored performers' instruments (K).
        scores: method → score (``SCORES``) → ``(K,)`` dB.
        classification: counts ``performers``, ``right``, ``distractors``, ``none``; or None.
        scene: counts of the scene step (``--scene``); or None.
        silent: performers left out of the scores because their reference is silent
            (:func:`~pcsep_cli.train.metrics.silent_rows`).
    """

    group: str
    instruments: list[str]
    scores: dict[str, dict[str, np.ndarray]]
    classification: dict[str, int] | None = None
    scene: dict[str, int] | None = None
    silent: int = 0


def group_name(n: int) -> str:
    """The performer-count group a mixture of ``n`` performers is scored in. A solo is its own
    group: its mixture is its reference, so its improvement says nothing about separating
    (a solo scored -22 dB SDRi inside the 2-performer figure of a 1-5 performer split)."""
    return "1" if n <= 1 else "2" if n == 2 else "3-4" if n <= 4 else "5+"


# -- reading ----------------------------------------------------------------------------------


def _find(folder: Path, stem: str, exts: tuple[str, ...]) -> Path:
    for ext in exts:
        if (folder / f"{stem}{ext}").is_file():
            return folder / f"{stem}{ext}"
    raise DatasetError(f"no {stem} file ({', '.join(stem + e for e in exts)}) here", folder, LAYOUT)


def read_example(folder: Path, sample_rate: int | None = None, max_seconds: float = 0.0) -> Example:
    """Mixture and stems of one example, over its first ``max_seconds`` (0: all of it).

    Args:
        folder: the example.
        sample_rate: resample to this rate; None keeps the mixture's own rate.
        max_seconds: seconds to keep.

    Raises:
        DatasetError: unreadable meta.json, a missing mixture or stem, a stem unlike the
            mixture, or ``microphones`` that are invalid or not one per channel.
    """
    from pcsep_cli.io.audio import read_audio
    from pcsep_cli.io.resample import resample

    meta_file = folder / "meta.json"
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DatasetError(f"cannot read meta.json: {err}", meta_file, LAYOUT) from None
    mix, sr = read_audio(_find(folder, "mixture", AUDIO_EXTS))
    mics = example_microphones(meta, folder, mix.shape[0])
    rate = sample_rate or sr
    frames = int(max_seconds * sr) if max_seconds else mix.shape[1]
    stems = []
    for perf in meta.get("performers", []):
        stem_path = stem_file(folder, perf)
        audio, ssr = read_audio(stem_path)
        if ssr != sr or audio.shape[0] != mix.shape[0]:
            raise DatasetError(
                f"stem {stem_path.relative_to(folder)} has {audio.shape[0]} ch at {ssr} Hz, "
                f"mixture {mix.shape[0]} ch at {sr} Hz",
                folder,
                "stems must match the mixture's rate and channels",
            )
        stems.append(resample(audio[:, :frames], sr, rate))
    return Example(folder, meta, resample(mix[:, :frames], sr, rate), stems, rate, mics)


def crop_performer(
    xyz: np.ndarray, position: list[float], radius: float, floor: float
) -> np.ndarray:
    """Points of a vertical cylinder around ``position``, above the floor.

    Args:
        xyz: scene points ``(N, 3)``.
        position: performer position ``[x, y, z]`` (z unused).
        radius: cylinder radius, metres.
        floor: floor height; points below ``floor + 0.02`` are dropped.

    Returns:
        ``(M, 3)``.
    """
    d2 = (xyz[:, 0] - position[0]) ** 2 + (xyz[:, 1] - position[1]) ** 2
    return xyz[(d2 <= radius**2) & (xyz[:, 2] > floor + FLOOR_MARGIN)]


def _performer_clouds(folder: Path, objects: list[dict], radius: float) -> list[np.ndarray]:
    """Points ``(M, 3)`` of each performer / distractor of a scene (module docstring)."""
    from pcsep_cli.io.pointcloud import read_cloud

    if (folder / "performers").is_dir() and not (folder / "labels.npy").is_file():
        # Real-capture layout with one cloud per performer: theirs, as given (distractors
        # have no file there: no cloud).
        mine = folder / "performers"
        has = [find_file(mine, str(o.get("name")), CLOUD_EXTS) is not None for o in objects]
        given = iter(performer_clouds(folder, [o for o, h in zip(objects, has, strict=True) if h]))
        return [next(given) if h else np.zeros((0, 3)) for h in has]
    scene = read_cloud(_find(folder, "scene", CLOUD_EXTS)).xyz
    labels = None
    if (folder / "labels.npy").is_file() and all("object" in o for o in objects):
        labels = np.load(folder / "labels.npy", allow_pickle=False)
        if labels.shape != (len(scene),):
            raise DatasetError(f"labels.npy does not match scene ({len(scene)} points)", folder)
    floor = float(np.percentile(scene[:, 2], 1))
    return [
        scene[labels == o["object"]]
        if labels is not None
        else crop_performer(scene, o["position"], radius, floor)
        for o in objects
    ]


def _as_performer(xyz: np.ndarray) -> Performer | None:
    """The cloud as ``pcsep separate`` wraps one cloud per performer; None when it holds no
    performer (an object the sensor never saw, or only floor)."""
    from pcsep_cli.io.pointcloud import PointCloud
    from pcsep_cli.scene import performer_from_cloud

    if len(xyz) < 3:
        return None
    try:
        return performer_from_cloud(PointCloud(np.ascontiguousarray(xyz, dtype=np.float64)))
    except SceneError:
        return None


# -- estimates --------------------------------------------------------------------------------


def _without_stems(ex: Example, count: int) -> np.ndarray:
    """``(count, C, S)``: the mixture for every performer (no stem: 0 dB improvement)."""
    return np.repeat(ex.mixture[None], count, axis=0)


def _cloud_estimates(
    sep: Separator, ex: Example, keep: list[int], crop_radius: float
) -> tuple[np.ndarray, dict[str, int]]:
    """Estimates of the kept performers from one cloud each, and the classification counts."""
    perfs = [ex.meta["performers"][i] for i in keep]
    distractors = ex.visible_distractors()
    clouds = [
        _as_performer(c) for c in _performer_clouds(ex.folder, perfs + distractors, crop_radius)
    ]
    # Wrapped one by one, as `pcsep separate` wraps two or more clouds (find_scene_performers):
    # a lone performer's cut must not go through the scene step.
    seen = [i for i in range(len(keep)) if clouds[i] is not None]
    est = _without_stems(ex, len(keep))
    predicted: dict[int, str] = {}
    try:
        result = sep.separate(
            ex.mixture,
            ex.sample_rate,
            performers=[clouds[i] for i in seen],
            microphones=ex.microphones,
        )
    except SceneError:  # no cloud at all, or every one called none: no stem
        result = None
    if result is not None:
        stems = iter(result.stems)
        for i, det in zip(seen, result.detections, strict=True):
            predicted[i] = det.instrument
            if det.separated:
                est[i] = next(stems)
    shown = [c for c in clouds[len(keep) :] if c is not None]
    called = [label for label, _ in sep.classify(shown)] if shown else []
    counts = {
        "performers": len(keep),
        "right": sum(predicted.get(i) == p["instrument"] for i, p in enumerate(perfs)),
        "distractors": len(distractors),
        # A distractor whose cut holds no performer gets no stem either: `none` in effect.
        "none": len(distractors) - len(shown) + called.count(NONE),
    }
    return est, counts


def _scene_estimates(
    sep: Separator, ex: Example, keep: list[int]
) -> tuple[np.ndarray, dict[str, int]]:
    """Estimates of the kept performers from the scene step on the whole cloud, and its
    counts (module docstring)."""
    from pcsep_cli.io.pointcloud import read_cloud

    cloud = read_cloud(_find(ex.folder, "scene", CLOUD_EXTS))
    try:
        result = sep.separate(ex.mixture, ex.sample_rate, cloud, microphones=ex.microphones)
        stems, dets = result.stems, [d for d in result.detections if d.separated]
    except SceneError:  # no performer found, or all called none: no stem
        stems, dets = np.zeros((0, *ex.mixture.shape), np.float32), []
    performers = ex.meta["performers"]
    distractors = ex.visible_distractors()
    match = match_meta(np.array([d.position for d in dets], dtype=np.float64), ex.meta)
    est = _without_stems(ex, len(keep))
    classified = 0
    for k, i in enumerate(keep):
        s = match.performer_stem[i]
        if s is not None:
            est[k] = stems[s]
            classified += dets[s].instrument == performers[i]["instrument"]
    counts = {
        "performers": len(keep),
        "detected": sum(match.performer_stem[i] is not None for i in keep),
        "classified": classified,
        "spurious": len(match.spurious),
        "distractors": len(distractors),
        "distractors_with_stem": match.distractors_with_stem,
        "stems": len(dets),
    }
    return est, counts


def _oracle_irm(sep: Separator, ex: Example, keep: list[int]) -> np.ndarray:
    """Ideal ratio masks on the STFT the Separator uses at the input's rate."""
    import torch

    from pcsep_cli.nets.stft import istft, stft
    from pcsep_cli.separate.masks import RateMap

    cfg = RateMap(sep.net.config.stft, sep.sample_rate, ex.sample_rate).stft_in
    length = ex.mixture.shape[1]
    spec = stft(torch.from_numpy(ex.mixture), cfg)
    mags = stft(torch.from_numpy(np.stack(ex.stems)), cfg).abs()
    irm = mags[keep] / (mags.sum(0, keepdim=True) + 1e-8)
    return istft(irm * spec[None], cfg, length).numpy()


def _score(refs: np.ndarray, est: np.ndarray, base: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    scores = bss_eval(refs, est)
    scores["sdri"] = scores["sdr"] - base["sdr"]
    scores["si_sdri"] = scores["si_sdr"] - base["si_sdr"]
    return scores


def _has_cloud(folder: Path) -> bool:
    return (folder / "performers").is_dir() or any(
        (folder / f"scene{ext}").is_file() for ext in CLOUD_EXTS
    )


def _moved(mics: Microphones | None, rig: float, jitter: float, rng: np.random.Generator) -> Any:
    """``mics`` with the whole rig moved ``rig`` metres in a random direction, then each
    microphone ``jitter`` metres in its own (robustness)."""
    if mics is None or (rig == 0 and jitter == 0):
        return mics
    shift = rng.normal(size=(1, 3))
    step = rng.normal(size=mics.positions.shape)
    moved = mics.positions + shift * (rig / np.linalg.norm(shift))
    moved = moved + step * (jitter / np.linalg.norm(step, axis=1, keepdims=True))
    return dataclasses.replace(mics, positions=moved)


def _score_example(
    sep: Separator, ex: Example, *, scene: bool, crop_radius: float
) -> ExampleScores:
    """Every condition of one example, scored (module docstring)."""
    performers = ex.meta.get("performers", [])
    keep = [i for i, p in enumerate(performers) if p["instrument"] in sep.classes[:-1]]
    instruments = [performers[i]["instrument"] for i in keep]
    out = ExampleScores(group_name(len(performers)), instruments, {})
    if not keep:
        return out
    refs = np.stack([ex.stems[i] for i in keep])
    base = bss_eval(refs, _without_stems(ex, len(keep)))
    out.scores["mixture"] = _score(refs, _without_stems(ex, len(keep)), base)
    out.scores["oracle_irm"] = _score(refs, _oracle_irm(sep, ex, keep), base)
    if sep.net.accepts_labels:
        kept = [performers[i] for i in keep]
        where = assumed_sources(kept) if all("position" in p for p in kept) else None
        labelled = sep.separate(
            ex.mixture,
            ex.sample_rate,
            instruments=instruments,
            microphones=ex.microphones,
            sources=where,
        ).stems
        out.scores["labels"] = _score(refs, labelled, base)
    if not _has_cloud(ex.folder):  # audio and geometry only (synth.arrays): labels alone
        return _without_silent(out, refs)
    if scene:
        est, out.scene = _scene_estimates(sep, ex, keep)
        out.scores["model"] = _score(refs, est, base)
    elif sep.net.accepts_clouds:
        est, out.classification = _cloud_estimates(sep, ex, keep, crop_radius)
        out.scores["model"] = _score(refs, est, base)
    return _without_silent(out, refs)


def _without_silent(out: ExampleScores, refs: np.ndarray) -> ExampleScores:
    """Leave performers with a silent reference out of every score (counted in ``silent``):
    a separation cannot be judged against silence. They are still separated (the model is told
    of them) and still count in classification and the scene step's rates."""
    silent = silent_rows(refs)
    if not silent:
        return out
    scored = np.ones(len(refs), dtype=bool)
    scored[silent] = False
    scores = {m: {k: v[scored] for k, v in block.items()} for m, block in out.scores.items()}
    kept = [i for i, s in zip(out.instruments, scored, strict=True) if s]
    return dataclasses.replace(out, instruments=kept, scores=scores, silent=len(silent))


# -- averages with intervals ------------------------------------------------------------------


@dataclass(frozen=True)
class _Boot:
    resamples: int
    seed: int

    def __call__(self, sums: Sequence[float], counts: Sequence[float]) -> dict[str, Any]:
        return bootstrap(
            np.asarray(sums), np.asarray(counts), resamples=self.resamples, seed=self.seed
        )


def _block(
    records: list[ExampleScores],
    method: str,
    pick: Callable[[ExampleScores], np.ndarray],
    boot: _Boot,
) -> dict[str, Any]:
    """Means and intervals of one method over the stems ``pick`` selects in each example."""
    chosen = [(r.scores[method], pick(r)) for r in records if method in r.scores and pick(r).any()]
    out: dict[str, Any] = {}
    for m in SCORES:
        vals = [s[m][sel] for s, sel in chosen]
        out[m] = boot([np.nansum(v) for v in vals], [np.count_nonzero(~np.isnan(v)) for v in vals])
    out["count"] = int(sum(sel.sum() for _, sel in chosen))
    out["scenes"] = len(chosen)
    return out


def _summary(records: list[ExampleScores], method: str, boot: _Boot) -> dict[str, Any]:
    def every(r: ExampleScores) -> np.ndarray:
        return np.ones(len(r.instruments), dtype=bool)

    def in_group(g: str) -> Callable[[ExampleScores], np.ndarray]:
        return lambda r: every(r) & (r.group == g)

    def playing(inst: str) -> Callable[[ExampleScores], np.ndarray]:
        return lambda r: np.array([i == inst for i in r.instruments], dtype=bool)

    groups = sorted({r.group for r in records if r.instruments})
    instruments = sorted({i for r in records for i in r.instruments})
    return {
        "overall": _block(records, method, every, boot),
        "by_performers": {g: _block(records, method, in_group(g), boot) for g in groups},
        "per_instrument": {i: _block(records, method, playing(i), boot) for i in instruments},
    }


def _rates(
    counts: list[dict[str, int]], rates: dict[str, tuple[str, str]], boot: _Boot
) -> dict[str, Any]:
    """``rates``: name → (numerator, denominator) keys of ``counts``, one dict per example."""
    out: dict[str, Any] = {}
    for name, (num, den) in rates.items():
        out[name] = boot([c[num] for c in counts], [c[den] for c in counts])
    return out


def _classification(records: list[ExampleScores], boot: _Boot) -> dict[str, Any] | None:
    counts = [r.classification for r in records if r.classification is not None]
    if not counts:
        return None
    rates = {"accuracy": ("right", "performers"), "none_accuracy": ("none", "distractors")}
    return {
        **_rates(counts, rates, boot),
        "performers": sum(c["performers"] for c in counts),
        "distractors": sum(c["distractors"] for c in counts),
    }


def _scene_rates(records: list[ExampleScores], boot: _Boot) -> dict[str, Any] | None:
    counts = [r.scene for r in records if r.scene is not None]
    if not counts:
        return None
    out = _rates(
        counts,
        {
            "detected": ("detected", "performers"),
            "classified": ("classified", "performers"),
            "spurious": ("spurious", "performers"),
            "distractors_with_stem": ("distractors_with_stem", "distractors"),
        },
        boot,
    )
    out["spurious"]["count"] = sum(c["spurious"] for c in counts)
    out["distractors_with_stem"]["count"] = sum(c["distractors_with_stem"] for c in counts)
    for key in ("performers", "distractors", "stems"):
        out[key] = sum(c[key] for c in counts)
    out["scenes"] = len(counts)
    return out


# -- the command ------------------------------------------------------------------------------


def _examples(dataset_dir: str | Path, max_examples: int | None) -> list[Path]:
    root = Path(dataset_dir)
    if not root.is_dir():
        raise DatasetError("dataset folder not found", root, "pass a folder of examples")
    examples = sorted(p for p in root.iterdir() if (p / "meta.json").is_file())
    if not examples:
        raise DatasetError("no example folders (with meta.json) here", root, LAYOUT)
    return examples[:max_examples] if max_examples else examples


def evaluate(
    model: str | Path | None,
    dataset_dir: str | Path,
    *,
    max_examples: int | None = None,
    max_seconds: float = 10.0,
    crop_radius: float = 0.6,
    views: int = DEFAULT_VIEWS,
    scene: bool = False,
    device: str = "auto",
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    mic_error: float = 0.0,
    mic_jitter: float = 0.0,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Score a model on a dataset next to the label, oracle and mixture baselines.

    Args:
        model: what ``pcsep separate --model`` takes (bundled name, directory,
            ``owner/name[@rev]``; None: the default model).
        dataset_dir: folder of examples (module docstring).
        max_examples: evaluate only the first N examples (sorted by name).
        max_seconds: score the first seconds of each example (0: all of it).
        crop_radius: radius of the cylinder cut around each performer when the example has
            no ``labels.npy``, metres.
        views: headings each cloud is encoded from (as ``pcsep separate`` does).
        scene: find the performers in the whole scene (the scene step) instead of cutting
            them out with the known labels.
        device: where the model runs (``auto``, ``cpu``, ``cuda``, ``mps``).
        resamples: bootstrap resamples of the intervals.
        seed: seed of the bootstrap (and of the ``mic_error`` directions).
        mic_error: move the microphones of ``meta.json`` together (the rig) this many metres
            in a random direction before separating (a rig measured with a tape: its own
            geometry is known, where it stands less so).
        mic_jitter: then move each microphone this many metres in its own random direction.
        progress: called after each example.

    Returns:
        The report described in the module docstring.

    Raises:
        DatasetError: the dataset does not follow the layout.
        ModelError: the model cannot be loaded, or ``scene`` with a model that takes labels
            only.
    """
    from pcsep_cli.separate.separator import Separator

    examples = _examples(dataset_dir, max_examples)
    sep = Separator.from_pretrained(
        None if model is None else str(model), device=device, views=views
    )
    if scene and not sep.net.accepts_clouds:
        raise ModelError(
            "--scene needs a model that reads point clouds; this one takes labels only",
            sep.model_info()["path"],
            "drop --scene",
        )
    records = []
    shake = np.random.default_rng(seed)
    for done, folder in enumerate(examples, 1):
        ex = read_example(folder, None, max_seconds)
        if mic_error or mic_jitter:
            moved = _moved(ex.microphones, mic_error, mic_jitter, shake)
            ex = dataclasses.replace(ex, microphones=moved)
        records.append(_score_example(sep, ex, scene=scene, crop_radius=crop_radius))
        if progress:
            progress(Progress("evaluate", done, len(examples), "example", folder.name))
    return _report(
        sep,
        records,
        model,
        dataset_dir,
        _Boot(resamples, seed),
        scene=scene,
        max_seconds=max_seconds,
        mic_error=mic_error,
        mic_jitter=mic_jitter,
    )


def _report(
    sep: Separator,
    records: list[ExampleScores],
    model: str | Path | None,
    dataset_dir: str | Path,
    boot: _Boot,
    *,
    scene: bool,
    max_seconds: float,
    mic_error: float = 0.0,
    mic_jitter: float = 0.0,
) -> dict[str, Any]:
    main = "model" if any("model" in r.scores for r in records) else "labels"
    return {
        "model": None if model is None else str(model),
        "dataset": str(dataset_dir),
        "examples": len(records),
        "stems": sum(len(r.instruments) for r in records),
        "silent_references": sum(r.silent for r in records),
        "max_seconds": max_seconds,
        "views": sep.views,
        "conditioning": "cloud" if sep.net.accepts_clouds else "labels",
        "scene_step": scene,
        "reads_microphones": sep.uses_microphones,
        "mic_error": mic_error,
        "mic_jitter": mic_jitter,
        "bootstrap": {"resamples": boot.resamples, "seed": boot.seed},
        **_summary(records, main, boot),
        "classification": _classification(records, boot),
        "scene": _scene_rates(records, boot),
        "baselines": {
            "labels": _summary(records, "labels", boot) if sep.net.accepts_labels else None,
            "oracle_irm": _summary(records, "oracle_irm", boot),
            "mixture": _summary(records, "mixture", boot),
        },
    }


# -- tables -----------------------------------------------------------------------------------


def _fig(fig: dict[str, Any] | None, scale: float = 1.0, digits: int = 2) -> str:
    """``5.12 [4.31, 5.90]`` from a figure; ``-`` when there is none."""
    if not fig or fig["n"] == 0:
        return "-"
    lo, hi = fig["ci95"]
    return f"{scale * fig['mean']:.{digits}f} [{scale * lo:.{digits}f}, {scale * hi:.{digits}f}]"


def markdown_tables(report: dict[str, Any]) -> str:
    """The model card's evaluation tables (Markdown) from an :func:`evaluate` report."""
    base = report["baselines"]
    name = "pcsep (scene step)" if report.get("scene_step") else "pcsep (point clouds)"
    methods = [(name, report if report["conditioning"] == "cloud" else None)]
    methods += [
        ("labels reference", base["labels"]),
        ("oracle IRM", base["oracle_irm"]),
        ("mixture", base["mixture"]),
    ]
    methods = [(n, b) for n, b in methods if b is not None]
    o = report["overall"]
    boot = report["bootstrap"]
    silent = report.get("silent_references", 0)
    lines = [
        f"{o['count']} stems in {o['scenes']} scenes, first {report['max_seconds']:g} s of each; "
        f"mean [95 % interval, {boot['resamples']} bootstrap resamples of scenes], dB."
        + (f" {silent} performer(s) silent in these seconds: not scored." if silent else ""),
        "",
        "| method | SDR | SIR | SAR | SI-SDR | SDRi |",
        "|---|---|---|---|---|---|",
    ]
    for label, block in methods:
        cells = [_fig(block["overall"][m]) for m in ("sdr", "sir", "sar", "si_sdr", "sdri")]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += _breakdown("performers", "by_performers", report, methods)
    lines += _breakdown("instrument", "per_instrument", report, methods)
    lines += _scene_table(report["scene"])
    cls = report["classification"]
    if cls is not None and cls["performers"]:
        lines += [
            "",
            f"Instrument classification: {_fig(cls['accuracy'], 100, 1)} % of "
            f"{cls['performers']} performers; `none` (or no stem) for "
            f"{_fig(cls['none_accuracy'], 100, 1)} % of {cls['distractors']} distractors.",
        ]
    return "\n".join(lines) + "\n"


def _breakdown(
    title: str, key: str, report: dict[str, Any], methods: list[tuple[str, dict]]
) -> list[str]:
    """SDRi of every method per performer-count group or per instrument."""
    head = f"| {title} | stems | scenes | " + " | ".join(f"SDRi ({n})" for n, _ in methods)
    lines = ["", head + " |", "|---" * (3 + len(methods)) + "|"]
    for name, main in report[key].items():
        cells = [_fig(block[key].get(name, {}).get("sdri")) for _, block in methods]
        lines.append(f"| {name} | {main['count']} | {main['scenes']} | " + " | ".join(cells) + " |")
    return lines


def _scene_table(scene: dict[str, Any] | None) -> list[str]:
    if scene is None:
        return []
    p, d = scene["performers"], scene["distractors"]
    spur, dws = scene["spurious"], scene["distractors_with_stem"]
    return [
        "",
        f"Scene step: {scene['stems']} stems for {p} performers and {d} visible distractors "
        f"in {scene['scenes']} scenes.",
        "",
        "| scene step | % [95 % interval] | of |",
        "|---|---|---|",
        f"| detected (performers with a stem) | {_fig(scene['detected'], 100, 1)} | {p} |",
        f"| classified (right instrument) | {_fig(scene['classified'], 100, 1)} | {p} |",
        f"| spurious stems ({spur['count']}) per performer | {_fig(spur, 100, 1)} | {p} |",
        f"| distractors with a stem ({dws['count']}) | {_fig(dws, 100, 1)} | {d} |",
    ]
