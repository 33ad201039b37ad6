"""Distributed training: ``torchrun`` with two real CPU processes (gloo) follows one process with
the same global batch, writes each checkpoint once, and resumes exactly; mixed precision and
the device option.

The tiny preset has dropout 0, so the processes' losses can equal one process's up to float
rounding (dropout masks are drawn per process); BatchNorm statistics are synchronised.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.training import make_pool
from typer.testing import CliRunner

import pcsep_cli
from pcsep_cli.cli import app
from pcsep_cli.hub.models import load_model
from pcsep_cli.train.batch import make_batch, make_cloud_batch, step_rng
from pcsep_cli.train.config import TrainConfig, load_train_config
from pcsep_cli.train.loop import train
from pcsep_cli.train.pool import load_pool
from pcsep_cli.train.runtime import Runtime

SOURCE = Path(pcsep_cli.__file__).resolve().parents[1]  # the package these tests import


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pool(tmp_path_factory.mktemp("pool"), per_instrument=1, seconds=1.0)


def _cfg(pool: Path, out: Path, **changes) -> TrainConfig:
    # Checkpoints every 2 steps, all kept, so that each one written can be counted.
    fields = dict(steps=6, warmup_steps=2, checkpoint_every=2, val_every=3, keep_checkpoints=10)
    fields.update(threads=1, device="cpu", amp="off", pool=str(pool), out_dir=str(out))
    return load_train_config("tiny").replace(**{**fields, **changes})


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def _torchrun(cfg: TrainConfig, where: Path) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc-per-node 2 -m pcsep_cli.train CONFIG``, as documented."""
    file = where / "config.json"
    file.write_text(json.dumps(cfg.to_dict()))
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SOURCE), env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    done = subprocess.run(
        [*cmd, "-m", "pcsep_cli.train", str(file)],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return load_model(str(checkpoint)).state_dict()


def test_two_processes_follow_one_and_resume_exactly(pool: Path, tmp_path: Path) -> None:
    train(_cfg(pool, tmp_path / "one"))
    reference = _log(tmp_path / "one")
    # The run mixes separation steps on clouds and on labels (+ visual-only clouds), so
    # both sets of sub-networks are trained, and left alone, on some steps.
    assert {r["clouds"] for r in reference} == {True, False}

    two = tmp_path / "two"
    cfg = _cfg(pool, two)
    run = _torchrun(cfg, tmp_path)
    # One record per step (process 0 writes alone), each the loss of one process's batch:
    # the same up to float rounding (which Adam amplifies a little from step to step).
    got = _log(two)
    assert [r["step"] for r in got] == [1, 2, 3, 4, 5, 6]
    for a, b in zip(got, reference, strict=True):
        assert a["clouds"] == b["clouds"]
        for key in ("loss", "sep", "cls", "align", "acc", "val_sep", "val_cls"):
            if key in b:
                assert a[key] == pytest.approx(b[key], rel=2e-4, abs=1e-6), (a["step"], key)
    early = _weights(tmp_path / "one/checkpoints/step_0000002")
    for name, value in _weights(two / "checkpoints/step_0000002").items():
        torch.testing.assert_close(value, early[name], rtol=1e-4, atol=1e-4, msg=name)
    # Each checkpoint written once, nothing left half-written; one line of output each.
    steps = ["step_0000002", "step_0000004", "step_0000006"]
    assert sorted(p.name for p in (two / "checkpoints").iterdir()) == steps
    assert run.stdout.count("model:") == 1
    assert " ".join(run.stderr.split()).count("checkpoint at step 2") == 1
    assert load_model(str(two / "model")).config == cfg.model

    # The run as it stood after step 4 (its step-4 checkpoint is all it keeps of it), started
    # again in two new processes: it ends with the uninterrupted run's records and weights.
    final = _weights(two / "checkpoints/step_0000006")
    shutil.rmtree(two / "checkpoints/step_0000006")
    run = _torchrun(cfg, tmp_path)
    assert " ".join(run.stderr.split()).count("resumed from step 4") == 1
    again = _log(two)[6:]
    assert [r["step"] for r in again] == [5, 6]
    for a, b in zip(again, got[4:], strict=True):
        del a["steps_per_s"], b["steps_per_s"]
        assert a == pytest.approx(b, rel=1e-6)
    for name, value in _weights(two / "checkpoints/step_0000006").items():
        torch.testing.assert_close(value, final[name], rtol=1e-6, atol=1e-7, msg=name)


def test_any_share_of_a_batch_is_built_as_in_the_whole_batch(pool: Path, tmp_path: Path) -> None:
    cfg = _cfg(pool, tmp_path).replace(batch_size=5, visual_batch=7)
    m = cfg.model
    p = load_pool(pool, "train", m.classes, m.sample_rate, m.visual.voxel_size, 4000)
    whole = make_batch(p, cfg, step_rng(0, 3))
    parts = [Runtime(torch.device("cpu"), rank=r, world=3).shard(5) for r in range(3)]
    assert [list(s) for s in parts] == [[0, 1], [2, 3], [4]]
    shares = [make_batch(p, cfg, step_rng(0, 3), items=s) for s in parts]
    torch.testing.assert_close(torch.cat([s.mix_mag for s in shares]), whole.mix_mag)
    torch.testing.assert_close(torch.cat([s.src_mag for s in shares]), whole.src_mag)
    assert torch.equal(torch.cat([s.labels for s in shares]), whole.labels)
    feats = torch.cat([s.cond.feats for s in shares])
    torch.testing.assert_close(feats, whole.cond.feats)  # the same augmented clouds
    clouds, labels = make_cloud_batch(p, cfg, step_rng(0, 3, stream=3), 7)
    pieces = [
        make_cloud_batch(p, cfg, step_rng(0, 3, stream=3), 7, items=r)
        for r in (range(0, 4), range(4, 7))
    ]
    assert torch.equal(torch.cat([lab for _, lab in pieces]), labels)
    torch.testing.assert_close(torch.cat([c.feats for c, _ in pieces]), clouds.feats)


def test_bf16_autocast_trains_within_tolerance_of_float32(pool: Path, tmp_path: Path) -> None:
    runs = {}
    for amp in ("off", "bf16"):
        out = tmp_path / amp
        train(_cfg(pool, out, steps=3, amp=amp))
        runs[amp] = _log(out)
    for a, b in zip(runs["bf16"], runs["off"], strict=True):
        assert a["clouds"] == b["clouds"]
        assert a["sep"] == pytest.approx(b["sep"], rel=2e-2)
        assert a["loss"] == pytest.approx(b["loss"], rel=2e-2)
    assert any(a["loss"] != b["loss"] for a, b in zip(runs["bf16"], runs["off"], strict=True))
    weights = load_model(str(tmp_path / "bf16" / "model")).state_dict()
    assert {v.dtype for v in weights.values() if v.is_floating_point()} == {torch.float32}


def test_device_and_precision_errors_are_one_line(pool: Path, tmp_path: Path) -> None:
    file = tmp_path / "c.json"
    file.write_text(json.dumps(_cfg(pool, tmp_path / "run").to_dict()))
    result = CliRunner().invoke(app, ["train", str(file), "--amp", "fp16"])
    assert result.exit_code == 1
    assert "amp fp16 needs a CUDA GPU (use --amp bf16 or --amp off on the CPU)" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = CliRunner().invoke(app, ["train", str(file), "--device", "gpu"])
    assert result.exit_code == 2 and "--device must be auto, cpu, cuda or cuda:N" in result.output
    # A machine without CUDA (hidden from this process if there is one).
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SOURCE), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "pcsep_cli.train", str(file), "--device", "cuda"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: device cuda: CUDA is not available on this machine (use --device cpu, or "
        '"device": "cpu" in the config)'
    ]
    assert not (tmp_path / "run").exists()  # refused before anything was written


@pytest.mark.gpu
def test_cuda_training_matches_the_cpu(pool: Path, tmp_path: Path) -> None:
    """On a GPU machine: the first step on CUDA (bf16 or fp16 autocast, the default) is the
    CPU's within mixed-precision tolerance, and the run resumes on the CPU."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    cpu = _cfg(pool, tmp_path / "cpu", steps=2)
    train(cpu)
    gpu = cpu.replace(out_dir=str(tmp_path / "gpu"), device="cuda", amp="auto")
    train(gpu)
    a, b = _log(tmp_path / "gpu"), _log(tmp_path / "cpu")
    assert a[0]["loss"] == pytest.approx(b[0]["loss"], rel=3e-2)
    assert all(np.isfinite(r["loss"]) for r in a)
    train(gpu.replace(steps=3, device="cpu", amp="off"))
    assert [r["step"] for r in _log(tmp_path / "gpu")] == [1, 2, 3]
