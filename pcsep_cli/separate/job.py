"""What to separate and how to write it, checked before any model is loaded.

:func:`prepare_job` checks everything that can fail without a model: the audio is readable,
every cloud is readable and holds performers, the microphones (``--mics``) are one per channel
and none inside a performer (:mod:`pcsep_cli.separate.geometry`), the output format, bit depth
and channel count fit together, the output folder can be created, the file name template is
safe, and no output exists already (unless overwriting; :func:`existing_outputs`).

File name template fields: ``{track}`` (the audio file's name without extension),
``{stem}`` (``violin``, ``violin_2``, ``residual``, ``manifest``), ``{instrument}``, ``{ext}``.
It must contain ``{stem}`` and stay inside the output folder (no absolute path, no ``..``).

Output formats: ``wav`` and ``flac`` (lossless: the written stems and residual add up to the
mixture), ``mp3``, ``ogg`` (Vorbis) and ``opus`` (lossy: they add up only approximately); what
each holds is in :mod:`pcsep_cli.io.encoding`. ``stems`` keeps the stems of some instrument
classes (every performer of each); the others' sound goes to the residual, which is still
*mixture − Σ written stems*. ``start`` and ``duration`` separate a part of the recording
(seconds; :func:`~pcsep_cli.separate.span.parse_time` reads ``90.5``, ``1:30.5``, ``0:01:30``).

Every name that reaches a path is checked where it enters (:func:`render_template`): fields
are plain (no format spec or conversion such as ``{stem:>300}`` or ``{stem!r}``, which could
pad a name to gigabytes), no control character (Unicode category Cc: C0, DEL, C1, NUL
included) anywhere, no path separator in ``{stem}`` or ``{instrument}``, and no file or folder
name longer than :data:`NAME_MAX` bytes. A name taken from a file name (``{track}``) has its
control characters replaced by ``_`` (:func:`file_name_part`), so an odd recording name still
gives a usable, printable output folder.
"""

from __future__ import annotations

import json
import math
import os
import string
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from pcsep_cli.errors import AudioError, OutputExistsError, PcsepError, SceneError
from pcsep_cli.io.audio import AudioInfo, audio_info
from pcsep_cli.io.encoding import (
    LOSSY_FORMATS,
    WRITE_FORMATS,
    Encoding,
    bitrate_range,
    encoding_for,
)
from pcsep_cli.progress import Progress, ProgressFn
from pcsep_cli.separate.span import parse_time, part_of

if TYPE_CHECKING:  # pragma: no cover
    from pcsep_cli.io.mics import Microphones
    from pcsep_cli.io.pointcloud import PointCloud
    from pcsep_cli.scene import Performer

__all__ = [
    "CLIP_MODES",
    "DEFAULT_TEMPLATE",
    "SeparateOptions",
    "SeparationJob",
    "NAME_MAX",
    "check_out_dir",
    "check_stems",
    "check_template",
    "control_char",
    "existing_outputs",
    "exists_error",
    "file_name_part",
    "output_path",
    "parse_time",
    "prepare_job",
    "quoted",
    "render_template",
    "template_fields",
]

DEFAULT_TEMPLATE = "{track}/{stem}.{ext}"
CLIP_MODES = ("rescale", "clamp", "none")
FORMATS = WRITE_FORMATS
NONE = "none"  # the class of things without an instrument: never separated
TEMPLATE_FIELDS = ("track", "stem", "instrument", "ext")
NAME_MAX = 255
"""Bytes in one file or folder name (ext4, XFS, btrfs, tmpfs, APFS; NTFS counts 255 units)."""
PATH_MAX = 4096
"""Bytes in a whole path, its terminating NUL included (Linux)."""
_SHOWN = 60  # characters of a name or template quoted in a message


