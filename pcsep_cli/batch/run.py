"""Batch separation: plan a folder's work, then run it on worker threads that share one model.

:func:`plan_batch` pairs the files (:mod:`pcsep_cli.batch.plan`), keeps this machine's shard,
removes temporary files left by killed runs and sets finished items aside (resume).
:func:`run_batch` runs the rest through a callable ``run_item(item, out_dir, progress)``; in
``pcsep batch`` that callable is a :class:`~pcsep_cli.batch.runner.SeparatorRunner`: one
:class:`~pcsep_cli.separate.Separator` loaded once and shared by the ``jobs`` worker threads
(torch releases the GIL in its kernels).

Before an item runs, its worker takes the item's lock (:mod:`pcsep_cli.batch.lock`): an item
another process is running (a second run on the same folder, a SLURM array launched twice) is
reported ``skipped``, and one that another process finished while this run was under way is
not done again. A killed process drops its locks.

A failing item is recorded and the batch goes on; ``fail_fast`` stops it instead. Ctrl-C (or
an observer that raises) stops the running items at their next progress report: their
temporary files are removed by the atomic writers, finished outputs stay, and
``KeyboardInterrupt`` goes on to the caller.

Results do not depend on ``jobs``: each item is computed alone (no batching across items), by
the same code, and results are listed in name order whatever order the workers finish in. The
one global that could change the numbers is torch's intra-op thread count (reductions split
by thread): ``pcsep batch`` never derives it from ``--jobs``; it keeps torch's default or takes
``--threads``, set once before the workers start (torch hands it to each new worker thread).
So ``--jobs 1`` and ``--jobs 2`` write the same bytes (tests/test_cli_batch.py checks it);
on a GPU, kernels that use atomics may still differ from run to run, whatever ``jobs`` is.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pcsep_cli.batch.lock import ItemLock, remove_stale_locks
from pcsep_cli.batch.plan import (
    BatchItem,
    Discovery,
    Shard,
    discover,
    is_finished,
    shard,
)
from pcsep_cli.errors import DatasetError, PcsepError
from pcsep_cli.io.atomic import remove_stray_temps
from pcsep_cli.progress import Progress, ProgressFn
from pcsep_cli.separate.job import DEFAULT_TEMPLATE, render_template

__all__ = [
    "BatchObserver",
    "BatchPlan",
    "BatchSummary",
    "ItemOutput",
    "ItemResult",
    "ItemRunner",
    "plan_batch",
    "run_batch",
    "track_template",
]


class ItemOutput(NamedTuple):
    """What a ``run_item`` may return instead of the bare stem names.

    Attributes:
        stems: names of the stems written.
        notes: what the user should know about this item's result (the manifest's
            ``notes``: e.g. a spatial model that ran on its mono path).
    """

    stems: tuple[str, ...]
    notes: tuple[str, ...] = ()


ItemRunner = Callable[[BatchItem, Path, ProgressFn], "Sequence[str] | ItemOutput"]
"""``run_item(item, out_dir, progress) -> names of the stems written`` (or an
:class:`ItemOutput`, with notes) for one item."""

Status = Literal["done", "skipped", "failed", "cancelled"]
FINISHED_BEFORE = "finished before (resume)"
RUNNING_ELSEWHERE = "running in another process"
FINISHED_ELSEWHERE = "finished by another process during this run"
_PathArg = str | PathLike[str]


@dataclass(frozen=True)
class ItemResult:
    """What happened to one item.

    Attributes:
        item: the item.
        out_dir: its output folder.
        status: ``done`` (separated now), ``skipped`` (finished before: resume; or done by
            another process: see ``note``), ``failed``, or ``cancelled`` (not run or stopped:
            fail-fast or interrupt).
        seconds: wall time spent on it by this run.
        stems: names of the stems written (``done`` only).
        error: one-line reason (``failed`` and ``cancelled``).
        traceback: the traceback of an unexpected error (not a :class:`PcsepError`), for
            ``--debug``.
        note: why a ``skipped`` item was skipped: :data:`FINISHED_BEFORE`,
            :data:`RUNNING_ELSEWHERE` or :data:`FINISHED_ELSEWHERE`.
        notes: what the separation said of an item done in this run (:class:`ItemOutput`;
            an item finished before keeps its notes in its own ``manifest.json``).
    """

    item: BatchItem
    out_dir: Path
    status: Status
    seconds: float = 0.0
    stems: tuple[str, ...] = ()
    error: str | None = None
    traceback: str | None = None
    note: str | None = None
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict: name, audio, cloud, mics, out_dir, status, seconds, stems, error,
        note, notes."""
        return {
            "name": self.item.name,
            "audio": str(self.item.audio),
            "cloud": str(self.item.cloud),
            "mics": None if self.item.mics is None else str(self.item.mics),
            "out_dir": str(self.out_dir),
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "stems": list(self.stems),
            "error": self.error,
            "note": self.note,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class BatchPlan:
    """The work of one run.

    Attributes:
        root: the batch folder.
        out: the output root.
        filename: the output file name template, relative to ``out``; ``{track}`` is the item's
            name (default ``{track}/{stem}.{ext}``: item ``name`` goes to ``out/name/``).
        discovery: everything found (all shards) and the unpaired files.
        shard: this run's shard, or ``None`` for all items.
        todo: items to run, in name order.
        finished: items of this shard already finished (skipped by resume), in name order.
        removed_temps: temporary files of killed runs removed from ``out``.
        resume: finished items are not run again (``finished`` holds those found at planning;
            one that another process finishes later is skipped when its turn comes).
        created: when the plan was made (``time.time()``): an item whose manifest is newer
            was finished by another process during this run and is not run again, even
            without ``resume``.
    """

    root: Path
    out: Path
    filename: str
    discovery: Discovery
    shard: Shard | None
    todo: list[BatchItem]
    finished: list[BatchItem]
    removed_temps: list[Path] = field(default_factory=list)
    resume: bool = True
    created: float = 0.0

    def manifest_path(self, item: BatchItem) -> Path:
        """Where the separator writes ``item``'s manifest (written last: marks it finished)."""
        rel = render_template(
            track_template(self.filename, item.name),
            track=item.name,
            stem="manifest",
            instrument="manifest",
            ext="json",
        )
        return self.out / rel

    def out_dir(self, item: BatchItem) -> Path:
        """The output folder of ``item`` (its manifest's folder)."""
        return self.manifest_path(item).parent


@dataclass(frozen=True)
class BatchSummary:
    """The outcome of :func:`run_batch`.

    Attributes:
        plan: the plan that was run.
        results: one per item of the shard (skipped ones included), in name order.
        seconds: wall time of the run.
    """

    plan: BatchPlan
    results: list[ItemResult]
    seconds: float

    def count(self, status: Status) -> int:
        """Number of items with ``status``."""
        return sum(r.status == status for r in self.results)

    @property
    def failed(self) -> list[ItemResult]:
        """Items that failed or were cancelled, in name order."""
        return [r for r in self.results if r.status in ("failed", "cancelled")]

    @property
    def ok(self) -> bool:
        """True when every item of the shard is finished."""
        return not self.failed

    def to_json(self) -> dict[str, Any]:
        """JSON-ready summary (what ``pcsep batch --json`` prints)."""
        plan = self.plan
        return {
            "root": str(plan.root),
            "out": str(plan.out),
            "layout": plan.discovery.layout,
            "shard": None if plan.shard is None else str(plan.shard),
            "items_total": len(plan.discovery.items),
            "items": [r.to_json() for r in self.results],
            "counts": {s: self.count(s) for s in ("done", "skipped", "failed", "cancelled")},
            "unpaired": [
                {"path": str(u.path), "reason": u.reason} for u in plan.discovery.unpaired
            ],
            "removed_temps": [str(p) for p in plan.removed_temps],
            "seconds": round(self.seconds, 3),
        }


class BatchObserver:
    """Receives a batch's progress; every method does nothing here: override what you need.

    Methods are called from worker threads, possibly at the same time: keep them thread-safe.
    An exception raised by one stops that item (it is recorded as failed), except
    ``KeyboardInterrupt``, which stops the batch.
    """

    def item_started(self, item: BatchItem) -> None:
        """``item`` begins on a worker."""

    def item_progress(self, item: BatchItem, event: Progress) -> None:
        """``item`` has done ``event.done`` of ``event.total`` (``event.unit``)."""

    def item_finished(self, result: ItemResult) -> None:
        """``result.item`` is over (any status, ``skipped`` included)."""


def plan_batch(
    folder: _PathArg,
    out: _PathArg,
    *,
    manifest: _PathArg | None = None,
    part: Shard | None = None,
    resume: bool = True,
    filename: str = DEFAULT_TEMPLATE,
) -> BatchPlan:
    """Find the items, keep this shard, clean stray temporary files and lock files, set finished
    items aside.

    Args:
        folder: the batch folder (see :func:`pcsep_cli.batch.plan.discover`).
        out: the output root; never searched for inputs when it lies inside ``folder``.
        manifest: a CSV manifest to read the pairs from instead of the folder.
        part: this run's shard (``None``: all items).
        resume: set aside items whose output folder holds a complete manifest.
        filename: output file name template (see :class:`BatchPlan`); must hold ``{track}``.

    Returns:
        The plan.

    Raises:
        ValueError: ``filename`` has no ``{track}`` (every item would write the same files).
        DatasetError: unreadable folder or manifest, clashing names, or no pair found at all.
        PcsepError: a stray temporary file could not be removed.
    """
    if "{track}" not in filename:
        raise ValueError(
            f"--filename {filename!r} must contain {{track}} in a batch, or every item writes "
            "the same files; e.g. {track}/{stem}.{ext}"
        )
    root, out_root = Path(folder), Path(out)
    created = time.time()
    found = discover(root, manifest=manifest, exclude=[out_root])
    if not found.items and manifest is not None:
        raise DatasetError("the CSV manifest lists no item", manifest, "add rows audio,cloud")
    if not found.items:
        raise DatasetError(
            "found no recording + cloud pair",
            root,
            "put <name>.wav beside <name>.ply (or .las/.laz/.pcd/.e57), use the dataset layout "
            "<example>/mixture.wav + scene.ply, or pass --manifest FILE.csv",
        )
    mine = shard(found.items, part)
    removed = remove_stray_temps(out_root, recursive=True) if out_root.is_dir() else []
    remove_stale_locks(out_root)  # of killed runs; locks of live runs are kept
    plan = BatchPlan(root, out_root, filename, found, part, mine, [], removed, resume, created)
    if resume:
        done = {item for item in mine if is_finished(plan.manifest_path(item))}
        finished = [item for item in mine if item in done]
        todo = [item for item in mine if item not in done]
        plan = dataclasses.replace(plan, todo=todo, finished=finished)
    return plan


def track_template(filename: str, name: str) -> str:
    """``filename`` with ``{track}`` replaced by the item's ``name`` (braces escaped).

    The separator's ``{track}`` is the recording's file name (``mixture`` in the dataset
    layout); in a batch it is the item's name, so outputs never collide.
    """
    return filename.replace("{track}", name.replace("{", "{{").replace("}", "}}"))


class _Stop(BaseException):
    """Raised inside a worker's progress callback to stop its item (not an ``Exception``, so
    library code that catches errors to wrap them lets it through)."""


def run_batch(
    plan: BatchPlan,
    run_item: ItemRunner,
    *,
    jobs: int = 1,
    fail_fast: bool = False,
    observer: BatchObserver | None = None,
) -> BatchSummary:
    """Run the plan's items on ``jobs`` worker threads.

    Every item runs through ``run_item`` alone; a :class:`PcsepError` or any other exception
    fails that item only (unless ``fail_fast``). Nothing here depends on ``jobs`` but how many
    items run at once; the caller fixes anything global (torch threads) before calling.

    Args:
        plan: from :func:`plan_batch`.
        run_item: separates one item into its output folder and returns the stem names.
        jobs: worker threads (>= 1).
        fail_fast: after the first failure, start no new item and stop the running ones.
        observer: progress receiver (called from the worker threads).

    Returns:
        The summary, one result per item of the shard in name order.

    Raises:
        ValueError: ``jobs < 1``.
        KeyboardInterrupt: Ctrl-C (or an observer raised it); running items were stopped at
            their next progress report and their temporary files removed.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    start = time.perf_counter()
    out_existed = plan.out.exists()
    worker = _Worker(plan, run_item, observer or BatchObserver(), fail_fast)
    results: dict[str, ItemResult] = {}
    for item in plan.finished:
        results[item.name] = ItemResult(item, plan.out_dir(item), "skipped", note=FINISHED_BEFORE)
        worker.watcher.item_finished(results[item.name])
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="pcsep-batch")
    futures: dict[Future[ItemResult], BatchItem] = {pool.submit(worker, i): i for i in plan.todo}
    try:
        pending = set(futures)
        while pending:
            # A timeout keeps the main thread responsive to Ctrl-C on every platform.
            finished, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            for future in finished:
                result = future.result()
                results[result.item.name] = result
    except KeyboardInterrupt as err:
        worker.interrupt(err)
        raise
    finally:
        for future in futures:
            future.cancel()
        pool.shutdown(wait=True)
        if not out_existed:
            _remove_if_empty(plan.out)  # made for the locks of items that all failed
    if worker.interrupted:
        raise KeyboardInterrupt
    ordered = [results[i.name] for i in sorted(plan.finished + plan.todo)]
    return BatchSummary(plan, ordered, time.perf_counter() - start)


class _Worker:
    """Runs one item on a worker thread; shared by all workers of a batch, which it stops
    together after Ctrl-C (or the first failure with ``fail_fast``)."""

    def __init__(
        self, plan: BatchPlan, run_item: ItemRunner, watcher: BatchObserver, fail_fast: bool
    ) -> None:
        self.plan, self.run_item, self.watcher, self.fail_fast = plan, run_item, watcher, fail_fast
        self.stop = threading.Event()
        self.interrupted: list[BaseException] = []

    def interrupt(self, err: BaseException) -> None:
        """Ctrl-C: no new item starts and running ones stop at their next progress report."""
        self.interrupted.append(err)
        self.stop.set()

    def __call__(self, item: BatchItem) -> ItemResult:
        out_dir = self.plan.out_dir(item)
        if self.stop.is_set():
            reason = _stop_reason(self.interrupted, started=False)
            return self._finish(ItemResult(item, out_dir, "cancelled", error=reason))
        try:
            lock = ItemLock.try_acquire(self.plan.out, item.name)
        except PcsepError as err:
            return self._finish(ItemResult(item, out_dir, "failed", error=str(err)))
        if lock is None:
            return self._finish(ItemResult(item, out_dir, "skipped", note=RUNNING_ELSEWHERE))
        with lock:
            if self._finished_meanwhile(item):
                return self._finish(ItemResult(item, out_dir, "skipped", note=FINISHED_ELSEWHERE))
            began = time.perf_counter()
            self.watcher.item_started(item)
            status, output, error, trace = self._run(item, out_dir)
            seconds = time.perf_counter() - began
        result = ItemResult(
            item, out_dir, status, seconds, output.stems, error, trace, notes=output.notes
        )
        if result.status == "failed" and self.fail_fast:
            self.stop.set()
        return self._finish(result)

    def _finish(self, result: ItemResult) -> ItemResult:
        self.watcher.item_finished(result)
        return result

    def _finished_meanwhile(self, item: BatchItem) -> bool:
        """Whether another process finished ``item`` after this run planned it (and so held
        its lock before this worker took it)."""
        manifest = self.plan.manifest_path(item)
        if not is_finished(manifest):
            return False
        try:
            newer = manifest.stat().st_mtime >= self.plan.created
        except OSError:
            return False
        return self.plan.resume or newer

    def _run(
        self, item: BatchItem, out_dir: Path
    ) -> tuple[Status, ItemOutput, str | None, str | None]:
        """``(status, output, error, traceback)`` of running ``item``; never raises."""

        def progress(event: Progress) -> None:
            if self.stop.is_set():
                raise _Stop
            self.watcher.item_progress(item, event)

        nothing = ItemOutput(())
        try:
            out = self.run_item(item, out_dir, progress)
            stems, notes = (out.stems, out.notes) if isinstance(out, ItemOutput) else (out, ())
            return "done", ItemOutput(tuple(stems), tuple(notes)), None, None
        except _Stop:
            return "cancelled", nothing, _stop_reason(self.interrupted, started=True), None
        except KeyboardInterrupt as err:
            self.interrupt(err)
            return "cancelled", nothing, "interrupted", None
        except PcsepError as err:
            return "failed", nothing, str(err), None
        except Exception as err:  # noqa: BLE001 - one broken item must not end the batch
            error = f"internal error: {type(err).__name__}: {' '.join(str(err).split())}"
            return "failed", nothing, error, traceback.format_exc()


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty (outputs, another run's locks) or gone: keep it


def _stop_reason(interrupted: list[BaseException], *, started: bool) -> str:
    if interrupted:
        return "interrupted"
    if started:
        return "stopped halfway: --fail-fast, another item failed"
    return "not run: --fail-fast stopped the batch"
