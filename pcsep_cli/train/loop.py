"""The mix-and-separate training loop behind ``pcsep train CONFIG``.

Each step draws a batch from the solo pool (:mod:`pcsep_cli.train.batch`), predicts a mask per
performer, and minimises the separation loss plus a classification loss on the performer
embeddings. Every ``checkpoint_every`` steps a checkpoint is written; a run started again
with the same ``out_dir`` continues from the newest one, and since a step's data depends only
on ``(seed, step)`` it sees the batches an uninterrupted run would have seen. The model with
the best validation loss is kept in ``<out_dir>/model/`` (a loadable model directory).

The same loop runs on a GPU (``device``, with mixed precision: ``amp``) and in each process
of ``torchrun --nproc-per-node N -m pcsep_cli.train CONFIG``: every process builds its share of
the step's batch and the gradients are summed over them (:mod:`pcsep_cli.train.runtime`);
process 0 alone validates and writes. Dropout masks are drawn from a generator seeded by
``(seed, step, rank)``, so a resumed run draws them again too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pcsep_cli.errors import DatasetError
from pcsep_cli.nets.files import CONFIG_FILE, WEIGHTS_FILE
from pcsep_cli.nets.model import SeparationNet, SeparatorConfig
from pcsep_cli.progress import Progress, ProgressFn
from pcsep_cli.train.batch import Batch, make_batch, make_cloud_batch, step_rng
from pcsep_cli.train.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from pcsep_cli.train.config import PARTS, TrainConfig, TrainConfigError, load_train_config
from pcsep_cli.train.losses import TERMS, StepLosses, Totals, loss_terms, total_loss
from pcsep_cli.train.pool import Pool, PoolMix, load_pool, require_clouds
from pcsep_cli.train.runtime import Runtime, started

MODEL_SUBDIR = "model"
LOG_NAME = "log.jsonl"


def train_progress(
    step: int, total: int, loss: float, speed: float, val_loss: float | None, note: str | None
) -> Progress:
    """The event after a step: ``metrics`` holds ``loss``, ``steps_per_s`` (over the steps done
    in this process) and ``val_loss`` (the latest, once validated); ``detail`` an event worth
    showing (``"resumed from step 400"``, ``"checkpoint"`` ...) or ``""``."""
    metrics = {"loss": loss, "steps_per_s": speed}
    if val_loss is not None:
        metrics["val_loss"] = val_loss
    return Progress("train", step, total, "step", note or "", metrics)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for ``step``: linear warm-up then cosine decay to ``lr_min``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * min(t, 1.0)))


@torch.no_grad()
def validate(
    model: SeparationNet, batches: list[Batch], cfg: TrainConfig, suffix: str = ""
) -> dict[str, float]:
    """Mean separation loss, classification loss and accuracy over fixed batches."""
    model.eval()
    sums: dict[str, float] = {}
    for batch in batches:
        for key, value in loss_terms(model, batch, cfg).items():
            sums[key] = sums.get(key, 0.0) + float(value) / len(batches)
    set_training(model, cfg)
    return {f"val_{k}{suffix}": v for k, v in sums.items()}


def set_training(model: SeparationNet, cfg: TrainConfig) -> None:
    """Training mode, but for the parts ``cfg.train_only`` leaves out: they run as at inference,
    so their batch norms neither move their running statistics nor normalise by the batch."""
    model.train()
    if cfg.train_only:
        for name, part in model.named_children():
            if name not in cfg.train_only:
                part.eval()


def _learning_parameters(model: SeparationNet, cfg: TrainConfig) -> list[torch.nn.Parameter]:
    """The parameters the optimiser moves (all, or those of ``cfg.train_only``'s parts); the
    others stop taking gradients.

    Raises:
        TrainConfigError: a part this model does not have (e.g. ``visual`` of a labels model).
    """
    if not cfg.train_only:
        return list(model.parameters())
    parts = dict(model.named_children())
    missing = [name for name in cfg.train_only if name not in parts]
    if missing:
        raise TrainConfigError(
            f"train_only: this model has no {missing[0]!r} part",
            hint=f"its parts: {', '.join(n for n in PARTS if n in parts)}",
        )
    for name, part in parts.items():
        part.requires_grad_(name in cfg.train_only)
    return [p for p in model.parameters() if p.requires_grad]


def uses_clouds(cfg: TrainConfig, step: int) -> bool:
    """Whether ``step`` is conditioned on clouds (always, never, or by draw for "both")."""
    mode = cfg.model.conditioning
    if mode != "both":
        return mode == "cloud"
    return bool(step_rng(cfg.seed, step, stream=2).random() >= cfg.label_fraction)


def _load_pools(
    cfg: TrainConfig, validation: bool = True
) -> tuple[Pool | PoolMix, Pool | PoolMix | None]:
    """Train and validation pools of ``pool`` and/or ``data`` (mixed by ``data_share``);
    no validation pool when ``validation`` is off (processes other than the first)."""
    m = cfg.model
    args = (m.classes, m.sample_rate, m.visual.voxel_size, cfg.segment_samples)

    def both(root: str, clouds: bool) -> tuple[Pool, Pool | None]:
        more = cfg.cloud_pool if clouds else ""
        # Both splits first: the fallback below would take a missing one for a missing val split.
        for split in ("train", "val") if more and validation else ():
            require_clouds(more, split)
        train_pool = load_pool(root, "train", *args, clouds=clouds, more_clouds=more)
        if not validation:
            return train_pool, None
        try:
            val_pool = load_pool(root, "val", *args, clouds=clouds, more_clouds=more)
        except DatasetError:  # a dataset without a val split validates on train
            val_pool = train_pool
        return train_pool, val_pool

    if not cfg.data:
        return both(cfg.pool, cfg.cloud_scenes)
    own = both(cfg.data, False)
    if not cfg.pool:
        return own
    base = both(cfg.pool, cfg.cloud_scenes)
    mixed_val = None if base[1] is None else PoolMix(base[1], own[1], cfg.data_share)  # type: ignore[arg-type]
    return PoolMix(base[0], own[0], cfg.data_share), mixed_val


# Fields a resumed run may change: the length of the run, how often it reports, and where and
# in which precision it runs (the weights are the same tensors on any device).
_RESUMABLE_CHANGES = (
    "steps",
    "val_every",
    "checkpoint_every",
    "keep_checkpoints",
    "threads",
    "device",
    "amp",
)


def _check_same_run(saved: dict | None, cfg: TrainConfig, where: Path) -> None:
    from pcsep_cli.errors import ModelError

    now = cfg.to_dict()
    if saved is None:
        raise ModelError("checkpoint has no training config", where, "use a new out_dir")
    # A field newer than the checkpoint counts as its default (the run had no such setting).
    defaults = {
        f.name: f.default
        for f in dataclasses.fields(TrainConfig)
        if f.default is not dataclasses.MISSING
    }
    saved = {**{k: v for k, v in defaults.items() if k not in saved}, **saved}
    diff = sorted(k for k in now.keys() | saved.keys() if now.get(k) != saved.get(k))
    diff = [k for k in diff if k not in _RESUMABLE_CHANGES]
    if diff:
        raise ModelError(
            f"the checkpoints were made with another training config (differs in {diff[0]})",
            where,
            "use the run's own config to resume, or a new out_dir",
        )


def _init_weights(model: SeparationNet, cfg: TrainConfig) -> None:
    """Copy ``cfg.init_from``'s weights into ``model`` (strict). The configs must be equal but
    for the rate and the STFT's size, hop, window and warp: the network sees ``warp_bins``
    log-frequency rows whatever the rate, so a model can start one at another rate."""
    from pcsep_cli.hub.models import load_model

    source = load_model(cfg.init_from)
    if _weights_config(source.config) != _weights_config(cfg.model):
        raise TrainConfigError(
            "init_from holds a model of another config",
            Path(cfg.init_from) / CONFIG_FILE,
            "fine-tune from a model with the same `model` section (the rate and the STFT but"
            " its warp_bins may differ), or drop init_from",
        )
    model.load_state_dict(source.state_dict(), strict=True)


def _weights_config(config: SeparatorConfig) -> dict:
    """What of a model config shapes and means its weights: all but the rate, the STFT's
    linear grid and the calibrated ``none_below``. Not the grid where the weights depend on
    it: a network on linear bins (``warp_bins`` 0) or a spatial head (per-bin weights)."""
    data = config.to_dict()
    data.pop("none_below", None)
    if config.stft.warp_bins and not config.spatial.enabled:
        data.pop("sample_rate")
        data["stft"] = {"warp_bins": data["stft"]["warp_bins"]}
    return data


def train(
    config: str | Path | TrainConfig,
    *,
    resume: bool = True,
    progress: ProgressFn | None = None,
) -> Path:
    """Train a model as ``config`` says; continue from the last checkpoint if there is one.

    Under torchrun every process calls this; each one trains on its share of every batch, and
    only process 0 reports progress and writes the log, checkpoints and model.

    Args:
        config: a :class:`TrainConfig`, a JSON/TOML file, or a preset name (``"tiny"``).
        resume: continue from ``<out_dir>/checkpoints``'s newest checkpoint (otherwise a run
            directory that already holds checkpoints is an error). A resumed run may change
            ``steps`` (the learning-rate schedule follows the new length), the reporting
            cadence, the device and precision, and the number of processes, nothing else.
        progress: called after every step with a :class:`~pcsep_cli.progress.Progress`
            (:func:`train_progress`).

    Returns:
        ``<out_dir>/model``: the model directory with the best validation loss.

    Raises:
        TrainConfigError: invalid config, or a device this machine does not have.
        DatasetError: unusable pool.
        ModelError: a checkpoint that does not match the config.
    """
    cfg = config if isinstance(config, TrainConfig) else load_train_config(config)
    with started(cfg) as runtime:
        return _run(cfg, runtime, resume, progress)


def _run(cfg: TrainConfig, rt: Runtime, resume: bool, progress: ProgressFn | None) -> Path:
    out_dir = Path(cfg.out_dir)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model = SeparationNet(cfg.model).to(rt.device)
    learning = _learning_parameters(model, cfg)
    optimizer = torch.optim.AdamW(learning, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scaler = rt.grad_scaler()
    report = progress if progress is not None and rt.is_main else (lambda _p: None)
    step, best_val = _start(cfg, model, optimizer, scaler, resume, report)
    rt.check_same_start(step, out_dir)
    losses = rt.wrap(StepLosses(model, cfg, rt.autocast))
    train_pool, val_pool = _load_pools(cfg, validation=rt.is_main)
    val_sets = _validation_sets(val_pool, cfg, rt.device) if val_pool is not None else {}
    if rt.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    skipped = (train_pool.own if isinstance(train_pool, PoolMix) else train_pool).skipped
    if skipped:
        note = (
            f"left out {len(skipped)} captured performers the scene step did not find at "
            f"their position (first: {skipped[0]}); give performers/<name>.ply to keep them"
        )
        report(train_progress(step, cfg.steps, math.nan, 0.0, None, note))
    set_training(model, cfg)
    start, start_step, val_loss = time.perf_counter(), step, None
    log_file = (out_dir / LOG_NAME).open("a") if rt.is_main else contextlib.nullcontext()
    with log_file as log:
        while step < cfg.steps:
            record = _train_step(losses, model, optimizer, scaler, train_pool, cfg, rt, step)
            step += 1
            if not rt.is_main:
                continue
            speed = (step - start_step) / (time.perf_counter() - start)
            record.update(lr=lr_at(step - 1, cfg), steps_per_s=speed)
            message = None
            if step % cfg.val_every == 0 or step == cfg.steps:
                for suffix, batches in val_sets.items():
                    record.update(validate(model, batches, cfg, suffix))
                val_loss = record["val_sep"] + cfg.cls_weight * record["val_cls"]
                if val_loss < best_val:
                    best_val = val_loss
                    model.save_pretrained(out_dir / MODEL_SUBDIR)
                    message = f"best model so far (val {val_loss:.4f})"
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                state = {"best_val": best_val, "config": cfg.to_dict()}
                if scaler is not None:
                    state["grad_scaler"] = scaler.state_dict()
                save_checkpoint(out_dir, step, model, optimizer, state, cfg.keep_checkpoints)
                message = (message + "; " if message else "") + f"checkpoint at step {step}"
            log.write(json.dumps(record) + "\n")
            log.flush()
            report(train_progress(step, cfg.steps, record["loss"], speed, val_loss, message))
    if rt.is_main and not (out_dir / MODEL_SUBDIR / WEIGHTS_FILE).is_file():
        model.save_pretrained(out_dir / MODEL_SUBDIR)
    return out_dir / MODEL_SUBDIR


def _start(
    cfg: TrainConfig,
    model: SeparationNet,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    resume: bool,
    report: ProgressFn,
) -> tuple[int, float]:
    """Resume from the run's newest checkpoint or start from ``init_from`` (or fresh);
    return ``(step, best validation loss)``.

    Raises:
        ModelError: checkpoints exist and ``resume`` is off, or they belong to another run.
    """
    from pcsep_cli.errors import ModelError

    out_dir = Path(cfg.out_dir)
    existing = list_checkpoints(out_dir)
    if existing and not resume:
        raise ModelError(
            "run folder already holds checkpoints", out_dir, "resume, or pick a new out_dir"
        )
    if existing:
        saved = json.loads((existing[-1] / "state.json").read_text()).get("config")
        _check_same_run(saved, cfg, existing[-1])
        meta = load_checkpoint(existing[-1], model, optimizer)
        if scaler is not None and meta.get("grad_scaler"):
            scaler.load_state_dict(meta["grad_scaler"])
        step, best_val = int(meta["step"]), float(meta.get("best_val", math.inf))
        note = f"resumed from step {step}"
        if saved["steps"] != cfg.steps:
            note += f" (steps {saved['steps']} -> {cfg.steps})"
        report(train_progress(step, cfg.steps, math.nan, 0.0, None, note))
        return step, best_val
    if cfg.init_from:
        _init_weights(model, cfg)
        report(train_progress(0, cfg.steps, math.nan, 0.0, None, f"started from {cfg.init_from}"))
    return 0, math.inf


def _validation_sets(
    val_pool: Pool | PoolMix, cfg: TrainConfig, device: torch.device
) -> dict[str, list[Batch]]:
    """The fixed validation batches on ``device``, by metric suffix: ``""`` for the model's own
    condition, ``"_labels"`` beside it for a model conditioned on both."""
    primary = cfg.model.conditioning != "labels"
    val_sets = {
        "": [
            make_batch(val_pool, cfg, step_rng(cfg.seed, i, stream=1), train=False, clouds=primary)
            for i in range(cfg.val_batches)
        ]
    }
    if cfg.model.conditioning == "both":
        val_sets["_labels"] = [
            make_batch(val_pool, cfg, step_rng(cfg.seed, i, stream=1), train=False, clouds=False)
            for i in range(cfg.val_batches)
        ]
    if device.type != "cpu":
        val_sets = {k: [b.to(device) for b in v] for k, v in val_sets.items()}
    return val_sets


def _dropout_seed(seed: int, step: int, rank: int) -> int:
    """Seed of torch's generator for one step of one process (dropout masks)."""
    return int(np.random.SeedSequence([seed, 4, step, rank]).generate_state(1, np.uint64)[0])


