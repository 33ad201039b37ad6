"""Write a synthetic dataset: whole scenes for evaluation, a solo pool for mix-and-separate.

Layout (each split folder follows the dataset layout that ``pcsep evaluate`` reads, so
``pcsep evaluate MODEL DIR/test`` takes it as it is)::

    DIR/dataset.json                  settings, checked when a run resumes
    DIR/<split>/<index>/              split: train, val, test; index: 6+ digits, global
        scene.ply                     whole scene: performers, instruments, distractors, floor
        labels.npy                    int16 [N]: object of each point of scene.ply (-1: room)
        mixture.wav                   what the microphones recorded
        stems/<name>.wav              each performer's part of it: mixture = Σ stems
        meta.json                     sample_rate, performers (name, instrument, position,
                                      stem), distractors, microphones + split, piece, room,
                                      seeds (last)
    DIR/pool/<split>/<index>/         solo pool (``solo_pool`` > 0)
        cloud.ply                     one performer, its instrument and seat: their points only
        audio.wav                     its reverberant contribution at the microphones of a
                                      random room, normalised to -23 dBFS RMS
        meta.json                     instrument, body_id, piece, part, room, microphones, seeds
    DIR/clouds/<split>/<index>/       cloud scenes (``cloud_scenes`` > 0): scanned like a scene,
        scene.ply, labels.npy         always with 1-2 distractors, and no sound at all: labelled
        meta.json                     performers and ``none`` objects for the visual encoder

Audio is float32 WAV by default (``bits="32f"``). ``bits="24"`` (PCM) takes a quarter less
disk and Σ stems still equals the mixture to (P + 1) · 2⁻²⁴ ≈ 4e-7, because every stem and
the mixture are scaled to peak below 0.9 (nothing clips). The default rate, 22.05 kHz, keeps
11 kHz of bandwidth (more than a 16 kHz model uses) at half the synthesis and convolution cost
of 44.1 kHz.

Splits never share a piece, nor a work (:func:`~pcsep_cli.synth.corpus.piece_split`: a hash
of the quartet, cantata or mass a piece belongs to), nor a body (:data:`BODY_IDS`, disjoint
ranges). Which split an example goes to depends
only on its index (a fixed interleaving with the asked shares), and everything in it only on
``(seed, index)``: examples do not depend on ``jobs``, on each other or on how many are asked
for, so a run can be extended or resumed. An example whose ``meta.json`` is valid is skipped;
``meta.json`` is written last and every file is written atomically.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pcsep_cli.errors import DatasetError
from pcsep_cli.progress import Progress, ProgressFn
from pcsep_cli.synth.settings import BODY_IDS, FORMAT_VERSION, SPLITS, Settings
from pcsep_cli.synth.sources import DEFAULT_SOURCES, for_split
from pcsep_cli.synth.styles import for_split as styles_for_split

POOL_CHUNK = 8
"""Solo clips rendered by one FluidSynth call (a fixed grouping, so results stay the same)."""
_SETTINGS = (
    "seed",
    "sample_rate",
    "duration_s",
    "mics",
    "performers",
    "distractor_prob",
    "split_fractions",
    "bits",
    "cycle_instruments",
    "pieces",
    "sources",
    "styles",
    "clutter",
    "music_splits",
)


@dataclass(frozen=True)
class DatasetSummary:
    """What :func:`write_dataset` did.

    Attributes:
        root: the dataset folder.
        examples: examples present per split after the run.
        written: examples written by this run.
        skipped: examples found finished and kept.
        pool: solo clips present per split after the run.
        pool_written: solo clips written by this run.
        pool_skipped: solo clips found finished and kept.
        clouds: cloud scenes present per split after the run.
        clouds_written: cloud scenes written by this run.
        clouds_skipped: cloud scenes found finished and kept.
        seconds: wall time of the run.
    """

    root: Path
    examples: dict[str, int]
    written: int
    skipped: int
    pool: dict[str, int] = field(default_factory=dict)
    pool_written: int = 0
    pool_skipped: int = 0
    clouds: dict[str, int] = field(default_factory=dict)
    clouds_written: int = 0
    clouds_skipped: int = 0
    seconds: float = 0.0


def write_dataset(
    out: Path,
    *,
    examples: int,
    seed: int,
    jobs: int = 1,
    split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
    performers: tuple[int, int] = (1, 5),
    distractor_prob: float = 0.5,
    duration_s: float = 8.0,
    sample_rate: int = 22050,
    mics: str | int = "stereo",
    solo_pool: int = 0,
    cloud_scenes: int = 0,
    bits: str = "32f",
    cycle_instruments: bool = False,
    pieces: Sequence[str] | None = None,
    sources: Sequence[str] = DEFAULT_SOURCES,
    styles: Sequence[str] = ("seen",),
    clutter: float = 0.0,
    music_splits: Sequence[float] | None = None,
    progress: ProgressFn | None = None,
) -> DatasetSummary:
    """Write (or complete) a synthetic dataset in ``out`` (layout in the module docstring).

    Args:
        out: dataset folder; created if missing. An existing one must hold a ``dataset.json``
            with the same settings (then finished examples are kept and the rest written).
        examples: number of scenes (indices ``0 .. examples-1``, spread over the splits).
        seed: makes everything reproducible: same seed, same bytes.
        jobs: worker processes (spawned; each loads its own anny and music21).
        split_fractions: shares of train, val, test for pieces and examples.
        performers: ``(min, max)`` performers per scene (1 to 10).
        distractor_prob: chance that a scene has distractors (1 or 2: conductor, chair,
            music stand) that the model must call ``none``.
        duration_s: clip length in seconds.
        sample_rate: Hz of every file written.
        mics: ``"mono"``, ``"stereo"`` or 1 to 8 channels (3+: a small circular array).
        solo_pool: number of solo clips (one performer's cloud and audio) to add.
        cloud_scenes: number of cloud scenes (a scanned scene, no sound; ~0.3 s each) to add:
            more bodies, viewpoints and distractors for the classifier.
        bits: ``"32f"`` (float WAV) or ``"24"`` (PCM WAV).
        cycle_instruments: give performers the classes in turn (example ``i`` starts at class
            ``i * performers[1]``) so that a handful of examples covers all ten.
        pieces: restrict the music to these corpus ids (default: all of
            :func:`~pcsep_cli.synth.corpus.corpus_pieces`).
        sources: sound sources allowed, ``"name"`` or ``"split:name"``
            (:func:`~pcsep_cli.synth.sources.for_split`); one is drawn per performer.
        styles: instrument styles allowed: ``seen``, ``new``, ``all`` or ``CLASS:STYLE``,
            each maybe ``"split:..."`` (:func:`~pcsep_cli.synth.styles.for_split`).
        clutter: share of scenes and cloud scenes scanned as whole rooms: walls, 3-14 pieces
            of :mod:`~pcsep_cli.synth.clutter` (``none`` objects) and 1-3 registered views.
        music_splits: shares of train, val, test by which pieces are split (default:
            ``split_fractions``). A test-only dataset (``split_fractions`` 0,0,1) given the
            shares of the dataset it is tested against draws only that dataset's test music.
        progress: called with a :class:`~pcsep_cli.progress.Progress` (stage ``synth``, unit
            ``task``: an example or a pool batch) after each.

    Returns:
        A :class:`DatasetSummary`.

    Raises:
        ValueError: an argument is out of range.
        DatasetError: ``out`` holds another dataset, a split has no piece, FluidSynth or the
            soundfont is missing.
    """
    _check_arguments(
        examples, solo_pool, cloud_scenes, jobs, performers, split_fractions, bits, mics
    )
    if not 0 <= clutter <= 1:
        raise ValueError(f"clutter must be a share in [0, 1], got {clutter}")
    if music_splits is not None and (
        len(music_splits) != 3 or min(music_splits) < 0 or sum(music_splits) <= 0
    ):
        raise ValueError(f"music_splits must be 3 shares >= 0, got {music_splits}")
    settings = Settings(
        seed=int(seed),
        sample_rate=int(sample_rate),
        duration_s=float(duration_s),
        mics=str(mics),
        performers=(int(performers[0]), int(performers[1])),
        distractor_prob=float(distractor_prob),
        split_fractions=tuple(float(f) for f in split_fractions),  # type: ignore[arg-type]
        bits=bits,
        cycle_instruments=bool(cycle_instruments),
        pieces=None if pieces is None else tuple(sorted(pieces)),
        sources=tuple(sources),
        styles=tuple(styles),
        clutter=float(clutter),
        music_splits=None if music_splits is None else tuple(float(f) for f in music_splits),
    )
    for split in SPLITS:
        for_split(settings.sources, split)  # unknown names fail before any work
        styles_for_split(settings.styles, split)
    out = Path(out)
    _claim(out, settings, examples, solo_pool, cloud_scenes)
    started = time.perf_counter()

    # Splits are computed once here: the interleaving is sequential by nature.
    scene_splits = split_sequence(examples, settings.split_fractions)
    pool_splits = split_sequence(solo_pool, settings.split_fractions)
    cloud_splits = split_sequence(cloud_scenes, settings.split_fractions)
    tasks = _tasks(scene_splits, pool_splits, cloud_splits)
    counts = _run_tasks(settings, out, tasks, jobs, progress)
    return DatasetSummary(
        root=out,
        examples={s: scene_splits.count(s) for s in SPLITS},
        written=counts["scene"][0],
        skipped=counts["scene"][1],
        pool={s: pool_splits.count(s) for s in SPLITS} if solo_pool else {},
        pool_written=counts["pool"][0],
        pool_skipped=counts["pool"][1],
        clouds={s: cloud_splits.count(s) for s in SPLITS} if cloud_scenes else {},
        clouds_written=counts["clouds"][0],
        clouds_skipped=counts["clouds"][1],
        seconds=time.perf_counter() - started,
    )


def _check_arguments(
    examples: int,
    solo_pool: int,
    cloud_scenes: int,
    jobs: int,
    performers: tuple[int, int],
    split_fractions: Sequence[float],
    bits: str,
    mics: str | int,
) -> None:
    """Raise ValueError for an argument of :func:`write_dataset` that is out of range."""
    from pcsep_cli.synth.room import channels_of

    channels_of(mics)
    if min(examples, solo_pool, cloud_scenes) < 0 or jobs < 1:
        raise ValueError(
            "need examples, solo_pool, cloud_scenes >= 0 and jobs >= 1; got "
            f"{examples}, {solo_pool}, {cloud_scenes}, {jobs}"
        )
    if not 1 <= performers[0] <= performers[1] <= 10:
        raise ValueError(f"performers must be (min, max), 1 <= min <= max <= 10; got {performers}")
    if len(split_fractions) != 3 or min(split_fractions) < 0 or sum(split_fractions) <= 0:
        raise ValueError(f"split_fractions must be 3 shares >= 0, got {split_fractions}")
    if bits not in ("32f", "24"):
        raise ValueError(f"bits must be '32f' or '24' (Σ stems = mixture needs them), got {bits!r}")


def _tasks(scene_splits: list[str], pool_splits: list[str], cloud_splits: list[str]) -> list[_Task]:
    """One task per scene, per chunk of ``POOL_CHUNK`` solo clips and per cloud scene."""
    tasks: list[_Task] = [("scene", i, (split,)) for i, split in enumerate(scene_splits)]
    tasks += [
        ("pool", start, tuple(pool_splits[start : start + POOL_CHUNK]))
        for start in range(0, len(pool_splits), POOL_CHUNK)
    ]
    tasks += [("clouds", i, (split,)) for i, split in enumerate(cloud_splits)]
    return tasks


def _run_tasks(
    settings: Settings,
    out: Path,
    tasks: list[_Task],
    jobs: int,
    progress: ProgressFn | None,
) -> dict[str, list[int]]:
    """Run ``tasks`` (reporting each as it ends) and count the items written and skipped."""
    counts = {"scene": [0, 0], "pool": [0, 0], "clouds": [0, 0]}  # written, skipped
    results = _execute(settings, out, tasks, jobs)
    for done, (kind, written, skipped) in enumerate(results):
        counts[kind][0] += written
        counts[kind][1] += skipped
        if progress is not None:
            progress(Progress("synth", done + 1, len(tasks), "task", kind))
    return counts


def split_sequence(n: int, fractions: Sequence[float]) -> list[str]:
    """Split of indices ``0 .. n-1``: each goes to the split furthest below its share.

    Every prefix holds the asked shares to within one example, and index ``i``'s split does not
    depend on ``n``.
    """
    shares = np.asarray(fractions, dtype=np.float64) / float(np.sum(fractions))
    counts = np.zeros(3)
    out = []
    for i in range(n):
        k = int(np.argmax(shares * (i + 1) - counts))
        counts[k] += 1
        out.append(SPLITS[k])
    return out


def example_dir(root: Path, split: str, index: int, kind: str = "scene") -> Path:
    """Folder of item ``index`` of ``split``; ``kind``: ``"scene"``, ``"pool"`` or ``"clouds"``."""
    base = root / split if kind == "scene" else root / kind / split
    return base / f"{index:06d}"


def _claim(out: Path, settings: Settings, examples: int, solo_pool: int, clouds: int) -> None:
    """Create ``out`` or check that it holds a dataset written with the same settings."""
    from pcsep_cli.io.atomic import atomic_write_text

    manifest = out / "dataset.json"
    wanted = settings.to_json()
    if manifest.exists():
        try:
            have = json.loads(manifest.read_text())
        except (OSError, ValueError) as err:
            raise DatasetError(
                f"unreadable dataset.json ({err})",
                path=manifest,
                hint="delete the folder or choose another --out",
            ) from None
        # written before sources / styles were settings
        have_settings = {
            "sources": ["fluidr3"],
            "styles": ["seen"],
            "clutter": 0.0,
            "music_splits": None,
            **have.get("settings", {}),
        }
        diff = [k for k in _SETTINGS if have_settings.get(k) != wanted[k]]
        if diff:
            raise DatasetError(
                f"was written with other settings ({', '.join(diff)})",
                path=out,
                hint="rerun with the same settings to resume, or choose another --out",
            )
    elif out.exists() and any(out.iterdir()):
        raise DatasetError(
            "is not empty and holds no dataset.json",
            path=out,
            hint="choose an empty or new folder for --out",
        )
    out.mkdir(parents=True, exist_ok=True)
    from pcsep_cli.synth.scene import CLASSES

    document = {
        "format": "pcsep-synth",
        "version": FORMAT_VERSION,
        "examples": examples,
        "solo_pool": solo_pool,
        "cloud_scenes": clouds,
        "classes": list(CLASSES),
        "body_ids": {k: list(v) for k, v in BODY_IDS.items()},
        "settings": wanted,
    }
    atomic_write_text(manifest, json.dumps(document, indent=1) + "\n", overwrite=True)


_Task = tuple[str, int, tuple[str, ...]]  # kind, first index, split of each index


def _execute(
    settings: Settings, out: Path, tasks: list[_Task], jobs: int
) -> Iterator[tuple[str, int, int]]:
    if not tasks:
        return
    if jobs == 1 or len(tasks) == 1:
        for task in tasks:
            yield _run((settings, out, task))
        return
    # spawn: workers must not inherit torch's or FluidSynth's state from a forked parent.
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(jobs, len(tasks)), initializer=_init_worker) as pool:
        yield from pool.imap_unordered(_run, [(settings, out, task) for task in tasks], chunksize=1)


def _init_worker() -> None:
    # One thread per worker: --jobs already uses the cores.
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = "1"


def _run(args: tuple[Settings, Path, _Task]) -> tuple[str, int, int]:
    with _one_thread():
        return _run_task(*args)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run a task on one BLAS and one torch thread, in a worker or in this process alike:
    sums split over threads round differently, and an example must not depend on ``jobs``."""
    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(threads)


def _run_task(settings: Settings, out: Path, task: _Task) -> tuple[str, int, int]:
    from pcsep_cli.synth import example as examples

    kind, index, splits = task
    if kind in ("scene", "clouds"):
        folder = example_dir(out, splits[0], index, kind=kind)
        if examples.is_finished(folder, kind):
            return kind, 0, 1
        write = examples.write_scene if kind == "scene" else examples.write_cloud_scene
        write(settings, folder, splits[0], index)
        return kind, 1, 0
    folders = [example_dir(out, split, index + j, kind="pool") for j, split in enumerate(splits)]
    todo = [not examples.is_finished(f, "pool") for f in folders]
    if any(todo):
        examples.write_pool_chunk(settings, folders, splits, index, todo)
    return kind, sum(todo), len(todo) - sum(todo)
