"""Progress that means something (issue 16): the stages of a separation by name, audio counted
in seconds of the recording whatever its rate and channels, and the one display that draws
them: live on a terminal, plain lines at a sensible rate elsewhere.

The real processes in a terminal and a pipe are in tests/test_cli_progress.py; here the
library's events on real files, and the plain display fed with a clock of the test's own.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from rich.console import Console

from pcsep_cli.cli.progress_rows import clock
from pcsep_cli.cli.progress_view import ProgressView
from pcsep_cli.progress import Progress
from pcsep_cli.separate import SeparateOptions, prepare_job, run_job
from pcsep_cli.separate.separator import Separator

STAGES = ["read", "find", "classify", "separate", "write"]


def _events(model: Path, scene: Path, audio: Path, out: Path, **options: object) -> list[Progress]:
    seen: list[Progress] = []
    job = prepare_job(audio, [scene], out, SeparateOptions(**options), progress=seen.append)
    run_job(Separator.from_pretrained(str(model), segment=1.0), job, progress=seen.append)
    return seen


def _stages(events: list[Progress]) -> list[str]:
    return [e.stage for i, e in enumerate(events) if i == 0 or events[i - 1].stage != e.stage]


@pytest.mark.parametrize(("channels", "rate"), [(1, 22050), (6, 48000)])
def test_a_separation_reports_its_stages_and_seconds_of_audio(
    model: Path, scene_ply: Path, tmp_path: Path, channels: int, rate: int
) -> None:
    audio = tmp_path / "take.wav"
    noise = 0.1 * np.random.default_rng(0).standard_normal((int(3.5 * rate), channels))
    sf.write(audio, noise.astype(np.float32), rate)
    events = _events(model, scene_ply, audio, tmp_path / "out")
    assert _stages(events) == STAGES
    for stage in STAGES:
        mine = [e for e in events if e.stage == stage]
        assert mine[0].done == 0, stage  # each stage is announced as it begins
        assert mine[-1].done == mine[-1].total, stage  # and closed when it ends
    assert [e.total for e in events if e.stage == "read"] == [1, 1]
    assert events[0].detail == scene_ply.name
    assert {e.total for e in events if e.stage in ("find", "classify") and e.done} == {2}
    for stage in ("separate", "write"):
        passes = [e for e in events if e.stage == stage]
        # Seconds of the recording, the same for 1 channel at 22.05 kHz and 6 at 48 kHz.
        assert {(e.unit, e.total) for e in passes} == {("s", 3.5)}
        done = [e.done for e in passes]
        assert done == sorted(done) and done[-1] == 3.5
    # 1 s chunks: the first pass reports as it goes, not only at the end.
    assert len([e for e in events if e.stage == "separate"]) >= 4


def test_label_mode_names_nobody(model: Path, scene_ply: Path, tmp_path: Path) -> None:
    audio = tmp_path / "take.wav"
    sf.write(audio, np.zeros((8000, 2), np.float32), 16000)
    events = _events(model, scene_ply, audio, tmp_path / "out", instruments=("violin", "cello"))
    assert _stages(events) == ["read", "find", "separate", "write"]


class Clock:
    """Seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _plain(clock_: Clock) -> tuple[ProgressView, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=80, highlight=False)
    view = ProgressView.for_console(console)
    assert view.mode == "plain"
    return ProgressView(console, "plain", clock=clock_), out


