"""pcsep's own parametric synthesiser: deterministic, a new timbre per performance, each class
keeping its family's traits (decay, odd partials, pitch)."""

from __future__ import annotations

import dataclasses

import numpy as np

from pcsep_cli.synth import additive
from pcsep_cli.synth.music import Performance

SR = 16000


def _part(
    instrument: str, pitch: int, piece: str = "p", dur: float = 0.5, count: int = 3
) -> Performance:
    notes = np.array([[0.05 + 0.6 * i, dur, pitch, 90] for i in range(count)])
    return Performance(instrument, 0, piece, 0, "part", 0, notes, 0.0, 100.0, "normal")


def _log_spectrum(audio: np.ndarray) -> np.ndarray:
    frames = np.lib.stride_tricks.sliding_window_view(audio, 1024)[::256] * np.hanning(1024)
    power = np.mean(np.abs(np.fft.rfft(frames, axis=1)) ** 2, axis=0)
    return 10 * np.log10(power / power.sum() + 1e-12)


def test_rendering_is_a_function_of_the_performance() -> None:
    parts = [_part("violin", 69), _part("piano", 60)]
    one = additive.render(parts, sample_rate=SR, num_samples=2 * SR)
    two = additive.render(parts[::-1], sample_rate=SR, num_samples=2 * SR)
    np.testing.assert_array_equal(one, two[::-1])
    assert one.dtype == np.float32 and np.abs(one).max() <= 0.5 + 1e-6


def test_each_performance_gets_its_own_timbre() -> None:
    """The same notes from two pieces: spectra apart by several dB (one soundfont's would be
    the same to the sample)."""
    for instrument in ("violin", "trumpet", "guitar"):
        a, b = additive.render(
            [_part(instrument, 64, "one"), _part(instrument, 64, "two")],
            sample_rate=SR,
            num_samples=2 * SR,
        )
        distance = float(np.mean(np.abs(_log_spectrum(a) - _log_spectrum(b))[:300]))
        assert distance > 2.0, instrument


def test_plucked_decays_bowed_sustains() -> None:
    long = 1.5
    guitar, cello = additive.render(
        [_part("guitar", 52, dur=long, count=1), _part("cello", 52, dur=long, count=1)],
        sample_rate=SR,
        num_samples=2 * SR,
    )

    def rms(x: np.ndarray, t0: float, t1: float) -> float:
        return float(np.sqrt(np.mean(x[int(t0 * SR) : int(t1 * SR)] ** 2)))

    # the note sounds 0.05-1.55 s: early vs late in it
    assert rms(guitar, 0.1, 0.3) > 3 * rms(guitar, 1.2, 1.5)
    assert rms(cello, 0.3, 0.5) < 1.5 * rms(cello, 1.2, 1.5)


def test_pitch_is_the_notes_and_clarinet_favours_odd_partials() -> None:
    (clarinet,) = additive.render([_part("clarinet", 57, dur=0.5)], sample_rate=SR, num_samples=SR)
    seg = clarinet[int(0.15 * SR) : int(0.5 * SR)]
    spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg)), 8 * len(seg)))
    freqs = np.fft.rfftfreq(8 * len(seg), 1 / SR)
    f0 = 220.0

    def peak(f: float) -> float:
        band = (freqs > f * 0.97) & (freqs < f * 1.03)
        return float(spec[band].max())

    assert abs(freqs[np.argmax(spec * (freqs < 300))] - f0) < 6  # the fundamental is A3
    odd = peak(3 * f0)
    even = (peak(2 * f0) + peak(4 * f0)) / 2
    assert odd > 3 * even


def test_notes_before_the_clip_and_after_it_are_cut() -> None:
    part = _part("flute", 72)
    early = dataclasses.replace(part, notes=part.notes - np.array([0.3, 0, 0, 0]))
    out = additive.render([early], sample_rate=SR, num_samples=SR // 2)
    assert out.shape == (1, SR // 2) and np.isfinite(out).all() and np.abs(out).max() > 0.1
    # a note that starts 5 ms before the clip's end (shorter than the noise follower)
    late = dataclasses.replace(part, notes=np.array([[0.495, 0.3, 72, 90]]))
    out = additive.render([late], sample_rate=SR, num_samples=SR // 2)
    assert np.isfinite(out).all() and np.abs(out[0, -80:]).max() > 0
