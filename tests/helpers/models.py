"""Tiny random separation models, in memory or saved as a model folder."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from pcsep_cli.nets.model import SeparationNet
from pcsep_cli.train.config import load_train_config


def tiny_net(seed: int = 0, sample_rate: int | None = None, conditioning: str = "both"):
    """A random tiny model whose classifier never says ``none`` (so every cluster is a stem)."""
    cfg = load_train_config("tiny").model
    cfg = dataclasses.replace(cfg, conditioning=conditioning)
    if sample_rate:
        cfg = dataclasses.replace(cfg, sample_rate=sample_rate)
    torch.manual_seed(seed)
    net = SeparationNet(cfg)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
        if net.visual is not None:
            net.visual.classify[-1].bias[-1] = -1e4
    return net.eval()


def save_tiny(path: Path, **kwargs) -> Path:  # noqa: ANN003
    return tiny_net(**kwargs).save_pretrained(path)


def spatial_tiny(seed: int = 0, head: bool = True, hidden: int = 4):
    """:func:`tiny_net` with a spatial head (issue 15); ``head``: random weights on all of the
    head, so that it matters (else the fresh head, whose last layer is zero)."""
    from pcsep_cli.train.spatial import spatial_model

    net = spatial_model(tiny_net(seed), hidden=hidden)
    if head:
        torch.manual_seed(seed + 100)
        with torch.no_grad():
            for p in net.spatial.head.parameters():
                p.copy_(0.5 * torch.randn_like(p))
    return net.eval()