@dataclass(frozen=True)
class SeparateOptions:
    """How outputs are written (the ``pcsep separate`` options that are not the model's).

    Attributes:
        format: ``"wav"``, ``"flac"``, ``"mp3"``, ``"ogg"`` (Vorbis) or ``"opus"``.
        bits: ``"16"``, ``"24"``, ``"32f"`` or None (keep the input's where the format can);
            wav and flac only.
        filename: output path template relative to the output folder (module docstring).
        clip_mode: ``"rescale"``, ``"clamp"`` or ``"none"``.
        residual: write ``residual`` too.
        overwrite: replace existing outputs.
        instruments: label mode: one class per performer, left to right.
        units: units of the clouds' coordinates when not metres (``mm``, ``cm``, ``ft``).
        bitrate: kbit/s of mp3 and opus (None: their default).
        quality: Vorbis quality of ogg, 0–10 (None: the default).
        stems: write only the stems of these instrument classes; None: all.
        start: seconds into the recording where the part to separate begins.
        duration: seconds to separate from ``start``; None: to the end.

    Raises:
        ValueError: an unknown format or clip mode, an unsafe template, a setting the format
            does not take (``bits`` of a lossy one, ``bitrate`` of wav ...), or a ``start``,
            ``duration`` or ``stems`` that cannot be (the messages name the option).
    """

    format: str = "wav"
    bits: str | None = None
    filename: str = DEFAULT_TEMPLATE
    clip_mode: str = "rescale"
    residual: bool = True
    overwrite: bool = False
    instruments: tuple[str, ...] | None = None
    units: str | None = None
    bitrate: int | None = None
    quality: float | None = None
    stems: tuple[str, ...] | None = None
    start: float = 0.0
    duration: float | None = None

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.clip_mode not in CLIP_MODES:
            raise ValueError(f"clip_mode must be one of {CLIP_MODES}, got {self.clip_mode!r}")
        check_template(self.filename)
        self._check_encoding()
        if not (math.isfinite(self.start) and self.start >= 0):
            raise ValueError(f"--start must be 0 or more seconds, got {self.start:g}")
        if self.duration is not None and not (math.isfinite(self.duration) and self.duration > 0):
            raise ValueError(f"--duration must be more than 0 seconds, got {self.duration:g}")
        if self.stems is not None:
            if not self.stems or not all(self.stems):
                raise ValueError("--stems needs instrument names, e.g. --stems violin,cello")
            if NONE in self.stems:
                raise ValueError(f"--stems: '{NONE}' (no instrument) is never separated")

    def _check_encoding(self) -> None:
        """What the format takes, whatever the input (its rate and channels are checked by
        :func:`prepare_job`)."""
        fmt = self.format
        lossy = fmt in LOSSY_FORMATS
        if self.bits is not None and lossy:
            raise ValueError(
                f"--bits applies to wav and flac; {fmt} is lossy and has no bit depth"
                + ("" if fmt == "ogg" else " (set --bitrate)")
            )
        if self.bitrate is not None:
            if fmt not in ("mp3", "opus"):
                raise ValueError(
                    f"--bitrate applies to mp3 and opus, not {fmt}"
                    + (" (Vorbis takes --quality)" if fmt == "ogg" else "")
                )
            low, high = bitrate_range(fmt) or (0, 0)  # mp3 and opus have one
            if not low <= self.bitrate <= high:  # no recording could take it
                what = "sample rate" if fmt == "mp3" else "channel count"
                raise ValueError(
                    f"--bitrate of {fmt} must be {low} to {high} kbit/s, got {self.bitrate} "
                    f"(within that, the recording's {what} decides)"
                )
        if self.quality is not None:
            if fmt != "ogg":
                raise ValueError(
                    f"--quality applies to ogg (Vorbis), not {fmt}"
                    + (" (set --bitrate)" if lossy else "")
                )
            if not 0.0 <= self.quality <= 10.0:
                raise ValueError(f"--quality must be 0 to 10, got {self.quality:g}")

    @property
    def lossy(self) -> bool:
        """Whether the format changes the samples (stems + residual then only approximate the
        mixture)."""
        return self.format in LOSSY_FORMATS


