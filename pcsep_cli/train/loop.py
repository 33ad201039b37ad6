"""The mix-and-separate training loop behind ``pcsep train CONFIG``.

Each step draws a batch from the solo pool (:mod:`pcsep_cli.train.batch`), predicts a mask per
performer, and minimises the separation loss plus a classification loss on the performer
embeddings. Every ``checkpoint_every`` steps a checkpoint is written; a run started again
with the same ``out_dir`` continues from the newest one, and since a step's data depends only
on ``(seed, step)`` it sees the batches an uninterrupted run would have seen. The model with
the best validation loss is kept in ``<out_dir>/model/`` (a loadable model directory).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from pcsep_cli.errors import DatasetError
from pcsep_cli.nets.files import CONFIG_FILE, WEIGHTS_FILE
from pcsep_cli.nets.model import SeparationNet
from pcsep_cli.progress import Progress, ProgressFn
from pcsep_cli.train.batch import Batch, make_batch, make_cloud_batch, step_rng
from pcsep_cli.train.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from pcsep_cli.train.config import TrainConfig, load_train_config
from pcsep_cli.train.pool import Pool, PoolMix, load_pool

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


def separation_loss(out_masks: torch.Tensor, out_logits: torch.Tensor, batch: Batch, kind: str):
    """Separation loss of one batch.

    Args:
        out_masks: ``(P, 1, F, T)`` predicted masks in [0, 1].
        out_logits: ``(P, 1, F, T)`` the same before the sigmoid.
        batch: the batch (mixture and target magnitudes).
        kind: ``"l1_ratio"`` or ``"bce_binary"``.
    """
    mix = batch.mix_mag.index_select(0, batch.mix_index)
    if kind == "l1_ratio":
        # Normalised by the mixture's mean magnitude so loud and quiet batches weigh alike.
        return (out_masks * mix - batch.src_mag).abs().mean() / (mix.mean() + 1e-8)
    # The paper's target: 1 where this performer dominates the mixture's other performers.
    others = torch.zeros_like(batch.src_mag)
    others.index_reduce_(0, batch.mix_index, batch.src_mag, "amax", include_self=False)
    best = others.index_select(0, batch.mix_index)
    target = ((batch.src_mag >= best) & (batch.src_mag > 0)).float()
    weight = torch.log1p(mix).clamp(1e-3, 10)
    return F.binary_cross_entropy_with_logits(out_logits, target, weight=weight)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for ``step``: linear warm-up then cosine decay to ``lr_min``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * min(t, 1.0)))


def _loss_terms(
    model: SeparationNet, batch: Batch, cfg: TrainConfig, extra: tuple | None = None
) -> dict[str, torch.Tensor]:
    """Separation, classification and alignment losses (and accuracy) of one step.

    Args:
        model: the network.
        batch: the separation batch.
        cfg: training config.
        extra: ``(SparseTensor, labels)`` clouds for the visual encoder alone (labels steps).
    """
    out = model(batch.mix_mag, batch.cond, batch.mix_index)
    terms = {"sep": separation_loss(out.masks, out.mask_logits, batch, cfg.loss)}
    zero = torch.zeros(())
    if isinstance(batch.cond, torch.Tensor):
        emb, logits, labels = None, None, None
        if extra is not None:
            emb, logits = model.encode_condition(extra[0])
            labels = extra[1]
    else:
        emb, logits, labels = out.embedding, out.class_logits, batch.labels
    if logits is None:
        terms.update(cls=zero, align=zero, acc=zero)
        return terms
    terms["cls"] = F.cross_entropy(logits, labels)
    terms["acc"] = (logits.argmax(1) == labels).float().mean()
    terms["align"] = zero
    if model.accepts_labels and cfg.align_weight:
        terms["align"] = F.mse_loss(emb, model.label_embedding(labels).detach())
    return terms


@torch.no_grad()
def validate(
    model: SeparationNet, batches: list[Batch], cfg: TrainConfig, suffix: str = ""
) -> dict[str, float]:
    """Mean separation loss, classification loss and accuracy over fixed batches."""
    model.eval()
    sums: dict[str, float] = {}
    for batch in batches:
        for key, value in _loss_terms(model, batch, cfg).items():
            sums[key] = sums.get(key, 0.0) + float(value) / len(batches)
    model.train()
    return {f"val_{k}{suffix}": v for k, v in sums.items()}


def uses_clouds(cfg: TrainConfig, step: int) -> bool:
    """Whether ``step`` is conditioned on clouds (always, never, or by draw for "both")."""
    mode = cfg.model.conditioning
    if mode != "both":
        return mode == "cloud"
    return bool(step_rng(cfg.seed, step, stream=2).random() >= cfg.label_fraction)


def _load_pools(cfg: TrainConfig) -> tuple[Pool | PoolMix, Pool | PoolMix]:
    """Train and validation pools of ``pool`` and/or ``data`` (mixed by ``data_share``)."""
    m = cfg.model
    args = (m.classes, m.sample_rate, m.visual.voxel_size, cfg.segment_samples)

    def both(root: str, clouds: bool) -> tuple[Pool, Pool]:
        train_pool = load_pool(root, "train", *args, clouds=clouds)
        try:
            val_pool = load_pool(root, "val", *args, clouds=clouds)
        except DatasetError:  # a dataset without a val split validates on train
            val_pool = train_pool
        return train_pool, val_pool

    if not cfg.data:
        return both(cfg.pool, cfg.cloud_scenes)
    own = both(cfg.data, False)
    if not cfg.pool:
        return own
    base = both(cfg.pool, cfg.cloud_scenes)
    return tuple(PoolMix(b, o, cfg.data_share) for b, o in zip(base, own, strict=True))  # type: ignore[return-value]


# Fields a resumed run may change: the length of the run and how often it reports.
_RESUMABLE_CHANGES = ("steps", "val_every", "checkpoint_every", "keep_checkpoints", "threads")


def _check_same_run(saved: dict | None, cfg: TrainConfig, where: Path) -> None:
    from pcsep_cli.errors import ModelError

    now = cfg.to_dict()
    if saved is None:
        raise ModelError("checkpoint has no training config", where, "use a new out_dir")
    diff = sorted(k for k in now.keys() | saved.keys() if now.get(k) != saved.get(k))
    diff = [k for k in diff if k not in _RESUMABLE_CHANGES]
    if diff:
        raise ModelError(
            f"the checkpoints were made with another training config (differs in {diff[0]})",
            where,
            "use the run's own config to resume, or a new out_dir",
        )


def _init_weights(model: SeparationNet, cfg: TrainConfig) -> None:
    """Copy ``cfg.init_from``'s weights into ``model`` (same model config, strict)."""
    from pcsep_cli.hub.models import load_model
    from pcsep_cli.train.config import TrainConfigError

    source = load_model(cfg.init_from)
    if source.config.to_dict() != cfg.model.to_dict():
        raise TrainConfigError(
            "init_from holds a model of another config",
            Path(cfg.init_from) / CONFIG_FILE,
            "fine-tune from a model with the same `model` section, or drop init_from",
        )
    model.load_state_dict(source.state_dict(), strict=True)


