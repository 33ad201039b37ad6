"""Separation metrics: BSS Eval v4-style SDR / SIR / SAR (fast_bss_eval) and SI-SDR.

Everything runs in numpy: torch's batched ``linalg.solve`` (used by fast_bss_eval's torch path)
fails in torch 2.13 after ``torch.set_num_threads(k >= 2)``, which training sets. fast_bss_eval
0.1.4's direct numpy solver breaks on numpy 2 (``np.linalg.solve`` no longer broadcasts a
vector right-hand side), so its preconditioned conjugate-gradient solver is used with enough
iterations to match the direct solution (the tests compare with mir_eval).

Multichannel sources are scored channel by channel (each channel's estimates against that
channel's references, the other sources of the mixture as interferers) and the channel scores
are averaged, as BSS Eval's ``bss_eval_sources`` does per channel.

:func:`bootstrap` gives a mean with a 95 % interval by resampling *clusters* (the scenes of an
evaluation) with replacement: stems of one scene share a mixture and are correlated, so
resampling stems one by one would make the interval too narrow.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-10
CLAMP_DB = 100.0
CG_ITERATIONS = 64
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


SILENT_DB = 50.0
"""A reference this far below the loudest of its example is taken as silent (not scored)."""


def silent_rows(x: np.ndarray, below_db: float = SILENT_DB) -> list[int]:
    """Rows of ``x`` ``(P, ...)`` with no sound: every sample zero, or an RMS ``below_db``
    under the loudest row's. SDR against such a reference measures nothing but the floor of
    the arithmetic (a recording with a part 90 dB down scored -17 and -60 dB SDRi), so
    evaluation leaves them out and counts them, and the generator draws again when a dry part
    is silent in the clip."""
    if len(x) == 0:
        return []
    flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    rms = np.sqrt(np.mean(np.square(flat), axis=1)) if flat.shape[1] else np.zeros(len(x))
    floor = float(np.nanmax(rms, initial=0.0)) * 10 ** (-below_db / 20)
    return [int(i) for i in np.flatnonzero(~(rms > floor))]


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


def bootstrap(
    sums: np.ndarray,
    counts: np.ndarray,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
) -> dict[str, float | int | list[float]]:
    """Mean of values held in clusters, with a cluster-bootstrap percentile interval.

    The statistic is ``Σ sums / Σ counts`` (the mean over every value); each resample draws
    as many clusters as there are, with replacement, and recomputes it.

    Args:
        sums: ``(K,)`` sum of each cluster's values (e.g. the SDR of a scene's stems).
        counts: ``(K,)`` number of values in each cluster (> 0 for at least one).
        resamples: bootstrap resamples.
        seed: seed of the resampling: the same inputs give the same interval.
        level: coverage of the interval.

    Returns:
        ``{"mean", "ci95": [lo, hi], "n"}``: ``n`` the number of values (``Σ counts``).
        ``mean`` and the bounds are NaN when there is no value.

    Raises:
        ValueError: ``sums`` and ``counts`` are not two 1-D arrays of one length, or a count
            is negative.
    """
    sums = np.asarray(sums, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    if sums.ndim != 1 or sums.shape != counts.shape:
        raise ValueError(f"sums and counts must be (K,) each, got {sums.shape}, {counts.shape}")
    if np.any(counts < 0):
        raise ValueError("counts must not be negative")
    n = int(counts.sum())
    if n == 0:
        return {"mean": float("nan"), "ci95": [float("nan"), float("nan")], "n": 0}
    mean = float(sums.sum() / n)
    idx = np.random.default_rng(seed).integers(0, len(sums), size=(resamples, len(sums)))
    num, den = sums[idx].sum(axis=1), counts[idx].sum(axis=1)
    # A resample of clusters that hold no value has no mean: it is left out.
    stats = num[den > 0] / den[den > 0]
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(stats, [tail, 100 - tail])
    return {"mean": mean, "ci95": [float(lo), float(hi)], "n": n}
