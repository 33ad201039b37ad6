"""Performances: parts to instruments by register, ranges, shared tempo, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from pcsep_cli.synth import corpus, music


@pytest.fixture(scope="module")
def chorale() -> corpus.Piece:
    return corpus.load_piece("bach/bwv66.6")


def test_plan_ensemble_fits_ranges_and_shares_one_tempo(chorale) -> None:
    instruments = ["violin", "double_bass", "flute", "trombone", "piano", "cello"]
    perfs = music.plan_ensemble(
        np.random.default_rng(3), chorale, instruments, duration_s=6.0, preroll_s=1.0
    )
    assert [p.instrument for p in perfs] == instruments
    assert len({p.bpm for p in perfs}) == 1
    assert len({p.start_s for p in perfs}) == 1
    for p in perfs:
        low, high, _ = music.PROGRAM_RANGES[p.program]
        assert p.program in music.GM_PROGRAMS[p.instrument]
        assert p.transpose % 12 == 0
        assert len(p.notes) > 3
        assert low <= p.notes[:, 2].min() and p.notes[:, 2].max() <= high
        assert ((p.notes[:, 0] >= 0) & (p.notes[:, 0] < 7.0)).all()
        assert ((p.notes[:, 3] >= 1) & (p.notes[:, 3] <= 127)).all()
    # Register order: the double bass plays the lowest part, the flute the highest.
    mean = {p.instrument: p.notes[:, 2].mean() for p in perfs}
    assert mean["double_bass"] < mean["cello"] < mean["violin"] <= mean["flute"] + 12
    # A flute plays one note at a time.
    flute = perfs[2].notes
    assert (flute[:-1, 0] + flute[:-1, 1] <= flute[1:, 0] + 1e-9).all()


def test_plan_is_deterministic_and_varies_with_the_seed(chorale) -> None:
    def plan(seed: int) -> list[music.Performance]:
        rng = np.random.default_rng(seed)
        return music.plan_ensemble(rng, chorale, ["violin", "cello"], duration_s=5.0)

    a, b, c = plan(11), plan(11), plan(12)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.notes, y.notes)
    assert any(
        x.notes.shape != z.notes.shape or not np.array_equal(x.notes, z.notes)
        for x, z in zip(a, c, strict=True)
    )


def test_plan_rejects_unknown_instruments(chorale) -> None:
    with pytest.raises(ValueError, match="unknown instrument"):
        music.plan_ensemble(np.random.default_rng(0), chorale, ["kazoo"], duration_s=4.0)


def test_a_short_piece_is_slowed_to_fill_the_clip() -> None:
    # Eight quarter notes; unmarked, so a chorale-like tempo would finish them in ~4 s.
    notes = np.array([[q, 1.0, 60 + q] for q in range(8)], dtype=np.float64)
    piece = corpus.Piece("test/short", "test/short.xml", (corpus.Part("", notes),), 8.0, None)
    solo = music.plan_solo(np.random.default_rng(0), piece, "flute", duration_s=10.0)
    assert solo.bpm <= 60.0 * 8 / 10.0 + 1e-9
    assert len(solo.notes) == 8
    last_end = solo.notes[-1, 0] + solo.notes[-1, 1]
    assert last_end > 1.0 + 0.7 * 10.0  # the music reaches the end of the clip (after preroll)
    with pytest.raises(ValueError, match="unknown instrument"):
        music.plan_solo(np.random.default_rng(0), piece, "kazoo", duration_s=4.0)
