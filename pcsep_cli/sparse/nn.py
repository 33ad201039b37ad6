"""Sparse layers: Conv3d, BatchNorm, ReLU and per-item global pooling.

Parameter names and shapes are torchsparse 2.1's (``kernel [K, Cin, Cout]``, ``bias``,
BatchNorm's ``weight/bias/running_mean/running_var``), so a ``state_dict`` moves between the
two unchanged.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from pcsep_cli.sparse.engine import ENGINES, resolve_engine, torchsparse_conv3d
from pcsep_cli.sparse.functional import conv3d
from pcsep_cli.sparse.tensor import SparseTensor, as_triple


class Conv3d(nn.Module):
    """Sparse 3D convolution (submanifold, strided, or transposed).

    Args:
        in_channels: Cin.
        out_channels: Cout.
        kernel_size: int or (kx, ky, kz).
        stride: 1: submanifold (outputs on the input voxels). s > 1: downsampling; the
            output's coords are divided by ``s`` and its stride multiplied by ``s``.
            With ``transposed``: upsampling back onto the voxels of the matching strided conv.
        dilation: int or (dx, dy, dz).
        bias: add a learned ``[Cout]`` bias.
        transposed: transposed conv (reuses the matching strided conv's kernel map).
        engine: ``"auto"`` (torchsparse on CUDA when it imports, else pcsep's engine),
            ``"torch"`` or ``"torchsparse"``.

    Attributes:
        kernel: ``[K, Cin, Cout]`` with K = kx·ky·kz, or ``[Cin, Cout]`` for a 1×1×1
            stride-1 kernel (torchsparse's layouts); offset order in
            :mod:`pcsep_cli.sparse.kmap`.
        bias: ``[Cout]`` or ``None``.

    Shapes:
        ``SparseTensor(coords [N, 4], feats [N, Cin])`` → ``SparseTensor(coords [M, 4],
        feats [M, Cout])``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int, int] = 3,
        stride: int | tuple[int, int, int] = 1,
        dilation: int | tuple[int, int, int] = 1,
        bias: bool = False,
        transposed: bool = False,
        engine: str = "auto",
    ) -> None:
        super().__init__()
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"channels must be >= 1, got {in_channels} -> {out_channels}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = as_triple(kernel_size, "kernel_size")
        self.stride = as_triple(stride, "stride")
        self.dilation = as_triple(dilation, "dilation")
        self.transposed = transposed
        self.engine = engine
        self.kernel_volume = math.prod(self.kernel_size)
        if self.kernel_volume == 1 and self.stride == (1, 1, 1):
            shape: tuple[int, ...] = (in_channels, out_channels)
        else:
            shape = (self.kernel_volume, in_channels, out_channels)
        self.kernel = nn.Parameter(torch.empty(shape))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torchsparse's init: uniform in ±1/sqrt(fan), fan = K·Cin (K·Cout if transposed)."""
        fan = (self.out_channels if self.transposed else self.in_channels) * self.kernel_volume
        bound = 1.0 / math.sqrt(fan)
        nn.init.uniform_(self.kernel, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        if self.stride != (1, 1, 1):
            text += f", stride={self.stride}"
        if self.dilation != (1, 1, 1):
            text += f", dilation={self.dilation}"
        if self.bias is None:
            text += ", bias=False"
        if self.transposed:
            text += ", transposed=True"
        return text + f", engine={self.engine!r}"

    def forward(self, x: SparseTensor) -> SparseTensor:
        """Apply the conv; see the class docstring for shapes."""
        if x.num_channels != self.in_channels:
            raise ValueError(
                f"{self.__class__.__name__} expects {self.in_channels} channels, "
                f"got feats {tuple(x.feats.shape)}"
            )
        engine = resolve_engine(self.engine, x.feats.device, self.dilation)
        if engine == "torchsparse":
            return torchsparse_conv3d(
                x,
                self.kernel,
                self.kernel_size,
                self.stride,
                self.dilation,
                self.bias,
                self.transposed,
                self.training,
            )
        return conv3d(
            x,
            self.kernel,
            self.kernel_size,
            self.stride,
            self.dilation,
            self.bias,
            self.transposed,
        )


class BatchNorm(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` over the voxels' features: ``feats [N, C]`` → ``[N, C]``."""

    def forward(self, x: SparseTensor) -> SparseTensor:  # type: ignore[override]
        """Normalise ``x.feats``; coords untouched."""
        return x.replace(super().forward(x.feats))


class ReLU(nn.ReLU):
    """``nn.ReLU`` on the voxels' features."""

    def forward(self, x: SparseTensor) -> SparseTensor:  # type: ignore[override]
        """Rectify ``x.feats``; coords untouched."""
        return x.replace(super().forward(x.feats))


def global_avg_pool(x: SparseTensor) -> Tensor:
    """Mean of the features of each batch item.

    Args:
        x: ``SparseTensor(coords [N, 4], feats [N, C])`` with ``batch_size`` B.

    Returns:
        ``[B, C]``; an item without voxels gets zeros.
    """
    batch = x.coords[:, 0].long()
    sums = x.feats.new_zeros((x.batch_size, x.num_channels)).index_add_(0, batch, x.feats)
    counts = torch.bincount(batch, minlength=x.batch_size).clamp_(min=1)
    return sums / counts.unsqueeze(1).to(sums.dtype)


def global_max_pool(x: SparseTensor) -> Tensor:
    """Channel-wise maximum over the voxels of each batch item.

    Args:
        x: ``SparseTensor(coords [N, 4], feats [N, C])`` with ``batch_size`` B.

    Returns:
        ``[B, C]``; an item without voxels gets zeros.
    """
    index = x.coords[:, 0].long().unsqueeze(1).expand(-1, x.num_channels)
    out = x.feats.new_zeros((x.batch_size, x.num_channels))
    return out.scatter_reduce(0, index, x.feats, reduce="amax", include_self=False)
