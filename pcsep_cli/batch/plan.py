"""Batch planning: pair recordings with clouds, order the work, split it into shards, resume.

Three ways to say which recording goes with which cloud (:func:`discover`):

- **same stem**: ``DIR/<name>.<audio ext>`` + ``DIR/<name>.<cloud ext>`` (ply, las, laz, pcd);
- **dataset layout**: ``DIR/<example>/mixture.*`` + ``scene.*``, also one level deeper
  (``DIR/<split>/<example>/``); the track name is the folder's path under ``DIR``;
- **CSV manifest**: columns ``audio,cloud[,name][,mics]``; relative paths are read from the CSV's
  folder.

Microphone geometry (``--mics`` of ``pcsep separate``, :mod:`pcsep_cli.io.mics`) comes from files
beside the recordings: ``DIR/<name>.mics.json`` for the recording ``DIR/<name>.*``, else the
nearest ``mics.json`` from the item's folder up to ``DIR`` (a dataset example's own, its
split's, the batch folder's, which applies to every item below it); a CSV names it in its
``mics`` column. Only paths are found here: each item reads and checks its file when it runs,
so a broken one fails the items that use it, in one line each. A ``<name>.mics.json`` with no
recording of that name is reported like an unpaired file (a misspelt name must not silently
give the folder's geometry instead).

Item names become output folders and are printed: a name taken from a file or folder name has
its control characters replaced by ``_`` (:func:`~pcsep_cli.separate.job.file_name_part`); a
name written in a CSV is refused when it holds one, or a part longer than 255 bytes.

Files that look like a recording or a cloud but have no partner are reported, never silently
dropped. The work list is sorted by track name, so it does not depend on the order in which the
file system lists a folder; :func:`shard` then gives item ``i`` to shard ``i mod N`` (shards
numbered ``0 .. N-1``, like Kubernetes' ``JOB_COMPLETION_INDEX`` and ``--array=0-(N-1)``).

An item is finished (:func:`is_finished`) when its manifest (``<out>/<name>/manifest.json`` with
the default file name template) exists and every file it lists exists: the separator writes the
manifest last, atomically, so a run killed midway never looks finished.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path, PurePosixPath

from pcsep_cli.errors import DatasetError
from pcsep_cli.separate.job import NAME_MAX, control_char, file_name_part, quoted

__all__ = [
    "AUDIO_EXTS",
    "CLOUD_EXTS",
    "BatchItem",
    "Discovery",
    "Shard",
    "Unpaired",
    "discover",
    "is_finished",
    "parse_shard",
    "read_csv_manifest",
    "shard",
]

AUDIO_EXTS = frozenset(
    ".wav .wave .flac .ogg .oga .opus .mp3 .aif .aiff .aifc .caf .w64 .rf64 .au .snd".split()
)
"""Suffixes taken for recordings (what libsndfile reads)."""

CLOUD_EXTS = frozenset({".ply", ".las", ".laz", ".pcd", ".e57"})
"""Suffixes taken for point clouds."""

MICS_FILE = "mics.json"
"""The microphone geometry of every item in (or below) its folder."""
MICS_SUFFIX = ".mics.json"
"""``<name>.mics.json``: the microphone geometry of the recording ``<name>.*`` alone."""


_PathArg = str | PathLike[str]


@dataclass(frozen=True, order=True)
class BatchItem:
    """One recording and its cloud, separated into ``<out>/<name>/``.

    Attributes:
        name: track name: a relative POSIX path (``"take1"``, ``"test/000042"``); orders items.
        audio: the recording.
        cloud: the point cloud of the scene.
        mics: its microphone geometry file (``mics.json``), or None.
    """

    name: str
    audio: Path
    cloud: Path
    mics: Path | None = field(default=None, compare=False)  # names order items; unique


@dataclass(frozen=True)
class Unpaired:
    """A file or folder that looks like part of an item but could not be paired.

    Attributes:
        path: the file or folder.
        reason: why, in words (``"no cloud named take3.ply/.las/.laz/.pcd/.e57"``).
    """

    path: Path
    reason: str


@dataclass(frozen=True)
class Discovery:
    """What :func:`discover` found.

    Attributes:
        items: the work list, sorted by name, names unique.
        unpaired: files that could not be paired, sorted by path.
        layout: ``"stems"``, ``"dataset"``, ``"stems+dataset"``, ``"manifest"`` or ``"empty"``.
    """

    items: list[BatchItem]
    unpaired: list[Unpaired]
    layout: str


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count``: items ``index, index + count, index + 2·count, ...``."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """Parse ``"K/N"`` with ``0 <= K < N``.

    Raises:
        ValueError: not ``K/N``, ``N < 1`` or ``K`` outside ``0 .. N-1``; the message says which
            values are allowed.
    """
    head, sep, tail = text.strip().partition("/")
    try:
        if not sep:
            raise ValueError
        index, count = int(head), int(tail)
    except ValueError:
        raise ValueError(f"--shard must be K/N in whole numbers, e.g. 0/4; got {text!r}") from None
    if count < 1:
        raise ValueError(f"--shard K/N needs N >= 1; got {text!r}")
    if not 0 <= index < count:
        raise ValueError(
            f"--shard K/N numbers shards 0 .. N-1, so K must be in 0..{count - 1}; got {text!r} "
            f"(SLURM: --array=0-{count - 1}; Kubernetes: JOB_COMPLETION_INDEX)"
        )
    return Shard(index, count)


def shard(items: Sequence[BatchItem], part: Shard | None) -> list[BatchItem]:
    """The items of one shard of the work list, in name order.

    The list is sorted first, so every machine that sees the same files computes the same split
    whatever order its file system lists them in; the union of all shards is the whole list and
    no two shards share an item.

    Args:
        items: the whole work list (any order).
        part: which shard; ``None`` for all items.

    Returns:
        Item ``i`` of the sorted list for every ``i`` with ``i mod part.count == part.index``.
    """
    ordered = sorted(items)
    if part is None:
        return ordered
    return ordered[part.index :: part.count]


def discover(
    folder: _PathArg, *, manifest: _PathArg | None = None, exclude: Iterable[_PathArg] = ()
) -> Discovery:
    """Find the items of a batch in a folder (or in a CSV manifest).

    Args:
        folder: the batch folder (ignored for pairing when ``manifest`` is given).
        manifest: a CSV file with columns ``audio,cloud[,name][,mics]``.
        exclude: folders not to look into (the output folder, when it lies inside ``folder``).

    Returns:
        The sorted work list and the files that could not be paired.

    Raises:
        DatasetError: the folder or manifest is missing or unreadable, a manifest row is
            malformed, or two items would get the same name (so the same output folder).
    """
    if manifest is not None:
        items = read_csv_manifest(manifest)
        return Discovery(items=sorted(items), unpaired=[], layout="manifest")
    root = Path(folder)
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a folder"
        raise DatasetError(what, root, "pass the folder that holds the recordings and clouds")
    skip = {_resolved(Path(p)) for p in exclude}
    items, unpaired = _pair_stems(root)
    layouts = ["stems"] if items else []
    dataset_items: list[BatchItem] = []
    for sub in _subfolders(root, skip):
        found = _example(sub, root, unpaired)
        if found is not None:
            dataset_items.append(found)
            continue
        for inner in _subfolders(sub, skip):
            found = _example(inner, root, unpaired)
            if found is not None:
                dataset_items.append(found)
    if dataset_items:
        layouts.append("dataset")
    all_items = sorted(items + dataset_items)
    _check_unique(all_items, root)
    layout = "+".join(layouts) or "empty"
    return Discovery(all_items, sorted(unpaired, key=lambda u: u.path), layout)


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path.absolute()


def _visible(path: Path) -> bool:
    # Hidden names include the separator's temporary files (.name.pcsep-tmp-...).
    return not path.name.startswith(".")


def _listdir(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if _visible(p))
    except OSError as err:
        raise DatasetError(
            f"cannot list the folder: {err.strerror or err}", folder, "check its permissions"
        ) from None


def _subfolders(folder: Path, skip: set[Path]) -> list[Path]:
    return [p for p in _listdir(folder) if p.is_dir() and _resolved(p) not in skip]


def _pair_stems(root: Path) -> tuple[list[BatchItem], list[Unpaired]]:
    audio: dict[str, list[Path]] = {}
    clouds: dict[str, list[Path]] = {}
    mics: dict[str, Path] = {}
    for path in _listdir(root):
        if not path.is_file():
            continue
        ext = path.suffix.lower()
        if ext in AUDIO_EXTS:
            audio.setdefault(path.stem, []).append(path)
        elif ext in CLOUD_EXTS:
            clouds.setdefault(path.stem, []).append(path)
        elif path.name.lower().endswith(MICS_SUFFIX):
            mics[path.name[: -len(MICS_SUFFIX)]] = path
    default = _folder_mics(root, root)
    items, unpaired = [], []
    for name in sorted(audio.keys() | clouds.keys()):
        a, c = audio.get(name, []), clouds.get(name, [])
        if len(a) == 1 and len(c) == 1:
            items.append(BatchItem(file_name_part(name), a[0], c[0], mics.get(name, default)))
            continue
        for path in a + c:
            unpaired.append(Unpaired(path, _why_unpaired(name, a, c, path.suffix.lower())))
    for name in sorted(mics.keys() - audio.keys()):
        unpaired.append(
            Unpaired(mics[name], f"no recording named {name}.wav/.flac/... beside it to use it")
        )
    return items, unpaired


def _folder_mics(folder: Path, root: Path) -> Path | None:
    """The nearest ``mics.json`` from ``folder`` up to ``root`` (both included), or None.

    Anything of that name counts, a folder or a broken link too: the item that uses it then
    fails with the reason, where ignoring it would separate without the geometry meant."""
    for here in (folder, *folder.parents):
        if os.path.lexists(here / MICS_FILE):
            return here / MICS_FILE
        if here == root:
            break
    return None


def _why_unpaired(name: str, audio: list[Path], clouds: list[Path], ext: str) -> str:
    if len(audio) > 1:
        return f"several recordings named {name}.*: " + ", ".join(p.name for p in audio)
    if len(clouds) > 1:
        return f"several clouds named {name}.*: " + ", ".join(p.name for p in clouds)
    if ext in AUDIO_EXTS:
        return f"no cloud named {name}.ply/.las/.laz/.pcd/.e57 beside it"
    return f"no recording named {name}.wav/.flac/... beside it"


def _example(folder: Path, root: Path, unpaired: list[Unpaired]) -> BatchItem | None:
    """The item of a dataset example folder; ``None`` when the folder is not one."""
    files = [p for p in _listdir(folder) if p.is_file()]
    mixtures = [p for p in files if p.stem == "mixture" and p.suffix.lower() in AUDIO_EXTS]
    scenes = [p for p in files if p.stem == "scene" and p.suffix.lower() in CLOUD_EXTS]
    if not mixtures and not scenes:
        return None
    if len(mixtures) == 1 and len(scenes) == 1:
        parts = [file_name_part(part) for part in folder.relative_to(root).parts]
        name = PurePosixPath(*parts).as_posix()
        return BatchItem(name, mixtures[0], scenes[0], _folder_mics(folder, root))
    if len(mixtures) > 1 or len(scenes) > 1:
        reason = "several mixture.* or scene.* files: " + ", ".join(
            p.name for p in mixtures + scenes
        )
    elif mixtures:
        reason = "mixture without scene.ply/.las/.laz/.pcd/.e57"
    else:
        reason = "scene without mixture.wav/.flac/..."
    unpaired.append(Unpaired(folder, reason))
    return None


def read_csv_manifest(path: _PathArg) -> list[BatchItem]:
    """Read a CSV manifest with a header row naming the columns ``audio``, ``cloud``, ``name``,
    ``mics``.

    ``name`` is optional (default: the recording's file name without suffix), and so is
    ``mics`` (a microphone geometry file; an empty cell: none). Relative paths are taken from
    the CSV's own folder, so a manifest moves with its data. Empty lines are skipped.

    Args:
        path: the CSV file.

    Returns:
        The items, in file order.

    Raises:
        DatasetError: unreadable file, missing columns, an empty cell, a path with a NUL
            byte, a name that is not a plain relative path (or holds a control character, or a
            part over 255 bytes), or two rows with the same name.
    """
    csv_path = Path(path)
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DatasetError(
            f"cannot read the CSV manifest: {err}", csv_path, "pass a UTF-8 CSV file"
        ) from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    header = [h.strip().lower() for h in rows[0]] if rows else []
    if "audio" not in header or "cloud" not in header:
        raise DatasetError(
            "the CSV header must name the columns audio,cloud[,name][,mics]; "
            f"got {','.join(header)!r}",
            csv_path,
            "add a first line like `audio,cloud,name`",
        )
    col = {key: header.index(key) for key in ("audio", "cloud", "name", "mics") if key in header}
    base = csv_path.parent
    items = []
    for line, row in enumerate(rows[1:], start=2):
        cells = {key: (row[i].strip() if i < len(row) else "") for key, i in col.items()}
        where = f"{csv_path} row {line}"
        if not cells["audio"] or not cells["cloud"]:
            raise DatasetError("empty audio or cloud cell", where, "fill in both paths")
        for key in ("audio", "cloud", "mics"):
            # No file system allows a NUL; open() would raise ValueError.
            if "\x00" in cells.get(key, ""):
                raise DatasetError(
                    f"the {key} path {quoted(cells[key])} holds a NUL byte", where, "fix the path"
                )
        audio, cloud = base / cells["audio"], base / cells["cloud"]
        if cells.get("name"):
            name = _check_name(cells["name"], where)
        else:
            name = _check_name(file_name_part(Path(cells["audio"]).stem), where)
        mics = base / cells["mics"] if cells.get("mics") else None
        items.append(BatchItem(name, audio, cloud, mics))
    _check_unique(items, csv_path)
    return items


def _check_name(name: str, where: str) -> str:
    """The item name of a CSV row, as a POSIX path (``\\`` taken for ``/``).

    Raises:
        DatasetError: not a plain relative path, a control character (NUL, ESC, newline ...),
            or a part longer than ``NAME_MAX`` bytes.
    """
    hint = "use a name like `take1` or `session/take1`"
    char = control_char(name)
    if char is not None:
        raise DatasetError(f"name {quoted(name)} holds the control character {char!r}", where, hint)
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if not parts or name.startswith(("/", "\\")) or any(p in ("..", ".") for p in parts):
        raise DatasetError(f"name {quoted(name)} is not a plain relative path", where, hint)
    for part in parts:
        size = len(part.encode("utf-8", "surrogateescape"))
        if size > NAME_MAX:
            raise DatasetError(
                f"name {quoted(name)} has a part of {size} bytes, longer than the {NAME_MAX} "
                "a file system allows",
                where,
                hint,
            )
    return PurePosixPath(*parts).as_posix()


def _check_unique(items: Sequence[BatchItem], where: Path) -> None:
    seen: dict[str, BatchItem] = {}
    for item in items:
        # Case-insensitive file systems (macOS, Windows) would merge two folders differing in case.
        key = item.name.lower()
        if key in seen:
            raise DatasetError(
                f"two items would write to the same output folder {item.name!r}: "
                f"{seen[key].audio} and {item.audio}",
                where,
                "rename one of them (CSV: give them different names)",
            )
        seen[key] = item


def is_finished(manifest_path: _PathArg) -> bool:
    """Whether a separation manifest marks a complete item.

    True when the manifest parses and every output it lists exists: the stems
    (``manifest["stems"][*]["path"]``) and the residual (``manifest["residual"]["path"]``) when
    there is one. From manifest version 2 on, a relative path is relative to the manifest's
    folder (absolute ones are taken as they are). In version 1 manifests a path is looked for
    as written (absolute, or relative to the working folder), then at the same place relative
    to the manifest when the output folder was moved or copied since (the manifest records its
    own path under ``"manifest"``), then relative to the manifest's folder.

    Args:
        manifest_path: the item's ``manifest.json`` (``<out>/<name>/manifest.json`` by default).
    """
    path = Path(manifest_path)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict):
        return False
    listed = _manifest_paths(manifest)
    if listed is None:
        return False
    version = manifest.get("version")
    if isinstance(version, int) and version >= 2:
        return all((path.parent / p).is_file() for p in listed)  # an absolute p stays itself
    written_at = manifest.get("manifest")
    old_folder = Path(written_at).parent if isinstance(written_at, str) else None
    return all(_exists(Path(p), path.parent, old_folder) for p in listed)


def _exists(listed: Path, folder: Path, old_folder: Path | None) -> bool:
    if listed.is_file():
        return True
    if old_folder is not None:
        try:
            if (folder / listed.relative_to(old_folder)).is_file():
                return True
        except ValueError:
            pass
    return not listed.is_absolute() and (folder / listed).is_file()


def _manifest_paths(manifest: dict) -> list[str] | None:
    """The output paths a manifest lists; ``None`` when it is not a separation manifest."""
    stems = manifest.get("stems")
    if not isinstance(stems, list):
        return None
    residual = manifest.get("residual")
    entries = [*stems, residual] if isinstance(residual, dict) else stems
    paths = [entry.get("path") if isinstance(entry, dict) else None for entry in entries]
    if not all(isinstance(path, str) and path for path in paths):
        return None
    return paths  # type: ignore[return-value]
