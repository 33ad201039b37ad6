"""Sparse 3D convolution in plain PyTorch (the ``"torch"`` engine).

``out[o] = Σ_k in[o·s + d_k·dilation] @ W[k]`` (cross-correlation, torchsparse 2.1 offsets,
see :mod:`pcsep_cli.sparse.kmap`). The input rows of all pairs are gathered at once into a
chunked work buffer, one ``torch.bmm`` multiplies every chunk by its offset's ``W[k]``, and
the products are summed into their output rows by a CSR sum (``F.embedding_bag``: vectorised
and parallel, where ``index_add_`` goes row by row). The centre offset of a submanifold conv
is a plain matmul. The backward pass is written out (not traced): gathers are recomputed
instead of stored, and the input gradient is one CSR sum in the other direction.

Dense equivalent, for an odd kernel on a grid laid out ``(B, C, X, Y, Z)`` (x = depth):
``F.conv3d(dense, W.view(kz, ky, kx, Cin, Cout).permute(4, 3, 2, 1, 0), stride=s,
padding=(k-1)//2·dilation, dilation=dilation)`` read at the sparse outputs; for an even
kernel the view is ``(kx, ky, kz, Cin, Cout)`` and the permutation ``(4, 3, 0, 1, 2)``.
"""

from __future__ import annotations

import threading

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from pcsep_cli.sparse.kmap import (
    KernelMap,
    PaddedLayout,
    Triple,
    build_strided_map,
    build_submanifold_map,
)
from pcsep_cli.sparse.tensor import SparseTensor, as_triple


class _Workspace(threading.local):
    """Scratch buffers reused from call to call, one set per thread.

    A conv's intermediate ``[pairs, C]`` block is tens of MB; a fresh block of that size
    comes from mmap and pays a page fault per 4 KiB on every call (on a small VM that costs
    more than the matmuls). Reusing one block per thread avoids it; the memory is kept until
    :func:`release_workspace`.
    """

    def __init__(self) -> None:
        self.buffers: dict[tuple[str, torch.dtype, torch.device], Tensor] = {}

    def get(self, name: str, rows: int, cols: int, like: Tensor) -> Tensor:
        if like.device.type != "cpu":  # the CUDA caching allocator already reuses blocks
            return like.new_empty((rows, cols))
        key = (name, like.dtype, like.device)
        buf = self.buffers.get(key)
        if buf is None or buf.numel() < rows * cols:
            # A normal tensor even under inference_mode, so later training calls may use it.
            with torch.inference_mode(False):
                buf = torch.empty(
                    int(rows * cols * 1.25) + 1024, dtype=like.dtype, device=like.device
                )
            self.buffers[key] = buf
        return buf[: rows * cols].view(rows, cols)


_workspace = _Workspace()


def release_workspace() -> None:
    """Free this thread's scratch buffers (they are rebuilt on the next conv)."""
    _workspace.buffers.clear()


def _scatter_sum(work: Tensor, kmap: KernelMap, side: str) -> Tensor:
    """Sum padded work rows ``[rows, C]`` into ``[n_side, C]`` (CSR sum, no atomics)."""
    col, offsets = kmap.scatter_plan(side)
    return F.embedding_bag(col, work, offsets, mode="sum")


def _chunks(work: Tensor, lay: PaddedLayout) -> Tensor:
    return work.view(lay.chunks, lay.chunk, work.shape[1])


def _batched(lay: PaddedLayout, c_in: int, c_out: int) -> bool:
    """One ``bmm`` over chunks, or one ``mm`` per group?

    ``bmm`` needs the kernel copied per chunk and (backward) a weight gradient per chunk,
    ``chunks × Cin × Cout`` each: cheap while chunks are taller than the layer is wide. Maps
    with short chunks are small, and their per-group matmuls are too small to go parallel.
    """
    return lay.chunk >= 2 * max(c_in, c_out)


def _groups(kmap: KernelMap, lay: PaddedLayout) -> list[tuple[int, int, int]]:
    return [(k, a, a + i.numel()) for (k, i, _), a in zip(kmap.groups, lay.starts, strict=True)]


