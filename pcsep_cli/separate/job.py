"""What to separate and how to write it, checked before any model is loaded.

:func:`prepare_job` checks everything that can fail without a model: the audio is readable,
every cloud is readable and holds performers, the output format, bit depth and channel count
fit together, the output folder can be created, and the file name template is safe.

File name template fields: ``{track}`` (the audio file's name without extension),
``{stem}`` (``violin``, ``violin_2``, ``residual``, ``manifest``), ``{instrument}``, ``{ext}``.
It must contain ``{stem}`` and stay inside the output folder (no absolute path, no ``..``).
"""

from __future__ import annotations

import os
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from pcsep_cli.errors import AudioError, PcsepError, SceneError
from pcsep_cli.io.audio import AudioInfo, audio_info
from pcsep_cli.io.audio_write import subtype_for

if TYPE_CHECKING:  # pragma: no cover
    from pcsep_cli.io.pointcloud import PointCloud
    from pcsep_cli.scene import Performer

__all__ = [
    "CLIP_MODES",
    "DEFAULT_TEMPLATE",
    "SeparateOptions",
    "SeparationJob",
    "check_template",
    "prepare_job",
    "render_template",
]

DEFAULT_TEMPLATE = "{track}/{stem}.{ext}"
CLIP_MODES = ("rescale", "clamp", "none")
FORMATS = ("wav", "flac")
TEMPLATE_FIELDS = ("track", "stem", "instrument", "ext")


@dataclass(frozen=True)
class SeparateOptions:
    """How outputs are written (the ``pcsep separate`` options that are not the model's).

    Attributes:
        format: ``"wav"`` or ``"flac"``.
        bits: ``"16"``, ``"24"``, ``"32f"`` or None (keep the input's where the format can).
        filename: output path template relative to the output folder (module docstring).
        clip_mode: ``"rescale"``, ``"clamp"`` or ``"none"``.
        residual: write ``residual`` too.
        overwrite: replace existing outputs.
        instruments: label mode: one class per performer, left to right.
        units: units of the clouds' coordinates when not metres (``mm``, ``cm``, ``ft``).
    """

    format: str = "wav"
    bits: str | None = None
    filename: str = DEFAULT_TEMPLATE
    clip_mode: str = "rescale"
    residual: bool = True
    overwrite: bool = False
    instruments: tuple[str, ...] | None = None
    units: str | None = None

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {self.format!r}")
        if self.clip_mode not in CLIP_MODES:
            raise ValueError(f"clip_mode must be one of {CLIP_MODES}, got {self.clip_mode!r}")
        check_template(self.filename)


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
    """

    audio: Path
    info: AudioInfo
    clouds: list[Path]
    performers: list[Performer] | None
    out_dir: Path
    options: SeparateOptions
    subtype: str
    mode: str = field(default="scene")

    @property
    def track(self) -> str:
        """``{track}``: the audio file's name without its extension."""
        return self.audio.stem


def check_template(template: str) -> None:
    """Refuse a file name template that is unsafe or cannot name every stem apart.

    Raises:
        ValueError: unknown field, no ``{stem}``, an absolute path or a ``..`` component.
    """
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as err:
        raise ValueError(f"bad --filename template {template!r}: {err}") from None
    unknown = sorted(fields - set(TEMPLATE_FIELDS))
    if unknown:
        raise ValueError(
            f"--filename template field {{{unknown[0]}}} is unknown; use "
            + ", ".join(f"{{{f}}}" for f in TEMPLATE_FIELDS)
        )
    if "stem" not in fields:
        raise ValueError("--filename template must contain {stem}, or stems overwrite each other")
    render_template(template, track="track", stem="stem", instrument="stem", ext="wav")


def render_template(template: str, *, track: str, stem: str, instrument: str, ext: str) -> Path:
    """The output path of one file, relative to the output folder.

    Raises:
        ValueError: the result is absolute, empty or leaves the output folder.
    """
    text = template.format(track=track, stem=stem, instrument=instrument, ext=ext)
    rel = PurePosixPath(text.replace(os.sep, "/"))
    if rel.is_absolute() or Path(text).is_absolute() or Path(text).drive:
        raise ValueError(f"--filename {template!r} gives an absolute path; keep it inside -o")
    if ".." in rel.parts or not rel.parts or rel.name in ("", "."):
        raise ValueError(f"--filename {template!r} leaves the output folder ({text!r})")
    return Path(*rel.parts)


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise PcsepError("output path exists and is not a folder", out_dir, "choose another -o")
    parent = out_dir
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise PcsepError(
            "cannot create outputs here: folder not writable", parent, "choose another -o"
        )


def prepare_job(
    audio: str | os.PathLike[str],
    clouds: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    options: SeparateOptions | None = None,
) -> SeparationJob:
    """Validate a separation without loading a model (cheap checks first).

    Args:
        audio: the recording (any format libsndfile reads).
        clouds: one whole-scene cloud, or one cloud per performer; may be empty in label mode.
        out_dir: output folder (created later).
        options: output settings (defaults if None).

    Raises:
        AudioError: unreadable audio, or a format/bit depth/channel count that cannot be
            written.
        PointCloudError: unreadable cloud.
        SceneError: no performer in the scene, or not one instrument per performer.
        PcsepError: output folder unusable, or no cloud outside label mode.
    """
    from pcsep_cli.io.pointcloud import read_cloud

    options = options or SeparateOptions()
    info = audio_info(audio)
    ext = "." + options.format
    subtype = subtype_for(options.bits, ext, info.subtype)
    if options.format == "flac" and info.channels > 8:
        raise AudioError(
            f"FLAC holds at most 8 channels, this audio has {info.channels}",
            audio,
            "use --format wav",
        )
    out = Path(out_dir)
    _check_out_dir(out)
    paths = [Path(c) for c in clouds]
    if not paths and options.instruments is None:
        raise PcsepError(
            "no point cloud given", hint="pass CLOUD (a scene, or one cloud per performer)"
        )
    performers = None
    if paths:
        from pcsep_cli.scene import find_scene_performers

        read: list[PointCloud] = [read_cloud(p, units=options.units) for p in paths]
        performers = find_scene_performers(read)
        labels = options.instruments
        if labels is not None and len(performers) != len(labels):
            raise SceneError(
                f"{len(performers)} performers found in the cloud, {len(labels)} instruments given",
                paths[0],
                "give one instrument per performer, left to right, or leave out the cloud",
            )
    mode = "labels" if options.instruments is not None else "scene" if len(paths) == 1 else "clouds"
    return SeparationJob(Path(audio), info, paths, performers, out, options, subtype, mode)
