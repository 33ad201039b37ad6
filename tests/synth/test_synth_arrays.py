"""Array recordings: array geometry, directional microphones, and examples rendered for real
(FluidSynth, pyroomacoustics), short and at 8 kHz."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pcsep_cli.io.mics import parse_microphones
from pcsep_cli.synth import arrays, corpus, room
from pcsep_cli.train.capture import example_microphones

SR = 8000
C = 343.0
CENTRE = np.array([1.0, 2.0, 1.6])
TARGET = np.array([1.0, 6.0, 1.2])  # facing +y: left is -x
FORWARD, LEFT = np.array([0.0, 1.0, 0.0]), np.array([-1.0, 0.0, 0.0])
FAST = dict(
    sample_rate=SR,
    duration_s=1.0,
    sources=("fluidr3",),
    pieces=[p for p in corpus.corpus_pieces() if p.startswith("bach/bwv")],
)


def _read(path: Path) -> np.ndarray:
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    assert rate == SR
    return data.T  # (channels, samples)


def _read_any(path: Path) -> np.ndarray:
    return sf.read(path, dtype="float32", always_2d=True)[0].T


def _assert_left_to_right(meta: dict) -> None:
    """Performers are listed leftmost first as seen from the array (azimuth from its axis)."""
    centre, target = np.array(meta["array"]["centre"]), np.array(meta["array"]["target"])
    forward = (target - centre) * [1, 1, 0]
    left = np.array([-forward[1], forward[0], 0.0])
    rel = np.array([p["source_position"] for p in meta["performers"]]) - centre
    azimuth = np.arctan2(rel @ left, rel @ forward).tolist()
    assert azimuth == sorted(azimuth, reverse=True)


def _degrees(u: np.ndarray, v: np.ndarray) -> float:
    return math.degrees(math.acos(np.clip(u @ v / np.linalg.norm(u) / np.linalg.norm(v), -1, 1)))


@pytest.mark.parametrize(
    ("kind", "spacing", "angle"), [("ortf", 0.17, 55.0), ("nos", 0.30, 45.0), ("xy", 0.0, 45.0)]
)
def test_cardioid_pairs_have_their_spacing_and_angles(kind, spacing, angle) -> None:
    pos, axes, patterns = arrays.draw_array(np.random.default_rng(0), kind, CENTRE, TARGET)
    assert pos.shape == axes.shape == (2, 3) and pos.dtype == axes.dtype == np.float64
    assert patterns == ["cardioid", "cardioid"]
    np.testing.assert_allclose(np.linalg.norm(pos[0] - pos[1]), spacing, atol=1e-9)
    np.testing.assert_allclose(pos.mean(axis=0), CENTRE, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(axes, axis=1), 1.0)
    np.testing.assert_allclose(axes[:, 2], 0.0, atol=1e-12)  # horizontal
    for axis in axes:
        assert _degrees(axis, FORWARD) == pytest.approx(angle)
    # Left first, and the left microphone points left.
    assert pos[0] @ LEFT >= pos[1] @ LEFT and axes[0] @ LEFT > 0 > axes[1] @ LEFT
    if spacing:
        assert pos[0] @ LEFT > pos[1] @ LEFT


def test_spaced_pair_is_two_omnis_left_first() -> None:
    rng = np.random.default_rng(1)
    gaps = []
    for _ in range(50):
        pos, _, patterns = arrays.draw_array(rng, "spaced", CENTRE, TARGET)
        assert patterns == ["omni", "omni"] and pos[0] @ LEFT > pos[1] @ LEFT
        np.testing.assert_allclose(pos[:, 1:], np.tile(CENTRE[1:], (2, 1)))
        gaps.append(np.linalg.norm(pos[0] - pos[1]))
    assert 0.3 <= min(gaps) and max(gaps) <= 1.0 and max(gaps) - min(gaps) > 0.3


@pytest.mark.parametrize(("kind", "n"), [("square", 4), ("circle8", 8)])
def test_circles_are_horizontal_rings_of_omnis(kind, n) -> None:
    rng = np.random.default_rng(2)
    phases = set()
    for _ in range(10):
        pos, _, patterns = arrays.draw_array(rng, kind, CENTRE, TARGET)
        assert pos.shape == (n, 3) and patterns == ["omni"] * n
        np.testing.assert_allclose(pos[:, 2], CENTRE[2])
        rel = pos - CENTRE
        radius = np.linalg.norm(rel, axis=1)
        np.testing.assert_allclose(radius, radius[0])
        assert 0.05 <= radius[0] <= 0.10
        angles = np.arctan2(rel[:, 1], rel[:, 0])
        steps = np.diff(np.unwrap(angles))
        np.testing.assert_allclose(steps, 2 * math.pi / n)
        phases.add(round(float(angles[0]), 3))
    assert len(phases) == 10  # a random rotation


def test_draw_array_rejects_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="unknown array kind"):
        arrays.draw_array(np.random.default_rng(0), "blumlein", CENTRE, TARGET)


def _impulse_recording(kind: str, source: np.ndarray, seed: int):
    """An impulse from ``source`` recorded by a ``kind`` array at CENTRE in a dry-ish room."""
    rng = np.random.default_rng(seed)
    pos, axes, patterns = arrays.draw_array(rng, kind, CENTRE, TARGET)
    space = room.draw_room(rng, np.concatenate([source[None], pos]), rt60_range=(0.2, 0.25))
    dry = np.zeros((1, SR // 2))
    dry[0, 50] = 1.0
    stems, _ = room.record(space, source[None], pos, dry, SR, directions=axes, patterns=patterns)
    return pos, stems[0]


def _lag(a: np.ndarray, b: np.ndarray) -> int:
    """Samples by which ``b`` lags ``a`` (peak of their cross-correlation)."""
    xc = np.correlate(b.astype(np.float64), a.astype(np.float64), mode="full")
    return int(np.argmax(xc)) - (len(a) - 1)


def test_spaced_pair_hears_the_time_difference_of_the_geometry() -> None:
    source = CENTRE + np.array([2.5, 1.5, -0.4])  # ahead, to the right
    pos, stem = _impulse_recording("spaced", source, 3)
    expected = (np.linalg.norm(pos[0] - source) - np.linalg.norm(pos[1] - source)) / C * SR
    assert expected > 4  # the right microphone hears it first, by a measurable lag
    assert abs(_lag(stem[1], stem[0]) - expected) <= 2


@pytest.mark.parametrize("side", [1.0, -1.0])
def test_xy_pair_has_no_delay_and_the_nearer_axis_is_louder(side) -> None:
    a = math.radians(50.0)  # near the left axis (side 1) or the right one (side -1)
    source = CENTRE + 2.0 * (math.cos(a) * FORWARD + side * math.sin(a) * LEFT)
    _, stem = _impulse_recording("xy", source, 4)
    assert _lag(stem[0], stem[1]) == 0
    # pyroomacoustics centres an 81-tap fractional delay filter on the arrival: keep its
    # main lobe, before the first reflection (the floor's, 40 samples later) comes in.
    arrival = 50 + 40 + round(2.0 / C * SR)
    direct = slice(arrival - 8, arrival + 9)
    energy = (stem[:, direct].astype(np.float64) ** 2).sum(axis=1)
    near, far = (0, 1) if side > 0 else (1, 0)
    assert 10 * math.log10(energy[near] / energy[far]) > 3.0


def test_record_directivity_is_a_plus_one_minus_a_cos_theta() -> None:
    # Anechoic (order 0): each coincident microphone hears the direct sound only, weighted by
    # its response at 60 degrees off its axis (signed: a figure-8's rear lobe inverts).
    space = room.Room(np.zeros(3), np.array([8.0, 8.0, 4.0]), dict.fromkeys(
        ("west", "east", "south", "north", "floor", "ceiling"), 0.9), 0.1, 0)  # fmt: skip
    mic = np.array([4.0, 4.0, 2.0])
    patterns = ["omni", "subcardioid", "supercardioid", "hypercardioid", "figure8", "cardioid"]
    axes = np.array([[1.0, 0, 0]] * 5 + [[-1.0, 0, 0]])  # the last one faces away
    theta = math.radians(60.0)
    source = mic + 1.5 * np.array([math.cos(theta), math.sin(theta), 0.0])
    dry = np.zeros((1, 400))
    dry[0, 10] = 1.0
    stems, _ = room.record(
        space, source[None], np.tile(mic, (6, 1)), dry, SR, directions=axes, patterns=patterns
    )
    gain = stems[0].sum(axis=1) / stems[0, 0].sum()
    expected = [a + (1 - a) * math.cos(theta) for a in (1.0, 0.7, 0.37, 0.25, 0.0)]
    expected.append(0.5 - 0.5 * math.cos(theta))
    np.testing.assert_allclose(gain, expected, atol=1e-4)


def test_record_refuses_directional_microphones_without_directions() -> None:
    rng = np.random.default_rng(5)
    pos = np.array([[0.0, 0.0, 1.5], [0.2, 0.0, 1.5]])
    space = room.draw_room(rng, np.concatenate([pos, [[1.0, 1.0, 1.0]]]))
    dry = np.zeros((1, 100))
    with pytest.raises(ValueError, match="need directions"):
        room.record(space, np.array([[1.0, 1.0, 1.0]]), pos, dry, SR, patterns=["cardioid"] * 2)
    with pytest.raises(ValueError, match="unknown pattern"):
        room.record(space, np.array([[1.0, 1.0, 1.0]]), pos, dry, SR, patterns=["shotgun"] * 2)


@pytest.fixture(scope="module")
def violins(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("arrays") / "violins"
    meta = arrays.write_array_example(
        folder, seed=15, index=0, kinds=("ortf",), same_class_prob=1.0, instruments=("violin",),
        **FAST,
    )  # fmt: skip
    return folder, meta


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("arrays") / "data"
    arrays.write_array_dataset(root, seed=5, count=3, split="val", same_class_prob=0.0, **FAST)
    return root


def test_meta_microphones_parse_and_match_the_mixture(violins, dataset) -> None:
    for folder in [violins[0], *sorted((dataset / "val").iterdir())]:
        meta = json.loads((folder / "meta.json").read_text())
        mixture = _read(folder / "mixture.wav")
        assert mixture.shape == (meta["channels"], SR)
        mics = example_microphones(meta, folder, len(mixture))
        assert mics is not None and mics.patterns == tuple(
            parse_microphones(meta["microphones"]).patterns
        )
        assert meta["mic_layout"] in arrays.ARRAYS
        assert meta["distractors"] == [] and meta["split"] in ("train", "val")


def test_stems_sum_to_the_mixture(violins, dataset) -> None:
    for folder in [violins[0], *sorted((dataset / "val").iterdir())]:
        meta = json.loads((folder / "meta.json").read_text())
        stems = np.stack([_read(folder / p["stem"]) for p in meta["performers"]])
        mixture = _read(folder / "mixture.wav")
        np.testing.assert_allclose(stems.sum(axis=0), mixture, atol=1e-6)
        assert np.abs(mixture).max() > 0.1


def test_same_class_performers_are_numbered_left_to_right(violins) -> None:
    folder, meta = violins
    perf = meta["performers"]
    assert meta["same_class"] is True and meta["mic_layout"] == "ortf"
    assert [p["instrument"] for p in perf] == ["violin"] * 3  # seed 15 draws three
    assert [p["name"] for p in perf] == ["violin", "violin_2", "violin_3"]
    assert len({p["part"] for p in perf}) == len(perf)  # a chorale has four parts
    _assert_left_to_right(meta)
    for p in perf:
        floor, src = np.array(p["position"]), np.array(p["source_position"])
        assert floor[2] == 0 and 0.6 <= src[2] <= 1.5
        assert np.linalg.norm(src[:2] - floor[:2]) <= 0.25 + 1e-6
        assert np.linalg.norm(np.array([m["position"] for m in meta["microphones"]]) - src,
                              axis=1).min() >= 0.5  # fmt: skip
    floors = np.array([p["position"] for p in perf])
    gaps = np.linalg.norm(floors[:, None] - floors[None], axis=-1)[np.triu_indices(len(perf), 1)]
    assert gaps.min() >= 0.8 - 1e-6


def test_distinct_class_examples_have_distinct_instruments(dataset) -> None:
    for folder in sorted((dataset / "val").iterdir()):
        meta = json.loads((folder / "meta.json").read_text())
        names = [p["name"] for p in meta["performers"]]
        assert meta["same_class"] is False and 2 <= len(names) <= 4
        assert names == [p["instrument"] for p in meta["performers"]]
        assert len(set(names)) == len(names)
        _assert_left_to_right(meta)


def test_examples_are_deterministic_and_the_dataset_resumes(dataset, tmp_path) -> None:
    again = arrays.write_array_example(
        tmp_path / "again", seed=5, index=1, split="val", same_class_prob=0.0, **FAST
    )
    first = dataset / "val" / "00001"
    assert again == json.loads((first / "meta.json").read_text())
    np.testing.assert_array_equal(
        _read(tmp_path / "again/mixture.wav"), _read(first / "mixture.wav")
    )

    # A finished folder (meta.json) is kept; one without meta.json is written again.
    done = dataset / "val" / "00000"
    stamp = (done / "mixture.wav").stat().st_mtime_ns
    (dataset / "val" / "00002" / "meta.json").unlink()
    folders = arrays.write_array_dataset(
        dataset, seed=5, count=3, split="val", same_class_prob=0.0, **FAST
    )
    assert [f.name for f in folders] == ["00000", "00001", "00002"]
    assert (done / "mixture.wav").stat().st_mtime_ns == stamp
    assert (dataset / "val" / "00002" / "meta.json").is_file()


def test_silent_parts_are_the_ones_below_the_loudest_by_50_db() -> None:
    from pcsep_cli.synth.example import silent_parts

    rng = np.random.default_rng(0)
    dry = rng.normal(0.0, 0.1, (4, 1000)).astype(np.float32)
    dry[1, 200:] = 0.0  # plays only before the clip (the pre-roll)
    dry[2, 200:] *= 10 ** (-60 / 20)  # a sound source with nothing for the pitch: a whisper
    dry[3, 200:] *= 10 ** (-40 / 20)  # quiet, but playing
    assert silent_parts(dry, 200) == [1, 2]
    assert silent_parts(dry, 0) == []  # from the start, the pre-roll counts
    assert silent_parts(dry[[0, 3]], 200) == []


def test_every_performer_sounds_in_the_clip(tmp_path) -> None:
    """This draw's first music left a flute silent (freepats has no sample two octaves up):
    the stem was 90 dB below the other one, and scoring it gave -60 dB SDRi."""
    folder = tmp_path / "ex"
    meta = arrays.write_array_example(
        folder, seed=10002, index=1, split="val", kinds=("spaced", "square"), same_class_prob=1.0
    )
    levels = [p["rms_db"] for p in meta["performers"]]
    assert all(level is not None for level in levels)
    assert max(levels) - min(levels) < 30.0
    for p in meta["performers"]:
        stem = _read_any(folder / p["stem"])
        assert np.sqrt(np.mean(stem**2)) > 1e-3


def test_a_silent_part_draws_the_music_again_and_never_sounding_is_an_error(
    tmp_path, monkeypatch
) -> None:
    """The retry itself, whatever the corpus draws: a first rendering with a silent part is
    drawn again (a second piece), and a part silent in every draw stops with one line."""
    from pcsep_cli.errors import DatasetError
    from pcsep_cli.synth import sources

    real = sources.render
    calls = []

    def first_silent(plays, used, **kw):  # noqa: ANN001, ANN003
        dry = real(plays, used, **kw)
        calls.append(len(plays))
        if len(calls) == 1:
            dry[0] = 0.0
        return dry

    monkeypatch.setattr(sources, "render", first_silent)
    meta = arrays.write_array_example(tmp_path / "a", seed=3, index=0, **FAST)
    assert len(calls) == 2
    assert all(p["rms_db"] is not None for p in meta["performers"])

    monkeypatch.setattr(sources, "render", lambda plays, used, **kw: np.zeros((len(plays), 8)))
    with pytest.raises(DatasetError, match="silent in 8 draws"):
        arrays.write_array_example(tmp_path / "b", seed=3, index=0, **FAST)
