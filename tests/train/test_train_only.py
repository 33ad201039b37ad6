"""``train_only``: a run that teaches some parts of the network (the classifier on new scenes)
and leaves the others exactly as ``init_from`` gave them.

The pool is the tiny one of tests/helpers/training.py (written with the real writers); the
models are the tiny random ones of tests/helpers/models.py.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from helpers.models import save_tiny
from helpers.training import make_pool

from pcsep_cli.hub.models import load_model
from pcsep_cli.train.config import TrainConfig, TrainConfigError, load_train_config
from pcsep_cli.train.loop import train


@pytest.fixture(scope="module")
def pool_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pool(tmp_path_factory.mktemp("pool"), per_instrument=1)


def _cfg(pool: Path, out: Path, src: Path, **changes) -> TrainConfig:
    cfg = load_train_config("tiny")
    return cfg.replace(
        pool=str(pool), out_dir=str(out), init_from=str(src), steps=4, lr=3e-2,
        warmup_steps=1, val_every=4, val_batches=1, checkpoint_every=4, **changes,
    )  # fmt: skip


def _state(path: Path) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in load_model(str(path)).state_dict().items()}


def test_only_the_visual_encoder_learns(pool_dir: Path, tmp_path: Path):
    src = save_tiny(tmp_path / "src", seed=1)
    # Every step conditioned on clouds, so the separation loss reaches the frozen U-Net too.
    cfg = _cfg(pool_dir, tmp_path / "run", src, train_only=("visual",), label_fraction=0.0)
    before = _state(src)
    after = _state(train(cfg))
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(k.startswith("visual.") for k in moved), sorted(moved)[:5]
    # The U-Net's batch norms kept their running statistics (they ran as at inference).
    stats = [k for k in before if k.startswith("audio_") and k.endswith("running_mean")]
    assert stats and all(torch.equal(before[k], after[k]) for k in stats)
    # Without train_only the same run moves the U-Net as well: the test above can fail.
    whole = _state(train(cfg.replace(train_only=(), out_dir=str(tmp_path / "all"))))
    assert any(not torch.equal(before[k], whole[k]) for k in stats)
    assert any(not torch.equal(before[k], whole[k]) for k in before if k.startswith("audio_"))


def test_a_step_that_reaches_no_learning_part_changes_nothing(pool_dir: Path, tmp_path: Path):
    src = save_tiny(tmp_path / "src", seed=2)
    # Labels steps without extra clouds: no loss term reaches the visual encoder.
    cfg = _cfg(pool_dir, tmp_path / "run", src, train_only=("visual",), label_fraction=1.0,
               visual_batch=0)  # fmt: skip
    before = _state(src)
    after = _state(train(cfg))
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_train_only_names_parts_of_the_network(pool_dir: Path, tmp_path: Path):
    src = save_tiny(tmp_path / "src")
    cfg = _cfg(pool_dir, tmp_path / "run", src)
    with pytest.raises(ValueError, match="train_only: unknown part 'wings'"):
        cfg.replace(train_only=("visual", "wings"))
    file = tmp_path / "bad.json"
    file.write_text(json.dumps({"pool": str(pool_dir), "train_only": ["unet"]}))
    with pytest.raises(TrainConfigError, match="unknown part 'unet'"):
        load_train_config(file)
    assert TrainConfig.from_dict(cfg.replace(train_only=["cond_trunk"]).to_dict()).train_only == (
        "cond_trunk",
    )
    # A labels model has no visual encoder to train.
    labels = dataclasses.replace(cfg.model, conditioning="labels")
    run = cfg.replace(model=labels, init_from="", train_only=("visual",))
    with pytest.raises(TrainConfigError, match="this model has no 'visual' part"):
        train(run)
