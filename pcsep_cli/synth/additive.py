"""pcsep's own parametric synthesiser: a new timbre for every performance.

Soundfonts and physical models each give one timbre per instrument, so a network trained on a
few of them learns those few. This source draws the timbre itself from ranges per instrument
family, so no two performances sound alike while each keeps what makes its class: bowed
strings sustain a sawtooth-like spectrum through body resonances with bow noise and vibrato;
plucked strings and the piano decay, their upper partials faster, slightly inharmonic (the
piano's strings beat); the clarinet's lower register is odd harmonics; the flute is a few
partials and breath; brass brightens with loudness and starts with a lip scoop; the saxophone
is bright and breathy. Drawn per performance: spectral tilt, 2-4 resonances (centre, width,
gain), attack and release, vibrato rate, depth and delay, noise level, detune, pluck position,
decay times, inharmonicity.

Additive synthesis in NumPy (one sinusoid per partial below Nyquist, at most ``_MAX_PARTIALS``),
no sample data, so it is independent of every other source by construction; the code is the
project's own (its licence). The rendering is a pure function of the performance: its random
state is seeded by the performance's identity.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pcsep_cli.synth.music import Performance

_MAX_PARTIALS = 64
_PEAK = 0.5  # each performance is scaled to this peak (other sources are below ±1 too)


@dataclass(frozen=True, kw_only=True)
class _Family:
    """Ranges a voice of one family is drawn from (each pair: low, high; ``(0, 0)``: none)."""

    sustained: bool
    slope: tuple[float, float]  # partial amplitude ~ k^-slope
    resonances: tuple[tuple[float, float], ...]  # centre ranges (Hz), one resonance each
    attack: tuple[float, float]  # s
    release: tuple[float, float]  # s
    vibrato_cents: tuple[float, float]
    noise_db: tuple[float, float]  # breath / bow noise relative to the partials
    bright_per_velocity: float  # slope reduction from pp to ff
    odd_only_below: tuple[float, float] = (0, 0)  # Hz below which even partials are cut
    decay: tuple[float, float] = (0, 0)  # s, fundamental's 1/e time (decaying families)
    inharmonic: tuple[float, float] = (0, 0)  # B in f_k = k f0 sqrt(1 + B k^2)
    scoop_cents: tuple[float, float] = (0, 0)  # start below the pitch, glide up in ~40 ms


def _bowed(body: tuple[tuple[float, float], ...], slope: tuple[float, float]) -> _Family:
    """A bowed string whose body resonances sit where its size puts them."""
    return _Family(
        sustained=True,
        slope=slope,
        resonances=body,
        attack=(0.04, 0.15),
        release=(0.08, 0.25),
        vibrato_cents=(5, 25),
        noise_db=(-36, -24),
        scoop_cents=(0, 10),
        bright_per_velocity=0.2,
    )


_FAMILIES: dict[str, _Family] = {
    "violin": _bowed(((250, 600), (700, 1500), (2000, 4000)), (0.8, 1.3)),
    "cello": _bowed(((90, 250), (350, 800), (1200, 2500)), (0.9, 1.5)),
    "double_bass": _bowed(((50, 140), (200, 500), (700, 1500)), (1.2, 1.9)),
    "guitar": _Family(
        sustained=False,
        resonances=((90, 250), (400, 1200)),
        vibrato_cents=(0, 0),
        noise_db=(-60, -45),
        slope=(0.7, 1.4),
        attack=(0.002, 0.006),
        release=(0.05, 0.15),
        decay=(0.6, 2.5),
        inharmonic=(1e-5, 2e-4),
        bright_per_velocity=0.3,
    ),
    "piano": _Family(
        sustained=False,
        resonances=((300, 900), (1500, 3500)),
        vibrato_cents=(0, 0),
        noise_db=(-60, -45),
        slope=(0.9, 1.6),
        attack=(0.002, 0.005),
        release=(0.1, 0.3),
        decay=(0.8, 4.0),
        inharmonic=(1e-4, 6e-4),
        bright_per_velocity=0.5,
    ),
    "saxophone": _Family(
        sustained=True,
        resonances=((400, 800), (1200, 2200), (2500, 4000)),
        slope=(0.6, 1.1),
        attack=(0.02, 0.08),
        release=(0.05, 0.15),
        vibrato_cents=(5, 30),
        noise_db=(-30, -18),
        scoop_cents=(0, 30),
        bright_per_velocity=0.4,
    ),
    "clarinet": _Family(
        sustained=True,
        resonances=((1000, 1800), (2500, 3500)),
        slope=(0.9, 1.4),
        odd_only_below=(900, 1800),
        attack=(0.02, 0.07),
        release=(0.05, 0.15),
        vibrato_cents=(0, 8),
        noise_db=(-40, -28),
        scoop_cents=(0, 10),
        bright_per_velocity=0.3,
    ),
    "flute": _Family(
        sustained=True,
        resonances=((700, 1500), (2500, 4500)),
        slope=(1.8, 2.8),
        attack=(0.04, 0.12),
        release=(0.05, 0.15),
        vibrato_cents=(8, 30),
        noise_db=(-22, -12),
        scoop_cents=(0, 15),
        bright_per_velocity=0.3,
    ),
    "trumpet": _Family(
        sustained=True,
        resonances=((1000, 1600), (2200, 3500)),
        slope=(0.7, 1.6),
        attack=(0.02, 0.06),
        release=(0.04, 0.12),
        vibrato_cents=(0, 10),
        noise_db=(-45, -32),
        scoop_cents=(20, 80),
        bright_per_velocity=0.8,
    ),
    "trombone": _Family(
        sustained=True,
        resonances=((450, 800), (1200, 2000)),
        slope=(0.8, 1.7),
        attack=(0.03, 0.08),
        release=(0.05, 0.15),
        vibrato_cents=(0, 8),
        noise_db=(-45, -32),
        scoop_cents=(20, 80),
        bright_per_velocity=0.8,
    ),
}


@dataclass(frozen=True)
class _Voice:
    """One performance's timbre, drawn from its family."""

    family: _Family
    slope: float
    odd_below: float
    centres: np.ndarray
    widths: np.ndarray  # octaves
    gains_db: np.ndarray
    attack: float
    release: float
    decay: float
    vibrato_cents: float
    vibrato_hz: float
    vibrato_delay: float
    noise: float
    inharmonic: float
    scoop_cents: float
    detune_cents: float
    pluck: float  # pluck / strike position as a fraction of the string
    strings: int  # detuned unisons (piano)


