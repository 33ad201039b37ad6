"""Separation of a prepared job (:mod:`pcsep_cli.separate.job`) from file to files.

:func:`run_job`

1. separates the audio block by block into float32 temporary files beside the outputs (one
   per stem), noting each stem's peak: the clip mode needs the whole file's peak before the
   first sample is written;
2. reads the mixture and the temporary stems again block by block and writes the final
   stems (gain of the clip mode, quantised to the output's bit depth) and the residual as
   *mixture − Σ written stems*, computed in float64 from the quantised stems and quantised
   last. So ``Σ stems + residual = mixture`` holds to the output's last bit: within 1e-4 and
   better at float32; with PCM output the only error is the residual's own rounding (half a
   step; none when the input had the same bit depth) or clipping of the residual, which the
   manifest counts (``clipped_samples``). Lossy formats (MP3, Vorbis, Opus) encode the same
   stems and residual, but the codec changes the samples: the sum then holds only
   approximately, the manifest says ``"lossy": true`` and gives no ``sum_max_error``;
3. writes the manifest (``manifest.json``: the template rendered with ``stem=manifest``,
   ``ext=json``). Its paths are relative to its own folder (:func:`manifest_path`): the
   stems' (``violin.wav``) always, the inputs' (``../../take1.wav``) unless they share no
   folder but the root with it, when they are absolute; ``manifest`` is where it was written,
   absolute.

All outputs are written under temporary names and renamed into place together, the manifest
last, through a journal (:func:`~pcsep_cli.io.atomic.commit_together`): a run killed at any
point leaves either no output or, once the next run has replayed the journal, all of them.
Nothing is written when any output exists already, unless ``overwrite``. Memory stays flat
with duration in both passes.

Clip modes (as demucs): ``rescale`` divides a stem by ``max(1, 1.01 · peak)``; ``clamp``
clips it to ±1; ``none`` writes it as it is (integer formats clip at full scale). The residual
takes up what the stems' gains removed.

With ``stems`` (``--stems violin,cello``) only the stems of those classes are written (every
performer of each: ``violin`` and ``violin_2``); the masks are still computed for every
performer, so the others' sound is kept out of the stems written and goes to the residual.
With ``start``/``duration`` only that part of the recording is read (sought to, never decoded
from the beginning into memory) and separated.

"""

from __future__ import annotations

import json
import math
import os
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import soundfile as sf

from pcsep_cli.errors import AudioError, PcsepError, SceneError
from pcsep_cli.io.atomic import PendingFile, commit_together, output_error, remove_stray_temps
from pcsep_cli.io.audio import iter_blocks
from pcsep_cli.io.audio_write import AudioWriter, write_failure
from pcsep_cli.progress import Progress, ProgressFn
from pcsep_cli.separate.geometry import ignored_note
from pcsep_cli.separate.job import SeparationJob, exists_error, output_path, quoted
from pcsep_cli.separate.types import Conditions, Detection

if TYPE_CHECKING:  # pragma: no cover
    from pcsep_cli.separate.separator import Separator

__all__ = ["manifest_path", "run_job"]

MANIFEST_VERSION = 2
"""2: paths relative to the manifest's folder (1: as the run was given them)."""
_PASS2_BLOCK = 1 << 16
_ELSEWHERE = "remove or rename that %s, or choose another -o or --filename"
_PCM_BITS = {"PCM_16": 16, "PCM_24": 24, "PCM_32": 32}


def _quantiser(subtype: str) -> float | None:
    bits = _PCM_BITS.get(subtype)
    return None if bits is None else 2.0 ** (bits - 1)


def _quantise(x: np.ndarray, scale: float | None) -> np.ndarray:
    """Float values the writer stores exactly: rounded to the PCM grid and clipped, like
    :class:`~pcsep_cli.io.audio_write.AudioWriter`."""
    if scale is None:
        return x.astype(np.float32).astype(np.float64)
    return np.clip(np.rint(x * scale), -scale, scale - 1) / scale


def _gain(peak: float, mode: str) -> float:
    return 1.0 / max(1.0, 1.01 * peak) if mode == "rescale" else 1.0