def _apply(feats: Tensor, weight: Tensor, kmap: KernelMap) -> Tensor:
    """``[n_in, Cin]`` features through ``weight [K, Cin, Cout]`` along ``kmap``."""
    c_in, c_out = weight.shape[1], weight.shape[2]
    if kmap.groups:
        # One gather, one (batched) matmul, one CSR sum: few, large parallel regions.
        lay = kmap.layout()
        gathered = _workspace.get("gather", lay.rows, c_in, feats)
        torch.index_select(feats, 0, kmap.gather_index("in"), out=gathered)
        partial = _workspace.get("partial", lay.rows, c_out, feats)
        if _batched(lay, c_in, c_out):
            w = weight.index_select(0, lay.kernel_index)
            torch.bmm(_chunks(gathered, lay), w, out=_chunks(partial, lay))
        else:
            for k, a, b in _groups(kmap, lay):
                torch.mm(gathered[a:b], weight[k], out=partial[a:b])
        out = _scatter_sum(partial, kmap, "out")
        if kmap.identity is not None:
            out.addmm_(feats, weight[kmap.identity])
    elif kmap.identity is not None:
        out = feats @ weight[kmap.identity]
    else:
        out = feats.new_zeros((kmap.n_out, c_out))
    return out


class _SparseConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, feats: Tensor, weight: Tensor, kmap: KernelMap) -> Tensor:  # type: ignore[override]
        ctx.kmap = kmap
        ctx.save_for_backward(feats, weight)
        return _apply(feats, weight, kmap)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, Tensor | None, None]:  # type: ignore[override]
        feats, weight = ctx.saved_tensors
        kmap: KernelMap = ctx.kmap
        grad_out = grad_out.contiguous()
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        c_in, c_out = weight.shape[1], weight.shape[2]
        grad_x = grad_w = None
        if need_w:
            grad_w = torch.zeros_like(weight)
            if kmap.identity is not None:
                torch.mm(feats.t(), grad_out, out=grad_w[kmap.identity])
        if kmap.groups:
            lay = kmap.layout()
            batched = _batched(lay, c_in, c_out)
            go = _workspace.get("gather_grad", lay.rows, c_out, feats)
            torch.index_select(grad_out, 0, kmap.gather_index("out"), out=go)
            go.index_fill_(0, lay.pad_rows, 0)  # padding must not reach the weight gradient
            if need_w:
                g = _workspace.get("gather", lay.rows, c_in, feats)
                torch.index_select(feats, 0, kmap.gather_index("in"), out=g)
                if batched:
                    per_chunk = torch.bmm(_chunks(g, lay).transpose(1, 2), _chunks(go, lay))
                    grad_w.index_add_(0, lay.kernel_index, per_chunk)
                else:
                    for k, a, b in _groups(kmap, lay):
                        torch.mm(g[a:b].t(), go[a:b], out=grad_w[k])
            if need_x:
                partial = _workspace.get("partial", lay.rows, c_in, feats)
                if batched:
                    w_t = weight.index_select(0, lay.kernel_index).transpose(1, 2)
                    torch.bmm(_chunks(go, lay), w_t, out=_chunks(partial, lay))
                else:
                    for k, a, b in _groups(kmap, lay):
                        torch.mm(go[a:b], weight[k].t(), out=partial[a:b])
                grad_x = _scatter_sum(partial, kmap, "in")
        if need_x:
            if kmap.identity is not None:
                grad_x = (
                    grad_out @ weight[kmap.identity].t()
                    if grad_x is None
                    else grad_x.addmm_(grad_out, weight[kmap.identity].t())
                )
            elif grad_x is None:
                grad_x = feats.new_zeros((kmap.n_in, c_in))
        return grad_x, grad_w, None


