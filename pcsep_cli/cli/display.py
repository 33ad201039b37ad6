"""What ``pcsep batch`` shows: live progress while it runs, a summary table and failures at the
end.

Part of the command line (only :mod:`pcsep_cli.cli` imports it): the library reports through
:class:`~pcsep_cli.batch.BatchObserver` callbacks and never draws. Kept out of ``cli.py`` so
that file stays a list of commands.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from pcsep_cli.batch.run import FINISHED_BEFORE, BatchObserver, BatchPlan, BatchSummary, ItemResult
from pcsep_cli.cli.app import safe_text
from pcsep_cli.cli.progress_view import ProgressView
from pcsep_cli.progress import Progress as ProgressEvent

if TYPE_CHECKING:  # pragma: no cover
    from pcsep_cli.batch.plan import BatchItem

__all__ = [
    "BatchDisplay",
    "print_failures",
    "print_plan_notes",
    "print_summary",
]

MAX_TABLE_ROWS = 200
"""Past this many items the table lists only items that did not finish now or before."""

_STYLE = {"done": "green", "skipped": "dim", "failed": "bold red", "cancelled": "yellow"}


class BatchDisplay(BatchObserver):
    """The batch's progress on stderr (:class:`~pcsep_cli.cli.progress_view.ProgressView`):
    items done of all, failures and time left, and one line per running item, the same display
    as ``pcsep separate``'s; plain lines when stderr is not a terminal.

    Use as a context manager around :func:`~pcsep_cli.batch.run_batch`; pass :attr:`view` to
    :func:`~pcsep_cli.cli.app.load_separator` to show the model loading. Thread-safe.

    Args:
        console: where to draw (stderr).
        plan: the plan about to run.
        quiet: draw nothing but failures and warnings at the end (``--quiet``).

    Warnings of the separation (the manifest's ``notes``: a spatial model on its mono path,
    channels that fit another order) are said once, with the first item that has each, as
    ``pcsep separate`` says them; at the end, how many more items had the same. Under
    ``--quiet`` all of it comes at the end.
    """

    def __init__(self, console: Console, plan: BatchPlan, *, quiet: bool = False) -> None:
        self.view = ProgressView.for_console(console, quiet=quiet)
        self._console, self._quiet = console, quiet
        shard = f" (shard {plan.shard})" if plan.shard else ""
        self.view.start_batch(f"batch{shard}", len(plan.todo) + len(plan.finished), len(plan.todo))
        self._notes: dict[str, list[str]] = {}  # each warning's text: the items that had it
        self._lock = threading.Lock()

    def __enter__(self) -> BatchDisplay:
        self.view.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.view.__exit__(*exc)

    def finish(self) -> None:
        """How often each warning repeated (and, under ``--quiet``, the warnings themselves),
        then the closing line when stderr is not a terminal."""

        def say(line: str) -> None:  # a quiet view draws nothing: straight to the console
            if self._quiet:
                self._console.print(line, soft_wrap=True)
            else:
                self.view.note(line)

        for text, items in self._notes.items():
            if self._quiet:  # not said as it happened
                say(_warning(items[0], text))
            if len(items) > 1:
                say(_warning(f"{len(items) - 1} more item(s)", text))
        self.view.finish()

    def item_started(self, item: BatchItem) -> None:
        self.view.item(item.name)

    def item_progress(self, item: BatchItem, event: ProgressEvent) -> None:
        self.view.item(item.name, event)

    def item_finished(self, result: ItemResult) -> None:
        failed = result.status == "failed"
        self.view.item_ended(result.item.name, ran=result.note != FINISHED_BEFORE, failed=failed)
        with self._lock:  # a warning once, with its first item; repeats counted (finish)
            fresh = [n for n in result.notes if n not in self._notes]
            for n in result.notes:
                self._notes.setdefault(n, []).append(result.item.name)
        for text in fresh:
            self.view.note(_warning(result.item.name, text))
        if failed:
            # Printed above the bars as it happens, so a long batch shows trouble early.
            self.view.note(
                f"[bold red]failed[/]: {safe_text(result.item.name)}: "
                f"{safe_text(result.error or '')}"
            )


def _warning(item: str, text: str) -> str:
    return f"[yellow]warning:[/] {safe_text(item)}: {safe_text(text)}"


def print_plan_notes(err: Console, plan: BatchPlan) -> None:
    """Warnings and notes known before any work: unpaired files, removed temporary files."""
    unpaired = plan.discovery.unpaired
    if unpaired:
        err.print(f"[yellow]warning[/]: {len(unpaired)} file(s) not paired, left out:")
        for entry in unpaired:
            err.print(f"  {safe_text(str(entry.path))}: {safe_text(entry.reason)}", soft_wrap=True)
    if plan.removed_temps:
        err.print(f"removed {len(plan.removed_temps)} temporary file(s) left by a killed run")
    if plan.shard is not None:
        err.print(
            f"shard {plan.shard}: {len(plan.todo) + len(plan.finished)} of "
            f"{len(plan.discovery.items)} items"
        )


def _row(result: ItemResult) -> tuple[str, str, str, str]:
    style = _STYLE[result.status]
    if result.status == "done":
        detail = ", ".join(result.stems) or "(no stem)"
    elif result.status == "skipped":
        detail = result.note or "finished before (resume)"
    else:
        detail = result.error or ""
    seconds = f"{result.seconds:.1f}" if result.status in ("done", "failed") else ""
    return safe_text(result.item.name), f"[{style}]{result.status}[/]", seconds, safe_text(detail)


def print_summary(out: Console, summary: BatchSummary) -> None:
    """The summary table (item, status, seconds, stems or error) and the counts."""
    results = summary.results
    shown = results
    if len(results) > MAX_TABLE_ROWS:
        shown = [r for r in results if r.status not in ("done", "skipped")]
    if shown:
        table = Table(title="pcsep batch", title_justify="left")
        table.add_column("item", overflow="fold")
        table.add_column("status")
        table.add_column("seconds", justify="right")
        table.add_column("stems / error", overflow="fold")
        for result in shown:
            table.add_row(*_row(result))
        out.print(table)
    counts = ", ".join(
        f"{summary.count(s)} {s}" for s in ("done", "skipped", "failed", "cancelled")
    )
    out.print(f"{len(results)} items: {counts} in {summary.seconds:.1f} s", highlight=False)


def print_failures(err: Console, summary: BatchSummary, *, debug: bool) -> None:
    """The items not separated and why (with ``debug``, tracebacks of unexpected errors)."""
    failed = summary.failed
    if failed:
        err.print(f"[bold red]{len(failed)} item(s) not separated[/]:")
        for result in failed:
            line = f"  {safe_text(result.item.name)}: {safe_text(result.error or result.status)}"
            err.print(line, soft_wrap=True, highlight=False)
            if debug and result.traceback:
                err.print(safe_text(result.traceback), highlight=False)
