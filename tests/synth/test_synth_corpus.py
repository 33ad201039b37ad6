"""Corpus: candidate pieces, stable splits, parsing and the parsed-piece cache (real music21)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pcsep_cli.errors import DatasetError
from pcsep_cli.synth import corpus

CHORALE = "bach/bwv66.6"


def test_corpus_lists_multi_part_repertoire_without_duplicates() -> None:
    ids = corpus.corpus_pieces()
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    assert CHORALE in ids
    composers = {i.split("/")[0] for i in ids}
    assert {"bach", "palestrina", "monteverdi", "haydn", "beethoven"} <= composers
    assert not any(i.endswith((".mxl", ".krn", ".xml")) for i in ids)
    assert not any(i.startswith(("ryansMammoth", "essenFolksong", "demos")) for i in ids)


def test_piece_split_is_a_stable_partition_with_the_asked_shares() -> None:
    ids = corpus.corpus_pieces()
    splits = [corpus.piece_split(i) for i in ids]
    assert splits == [corpus.piece_split(i) for i in ids]
    shares = {s: splits.count(s) / len(ids) for s in ("train", "val", "test")}
    assert shares["train"] == pytest.approx(0.8, abs=0.05)
    assert shares["val"] == pytest.approx(0.1, abs=0.03)
    assert shares["test"] == pytest.approx(0.1, abs=0.03)
    assert {corpus.piece_split(i, (0.0, 0.0, 1.0)) for i in ids[:50]} == {"test"}


def test_pieces_of_one_work_share_a_split() -> None:
    ids = corpus.corpus_pieces()
    assert corpus.work_id("haydn/opus74no1/movement2") == "haydn/opus74no1"
    assert corpus.work_id("bach/bwv244.44") == corpus.work_id("bach/bwv244.3") == "bach/bwv244"
    assert corpus.work_id("palestrina/Agnus_II_17_b") == "palestrina/mass17"
    assert corpus.work_id("monteverdi/madrigal.3.4") == "monteverdi/madrigal.3.4"
    by_work: dict[str, set[str]] = {}
    for i in ids:
        by_work.setdefault(corpus.work_id(i), set()).add(corpus.piece_split(i))
    assert all(len(splits) == 1 for splits in by_work.values())
    assert max(sum(corpus.work_id(i) == w for i in ids) for w in list(by_work)[:50]) > 1


def test_load_piece_parses_parts_and_caches_them(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PCSEP_CACHE_DIR", str(tmp_path))
    piece = corpus.load_piece(CHORALE)
    assert len(piece.parts) == 4 and piece.quarters == pytest.approx(36.0)
    soprano = piece.parts[0].notes
    assert soprano.shape[1] == 3 and (soprano[:, 1] > 0).all()
    assert (np.diff(soprano[:, 0]) >= 0).all()
    # Ties are merged: BWV 66.6's soprano ties two quarters over the bar at beat 32.
    tied = soprano[soprano[:, 0] == 32.0]
    assert tied.tolist() == [[32.0, 2.0, 66.0]]
    assert 33.0 not in soprano[:, 0]
    # Parts sit in their voices' registers: soprano above bass.
    assert piece.parts[0].mean_pitch > piece.parts[3].mean_pitch + 12

    cached = list(tmp_path.rglob("bach__bwv66.6.json"))
    assert len(cached) == 1
    data = json.loads(cached[0].read_text())
    assert data["id"] == CHORALE and len(data["parts"]) == 4
    again = corpus.load_piece(CHORALE)
    for a, b in zip(piece.parts, again.parts, strict=True):
        np.testing.assert_array_equal(a.notes, b.notes)  # bit for bit: runs must agree


def test_load_piece_rejects_unknown_ids(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PCSEP_CACHE_DIR", str(tmp_path))
    with pytest.raises(DatasetError, match="no piece"):
        corpus.load_piece("bach/no_such_chorale")


def test_load_piece_works_without_a_writable_cache(tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("PCSEP_CACHE_DIR", str(blocker))
    piece = corpus.load_piece(CHORALE)
    assert len(piece.parts) == 4
