"""The spatial cue: steering vectors, beam scores, the channel-order check, the fusion head."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers.models import tiny_net

from pcsep_cli.errors import ModelError
from pcsep_cli.io.mics import PATTERNS
from pcsep_cli.nets.model import SeparatorConfig, load_config
from pcsep_cli.nets.spatial import (
    SpatialConfig,
    SpatialFusion,
    _em_step,
    _inv,
    channel_order_check,
    class_shares,
    covariance_shares,
    diffuse_coherence,
    note_factors,
    note_scores,
    spatial_inputs,
    spatial_scores,
    steering,
)
from pcsep_cli.nets.stft import StftConfig, istft, stft

SR = 11025
CFG = StftConfig()
FREQS = np.arange(CFG.bins) * SR / CFG.n_fft


def _delayed(signal: np.ndarray, seconds: float, gain: float = 1.0) -> np.ndarray:
    """``signal`` delayed by a fraction of a sample (in the frequency domain)."""
    n = len(signal)
    spec = np.fft.rfft(signal, 2 * n)
    f = np.fft.rfftfreq(2 * n, 1 / SR)
    return gain * np.fft.irfft(spec * np.exp(-2j * np.pi * f * seconds), 2 * n)[:n]


def _record(signals, sources, mics, directions=None, patterns=None) -> np.ndarray:
    """Free-field recording: each source reaches each microphone delayed and attenuated."""
    mics = np.asarray(mics, dtype=np.float64)
    out = np.zeros((len(mics), len(signals[0])))
    for sig, src in zip(signals, sources, strict=True):
        for m, pos in enumerate(mics):
            d = float(np.linalg.norm(np.asarray(src) - pos))
            gain = 1.0 / d
            if patterns is not None:
                a = PATTERNS[patterns[m]]
                gain *= a + (1 - a) * float(np.dot(directions[m], (np.asarray(src) - pos) / d))
            out[m] += _delayed(sig, d / 343.0, gain)
    return out.astype(np.float32)


def _noise(seed: int, seconds: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=int(SR * seconds))


PAIR = [[-0.3, 0.0, 1.5], [0.3, 0.0, 1.5]]
LEFT, RIGHT = [-1.5, 3.0, 1.2], [1.5, 3.0, 1.2]


def test_steering_is_unit_length_and_delays_as_the_geometry_says():
    a = steering(np.array([LEFT]), np.array(PAIR), None, np.ones(2), FREQS).numpy()
    assert a.shape == (1, 2, CFG.bins)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    d = np.linalg.norm(np.array(LEFT) - np.array(PAIR), axis=1)
    k = 40
    measured = np.angle(a[0, 1, k] / a[0, 0, k])
    expected = np.angle(np.exp(-2j * np.pi * FREQS[k] * (d[1] - d[0]) / 343.0))
    assert measured == pytest.approx(expected, abs=1e-4)


def test_a_source_scores_highest_at_its_own_place():
    x = _record([_noise(1)], [LEFT], PAIR)
    spec = stft(torch.from_numpy(x), CFG)
    a = steering(np.array([LEFT, RIGHT]), np.array(PAIR), None, np.ones(2), FREQS)
    s = spatial_scores(spec, a)
    band = (FREQS > 200) & (FREQS < 4000)
    own, other = s[0, band].mean().item(), s[1, band].mean().item()
    assert own > 0.95
    assert own - other > 0.3


def test_coincident_cardioids_tell_sides_by_level_alone():
    """XY: both capsules at one point, so only the pattern tells left from right."""
    c = np.sqrt(0.5)
    directions = np.array([[-c, c, 0.0], [c, c, 0.0]])  # left capsule first
    mics = [[0.0, 0.0, 1.5], [0.0, 0.0, 1.5]]
    x = _record([_noise(2)], [LEFT], mics, directions, ["cardioid", "cardioid"])
    assert np.abs(x[0]).mean() > 1.3 * np.abs(x[1]).mean()  # 0.97 against 0.66
    spec = stft(torch.from_numpy(x), CFG)
    a = steering(np.array([LEFT, RIGHT]), np.array(mics), directions, np.array([0.5, 0.5]), FREQS)
    s = spatial_scores(spec, a)
    assert s[0].mean().item() > 0.99
    assert s[0].mean().item() > s[1].mean().item() + 0.1  # weaker than time differences


def test_channel_order_check_finds_a_swapped_pair():
    x = _record([_noise(3), _noise(4)], [LEFT, RIGHT], PAIR)
    spec = stft(torch.from_numpy(x), CFG)
    one = stft(torch.from_numpy(_record([_noise(3)], [LEFT], PAIR)), CFG).abs().mean(0)
    two = stft(torch.from_numpy(_record([_noise(4)], [RIGHT], PAIR)), CFG).abs().mean(0)
    weights = torch.stack([one, two]) / (one + two + 1e-9)
    # Uneven weights, as two instruments' masks are: the left one owns the low band.
    weights[0, : CFG.bins // 4] = 1.0
    weights[1, : CFG.bins // 4] = 0.0
    a = steering(np.array([LEFT, RIGHT]), np.array(PAIR), None, np.ones(2), FREQS)
    right = channel_order_check(spec, a, FREQS, weights)
    assert right["best_order"] == [0, 1]
    assert right["best_score"] == pytest.approx(right["score"])
    swapped = channel_order_check(spec.flip(0), a, FREQS, weights)
    assert swapped["best_order"] == [1, 0]
    assert swapped["best_score"] - swapped["score"] > 0.05


def test_channel_order_check_reads_a_long_block_at_a_few_hundred_frames_and_still_finds_a_swap():
    centre = [0.0, 3.0, 1.2]  # on the pair's axis: a swap moves only the left one (to RIGHT)
    x = _record([_noise(7, 12.0), _noise(8, 12.0)], [LEFT, centre], PAIR)
    spec = stft(torch.from_numpy(x), CFG)
    assert spec.shape[-1] > 2 * 256
    a = steering(np.array([LEFT, centre]), np.array(PAIR), None, np.ones(2), FREQS)
    right = channel_order_check(spec, a, FREQS)
    swapped = channel_order_check(spec.flip(0), a, FREQS)
    assert right["best_order"] == [0, 1] and swapped["best_order"] == [1, 0]
    assert swapped["best_score"] - swapped["score"] > 0.05


def test_fusion_starts_as_the_mono_mask_split_by_place_within_a_class():
    fusion = SpatialFusion(SpatialConfig(enabled=True, hidden=4), bins=8)
    g = torch.Generator().manual_seed(0)
    z = torch.randn(3, 8, 5, generator=g)
    s = torch.rand(3, 8, 5, generator=g)
    groups = torch.tensor([2, 2, 5])  # two violins and a cello
    masks = fusion(z, s, groups, torch.zeros(8, 5))
    kappa = fusion.log_kappa.exp()
    share = torch.softmax(kappa * s[:2], dim=0)
    torch.testing.assert_close(masks[:2], torch.sigmoid(z[:2]) * share)
    torch.testing.assert_close(masks[2], torch.sigmoid(z[2]))  # alone in its class


def test_fusion_head_gets_gradients_and_changes_the_masks():
    fusion = SpatialFusion(SpatialConfig(enabled=True, hidden=4), bins=8)
    z, s = torch.zeros(2, 8, 6), torch.rand(2, 8, 6)
    groups = torch.tensor([1, 1])
    before = fusion(z, s, groups, torch.zeros(8, 6)).detach()
    fusion(z, s, groups, torch.zeros(8, 6)).sum().backward()
    assert fusion.head[-1].weight.grad is not None
    assert fusion.head[-1].weight.grad.abs().sum() > 0
    with torch.no_grad():
        fusion.head[-1].bias.fill_(1.0)
    assert not torch.allclose(before, fusion(z, s, groups, torch.zeros(8, 6)))


def test_mono_config_has_no_spatial_key_and_a_spatial_one_round_trips(tmp_path):
    net = tiny_net()
    assert "spatial" not in net.config.to_dict()
    assert not net.accepts_microphones
    cfg = SeparatorConfig.from_dict(
        {**net.config.to_dict(), "spatial": {**SpatialConfig().__dict__, "enabled": True}}
    )
    assert cfg.spatial.enabled
    out = tmp_path / "m"
    out.mkdir()
    (out / "config.json").write_text(json.dumps(cfg.to_dict()))
    assert load_config(out).spatial == cfg.spatial


def test_unknown_or_bad_spatial_fields_are_refused():
    base = tiny_net().config.to_dict()
    with pytest.raises(ModelError, match="spatial.beams"):
        SeparatorConfig.from_dict({**base, "spatial": {"enabled": True, "beams": 3}})
    bad = {**SpatialConfig().__dict__, "enabled": True, "speed_of_sound": 34300.0}
    with pytest.raises((ModelError, ValueError), match="speed_of_sound"):
        SeparatorConfig.from_dict({**base, "spatial": bad})


def _two_notes(frames: int = 60) -> tuple[torch.Tensor, np.ndarray]:
    """A magnitude of two harmonic notes (A: 4 harmonics from bin 10, B: from bin 13) that
    overlap in time, and which note holds most of each bin ``(F, T)`` (0 A, 1 B, -1 none)."""
    mag = torch.full((80, frames), 1e-3)
    owner = -np.ones((80, frames), dtype=np.int64)
    for note, (f0, on) in enumerate(((10, slice(0, 40)), (13, slice(20, 60)))):
        for h in range(1, 5):
            mag[f0 * h, on] += 1.0 / h
            owner[f0 * h, on] = note
    return mag, owner


def test_note_factors_fit_the_mixture_and_are_the_same_every_time():
    mag, _ = _two_notes()
    w, h = note_factors(mag, 4)
    assert w.shape == (80, 4) and h.shape == (4, 60) and (w >= 0).all() and (h >= 0).all()
    fit = ((w @ h) - mag).abs().sum() / mag.sum()
    start = (note_factors(mag, 4, iterations=0)[0] @ note_factors(mag, 4, iterations=0)[1]) - mag
    assert fit < 0.1 < start.abs().sum() / mag.sum()
    w2, h2 = note_factors(mag, 4)
    assert torch.equal(w, w2) and torch.equal(h, h2)


def test_note_scores_give_the_bins_of_a_note_the_place_most_of_its_bins_say():
    """Player 0 plays note A, player 1 note B; a third of each note's bins (the room's doing)
    point to the wrong player. Pooled over the note model, nine in ten or more point right."""
    mag, owner = _two_notes()
    g = torch.Generator().manual_seed(0)
    right = torch.from_numpy(owner)
    lie = torch.rand(mag.shape, generator=g) < 0.33
    says = torch.where(lie, 1 - right, right)  # the player each bin's channels point to
    scores = torch.stack([(says == 0).float(), (says == 1).float()]) * 0.6 + 0.2
    sounding = owner >= 0
    raw_right = (scores.argmax(0).numpy() == owner)[sounding].mean()
    pooled = note_scores(scores, note_factors(mag, 4))
    assert pooled.shape == scores.shape and (pooled >= 0).all() and (pooled <= 1).all()
    pooled_right = (pooled.argmax(0).numpy() == owner)[sounding].mean()
    assert raw_right < 0.75 and pooled_right > 0.9


def test_a_head_without_notes_reads_no_note_scores_and_one_with_them_needs_them():
    spec = torch.randn(2, 8, 30, dtype=torch.complex64)
    a = steering(np.array([LEFT, RIGHT]), np.array(PAIR), None, np.ones(2), FREQS[:8])
    mono = spec.mean(dim=0).abs()
    scores, notes = spatial_inputs(spec, mono, a, SpatialConfig(enabled=True))
    assert notes is None and torch.equal(scores, spatial_scores(spec, a))
    cfg = SpatialConfig(enabled=True, hidden=4, notes=3)
    scores, notes = spatial_inputs(spec, mono, a, cfg)
    assert notes is not None and notes.shape == scores.shape
    fusion = SpatialFusion(cfg, bins=8)
    groups = torch.tensor([1, 1])
    masks = fusion(torch.zeros(2, 8, 30), scores, groups, torch.zeros(8, 30), notes)
    # The notes alone split a class (the bins' own scores only inform the mask); the head's
    # correction starts at zero.
    torch.testing.assert_close(masks, 0.5 * torch.softmax(fusion.log_note_kappa.exp() * notes, 0))
    with pytest.raises(ValueError, match="note"):
        fusion(torch.zeros(2, 8, 30), scores, groups, torch.zeros(8, 30))


def test_notes_are_written_only_when_used_and_an_older_spatial_config_reads_as_none(tmp_path):
    base = tiny_net().config.to_dict()
    older = {k: v for k, v in {**SpatialConfig().__dict__, "enabled": True}.items() if k != "notes"}
    cfg = SeparatorConfig.from_dict({**base, "spatial": older})
    assert cfg.spatial.notes == 0 and "notes" not in cfg.to_dict()["spatial"]
    cfg = SeparatorConfig.from_dict({**base, "spatial": {**older, "notes": 32}})
    assert cfg.to_dict()["spatial"]["notes"] == 32
    with pytest.raises((ModelError, ValueError), match="notes"):
        SeparatorConfig.from_dict({**base, "spatial": {**older, "notes": 1000}})


def _hermitian(seed: int, m: int, batch: tuple[int, ...]) -> torch.Tensor:
    """Random Hermitian positive definite matrices, stored first: ``(m, m, *batch)``."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn((m, m, *batch), dtype=torch.complex128, generator=g)
    eye = torch.eye(m, dtype=a.dtype).reshape((m, m) + (1,) * len(batch))
    return torch.einsum("ik...,jk...->ij...", a, a.conj()) + 0.5 * eye


