"""FluidSynth rendering: pitch, slot isolation, determinism, missing soundfont (all real)."""

from __future__ import annotations

import numpy as np
import pytest

from pcsep_cli.errors import DatasetError
from pcsep_cli.synth import corpus, fluid, music

SR = 22050


@pytest.fixture(scope="module")
def chorale() -> corpus.Piece:
    return corpus.load_piece("bach/bwv66.6")


def _performance(notes: list[list[float]], instrument: str = "flute") -> music.Performance:
    return music.Performance(
        instrument=instrument,
        program=music.GM_PROGRAMS[instrument][0],
        piece_id="test",
        part=0,
        part_name="",
        transpose=0,
        notes=np.asarray(notes, dtype=np.float64).reshape(-1, 4),
        start_s=0.0,
        bpm=60.0,
        articulation="normal",
    )


def test_render_plays_the_written_pitch_in_its_own_slot() -> None:
    # A4 (440 Hz) on the flute for a second; a silent part after it must stay silent even
    # though the flute's note is still held when its slot ends.
    a4 = _performance([[0.1, 5.0, 69, 100]])
    silent = _performance([], instrument="cello")
    low = _performance([[0.2, 0.8, 45, 90]], instrument="cello")  # A2, 110 Hz
    n = int(1.5 * SR)
    out = fluid.render([a4, silent, low], sample_rate=SR, num_samples=n)
    assert out.shape == (3, n) and out.dtype == np.float32
    assert np.all(out[1] == 0.0)
    assert np.abs(out[0, : int(0.09 * SR)]).max() < 1e-6  # nothing before the note
    for row, f0 in ((out[0], 440.0), (out[2], 110.0)):
        spectrum = np.abs(np.fft.rfft(row * np.hanning(n)))
        freqs = np.fft.rfftfreq(n, 1 / SR)
        lo, hi = np.searchsorted(freqs, [0.8 * f0, 1.2 * f0])
        peak = freqs[lo + np.argmax(spectrum[lo:hi])]
        assert peak == pytest.approx(f0, rel=0.02)
        assert np.sqrt(np.mean(row**2)) > 1e-3


def test_render_is_deterministic(chorale) -> None:
    perfs = music.plan_ensemble(
        np.random.default_rng(5), chorale, ["clarinet", "guitar"], duration_s=2.0
    )
    a = fluid.render(perfs, sample_rate=SR, num_samples=3 * SR)
    b = fluid.render(perfs, sample_rate=SR, num_samples=3 * SR)
    np.testing.assert_array_equal(a, b)
    assert (np.sqrt((a**2).mean(axis=1)) > 1e-3).all()


def test_render_without_soundfont_says_how_to_fix(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PCSEP_SOUNDFONT", str(tmp_path / "missing.sf2"))
    with pytest.raises(DatasetError, match="make setup-train"):
        fluid.render([_performance([[0, 1, 60, 90]])], sample_rate=SR, num_samples=SR)
