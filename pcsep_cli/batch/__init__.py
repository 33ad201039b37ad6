"""``pcsep batch``: a folder's work planned, resumed, sharded and run on threads sharing a model.

Modules, from the bottom up (each imports only those above it):

- :mod:`~pcsep_cli.batch.plan`: pairing recordings with clouds (folder pairs, the dataset
  layout, a CSV manifest), shards, and which items are already finished.
- :mod:`~pcsep_cli.batch.run`: :func:`plan_batch` and :func:`run_batch` (worker threads, fail-fast,
  Ctrl-C) with an observer for progress; knows nothing of models.
- :mod:`~pcsep_cli.batch.runner`: :class:`SeparatorRunner`, the per-item runner that separates
  with one shared :class:`~pcsep_cli.separate.separator.Separator`.
"""

from __future__ import annotations

from pcsep_cli.batch.run import (
    BatchObserver,
    BatchPlan,
    BatchSummary,
    ItemOutput,
    ItemResult,
    plan_batch,
    run_batch,
    track_template,
)
from pcsep_cli.batch.runner import SeparatorRunner

__all__ = [
    "BatchObserver",
    "BatchPlan",
    "BatchSummary",
    "ItemOutput",
    "ItemResult",
    "SeparatorRunner",
    "plan_batch",
    "run_batch",
    "track_template",
]