@pytest.mark.parametrize("m", [2, 3, 4, 8])
def test_small_matrix_inverse_matches_torch(m):
    a = _hermitian(m, m, (5, 7))
    got = _inv(a).permute(2, 3, 0, 1)
    np.testing.assert_allclose(got, torch.linalg.inv(a.permute(2, 3, 0, 1)), atol=1e-9)


def test_em_step_shortcut_equals_the_textbook_updates():
    """The update without per-image matrices (_em_step) against Duong et al.'s E and M steps
    written out in full: posterior second moments, v = tr(R^-1 S) / M, R = mean of S / v."""
    m, j, f, t = 3, 2, 4, 6
    g = torch.Generator().manual_seed(1)
    x = torch.randn(m, f, t, dtype=torch.complex128, generator=g)
    r = _hermitian(2, m, (j, f))
    r0 = _hermitian(3, m, (j, f))
    v = torch.rand(j, f, t, dtype=torch.float64, generator=g) + 0.1
    r_new, v_new = _em_step(x, r, v, 1e-9, r0)
    # textbook, matrices last
    rl, xl = r.permute(2, 3, 0, 1), x.permute(1, 2, 0)  # (J, F, M, M), (F, T, M)
    cov = v[..., None, None] * rl[:, :, None]  # (J, F, T, M, M)
    gain = cov @ torch.linalg.inv(cov.sum(0))[None]
    c = (gain @ xl[None, ..., None])[..., 0]
    s = c[..., :, None] * c[..., None, :].conj() + cov - gain @ cov
    v_ref = torch.einsum("jfmn,jftnm->jft", torch.linalg.inv(rl), s).real / m
    r_ref = ((s / v_ref[..., None, None]).sum(2) + r0.permute(2, 3, 0, 1)) / (t + 1)
    r_ref = r_ref * (m / torch.diagonal(r_ref, dim1=-2, dim2=-1).real.sum(-1))[..., None, None]
    np.testing.assert_allclose(v_new, v_ref, rtol=1e-8)
    np.testing.assert_allclose(r_new.permute(2, 3, 0, 1), r_ref, rtol=1e-7, atol=1e-10)


