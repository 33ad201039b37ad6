"""What the progress display says: the figures of each of its lines, without drawing them.

A :class:`Row` follows one separation (or a batch's item) through its stages: which stage, how
much of it is done in its unit, the speed, the time left, its share of the whole.
:class:`BatchRow` counts a batch's items. :mod:`pcsep_cli.cli.progress_view` draws them, live
or as plain lines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pcsep_cli.cli.app import safe_text

if TYPE_CHECKING:  # pragma: no cover
    from rich.progress import TaskID

    from pcsep_cli.progress import Progress

__all__ = ["PASS_SHARE", "STAGE_NAMES", "BatchRow", "Row", "audio", "clock"]

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


def clock(seconds: float) -> str:
    """``0:09``, ``12:30``, ``1:02:03`` (whole seconds gone by, like a stopwatch)."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def audio(done: float, total: float | None = None) -> str:
    """Seconds of audio: ``9.0 s``, ``4.5 / 9.0 s``, or ``12:30 / 1:00:00`` past a minute."""
    if total is None:
        return f"{done:.1f} s" if done < 60 else clock(done)
    if total < 60:
        return f"{done:.1f} / {total:.1f} s"
    return f"{clock(done)} / {clock(total)}"


def count(done: float, total: float | None, unit: str) -> str:
    """``3/4 performers``, ``4 performers`` when all are done, ``""`` when nothing is known."""
    whole = total if total is not None else done
    plural = unit if not unit or whole == 1 else unit + "s"
    if total is None:
        return f"{done:g} {plural}".strip() if done else ""
    if done == total:
        return f"{total:g} {plural}".strip()
    return f"{done:g}/{total:g} {plural}".strip()


class Row:
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
            return f"{self.title}: {audio(self.total)} of audio"
        whole = count(self.total, None, self.unit) if self.total else ""
        return f"{self.title}: {whole}" if whole else self.title

    def figures(self, percent: bool = False) -> str:
        if self.unit == "s":
            text = audio(self.done, self.total)
        else:
            text = count(self.done, self.total, self.unit)
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


class BatchRow:
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

    def fraction(self, running: list[Row]) -> float | None:
        if not self.todo:
            return None
        partial = sum(row.fraction() or 0.0 for row in running)
        return min(1.0, (self.ran + partial) / self.todo)

    def figures(self) -> str:
        text = f"{self.ended}/{self.items} items"
        return text + (f", {self.failed} failed" if self.failed else "")

    def left(self, running: list[Row], now: float) -> float | None:
        f = self.fraction(running)
        if self.began is None or not f:
            return None
        return (now - self.began) * (1.0 - f) / f