def train(
    config: str | Path | TrainConfig,
    *,
    resume: bool = True,
    progress: ProgressFn | None = None,
) -> Path:
    """Train a model as ``config`` says; continue from the last checkpoint if there is one.

    Args:
        config: a :class:`TrainConfig`, a JSON/TOML file, or a preset name (``"tiny"``).
        resume: continue from ``<out_dir>/checkpoints``'s newest checkpoint (otherwise a run
            directory that already holds checkpoints is an error). A resumed run may change
            ``steps`` (the learning-rate schedule follows the new length) and the reporting
            cadence, nothing else.
        progress: called after every step with a :class:`~pcsep_cli.progress.Progress`
            (:func:`train_progress`).

    Returns:
        ``<out_dir>/model``: the model directory with the best validation loss.

    Raises:
        TrainConfigError: invalid config.
        DatasetError: unusable pool.
        ModelError: a checkpoint that does not match the config.
    """
    cfg = config if isinstance(config, TrainConfig) else load_train_config(config)
    out_dir = Path(cfg.out_dir)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model = SeparationNet(cfg.model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    report = progress or (lambda _p: None)
    step, best_val = _start(cfg, model, optimizer, resume, report)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    train_pool, val_pool = _load_pools(cfg)
    skipped = (train_pool.own if isinstance(train_pool, PoolMix) else train_pool).skipped
    if skipped:
        note = (
            f"left out {len(skipped)} captured performers the scene step did not find at "
            f"their position (first: {skipped[0]}); give performers/<name>.ply to keep them"
        )
        report(train_progress(step, cfg.steps, math.nan, 0.0, None, note))
    val_sets = _validation_sets(val_pool, cfg)
    model.train()
    start, start_step, val_loss = time.perf_counter(), step, None
    with (out_dir / LOG_NAME).open("a") as log:
        while step < cfg.steps:
            record = _train_step(model, optimizer, train_pool, cfg, step)
            step += 1
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
                save_checkpoint(out_dir, step, model, optimizer, state, cfg.keep_checkpoints)
                message = (message + "; " if message else "") + f"checkpoint at step {step}"
            log.write(json.dumps(record) + "\n")
            log.flush()
            report(train_progress(step, cfg.steps, record["loss"], speed, val_loss, message))
    if not (out_dir / MODEL_SUBDIR / WEIGHTS_FILE).is_file():
        model.save_pretrained(out_dir / MODEL_SUBDIR)
    return out_dir / MODEL_SUBDIR


def _start(
    cfg: TrainConfig,
    model: SeparationNet,
    optimizer: torch.optim.Optimizer,
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


def _validation_sets(val_pool: Pool | PoolMix, cfg: TrainConfig) -> dict[str, list[Batch]]:
    """The fixed validation batches, by metric suffix: ``""`` for the model's own condition,
    ``"_labels"`` beside it for a model conditioned on both."""
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
    return val_sets


def _train_step(
    model: SeparationNet,
    optimizer: torch.optim.Optimizer,
    pool: Pool | PoolMix,
    cfg: TrainConfig,
    step: int,
) -> dict[str, Any]:
    """One optimiser step (the ``step``-th, from 0); returns its log record."""
    for group in optimizer.param_groups:
        group["lr"] = lr_at(step, cfg)
    clouds = uses_clouds(cfg, step)
    batch = make_batch(pool, cfg, step_rng(cfg.seed, step), clouds=clouds)
    extra = None
    if not clouds and model.accepts_clouds and cfg.visual_batch:
        extra = make_cloud_batch(pool, cfg, step_rng(cfg.seed, step, stream=3), cfg.visual_batch)
    terms = _loss_terms(model, batch, cfg, extra)
    loss = terms["sep"] + cfg.cls_weight * terms["cls"] + cfg.align_weight * terms["align"]
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    optimizer.step()
    record = {"step": step + 1, "loss": loss.item(), "clouds": clouds}
    record.update({k: float(v.detach()) for k, v in terms.items()})
    return record