def run_job(
    separator: Separator, job: SeparationJob, *, progress: ProgressFn | None = None
) -> dict[str, Any]:
    """Separate ``job`` with ``separator`` and write stems, residual and manifest.

    ``progress`` receives the stages ``classify`` (scene mode), ``separate`` and ``write``
    (seconds of audio; see :mod:`pcsep_cli.progress`).

    Returns:
        The manifest: ``{"version", "audio", "clouds", "mode", "model", "sample_rate",
        "channels", "frames", "duration_s", "start_s", "start_frame", "format", "subtype",
        "lossy", "bitrate", "quality", "output_sample_rate", "clip_mode", "segment",
        "overlap", "selected_stems", "stems": [{"name", "instrument", "confidence",
        "position", "points", "path", "gain", "peak"}], "in_residual": [...],
        "residual": {"name", "path"} | None, "ignored": [...], "microphones", "notes", "manifest",
        "sum_max_error", "clipped_samples"}``; paths relative to the manifest's folder
        (:func:`manifest_path`), ``manifest`` its own absolute path. ``frames``,
        ``duration_s``: the part separated (every stem's length at ``sample_rate``, the
        input's); ``output_sample_rate``: the files' (Opus may resample);
        ``in_residual``: performers separated but not written (``--stems``);
        ``sum_max_error``: None for lossy formats and without a residual;
        ``microphones``: None without ``--mics``, else ``{"file", "positions", "directions",
        "patterns", "used", "note", "sources", "channel_check"}`` (metres after ``--units``;
        ``used`` False and ``note`` saying why when the stems owe nothing to the geometry;
        ``sources``: where each stem's sound was taken to come from; ``channel_check``:
        ``{"score", "best_order", "best_score"}``, channels counted from 1, see
        :func:`~pcsep_cli.separate.geometry.channel_order_warning`);
        ``notes``: lines for the user (a spatial model run on the mono path, channels that
        look swapped).

    Raises:
        OutputExistsError: an output exists and ``overwrite`` is off (nothing is written).
        ModelError, SceneError: see :meth:`Separator.condition`; SceneError also for a
            ``stems`` class that no performer has.
        AudioError, PcsepError: reading or writing failed (no partial file is left).
    """
    cond = _condition(separator, job, progress)
    written = _selected(job, cond.stems)
    paths, res_path, man_path = _output_paths(job, [cond.stems[i] for i in written])
    made = _prepare_outputs(job, [*paths, *([res_path] if res_path else []), man_path])
    targets = (paths, res_path, man_path)
    try:
        return _separate_and_write(separator, job, cond, written, targets, progress)
    except BaseException:
        _remove_empty(made)  # a failed run leaves -o as it found it
        raise


def _selected(job: SeparationJob, stems: list[Detection]) -> list[int]:
    """Indices (in ``stems``) of the stems to write: all, or those of ``options.stems``.

    Raises:
        SceneError: a class asked for that no performer has (the message lists those found).
    """
    wanted = job.options.stems
    if wanted is None:
        return list(range(len(stems)))
    found = list(dict.fromkeys(d.instrument for d in stems))
    missing = [w for w in dict.fromkeys(wanted) if w not in found]
    if missing:
        where = job.clouds[0] if len(job.clouds) == 1 else None
        source = "the labels" if job.mode == "labels" else "the scene"
        raise SceneError(
            f"--stems {', '.join(map(quoted, missing))}: not in {source}, which holds "
            f"{', '.join(found)}",
            where,
            f"choose --stems among {', '.join(found)}",
        )
    return [i for i, d in enumerate(stems) if d.instrument in wanted]


def _condition(separator: Separator, job: SeparationJob, progress: ProgressFn | None) -> Conditions:
    """The separator's conditions, reported as stage ``classify`` when performers are named
    from their clouds (in label mode nothing is classified).

    Raises:
        SceneError: as :meth:`Separator.condition`, naming the cloud file when there is one.
    """
    performers = job.performers
    try:
        mics = job.microphones
        if progress is None or job.options.instruments is not None or not performers:
            return separator.condition(performers, job.options.instruments, microphones=mics)
        progress(Progress("classify", 0, len(performers), "performer"))
        cond = separator.condition(performers, None, microphones=mics)
    except SceneError as err:
        if err.path is not None or len(job.clouds) != 1:
            raise
        raise SceneError(err.message, job.clouds[0], err.hint) from None
    progress(Progress("classify", len(performers), len(performers), "performer"))
    return cond


