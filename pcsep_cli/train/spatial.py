"""Train the spatial head of a model (``pcsep train-spatial``): pcsep-spatial from pcsep-base.

The mono network is kept as it is (frozen): its masks already say which bins hold a violin;
the head (:class:`~pcsep_cli.nets.spatial.SpatialFusion`, a few thousand weights) learns to
split and sharpen them with where each performer stands. That makes training cheap enough for
a laptop CPU: the mono network's logits of every example are computed once and cached, and a
step only runs the head.

Examples are multichannel recordings with microphone geometry and performer positions in
``meta.json`` (:mod:`pcsep_cli.synth.arrays` writes them; any dataset in the evaluate layout
with ``microphones`` does). Each step draws examples, puts the performers' sound at the spot
assumed when only the footprint is known (:func:`~pcsep_cli.train.capture.assumed_sources`:
its centre, lifted) with Gaussian noise on it and on the microphones (a scan's cluster
centre is not the instrument's acoustic centre; a tape measure is not exact), and minimises
the L1 distance between ``mask × |mixture|`` and ``|stem|`` on the model's grid (mono
downmix), masks normalised as the Separator normalises them.

Resuming is exact: a checkpoint holds the head, the optimiser, the step and every random
generator's state; a killed run continues from its last checkpoint with the same draws.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pcsep_cli.errors import DatasetError
from pcsep_cli.progress import Progress, ProgressFn
from pcsep_cli.train.capture import assumed_sources

__all__ = ["SpatialTrainConfig", "spatial_model", "train_spatial"]

_CKPT = "spatial_ckpt.pt"


@dataclass(frozen=True)
class SpatialTrainConfig:
    """Settings of :func:`train_spatial`.

    Attributes:
        base: the mono model (bundled name, directory or Hub id).
        steps: optimiser steps.
        examples_per_step: examples whose losses are summed in a step.
        lr: Adam's learning rate.
        source_noise: standard deviation (m) of the noise on each performer's assumed point.
        mic_noise: standard deviation (m) of the noise on each microphone.
        seconds: seconds of each example used.
        hidden: the head's width.
        notes: components of the head's note model (``SpatialConfig.notes``; 0: none).
        checkpoint_every: steps between checkpoints.
        seed: seeds the draws.
    """

    base: str = "pcsep-base"
    steps: int = 1500
    examples_per_step: int = 4
    lr: float = 3e-3
    source_noise: float = 0.15
    mic_noise: float = 0.03
    seconds: float = 4.0
    hidden: int = 16
    notes: int = 0
    checkpoint_every: int = 100
    seed: int = 0


def spatial_model(base: torch.nn.Module, hidden: int = 16, notes: int = 0) -> Any:
    """A copy of ``base`` with a fresh spatial head (the mono weights shared, frozen)."""
    from pcsep_cli.nets.model import SeparationNet
    from pcsep_cli.nets.spatial import SpatialConfig

    head = SpatialConfig(enabled=True, hidden=hidden, notes=notes)
    cfg = dataclasses.replace(base.config, spatial=head)
    net = SeparationNet(cfg)
    missing, unexpected = net.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("spatial.") for k in missing)
    for name, p in net.named_parameters():
        p.requires_grad_(name.startswith("spatial."))
    return net.eval()


@dataclass
class _Item:
    mixture: np.ndarray  # (C, S) at the model's rate
    target: torch.Tensor  # (P, F, T) |mean-channel stem|
    logits: torch.Tensor  # (P, F, T) float16, the frozen mono net's
    groups: torch.Tensor  # (P,)
    sources: np.ndarray  # (P, 3)
    mics: Any  # Microphones
    factors: tuple[torch.Tensor, torch.Tensor] | None  # the note model of the mixture


def _prepare(net: Any, folder: Path, seconds: float) -> _Item | None:
    from pcsep_cli.nets.spatial import note_factors
    from pcsep_cli.nets.stft import stft
    from pcsep_cli.train.evaluate import read_example

    cfg = net.config
    ex = read_example(folder, cfg.sample_rate, seconds)
    perfs = ex.meta.get("performers", [])
    if ex.microphones is None or len(ex.microphones) < 2 or not perfs:
        return None
    if any(p["instrument"] not in cfg.classes[:-1] for p in perfs):
        return None
    mono = torch.from_numpy(ex.mixture.mean(0))
    mag = stft(mono, cfg.stft).abs()
    stems = torch.from_numpy(np.stack([s.mean(0) for s in ex.stems]))
    target = stft(stems, cfg.stft).abs()
    labels = torch.tensor([cfg.classes.index(p["instrument"]) for p in perfs])
    with torch.inference_mode():
        emb, _ = net.encode_condition(labels)
        film = net.cond_trunk(emb)
        logits = net.mask_logits(mag[None, None], film, torch.zeros(len(perfs), dtype=torch.long))
        # The mixture is the same at every draw (only the assumed places move): factor it once.
        factors = note_factors(mag, cfg.spatial.notes) if cfg.spatial.notes else None
    return _Item(
        ex.mixture.astype(np.float32),
        target.half(),
        logits[:, 0].half(),
        labels,
        assumed_sources(perfs),
        ex.microphones,
        factors,
    )


def _loss(net: Any, item: _Item, rng: np.random.Generator, tc: SpatialTrainConfig) -> torch.Tensor:
    from pcsep_cli.nets.spatial import steering
    from pcsep_cli.nets.stft import stft
    from pcsep_cli.separate.masks import normalise

    cfg = net.config
    spec = stft(torch.from_numpy(item.mixture), cfg.stft)  # (C, F, T)
    mono = spec.mean(0).abs()
    src = item.sources + rng.normal(0.0, tc.source_noise, item.sources.shape)
    mic = item.mics.positions + rng.normal(0.0, tc.mic_noise, item.mics.positions.shape)
    freqs = cfg.stft.frequencies(cfg.sample_rate)
    steer = steering(
        src, mic, item.mics.directions, item.mics.coefficients, freqs, cfg.spatial.speed_of_sound
    )
    masks = normalise(
        net.spatial_masks(spec, mono, item.logits.float(), steer, item.groups, item.factors)
    )
    target = item.target.float()
    return (masks * mono[None] - target).abs().mean() / (target.mean() + 1e-8)


def _rng_state(rng: np.random.Generator) -> dict:
    return rng.bit_generator.state


def train_spatial(
    data: str | Path,
    out: str | Path,
    tc: SpatialTrainConfig = SpatialTrainConfig(),
    *,
    progress: ProgressFn | None = None,
) -> Path:
    """Train a spatial head on the examples under ``data`` and save the whole model.

    Args:
        data: a folder of example folders (searched two levels deep for ``meta.json``).
        out: the run's folder: the checkpoint and, at the end, ``model/``.
        tc: settings.
        progress: stage ``train`` events (steps), ``metrics`` the running loss.

    Returns:
        ``out/model``, a model directory (``config.json`` with ``spatial.enabled``).

    Raises:
        DatasetError: no usable example (multichannel, with microphones and positions).
    """
    from pcsep_cli.hub.models import load_model

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(tc.seed)
    base = load_model(tc.base, device="cpu")
    net = spatial_model(base, tc.hidden, tc.notes)
    root = Path(data)
    folders = sorted(p.parent for pat in ("*/meta.json", "*/*/meta.json") for p in root.glob(pat))
    items = [it for it in (_prepare(net, f, tc.seconds) for f in folders) if it is not None]
    if not items:
        raise DatasetError(
            "no example with microphones, positions and more than one channel",
            data,
            "write some with pcsep_cli.synth.arrays.write_array_dataset",
        )
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=tc.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, tc.steps) / tc.steps))
    )
    rng = np.random.default_rng(tc.seed)
    step, hist, spent = 0, [], 0.0
    ckpt = out / _CKPT
    if ckpt.is_file():
        state = torch.load(ckpt, weights_only=False)
        net.spatial.load_state_dict(state["head"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        rng.bit_generator.state = state["rng"]
        step, hist, spent = state["step"], state["hist"], state["seconds"]
    t0 = time.monotonic()
    while step < tc.steps:
        opt.zero_grad()
        picks = rng.integers(len(items), size=tc.examples_per_step)
        loss = sum(_loss(net, items[int(i)], rng, tc) for i in picks) / tc.examples_per_step
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        hist.append(float(loss.detach()))
        if progress is not None:
            progress(Progress("train", step, tc.steps, "step", metrics={"loss": hist[-1]}))
        if step % tc.checkpoint_every == 0 or step == tc.steps:
            tmp = ckpt.with_suffix(".tmp")
            torch.save(
                {
                    "head": net.spatial.state_dict(),
                    "opt": opt.state_dict(),
                    "sched": sched.state_dict(),
                    "rng": _rng_state(rng),
                    "step": step,
                    "hist": hist,
                    "seconds": spent + time.monotonic() - t0,
                },
                tmp,
            )
            tmp.replace(ckpt)
    spent += time.monotonic() - t0
    model_dir = net.save_pretrained(out / "model")
    (out / "train_log.json").write_text(
        json.dumps(
            {
                "config": dataclasses.asdict(tc),
                "examples": len(items),
                "steps": step,
                "train_seconds": round(spent, 1),
                "loss_first_100": float(np.mean(hist[:100])),
                "loss_last_100": float(np.mean(hist[-100:])),
            },
            indent=2,
        )
        + "\n"
    )
    return model_dir
