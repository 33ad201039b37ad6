"""Settings shared by the dataset writer and the example writers: the splits, body ids, the
format version, the level and pre-roll of rendered audio, and the music each split may use.

Kept apart so that :mod:`pcsep_cli.synth.dataset` (the driver) and
:mod:`pcsep_cli.synth.example` (one example) both read it, and neither imports the other back.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

from pcsep_cli.errors import DatasetError
from pcsep_cli.synth import corpus
from pcsep_cli.synth.sources import DEFAULT_SOURCES

SPLITS = ("train", "val", "test")
BODY_IDS = {
    "train": (0, 1_000_000),
    "val": (1_000_000, 2_000_000),
    "test": (2_000_000, 3_000_000),
}
"""Body ids per split, ``[low, high)``: a body shape is a pure function of its id."""
FORMAT_VERSION = 1
PREROLL_S = 1.0
"""Seconds rendered before an example starts (so notes are sounding at its first sample)."""
POOL_RMS_DB = -23.0
"""Level of every solo clip (dB RMS)."""


@dataclass(frozen=True)
class Settings:
    """Every choice that shapes the data (saved in ``dataset.json``); see :func:`write_dataset`."""

    seed: int
    sample_rate: int = 22050
    duration_s: float = 8.0
    mics: str = "stereo"
    performers: tuple[int, int] = (1, 5)
    distractor_prob: float = 0.5
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    bits: str = "32f"
    cycle_instruments: bool = False
    pieces: tuple[str, ...] | None = None
    sources: tuple[str, ...] = DEFAULT_SOURCES  # see synth.sources.for_split
    styles: tuple[str, ...] = ("seen",)  # see synth.styles.for_split
    clutter: float = 0.0  # share of (cloud) scenes scanned as whole rooms with clutter
    music_splits: tuple[float, float, float] | None = None  # pieces' shares, else the splits

    def to_json(self) -> dict:
        data = asdict(self)
        data["performers"] = list(self.performers)
        data["split_fractions"] = list(self.split_fractions)
        data["pieces"] = None if self.pieces is None else list(self.pieces)
        data["sources"] = list(self.sources)
        data["styles"] = list(self.styles)
        if self.music_splits is not None:
            data["music_splits"] = list(self.music_splits)
        return data


def candidate_pieces(settings: Settings, split: str) -> list[list[str]]:
    """Corpus ids the music of ``split`` is drawn from, grouped by work.

    Music is drawn work first, then piece: drawn piece by piece, Palestrina's 1,300 mass
    movements would fill two thirds of the data; drawn by work, the 370 Bach chorales lead and
    the masses, madrigals, trecento pieces and quartets share the rest.

    Returns:
        One list of piece ids per work, works sorted by id.

    Raises:
        DatasetError: no piece falls in ``split``.
    """
    shares = settings.music_splits or settings.split_fractions
    chosen = _candidates(settings.pieces, shares, split)
    if not chosen:
        raise DatasetError(
            f"no piece of the music21 corpus falls in the {split} split",
            hint="give more pieces, or a larger share to that split",
        )
    return [list(work) for work in chosen]


@functools.lru_cache(maxsize=16)
def _candidates(
    pieces: tuple[str, ...] | None, fractions: tuple[float, ...], split: str
) -> tuple[tuple[str, ...], ...]:
    works: dict[str, list[str]] = {}
    for p in pieces if pieces is not None else corpus.corpus_pieces():
        if corpus.piece_split(p, fractions) == split:
            works.setdefault(corpus.work_id(p), []).append(p)
    return tuple(tuple(sorted(works[w])) for w in sorted(works))
