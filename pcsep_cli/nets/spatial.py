"""Where each performer stands, heard through the microphones: the spatial cue of pcsep-spatial.

A performer at a known point reaches microphone ``m`` after ``d_m / c`` seconds, with a level
set by the distance and the microphone's polar pattern. On the model's STFT grid this is a
*steering vector* per performer and frequency (:func:`steering`):

    a_m(f) = g_m · exp(−2πi f d_m / c),   g_m = (α_m + (1 − α_m) cos θ_m) / d_m

(``α`` from :data:`pcsep_cli.io.mics.PATTERNS`, ``θ`` the angle off the microphone's axis).
The observed channels ``X(f, t)`` of a bin match performer ``p`` to the degree
:func:`spatial_scores` measures: the normalised power of a beam steered at ``p``,
``|a_pᴴ X|² / (‖a_p‖² ‖X‖²)`` in [0, 1] (1: the bin's channels differ exactly as a sound from
``p``'s position would make them; phase for spaced and near-coincident pairs and arrays, level
for coincident XY pairs). The cue owes nothing to timbre, so two violins get different ones.

:class:`SpatialFusion` turns scores into masks together with the mono network's logits: a
softmax of the scores over the performers, and over the performers of the same class, gives
each one's share of a bin; a small convolutional head (a few thousand weights) learns how far
to trust them at each frequency and how they combine with the mono masks. Its last layer starts
at zero, so an untrained head splits each class's mono mask by the spatial shares.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "SpatialConfig",
    "SpatialFusion",
    "channel_order_check",
    "class_shares",
    "covariance_shares",
    "diffuse_coherence",
    "note_factors",
    "note_scores",
    "spatial_inputs",
    "spatial_scores",
    "steering",
]

SPEED_OF_SOUND = 343.0
"""Metres per second, at 20 °C."""
_EPS = 1e-10
_MAX_ORDERS = 24  # channel orders tried by channel_order_check (all of them for 4 channels)
_CHECK_FRAMES = 256  # frames of a block channel_order_check reads, evenly spread


@dataclass(frozen=True)
class SpatialConfig:
    """The spatial head of a model (``config.json`` ``spatial``; absent: a mono model).

    Attributes:
        enabled: the model reads microphone geometry (``--mics``).
        hidden: channels of the fusion head's convolutions.
        source_height: metres above a performer's footprint where the sound is taken to come
            from, as a share of the performer's height (0.55: a standing player's instrument
            near chest height, a seated cellist's lower).
        speed_of_sound: metres per second.
        notes: components of the note model the scores are pooled over (:func:`note_scores`);
            0: the head reads each bin's own scores only (pcsep-spatial as first shipped).
        covariance: EM iterations of :func:`covariance_shares`, which then splits a class
            between its players (the head still corrects the class's mask); 0: the head's
            shares split it.
    """

    enabled: bool = False
    hidden: int = 16
    source_height: float = 0.55
    speed_of_sound: float = SPEED_OF_SOUND
    notes: int = 0
    covariance: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.hidden <= 256:
            raise ValueError(f"spatial.hidden must be in [1, 256], got {self.hidden}")
        if not 0.0 <= self.source_height <= 1.0:
            raise ValueError(f"spatial.source_height must be in [0, 1], got {self.source_height}")
        if not 200.0 <= self.speed_of_sound <= 400.0:
            raise ValueError(
                f"spatial.speed_of_sound must be in [200, 400] m/s, got {self.speed_of_sound}"
            )
        if not 0 <= self.notes <= 256:
            raise ValueError(f"spatial.notes must be in [0, 256], got {self.notes}")
        if not 0 <= self.covariance <= 1000:
            raise ValueError(f"spatial.covariance must be in [0, 1000], got {self.covariance}")


def steering(
    sources: np.ndarray,
    positions: np.ndarray,
    directions: np.ndarray | None,
    coefficients: np.ndarray,
    freqs: np.ndarray,
    speed_of_sound: float = SPEED_OF_SOUND,
) -> Tensor:
    """Steering vectors of point sources at the microphones.

    Args:
        sources: float ``[P, 3]`` source positions, metres.
        positions: float ``[M, 3]`` microphone positions, same frame.
        directions: float ``[M, 3]`` microphone axes (unit; zero rows: omni), or None (all omni).
        coefficients: float ``[M]``, ``α`` of each pattern (1: omni).
        freqs: float ``[F]`` frequencies, Hz.
        speed_of_sound: m/s.

    Returns:
        complex64 ``(P, M, F)``, each vector ``[:, :, f]`` normalised to unit length (a zero
        vector where every microphone is deaf to the source, e.g. figure-8s side on).
    """
    src = np.asarray(sources, dtype=np.float64)[:, None, :]
    mic = np.asarray(positions, dtype=np.float64)[None, :, :]
    diff = src - mic  # (P, M, 3)
    dist = np.maximum(np.linalg.norm(diff, axis=2), 0.05)
    alpha = np.asarray(coefficients, dtype=np.float64)[None, :]
    if directions is None:
        cos = np.ones_like(dist)
    else:
        cos = np.einsum("pmk,mk->pm", diff, np.asarray(directions, dtype=np.float64)) / dist
    gain = (alpha + (1.0 - alpha) * cos) / dist  # (P, M); omni rows: alpha = 1
    phase = -2.0 * math.pi * np.asarray(freqs, dtype=np.float64)[None, None, :]
    vec = gain[..., None] * np.exp(1j * phase * (dist / speed_of_sound)[..., None])
    norm = np.linalg.norm(vec, axis=1, keepdims=True)
    vec = np.where(norm > 0, vec / np.maximum(norm, 1e-30), 0.0)
    return torch.from_numpy(vec.astype(np.complex64))


def spatial_scores(spec: Tensor, steer: Tensor) -> Tensor:
    """How well each bin's channels match each performer's steering: ``(P, F, T)`` in [0, 1].

    Args:
        spec: complex ``(M, F, T)``, the channels' STFT.
        steer: complex ``(P, M, F)`` from :func:`steering` (unit vectors).
    """
    beam = torch.einsum("pmf,mft->pft", steer.conj(), spec)
    power = (spec.real**2 + spec.imag**2).sum(dim=0)  # (F, T)
    return ((beam.real**2 + beam.imag**2) / (power[None] + _EPS)).clamp(0.0, 1.0)


_NOTE_ITERATIONS = 100  # multiplicative updates of the note model
_NOTE_FRAMES = 21  # ~0.5 s at the models' 11,025 Hz, hop 256: a note's evidence is this local
_NOTE_PRIOR = 0.03  # weight of a component's whole-block evidence beside its local one
_NOTE_SEED = 0


def note_factors(
    mag: Tensor, components: int, iterations: int = _NOTE_ITERATIONS
) -> tuple[Tensor, Tensor]:
    """A note model of the mixture: ``mag ≈ W H``, non-negative (NMF, KL divergence).

    Each component is a spectrum (``W[:, k]``, e.g. one pitch's harmonics on one instrument)
    and when it sounds (``H[k]``). Lee and Seung's multiplicative updates from a seeded start,
    so the same block gives the same factors.

    Args:
        mag: ``(F, T)`` the mono mixture's magnitude.
        components: ``K``.
        iterations: updates of ``H`` then ``W``.

    Returns:
        ``W`` ``(F, K)`` and ``H`` ``(K, T)``, float32.
    """
    v = mag.float()
    gen = torch.Generator().manual_seed(_NOTE_SEED)
    f, t = v.shape
    w = (torch.rand(f, components, generator=gen) + 0.1).to(v.device)
    h = (torch.rand(components, t, generator=gen) + 0.1).to(v.device)
    for _ in range(iterations):
        h = h * (w.T @ (v / (w @ h + _EPS))) / (w.sum(0)[:, None] + _EPS)
        w = w * ((v / (w @ h + _EPS)) @ h.T) / (h.sum(1)[None] + _EPS)
    return w, h


def note_scores(scores: Tensor, factors: tuple[Tensor, Tensor]) -> Tensor:
    """Each bin's scores pooled over the notes it holds: ``(P, F, T)`` in [0, 1].

    A bin's own channels are a poor witness in a reverberant room (a violin 3 m away reaches
    the microphones with as much room as direct sound); every other bin of the same note says
    the same thing. Each component of the note model (:func:`note_factors`) gets each
    performer's score averaged over its bins and the frames within ~0.25 s, weighted by how
    much of each bin it holds (plus a little of its average over the whole block); a bin's
    pooled score is the average of its components' by their share of the bin. Untrained, on
    validation recordings of 2-3 players of one instrument (a softmax of the scores as each
    player's share of the mixture): 4.73 dB SDRi from the bins' own scores, 7.3 pooled.

    Args:
        scores: ``(P, F, T)`` from :func:`spatial_scores`.
        factors: ``(W, H)`` from :func:`note_factors` of the same block.
    """
    w, h = factors
    # evidence[p, k, t] = sum_f W[f, k] H[k, t] scores[p, f, t], without the (F, K, T) product
    num = h[None] * torch.einsum("fk,pft->pkt", w, scores)
    den = h * w.sum(0)[:, None]  # (K, T)
    k_, t_ = den.shape
    kernel = torch.ones(1, 1, _NOTE_FRAMES, dtype=num.dtype, device=num.device)
    pad = _NOTE_FRAMES // 2
    local_num = nn.functional.conv1d(num.reshape(-1, 1, t_), kernel, padding=pad).reshape(num.shape)
    local_den = nn.functional.conv1d(den[:, None], kernel, padding=pad)[:, 0]
    prior = _NOTE_PRIOR * _NOTE_FRAMES / t_
    evidence = (local_num + prior * num.sum(2, keepdim=True)) / (
        local_den + prior * den.sum(1, keepdim=True) + _EPS
    )[None]  # (P, K, T)
    pooled = torch.einsum("fk,pkt->pft", w, h[None] * evidence)
    return (pooled / ((w @ h)[None] + _EPS)).clamp(0.0, 1.0)


def spatial_inputs(
    spec: Tensor,
    mono: Tensor,
    steer: Tensor,
    cfg: SpatialConfig,
    factors: tuple[Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor | None]:
    """What a spatial head reads of a block: the beam scores, and (``cfg.notes``) the scores
    pooled over notes (``factors`` of ``mono``, the block's mono magnitude ``(F, T)``;
    computed when None)."""
    scores = spatial_scores(spec, steer)
    if not cfg.notes:
        return scores, None
    if factors is None:
        factors = note_factors(mono, cfg.notes)
    return scores, note_scores(scores, factors)


_EM_DIFFUSE = 0.3  # weight of the room's diffuse field beside the direct path, at the start
_EM_NOISE = 0.03  # each capsule's own uncorrelated part (keeps low bins' covariances invertible)
_EM_PRIOR = 1.0  # frames' worth of weight the geometric start keeps in each covariance
_EM_FLOOR = 1e-6  # of the block's mean power per bin


def diffuse_coherence(positions: np.ndarray, freqs: np.ndarray, speed_of_sound: float) -> Tensor:
    """Coherence of a diffuse sound field between omni microphones: ``(F, M, M)``,
    ``sinc(2 f d_mn / c)`` (1 on the diagonal and for coincident capsules)."""
    pos = np.asarray(positions, dtype=np.float64)
    d = np.linalg.norm(pos[:, None] - pos[None], axis=2)
    g = np.sinc(2.0 * np.asarray(freqs, dtype=np.float64)[:, None, None] * d[None] / speed_of_sound)
    return torch.from_numpy(g.astype(np.complex64))


def _mm(a: Tensor, b: Tensor) -> Tensor:
    """Products of small matrices stored first: ``a`` ``(M, K, ...)``, ``b`` ``(K, N, ...)``.
    Elementwise over the batch, a loop over ``K``: many times faster than batched ``matmul`` on
    2x2 to 8x8 matrices."""
    out = a[:, 0, None] * b[None, 0]
    for k in range(1, a.shape[1]):
        out = out + a[:, k, None] * b[None, k]
    return out


def _inv(a: Tensor) -> Tensor:
    """Inverses of Hermitian positive definite matrices stored first, ``(M, M, ...)``
    (Gauss-Jordan without pivoting, elementwise over the batch)."""
    m = a.shape[0]
    rows = [
        torch.cat(
            [
                a[i],
                torch.eye(m, dtype=a.dtype, device=a.device)[i]
                .reshape((m,) + (1,) * (a.dim() - 2))
                .expand_as(a[i]),
            ]
        )
        for i in range(m)
    ]
    for k in range(m):
        rows[k] = rows[k] / rows[k][k]
        for i in range(m):
            if i != k:
                rows[i] = rows[i] - rows[i][k] * rows[k]
    return torch.stack([r[m:] for r in rows])


def _em_step(
    x: Tensor, r: Tensor, v: Tensor, floor: float, prior: Tensor | None
) -> tuple[Tensor, Tensor]:
    """One EM iteration of the full-rank spatial covariance model (Duong, Vincent and Gribonval
    2010), matrices first: ``x`` ``(M, F, T)``, ``r`` ``(M, M, J, F)``, ``v`` ``(J, F, T)``.

    With ``y = Σ_x⁻¹ x`` the posterior second moment of image ``j`` is
    ``S_j = v_j² R_j y yᴴ R_j + v_j R_j − v_j² R_j Σ_x⁻¹ R_j``, so its variance update
    ``tr(R_j⁻¹ S_j) / M = v_j + v_j² (yᴴ R_j y − tr(R_j Σ_x⁻¹)) / M`` and the covariance
    update ``Σ_t S_j / v_j'`` need no matrix per image and bin. ``prior`` (like ``r``; None:
    keep ``r``) is the covariance the fit is pulled towards, with :data:`_EM_PRIOR` frames'
    weight. Returns the new ``r`` and ``v``."""
    m = x.shape[0]
    eye = torch.eye(m, dtype=x.dtype, device=x.device)[..., None, None]
    sx = torch.einsum("mnjf,jft->mnft", r, v.to(x.dtype)) + floor * eye
    sxi = _inv(sx)
    y = _mm(sxi, x[:, None])[:, 0]  # (M, F, T)
    ry = torch.einsum("mnjf,nft->mjft", r, y)
    yry = (y.conj()[:, None] * ry).sum(0).real  # (J, F, T)
    trace = torch.einsum("mnjf,nmft->jft", r, sxi).real
    v_new = (v + v * v * (yry - trace) / m).clamp_min(floor)
    if prior is not None:
        t = x.shape[-1]
        w = v * v / v_new
        outer = y[:, None] * y[None].conj() - sxi  # (M, M, F, T)
        b = torch.einsum("jft,mnft->mnjf", w.to(x.dtype), outer)
        share = (v / v_new).sum(-1).to(x.dtype)  # (J, F)
        rbr = _mm(_mm(r, b), r)
        r = (share[None, None] * r + rbr + _EM_PRIOR * prior) / (t + _EM_PRIOR)
        tr = torch.diagonal(r, dim1=0, dim2=1).real.sum(-1).clamp_min(1e-12)
        r = r * (m / tr).to(r.dtype)[None, None]
    return r, v_new


def covariance_shares(
    spec: Tensor,
    steer: Tensor,
    coherence: Tensor,
    iterations: int,
    power_iterations: int = 5,
    frames: int = 128,
    start: Tensor | None = None,
) -> Tensor:
    """How one sound divides between performers at known places: ``(P, F, T)`` shares.

    The channels ``x(f, t)`` are modelled as a sum of one image per performer, each a zero-mean
    Gaussian with a variance ``v_p(f, t)`` and a spatial covariance ``R_p(f)`` fixed in time
    (the full-rank model of Duong, Vincent and Gribonval, 2010). ``R_p`` starts from the
    geometry (the direct path's steering ``a_p a_pᴴ`` plus :data:`_EM_DIFFUSE` of the room's
    diffuse field) and is fitted by EM to the frames of the block, ``iterations`` times on at most
    ``frames`` frames spread over it; the room's own transfer to each microphone then replaces
    the free-field guess. With the covariances fixed, ``power_iterations`` more EM steps on every
    frame give each bin's variances, and a performer's share is its variance over their sum.

    On 40 validation recordings of 2-3 players of one instrument (91 stems, 11,025 Hz, shares
    times the mono mixture, plain SDR of the mono stems) 30 iterations on all frames scored
    8.7 dB SDRi (median 9.5) on the first 17 stems, against a 6.7 dB median for the pooled
    note scores (:func:`note_scores`; their mean, 15.1, is one recording's); but through the
    whole path (pcsep-spatial's class masks, BSS Eval at the recordings' 22.05 kHz) the gain
    shrank to +0.34 dB [-0.14, +0.88] over the head's own shares, so no bundled model uses it
    yet (``spatial.covariance``).
    It is also slow: four players of one class, four microphones, 60 s at 44.1 kHz took RTF
    0.68 against pcsep-spatial's 0.14 (``tests/benchmarks/bench_spatial.py --instruments``).

    Args:
        spec: complex ``(M, F, T)``, the channels.
        steer: complex ``(P, M, F)`` from :func:`steering`.
        coherence: ``(F, M, M)`` from :func:`diffuse_coherence`.
        iterations: EM iterations fitting the covariances.
        power_iterations: EM iterations on every frame with the covariances fixed.
        frames: frames the covariances are fitted on.
        start: ``(P, F, T)`` each performer's share of a bin to start from (e.g. its mono
            mask's); None: even.
    """
    p, m, _ = steer.shape
    t = spec.shape[-1]
    x = spec.to(torch.complex128)  # (M, F, T); in float32 the fit turned to NaN by 60 iterations
    a = steer.permute(1, 0, 2).to(x.dtype)  # (M, P, F)
    coh = coherence.to(device=x.device, dtype=x.dtype).permute(1, 2, 0)[:, :, None]  # (M, M, 1, F)
    eye = torch.eye(m, dtype=x.dtype, device=x.device)[..., None, None]
    r0 = m * a[:, None] * a[None].conj() + _EM_DIFFUSE * coh + _EM_NOISE * eye
    pick = torch.linspace(0, t - 1, min(t, frames), device=x.device).round().long()
    xs = x[..., pick]
    power = (x.real**2 + x.imag**2).mean(0)  # (F, T)
    floor = _EM_FLOOR * max(float(power.mean()), 1e-20)
    even = torch.full((p, 1, 1), 1.0 / p, dtype=power.dtype, device=power.device)
    v = power[None] * (even if start is None else start.to(power.dtype)) + floor
    r, vs = r0, v[..., pick]
    for _ in range(iterations):
        r, vs = _em_step(xs, r, vs, floor, r0)
    v[..., pick] = vs
    for _ in range(power_iterations):
        _, v = _em_step(x, r, v, floor, None)
    return (v / v.sum(0, keepdim=True)).float()


def class_shares(
    spec: Tensor, masks: Tensor, steer: Tensor, groups: Tensor, coherence: Tensor, iterations: int
) -> Tensor:
    """Each performer's share of its class's sound, ``(P, F, T)``: 1 for a performer alone in
    its class; for players of one instrument, their :func:`covariance_shares` variances over
    the class's sum. Every performer is a source of the model (an instrument of another class
    is what a bin's other sound comes from), each started at its mono mask's part of the bin
    (``masks`` ``(P, F, T)``)."""
    same = groups[:, None] == groups[None, :]
    if not bool((same.sum(1) > 1).any()):
        return torch.ones_like(masks)
    start = masks / masks.sum(0, keepdim=True).clamp_min(1e-6)
    v = covariance_shares(spec, steer, coherence, iterations, start=start)
    within = torch.einsum("pq,qft->pft", same.to(v.dtype), v).clamp_min(1e-30)
    return (v / within).to(masks.dtype)


def _orders(m: int) -> list[tuple[int, ...]]:
    """Channel orders tried: every one up to 4 channels, else reversals, shifts and swaps."""
    import itertools

    ident = tuple(range(m))
    if m <= 4:
        return list(itertools.permutations(ident))
    out = {ident, ident[::-1]}
    for k in range(1, m):
        out.add(ident[k:] + ident[:k])
    for i in range(m - 1):
        sw = list(ident)
        sw[i], sw[i + 1] = sw[i + 1], sw[i]
        out.add(tuple(sw))
    return sorted(out)[:_MAX_ORDERS]


def channel_order_check(
    spec: Tensor, steer: Tensor, freqs: np.ndarray, weights: Tensor | None = None
) -> dict[str, object]:
    """Do the channels, in this order, sound like sound from the performers?

    Each performer's score is averaged over the bins that are its own by the mono masks
    (``weights``; all louder bins alike without them), 300 Hz to 4 kHz, for the channels as
    given and for other orders of them (every order up to 4 channels; reversals, rotations
    and neighbour swaps beyond). Sound from the performers' places scores highest in the
    given order; with a pair swapped, each performer's bins point to its mirror image and
    the order that undoes the swap scores higher. Performers standing symmetrically about
    the array's axis cannot tell: a swap then only exchanges their places.

    Args:
        spec: complex ``(M, F, T)``.
        steer: complex ``(P, M, F)``.
        freqs: ``[F]`` Hz of the bins.
        weights: ``(P, F, T)`` in [0, 1], each performer's mono mask; None: equal.

    A long block is read at :data:`_CHECK_FRAMES` frames spread evenly over it (6 s at
    11,025 Hz): the answer is the same, in a fraction of the time for a 20 s block.

    Returns:
        ``{"score": float, "best_order": [channel indices], "best_score": float}``.
    """
    m = spec.shape[0]
    band = torch.from_numpy((freqs >= 300.0) & (freqs <= 4000.0))
    frames = spec.shape[-1]
    pick = torch.linspace(0, frames - 1, min(frames, _CHECK_FRAMES)).round().long()
    sub = spec[:, band][..., pick]
    weights = None if weights is None else weights[..., pick]
    if sub.numel() == 0 or m < 2:
        return {"score": 1.0, "best_order": list(range(m)), "best_score": 1.0}
    power = (sub.real**2 + sub.imag**2).sum(0)
    loud = (power >= power.flatten().median()).to(power.dtype)
    w = loud[None] if weights is None else weights[:, band] * loud[None]
    w = w.expand(steer.shape[0], -1, -1)
    total = w.sum().clamp_min(1e-12)
    results = []
    for order in _orders(m):
        s = spatial_scores(sub[list(order)], steer[:, :, band])
        results.append((float((s * w).sum() / total), order))
    given = results[[o for _, o in results].index(tuple(range(m)))][0]
    best, order = max(results)
    return {"score": given, "best_order": list(order), "best_score": best}


class SpatialFusion(nn.Module):
    """Mono mask logits + spatial scores → masks, per performer (module docstring).

    The mask of performer ``p`` is ``σ(z_p + u_p) · share_p``: ``z_p`` the mono network's
    logit, corrected by ``u_p``; ``share_p`` a softmax over the performers of ``p``'s class of
    ``κ_f · s_p + v_p`` (``s_p`` the spatial score, ``κ_f`` a learned sharpness per frequency).
    A performer alone in its class keeps a share of 1 and hears where it stands through ``u``.
    ``u`` and ``v`` come from a small convolutional head over per-performer features (mono
    logit, spatial score, both softmax shares, the loudest rival's logit, how directional the
    bin is, the mixture's level, the frequency); its last layer starts at zero.

    With ``cfg.notes`` the share is a softmax of ``λ_f · n_p`` alone (``n_p`` the scores
    pooled over notes, :func:`note_scores`; ``λ_f`` learned per frequency, from 300), and the
    head, which then gives ``u`` only, also reads ``n_p`` and its share.

    Args:
        cfg: the spatial config.
        bins: rows of the model's linear STFT grid.
    """

    FEATURES = 8

    def __init__(self, cfg: SpatialConfig, bins: int) -> None:
        super().__init__()
        h = cfg.hidden
        self.features = self.FEATURES + (2 if cfg.notes else 0)
        self.log_kappa = nn.Parameter(torch.full((bins, 1), math.log(30.0)))
        # Two layers (3 bins x 7 frames). A four-layer head seeing ~0.7 s, with a sharper
        # start (kappa 60), scored 0.9 dB lower on same-class test recordings (4.0 against
        # 4.9 dB SDRi, 40 recordings) after the same training.
        self.head = nn.Sequential(
            nn.Conv2d(self.features, h, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(h, h, 3, padding=(1, 2), dilation=(1, 2)),
            nn.GELU(),
            nn.Conv2d(h, 1 if cfg.notes else 2, 1),  # u (and v, without notes)
        )
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)
        self.head.to(memory_format=torch.channels_last)
        self.reads_notes = bool(cfg.notes)
        if cfg.notes:  # sharpness of the pooled scores, per frequency
            self.log_note_kappa = nn.Parameter(torch.full((bins, 1), math.log(300.0)))
        self.register_buffer("freq", torch.linspace(0.0, 1.0, bins)[:, None], persistent=False)

    def forward(
        self,
        logits: Tensor,
        scores: Tensor,
        groups: Tensor,
        logmag: Tensor,
        notes: Tensor | None = None,
        shares: Tensor | None = None,
    ) -> Tensor:
        """Fuse.

        Args:
            logits: ``(P, F, T)`` the mono network's mask logits.
            scores: ``(P, F, T)`` from :func:`spatial_scores`.
            groups: ``(P,)`` long, each performer's class (performers of one class share a
                mono mask, which the spatial shares split).
            logmag: ``(F, T)`` log-magnitude of the mixture, normalised by its mean.
            notes: ``(P, F, T)`` from :func:`note_scores`; required when ``cfg.notes`` is set.
            shares: ``(P, F, T)``, each performer's share of its class (e.g. from
                :func:`class_shares`); None: the head's own.

        Returns:
            ``(P, F, T)`` masks in [0, 1].
        """
        p = logits.shape[0]
        z = logits.clamp(-12.0, 12.0)
        a = scores * self.log_kappa.exp()
        same = (groups[:, None] == groups[None, :]).to(a.dtype)  # (P, P)
        extra: list[Tensor] = []
        if self.reads_notes:
            if notes is None:
                raise ValueError("this spatial head reads note scores (note_scores)")
            note_share = _share_within(notes * self.log_note_kappa.exp(), same)
            extra = [notes, note_share.clamp_min(1e-6).log()]
        if p > 1:  # the loudest other performer's logit: the top one, or the second for it
            top, idx = z.topk(2, dim=0)
            mine = idx[0][None] == torch.arange(p, device=z.device)[:, None, None]
            rival = torch.where(mine, top[1][None], top[0][None])
        else:
            rival = torch.full_like(z, -12.0)
        f, t = z.shape[1:]
        feats = torch.stack(
            [
                z / 4.0,
                torch.log_softmax(a, dim=0),
                _share_within(a, same).clamp_min(1e-6).log(),
                scores,
                rival / 4.0,
                scores.amax(0, keepdim=True).expand(p, -1, -1),
                (logmag / 4.0)[None].expand(p, -1, -1),
                self.freq.expand(f, t)[None].expand(p, -1, -1),
                *extra,
            ],
            dim=1,
        ).contiguous(memory_format=torch.channels_last)  # (P, 8 or 10, F, T); 40 % faster convs
        out = self.head(feats)
        if self.reads_notes:  # the notes alone split a class: adding the bins' own scores and
            # a learnt correction made the shares worse (6.1 against 7.5 dB on validation)
            return torch.sigmoid(z + out[:, 0]) * (note_share if shares is None else shares)
        u, v = out.unbind(dim=1)
        return torch.sigmoid(z + u) * (_share_within(a + v, same) if shares is None else shares)


def _share_within(a: Tensor, same: Tensor) -> Tensor:
    """Softmax of ``a`` ``(P, F, T)`` over each performer's group (``same`` ``(P, P)``)."""
    e = (a - a.amax(dim=0, keepdim=True)).exp()
    return e / torch.einsum("pq,qft->pft", same, e).clamp_min(1e-30)