@dataclass
class SeparationJob:
    """A validated separation, ready for :func:`run_job` (no model involved yet).

    Attributes:
        audio: the input file; ``info`` its header.
        clouds: the cloud files (empty in label mode without clouds).
        performers: left to right, or None (label mode without clouds).
        out_dir: output folder (created when the outputs are written).
        options: output settings.
        subtype: libsndfile subtype of the outputs.
        warnings: what the user should hear about that did not stop the job, one line each,
            naming the file (a cloud whose size looks like millimetres).
        mode: ``"scene"`` (one cloud), ``"clouds"`` (one per performer) or ``"labels"``.
        encoding: how the outputs are encoded (None: from ``options`` and ``info``).
        start: first sample of the part separated (``options.start`` at the input's rate).
        length: its samples (None: to the end of the recording).
        microphones: the recording's microphone geometry (``--mics``), one per channel; None
            without.
    """

    audio: Path
    info: AudioInfo
    clouds: list[Path]
    performers: list[Performer] | None
    out_dir: Path
    options: SeparateOptions
    subtype: str
    mode: str = field(default="scene")
    warnings: list[str] = field(default_factory=list)
    encoding: Encoding | None = None
    start: int = 0
    length: int | None = None
    microphones: Microphones | None = None

    @property
    def frames(self) -> int:
        """Samples (per channel) to separate: every stem's length."""
        rest = self.info.frames - self.start
        return rest if self.length is None else min(self.length, rest)

    def output_encoding(self) -> Encoding:
        """How the outputs are encoded (:func:`~pcsep_cli.io.encoding.encoding_for`).

        Raises:
            AudioError: the format cannot hold this audio (named in the message).
        """
        if self.encoding is not None:
            return self.encoding
        return _encoding(self.audio, self.info, self.options)

    @property
    def track(self) -> str:
        """``{track}``: the audio file's name without its extension (control characters
        replaced, :func:`file_name_part`)."""
        return file_name_part(self.audio.stem)


def _encoding(audio: Path, info: AudioInfo, options: SeparateOptions) -> Encoding:
    try:
        return encoding_for(
            "." + options.format,
            info.sample_rate,
            info.channels,
            bits=options.bits,
            input_subtype=info.subtype,
            bitrate=options.bitrate,
            quality=options.quality,
        )
    except AudioError as err:
        raise AudioError(err.message, audio, err.hint) from None


def check_stems(stems: Sequence[str], classes: Sequence[str]) -> None:
    """Refuse ``--stems`` names that are not instrument classes of the model.

    Raises:
        ValueError: the first unknown name, with the classes the model knows.
    """
    known = [c for c in classes if c != NONE]
    for name in stems:
        if name not in known:
            raise ValueError(
                f"--stems: {quoted(name)} is not an instrument this model knows "
                f"({', '.join(known)})"
            )


def control_char(text: str) -> str | None:
    """The first control character of ``text`` (Unicode category Cc: C0 incl. NUL and ESC,
    DEL, C1), or None."""
    for char in text:
        if unicodedata.category(char) == "Cc":
            return char
    return None


def file_name_part(name: str) -> str:
    """A name taken from a file name, fit for an output name: control characters become ``_``.

    A file name may hold any character but ``/`` and NUL; newlines, ESC and the like would
    make output names that break terminals and scripts. The rest (spaces, accents, emoji)
    is kept as it is.
    """
    if control_char(name) is None:
        return name
    return "".join("_" if unicodedata.category(c) == "Cc" else c for c in name)


def quoted(text: str) -> str:
    """``repr(text)``, cut to a readable length: for names and templates in messages."""
    if len(text) > _SHOWN:
        return repr(text[:_SHOWN]) + f"... ({len(text)} characters)"
    return repr(text)


def template_fields(template: str) -> list[tuple[str, str, str, str | None]]:
    """``(literal, field, format_spec, conversion)`` of each part of ``template``
    (as :meth:`string.Formatter.parse`; ``field`` is ``""`` after the last field).

    Raises:
        ValueError: unbalanced braces.
    """
    try:
        return [
            (text, "" if f is None else f, spec or "", conv)
            for text, f, spec, conv in string.Formatter().parse(template)
        ]
    except ValueError as err:
        raise ValueError(f"bad --filename template {quoted(template)}: {err}") from None