def _train_step(
    losses: nn.Module,
    model: SeparationNet,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    pool: Pool | PoolMix,
    cfg: TrainConfig,
    rt: Runtime,
    step: int,
) -> dict[str, Any]:
    """One optimiser step (the ``step``-th, from 0) on this process's share of the batch;
    returns its log record, with the losses of the whole batch.

    Args:
        losses: :class:`StepLosses` of ``model`` (inside DDP when distributed).
        model: the network.
        optimizer: its optimiser.
        scaler: fp16 loss scaling, or ``None``.
        pool: training performers.
        cfg: training config.
        rt: this process's runtime.
        step: steps done so far.
    """
    for group in optimizer.param_groups:
        group["lr"] = lr_at(step, cfg)
    torch.manual_seed(_dropout_seed(cfg.seed, step, rt.rank))
    clouds = uses_clouds(cfg, step)
    rng = step_rng(cfg.seed, step)
    batch = make_batch(pool, cfg, rng, clouds=clouds, items=rt.shard(cfg.batch_size))
    extra = None
    if not clouds and model.accepts_clouds and cfg.visual_batch:
        rng = step_rng(cfg.seed, step, stream=3)
        extra = make_cloud_batch(pool, cfg, rng, cfg.visual_batch, rt.shard(cfg.visual_batch))
    if rt.device.type != "cpu":
        batch = batch.to(rt.device)
        extra = None if extra is None else (extra[0].to(rt.device), extra[1].to(rt.device))
    totals = Totals.from_tensor(rt.all_sum(Totals.local(batch, extra)))
    terms = losses(batch, extra, totals)
    optimizer.zero_grad(set_to_none=True)
    # DDP averages the processes' gradients, and their losses are shares that add up to the
    # loss of the whole batch: scaled by the number of processes, the average is that sum.
    loss = total_loss(terms, cfg) * rt.world
    # With train_only, a step may reach no learning part (labels, no extra clouds): no update.
    if loss.requires_grad:
        (loss if scaler is None else scaler.scale(loss)).backward()
        if scaler is not None:
            scaler.unscale_(optimizer)
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        if scaler is None:
            optimizer.step()
        else:
            scaler.step(optimizer)
            scaler.update()
    summed = rt.all_sum(torch.stack([terms[k].detach().float() for k in TERMS])).tolist()
    values = dict(zip(TERMS, summed, strict=True))
    whole = values["sep"] + cfg.cls_weight * values["cls"] + cfg.align_weight * values["align"]
    return {"step": step + 1, "loss": whole, "clouds": clouds, **values}
