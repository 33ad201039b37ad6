"""The one progress display of ``pcsep separate`` and ``pcsep batch`` (and the training steps).

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
from rich.progress import BarColumn, ProgressColumn, SpinnerColumn, TaskID
from rich.progress import Progress as RichProgress
from rich.table import Column
from rich.text import Text

from pcsep_cli.cli.app import safe_text

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from rich.progress import Task

    from pcsep_cli.progress import Progress

__all__ = ["STAGE_NAMES", "ProgressView", "clock"]

Mode = Literal["live", "plain", "off"]

STAGE_NAMES = {
    "load": "loading model",
    "read": "reading scene",
    "find": "finding performers",
    "classify": "naming performers",
    "separate": "separating",
    "write": "writing",
}
"""What each stage of a separation is called on screen (other stages show their own name)."""

PASS_SHARE = {"separate": (0.0, 0.9), "write": (0.9, 0.1)}
"""``(start, share)`` of a recording's work in each pass over it, for the bar and the time left:
the first pass runs the network, the second only writes files (about a tenth of the first on
this project's 2-core CPU: 0.25 s against 2.2 s for the 9 s example)."""

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


def clock(seconds: float) -> str:
    """``0:09``, ``12:30``, ``1:02:03`` (whole seconds gone by, like a stopwatch)."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _audio(done: float, total: float | None = None) -> str:
    """Seconds of audio: ``9.0 s``, ``4.5 / 9.0 s``, or ``12:30 / 1:00:00`` past a minute."""
    if total is None:
        return f"{done:.1f} s" if done < 60 else clock(done)
    if total < 60:
        return f"{done:.1f} / {total:.1f} s"
    return f"{clock(done)} / {clock(total)}"


def _count(done: float, total: float | None, unit: str) -> str:
    whole = total if total is not None else done
    plural = unit if not unit or whole == 1 else unit + "s"
    if total is None:
        return f"{done:g} {plural}".strip() if done else ""
    if done == total:
        return f"{total:g} {plural}".strip()
    return f"{done:g}/{total:g} {plural}".strip()


class _Row:
    """One line of the display: a separation, or an item of a batch."""

    task: TaskID | None = None  # its line in the live display

    def __init__(self, label: str, now: float) -> None:
        self.label = label  # an item's name (escaped), "" for a lone separation
        self.started = now
        self.stage = ""
        self.stage_started = now
        self.done, self.total, self.unit, self.detail = 0.0, None, "", ""
        self.at = now  # time of the last event
        self.rate: float | None = None  # units per second in this stage, at the last event
        self.printed_at = now  # plain mode: the last line's time and fraction
        self.printed = 0.0

    def update(self, event: Progress, now: float) -> bool:
        """Take ``event``; True when it begins a new stage."""
        new = event.stage != self.stage
        if new:
            self.stage, self.stage_started, self.rate = event.stage, now, None
        total = None if event.total is None else float(event.total)
        self.done, self.total, self.unit = float(event.done), total, event.unit
        self.detail, self.at = event.detail, now
        spent = now - self.stage_started
        if self.done > 0 and spent > 0:
            self.rate = self.done / spent
        return new

    @property
    def title(self) -> str:
        name = STAGE_NAMES.get(self.stage, self.stage)
        return f"{name} ({safe_text(self.detail)})" if self.detail and name else name

    def stage_fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, max(0.0, self.done / self.total))

    def fraction(self) -> float | None:
        """Of the whole: the passes over a recording weighted by :data:`PASS_SHARE` (None
        before them), or the stage's own fraction for steps that are not a separation's."""
        f = self.stage_fraction()
        if self.stage in PASS_SHARE:
            start, share = PASS_SHARE[self.stage]
            return start + share * (f or 0.0)
        if self.stage in STAGE_NAMES:
            return None
        return f

    def announced(self) -> str:
        """What a plain line says as a stage begins: its name and the whole, if known."""
        if self.unit == "s" and self.total is not None:
            return f"{self.title}: {_audio(self.total)} of audio"
        whole = _count(self.total, None, self.unit) if self.total else ""
        return f"{self.title}: {whole}" if whole else self.title

    def figures(self, percent: bool = False) -> str:
        if self.unit == "s":
            text = _audio(self.done, self.total)
        else:
            text = _count(self.done, self.total, self.unit)
        f = self.stage_fraction()
        if percent and f is not None and f < 1 and text:
            text += f" ({100 * f:.0f} %)"
        return text

    def timed(self) -> bool:
        """Whether speed and time left mean something: the passes over a recording and steps
        that are not a separation's (a separation's first stages are single steps)."""
        return self.rate is not None and (self.stage in PASS_SHARE or self.stage not in STAGE_NAMES)

    def speed(self) -> str:
        if not self.timed():
            return ""
        if self.unit == "s":
            return f"{self.rate:.{1 if self.rate < 100 else 0}f}x real time"
        return f"{self.rate:.2g} {self.unit or 'step'}/s"

    def left(self, now: float) -> float | None:
        """Seconds until this line's work is over, counting down between events."""
        if not self.timed() or not self.total:
            return None
        rest = max(0.0, self.total - self.done) / self.rate
        if self.stage in PASS_SHARE:
            start, share = PASS_SHARE[self.stage]
            rest += self.total / self.rate * (1.0 - start - share) / share  # the passes to come
        return max(0.0, rest - (now - self.at))


