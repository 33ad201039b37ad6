"""The one progress display of ``pcsep separate`` and ``pcsep batch``.

It draws the library's :class:`~pcsep_cli.progress.Progress` events the same way everywhere:
the stage by name (loading model, reading scene, finding performers, naming performers,
separating, writing), what is done of what in the stage's own unit (seconds of audio for the
two passes over a recording), the speed (× real time) and the time left, never a guess shown
as a figure: what is not known yet is left blank.

- On a terminal (stderr): a live display redrawn in place and cleared at the end, one line per
  running thing: the separation; or the batch (items done of all, failures, time left) and
  one line per running item.
- Anywhere else (a pipe, a CI log, ``2> log.txt``): plain lines, never redrawn, no colours: one
  when each stage of a separation begins, then at most one per line of the display every
  :data:`PLAIN_GAP` seconds and only once :data:`PLAIN_STEP` more is done (or a minute went by
  with progress), so a log stays short whatever the length of the work. Each starts with the
  time since the command began, ``[0:07]``.
- ``--quiet``: nothing.

Thread-safe: batch workers report from their own threads.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Literal

from rich.console import Console
from rich.progress import BarColumn, ProgressColumn, SpinnerColumn
from rich.progress import Progress as RichProgress
from rich.table import Column
from rich.text import Text

from pcsep_cli.cli.app import safe_text
from pcsep_cli.cli.progress_rows import BatchRow, Row, audio, clock

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from rich.progress import Task

    from pcsep_cli.progress import Progress

__all__ = ["ProgressView"]

Mode = Literal["live", "plain", "off"]

PLAIN_GAP = 5.0
"""Seconds at least between two progress lines of one display line, when not on a terminal."""
PLAIN_STEP = 0.1
"""Fraction of the work done at least between two progress lines, when not on a terminal."""
PLAIN_HEARTBEAT = 60.0
"""Seconds after which a line is printed anyway when the work moved on."""
LIVE_LABEL = 14
"""Characters of an item's name shown on a live line (the summary shows it whole)."""
LIVE_TITLE = 34
"""Characters of a live line's title (an item's name and its stage)."""


class _Part(ProgressColumn):
    """A column drawn from the view's state at each refresh (so time left counts down)."""

    def __init__(
        self, draw: Callable[[Task], str], style: str = "", max_width: int | None = None
    ) -> None:
        column = Column(no_wrap=True, overflow="ellipsis", max_width=max_width)
        super().__init__(table_column=column)
        self._draw, self._style = draw, style

    def render(self, task: Task) -> Text:
        return Text.from_markup(self._draw(task), style=self._style)


class _Bar(BarColumn):
    """A bar only where the whole is known; blank before (no pulsing that means nothing)."""

    def render(self, task: Task) -> Text:  # type: ignore[override]
        if task.total is None:
            return Text(" " * (self.bar_width or 0))
        return super().render(task)  # type: ignore[return-value]


