"""The losses of one training step: separation, classification and alignment.

Every loss is a mean over the step's whole batch. A process of a distributed run holds only a
share of it, so each loss is written as a sum over the items it holds divided by the size of
the whole batch (:class:`Totals`, summed over the processes before the forward pass): the
processes' losses then add up to the loss one process computes over the whole batch, and so do
their gradients.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pcsep_cli.nets.model import SeparationNet
from pcsep_cli.train.batch import Batch
from pcsep_cli.train.config import TrainConfig

TERMS = ("sep", "cls", "acc", "align")
Precision = Callable[[], contextlib.AbstractContextManager]


@dataclass(frozen=True)
class Totals:
    """Sizes of a step's whole batch: the denominators of its means.

    Attributes:
        performers: performer rows (distractors included).
        mix_sum: sum of the mixture magnitudes behind every performer row (the scale of the
            ``l1_ratio`` loss).
        clouds: clouds of the visual-only batch.
    """

    performers: float
    mix_sum: float
    clouds: float

    @staticmethod
    def local(batch: Batch, extra: tuple[Any, Tensor] | None = None) -> Tensor:
        """``(performers, mix_sum, clouds)`` of the items this process holds, float64 on the
        batch's device (sum them over the processes, then :meth:`from_tensor`)."""
        per_mix = batch.mix_mag.sum(dim=(1, 2, 3), dtype=torch.float64)
        mix_sum = float(per_mix.index_select(0, batch.mix_index).sum())
        clouds = 0 if extra is None else len(extra[1])
        values = [len(batch.mix_index), mix_sum, clouds]
        return torch.tensor(values, dtype=torch.float64, device=batch.mix_mag.device)

    @classmethod
    def from_tensor(cls, values: Tensor) -> Totals:
        """From the (summed) :meth:`local` tensor."""
        performers, mix_sum, clouds = values.tolist()
        return cls(performers, mix_sum, clouds)


def separation_loss(
    out_masks: Tensor, out_logits: Tensor, batch: Batch, kind: str, totals: Totals
) -> Tensor:
    """This process's share of the separation loss of the step.

    Args:
        out_masks: ``(P, 1, F, T)`` predicted masks in [0, 1].
        out_logits: ``(P, 1, F, T)`` the same before the sigmoid.
        batch: the batch (mixture and target magnitudes).
        kind: ``"l1_ratio"`` or ``"bce_binary"``.
        totals: sizes of the whole batch.
    """
    mix = batch.mix_mag.index_select(0, batch.mix_index)
    elements = totals.performers * batch.src_mag[0].numel()
    if kind == "l1_ratio":
        # Normalised by the mixture's mean magnitude so loud and quiet batches weigh alike.
        mean_mix = totals.mix_sum / elements
        return (out_masks * mix - batch.src_mag).abs().sum() / elements / (mean_mix + 1e-8)
    # The paper's target: 1 where this performer dominates the mixture's other performers.
    others = torch.zeros_like(batch.src_mag)
    others.index_reduce_(0, batch.mix_index, batch.src_mag, "amax", include_self=False)
    best = others.index_select(0, batch.mix_index)
    target = ((batch.src_mag >= best) & (batch.src_mag > 0)).float()
    weight = torch.log1p(mix).clamp(1e-3, 10)
    bce = F.binary_cross_entropy_with_logits(out_logits, target, weight=weight, reduction="sum")
    return bce / elements


def loss_terms(
    model: SeparationNet,
    batch: Batch,
    cfg: TrainConfig,
    extra: tuple[Any, Tensor] | None = None,
    totals: Totals | None = None,
    precision: Precision | None = None,
) -> dict[str, Tensor]:
    """Separation, classification and alignment losses (and accuracy) of one step, as this
    process's shares (see the module docstring).

    Args:
        model: the network.
        batch: the separation batch (this process's mixtures).
        cfg: training config.
        extra: ``(SparseTensor, labels)`` clouds for the visual encoder alone (labels steps).
        totals: sizes of the whole batch; ``None``: this batch is the whole batch.
        precision: makes the context the network runs in (autocast); the losses are float32.
    """
    if totals is None:
        totals = Totals.from_tensor(Totals.local(batch, extra))
    precision = precision or contextlib.nullcontext
    with precision():
        out = model(batch.mix_mag, batch.cond, batch.mix_index)
    sep = separation_loss(out.masks.float(), out.mask_logits.float(), batch, cfg.loss, totals)
    terms = {"sep": sep}
    zero = batch.mix_mag.new_zeros(())
    if isinstance(batch.cond, Tensor):
        emb, logits, labels, count = None, None, None, totals.clouds
        if extra is not None:
            with precision():
                emb, logits = model.encode_condition(extra[0])
            labels = extra[1]
    else:
        emb, logits, labels = out.embedding, out.class_logits, batch.labels
        count = totals.performers
    if logits is None:
        terms.update(cls=zero, align=zero, acc=zero)
        return terms
    logits = logits.float()
    terms["cls"] = F.cross_entropy(logits, labels, reduction="sum") / count
    terms["acc"] = (logits.argmax(1) == labels).sum() / count
    terms["align"] = zero
    if model.accepts_labels and cfg.align_weight:
        target = model.label_embedding(labels).detach()
        align = F.mse_loss(emb.float(), target, reduction="sum")
        terms["align"] = align / (count * emb.shape[1])
    return terms


def total_loss(terms: dict[str, Tensor], cfg: TrainConfig) -> Tensor:
    """The loss minimised: separation plus the weighted classification and alignment."""
    return terms["sep"] + cfg.cls_weight * terms["cls"] + cfg.align_weight * terms["align"]


class StepLosses(nn.Module):
    """The network and its losses in one ``forward``, so that ``DistributedDataParallel``
    sees every use of every parameter in a step (the visual-only clouds go through the visual
    encoder outside the network's own ``forward``).

    Args:
        net: the network (its parameters are this module's).
        cfg: training config.
        precision: makes the forward pass's context (:meth:`Runtime.autocast`).
    """

    def __init__(
        self, net: SeparationNet, cfg: TrainConfig, precision: Precision | None = None
    ) -> None:
        super().__init__()
        self.net = net
        self.cfg = cfg
        self.precision = precision

    def forward(
        self, batch: Batch, extra: tuple[Any, Tensor] | None, totals: Totals
    ) -> dict[str, Tensor]:
        """:func:`loss_terms` of ``self.net``."""
        return loss_terms(self.net, batch, self.cfg, extra, totals, self.precision)
