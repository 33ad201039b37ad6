"""``pcsep evaluate`` scores what ``pcsep separate`` gives; scene matching; bootstrap intervals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers.models import save_tiny
from helpers.training import make_dataset
from typer.testing import CliRunner

from pcsep_cli.errors import DatasetError
from pcsep_cli.io.pointcloud import PointCloud, read_cloud
from pcsep_cli.separate import Separator
from pcsep_cli.train.evaluate import evaluate, markdown_tables
from pcsep_cli.train.metrics import bootstrap, bss_eval
from pcsep_cli.train.scene_match import match_nearest, match_scene

MODEL_RATE = 8000  # the data are at 16 kHz: estimates must come back at the input's rate


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("model") / "tiny", sample_rate=MODEL_RATE)


@pytest.fixture(scope="module")
def duet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One example: a violin at x = 0, a cello at x = 2, a chair at (1, 2)."""
    return make_dataset(tmp_path_factory.mktemp("duet"), [["violin", "cello"]], seconds=1.0)


def _files(folder: Path) -> tuple[np.ndarray, int, np.ndarray, dict]:
    """Mixture ``(C, S)``, its rate, stems ``(P, C, S)`` and meta, as a user reads them."""
    mix, sr = sf.read(folder / "mixture.wav", dtype="float32", always_2d=True)
    meta = json.loads((folder / "meta.json").read_text())
    stems = [
        sf.read(folder / p["stem"], dtype="float32", always_2d=True)[0].T
        for p in meta["performers"]
    ]
    return mix.T, sr, np.stack(stems), meta


# -- the path users run -------------------------------------------------------------------------


def test_scores_are_those_of_separators_output_at_the_input_rate(model_dir: Path, duet: Path):
    report = evaluate(model_dir, duet, device="cpu", max_seconds=0)
    folder = duet / "000000"
    mix, sr, stems, meta = _files(folder)
    assert sr == 2 * MODEL_RATE
    # What a user does: one cloud per performer (cut by hand; here by the generator's labels).
    scene = read_cloud(folder / "scene.ply").xyz
    labels = np.load(folder / "labels.npy")
    clouds = [PointCloud(scene[labels == p["object"]]) for p in meta["performers"]]
    sep = Separator.from_pretrained(str(model_dir), device="cpu")
    result = sep.separate(mix, sr, clouds)
    assert result.stems.shape == stems.shape  # every performer got a stem, at 16 kHz
    want = bss_eval(stems, result.stems)
    base = bss_eval(stems, np.repeat(mix[None], 2, axis=0))
    got = report["per_instrument"]
    for i, inst in enumerate(("violin", "cello")):
        assert got[inst]["sdr"]["mean"] == pytest.approx(want["sdr"][i], abs=1e-6)
        assert got[inst]["sdri"]["mean"] == pytest.approx(want["sdr"][i] - base["sdr"][i], abs=1e-6)
    assert report["overall"]["si_sdr"]["mean"] == pytest.approx(want["si_sdr"].mean(), abs=1e-6)
    # The label reference goes through the Separator's label mode.
    labelled = sep.separate(mix, sr, instruments=["violin", "cello"]).stems
    lab = report["baselines"]["labels"]["per_instrument"]["cello"]["sdr"]["mean"]
    assert lab == pytest.approx(bss_eval(stems, labelled)["sdr"][1], abs=1e-6)
    # Separated stems differ from the mixture: the model's figures are not the mixture's.
    mixture = report["baselines"]["mixture"]["overall"]
    assert report["overall"]["sdr"]["mean"] != pytest.approx(mixture["sdr"]["mean"], abs=1e-4)
    assert mixture["sdri"]["mean"] == 0.0


def test_max_seconds_scores_the_start_only(model_dir: Path, duet: Path):
    short = evaluate(model_dir, duet, device="cpu", max_seconds=0.5)
    mix, sr, stems, _ = _files(duet / "000000")
    half = sr // 2
    base = bss_eval(stems[..., :half], np.repeat(mix[None, :, :half], 2, axis=0))
    got = short["baselines"]["mixture"]["per_instrument"]["violin"]["sdr"]["mean"]
    assert got == pytest.approx(base["sdr"][0], abs=1e-6)


# -- the scene step -----------------------------------------------------------------------------


def test_hungarian_matching_finds_the_assignment_greedy_matching_misses():
    performers = np.array([[0.0, 0.0, 0.0], [1.2, 0.0, 0.0]])
    stems = np.array([[0.5, 0.0, 0.0], [-0.3, 0.0, 0.0]])
    # Nearest first would give stem 0 to performer 0 and leave stem 1 1.5 m from performer 1.
    assert match_nearest(stems, performers) == [(0, 1), (1, 0)]
    # Within 0.6 m only one pair can be made: the nearer stem takes performer 0.
    assert match_nearest(stems, performers, radius=0.6) == [(1, 0)]
    assert match_nearest(np.zeros((0, 3)), performers) == []


