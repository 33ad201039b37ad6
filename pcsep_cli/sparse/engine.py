"""Which code runs a sparse conv: pcsep's own (``"torch"``) or torchsparse 2.1.

``engine="auto"`` uses torchsparse when it imports and the tensor is on CUDA (its CPU path
cannot run 3×3×3 or strided convs), and pcsep's engine everywhere else. Both follow the same
conventions, so the weights are the same tensors either way. Each decision is logged once,
at INFO level, on the ``pcsep_cli.sparse`` logger.
"""

from __future__ import annotations

import functools
import importlib
import logging
from typing import Any

import torch
from torch import Tensor

from pcsep_cli.errors import ModelError
from pcsep_cli.sparse.tensor import SparseTensor, Triple

ENGINES = ("auto", "torch", "torchsparse")

logger = logging.getLogger("pcsep_cli.sparse")
_announced: set[tuple[str, str]] = set()


@functools.cache
def torchsparse_module() -> Any | None:
    """The imported ``torchsparse`` package, or ``None`` when it does not import."""
    try:
        return importlib.import_module("torchsparse")
    except Exception:  # noqa: BLE001 - a broken CUDA build fails with many error types
        return None


def _announce(engine: str, reason: str) -> None:
    if (engine, reason) not in _announced:
        _announced.add((engine, reason))
        logger.info("sparse conv engine: %s (%s)", engine, reason)


def resolve_engine(engine: str, device: torch.device, dilation: Triple = (1, 1, 1)) -> str:
    """``"torch"`` or ``"torchsparse"`` for a conv on ``device``.

    Args:
        engine: ``"auto"``, ``"torch"`` or ``"torchsparse"``.
        device: where the features live.
        dilation: torchsparse 2.1 ignores dilation, so ``"auto"`` keeps dilated convs here.

    Raises:
        ValueError: unknown engine name.
        ModelError: ``"torchsparse"`` asked for where it cannot run.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine == "torch":
        _announce("torch", "asked for")
        return "torch"
    usable = torchsparse_module() is not None and device.type == "cuda"
    if engine == "torchsparse":
        if not usable:
            raise ModelError(
                f"engine='torchsparse' needs torchsparse 2.1 and a CUDA tensor (tensor on "
                f"{device}, torchsparse {'imports' if torchsparse_module() else 'missing'})",
                hint="use engine='auto' or 'torch', which run anywhere",
            )
        _announce("torchsparse", "asked for")
        return "torchsparse"
    if not usable:
        why = "tensor on CPU" if device.type != "cuda" else "torchsparse not installed"
        _announce("torch", f"auto: {why}")
        return "torch"
    if dilation != (1, 1, 1):
        _announce("torch", "auto: torchsparse 2.1 has no dilated conv")
        return "torch"
    _announce("torchsparse", "auto: torchsparse imports and the tensor is on CUDA")
    return "torchsparse"


def torchsparse_conv3d(
    x: SparseTensor,
    weight: Tensor,
    kernel_size: Triple,
    stride: Triple,
    dilation: Triple,
    bias: Tensor | None,
    transposed: bool,
    training: bool,
) -> SparseTensor:
    """Run one conv through torchsparse 2.1, keeping its kernel maps in ``x.cache``.

    The strided conv is given padding ``(k - 1) // 2`` so that its receptive field is the
    one pcsep uses (``o·s + d``, see :mod:`pcsep_cli.sparse.kmap`).
    """
    ts = torchsparse_module()
    tsf = importlib.import_module("torchsparse.nn.functional")
    inp = ts.SparseTensor(feats=x.feats, coords=x.coords, stride=x.stride)
    if x.cache.torchsparse is None:
        x.cache.torchsparse = inp._caches
    else:
        inp._caches = x.cache.torchsparse
    padding = tuple((k - 1) // 2 for k in kernel_size)
    out = tsf.conv3d(
        inp,
        weight,
        kernel_size,
        bias=bias,
        stride=stride,
        padding=padding,
        dilation=dilation,
        transposed=transposed,
        training=training,
    )
    return SparseTensor._derived(out.coords, out.feats, tuple(out.stride), x.batch_size, x.cache)