def _separate_and_write(
    separator: Separator,
    job: SeparationJob,
    cond: Conditions,
    written: list[int],
    targets: tuple[list[Path], Path | None, Path],
    progress: ProgressFn | None,
) -> dict[str, Any]:
    """Both passes and the manifest, committed together (nothing in place on an error)."""
    opts = job.options
    paths, res_path, man_path = targets
    peaks = np.zeros(len(written))
    finished: list[PendingFile] = []  # complete outputs, not yet in place
    try:
        with ExitStack() as stack:
            temps = []
            for p in paths:  # each discarded on the way out, even if a later one fails
                temps.append(PendingFile(p, overwrite=True))
                stack.callback(temps[-1].discard)
            _first_pass(separator, job, cond, written, temps, peaks, progress)
            gains = [1.0 if opts.clip_mode != "rescale" else _gain(pk, "rescale") for pk in peaks]
            sum_err, clipped = _second_pass(job, temps, paths, res_path, gains, progress, finished)
        manifest = _manifest(separator, job, cond, written, targets, gains, peaks)
        lossy = job.output_encoding().lossy
        manifest["sum_max_error"] = sum_err if res_path is not None and not lossy else None
        manifest["clipped_samples"] = clipped
        man = PendingFile(man_path, overwrite=opts.overwrite)
        finished.append(man)
        try:
            man.tmp.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        except OSError as err:
            raise write_failure(err, man_path) from err
        commit_together(finished, job.out_dir)
    except BaseException:
        for f in finished:
            f.discard()
        raise
    return manifest


def _output_paths(
    job: SeparationJob, stems: list[Detection]
) -> tuple[list[Path], Path | None, Path]:
    """Where the stems, the residual (None with ``--no-residual``) and the manifest go.

    Raises:
        PcsepError: the file name template gives two outputs the same name, or a name that
            cannot be a file's (a class name with a control character or a separator, too long).
    """
    opts = job.options

    def target(stem: str, instrument: str, suffix: str = opts.format) -> Path:
        try:
            return output_path(
                job.out_dir,
                opts.filename,
                track=job.track,
                stem=stem,
                instrument=instrument,
                ext=suffix,
            )
        except ValueError as err:  # a class name of the model that cannot name a file
            raise PcsepError(
                f"cannot name the output of stem {quoted(stem)}: {err}",
                hint="change --filename, or use a model whose class names are plain words",
            ) from None

    paths = [target(d.name or "", d.instrument) for d in stems]
    res_path = target("residual", "residual") if opts.residual else None
    man_path = target("manifest", "manifest", "json")
    everything = [*paths, *([res_path] if res_path else []), man_path]
    if len(set(everything)) != len(everything):
        raise PcsepError(
            f"--filename {opts.filename!r} gives two outputs the same name",
            hint="put {stem} in the file name",
        )
    return paths, res_path, man_path


def _prepare_outputs(job: SeparationJob, everything: list[Path]) -> list[Path]:
    """Finish what a killed run left, refuse existing outputs (unless ``overwrite``) and
    outputs that cannot be files (a folder under an output's name, a file where a folder must
    be) before anything is written, and make the output folders.

    Returns:
        The folders made, parents first (:func:`_remove_empty` takes them away again).

    Raises:
        OutputExistsError: an output exists and ``overwrite`` is off.
        PcsepError: an output's name is a folder's, or a folder's a file's.
    """
    recover_outputs(job, everything)
    if not job.options.overwrite:
        existing = [p for p in everything if os.path.lexists(p)]
        if existing:
            raise exists_error(existing)
    for path in everything:
        if path.is_dir():
            raise PcsepError(
                "is a folder, cannot write a file under this name", path, _ELSEWHERE % "folder"
            )
    made: list[Path] = []
    try:
        for folder in dict.fromkeys(p.parent for p in everything):
            missing = []
            while not os.path.lexists(folder):
                missing.append(folder)
                folder = folder.parent
            if not folder.is_dir():
                raise PcsepError("is not a folder", folder, _ELSEWHERE % "file")
            for new in reversed(missing):
                try:
                    new.mkdir()
                except FileExistsError:  # another item of a batch made it meanwhile
                    continue
                except OSError as err:
                    raise output_error(err, new) from err
                made.append(new)
    except BaseException:
        _remove_empty(made)
        raise
    return made


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders this run made, deepest first, where they are still empty (another
    item of a batch may have put its outputs in one meanwhile)."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            pass


