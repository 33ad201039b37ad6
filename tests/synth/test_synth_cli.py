"""`pcsep synth` writes the dataset layout and resumes a finished run without rewriting it."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf
from typer.testing import CliRunner

from pcsep_cli.cli import app

runner = CliRunner()


def test_synth_writes_layout_then_resumes(tmp_path):
    out = tmp_path / "ds"
    args = [
        "synth",
        "-o",
        str(out),
        "--examples",
        "2",
        "--duration",
        "2",
        "--seed",
        "3",
        "--max-performers",
        "2",
        "--solo-pool",
        "1",
    ]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "2 scenes written" in first.output
    metas = sorted(out.glob("*/*/meta.json"))
    scene_metas = [m for m in metas if (m.parent / "mixture.wav").is_file()]
    assert len(scene_metas) == 2
    for meta_path in scene_metas:
        meta = json.loads(meta_path.read_text())
        mix, sr = sf.read(meta_path.parent / "mixture.wav", always_2d=True)
        assert sr == meta["sample_rate"]
        stems = [
            sf.read(meta_path.parent / p["stem"], always_2d=True)[0] for p in meta["performers"]
        ]
        np.testing.assert_allclose(np.sum(stems, axis=0), mix, atol=1e-5)
    before = {m: m.stat().st_mtime_ns for m in metas}

    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "0 scenes written, 2 already there" in again.output
    assert {m: m.stat().st_mtime_ns for m in metas} == before


def test_synth_rejects_inverted_performer_range(tmp_path):
    result = runner.invoke(
        app, ["synth", "-o", str(tmp_path / "x"), "--min-performers", "4", "--max-performers", "2"]
    )
    assert result.exit_code == 2
    assert not (tmp_path / "x").exists()


def test_synth_splits_choose_the_folders(tmp_path):
    out = tmp_path / "ds"
    args = ["synth", "-o", str(out), "--examples", "2", "--duration", "1", "--max-performers", "2"]
    result = runner.invoke(app, [*args, "--splits", "0,0,1"])
    assert result.exit_code == 0, result.output
    assert len(list((out / "test").glob("*/mixture.wav"))) == 2
    assert not list((out / "train").glob("*/mixture.wav"))
    settings = json.loads((out / "dataset.json").read_text())["settings"]
    assert settings["split_fractions"] == [0.0, 0.0, 1.0]


def test_synth_rejects_malformed_splits(tmp_path):
    for bad in ("0.7,0.3", "a,b,c"):
        result = runner.invoke(app, ["synth", "-o", str(tmp_path / "x"), "--splits", bad])
        assert result.exit_code == 2, result.output
        assert "--splits takes three numbers" in result.output
    assert not (tmp_path / "x").exists()


def test_synth_cloud_scenes_from_the_command_line(tmp_path):
    out = tmp_path / "ds"
    args = ["synth", "-o", str(out), "--examples", "0", "--cloud-scenes", "2", "--seed", "3"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "2 cloud scenes written, 0 already there" in first.output
    metas = sorted(out.glob("clouds/*/*/meta.json"))
    assert len(metas) == 2 and not list(out.rglob("*.wav"))
    again = runner.invoke(app, args)
    assert "0 cloud scenes written, 2 already there" in again.output
    bad = runner.invoke(app, ["synth", "-o", str(tmp_path / "bad"), "--cloud-scenes", "-1"])
    assert bad.exit_code == 2 and not (tmp_path / "bad").exists()


def test_synth_sources_option_picks_the_sound_sources(tmp_path):
    out = tmp_path / "ds"
    args = ["synth", "-o", str(out), "--examples", "2", "--duration", "1", "--seed", "5"]
    result = runner.invoke(app, [*args, "--max-performers", "2", "--sources", "csound, stk"])
    assert result.exit_code == 0, result.output
    used = {
        p["source"]
        for m in out.glob("*/*/meta.json")
        for p in json.loads(m.read_text())["performers"]
    }
    assert used and used <= {"csound", "stk"}
    assert json.loads((out / "dataset.json").read_text())["settings"]["sources"] == [
        "csound",
        "stk",
    ]


def test_synth_refuses_an_unknown_source_before_writing(tmp_path):
    result = runner.invoke(app, ["synth", "-o", str(tmp_path / "x"), "--sources", "timgm6mb"])
    assert result.exit_code == 1
    assert "timgm6mb" in result.output
    assert not (tmp_path / "x").exists()