class ProgressView:
    """Draws progress events: call it with each event of a separation, or drive a batch with
    :meth:`start_batch`, :meth:`item`, :meth:`item_ended`.

    Use as a context manager: the live display starts and is cleared at the end.

    Args:
        console: where to draw (stderr).
        mode: ``live`` (redrawn in place), ``plain`` (lines) or ``off``; see :meth:`for_console`.
        clock: seconds from any origin (tests pass their own).
    """

    def __init__(
        self, console: Console, mode: Mode, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.console, self.mode = console, mode
        self._now = clock
        self._lock = threading.RLock()
        self._started = clock()
        self._main: Row | None = None
        self._batch: BatchRow | None = None
        self._items: dict[str, Row] = {}
        self._running: tuple[Row, ...] = ()  # the items' rows, replaced whole (read unlocked)
        self._live: RichProgress | None = None
        if mode == "live":
            columns: list[ProgressColumn] = [
                SpinnerColumn(),
                _Part(self._title, max_width=LIVE_TITLE),
                _Bar(bar_width=None, table_column=Column(ratio=1, min_width=8)),
                _Part(self._figures),
                _Part(self._speed, "cyan"),
                _Part(self._left, "yellow"),
            ]
            if console.width >= 100:  # room for the time since the start too
                columns.append(_Part(self._elapsed, "dim"))
            self._live = RichProgress(
                *columns,
                console=console,
                transient=True,
                expand=True,
                refresh_per_second=5,
                redirect_stdout=False,  # stdout may be a pipe: results never go to stderr
            )

    @classmethod
    def for_console(cls, console: Console, *, quiet: bool = False) -> ProgressView:
        """Live on a terminal, plain lines elsewhere, nothing with ``quiet``."""
        if quiet:
            return cls(console, "off")
        live = console.is_terminal and not console.is_dumb_terminal
        return cls(console, "live" if live else "plain")

    def __enter__(self) -> ProgressView:
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()

    # -- one separation (or any single step) --------------------------------------------------

    def __call__(self, event: Progress) -> None:
        """A separation's event (``load``, ``read`` … ``write``), or a batch's own ``load``."""
        with self._lock:
            now = self._now()
            row = self._main
            fresh = row is None
            if row is None:
                row = self._main = Row("", now)
            new = row.update(event, now)
            if fresh:
                self._add(row)
            self._show(row, now, announce=new)

    def finish(self) -> None:
        """The closing line (plain mode): the seconds of audio and the time they took."""
        with self._lock:
            if self.mode != "plain":
                return
            now = self._now()
            if self._batch is not None:
                batch = self._batch
                self._line(
                    f"{batch.title}: {batch.figures()}, done in {clock(now - self._started)}"
                )
                return
            row = self._main
            took = now - self._started
            if row is not None and row.unit == "s" and row.total:
                self._line(
                    f"done: {audio(row.total)} of audio in {clock(took)} "
                    f"({row.total / max(took, 1e-9):.1f}x real time)"
                )
            else:
                self._line(f"done in {clock(took)}")

    # -- a batch ------------------------------------------------------------------------------

    def start_batch(self, title: str, items: int, todo: int) -> None:
        """The batch's line: ``items`` in all (finished before included), ``todo`` to run."""
        with self._lock:
            now = self._now()
            self._batch = BatchRow(safe_text(title), items, todo, now)
            self._add(self._batch)

    def item(self, name: str, event: Progress | None = None) -> None:
        """An item began (``event`` None) or reported ``event``."""
        with self._lock:
            now = self._now()
            row = self._items.get(name)
            if row is None:
                row = self._items[name] = Row(safe_text(name), now)
                row.stage = "starting"
                self._running = tuple(self._items.values())
                self._add(row)
                self._retire_main()
                if self._batch is not None and self._batch.began is None:
                    self._batch.began = now
                    self._show_batch(now, announce=True)
            if event is not None:
                new = row.update(event, now)
                self._show(row, now, announce=new)
                self._show_batch(now, announce=False)

    def item_ended(self, name: str, *, ran: bool, failed: bool) -> None:
        """An item is over: ``ran`` when this run had it to do, ``failed`` when it failed."""
        with self._lock:
            now = self._now()
            row = self._items.pop(name, None)
            self._running = tuple(self._items.values())
            if row is not None:
                self._remove(row)
            if self._batch is not None:
                self._batch.ended += 1
                self._batch.ran += int(ran)
                self._batch.failed += int(failed)
                self._show_batch(now, announce=False)

    def note(self, markup: str) -> None:
        """A line printed above the display as it happens (a failed item), except ``off``."""
        if self.mode != "off":
            self.console.print(markup, soft_wrap=True, highlight=False)

    # -- drawing ------------------------------------------------------------------------------

    def _add(self, row: Row | BatchRow) -> None:
        if self._live is not None:
            row.task = self._live.add_task("", total=None, row=row)  # drawn from at once

    def _remove(self, row: Row | BatchRow) -> None:
        if self._live is not None and row.task is not None:
            self._live.remove_task(row.task)

    def _retire_main(self) -> None:
        """The batch's model is loaded once its first item runs: its line goes."""
        if self._main is not None and self._batch is not None:
            self._remove(self._main)
            self._main = None

    def _show(self, row: Row, now: float, *, announce: bool) -> None:
        if self._live is not None:
            f = row.fraction()
            if row.task is not None:
                # Drawn at once when a stage begins, so even a short stage is seen.
                self._live.update(
                    row.task, total=None if f is None else 1.0, completed=f or 0.0, refresh=announce
                )
            return
        if self.mode != "plain":
            return
        f = row.stage_fraction() or 0.0
        if announce and not row.label:  # a separation: one line as each stage begins
            row.printed_at, row.printed = now, f
            self._line(row.announced())
        elif f < 1.0 and self._due(
            row.printed_at, row.printed, f, now
        ):  # the next stage says 100 %
            row.printed_at, row.printed = now, f
            self._line(self._plain(row, now))

    def _show_batch(self, now: float, *, announce: bool) -> None:
        batch = self._batch
        if batch is None:
            return
        f = batch.fraction(list(self._running))
        if self._live is not None:
            if batch.task is not None:
                self._live.update(batch.task, total=None if f is None else 1.0, completed=f or 0.0)
            return
        if self.mode != "plain":
            return
        f = f or 0.0
        ended = f >= 1.0 > batch.printed
        if announce or ended or self._due(batch.printed_at, batch.printed, f, now):
            batch.printed_at, batch.printed = now, f
            parts = [batch.figures()]
            left = batch.left(list(self._running), now)
            if left is not None and f < 1.0:
                parts.append(f"{clock(round(left))} left")
            self._line(f"{batch.title}: {', '.join(parts)}")

    @staticmethod
    def _due(printed_at: float, printed: float, fraction: float, now: float) -> bool:
        gap = now - printed_at
        moved = fraction - printed + 1e-9  # 1.0 - 0.9 is 0.0999…
        return (moved >= PLAIN_STEP and gap >= PLAIN_GAP) or (
            moved > 1e-6 and gap >= PLAIN_HEARTBEAT
        )

    def _plain(self, row: Row, now: float) -> str:
        head = f"{row.label}: {row.title}" if row.label else row.title
        parts = [row.figures(percent=True), row.speed()]
        left = row.left(now)
        if left is not None and (row.stage_fraction() or 0.0) < 1.0:
            parts.append(f"{clock(round(left))} left")
        shown = ", ".join(p for p in parts if p)
        return f"{head}: {shown}" if shown else head

    def _line(self, markup: str) -> None:
        stamp = clock(self._now() - self._started)
        self.console.print(f"\\[{stamp}] {markup}", soft_wrap=True, highlight=False)

    # The live columns: each reads the row of its task.

    @staticmethod
    def _row(task: Task) -> Row | BatchRow | None:
        return task.fields.get("row")

    def _title(self, task: Task) -> str:
        row = self._row(task)
        if isinstance(row, BatchRow):
            return f"[bold]{row.title}[/]"
        if row is None:
            return ""
        if not row.label:
            return row.title
        label = row.label if len(row.label) <= LIVE_LABEL else row.label[: LIVE_LABEL - 1] + "…"
        return f"  {label}: {row.title}"

    def _figures(self, task: Task) -> str:
        row = self._row(task)
        if isinstance(row, BatchRow):
            return row.figures()
        return "" if row is None else row.figures()

    def _speed(self, task: Task) -> str:
        row = self._row(task)
        return row.speed() if isinstance(row, Row) else ""

    def _left(self, task: Task) -> str:
        row = self._row(task)
        if isinstance(row, BatchRow):
            left = row.left(list(self._running), self._now())
        else:
            left = None if row is None else row.left(self._now())
        return "" if left is None else f"{clock(round(left))} left"

    def _elapsed(self, task: Task) -> str:
        row = self._row(task)
        if row is None:
            return ""
        began = self._started if isinstance(row, BatchRow) else row.started
        return f"({clock(self._now() - began)})"