def _notes(seed: int, n: int) -> np.ndarray:
    """A player: a quarter-second harmonic note after another, at random pitches and levels."""
    r = np.random.default_rng(seed)
    out, step = np.zeros(n), SR // 4
    t = np.arange(step) / SR
    for k in range(0, n - step, step):
        f0 = 110 * 2 ** (r.integers(0, 36) / 12)
        harmonics = [
            np.sin(2 * np.pi * h * f0 * t + 6.28 * r.random()) / h
            for h in range(1, 12)
            if h * f0 < 5000
        ]
        out[k : k + step] += np.sum(harmonics, axis=0) * np.hanning(step) * (0.3 + r.random())
    return out


def test_covariance_shares_split_two_players_in_a_room_by_where_they_stand():
    """Two players in a reverberant room (pyroomacoustics, RT60 0.2 s) heard by a spaced pair:
    the shares, applied to the mono mix, recover each player (> 6 dB SDRi; an even split gives
    none), sum to one, and come out the same every time."""
    import pyroomacoustics as pra

    n = 3 * SR
    room_dim = [7.0, 6.0, 4.0]
    absorption, order = pra.inverse_sabine(0.2, room_dim)
    shift = np.array([3.5, 0.5, 0.0])  # the test's frame -> the room's corner
    images = []
    for seed, src in ((11, LEFT), (12, RIGHT)):
        room = pra.ShoeBox(room_dim, fs=SR, materials=pra.Material(absorption), max_order=order)
        room.add_source(np.array(src) + shift, signal=_notes(seed, n))
        room.add_microphone_array(pra.MicrophoneArray((np.array(PAIR) + shift).T, SR))
        room.simulate()
        images.append(room.mic_array.signals[:, :n])
    images = np.stack(images).astype(np.float32)  # (P, M, n)
    spec = stft(torch.from_numpy(images.sum(0)), CFG)
    a = steering(np.array([LEFT, RIGHT]), np.array(PAIR), None, np.ones(2), FREQS)
    coh = diffuse_coherence(np.array(PAIR), FREQS, 343.0)
    shares = covariance_shares(spec, a, coh, 30)
    assert shares.shape == (2, CFG.bins, spec.shape[-1])
    assert torch.allclose(shares.sum(0), torch.ones(()), atol=1e-5)
    assert torch.equal(shares, covariance_shares(spec, a, coh, 30))
    est = istft(shares * spec.mean(0)[None], CFG, length=n).numpy()
    ref, mix = images.mean(1), images.sum(0).mean(0)

    def sdr(r: np.ndarray, e: np.ndarray) -> float:
        return float(10 * np.log10((r**2).sum() / ((r - e) ** 2).sum()))

    gains = [sdr(ref[i], est[i]) - sdr(ref[i], mix) for i in range(2)]
    assert min(gains) > 6.0, gains


