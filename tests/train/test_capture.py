"""The real-capture dataset layout: reading it for training and evaluation, mixing it with a
synthetic pool, and fine-tuning from a shipped model through the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers.models import save_tiny
from helpers.training import make_capture, make_pool
from typer.testing import CliRunner

from pcsep_cli.cli import app
from pcsep_cli.errors import DatasetError
from pcsep_cli.train.batch import make_batch, step_rng
from pcsep_cli.train.config import CONFIG_DIR as CONFIGS
from pcsep_cli.train.config import load_train_config
from pcsep_cli.train.loop import train
from pcsep_cli.train.pool import PoolMix, load_pool

CLASSES = ("violin", "cello", "flute", "none")
LAYOUTS = [["violin", "cello"], ["flute", "violin"]]


def _load(root: Path):  # noqa: ANN202
    return load_pool(root, "train", CLASSES, 8000, 0.05, 4000)


@pytest.mark.parametrize("own_clouds", [True, False])
def test_captures_load_as_performers_with_their_close_microphones(
    tmp_path: Path, own_clouds: bool
) -> None:
    root = tmp_path / "cap"
    make_capture(root / "train", LAYOUTS, own_clouds=own_clouds)
    assert not list(root.rglob("labels.npy"))
    pool = _load(root)
    assert sorted(s.instrument for s in pool.solos) == ["cello", "flute", "violin", "violin"]
    assert pool.distractors == []  # the layout names no distractors
    for solo in pool.solos:
        example, name = solo.name.split(":")
        rate_ratio = 16000 // 8000
        stem = root / example / "stems" / f"{name}.wav"
        assert stem.is_file()
        assert solo.audio is not None and solo.audio.shape[1] * rate_ratio == 24000
        # Each performer's own points: a body (1.7 m tall; the scene step trims its feet off
        # the floor) and its instrument, no floor around it.
        assert 1.2 < float(np.ptp(solo.points[:, 2])) < 1.9, solo.name
        assert float(np.ptp(solo.points[:, 0])) < 1.0, solo.name
        assert len(solo.points) > 200


def test_scene_cut_matches_the_clouds_given_one_by_one(tmp_path: Path) -> None:
    from pcsep_cli.train.capture import performer_clouds

    own = make_capture(tmp_path / "a", LAYOUTS, own_clouds=True)
    cut = make_capture(tmp_path / "b", LAYOUTS, own_clouds=False)  # same seed: same scenes
    for example in ("000000", "000001"):
        meta = json.loads((cut / example / "meta.json").read_text())
        given = performer_clouds(own / example, meta["performers"])
        found = performer_clouds(cut / example, meta["performers"])
        for a, b in zip(given, found, strict=True):
            # The scene step's cluster is the performer (its feet aside: the floor band goes
            # with the floor), not a neighbour or the floor around them.
            lo, hi = a.min(axis=0) - 0.05, a.max(axis=0) + 0.05
            assert np.all((b >= lo) & (b <= hi))
            assert len(b) > 0.5 * len(a)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("stem", "performer 'p1' has no stems/p1.wav"),
        ("cloud", "performer 'p0' has no performers/p0.ply"),
        ("position", "performer 'p0' has no position in meta.json"),
        ("scene", "no performers/ folder and no scene.ply"),
    ],
)
def test_an_example_lacking_something_says_what(tmp_path: Path, damage: str, message: str) -> None:
    own = damage == "cloud"
    root = make_capture(tmp_path / "cap" / "train", LAYOUTS[:1], own_clouds=own)
    ex = root / "000000"
    meta = json.loads((ex / "meta.json").read_text())
    if damage == "stem":
        (ex / "stems" / "p1.wav").unlink()
    elif damage == "cloud":
        (ex / "performers" / "p0.ply").unlink()
    elif damage == "position":
        del meta["performers"][0]["position"]
    elif damage == "far":
        meta["performers"][0]["position"] = [40.0, 40.0, 0.0]
    elif damage == "scene":
        (ex / "scene.ply").unlink()
    (ex / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match=message) as err:
        _load(root.parent)
    assert str(ex) in str(err.value) and "\n" not in str(err.value)


def test_a_performer_the_scene_step_misses_is_left_out_and_counted(tmp_path: Path) -> None:
    root = make_capture(tmp_path / "cap" / "train", LAYOUTS, own_clouds=False)
    meta = json.loads((root / "000001" / "meta.json").read_text())
    meta["performers"][0]["position"] = [40.0, 40.0, 0.0]  # nothing stands there
    (root / "000001" / "meta.json").write_text(json.dumps(meta))
    pool = _load(root.parent)
    assert pool.skipped == ["train/000001:p0"]
    assert sorted(s.name for s in pool.solos) == [
        "train/000000:p0", "train/000000:p1", "train/000001:p1",
    ]  # fmt: skip
    seen: list = []
    cfg = load_train_config("tiny").replace(
        pool="", data=str(root.parent), out_dir=str(tmp_path / "run"), steps=1, max_sources=2
    )
    train(cfg, progress=seen.append)
    assert "left out 1 captured performers" in seen[0].detail
    assert "train/000001:p0" in seen[0].detail


def test_mixtures_come_from_both_pools_at_the_share_asked(tmp_path: Path) -> None:
    base = _load(make_pool(tmp_path / "syn"))
    # The captures hold no flute: flutes in a batch come from the synthetic pool only.
    own = _load(
        make_capture(tmp_path / "cap" / "train", [["violin", "cello"]], own_clouds=True).parent
    )
    cfg = load_train_config("tiny").replace(batch_size=300, min_sources=2, max_sources=2)
    flute = CLASSES.index("flute")

    def flutes(share: float) -> float:
        batch = make_batch(PoolMix(base, own, share), cfg, step_rng(0, 0), clouds=False)
        return float((batch.labels == flute).float().sum()) / cfg.batch_size

    # Two of three instruments per synthetic mixture: 2/3 of them hold a flute.
    assert flutes(1.0) == 0.0
    assert abs(flutes(0.0) - 2 / 3) < 0.08
    assert abs(flutes(0.5) - 1 / 3) < 0.08
    rng = step_rng(0, 1)
    assert (
        abs(np.mean([PoolMix(base, own, 0.3).pick(rng) is own for _ in range(2000)]) - 0.3) < 0.03
    )


def test_finetune_from_a_model_on_captures_through_the_cli(tmp_path: Path) -> None:
    base = save_tiny(tmp_path / "base")
    pool = make_pool(tmp_path / "syn", per_instrument=1)
    cap = make_capture(tmp_path / "cap" / "train", LAYOUTS, own_clouds=False).parent
    shutil.copytree(cap / "train", cap / "test")
    # The finetune preset, sized for the tiny model (three classes, 8 kHz).
    preset = json.loads((CONFIGS / "finetune.json").read_text())
    assert "model" not in preset
    config = tmp_path / "finetune.json"
    config.write_text(json.dumps({**preset, "max_sources": 2, "batch_size": 2, "threads": 1}))
    result = CliRunner().invoke(
        app,
        ["train", str(config), "--init-from", str(base), "--data", str(cap), "--pool", str(pool),
         "--data-share", "0.5", "--steps", "3", "-o", str(tmp_path / "run")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "run" / "train_config.json").read_text())
    assert saved["init_from"] == str(base) and saved["data"] == str(cap)
    assert saved["model"] == json.loads((base / "config.json").read_text())
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()
    # The fine-tuned model scores the captures' test split in both cloud settings.
    for extra in ([], ["--scene"]):
        out = CliRunner().invoke(
            app,
            ["evaluate", str(tmp_path / "run" / "model"), str(cap / "test"), "--json", *extra],
        )
        assert out.exit_code == 0, out.output
        report = json.loads(out.stdout.strip().splitlines()[-1])
        assert report["overall"]["sdri"]["n"] == 4