def _u(rng: np.random.Generator, pair: tuple[float, float]) -> float:
    return float(rng.uniform(*pair))


def _draw(instrument: str, rng: np.random.Generator) -> _Voice:
    fam = _FAMILIES[instrument]
    n = len(fam.resonances)
    return _Voice(
        family=fam,
        slope=_u(rng, fam.slope),
        odd_below=_u(rng, fam.odd_only_below),
        centres=np.array([_u(rng, r) for r in fam.resonances]),
        widths=rng.uniform(0.3, 1.0, n),
        gains_db=rng.uniform(3.0, 15.0, n),
        attack=_u(rng, fam.attack),
        release=_u(rng, fam.release),
        decay=_u(rng, fam.decay),
        vibrato_cents=_u(rng, fam.vibrato_cents),
        vibrato_hz=float(rng.uniform(4.5, 6.8)),
        vibrato_delay=float(rng.uniform(0.05, 0.4)),
        noise=10 ** (_u(rng, fam.noise_db) / 20),
        inharmonic=_u(rng, fam.inharmonic),
        scoop_cents=_u(rng, fam.scoop_cents),
        detune_cents=float(rng.uniform(-8, 8)),
        pluck=float(rng.uniform(0.08, 0.3)),
        strings=3 if instrument == "piano" else 1,
    )


def _response_db(voice: _Voice, freqs: np.ndarray) -> np.ndarray:
    """Resonances (log-frequency bells) over a flat floor, in dB, at ``freqs``."""
    octaves = np.log2(np.maximum(freqs, 1.0)[None, :] / voice.centres[:, None])
    bells = voice.gains_db[:, None] * np.exp(-0.5 * (octaves / voice.widths[:, None]) ** 2)
    return bells.max(axis=0)


