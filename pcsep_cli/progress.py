"""One progress event for every long-running step (separate, batch, train, evaluate, synth).

The library reports through a callback that receives a :class:`Progress`; only the CLI draws
(bars on a terminal, plain lines in a log). A step says which stage it is in, how much of how
much is done and in what unit, so one renderer shows them all the same way.

A separation (:func:`pcsep_cli.separate.prepare_job`, then
:func:`pcsep_cli.separate.run_job`) goes through these stages, each announced by an event with
``done = 0`` when it begins and closed by one with ``done == total``:

- ``read``: reading the cloud files (unit ``file``, ``detail`` the file's name);
- ``find``: finding the performers in the scene (unit ``performer``; the total is known at
  the end only);
- ``classify``: naming each performer's instrument (unit ``performer``; scene mode only);
- ``separate``: the first pass over the recording (unit ``s``: seconds of audio);
- ``write``: the second pass, writing the stems and residual (unit ``s``).

Audio is counted in seconds of the recording, whatever its rate and channel count, so a
display can show "4.5 / 9.0 s" and a speed against real time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["Progress", "ProgressFn"]


@dataclass(frozen=True)
class Progress:
    """What a progress callback receives.

    Attributes:
        stage: what runs now: ``read``, ``find``, ``classify``, ``separate``, ``write`` (see
            above), ``train``, ``evaluate``, ``synth``.
        done: how much of ``total`` is done, in ``unit``.
        total: the whole, in ``unit``; None when not known.
        unit: ``s`` (seconds of audio), ``file``, ``performer``, ``step``, ``example``,
            ``task``.
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