def test_plain_lines_one_per_stage_then_at_most_every_5_s_and_10_percent() -> None:
    """A 10-minute recording separated at 2x real time, reported every 0.5 s of audio."""
    now = Clock()
    view, out = _plain(now)
    with view:
        view(Progress("read", 0, 1, "file", "scene.ply"))
        now.now += 0.5
        view(Progress("read", 1, 1, "file"))
        view(Progress("find", 0, None, "performer"))
        now.now += 1.0
        view(Progress("find", 3, 3, "performer"))
        view(Progress("load", 0, None, "", "pcsep-base"))
        now.now += 2.0
        view(Progress("classify", 0, 3, "performer"))
        view(Progress("classify", 3, 3, "performer"))
        for done in np.arange(0.0, 600.01, 0.5):  # 1,201 events
            view(Progress("separate", float(done), 600.0, "s"))
            now.now += 0.25
        for done in np.arange(0.0, 600.01, 60.0):
            view(Progress("write", float(done), 600.0, "s"))
            now.now += 1.0
        view.finish()
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text  # never redrawn, never coloured
    lines = text.splitlines()
    assert all(re.match(r"\[\d+:\d\d\] \S", line) for line in lines), text
    assert lines[:6] == [
        "[0:00] reading scene (scene.ply): 1 file",
        "[0:00] finding performers",
        "[0:01] loading model (pcsep-base)",
        "[0:03] naming performers: 3 performers",
        "[0:03] separating: 10:00 of audio",
        # 4:30 for the rest of the first pass at 2x, 0:33 for writing (a tenth of the work)
        "[0:33] separating: 1:00 / 10:00 (10 %), 2.0x real time, 5:03 left",
    ]
    separating = [line for line in lines if "] separating: " in line][1:]
    assert len(separating) == 9  # at 10 %, 20 % … 90 %: not 1,201 lines
    assert separating[-1] == "[4:33] separating: 9:00 / 10:00 (90 %), 2.0x real time, 1:03 left"
    assert lines[-3:] == [
        "[5:03] writing: 10:00 of audio",
        "[5:08] writing: 5:00 / 10:00 (50 %), 60.0x real time, 0:05 left",  # 5 s after
        "[5:14] done: 10:00 of audio in 5:14 (1.9x real time)",
    ]
    assert len(lines) == 6 + 8 + 3


def test_plain_batch_lines_count_items_and_failures() -> None:
    now = Clock()
    view, out = _plain(now)
    with view:
        view.start_batch("batch", items=12, todo=10)
        view(Progress("load", 0, None, "", "pcsep-base"))
        view.item_ended("old1", ran=False, failed=False)
        view.item_ended("old2", ran=False, failed=False)
        now.now += 3.0
        for k in range(10):
            name = f"take{k}"
            view.item(name)
            view.item(name, Progress("read", 0, 1, "file", "scene.ply"))
            view.item(name, Progress("separate", 0.0, 9.0, "s"))
            now.now += 2.0
            view.item(name, Progress("separate", 9.0, 9.0, "s"))
            view.item_ended(name, ran=True, failed=k == 4)
            if k == 4:
                view.note("failed: take4: broken")
        view.finish()
    lines = out.getvalue().splitlines()
    assert lines[:2] == ["[0:00] loading model (pcsep-base)", "[0:03] batch: 2/12 items"]
    failed = lines.index("failed: take4: broken")
    # No line per item or stage: the batch's own line, 5 s and 10 % apart at least.
    times = [int(line[1]) * 60 + int(line[3:5]) for line in lines[1:] if line.startswith("[")]
    periodic = times[:-2]  # then the line of the last item and the closing line
    assert len(periodic) >= 3 and all(
        b - a >= 5 for a, b in zip(periodic, periodic[1:], strict=False)
    )
    assert all("failed" not in line for line in lines[:failed])
    assert "1 failed" in lines[failed + 1]
    # At 0:09, take2 90 % through: 2.9 of 10 items' work in 6 s, so 14.7 s to go.
    assert lines[2] == "[0:09] batch: 4/12 items, 0:15 left"
    assert lines[-2:] == [
        "[0:23] batch: 12/12 items, 1 failed",
        "[0:23] batch: 12/12 items, 1 failed, done in 0:23",
    ]


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0, "0:00"), (9.4, "0:09"), (754, "12:34"), (3723, "1:02:03")]
)
def test_clock(seconds: float, shown: str) -> None:
    assert clock(seconds) == shown


def test_quiet_draws_nothing() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80)
    view = ProgressView.for_console(console, quiet=True)
    with view:
        view(Progress("separate", 1.0, 2.0, "s"))
        view.note("failed: x")
        view.finish()
    assert out.getvalue() == ""
