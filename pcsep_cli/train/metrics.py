"""Separation metrics: BSS Eval v4-style SDR / SIR / SAR (fast_bss_eval) and SI-SDR.

Everything runs in numpy: torch's batched ``linalg.solve`` (used by fast_bss_eval's torch path)
fails in torch 2.13 after ``torch.set_num_threads(k >= 2)``, which training sets. fast_bss_eval
0.1.4's direct numpy solver breaks on numpy 2 (``np.linalg.solve`` no longer broadcasts a
vector right-hand side), so its preconditioned conjugate-gradient solver is used with enough
iterations to match the direct solution (the tests compare with mir_eval).

Multichannel sources are scored channel by channel (each channel's estimates against that
channel's references, the other sources of the mixture as interferers) and the channel scores
are averaged, as BSS Eval's ``bss_eval_sources`` does per channel.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-10
CLAMP_DB = 100.0
CG_ITERATIONS = 64


def _check_pair(ref: np.ndarray, est: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    ref = np.asarray(ref, dtype=np.float64)
    est = np.asarray(est, dtype=np.float64)
    if ref.shape != est.shape or ref.ndim < 1 or ref.shape[-1] < 2:
        raise ValueError(
            f"{name}: ref and est must have the same shape (..., S), got "
            f"{ref.shape} and {est.shape}"
        )
    return ref, est


def si_sdr(ref: np.ndarray, est: np.ndarray) -> np.ndarray:
    """Scale-invariant SDR (Le Roux et al., 2019) in dB, zero-mean.

    Args:
        ref: references ``(..., S)``.
        est: estimates ``(..., S)``.

    Returns:
        ``(...)`` dB values (clamped to ±100 dB, so a perfect estimate gives 100).
    """
    ref, est = _check_pair(ref, est, "si_sdr")
    ref = ref - ref.mean(axis=-1, keepdims=True)
    est = est - est.mean(axis=-1, keepdims=True)
    alpha = (est * ref).sum(-1, keepdims=True) / ((ref**2).sum(-1, keepdims=True) + EPS)
    target = alpha * ref
    noise = est - target
    ratio = ((target**2).sum(-1) + EPS) / ((noise**2).sum(-1) + EPS)
    return np.clip(10 * np.log10(ratio), -CLAMP_DB, CLAMP_DB)


def bss_eval(refs: np.ndarray, ests: np.ndarray, filter_length: int = 512) -> dict[str, np.ndarray]:
    """SDR, SIR, SAR and SI-SDR of each source of one mixture.

    Args:
        refs: references ``(n_src, C, S)`` (or ``(n_src, S)`` for mono).
        ests: estimates, same shape, in the same order (no permutation search).
        filter_length: length of the distortion filter BSS Eval allows.

    Returns:
        ``{"sdr", "sir", "sar", "si_sdr"}`` each ``(n_src,)`` in dB, averaged over channels.
        With one source SIR is undefined (no interferer) and reported as NaN.
    """
    refs, ests = _check_pair(refs, ests, "bss_eval")
    if refs.ndim == 2:
        refs, ests = refs[:, None], ests[:, None]
    if refs.ndim != 3:
        raise ValueError(f"bss_eval expects (n_src, C, S), got {refs.shape}")
    import fast_bss_eval

    # (C, n_src, S): one independent problem per channel.
    r = np.ascontiguousarray(refs.transpose(1, 0, 2))
    e = np.ascontiguousarray(ests.transpose(1, 0, 2))
    # A tiny load keeps the solve stable when a reference is silent in some channel.
    sdr, sir, sar = fast_bss_eval.bss_eval_sources(
        r,
        e,
        filter_length=filter_length,
        use_cg_iter=CG_ITERATIONS,
        compute_permutation=False,
        clamp_db=CLAMP_DB,
        load_diag=1e-8,
    )
    out = {
        "sdr": np.asarray(sdr).mean(0),
        "sir": np.asarray(sir).mean(0),
        "sar": np.asarray(sar).mean(0),
        "si_sdr": si_sdr(refs, ests).mean(1),
    }
    if refs.shape[0] == 1:
        out["sir"] = np.full(1, np.nan)
    return out
