"""BatchNorm over the whole batch of a distributed run, on the CPU (gloo) and CUDA (NCCL) alike.

In a distributed run each process holds a share of the batch, and a plain BatchNorm layer would
normalise by that share's statistics: the losses would then differ from one process's over the
whole batch. ``torch.nn.SyncBatchNorm`` sums the statistics over the processes but runs on GPUs
only, and does not take pcsep's sparse tensors. :func:`sync_batch_norm` swaps every BatchNorm
layer of a network for :class:`SyncBatchNorm`, which keeps the layer's parameters and buffers
(the same tensor objects: the optimiser and ``state_dict`` see no change) and computes the
statistics of the whole batch with one all-reduce in the forward pass and one in the backward
pass (:class:`_AllSum` carries the gradient). Evaluation mode uses the running statistics,
which every process updates alike, and communicates nothing.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from pcsep_cli.sparse import BatchNorm as SparseBatchNorm


class _AllSum(torch.autograd.Function):
    """Sum over the processes, differentiable: each process's sum feeds every process's loss,
    so the gradient of each input is the sum of the gradients of the output."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor, group: Any) -> Tensor:  # type: ignore[override]
        ctx.group = group
        out = tensor.clone()
        dist.all_reduce(out, group=group)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        out = grad.clone()
        dist.all_reduce(out, group=ctx.group)
        return out, None


class SyncBatchNorm(_BatchNorm):
    """A BatchNorm layer whose training statistics cover every process's share of the batch.

    Args:
        source: the layer to stand in for (``nn.BatchNorm1d/2d/3d`` or
            :class:`pcsep_cli.sparse.BatchNorm`); its parameters and buffers are shared.
        group: the process group to reduce over.

    Shapes:
        ``(N, C, ...)`` → the same; for a sparse layer ``SparseTensor(feats [N, C])`` → the
        same voxels with normalised feats. A process may hold N = 0 rows.
    """

    def __init__(self, source: _BatchNorm, group: Any) -> None:
        super().__init__(
            source.num_features,
            source.eps,
            source.momentum,
            source.affine,
            source.track_running_stats,
        )
        for name in ("weight", "bias"):
            setattr(self, name, getattr(source, name))
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            setattr(self, name, getattr(source, name))
        self.sparse = isinstance(source, SparseBatchNorm)
        self.group = group
        self.train(source.training)

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected (N, C, ...) input, got {tuple(input.shape)}")

    def forward(self, x: Any) -> Any:  # type: ignore[override]
        """Normalise ``x`` (a tensor, or a ``SparseTensor``'s feats)."""
        feats = x.feats if self.sparse else x
        self._check_input_dim(feats)
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
        if self.training:
            out = self._normalise(feats)
        else:
            stats = (self.running_mean, self.running_var)
            out = F.batch_norm(feats, *stats, self.weight, self.bias, False, 0.0, self.eps)
        return x.replace(out) if self.sparse else out

    def _normalise(self, x: Tensor) -> Tensor:
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()  # as cuDNN does under autocast: x² overflows float16 past 256
        dims = [d for d in range(x.dim()) if d != 1]
        count = x.numel() // x.shape[1]
        # Sums in float64: var = E[x²] - E[x]² then loses nothing that matters.
        local = torch.cat(
            (
                x.sum(dims, dtype=torch.float64),
                x.square().sum(dims, dtype=torch.float64),
                x.new_full((1,), count, dtype=torch.float64),
            )
        )
        total = _AllSum.apply(local, self.group)
        c = x.shape[1]
        n = float(total[-1].detach())
        if n < 2:
            raise ValueError(f"BatchNorm needs more than 1 value per channel, got {n:.0f}")
        mean = total[:c] / n
        var = (total[c : 2 * c] / n - mean.square()).clamp_min(0)
        if self.track_running_stats:
            factor = self.momentum
            if factor is None:  # cumulative average, as nn.BatchNorm
                factor = 1.0 / float(self.num_batches_tracked)
            with torch.no_grad():
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), factor)
                unbiased = var * (n / (n - 1))
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), factor)
        shape = [1, c] + [1] * (x.dim() - 2)
        scale = torch.rsqrt(var + self.eps).to(x.dtype)
        shift = (-mean).to(x.dtype)
        if self.weight is not None:
            scale = scale * self.weight
        out = (x + shift.view(shape)) * scale.view(shape)
        if self.bias is not None:
            out = out + self.bias.view(shape)
        return out


def sync_batch_norm(module: nn.Module, group: Any) -> int:
    """Swap, in place, every BatchNorm layer under ``module`` for a :class:`SyncBatchNorm`
    sharing its parameters and buffers.

    Returns:
        How many layers were swapped.
    """
    swapped = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, _BatchNorm) and not isinstance(child, SyncBatchNorm):
                setattr(parent, name, SyncBatchNorm(child, group))
                swapped += 1
    return swapped