def _partials(ratios: np.ndarray, phase: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``sin`` of each partial (its frequency ratio times the fundamental's phase), each from a
    random starting phase: ``(len(ratios), len(phase))``."""
    return np.sin(ratios[:, None] * phase[None, :] + rng.uniform(0, 2 * np.pi, (len(ratios), 1)))


def _note(
    voice: _Voice,
    pitch: float,
    velocity: float,
    dur: float,
    sr: int,
    rng: np.random.Generator,
    limit: int,
) -> np.ndarray:
    """One note, at most ``limit`` samples long (the rest of the clip)."""
    fam = voice.family
    tail = voice.release if fam.sustained else voice.decay * 2.5
    n = max(min(int(round((dur + tail) * sr)), limit), 1)
    t = np.arange(n, dtype=np.float64) / sr
    f0 = 440.0 * 2 ** ((pitch - 69 + voice.detune_cents / 100) / 12)
    loud = (velocity / 127.0) ** 1.5
    cents = np.zeros(n)
    if voice.vibrato_cents > 0 and fam.sustained:
        ramp = np.clip((t - voice.vibrato_delay) / 0.2, 0.0, 1.0)
        cents += voice.vibrato_cents * ramp * np.sin(2 * np.pi * voice.vibrato_hz * t)
    if voice.scoop_cents > 0:
        cents -= voice.scoop_cents * np.exp(-t / 0.04)
    phase = 2 * np.pi * np.cumsum(f0 * 2 ** (cents / 1200)) / sr

    k = np.arange(1, _MAX_PARTIALS + 1, dtype=np.float64)
    stretch = k * np.sqrt(1 + voice.inharmonic * k**2)
    keep = stretch * f0 < 0.45 * sr
    k, stretch = k[keep], stretch[keep]
    if not len(k):
        return np.zeros(n)
    slope = max(voice.slope - fam.bright_per_velocity * (velocity / 127.0 - 0.5), 0.3)
    amp_db = -20 * slope * np.log10(k) + _response_db(voice, stretch * f0)
    if voice.odd_below > 0:
        amp_db = np.where((k % 2 == 0) & (k * f0 < voice.odd_below), amp_db - 25, amp_db)
    if not fam.sustained:  # a string struck or plucked at `pluck` of its length
        amp_db = amp_db + 20 * np.log10(np.abs(np.sin(np.pi * k * voice.pluck)) + 0.05)
    amp = 10 ** (amp_db / 20)
    amp /= np.sqrt(np.sum(amp**2))

    if fam.sustained:
        env = np.minimum(t / voice.attack, 1.0)
        env *= np.clip(1 - (t - dur) / voice.release, 0.0, 1.0)
        tone = amp @ _partials(stretch, phase, rng) * env
    else:  # each partial decays, the upper ones faster; damped after the note's end
        taus = voice.decay / (1 + 0.15 * (k - 1)) * (220.0 / max(f0, 55.0)) ** 0.3
        damp = np.where(t > dur, np.exp(-(t - dur) / voice.release), 1.0)
        onset = np.minimum(t / voice.attack, 1.0)
        tone = np.zeros(n)
        for s in range(voice.strings):
            beat = 1 + (s - (voice.strings - 1) / 2) * rng.uniform(0.0002, 0.0008)
            partials = _partials(stretch * beat, phase, rng)
            tone += (amp[:, None] * np.exp(-t[None, :] / taus[:, None]) * partials).sum(axis=0)
        tone *= onset * damp / voice.strings
    noise = rng.standard_normal(n)
    # breath / bow / hammer noise through the voice's resonances, following the tone
    spec = np.fft.rfft(noise)
    freqs = np.fft.rfftfreq(n, 1 / sr)
    shape = 10 ** (_response_db(voice, freqs) / 20) / np.sqrt(1 + (freqs / 4000.0) ** 2)
    noise = np.fft.irfft(spec * shape, n)
    noise /= np.sqrt(np.mean(noise**2)) + 1e-12
    follow = np.abs(tone)
    width = max(min(int(0.01 * sr), n), 1)
    follow = np.convolve(follow, np.ones(width) / width, mode="same")
    return loud * (tone + voice.noise * noise * follow * np.sqrt(2))


def plays(perf: Performance) -> bool:
    """Every class pcsep knows."""
    return perf.instrument in _FAMILIES


def check() -> None:
    """Nothing to install: the synthesiser is NumPy."""


def _seed(perf: Performance) -> int:
    key = f"{perf.instrument}|{perf.program}|{perf.piece_id}|{perf.part}|{perf.transpose}|"
    key += f"{perf.start_s:.6f}|{perf.bpm:.4f}|{len(perf.notes)}"
    return zlib.crc32(key.encode())


def render(
    performances: Sequence[Performance], *, sample_rate: int, num_samples: int
) -> np.ndarray:
    """Render performances with a timbre drawn for each, as mono dry signals.

    Args:
        performances: what to play (any class of :data:`~pcsep_cli.synth.music.GM_PROGRAMS`).
        sample_rate: Hz.
        num_samples: samples per performance (notes after the end are cut off).

    Returns:
        float32 ``(P, num_samples)``, each row scaled to a peak of 0.5 (silent rows stay 0).
    """
    out = np.zeros((len(performances), num_samples), dtype=np.float32)
    for row, perf in enumerate(performances):
        if not plays(perf):
            raise ValueError(f"no synthesiser voice for {perf.instrument!r}")
        rng = np.random.default_rng(_seed(perf))
        voice = _draw(perf.instrument, rng)
        acc = np.zeros(num_samples)
        for onset, dur, pitch, velocity in perf.notes:
            start = int(round(onset * sample_rate))
            if start >= num_samples or dur <= 0:
                continue
            tone = _note(
                voice,
                float(pitch),
                float(velocity),
                float(dur),
                sample_rate,
                rng,
                num_samples - start,
            )
            if start < 0:
                tone, start = tone[-start:], 0
            end = min(start + len(tone), num_samples)
            acc[start:end] += tone[: end - start]
        peak = float(np.abs(acc).max())
        if peak > 0:
            out[row] = (acc * (_PEAK / peak)).astype(np.float32)
    return out
