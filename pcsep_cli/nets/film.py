"""FiLM: feature-wise affine conditioning of audio features on a performer embedding.

``y = x * (1 + gamma(e)) + beta(e)`` per channel (Perez et al., 2018). The projection starts
at zero so an untrained model passes features through unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn


@dataclass(frozen=True)
class FiLMConfig:
    """Conditioning layers.

    Attributes:
        cond_dim: size of the conditioning vector (the visual embedding, or the label
            embedding in ``"labels"`` mode).
        hidden: width of a hidden ReLU layer shared by all FiLM layers (0: none).
    """

    cond_dim: int = 128
    hidden: int = 128

    def __post_init__(self) -> None:
        if self.cond_dim < 1:
            raise ValueError(f"film.cond_dim must be >= 1, got {self.cond_dim}")
        if self.hidden < 0:
            raise ValueError(f"film.hidden must be >= 0, got {self.hidden}")


class FiLM(nn.Module):
    """Per-channel scale and shift of ``(P, C, H, W)`` features from ``(P, D)`` conditions.

    Args:
        cond_dim: D.
        channels: C.
    """

    def __init__(self, cond_dim: int, channels: int) -> None:
        super().__init__()
        self.proj = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        """Condition features.

        Args:
            x: features ``(P, C, H, W)``.
            cond: conditions ``(P, D)``.

        Returns:
            ``(P, C, H, W)``.
        """
        gamma, beta = self.proj(cond).chunk(2, dim=1)
        return x * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]


class CondTrunk(nn.Module):
    """Shared projection of the raw embedding before the per-layer FiLM heads."""

    def __init__(self, in_dim: int, cfg: FiLMConfig) -> None:
        super().__init__()
        if cfg.hidden:
            self.net: nn.Module = nn.Sequential(
                nn.Linear(in_dim, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.cond_dim)
            )
        elif in_dim == cfg.cond_dim:
            self.net = nn.Identity()
        else:
            self.net = nn.Linear(in_dim, cfg.cond_dim)

    def forward(self, emb: Tensor) -> Tensor:
        """``(P, in_dim)`` → ``(P, cond_dim)``."""
        return self.net(emb)
