"""anny bodies holding instruments: determinism, sizes, and where each instrument ends up.

The anny model loads once per test session (``body_model`` is cached); its first build on a
machine takes about 80 s and is cached under ``~/.cache/pcsep/anny``.
Body frame: floor z = 0, the body faces -y, its left is +x.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pcsep_cli.synth import body as B
from pcsep_cli.synth import performers as P
from pcsep_cli.synth.instruments import CLASSES


@pytest.fixture(scope="session")
def model() -> B.BodyModel:
    return B.body_model()


def _performer(label: str, seed: int, **kwargs) -> P.Performer:
    return P.make_performer(np.random.default_rng(seed), label, body_id=100 + seed, **kwargs)


def test_anny_cache_dir_default_and_override(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("ANNY_CACHE_DIR", raising=False)
    assert B.anny_cache_dir() == B.Path.home() / ".cache" / "pcsep" / "anny"
    monkeypatch.setenv("ANNY_CACHE_DIR", str(tmp_path))
    assert B.anny_cache_dir() == tmp_path


def test_uses_the_makehuman_topology(model: B.BodyModel) -> None:
    # anny's own (CC0) mesh, not the non-commercial SMPL-X one (10,475 vertices)
    assert len(model.rest(None)["vertices"]) == 13718
    assert model.faces.shape[1] == 3


def test_fast_rest_model_matches_anny(model: B.BodyModel) -> None:
    m = model.model
    inputs = m.get_tensor_inputs(None, model.phenotype(123), None, None)
    coeffs = m._get_phenotype_blendshape_coefficients(*inputs[1:])
    ours, theirs = B.rest_model(m, coeffs), m.get_rest_model(coeffs)
    for key in ("rest_vertices", "rest_bone_heads", "rest_bone_poses"):
        torch.testing.assert_close(ours[key], theirs[key], atol=1e-9, rtol=0)


def test_statures_are_adult(model: B.BodyModel) -> None:
    heights = np.array([B.stature(b) for b in range(40)])
    assert heights.min() >= 1.5 and heights.max() <= 2.0
    assert heights.std() > 0.05  # bodies differ


def test_body_id_fixes_the_shape_and_only_the_shape(model: B.BodyModel) -> None:
    a = P.make_performer(np.random.default_rng(1), "none", body_id=7, mode="hanging")
    b = P.make_performer(np.random.default_rng(2), "none", body_id=7, mode="hanging")
    c = P.make_performer(np.random.default_rng(1), "none", body_id=8, mode="hanging")
    assert a.body.stature == b.body.stature != c.body.stature
    np.testing.assert_array_equal(model.rest(7)["vertices"], model.rest(7)["vertices"])
    assert not np.allclose(model.rest(7)["vertices"], model.rest(8)["vertices"])
    assert not np.allclose(a.mesh.vertices, b.mesh.vertices)  # pose and clothes from rng


@pytest.mark.parametrize("label", [*CLASSES, "none"])
def test_deterministic_and_plausible(label: str) -> None:
    a, b = _performer(label, 3), _performer(label, 3)
    np.testing.assert_array_equal(a.mesh.vertices, b.mesh.vertices)
    np.testing.assert_array_equal(a.mesh.face_rgb, b.mesh.face_rgb)
    v = a.body.vertices
    assert v[:, 2].min() == pytest.approx(0.0, abs=0.005)  # feet on the floor
    top = v[:, 2].max()
    if a.body.seated:
        assert 0.38 <= a.body.seat_height <= 0.6
        assert 1.0 <= top <= 1.6
    else:
        assert 1.45 <= top <= 2.0
    # the hands got where the instrument wants them (a bassist's bow hand may fall short)
    limit = 0.25 if label == "double_bass" else 0.12
    assert a.params["hand_error_l"] < limit and a.params["hand_error_r"] < limit


def test_cello_endpin_on_the_floor_between_the_knees() -> None:
    for seed in range(4):
        p = _performer("cello", seed)
        assert p.body.seated
        assert p.instrument.vertices[:, 2].min() == pytest.approx(0.0, abs=0.01)
        a = p.body.anchors
        assert a["knee_r"][0] < p.sound[0] < a["knee_l"][0]
        assert p.sound[1] < a["belly"][1]  # in front of the player
        assert 0.0 < p.params["endpin"] <= 0.6


def test_double_bass_stands_on_its_endpin() -> None:
    for seed in range(4):
        p = _performer("double_bass", seed)
        assert not p.body.seated
        assert p.instrument.vertices[:, 2].min() == pytest.approx(0.0, abs=0.01)
        assert p.instrument.vertices[:, 2].max() > 1.55  # scroll about head height


def test_violin_under_the_chin_scroll_forward_left() -> None:
    for seed in range(4):
        p = _performer("violin", seed)
        a = p.body.anchors
        v = p.instrument.vertices
        gap = np.linalg.norm(v - a["jaw_l"], axis=1).min()
        assert gap < 0.04  # the chin rest touches the jaw
        far = v[np.argmax(np.linalg.norm(v[:, :2] - a["jaw_l"][:2], axis=1))]
        assert far[0] > a["jaw_l"][0] or far[1] < a["jaw_l"][1]  # forward or left


def test_flute_level_to_the_right_of_the_head() -> None:
    for seed in range(4):
        p = _performer("flute", seed)
        mouth = p.body.anchors["mouth"]
        v = p.instrument.vertices
        assert v[:, 0].min() < mouth[0] - 0.45  # right = -x
        assert np.ptp(v[:, 2]) < 0.25 and abs(v[:, 2].mean() - mouth[2]) < 0.12
        assert np.linalg.norm(v - mouth, axis=1).min() < 0.04


def test_trumpet_bell_in_front_of_the_mouth() -> None:
    for seed in range(4):
        p = _performer("trumpet", seed)
        mouth = p.body.anchors["mouth"]
        assert p.sound[1] < mouth[1] - 0.35  # forward = -y
        assert abs(p.sound[0] - mouth[0]) < 0.15 and abs(p.sound[2] - mouth[2]) < 0.2


def test_trombone_bell_forward_left_slide_forward() -> None:
    for seed in range(4):
        p = _performer("trombone", seed)
        mouth = p.body.anchors["mouth"]
        assert p.sound[1] < mouth[1] - 0.4 and p.sound[0] > mouth[0] + 0.05
        assert p.instrument.vertices[:, 1].min() < mouth[1] - 0.8  # the slide reaches out


def test_clarinet_points_down_and_forward() -> None:
    for seed in range(4):
        p = _performer("clarinet", seed)
        mouth = p.body.anchors["mouth"]
        drop, ahead = mouth[2] - p.sound[2], mouth[1] - p.sound[1]
        assert 0.4 < drop < 0.7 and 0.15 < ahead < 0.5


def test_saxophone_hangs_in_front_of_the_torso() -> None:
    for seed in range(4):
        p = _performer("saxophone", seed)
        a = p.body.anchors
        v = p.instrument.vertices
        assert np.linalg.norm(v - a["mouth"], axis=1).min() < 0.03
        assert v[:, 1].mean() < a["sternum"][1]  # in front of the chest
        assert v[:, 2].min() < a["sternum"][2] - 0.2  # the bow hangs at about the waist


def test_guitar_on_the_lap_and_piano_at_the_keys() -> None:
    for seed in range(3):
        g = _performer("guitar", seed)
        assert g.body.seated and g.sound[2] > g.body.seat_height
        assert abs(g.sound[1] - g.body.anchors["belly"][1]) < 0.25
        p = _performer("piano", seed)
        assert p.body.seated
        assert p.instrument.vertices[:, 1].max() < p.body.anchors["belly"][1]  # in front
        assert abs(p.body.seat_height + 0.0 - p.furniture.vertices[:, 2].max()) < 1e-9


def test_seating_on_request() -> None:
    assert _performer("violin", 1, seated=True).body.seated
    assert not _performer("violin", 1, seated=False).body.seated
    assert not _performer("double_bass", 1, seated=True).body.seated  # a bassist stands
    assert _performer("none", 1, mode="lap").body.seated
    with pytest.raises(ValueError, match="unknown performer label"):
        _performer("kazoo", 1)