def test_scene_match_counts_missed_spurious_and_distractor_stems():
    performers = np.array([[0.0, 0.0, 1.0], [3.0, 0.0, 1.0]])
    distractors = np.array([[0.0, 4.0, 0.0], [9.0, 9.0, 0.0]])
    stems = np.array(
        [
            [0.1, 4.2, 0.0],  # on the first distractor
            [0.4, -0.5, 0.0],  # on performer 0 (xy distance 0.64 m, heights ignored)
            [6.0, 6.0, 0.0],  # nowhere
            [0.0, 0.2, 0.0],  # performer 0 again: the nearer one, so this one takes it
        ]
    )
    m = match_scene(stems, performers, distractors)
    assert m.performer_stem == [3, None]
    assert m.detected == 1
    assert m.spurious == [0, 1, 2]
    assert m.distractor_stem == [0, None]
    assert m.distractors_with_stem == 1


def test_scene_mode_scores_a_missed_performer_at_zero_db(
    model_dir: Path, duet: Path, tmp_path: Path
):
    data = tmp_path / "data"
    shutil.copytree(duet, data)
    folder = data / "000000"
    meta = json.loads((folder / "meta.json").read_text())
    # The cello's recorded position 3 m from where it stands: its cluster matches no one.
    meta["performers"][1]["position"] = [2.0, -3.0, 0.0]
    (folder / "meta.json").write_text(json.dumps(meta))
    report = evaluate(model_dir, data, device="cpu", scene=True, max_seconds=0)
    scene = report["scene"]
    assert report["classification"] is None
    assert (scene["performers"], scene["distractors"], scene["scenes"]) == (2, 1, 1)
    # The scene step finds violin, cello and chair; the tiny model calls none of them `none`.
    assert scene["stems"] == 3
    assert scene["detected"]["mean"] == 0.5
    assert scene["spurious"]["count"] == 2 and scene["spurious"]["mean"] == 1.0
    assert scene["distractors_with_stem"]["count"] == 1
    assert report["per_instrument"]["cello"]["sdri"]["mean"] == 0.0
    # The violin's figure is that of the stem `pcsep separate AUDIO scene.ply` gives there.
    mix, sr, stems, _ = _files(folder)
    sep = Separator.from_pretrained(str(model_dir), device="cpu")
    result = sep.separate(mix, sr, read_cloud(folder / "scene.ply"))
    dets = [d for d in result.detections if d.separated]
    violin = int(np.argmin([np.hypot(*d.position[:2]) for d in dets]))
    est = np.stack([result.stems[violin], mix])
    assert report["per_instrument"]["violin"]["sdr"]["mean"] == pytest.approx(
        bss_eval(stems, est)["sdr"][0], abs=1e-6
    )
    assert scene["classified"]["mean"] == (0.5 if dets[violin].instrument == "violin" else 0.0)
    table = markdown_tables(report)
    assert "| detected (performers with a stem) | 50.0 [50.0, 50.0] | 2 |" in table
    assert "spurious stems (2)" in table


# -- intervals ----------------------------------------------------------------------------------


def test_bootstrap_covers_the_mean_and_is_deterministic():
    rng = np.random.default_rng(3)
    counts = rng.integers(2, 5, 30)
    sums = np.array([rng.normal(4.0, 2.0, c).sum() for c in counts])
    fig = bootstrap(sums, counts, seed=7)
    assert fig["n"] == counts.sum()
    assert fig["mean"] == pytest.approx(sums.sum() / counts.sum())
    lo, hi = fig["ci95"]
    assert lo < fig["mean"] < hi
    assert bootstrap(sums, counts, seed=7) == fig
    assert bootstrap(sums, counts, seed=8)["ci95"] != fig["ci95"]


def test_bootstrap_interval_shrinks_with_more_scenes():
    def width(scenes: int) -> float:
        rng = np.random.default_rng(scenes)
        sums = rng.normal(5.0, 3.0, scenes)
        lo, hi = bootstrap(sums, np.ones(scenes))["ci95"]
        return hi - lo

    assert width(400) < 0.5 * width(25)


