"""Plain records of the inference pipeline: detections, conditions, results.

Kept apart from :mod:`pcsep_cli.separate.separator` so that the CLI and
:mod:`pcsep_cli.separate.output` can use them without importing torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from torch import Tensor

__all__ = ["Conditions", "Detection", "Result", "stem_names"]


@dataclass(frozen=True)
class Detection:
    """One performer (or distractor), left to right.

    Attributes:
        name: stem name (``violin``, ``violin_2`` …); None when not separated.
        instrument: class name; ``none`` for distractors.
        confidence: the classifier's probability of ``instrument`` (1.0 for given labels).
        position: ``(x, y, z)`` footprint centre in the cloud's coordinates, or None.
        points: points of its cluster (0 without a cloud).
    """

    name: str | None
    instrument: str
    confidence: float
    position: tuple[float, float, float] | None
    points: int

    @property
    def separated(self) -> bool:
        """Whether it gets a stem."""
        return self.name is not None

    def to_json(self) -> dict[str, Any]:
        """``{"name", "instrument", "confidence", "position", "points"}``."""
        pos = None if self.position is None else [round(float(v), 4) for v in self.position]
        return {
            "name": self.name,
            "instrument": self.instrument,
            "confidence": round(float(self.confidence), 4),
            "position": pos,
            "points": self.points,
        }


@dataclass
class Conditions:
    """Performers classified and encoded once, reused for every chunk.

    Attributes:
        detections: every performer left to right, ``none`` included.
        film: ``(P, cond_dim)`` FiLM inputs of the P separated performers, in that order.
        groups: ``(P,)`` long, the class of each separated performer.
        steer: complex ``(P, M, F)`` steering vectors of the separated performers at the
            microphones on the model's grid (:func:`pcsep_cli.nets.spatial.steering`); None
            when the masks come from the mono path.
        sources: float ``[P, 3]`` where each separated performer's sound is taken to come
            from (cloud frame, metres), or None.
        spatial_note: why a model that reads microphone geometry ran on the mono path
            (no ``--mics``, one channel, no positions); None otherwise.
        channel_check: filled on the first block when ``steer`` is set:
            :func:`pcsep_cli.nets.spatial.channel_order_check`'s result.
        coherence: ``(F, M, M)`` the microphones' diffuse-field coherence on the model's grid
            (:func:`pcsep_cli.nets.spatial.diffuse_coherence`), set with ``steer`` for a model with
            ``spatial.covariance``.
    """

    detections: list[Detection]
    film: Tensor
    groups: Tensor | None = None
    steer: Tensor | None = None
    sources: np.ndarray | None = None
    spatial_note: str | None = None
    channel_check: dict[str, Any] | None = None
    coherence: Tensor | None = None

    @property
    def stems(self) -> list[Detection]:
        """The separated performers, in stem order."""
        return [d for d in self.detections if d.separated]


@dataclass
class Result:
    """In-memory separation.

    Attributes:
        stems: float32 ``(P, C, S)``, one per separated performer (see ``detections``).
        residual: float32 ``(C, S)``; ``stems.sum(0) + residual`` equals the input.
        sample_rate: the input's rate (Hz).
        detections: every performer left to right; ``stems[i]`` belongs to
            ``[d for d in detections if d.separated][i]``.
        conditions: what the stems were separated with (spatial note, channel check).
    """

    stems: np.ndarray
    residual: np.ndarray
    sample_rate: int
    detections: list[Detection]
    conditions: Conditions | None = None

    @property
    def names(self) -> list[str]:
        """Stem names in order."""
        return [d.name for d in self.detections if d.name is not None]


def stem_names(instruments: Sequence[str]) -> list[str]:
    """``violin, cello, violin`` → ``violin, cello, violin_2`` (left to right)."""
    seen: dict[str, int] = {}
    names = []
    for inst in instruments:
        seen[inst] = seen.get(inst, 0) + 1
        names.append(inst if seen[inst] == 1 else f"{inst}_{seen[inst]}")
    return names
