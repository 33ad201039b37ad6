"""One progress event for every long-running step (separate, batch, train, evaluate, synth).

The library reports through a callback that receives a :class:`Progress`; only the CLI draws
(bars on a terminal). A step says which stage it is in, how much of how much is done and in
what unit, so one renderer shows them all the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["Progress", "ProgressFn"]


@dataclass(frozen=True)
class Progress:
    """What a progress callback receives.

    Attributes:
        stage: what runs now: ``separate``, ``write``, ``item``, ``train``, ``evaluate``,
            ``synth``.
        done: how much of ``total`` is done, in ``unit``.
        total: the whole, in ``unit``; None when not known.
        unit: ``frame`` (audio samples per channel), ``step``, ``example``.
        detail: what is being worked on or what just happened (an example's name, a note).
        metrics: figures of the step so far (training: ``loss``, ``steps_per_s``,
            ``val_loss``).
    """

    stage: str
    done: float
    total: float | None
    unit: str
    detail: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)


ProgressFn = Callable[[Progress], None]