class _Batch:
    """The batch's own line: items done of all, failures, time left."""

    task: TaskID | None = None

    def __init__(self, title: str, items: int, todo: int, now: float) -> None:
        self.title = title
        self.items, self.todo = items, todo
        self.ended = 0  # items over, of all
        self.ran = 0  # items over, of those this run had to do
        self.failed = 0
        self.began: float | None = None  # when the first item started
        self.printed_at = now
        self.printed = 0.0

    def fraction(self, running: list[_Row]) -> float | None:
        if not self.todo:
            return None
        partial = sum(row.fraction() or 0.0 for row in running)
        return min(1.0, (self.ran + partial) / self.todo)

    def figures(self) -> str:
        text = f"{self.ended}/{self.items} items"
        return text + (f", {self.failed} failed" if self.failed else "")

    def left(self, running: list[_Row], now: float) -> float | None:
        f = self.fraction(running)
        if self.began is None or not f:
            return None
        return (now - self.began) * (1.0 - f) / f


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
        self._main: _Row | None = None
        self._batch: _Batch | None = None
        self._items: dict[str, _Row] = {}
        self._running: tuple[_Row, ...] = ()  # the items' rows, replaced whole (read unlocked)
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
                row = self._main = _Row("", now)
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
                    f"done: {_audio(row.total)} of audio in {clock(took)} "
                    f"({row.total / max(took, 1e-9):.1f}x real time)"
                )
            else:
                self._line(f"done in {clock(took)}")

    # -- a batch ------------------------------------------------------------------------------

    def start_batch(self, title: str, items: int, todo: int) -> None:
        """The batch's line: ``items`` in all (finished before included), ``todo`` to run."""
        with self._lock:
            now = self._now()
            self._batch = _Batch(safe_text(title), items, todo, now)
            self._add(self._batch)

    def item(self, name: str, event: Progress | None = None) -> None:
        """An item began (``event`` None) or reported ``event``."""
        with self._lock:
            now = self._now()
            row = self._items.get(name)
            if row is None:
                row = self._items[name] = _Row(safe_text(name), now)
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

    def _add(self, row: _Row | _Batch) -> None:
        if self._live is not None:
            row.task = self._live.add_task("", total=None, row=row)  # drawn from at once

    def _remove(self, row: _Row | _Batch) -> None:
        if self._live is not None and row.task is not None:
            self._live.remove_task(row.task)

    def _retire_main(self) -> None:
        """The batch's model is loaded once its first item runs: its line goes."""
        if self._main is not None and self._batch is not None:
            self._remove(self._main)
            self._main = None

    def _show(self, row: _Row, now: float, *, announce: bool) -> None:
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

    def _plain(self, row: _Row, now: float) -> str:
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
    def _row(task: Task) -> _Row | _Batch | None:
        return task.fields.get("row")

    def _title(self, task: Task) -> str:
        row = self._row(task)
        if isinstance(row, _Batch):
            return f"[bold]{row.title}[/]"
        if row is None:
            return ""
        if not row.label:
            return row.title
        label = row.label if len(row.label) <= LIVE_LABEL else row.label[: LIVE_LABEL - 1] + "…"
        return f"  {label}: {row.title}"

    def _figures(self, task: Task) -> str:
        row = self._row(task)
        if isinstance(row, _Batch):
            return row.figures()
        return "" if row is None else row.figures()

    def _speed(self, task: Task) -> str:
        row = self._row(task)
        return row.speed() if isinstance(row, _Row) else ""

    def _left(self, task: Task) -> str:
        row = self._row(task)
        if isinstance(row, _Batch):
            left = row.left(list(self._running), self._now())
        else:
            left = None if row is None else row.left(self._now())
        return "" if left is None else f"{clock(round(left))} left"

    def _elapsed(self, task: Task) -> str:
        row = self._row(task)
        if row is None:
            return ""
        began = self._started if isinstance(row, _Batch) else row.started
        return f"({clock(self._now() - began)})"