def _manifest(
    separator: Separator,
    job: SeparationJob,
    cond: Conditions,
    written: list[int],
    targets: tuple[list[Path], Path | None, Path],
    gains: list[float],
    peaks: np.ndarray,
) -> dict[str, Any]:
    """The manifest of a finished job (``sum_max_error`` and ``clipped_samples`` follow)."""
    opts, info, enc = job.options, job.info, job.output_encoding()
    paths, res_path, man_path = targets
    stems = [cond.stems[i] for i in written]
    here = man_path.parent
    return {
        "version": MANIFEST_VERSION,
        "audio": manifest_path(job.audio, here),
        "clouds": [manifest_path(c, here) for c in job.clouds],
        "mode": job.mode,
        "model": separator.model_info(),
        "sample_rate": info.sample_rate,
        "channels": info.channels,
        "frames": job.frames,
        "duration_s": round(job.frames / info.sample_rate, 6),
        "start_s": round(job.start / info.sample_rate, 6),
        "start_frame": job.start,
        "format": opts.format,
        "subtype": job.subtype,
        "lossy": enc.lossy,  # True: stems + residual only approximate the mixture
        "bitrate": enc.bitrate,
        "quality": enc.quality,
        "output_sample_rate": enc.sample_rate,
        "clip_mode": opts.clip_mode,
        "segment": separator.segment,
        "overlap": separator.overlap,
        "selected_stems": None if opts.stems is None else list(dict.fromkeys(opts.stems)),
        "stems": [
            {
                **d.to_json(),
                "path": manifest_path(p, here),
                "gain": round(g, 6),
                "peak": round(float(pk), 6),
            }
            for d, p, g, pk in zip(stems, paths, gains, peaks, strict=True)
        ],
        "in_residual": [d.to_json() for i, d in enumerate(cond.stems) if i not in written],
        "residual": (
            None
            if res_path is None
            else {"name": "residual", "path": manifest_path(res_path, here)}
        ),
        "ignored": [d.to_json() for d in cond.detections if not d.separated],
        "microphones": _microphones(separator, job, cond, here),
        "notes": _notes(job, cond),
        "manifest": os.path.abspath(man_path),
    }


def _notes(job: SeparationJob, cond: Conditions) -> list[str]:
    """Lines the user should read about how the stems were made (the CLI prints them)."""
    from pcsep_cli.separate.geometry import channel_order_warning

    notes = [cond.spatial_note] if cond.spatial_note else []
    word = channel_order_warning(cond.channel_check, job.microphones)
    return notes + ([word] if word else [])


def _microphones(
    separator: Separator, job: SeparationJob, cond: Conditions, here: Path
) -> dict[str, Any] | None:
    """The manifest's record of the geometry used (``--mics``), None without one."""
    mics = job.microphones
    if mics is None:
        return None
    used = cond.steer is not None
    note = cond.spatial_note if separator.uses_microphones else None
    check = cond.channel_check
    return {
        "file": None if mics.source is None else manifest_path(mics.source, here),
        **mics.to_json(),
        "used": used,
        "note": note if used or note else ignored_note(separator.model_info()),
        "sources": None if cond.sources is None else np.round(cond.sources, 4).tolist(),
        "channel_check": None
        if check is None
        else {
            "score": round(float(check["score"]), 4),
            "best_order": [i + 1 for i in check["best_order"]],
            "best_score": round(float(check["best_score"]), 4),
        },
    }


def manifest_path(path: Path, folder: Path) -> str:
    """``path`` as a manifest in ``folder`` records it: relative to ``folder`` (with ``/``) when
    the two share a folder below the file system's root, so a folder of outputs moved or copied
    together with its inputs stays whole; absolute when they share only the root (a recording
    on another disk or home), where a relative path would break as soon as either moved.

    Outputs always lie under ``-o``, so stems and residual are relative (``violin.wav``)."""
    target, base = os.path.abspath(path), os.path.abspath(folder)
    try:
        common = Path(os.path.commonpath([target, base]))
    except ValueError:  # another drive (Windows)
        return target
    if common == Path(common.anchor):
        return target
    return Path(os.path.relpath(target, base)).as_posix()


def recover_outputs(job: SeparationJob, paths: list[Path]) -> None:
    """Clean up after a run of the same outputs that was killed: finish its journal in
    ``job.out_dir`` and remove its temporary files beside ``paths``."""
    remove_stray_temps(job.out_dir)  # first: the journal puts finished temporaries in place
    for folder in sorted({p.parent for p in paths} - {job.out_dir}):
        remove_stray_temps(folder)