def check_template(template: str) -> None:
    """Refuse a file name template that is unsafe or cannot name every stem apart.

    Raises:
        ValueError: unknown field, a format spec or conversion, no ``{stem}``, a control
            character, an absolute path, a ``..`` component or a name over ``NAME_MAX`` bytes.
    """
    fields = {f for _, f, _, _ in template_fields(template) if f}
    render_template(template, track="track", stem="stem", instrument="stem", ext="wav")
    if "stem" not in fields:
        raise ValueError("--filename template must contain {stem}, or stems overwrite each other")


def render_template(template: str, *, track: str, stem: str, instrument: str, ext: str) -> Path:
    """The output path of one file, relative to the output folder.

    The fields are filled in as they are (never through ``str.format``'s format specs).
    ``{track}`` may hold folders (a batch item ``session/take1``).

    Raises:
        ValueError: a field that is unknown or not plain, a value with a control character
            (or a path separator, for ``{stem}`` and ``{instrument}``), a file or folder name
            longer than :data:`NAME_MAX` bytes, or a result that is absolute, empty or leaves
            the output folder. The message names the field or the name at fault.
    """
    values = {"track": track, "stem": stem, "instrument": instrument, "ext": ext}
    for key, value in values.items():
        _check_value(key, value)
    pieces = []
    for literal, name, spec, conv in template_fields(template):
        pieces.append(literal)
        if not name and not spec and not conv:
            continue  # the text after the last field
        if name not in values:
            raise ValueError(
                f"--filename template field {{{name}}} is unknown; use "
                + ", ".join(f"{{{f}}}" for f in TEMPLATE_FIELDS)
            )
        if spec or conv:
            written = "{" + name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
            raise ValueError(
                f"--filename field {quoted(written)[1:-1]} has a format spec or conversion; "
                f"write the plain field {{{name}}}"
            )
        pieces.append(values[name])
    text = "".join(pieces)
    char = control_char(text)
    if char is not None:
        raise ValueError(
            f"--filename {quoted(template)} holds the control character {char!r}; "
            "remove it from the template"
        )
    rel = PurePosixPath(text.replace(os.sep, "/"))
    if rel.is_absolute() or Path(text).is_absolute() or Path(text).drive:
        raise ValueError(f"--filename {quoted(template)} gives an absolute path; keep it inside -o")
    if ".." in rel.parts or not rel.parts or rel.name in ("", "."):
        raise ValueError(f"--filename {quoted(template)} leaves the output folder ({quoted(text)})")
    for part in rel.parts:
        size = len(part.encode("utf-8", "surrogateescape"))
        if size > NAME_MAX:
            raise ValueError(
                f"--filename {quoted(template)} gives a name of {size} bytes "
                f"({quoted(part)}), longer than the {NAME_MAX} a file system allows"
            )
    return Path(*rel.parts)


def output_path(
    out_dir: Path, template: str, *, track: str, stem: str, instrument: str, ext: str
) -> Path:
    """``out_dir`` / the rendered template, checked to fit in a path (:data:`PATH_MAX`).

    Raises:
        ValueError: see :func:`render_template`, or the whole path is too long.
    """
    path = out_dir / render_template(
        template, track=track, stem=stem, instrument=instrument, ext=ext
    )
    size = len(os.fsencode(path.absolute()))
    if size >= PATH_MAX:
        raise ValueError(
            f"--filename {quoted(template)} gives a path of {size} bytes, longer than the "
            f"{PATH_MAX - 1} a file system allows"
        )
    return path


def _check_value(key: str, value: str) -> None:
    char = control_char(value)
    if char is not None:
        raise ValueError(f"{{{key}}} {quoted(value)} holds the control character {char!r}")
    if key in ("stem", "instrument", "ext") and (
        "/" in value or os.sep in value or (os.altsep and os.altsep in value)
    ):
        raise ValueError(f"{{{key}}} {quoted(value)} holds a path separator")


