"""The batch runner's own behaviour: failures, fail-fast, workers, interrupts, observer calls.

The item runner here does real file work (reads the recording with soundfile, writes a stem
and a manifest atomically) so the runner is exercised apart from the model; the CLI tests
(tests/test_cli_batch.py) run the real separator.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers.audio import wav
from helpers.batch import folder_of
from helpers.clouds import ply

from pcsep_cli.batch import BatchObserver, ItemResult, plan_batch, run_batch
from pcsep_cli.batch.plan import BatchItem, is_finished
from pcsep_cli.errors import AudioError
from pcsep_cli.io.atomic import TMP_MARKER, atomic_path, atomic_write_text
from pcsep_cli.progress import Progress


def copy_runner(item: BatchItem, out_dir: Path, progress) -> Sequence[str]:  # noqa: ANN001
    """Half the recording as a 'gain' stem, written in two steps with progress reports."""
    try:
        data, rate = sf.read(item.audio, dtype="float32", always_2d=True)
    except sf.LibsndfileError as err:
        raise AudioError(f"cannot read: {err}", item.audio, "re-export it") from None
    out_dir.mkdir(parents=True, exist_ok=True)
    progress(Progress("item", 0, 2, "step"))
    with atomic_path(out_dir / "gain.wav", overwrite=False) as tmp:
        sf.write(tmp, 0.5 * data, rate)
        progress(Progress("item", 1, 2, "step"))
    manifest = {"stems": [{"name": "gain", "path": "gain.wav"}]}
    atomic_write_text(out_dir / "manifest.json", json.dumps(manifest), overwrite=False)
    progress(Progress("item", 2, 2, "step"))
    return ["gain"]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    for name in ("a", "b", "c", "d", "e"):
        wav(data / f"{name}.wav"), ply(data / f"{name}.ply")
    (data / "c.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage")  # corrupt
    return data


class Recorder(BatchObserver):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple] = []

    def item_started(self, item: BatchItem) -> None:
        with self.lock:
            self.events.append(("start", item.name))

    def item_progress(self, item: BatchItem, event: Progress) -> None:
        with self.lock:
            self.events.append(("progress", item.name, event.done, event.total))

    def item_finished(self, result: ItemResult) -> None:
        with self.lock:
            self.events.append(("finish", result.item.name, result.status))


@pytest.mark.parametrize("jobs", [1, 3])
def test_a_corrupt_item_fails_alone(folder: Path, tmp_path: Path, jobs: int) -> None:
    seen = Recorder()
    summary = run_batch(plan_batch(folder, tmp_path / "out"), copy_runner, jobs=jobs, observer=seen)
    assert [r.item.name for r in summary.results] == ["a", "b", "c", "d", "e"]
    assert [r.status for r in summary.results] == ["done", "done", "failed", "done", "done"]
    (failed,) = summary.failed
    assert str(folder / "c.wav") in failed.error and failed.traceback is None
    assert not summary.ok and summary.count("done") == 4
    for name in "abde":
        assert is_finished(tmp_path / "out" / name / "manifest.json")
    assert ("finish", "c", "failed") in seen.events
    assert [e for e in seen.events if e[1] == "a"] == [
        ("start", "a"),
        ("progress", "a", 0, 2),
        ("progress", "a", 1, 2),
        ("progress", "a", 2, 2),
        ("finish", "a", "done"),
    ]
    report = summary.to_json()
    assert report["counts"] == {"done": 4, "skipped": 0, "failed": 1, "cancelled": 0}
    assert json.loads(json.dumps(report))["items"][2]["status"] == "failed"


def test_resume_skips_finished_items(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_batch(plan_batch(folder, out), copy_runner)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    (folder / "c.wav").unlink()
    wav(folder / "c.wav")  # repaired
    summary = run_batch(plan_batch(folder, out), copy_runner, jobs=2)
    assert [r.status for r in summary.results] == [
        "skipped",
        "skipped",
        "done",
        "skipped",
        "skipped",
    ]
    assert summary.ok
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_no_resume_does_not_overwrite(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_batch(plan_batch(folder, out), copy_runner)
    before = (out / "a" / "gain.wav").read_bytes()
    summary = run_batch(plan_batch(folder, out, resume=False), copy_runner)
    statuses = {r.item.name: (r.status, r.error or "") for r in summary.results}
    assert statuses["a"][0] == "failed" and "exists already" in statuses["a"][1]
    assert "--overwrite" in statuses["a"][1]
    assert (out / "a" / "gain.wav").read_bytes() == before


def test_unexpected_errors_keep_their_traceback(folder: Path, tmp_path: Path) -> None:
    def runner(item: BatchItem, out_dir: Path, progress) -> Sequence[str]:  # noqa: ANN001
        if item.name == "b":
            raise ZeroDivisionError("division\nby zero")
        return copy_runner(item, out_dir, progress)

    summary = run_batch(plan_batch(folder, tmp_path / "out"), runner)
    b = summary.results[1]
    assert b.status == "failed" and b.error == "internal error: ZeroDivisionError: division by zero"
    assert "ZeroDivisionError" in b.traceback


def test_fail_fast_runs_nothing_after_the_first_failure(folder: Path, tmp_path: Path) -> None:
    summary = run_batch(plan_batch(folder, tmp_path / "out"), copy_runner, fail_fast=True)
    assert [r.status for r in summary.results] == [
        "done",
        "done",
        "failed",
        "cancelled",
        "cancelled",
    ]
    assert summary.results[3].error == "not run: --fail-fast stopped the batch"
    assert not (tmp_path / "out" / "d").exists()


def test_jobs_run_items_at_the_same_time(folder: Path, tmp_path: Path) -> None:
    (folder / "c.wav").unlink()
    wav(folder / "c.wav")
    barrier = threading.Barrier(2, timeout=10)
    names: set[str] = set()

    def runner(item: BatchItem, out_dir: Path, progress) -> Sequence[str]:  # noqa: ANN001
        barrier.wait()  # only passes when two items are running at once
        names.add(threading.current_thread().name)
        return copy_runner(item, out_dir, progress)

    plan = plan_batch(folder, tmp_path / "out")
    summary = run_batch(plan.__class__(**{**plan.__dict__, "todo": plan.todo[:4]}), runner, jobs=2)
    assert [r.status for r in summary.results] == ["done"] * 4
    assert len(names) == 2


def test_interrupt_stops_running_items_and_removes_their_temps(
    folder: Path, tmp_path: Path
) -> None:
    class CtrlC(BatchObserver):
        def item_progress(self, item: BatchItem, event: Progress) -> None:
            if item.name == "b" and event.done == 1:
                raise KeyboardInterrupt

    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_batch(plan_batch(folder, out), copy_runner, jobs=1, observer=CtrlC())
    assert is_finished(out / "a" / "manifest.json")
    assert not (out / "b" / "gain.wav").exists()
    assert not list(out.rglob(f"*{TMP_MARKER}*"))
    assert not (out / "c").exists() and not (out / "d").exists()


def test_jobs_must_be_positive(folder: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="jobs must be >= 1, got 0"):
        run_batch(plan_batch(folder, tmp_path / "out"), copy_runner, jobs=0)


def test_results_do_not_depend_on_jobs(folder: Path, tmp_path: Path) -> None:
    one = run_batch(plan_batch(folder, tmp_path / "one"), copy_runner, jobs=1)
    three = run_batch(plan_batch(folder, tmp_path / "three"), copy_runner, jobs=3)
    assert [(r.item, r.status, r.stems) for r in one.results] == [
        (r.item, r.status, r.stems) for r in three.results
    ]
    assert np.array_equal(
        sf.read(tmp_path / "one" / "e" / "gain.wav")[0],
        sf.read(tmp_path / "three" / "e" / "gain.wav")[0],
    )


def test_a_model_that_fails_to_load_fails_every_item_once(
    tmp_path: Path,
    scene_ply: Path,
) -> None:
    from pcsep_cli.batch.runner import SeparatorRunner
    from pcsep_cli.errors import ModelError
    from pcsep_cli.separate import Separator
    from pcsep_cli.separate.job import SeparateOptions

    calls = []

    def load() -> Separator:
        calls.append(1)
        return Separator.from_pretrained(str(tmp_path / "no-model"), device="cpu")

    folder = folder_of(tmp_path / "data", scene_ply, "abcd")
    (folder / "c.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage")
    plan = plan_batch(folder, tmp_path / "out")
    summary = run_batch(plan, SeparatorRunner(plan, SeparateOptions(), load), jobs=2)
    assert len(calls) == 1
    assert [r.status for r in summary.results] == ["failed"] * 4
    errors = {r.item.name: r.error for r in summary.results}
    assert str(folder / "c.wav") in errors["c"]  # checked before the model is needed
    assert len({errors[n] for n in "abd"}) == 1 and "no-model" in errors["a"]
    with pytest.raises(ModelError):
        load()


def test_fail_fast_stops_a_running_item_halfway(folder: Path, tmp_path: Path) -> None:
    b_running = threading.Event()

    def runner(item: BatchItem, out_dir: Path, progress) -> Sequence[str]:  # noqa: ANN001
        if item.name == "a":
            assert b_running.wait(10)
            raise AudioError("cannot read", item.audio)
        b_running.set()
        for step in range(1000):  # stopped by its progress report once a has failed
            progress(Progress("item", step, 1000, "step"))
            threading.Event().wait(0.01)
        return ["never"]

    plan = plan_batch(folder, tmp_path / "out")
    summary = run_batch(plan, runner, jobs=2, fail_fast=True)
    errors = {r.item.name: (r.status, r.error) for r in summary.results}
    assert errors["a"] == ("failed", f"{folder / 'a.wav'}: cannot read")
    assert errors["b"] == ("cancelled", "stopped halfway: --fail-fast, another item failed")
    assert {errors[n] for n in "cde"} == {("cancelled", "not run: --fail-fast stopped the batch")}