def _first_pass(
    separator: Separator,
    job: SeparationJob,
    cond: Any,
    written: list[int],
    temps: list[PendingFile],
    peaks: np.ndarray,
    progress: ProgressFn | None,
) -> None:
    """Separate into float32 temporary files (one per stem written), noting peaks."""
    info = job.info
    big = job.frames * info.channels * 4 > 2**32 - 2**20
    with ExitStack() as stack:
        files = []
        for t in temps:
            try:
                f = sf.SoundFile(
                    t.tmp,
                    "w",
                    info.sample_rate,
                    info.channels,
                    "FLOAT",
                    format="RF64" if big else "WAV",
                )
            except (sf.SoundFileError, RuntimeError, OSError) as err:
                raise AudioError(f"cannot write a temporary file ({err})", t.tmp) from err
            files.append(stack.enter_context(f))
        block, overlap = separator.block_sizes(info.sample_rate, info.channels, cond.film.shape[0])
        blocks = iter_blocks(job.audio, block, overlap=overlap, start=job.start, frames=job.frames)
        for out in separator.stream(
            blocks, info.sample_rate, cond, total_frames=job.frames, progress=progress
        ):
            for i, (k, f) in enumerate(zip(written, files, strict=True)):
                peaks[i] = max(peaks[i], float(np.abs(out[k]).max(initial=0.0)))
                try:
                    f.write(out[k].T)
                except (sf.SoundFileError, RuntimeError, OSError) as err:
                    raise write_failure(err, temps[i].final) from err


def _second_pass(
    job: SeparationJob,
    temps: list[PendingFile],
    paths: list[Path],
    res_path: Path | None,
    gains: list[float],
    progress: ProgressFn | None,
    finished: list[PendingFile],
) -> tuple[float, int]:
    """Write the final stems and residual, complete but not yet in place (appended to
    ``finished``); return (max |Σ outputs − mixture|, clipped)."""
    opts, info = job.options, job.info
    scale = _quantiser(job.subtype)
    max_err, clipped, done = 0.0, 0, 0
    seconds = job.frames / info.sample_rate
    if progress is not None:
        progress(Progress("write", 0.0, seconds, "s"))

    def writer(p: Path) -> AudioWriter:
        return AudioWriter(
            p,
            info.sample_rate,
            info.channels,
            bits=opts.bits,
            input_subtype=info.subtype,
            overwrite=opts.overwrite,
            frames_hint=job.frames,
            commit=False,
            bitrate=opts.bitrate,
            quality=opts.quality,
        )

    writers = [writer(p) for p in paths]
    res_writer = writer(res_path) if res_path is not None else None
    everyone = [*writers, *([res_writer] if res_writer is not None else [])]
    with ExitStack() as stack:
        # Runs last, also on an error: the caller commits or discards what was finished.
        stack.callback(lambda: finished.extend(w.pending for w in everyone if w.pending))
        readers = [stack.enter_context(sf.SoundFile(t.tmp)) for t in temps]
        for w in everyone:
            stack.enter_context(w)
        for x in iter_blocks(job.audio, _PASS2_BLOCK, start=job.start, frames=job.frames):
            mix = x.astype(np.float64)
            total = np.zeros_like(mix)
            for r, w, g in zip(readers, writers, gains, strict=True):
                s = r.read(x.shape[1], dtype="float64", always_2d=True).T * g
                if opts.clip_mode == "clamp":
                    np.clip(s, -1.0, 1.0, out=s)
                if scale is not None:
                    clipped += int(np.count_nonzero(np.abs(s) > 1.0))
                s = _quantise(s, scale)
                w.write(s)
                total += s
            if res_writer is not None:
                res = mix - total
                if opts.clip_mode == "clamp" or scale is not None:
                    clipped += int(np.count_nonzero(np.abs(res) > 1.0))
                    if opts.clip_mode == "clamp":
                        np.clip(res, -1.0, 1.0, out=res)
                res = _quantise(res, scale)
                res_writer.write(res)
                max_err = max(max_err, float(np.abs(total + res - mix).max(initial=0.0)))
            done += x.shape[1]
            if progress is not None:
                progress(Progress("write", done / info.sample_rate, seconds, "s"))
    if not math.isfinite(max_err):
        raise AudioError("the outputs do not add up to the mixture (NaN)", job.audio)
    return max_err, clipped
