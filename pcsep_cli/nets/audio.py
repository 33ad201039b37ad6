"""The 2D U-Net on the mixture's spectrogram: encoder once per mixture, decoder per performer.

Layout after the paper's code (pix2pix-style): each encoder level halves both axes with a
4×4 stride-2 convolution; each decoder level doubles them (nearest upsampling + 3×3
convolution), is conditioned by FiLM and concatenated with the encoder's skip at that scale.
The decoder runs once per performer, so the skips of a mixture are repeated for each of its
performers (``mix_index``) instead of running the encoder again.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from pcsep_cli.nets.film import FiLM


@dataclass(frozen=True)
class AudioNetConfig:
    """U-Net size.

    Attributes:
        levels: encoder levels; both spectrogram axes are divided by ``2**levels`` at the
            bottleneck, so the network grid's rows must be a multiple of it (frames are
            padded inside the model).
        base_channels: channels of the first level; doubled per level up to ``max_channels``.
        max_channels: cap on channels per level.
    """

    levels: int = 6
    base_channels: int = 16
    max_channels: int = 128

    def __post_init__(self) -> None:
        if not 2 <= self.levels <= 9:
            raise ValueError(f"audio.levels must be in [2, 9], got {self.levels}")
        if self.base_channels < 1:
            raise ValueError(f"audio.base_channels must be >= 1, got {self.base_channels}")
        if self.max_channels < self.base_channels:
            raise ValueError(
                f"audio.max_channels ({self.max_channels}) must be >= base_channels "
                f"({self.base_channels})"
            )

    @property
    def channels(self) -> tuple[int, ...]:
        """Channels of each level, finest first."""
        return tuple(min(self.base_channels * 2**i, self.max_channels) for i in range(self.levels))


def _down(cin: int, cout: int, norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    )


class AudioEncoder(nn.Module):
    """Log-magnitude spectrogram → features at every scale.

    Args:
        cfg: U-Net size.
    """

    def __init__(self, cfg: AudioNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ch = cfg.channels
        self.in_norm = nn.BatchNorm2d(1)
        self.downs = nn.ModuleList(
            _down(1 if i == 0 else ch[i - 1], ch[i], norm=i > 0) for i in range(cfg.levels)
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        """Encode.

        Args:
            x: log-magnitudes ``(B, 1, F, T)``, F and T multiples of ``2**levels``.

        Returns:
            Features per level, finest first: level i is
            ``(B, channels[i], F / 2**(i+1), T / 2**(i+1))``; the last is the bottleneck.
        """
        feats = []
        x = self.in_norm(x)
        for down in self.downs:
            x = down(x)
            feats.append(x)
        return feats


class AudioDecoder(nn.Module):
    """Bottleneck + skips + one condition per performer → mask logits per performer.

    Args:
        cfg: U-Net size.
        cond_dim: size of the conditioning vector fed to the FiLM layers.
    """

    def __init__(self, cfg: AudioNetConfig, cond_dim: int) -> None:
        super().__init__()
        ch = cfg.channels
        n = cfg.levels
        self.film_bottleneck = FiLM(cond_dim, ch[-1])
        # ups[k] produces level n-2-k's resolution; its input is the bottleneck (k = 0) or the
        # previous output concatenated with that level's skip.
        self.ups = nn.ModuleList(
            _up(ch[-1] if k == 0 else 2 * ch[n - 1 - k], ch[n - 2 - k]) for k in range(n - 1)
        )
        self.films = nn.ModuleList(FiLM(cond_dim, ch[n - 2 - k]) for k in range(n - 1))
        self.head = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(2 * ch[0], 1, 3, padding=1),
        )

    def forward(self, feats: list[Tensor], cond: Tensor, mix_index: Tensor) -> Tensor:
        """Decode one mask per performer.

        Args:
            feats: encoder output for B mixtures (see :meth:`AudioEncoder.forward`).
            cond: conditions ``(P, cond_dim)``.
            mix_index: ``(P,)`` long, the mixture (0..B-1) each performer belongs to.

        Returns:
            Mask logits ``(P, 1, F, T)`` on the network's grid.
        """
        x = feats[-1].index_select(0, mix_index)
        x = self.film_bottleneck(x, cond)
        n = len(feats)
        for k, (up, film) in enumerate(zip(self.ups, self.films, strict=True)):
            x = film(up(x), cond)
            x = torch.cat([x, feats[n - 2 - k].index_select(0, mix_index)], dim=1)
        return self.head(x)
