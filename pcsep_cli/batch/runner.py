"""The item runner of ``pcsep batch``: every worker separates with one shared model.

:class:`SeparatorRunner` is the ``run_item`` callable that :func:`pcsep_cli.batch.run_batch`
calls on its worker threads. It maps a batch item to a separation job (its output names from
the plan's ``--filename``, ``{track}`` being the item's name), and passes on the item's
progress events as the job reports them (stages ``read`` to ``write``, :mod:`pcsep_cli.progress`).
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from pcsep_cli.batch.plan import BatchItem
from pcsep_cli.batch.run import BatchPlan, ItemOutput, track_template
from pcsep_cli.errors import PcsepError
from pcsep_cli.progress import ProgressFn
from pcsep_cli.separate.job import SeparateOptions

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from pcsep_cli.separate.separator import Separator

__all__ = ["SeparatorRunner"]


class SeparatorRunner:
    """``run_item`` for :func:`~pcsep_cli.batch.run_batch` that separates with one shared model.

    Each item is checked first (:func:`~pcsep_cli.separate.job.prepare_job`: audio and cloud
    readable, performers found; existing outputs are refused before anything is written unless
    ``overwrite``), then separated by the one
    :class:`~pcsep_cli.separate.Separator`, loaded on first need: a batch whose items are all
    finished or broken never loads a model. Its progress events are those of
    :func:`~pcsep_cli.separate.job.prepare_job` and :func:`~pcsep_cli.separate.output.run_job`.

    Args:
        plan: the plan (output root and file name template).
        options: output settings; ``filename`` is replaced by the plan's, ``{track}`` filled in.
        load: makes the separator (called once, under a lock).
    """

    def __init__(
        self, plan: BatchPlan, options: SeparateOptions, load: Callable[[], Separator]
    ) -> None:
        self.plan = plan
        self.options = options
        self._load = load
        self._lock = threading.Lock()
        self._separator: Separator | None = None
        self._failed: PcsepError | None = None

    @property
    def separator(self) -> Separator:
        """The shared separator (loaded on first use; a failed load is not retried per item)."""
        with self._lock:
            if self._failed is not None:
                raise self._failed
            if self._separator is None:
                try:
                    self._separator = self._load()
                except PcsepError as err:
                    self._failed = err
                    raise
            return self._separator

    def __call__(self, item: BatchItem, out_dir: Path, progress: ProgressFn) -> ItemOutput:
        """Separate ``item``; return the names of its stems and the manifest's notes.

        Raises:
            PcsepError: unreadable input, no performer, an output exists, a write failed.
        """
        from pcsep_cli.separate.job import prepare_job
        from pcsep_cli.separate.output import run_job

        options = dataclasses.replace(
            self.options, filename=track_template(self.plan.filename, item.name)
        )
        # Absolute: the manifest's paths then mean the same from any working folder.
        job = prepare_job(
            item.audio,
            [item.cloud],
            self.plan.out.absolute(),
            options,
            mics=item.mics,
            progress=progress,
        )
        manifest = run_job(self.separator, job, progress=progress)
        return ItemOutput(
            tuple(stem["name"] for stem in manifest["stems"]), tuple(manifest["notes"])
        )
