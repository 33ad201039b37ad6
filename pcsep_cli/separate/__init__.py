"""The inference pipeline: check a job, condition on performers, chunked masks, write stems.

Python API (``pcsep separate`` and ``pcsep batch`` use it; the CLI never touches tensors)::

    from pcsep_cli.separate import Separator, SeparateOptions, prepare_job, run_job

    sep = Separator.from_pretrained()                 # default model; or "owner/name@rev", a dir
    result = sep.separate(audio, 44100, cloud)        # in memory: audio (C, S) float32
    result.stems, result.residual                     # (P, C, S), (C, S): they sum to audio

    job = prepare_job("concert.wav", ["scene.ply"], "out", SeparateOptions())  # no model needed
    manifest = run_job(sep, job, progress=print)      # streamed from and to files

Modules, from the bottom up (each imports only those above it in this list, never back):

- :mod:`~pcsep_cli.separate.types`: plain records (detections, conditions, results) and stem
  names; no torch.
- :mod:`~pcsep_cli.separate.span`: the part of a recording to separate (``--start``,
  ``--duration``) in samples.
- :mod:`~pcsep_cli.separate.stream`: overlapping blocks and their cross-faded overlap-add.
- :mod:`~pcsep_cli.separate.masks`: masks carried from the model's rate and grid to the input's
  own (:class:`~pcsep_cli.separate.masks.RateMap`), and their normalisation.
- :mod:`~pcsep_cli.separate.job`: options, output templates and :func:`prepare_job`, which checks
  inputs and outputs before any model is loaded; no torch.
- :mod:`~pcsep_cli.separate.separator`: the :class:`Separator`, a loaded model and chunked
  inference (classify and encode performers once, masks per block, residual).
- :mod:`~pcsep_cli.separate.output`: :func:`run_job`, which drives a :class:`Separator` through
  a job from file to files: two passes, stems and residual and ``manifest.json`` committed
  together.

Names are imported lazily from here, so ``from pcsep_cli.separate import SeparateOptions``
does not load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from pcsep_cli.separate.job import SeparateOptions as SeparateOptions
    from pcsep_cli.separate.job import SeparationJob as SeparationJob
    from pcsep_cli.separate.job import prepare_job as prepare_job
    from pcsep_cli.separate.output import run_job as run_job
    from pcsep_cli.separate.separator import Separator as Separator
    from pcsep_cli.separate.separator import resolve_device as resolve_device
    from pcsep_cli.separate.types import Conditions as Conditions
    from pcsep_cli.separate.types import Detection as Detection
    from pcsep_cli.separate.types import Result as Result

_LAZY = {
    "Conditions": "types",
    "Detection": "types",
    "Result": "types",
    "SeparateOptions": "job",
    "SeparationJob": "job",
    "prepare_job": "job",
    "Separator": "separator",
    "resolve_device": "separator",
    "run_job": "output",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
