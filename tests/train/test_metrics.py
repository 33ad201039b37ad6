"""BSS Eval and SI-SDR against cases with a known answer, and against mir_eval."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.signal

from pcsep_cli.train.metrics import bss_eval, si_sdr


def _coloured(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Low-pass noise: strongly correlated samples, like music (hard for the CG solver)."""
    b, a = scipy.signal.butter(2, 0.05)
    x = scipy.signal.lfilter(b, a, rng.standard_normal(shape), axis=-1)
    return x / x.std(axis=-1, keepdims=True)


def test_si_sdr_of_known_noise_level():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((3, 48000))
    noise = rng.standard_normal(ref.shape)
    noise -= noise.mean(-1, keepdims=True)
    # Remove the part of the noise along the reference so the SNR is exactly the target's.
    noise -= (noise * ref).sum(-1, keepdims=True) / (ref**2).sum(-1, keepdims=True) * ref
    noise *= np.linalg.norm(ref, axis=-1, keepdims=True) / np.linalg.norm(
        noise, axis=-1, keepdims=True
    )
    est = 0.5 * (ref + noise * 10 ** (-20 / 20))  # 20 dB, and a gain SI-SDR ignores
    np.testing.assert_allclose(si_sdr(ref - ref.mean(-1, keepdims=True), est), 20.0, atol=0.05)


def test_si_sdr_of_a_perfect_estimate_is_clamped():
    x = np.random.default_rng(1).standard_normal(1000)
    assert si_sdr(x, x) == pytest.approx(100.0)


def test_bss_eval_matches_mir_eval_on_correlated_signals():
    import mir_eval

    rng = np.random.default_rng(2)
    refs = _coloured(rng, (3, 1, 16000))
    ests = refs + 0.3 * rng.standard_normal(refs.shape)
    ests[0] += 0.4 * refs[1]  # interference in the first estimate
    ests[2] = scipy.signal.lfilter([1.0, 0.6], [1.0], ests[2])  # allowed distortion
    got = bss_eval(refs, ests)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        sdr, sir, sar, _ = mir_eval.separation.bss_eval_sources(
            refs[:, 0], ests[:, 0], compute_permutation=False
        )
    np.testing.assert_allclose(got["sdr"], sdr, atol=0.1)
    np.testing.assert_allclose(got["sar"], sar, atol=0.1)
    np.testing.assert_allclose(got["sir"][0], sir[0], atol=0.3)
    assert got["sir"][0] < got["sir"][1] - 5  # the estimate with interference scores lower


def test_bss_eval_averages_channels_and_orders_by_quality():
    rng = np.random.default_rng(3)
    refs = _coloured(rng, (2, 2, 8000))
    good = refs + 0.01 * rng.standard_normal(refs.shape)
    bad = refs + 0.3 * rng.standard_normal(refs.shape)
    g, b = bss_eval(refs, good), bss_eval(refs, bad)
    assert set(g) == {"sdr", "sir", "sar", "si_sdr"}
    assert g["sdr"].shape == (2,)
    assert np.all(g["sdr"] > b["sdr"] + 20)
    # The mixture as both estimates: about 0 dB SIR for equal-power sources.
    mix = np.repeat(refs.sum(0, keepdims=True), 2, axis=0)
    np.testing.assert_allclose(bss_eval(refs, mix)["sir"], 0.0, atol=1.0)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match=r"same shape"):
        bss_eval(np.zeros((2, 100)), np.zeros((2, 99)))
    with pytest.raises(ValueError, match=r"same shape"):
        si_sdr(np.zeros(10), np.zeros(11))


def test_silent_rows_need_sound_within_50_db_of_the_loudest() -> None:
    from pcsep_cli.train.metrics import silent_rows

    x = np.ones((4, 2, 100))
    x[1] = 0.0
    x[2] *= 10 ** (-55 / 20)
    x[3] *= 10 ** (-45 / 20)
    assert silent_rows(x) == [1, 2]
    assert silent_rows(x[:0]) == []
    assert silent_rows(np.zeros((2, 10))) == [0, 1]
    x[3, 0, 0] = np.nan  # one broken row does not make every row silent
    assert silent_rows(x) == [1, 2, 3]
