"""The dataset writer end to end: real geometry, music21, FluidSynth and pyroomacoustics.

One small dataset (5 scenes of 2 performers cycling through all 10 classes, 3 solo clips,
2.5 s at 16 kHz, Bach chorales only so that parsing stays fast) is written once per module and
checked from every side; determinism, parallel workers and resuming write a few more.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pcsep_cli.errors import DatasetError
from pcsep_cli.io.pointcloud import read_cloud
from pcsep_cli.synth import corpus
from pcsep_cli.synth.dataset import split_sequence, write_dataset
from pcsep_cli.synth.scene import CLASSES
from pcsep_cli.synth.settings import BODY_IDS, SPLITS

SR = 16000
N = 5
SETTINGS = dict(
    seed=7,
    performers=(2, 2),
    duration_s=2.5,
    sample_rate=SR,
    mics="stereo",
    split_fractions=(0.4, 0.3, 0.3),
    distractor_prob=0.6,
    cycle_instruments=True,
    pieces=[p for p in corpus.corpus_pieces() if p.startswith("bach/bwv")],
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, object, list[tuple[int, int]]]:
    root = tmp_path_factory.mktemp("synth") / "data"
    calls: list[tuple[int, int]] = []
    summary = write_dataset(
        root,
        examples=N,
        solo_pool=3,
        progress=lambda p: calls.append((p.done, p.total)),
        **SETTINGS,
    )
    return root, summary, calls


def _metas(root: Path) -> list[tuple[Path, dict]]:
    found = [(p.parent, json.loads(p.read_text())) for p in root.glob("*/0*/meta.json")]
    return sorted(found, key=lambda item: item[1]["index"])


def _read(path: Path) -> np.ndarray:
    data, rate = sf.read(path, dtype="float64", always_2d=True)
    assert rate == SR
    return data.T


def test_layout_summary_and_progress(dataset) -> None:
    root, summary, calls = dataset
    assert summary.written == N and summary.skipped == 0
    assert summary.pool_written == 3
    assert summary.examples == {s: split_sequence(N, (0.4, 0.3, 0.3)).count(s) for s in SPLITS}
    assert calls[-1] == (N + 1, N + 1)  # 5 scenes + 1 pool batch
    manifest = json.loads((root / "dataset.json").read_text())
    assert manifest["settings"]["seed"] == 7 and manifest["classes"] == list(CLASSES)
    metas = _metas(root)
    assert [m["index"] for _, m in metas] == list(range(N))
    for folder, meta in metas:
        assert folder.parent.name == meta["split"] and folder.name == f"{meta['index']:06d}"
        for name in ("scene.ply", "labels.npy", "mixture.wav"):
            assert (folder / name).is_file()
        assert not list(folder.rglob(".*pcsep-tmp*"))


def test_meta_has_the_design_fields(dataset) -> None:
    for folder, meta in _metas(dataset[0]):
        assert meta["sample_rate"] == SR and meta["channels"] == 2
        assert len(meta["microphones"]) == 2 and all(len(m) == 3 for m in meta["microphones"])
        assert "music21 corpus bach/" in meta["source"]
        assert len(meta["performers"]) == 2
        for p in meta["performers"]:
            assert p["instrument"] in CLASSES and len(p["position"]) == 3
            assert p["stem"] == f"stems/{p['name']}.wav" and (folder / p["stem"]).is_file()
        for d in meta["distractors"]:
            assert d["kind"] in ("conductor", "chair", "music_stand") and len(d["position"]) == 3
        room = meta["room"]
        local = np.array(meta["microphones"]) - room["origin"]
        assert ((local > 0) & (local < room["dims"])).all()
        assert 0.05 < room["rt60_measured"] < 3.0


def test_mixture_is_the_sum_of_the_stems(dataset) -> None:
    for folder, meta in _metas(dataset[0]):
        mixture = _read(folder / "mixture.wav")
        stems = [_read(folder / p["stem"]) for p in meta["performers"]]
        assert mixture.shape == (2, int(2.5 * SR))
        assert all(s.shape == mixture.shape for s in stems)
        assert np.abs(mixture - np.sum(stems, axis=0)).max() <= 1e-5
        assert 0.2 < np.abs(mixture).max() <= 0.9
        # Every stem is music, not silence.
        assert all(np.sqrt(np.mean(s**2)) > 1e-3 for s in stems)


def test_point_counts_and_labels(dataset) -> None:
    for folder, meta in _metas(dataset[0]):
        cloud = read_cloud(folder / "scene.ply")
        labels = np.load(folder / "labels.npy")
        assert cloud.num_points == meta["points"] == len(labels)
        assert cloud.rgb is not None
        for entry in meta["performers"] + meta["distractors"]:
            assert entry["points"] == int((labels == entry["object"]).sum()) > 50
            # Each object's points gather around its recorded position.
            pts = cloud.xyz[labels == entry["object"]]
            assert np.linalg.norm(np.median(pts[:, :2], 0) - entry["position"][:2]) < 1.0


def test_every_class_appears(dataset) -> None:
    seen = {p["instrument"] for _, m in _metas(dataset[0]) for p in m["performers"]}
    assert seen == set(CLASSES)


def test_splits_share_no_piece_and_no_body(dataset) -> None:
    root = dataset[0]
    pieces: dict[str, set[str]] = {s: set() for s in SPLITS}
    bodies: dict[str, set[int]] = {s: set() for s in SPLITS}
    metas = [m for _, m in _metas(root)]
    metas += [json.loads(p.read_text()) for p in root.glob("pool/*/*/meta.json")]
    for meta in metas:
        split = meta["split"]
        assert corpus.piece_split(meta["piece"], (0.4, 0.3, 0.3)) == split
        pieces[split].add(meta["piece"])
        ids = [p["body_id"] for p in meta.get("performers", [])] + (
            [meta["body_id"]] if "body_id" in meta else []
        )
        for body in ids:
            low, high = BODY_IDS[split]
            assert low <= body < high
            bodies[split].add(body)
    assert {s for s in SPLITS if pieces[s]} == set(SPLITS)
    for a in SPLITS:
        for b in SPLITS:
            if a < b:
                assert not pieces[a] & pieces[b] and not bodies[a] & bodies[b]


def test_solo_pool(dataset) -> None:
    root = dataset[0]
    found = sorted(root.glob("pool/*/*/meta.json"))
    assert len(found) == 3
    for path in found:
        meta = json.loads(path.read_text())
        assert meta["instrument"] == CLASSES[meta["index"] % len(CLASSES)]
        cloud = read_cloud(path.parent / "cloud.ply")
        assert cloud.num_points == meta["points"] > 100
        audio = _read(path.parent / "audio.wav")
        assert audio.shape == (2, int(2.5 * SR))
        rms_db = 20 * np.log10(np.sqrt(np.mean(audio**2)))
        assert rms_db == pytest.approx(-23.0, abs=0.01)
        assert {"body_id", "piece", "part", "room", "microphones"} <= set(meta)


def _same_file(a: Path, b: Path) -> bool:
    """Same bytes; for WAV, same format and samples (libsndfile stamps float WAVs' PEAK chunk
    with the time of writing, so their bytes differ by that timestamp)."""
    if a.suffix != ".wav":
        return a.read_bytes() == b.read_bytes()
    ia, ib = sf.info(a), sf.info(b)
    same_format = (ia.subtype, ia.samplerate, ia.channels) == (
        ib.subtype,
        ib.samplerate,
        ib.channels,
    )
    return same_format and np.array_equal(sf.read(a)[0], sf.read(b)[0])


def test_same_seed_same_data_with_parallel_workers(dataset, tmp_path) -> None:
    root = dataset[0]
    again = tmp_path / "again"
    write_dataset(again, examples=2, jobs=2, **SETTINGS)
    for folder, meta in _metas(root)[:2]:
        twin = again / meta["split"] / folder.name
        for name in ["mixture.wav", "scene.ply", "labels.npy", "meta.json"] + [
            p["stem"] for p in meta["performers"]
        ]:
            assert _same_file(twin / name, folder / name), name
    other = tmp_path / "other"
    write_dataset(other, examples=1, **{**SETTINGS, "seed": 8})
    first = _metas(root)[0][0]
    twin = other / first.parent.name / first.name
    assert not _same_file(twin / "mixture.wav", first / "mixture.wav")
    assert not _same_file(twin / "scene.ply", first / "scene.ply")


def test_resume_skips_finished_examples_and_redoes_broken_ones(dataset, tmp_path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(dataset[0], root)
    broken, meta = _metas(root)[1]
    before = sf.read(broken / "mixture.wav")[0]
    (broken / "meta.json").unlink()
    (broken / "mixture.wav").write_bytes(b"half-written")
    summary = write_dataset(root, examples=N, solo_pool=3, **SETTINGS)
    assert (summary.written, summary.skipped) == (1, N - 1)
    assert (summary.pool_written, summary.pool_skipped) == (0, 3)
    assert np.array_equal(sf.read(broken / "mixture.wav")[0], before)
    assert json.loads((broken / "meta.json").read_text()) == meta


def test_pcm24_keeps_the_sum_exact_to_1e5(tmp_path) -> None:
    write_dataset(tmp_path / "pcm", examples=1, bits="24", **{**SETTINGS, "performers": (3, 3)})
    folder, meta = _metas(tmp_path / "pcm")[0]
    assert sf.info(folder / "mixture.wav").subtype == "PCM_24"
    stems = [_read(folder / p["stem"]) for p in meta["performers"]]
    assert np.abs(_read(folder / "mixture.wav") - np.sum(stems, axis=0)).max() <= 1e-5


def test_refuses_a_folder_with_other_settings_or_other_content(dataset, tmp_path) -> None:
    with pytest.raises(DatasetError, match="other settings.*seed"):
        write_dataset(dataset[0], examples=1, **{**SETTINGS, "seed": 99})
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not empty"):
        write_dataset(tmp_path, examples=1, **SETTINGS)


def test_rejects_bad_arguments(tmp_path) -> None:
    with pytest.raises(ValueError, match="performers"):
        write_dataset(tmp_path / "a", examples=1, **{**SETTINGS, "performers": (0, 3)})
    with pytest.raises(ValueError, match="microphone layout"):
        write_dataset(tmp_path / "b", examples=1, **{**SETTINGS, "mics": "surround"})
    with pytest.raises(ValueError, match="bits"):
        write_dataset(tmp_path / "c", examples=1, bits="16", **SETTINGS)


def test_cloud_scenes_hold_labelled_performers_and_distractors(tmp_path) -> None:
    root = tmp_path / "clouds"
    summary = write_dataset(root, examples=0, cloud_scenes=4, **SETTINGS)
    assert (summary.clouds_written, summary.clouds_skipped) == (4, 0)
    assert summary.clouds == {"train": 2, "val": 1, "test": 1}
    assert json.loads((root / "dataset.json").read_text())["cloud_scenes"] == 4
    found = sorted(root.glob("clouds/*/*/meta.json"))
    assert len(found) == 4 and not list(root.glob("clouds/*/*/*.wav"))
    for path in found:
        meta = json.loads(path.read_text())
        folder = path.parent
        labels = np.load(folder / "labels.npy")
        assert read_cloud(folder / "scene.ply").num_points == len(labels) == meta["points"]
        assert len(meta["performers"]) == 2 and 1 <= len(meta["distractors"]) <= 2
        low, high = BODY_IDS[meta["split"]]
        for obj in meta["performers"] + meta["distractors"]:
            assert int((labels == obj["object"]).sum()) == obj["points"]
        for perf in meta["performers"]:
            assert perf["instrument"] in CLASSES and low <= perf["body_id"] < high
    # Same seed, same scan; a rerun keeps what is finished.
    again = write_dataset(root, examples=0, cloud_scenes=4, **SETTINGS)
    assert (again.clouds_written, again.clouds_skipped) == (0, 4)
    twin = tmp_path / "twin"
    write_dataset(twin, examples=0, cloud_scenes=1, **SETTINGS)
    first = found[[json.loads(p.read_text())["index"] for p in found].index(0)].parent
    copy = twin / "clouds" / first.parent.name / first.name
    assert (copy / "scene.ply").read_bytes() == (first / "scene.ply").read_bytes()