def test_bootstrap_resamples_scenes_not_stems():
    """Ten identical stems per scene carry one scene's worth of evidence, not ten."""
    rng = np.random.default_rng(0)
    per_scene = rng.normal(0.0, 1.0, 20)
    one = bootstrap(per_scene, np.ones(20))
    ten = bootstrap(10 * per_scene, np.full(20, 10))
    assert ten["ci95"] == pytest.approx(one["ci95"])
    assert ten["n"] == 200
    empty = bootstrap(np.zeros(3), np.zeros(3))
    assert empty["n"] == 0 and np.isnan(empty["mean"])


def test_report_gives_every_figure_an_interval_and_sample_sizes(model_dir: Path, tmp_path: Path):
    data = make_dataset(tmp_path / "data", [["violin", "cello"], ["cello", "flute", "violin"]])
    report = evaluate(model_dir, data, device="cpu", max_seconds=0.5, resamples=200)
    assert (report["examples"], report["stems"]) == (2, 5)
    assert report["bootstrap"] == {"resamples": 200, "seed": 0}
    blocks = [report["overall"], *report["by_performers"].values()]
    blocks += [*report["per_instrument"].values(), report["baselines"]["oracle_irm"]["overall"]]
    for block in blocks:
        for m in ("sdr", "sir", "sar", "si_sdr", "sdri", "si_sdri"):
            lo, hi = block[m]["ci95"]
            assert lo <= block[m]["mean"] <= hi
    assert report["per_instrument"]["cello"]["count"] == 2
    assert report["by_performers"]["3-4"]["scenes"] == 1
    cls = report["classification"]
    assert cls["performers"] == 5 and cls["accuracy"]["n"] == 5
    assert evaluate(model_dir, data, device="cpu", max_seconds=0.5, resamples=200) == report
    json.dumps(report)
    table = markdown_tables(report)
    assert "5 stems in 2 scenes" in table
    assert "| 3-4 | 3 | 1 |" in table


def test_a_solo_is_scored_in_its_own_group_not_with_the_duets(model_dir: Path, tmp_path: Path):
    data = make_dataset(tmp_path / "data", [["violin"], ["violin", "cello"]])
    report = evaluate(model_dir, data, device="cpu", max_seconds=0.5, resamples=50)
    groups = report["by_performers"]
    assert set(groups) == {"1", "2"}
    assert (groups["1"]["count"], groups["2"]["count"]) == (1, 2)


def test_an_incomplete_example_names_the_files_it_lacks(
    model_dir: Path, duet: Path, tmp_path: Path
):
    data = tmp_path / "data"
    shutil.copytree(duet, data)
    (data / "000000" / "mixture.wav").unlink()
    with pytest.raises(DatasetError, match=r"no mixture file \(mixture\.wav") as err:
        evaluate(model_dir, data, device="cpu")
    assert "stems/<name>.wav" in str(err.value) and "DESIGN" not in str(err.value)


def test_cli_evaluate_scene_prints_json(model_dir: Path, duet: Path):
    from pcsep_cli.cli import app

    out = CliRunner().invoke(
        app, ["evaluate", str(model_dir), str(duet), "--scene", "--max-seconds", "0.5", "--json"]
    )
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert report["scene_step"] is True
    assert report["scene"]["detected"]["mean"] == 1.0


def test_meta_json_microphones_are_objects_or_plain_lists(duet: Path, tmp_path: Path):
    from pcsep_cli.train.evaluate import read_example

    example = shutil.copytree(duet / "000000", tmp_path / "ex")
    meta = json.loads((example / "meta.json").read_text())
    channels = sf.info(example / "mixture.wav").channels
    assert read_example(example).microphones is None  # none listed: not known

    def with_mics(entries: list) -> Path:
        (example / "meta.json").write_text(json.dumps({**meta, "microphones": entries}))
        return example

    rig = [[0.1 * k, -3.0, 1.5] for k in range(channels - 1)]
    cardioid = {"position": [-0.5, -3.0, 1.5], "direction": [0, 2, 0], "pattern": "Cardioid"}
    mics = read_example(with_mics([*rig, cardioid])).microphones
    assert mics is not None and mics.patterns == ("omni",) * len(rig) + ("cardioid",)
    np.testing.assert_allclose(mics.positions[-1], [-0.5, -3.0, 1.5])
    np.testing.assert_allclose(mics.directions[-1], [0, 1, 0])
    assert read_example(with_mics([])).microphones is None
    meta_file = example / "meta.json"
    with pytest.raises(DatasetError, match=f"{meta_file}: microphones lists {channels + 1}, but "
                       f"the mixture has {channels} channels"):  # fmt: skip
        read_example(with_mics([*rig, cardioid, [9.0, 9.0, 1.0]]))
    with pytest.raises(DatasetError, match=r"microphones\[0\] is cardioid but has no direction"):
        read_example(with_mics([{"position": [0, -3, 1], "pattern": "cardioid"}, *rig]))