def test_class_shares_leave_a_lone_player_whole_and_split_a_pair():
    g = torch.Generator().manual_seed(2)
    spec = torch.randn(2, CFG.bins, 20, dtype=torch.complex64, generator=g)
    a = steering(np.array([LEFT, RIGHT, [0.0, 4.0, 1.2]]), np.array(PAIR), None, np.ones(2), FREQS)
    coh = diffuse_coherence(np.array(PAIR), FREQS, 343.0)
    masks = torch.rand(3, CFG.bins, 20, generator=g)
    shares = class_shares(spec, masks, a, torch.tensor([4, 1, 4]), coh, 5)
    assert torch.equal(shares[1], torch.ones_like(shares[1]))
    assert torch.allclose(shares[0] + shares[2], torch.ones(()), atol=1e-5)
    assert 0.05 < shares[0].mean().item() < 0.95


def test_covariance_is_written_only_when_used_and_reaches_the_masks(tmp_path):
    base = tiny_net().config.to_dict()
    older = {
        k: v
        for k, v in {**SpatialConfig().__dict__, "enabled": True}.items()
        if k not in ("notes", "covariance")
    }
    cfg = SeparatorConfig.from_dict({**base, "spatial": older})
    assert cfg.spatial.covariance == 0 and "covariance" not in cfg.to_dict()["spatial"]
    cfg = SeparatorConfig.from_dict({**base, "spatial": {**older, "covariance": 30}})
    assert cfg.to_dict()["spatial"]["covariance"] == 30
    with pytest.raises((ModelError, ValueError), match="covariance"):
        SeparatorConfig.from_dict({**base, "spatial": {**older, "covariance": -1}})