def _autocast_enabled(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4: no device argument
        if device_type == "cpu":
            return torch.is_autocast_cpu_enabled()
        return device_type == "cuda" and torch.is_autocast_enabled()


def submanifold_map(x: SparseTensor, kernel_size: Triple, dilation: Triple) -> KernelMap:
    """The (cached) kernel map of a stride-1 conv on ``x``."""
    key = (x.stride, kernel_size, dilation)
    kmap = x.cache.get("subm", x.coords, *key)
    if kmap is None:
        kmap = build_submanifold_map(x.coords, kernel_size, dilation)
        x.cache.put("subm", x.coords, *key, value=kmap)
    return kmap


def strided_map(
    x: SparseTensor, kernel_size: Triple, stride: Triple, dilation: Triple
) -> tuple[Tensor, KernelMap]:
    """The (cached) output coords and kernel map of a strided conv on ``x``.

    Also records the map under the output coords, for the transposed conv that comes back.
    """
    key = (x.stride, kernel_size, stride, dilation)
    hit = x.cache.get("down", x.coords, *key)
    if hit is None:
        hit = build_strided_map(x.coords, kernel_size, stride, dilation)
        x.cache.put("down", x.coords, *key, value=hit)
        out_stride = tuple(a * b for a, b in zip(x.stride, stride, strict=True))
        up_key = (out_stride, kernel_size, stride, dilation)
        x.cache.put("up", hit[0], *up_key, value=(x.coords, x.stride, hit[1]))
    return hit


def conv3d(
    x: SparseTensor,
    weight: Tensor,
    kernel_size: int | Triple = 3,
    stride: int | Triple = 1,
    dilation: int | Triple = 1,
    bias: Tensor | None = None,
    transposed: bool = False,
) -> SparseTensor:
    """Sparse 3D convolution with torchsparse 2.1 semantics, in plain PyTorch.

    Args:
        x: input ``SparseTensor(coords [N, 4], feats [N, Cin])``.
        weight: ``[K, Cin, Cout]`` (K = kx·ky·kz), or ``[Cin, Cout]`` for a 1×1×1 kernel.
        kernel_size: int or (kx, ky, kz).
        stride: 1 for a submanifold conv (outputs = inputs); > 1 downsamples (outputs where
            any input lies in the receptive field, coords divided by the stride) or, with
            ``transposed``, upsamples back onto the coordinates the matching strided conv
            started from.
        dilation: int or (dx, dy, dz).
        bias: ``[Cout]`` or ``None``.
        transposed: transposed conv; reuses the kernel map of the strided conv with the same
            kernel, stride and dilation that produced ``x``.

    Returns:
        ``SparseTensor(coords [M, 4], feats [M, Cout])`` sharing ``x``'s cache.

    Under autocast the conv runs in the weight's dtype (float32), whatever the features': the
    plain matmuls would otherwise go to half precision and the ``out=`` ones not, so the output
    dtype would depend on the voxels' layout and the backward would mix dtypes.

    Raises:
        ValueError: weight shape, or a transposed strided conv with no matching strided conv.
    """
    device_type = x.feats.device.type
    if _autocast_enabled(device_type):
        with torch.autocast(device_type, enabled=False):
            x = x.replace(x.feats.to(weight.dtype))
            return conv3d(x, weight, kernel_size, stride, dilation, bias, transposed)
    ks = as_triple(kernel_size, "kernel_size")
    st = as_triple(stride, "stride")
    dl = as_triple(dilation, "dilation")
    kv = ks[0] * ks[1] * ks[2]
    w = weight.unsqueeze(0) if weight.dim() == 2 else weight
    if w.dim() != 3 or w.shape[0] != kv or w.shape[1] != x.num_channels:
        raise ValueError(
            f"weight must be [{kv}, {x.num_channels}, Cout] for kernel {ks} on "
            f"{x.num_channels} channels, got {tuple(weight.shape)}"
        )
    if bias is not None and bias.shape != (w.shape[2],):
        raise ValueError(f"bias must be [{w.shape[2]}], got {tuple(bias.shape)}")
    coords, out_stride = x.coords, x.stride
    if st == (1, 1, 1):
        if kv == 1:
            feats = x.feats @ w[0]
        else:
            kmap = submanifold_map(x, ks, dl)
            feats = _SparseConv.apply(x.feats, w, kmap.transposed() if transposed else kmap)
    elif not transposed:
        coords, kmap = strided_map(x, ks, st, dl)
        out_stride = tuple(a * b for a, b in zip(x.stride, st, strict=True))
        feats = _SparseConv.apply(x.feats, w, kmap)
    else:
        hit = x.cache.get("up", x.coords, x.stride, ks, st, dl)
        if hit is None:
            raise ValueError(
                f"transposed conv (kernel {ks}, stride {st}, dilation {dl}) found no strided "
                f"conv with the same settings that produced this stride-{x.stride} tensor; "
                "run it on a tensor derived from that strided conv's output"
            )
        coords, out_stride, kmap = hit
        feats = _SparseConv.apply(x.feats, w, kmap.transposed())
    if bias is not None:
        feats = feats + bias
    return SparseTensor._derived(coords, feats, out_stride, x.batch_size, x.cache)
