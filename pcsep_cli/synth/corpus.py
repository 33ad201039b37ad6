"""Candidate pieces of the music21 corpus, their splits, and a cache of their parts.

:func:`corpus_pieces` lists the candidates (Bach chorales, Palestrina masses, Monteverdi
madrigals, string quartets by Haydn, Mozart, Beethoven and Schumann, trecento and Renaissance
polyphony, a few songs and piano pieces). A piece's id is its corpus path without extension
(``"bach/bwv66.6"``); :func:`piece_split` puts it in train/val/test by a stable hash of its
work (:func:`work_id`: the quartet, cantata or mass it belongs to), so neither a piece nor
another movement of its work crosses splits.

:func:`load_piece` parses a piece once and caches its parts as note lists (onset and duration
in quarter notes, MIDI pitch) under ``~/.cache/pcsep/music21`` (``PCSEP_CACHE_DIR`` moves it).
music21 needs 0.05 to 10 s per piece (the string quartets are the slow ones); the cache reads
in about a millisecond. Files are written aside and renamed, so parallel workers can share it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pcsep_cli.errors import DatasetError

_CORPUS_DIRS = (
    "bach", "palestrina", "monteverdi", "trecento", "josquin", "haydn", "mozart", "beethoven",
    "schumann_robert", "schumann_clara", "corelli", "luca", "ciconia", "lusitano", "handel",
    "schubert", "verdi", "weber", "chopin", "joplin", "cpebach", "beach", "johnson_j_r",
    "liliuokalani",
)  # fmt: skip
# Collections of one-line tunes (ryansMammoth, essenFolksong, ...) have no parts to share out;
# demos/theoryExercises are not music. Copies of another file would let one piece sit in two
# splits: the Dichterliebe song is also opus48no2, the "_bak" Gloria a backup of its original.
_EXCLUDED = frozenset(
    {"schumann_robert/dichterliebe_no2", "trecento/PMFC_12_4-Gloria Rvat 1419_bak"}
)
_EXT_PREFERENCE = (".mxl", ".xml", ".musicxml", ".krn", ".abc")
MIN_NOTES = 8
"""A part with fewer notes is an empty staff, a figured bass or a stray line: left out."""
_CACHE_VERSION = 3


@dataclass(frozen=True, eq=False)
class Part:
    """One voice of a piece, as written.

    Attributes:
        name: the part's name in the score (may be empty).
        notes: float64 ``[M, 3]``: onset and duration in quarter notes, MIDI pitch; sorted by
            onset. Chords are one row per pitch; tied notes are merged.
    """

    name: str
    notes: np.ndarray

    @property
    def mean_pitch(self) -> float:
        """Duration-weighted mean MIDI pitch."""
        return float(np.average(self.notes[:, 2], weights=self.notes[:, 1]))


@dataclass(frozen=True, eq=False)
class Piece:
    """A parsed corpus piece.

    Attributes:
        id: corpus path without extension, e.g. ``"bach/bwv66.6"``.
        path: corpus path that was parsed, e.g. ``"bach/bwv66.6.mxl"``.
        parts: its usable parts (at least :data:`MIN_NOTES` notes each); may be empty.
        quarters: length in quarter notes.
        bpm: the score's first metronome mark in quarter notes per minute, or None.
    """

    id: str
    path: str
    parts: tuple[Part, ...]
    quarters: float
    bpm: float | None


def _corpus_root() -> Path:
    from music21 import common

    return Path(common.getCorpusFilePath())


def corpus_pieces() -> list[str]:
    """Ids of the candidate pieces in the music21 corpus, sorted.

    Returns:
        Corpus paths without extension, e.g. ``["bach/bwv1.6", …]``. Which ones parse into
        at least two usable parts is only known after :func:`load_piece`.
    """
    return list(_paths())


@functools.lru_cache(maxsize=1)
def _paths() -> dict[str, str]:
    """Piece id → corpus path of its preferred file, sorted by id (the corpus never changes
    while a process runs; listing it takes ~0.05 s)."""
    from music21 import corpus

    root = _corpus_root()
    best: dict[str, str] = {}
    for path in corpus.getPaths():
        rel = Path(path).relative_to(root).as_posix()
        stem, ext = os.path.splitext(rel)
        if rel.split("/")[0] not in _CORPUS_DIRS or ext not in _EXT_PREFERENCE:
            continue
        if stem in _EXCLUDED:
            continue
        if stem not in best or _EXT_PREFERENCE.index(ext) < _EXT_PREFERENCE.index(
            os.path.splitext(best[stem])[1]
        ):
            best[stem] = rel
    return dict(sorted(best.items()))


def work_id(piece_id: str) -> str:
    """The work a piece belongs to; splits keep a work's pieces together.

    Movements of a quartet (``haydn/opus74no1/movement2`` → ``haydn/opus74no1``), chorales of
    one cantata or passion, which may share a tune (``bach/bwv244.44`` → ``bach/bwv244``), and
    movements of one Palestrina mass, which share its themes (``palestrina/Credo_45_a`` →
    ``palestrina/mass45``) are one work each.
    """
    work = re.sub(r"/movement[^/]*$", "", piece_id)
    if work.startswith("bach/"):
        return re.sub(r"^(bach/bwv\d+).*$", r"\1", work)
    number = re.search(r"\d+", work) if work.startswith("palestrina/") else None
    return f"palestrina/mass{int(number.group())}" if number else work


def piece_split(piece_id: str, fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> str:
    """The split (``"train"``, ``"val"`` or ``"test"``) a piece belongs to.

    A stable hash of its :func:`work_id`, not a random draw: a piece stays in its split
    whatever the seed, the number of examples or the music21 release, and all pieces of a
    work share a split.

    Args:
        piece_id: corpus path without extension.
        fractions: shares of train, val and test (normalised to sum 1).

    Returns:
        The split's name.
    """
    digest = hashlib.sha1(work_id(piece_id).encode()).hexdigest()
    u = int(digest[:12], 16) / float(1 << 48)
    edges = np.cumsum(fractions) / float(np.sum(fractions))
    return ("train", "val", "test")[min(int(np.searchsorted(edges, u, side="right")), 2)]


def cache_dir() -> Path:
    """Folder of the parsed-piece cache (``PCSEP_CACHE_DIR`` or the user cache folder)."""
    import music21
    import platformdirs

    base = os.environ.get("PCSEP_CACHE_DIR") or platformdirs.user_cache_dir("pcsep")
    return Path(base) / "music21" / f"v{_CACHE_VERSION}-music21-{music21.__version__}"


def load_piece(piece_id: str) -> Piece:
    """Parse one corpus piece into note lists, from the cache when it is there.

    Args:
        piece_id: an id from :func:`corpus_pieces`.

    Returns:
        The piece; its ``parts`` is empty when the score has no usable parts (an opus of
        many tunes, a single line), so callers draw another.

    Raises:
        DatasetError: the id is not in the corpus.
    """
    cache = cache_dir() / (piece_id.replace("/", "__") + ".json")
    try:
        return _piece_from_json(json.loads(cache.read_text()))
    except (OSError, ValueError, KeyError):
        pass  # not cached yet, or a file from an interrupted writer: parse again
    if piece_id not in _paths():
        raise DatasetError(
            f"no piece {piece_id!r} in the music21 corpus",
            hint="pick an id from pcsep_cli.synth.corpus.corpus_pieces()",
        )
    data = _piece_to_json(_parse(piece_id, _paths()[piece_id]))
    _store(cache, data)
    # Return what the cache will return, so a first run and a resumed one play the same notes.
    return _piece_from_json(data)


def _store(cache: Path, data: dict) -> None:
    """Write a cache file aside and rename it: several workers may parse one piece at once."""
    tmp = None
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        os.replace(tmp, cache)
    except OSError:
        # A read-only or full cache folder only costs speed: the next run parses again.
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _parse(piece_id: str, rel: str) -> Piece:
    from music21 import converter, stream, tempo

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            score = converter.parse(_corpus_root() / rel)
        except Exception:  # noqa: BLE001 - music21 raises many kinds; a bad file is skipped
            return Piece(piece_id, rel, (), 0.0, None)
        if not isinstance(score, stream.Score):
            return Piece(piece_id, rel, (), 0.0, None)
        parts = []
        for part in score.parts:
            notes = _part_notes(part)
            if len(notes) >= MIN_NOTES:
                parts.append(Part(str(part.partName or ""), notes))
        marks = score.flatten().getElementsByClass(tempo.MetronomeMark)
        bpm = next((float(q) for m in marks if (q := m.getQuarterBPM())), None)
    return Piece(piece_id, rel, tuple(parts), float(score.highestTime), bpm)


def _part_notes(part: object) -> np.ndarray:
    """Notes of a music21 part as float64 ``[M, 3]`` (onset_q, duration_q, pitch), ties merged."""
    shift = 0
    inst = part.getInstrument(returnDefault=False)  # type: ignore[attr-defined]
    if part.atSoundingPitch is False and inst is not None and inst.transposition is not None:  # type: ignore[attr-defined]
        shift = int(inst.transposition.semitones)  # written -> sounding (Bb clarinet: -2)
    rows: list[list[float]] = []
    held: dict[float, list[float]] = {}
    for element in part.flatten().notes:  # type: ignore[attr-defined]
        onset, length = float(element.offset), float(element.quarterLength)
        if length <= 0:
            continue  # grace notes carry no duration of their own
        for sub in getattr(element, "notes", None) or (element,):
            if getattr(sub, "pitch", None) is None:
                continue  # unpitched percussion
            pitch = float(sub.pitch.ps) + shift
            tie = sub.tie.type if sub.tie is not None else None
            if tie in ("stop", "continue") and pitch in held:
                row = held[pitch]
                row[1] = onset + length - row[0]
                if tie == "stop":
                    rows.append(held.pop(pitch))
                continue
            row = [onset, length, pitch]
            if tie in ("start", "continue"):
                held[pitch] = row
            else:
                rows.append(row)
    rows.extend(held.values())
    notes = np.array(rows, dtype=np.float64).reshape(-1, 3)
    return notes[np.lexsort((notes[:, 2], notes[:, 0]))]


def _piece_to_json(piece: Piece) -> dict:
    return {
        "id": piece.id,
        "path": piece.path,
        "quarters": piece.quarters,
        "bpm": piece.bpm,
        "parts": [{"name": p.name, "notes": p.notes.tolist()} for p in piece.parts],
    }


def _piece_from_json(data: dict) -> Piece:
    parts = tuple(
        Part(p["name"], np.asarray(p["notes"], dtype=np.float64).reshape(-1, 3))
        for p in data["parts"]
    )
    return Piece(data["id"], data["path"], parts, float(data["quarters"]), data["bpm"])
