"""Point-cloud encoder: a small sparse ResNet from a performer's voxels to an embedding.

``cloud_to_sparse`` batches clouds into one :class:`~pcsep_cli.sparse.SparseTensor`;
``VisualEncoder`` maps it to one embedding and one set of class logits per cloud::

    x = cloud_to_sparse([points_a, points_b], cfg.voxel_size)   # coords [N, 4], feats [N, 3]
    emb, logits = VisualEncoder(cfg)(x)                          # (2, embed_dim), (2, classes)

Layout: stem conv (3×3×3) at full resolution, then per stage a 2×2×2 stride-2 conv and
residual blocks of two 3×3×3 submanifold convs, then global max and mean pooling per cloud
and an MLP head.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pcsep_cli.sparse import (
    BatchNorm,
    Conv3d,
    ReLU,
    SparseTensor,
    global_avg_pool,
    global_max_pool,
    voxelize,
)


@dataclass(frozen=True)
class VisualConfig:
    """Constructor arguments of :class:`VisualEncoder` (JSON primitives only).

    Attributes:
        voxel_size: voxel edge in metres used by :func:`cloud_to_sparse`.
        in_channels: features per voxel (3: the centred xyz :func:`cloud_to_sparse` uses by
            default; add 3 for RGB).
        stem_channels: width of the full-resolution stem conv.
        widths: width of each stage; each stage halves the resolution.
        blocks: residual blocks per stage (same length as ``widths``).
        embed_dim: size of the embedding handed to the FiLM layers.
        num_classes: instrument classes (``none`` included).
        dropout: dropout before the classifier.
    """

    voxel_size: float = 0.03
    in_channels: int = 3
    stem_channels: int = 16
    widths: tuple[int, ...] = (32, 64, 128, 256)
    blocks: tuple[int, ...] = (1, 1, 1, 1)
    embed_dim: int = 128
    num_classes: int = 11
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.voxel_size < 1:
            raise ValueError(f"voxel_size must be in (0, 1) metres, got {self.voxel_size}")
        positive = ("in_channels", "stem_channels", "embed_dim", "num_classes")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.widths or any(w < 1 for w in self.widths):
            raise ValueError(f"widths must be one or more positive ints, got {self.widths}")
        if len(self.blocks) != len(self.widths) or any(b < 0 for b in self.blocks):
            raise ValueError(
                f"blocks must hold one count >= 0 per stage ({len(self.widths)}), got {self.blocks}"
            )
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        fields = dataclasses.asdict(self).items()
        return {k: list(v) if isinstance(v, tuple) else v for k, v in fields}


class _ConvBNReLU(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, engine: str) -> None:
        super().__init__(
            Conv3d(c_in, c_out, kernel, stride=stride, engine=engine),
            BatchNorm(c_out),
            ReLU(inplace=True),
        )


class _ResBlock(nn.Module):
    """Two 3×3×3 submanifold convs with an identity shortcut (ResNet basic block)."""

    def __init__(self, width: int, engine: str) -> None:
        super().__init__()
        self.conv1 = Conv3d(width, width, 3, engine=engine)
        self.bn1 = BatchNorm(width)
        self.conv2 = Conv3d(width, width, 3, engine=engine)
        self.bn2 = BatchNorm(width)

    def forward(self, x: SparseTensor) -> SparseTensor:
        h = torch.relu(self.bn1(self.conv1(x)).feats)
        h = self.bn2(self.conv2(x.replace(h))).feats
        return x.replace(torch.relu(h + x.feats))


class VisualEncoder(nn.Module):
    """Sparse ResNet: voxels of B clouds → B embeddings and B class-logit rows.

    Args:
        cfg: architecture (:class:`VisualConfig`).
        engine: sparse conv engine, ``"auto"`` | ``"torch"`` | ``"torchsparse"``
            (:mod:`pcsep_cli.sparse.engine`); not part of the config since it does not
            change the weights.
    """

    def __init__(self, cfg: VisualConfig, *, engine: str = "auto") -> None:
        super().__init__()
        self.cfg = cfg
        self.stem = _ConvBNReLU(cfg.in_channels, cfg.stem_channels, 3, 1, engine)
        stages, c_in = [], cfg.stem_channels
        for width, n_blocks in zip(cfg.widths, cfg.blocks, strict=True):
            layers: list[nn.Module] = [_ConvBNReLU(c_in, width, 2, 2, engine)]
            layers += [_ResBlock(width, engine) for _ in range(n_blocks)]
            stages.append(nn.Sequential(*layers))
            c_in = width
        self.stages = nn.ModuleList(stages)
        self.embed = nn.Sequential(nn.Linear(2 * c_in, cfg.embed_dim), nn.LayerNorm(cfg.embed_dim))
        self.classify = nn.Sequential(
            nn.ReLU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.embed_dim, cfg.num_classes)
        )

    def forward(self, x: SparseTensor) -> tuple[Tensor, Tensor]:
        """Encode a batch of clouds.

        Args:
            x: ``SparseTensor(coords [N, 4], feats [N, in_channels])`` at stride 1, one batch
                item per cloud (B = ``x.batch_size``; see :func:`cloud_to_sparse`).

        Returns:
            ``(embedding (B, embed_dim), logits (B, num_classes))``. A cloud with no voxels
            gets the embedding of all-zero pooled features.

        Raises:
            ValueError: wrong feature width or a tensor that is not at stride 1.
        """
        if not isinstance(x, SparseTensor):
            raise ValueError(f"VisualEncoder expects a SparseTensor, got {type(x).__name__}")
        if x.num_channels != self.cfg.in_channels or x.stride != (1, 1, 1):
            raise ValueError(
                f"VisualEncoder expects feats [N, {self.cfg.in_channels}] at stride 1, got "
                f"{tuple(x.feats.shape)} at stride {x.stride}"
            )
        h = self.stem(x)
        for stage in self.stages:
            h = stage(h)
        pooled = torch.cat((global_max_pool(h), global_avg_pool(h)), dim=1)
        emb = self.embed(pooled)
        return emb, self.classify(emb)


def cloud_to_sparse(
    points_list: Sequence[Tensor | np.ndarray],
    voxel_size: float,
    features: Sequence[Tensor | np.ndarray] | None = None,
) -> SparseTensor:
    """Batch clouds into one SparseTensor, each centred on its own mean point.

    Centring runs in float64 (georeferenced clouds lose up to 0.5 m in float32); the network
    then gets float32.

    Args:
        points_list: B clouds, each ``[N_i, 3]`` (x, y, z) in metres; a cloud may be empty.
        voxel_size: voxel edge in metres.
        features: B arrays ``[N_i, C]`` of per-point features, or ``None`` for the centred
            xyz (C = 3). Averaged per voxel.

    Returns:
        ``SparseTensor(coords [M, 4], feats [M, C] float32)`` with ``batch_size`` B.

    Raises:
        ValueError: a cloud or feature array of the wrong shape, or B = 0.
    """
    if len(points_list) == 0:
        raise ValueError("cloud_to_sparse needs at least one cloud")
    if features is not None and len(features) != len(points_list):
        raise ValueError(f"{len(features)} feature arrays for {len(points_list)} clouds")
    pts_all, feat_all, batch = [], [], []
    for i, pts in enumerate(points_list):
        p = torch.as_tensor(pts, dtype=torch.float64)
        if p.dim() != 2 or p.shape[1] != 3:
            raise ValueError(f"cloud {i} must be [N, 3], got {tuple(p.shape)}")
        centred = (p - p.mean(dim=0)).to(torch.float32) if len(p) else p.to(torch.float32)
        pts_all.append(centred)
        if features is None:
            feat_all.append(centred)
        else:
            f = torch.as_tensor(features[i]).to(torch.float32)
            if f.dim() != 2 or f.shape[0] != p.shape[0]:
                raise ValueError(f"features {i} must be [{p.shape[0]}, C], got {tuple(f.shape)}")
            feat_all.append(f)
        batch.append(torch.full((p.shape[0],), i, dtype=torch.int64))
    widths = {f.shape[1] for f in feat_all}
    if len(widths) != 1:
        raise ValueError(f"feature arrays differ in width: {sorted(widths)}")
    vox = voxelize(
        torch.cat(pts_all), voxel_size, torch.cat(feat_all), batch=torch.cat(batch), reduce="mean"
    )
    return SparseTensor(vox.coords, vox.feats, batch_size=len(points_list))
