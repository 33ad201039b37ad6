"""Sparse 3D convolution in plain PyTorch, with torchsparse 2.1's conventions.

torchsparse is not on PyPI and its CPU path cannot run 3×3×3 or strided convs; spconv's CPU
build is wrong with more than one thread. This package runs everywhere torch runs and hands
work to torchsparse when it is installed and the tensor is on CUDA (see
:mod:`pcsep_cli.sparse.engine`). Weights are interchangeable with torchsparse 2.1.

Conventions:
    - ``SparseTensor(coords [N, 4] int32 (batch, x, y, z), feats [N, C], stride)``; coords
      are at the tensor's resolution (divided by its cumulative ``stride``).
    - ``Conv3d.kernel`` is ``[K, Cin, Cout]``, K = kx·ky·kz; offset ``k`` holds displacement
      ``d = i - (size - 1) // 2`` per axis, x fastest for odd kernel volumes (z fastest for
      even ones, as torchsparse); ``out[o] = Σ_k in[o·s + d_k·dilation] @ kernel[k]``.
    - A strided conv has an output wherever at least one input lies in its receptive field;
      a transposed conv goes back onto the strided conv's input voxels with the same map.
    - Kernel maps are cached in ``SparseTensor.cache``, shared by all tensors a network
      derives from one input, keyed by (coords, stride, kernel, conv stride, dilation).
    - On the CPU each thread keeps its conv scratch buffers between calls (fresh large
      blocks cost a page fault per 4 KiB); :func:`release_workspace` frees them.

Example:
    >>> import torch
    >>> from pcsep_cli.sparse import Conv3d, SparseTensor, voxelize
    >>> vox = voxelize(torch.rand(1000, 3), 0.1)
    >>> x = SparseTensor(vox.coords, vox.feats)
    >>> y = Conv3d(3, 8, kernel_size=3)(x)
    >>> y.feats.shape[1]
    8
"""

from pcsep_cli.sparse.engine import ENGINES, resolve_engine
from pcsep_cli.sparse.functional import conv3d, release_workspace
from pcsep_cli.sparse.kmap import KernelMap, kernel_offsets
from pcsep_cli.sparse.nn import BatchNorm, Conv3d, ReLU, global_avg_pool, global_max_pool
from pcsep_cli.sparse.tensor import KernelCache, SparseTensor
from pcsep_cli.sparse.voxelize import Voxelized, voxelize

__all__ = [
    "ENGINES",
    "BatchNorm",
    "Conv3d",
    "KernelCache",
    "KernelMap",
    "ReLU",
    "SparseTensor",
    "Voxelized",
    "conv3d",
    "global_avg_pool",
    "global_max_pool",
    "kernel_offsets",
    "release_workspace",
    "resolve_engine",
    "voxelize",
]