def check_out_dir(out_dir: Path) -> None:
    """``out_dir`` (``-o``) is a folder, or can be made as one, and pcsep can write there.

    Raises:
        PcsepError: it is a file, lies under a file, or its nearest existing folder is not
            writable.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise PcsepError("output path exists and is not a folder", out_dir, "choose another -o")
    parent = out_dir
    while not os.path.lexists(parent):
        parent = parent.parent
    if not parent.is_dir():
        raise PcsepError(
            "is a file, not a folder, so -o cannot go under it", parent, "choose another -o"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PcsepError(
            "cannot create outputs here: folder not writable", parent, "choose another -o"
        )


def _check_names(audio: Path, out: Path, options: SeparateOptions) -> None:
    """The outputs can be named with this recording's name (the stems' names, which come
    from the model, are checked again by ``run_job``)."""
    track = file_name_part(audio.stem)
    for stem, ext in (("residual", options.format), ("manifest", "json")):
        try:
            output_path(out, options.filename, track=track, stem=stem, instrument=stem, ext=ext)
        except ValueError as err:
            raise PcsepError(
                str(err), audio, "rename the recording, or change --filename or -o"
            ) from None


def exists_error(paths: Sequence[Path]) -> OutputExistsError:
    """One error naming every output in ``paths`` (those that exist already), each relative
    to the folder they share, in one line with the fix however many there are: the user sees
    what ``--overwrite`` would replace."""
    if len(paths) == 1:
        return OutputExistsError("exists already", paths[0], "pass --overwrite to replace it")
    folder = Path(os.path.commonpath([p.parent for p in paths]))
    names = [p.relative_to(folder).as_posix() for p in paths]
    listed = ", ".join(names[:-1]) + f" and {names[-1]}"
    return OutputExistsError(
        f"{len(paths)} outputs exist already: {listed}", folder, "pass --overwrite to replace them"
    )


def existing_outputs(
    audio: str | os.PathLike[str], out_dir: str | os.PathLike[str], options: SeparateOptions
) -> list[Path]:
    """The outputs of a separation that exist already, found without a model.

    Checked: the manifest and the residual; the stems in label mode (named by the labels);
    and the stems and residual that an earlier run's manifest at the same place lists (a
    rerun classifies the same way). In scene mode a stem is named by the model's
    classification, so a stem without a manifest is found only once the model has run
    (:func:`~pcsep_cli.separate.output.run_job` checks again).

    Returns:
        The existing paths, stems first, then the residual and the manifest; no duplicate.
    """
    out, track = Path(out_dir), file_name_part(Path(audio).stem)

    def target(stem: str, ext: str = options.format) -> Path:
        return output_path(out, options.filename, track=track, stem=stem, instrument=stem, ext=ext)

    planned: list[Path] = []
    if options.instruments is not None:
        from pcsep_cli.classes import NONE
        from pcsep_cli.separate.types import stem_names

        labels = [label for label in options.instruments if label != NONE]
        try:
            planned += [target(name) for name in stem_names(labels)]
        except ValueError:
            pass  # a label that cannot name a file: run_job says so
    manifest = target("manifest", "json")
    planned += _listed_by(manifest)
    if options.residual:
        planned.append(target("residual"))
    planned.append(manifest)
    return [p for p in dict.fromkeys(planned) if os.path.lexists(p)]


def _listed_by(manifest: Path) -> list[Path]:
    """The stem and residual files an earlier run's manifest lists (paths relative to the
    manifest's folder; those of older manifests as they were written)."""
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        entries = [*data["stems"], *([data["residual"]] if data.get("residual") else [])]
        listed = [Path(entry["path"]) for entry in entries]
    except (OSError, ValueError, TypeError, KeyError):
        return []
    found = []
    for path in listed:
        for candidate in (manifest.parent / path, path):
            if os.path.lexists(candidate):
                found.append(candidate)
                break
    return found


def prepare_job(
    audio: str | os.PathLike[str],
    clouds: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    options: SeparateOptions | None = None,
    *,
    mics: str | os.PathLike[str] | None = None,
    progress: ProgressFn | None = None,
) -> SeparationJob:
    """Validate a separation without loading a model (cheap checks first).

    Args:
        audio: the recording (any format libsndfile reads).
        clouds: one whole-scene cloud, or one cloud per performer; may be empty in label mode.
        out_dir: output folder (created later).
        options: output settings (defaults if None).
        mics: a microphone geometry file (``mics.json``, :mod:`pcsep_cli.io.mics`), read with
            the clouds' ``units`` (:mod:`pcsep_cli.separate.geometry`).
        progress: receives the stages ``read`` and ``find`` (:mod:`pcsep_cli.progress`).

    Raises:
        AudioError: unreadable audio, a format that cannot hold it (channels, rate, bit depth,
            bitrate), or a ``start`` past its end.
        PointCloudError: unreadable cloud.
        MicrophoneError: ``mics`` unreadable or invalid, not one microphone per channel, or a
            microphone inside a performer.
        SceneError: no performer in the scene, or not one instrument per performer.
        OutputExistsError: outputs exist already and ``options.overwrite`` is off (all of
            those :func:`existing_outputs` finds are named).
        PcsepError: output folder unusable, an output name that cannot be made from the
            recording's name, or no cloud outside label mode.
    """
    from pcsep_cli.io.pointcloud import read_cloud, units_warning

    options = options or SeparateOptions()
    info = audio_info(audio)
    encoding = _encoding(Path(audio), info, options)
    start, length = part_of(Path(audio), info, options.start, options.duration)
    out = Path(out_dir)
    check_out_dir(out)
    _check_names(Path(audio), out, options)
    if not options.overwrite:  # before the clouds are read and long before a model loads
        existing = existing_outputs(audio, out, options)
        if existing:
            raise exists_error(existing)
    microphones = None
    if mics is not None:  # before the clouds: it is read in a moment
        from pcsep_cli.separate.geometry import read_job_mics

        microphones = read_job_mics(mics, Path(audio), info.channels, options.units)
    paths = [Path(c) for c in clouds]
    if not paths and options.instruments is None:
        raise PcsepError(
            "no point cloud given", hint="pass CLOUD (a scene, or one cloud per performer)"
        )
    performers = None
    warnings: list[str] = []
    if paths:
        read: list[PointCloud] = []
        for p in paths:
            _report(progress, Progress("read", len(read), len(paths), "file", p.name))
            read.append(read_cloud(p, units=options.units))
        _report(progress, Progress("read", len(read), len(paths), "file"))
        _report(progress, Progress("find", 0, None, "performer"))
        from pcsep_cli.scene import find_scene_performers  # scipy: after the read is shown

        for path, cloud in zip(paths, read, strict=True):
            word = units_warning(cloud)
            if word:
                warnings.append(f"{path}: {word}")
        performers = find_scene_performers(read)
        _report(progress, Progress("find", len(performers), len(performers), "performer"))
        if microphones is not None:
            warnings += _check_mics(microphones, performers)
        labels = options.instruments
        if labels is not None and len(performers) != len(labels):
            raise SceneError(
                f"{len(performers)} performers found in the cloud, {len(labels)} instruments given",
                paths[0],
                "give one instrument per performer, left to right, or leave out the cloud",
            )
    mode = "labels" if options.instruments is not None else "scene" if len(paths) == 1 else "clouds"
    return SeparationJob(
        Path(audio),
        info,
        paths,
        performers,
        out,
        options,
        encoding.subtype,
        mode,
        encoding=encoding,
        start=start,
        length=length,
        warnings=warnings,
        microphones=microphones,
    )


def _check_mics(microphones: Microphones, performers: list[Performer]) -> list[str]:
    """Refuse a microphone inside a performer; a word when all are far from every one."""
    from pcsep_cli.separate.geometry import check_mics_clear, mics_far_warning

    check_mics_clear(microphones, performers)
    word = mics_far_warning(microphones, performers)
    return [word] if word else []


def _report(progress: ProgressFn | None, event: Progress) -> None:
    if progress is not None:
        progress(event)
