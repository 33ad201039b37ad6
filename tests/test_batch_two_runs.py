"""Two ``pcsep batch`` runs on one output folder (a SLURM array launched twice, no --shard):
per-item locks make each item written once, by whichever run holds it, and a killed run's
locks are dropped with it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers.audio import wav
from helpers.batch import folder_of, output_files
from helpers.clouds import ply

from pcsep_cli.batch.lock import LOCK_PREFIX, ItemLock, lock_path, remove_stale_locks
from pcsep_cli.batch.run import (
    FINISHED_BEFORE,
    FINISHED_ELSEWHERE,
    RUNNING_ELSEWHERE,
    plan_batch,
    run_batch,
)
from pcsep_cli.io.atomic import TMP_MARKER

ROOT = Path(__file__).resolve().parents[1]
NAMES = "abcd"
Batch = tuple[Path, dict[str, str], dict[str, bytes]]


def _data(root: Path, scene_ply: Path) -> Path:
    data = folder_of(root / "data", scene_ply, NAMES)
    for name in NAMES:  # 1.5 s each: long enough for the runs to overlap
        noise = np.random.default_rng(ord(name)).standard_normal((24000, 2))
        sf.write(data / f"{name}.wav", (0.1 * noise).astype(np.float32), 16000, "PCM_16")
    return data


def _env(tmp_path: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {
        **os.environ,
        "PYTHONPATH": path,
        "PCSEP_CONFIG_DIR": str(tmp_path / "config"),
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_OFFLINE": "1",
    }


def _command(data: Path, out: Path, model: Path) -> list[str]:
    return [sys.executable, "-m", "pcsep_cli.cli", "batch", str(data), "-o", str(out)] + [
        "--model",
        str(model),
        "--segment",
        "0.5",
        "--json",
    ]


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory, model: Path, scene_ply: Path) -> Batch:
    """The batch folder, the environment, and the files of one run alone (the reference)."""
    root = tmp_path_factory.mktemp("two_runs")
    data, env = _data(root, scene_ply), _env(root)
    ref = subprocess.run(
        _command(data, root / "ref", model), env=env, capture_output=True, timeout=300
    )
    assert ref.returncode == 0, ref.stderr
    expected = output_files(root / "ref")
    assert sum(name.endswith("manifest.json") for name in expected) == len(NAMES)
    return data, env, expected


def test_lock_is_exclusive_released_and_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "out"  # made by the first lock
    first = ItemLock.try_acquire(out, "take1")
    assert first is not None and first.path == lock_path(out, "take1")
    assert first.path.name.startswith(LOCK_PREFIX)  # hidden
    # flock is per open file: a second open, even in this process, is refused.
    assert ItemLock.try_acquire(out, "take1") is None
    assert ItemLock.try_acquire(out, "TAKE1") is None  # names compare without case
    other = ItemLock.try_acquire(out, "take2")
    assert other is not None
    assert remove_stale_locks(out) == []  # both held
    first.release()
    other.release()
    assert list(out.iterdir()) == []
    with ItemLock.try_acquire(out, "take1") as again:
        assert again is not None
    assert list(out.iterdir()) == []


def test_stale_lock_of_a_killed_process_is_taken_and_cleaned(tmp_path: Path) -> None:
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from pathlib import Path\n"
         "from pcsep_cli.batch.lock import ItemLock\n"
         "lock = ItemLock.try_acquire(Path(sys.argv[1]), 'x')\n"
         "print('held', flush=True)\n"
         "time.sleep(60)\n", str(out)],
        env=_env(tmp_path), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        assert ItemLock.try_acquire(out, "x") is None  # another process holds it
        assert remove_stale_locks(out) == []
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert lock_path(out, "x").exists()  # a killed holder leaves the file, not the lock
    assert remove_stale_locks(out) == [lock_path(out, "x")]
    assert list(out.iterdir()) == []


def test_run_batch_skips_items_held_or_finished_by_another_process(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    for name in "abcd":
        wav(folder / f"{name}.wav")
        ply(folder / f"{name}.ply")
    out = tmp_path / "out"
    (out / "d").mkdir(parents=True)
    (out / "d" / "s.wav").write_bytes(b"x")
    finished = {"stems": [{"path": "s.wav"}], "residual": None}
    (out / "d" / "manifest.json").write_text(json.dumps(finished))
    plan = plan_batch(folder, out)
    held = ItemLock.try_acquire(out, "a")  # another run is separating a
    (out / "b").mkdir()  # another run finished b after this plan was made
    (out / "b" / "s.wav").write_bytes(b"x")
    (out / "b" / "manifest.json").write_text(json.dumps(finished))
    ran = []

    def runner(item, out_dir, progress):  # noqa: ANN001, ANN202
        ran.append(item.name)
        return []

    summary = run_batch(plan, runner, jobs=2)

    assert ran == ["c"] and summary.ok
    assert [(r.status, r.note) for r in summary.results] == [
        ("skipped", RUNNING_ELSEWHERE),
        ("skipped", FINISHED_ELSEWHERE),
        ("done", None),
        ("skipped", FINISHED_BEFORE),
    ]
    assert summary.to_json()["items"][0]["note"] == RUNNING_ELSEWHERE
    assert held is not None
    held.release()
    assert not list(out.glob(f"{LOCK_PREFIX}*"))


def test_a_batch_whose_items_all_fail_leaves_no_output_root(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    wav(folder / "a.wav")
    ply(folder / "a.ply")
    out = tmp_path / "new" / "out"

    def runner(item, out_dir, progress):  # noqa: ANN001, ANN202
        raise OSError("boom")

    summary = run_batch(plan_batch(folder, out), runner)

    assert summary.count("failed") == 1
    assert not out.exists()  # made for the item's lock, removed again


def test_two_concurrent_runs_write_each_item_once(
    tmp_path: Path, model: Path, batch: Batch
) -> None:
    data, env, expected = batch
    out = tmp_path / "out"

    runs = [
        subprocess.Popen(
            _command(data, out, model), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300) for run in runs]

    for run, (_, stderr) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, stderr.decode()
    reports = [json.loads(stdout) for stdout, _ in outputs]
    for name in NAMES:
        statuses = sorted(
            next(i for i in r["items"] if i["name"] == name)["status"] for r in reports
        )
        assert statuses == ["done", "skipped"], (name, statuses)
    # The runs overlapped: each did part of the work (or found an item held by the other).
    notes = [i["note"] for r in reports for i in r["items"] if i["status"] == "skipped"]
    assert RUNNING_ELSEWHERE in notes or all(r["counts"]["done"] for r in reports), notes
    assert output_files(out) == expected  # byte-identical, no lock file or temporary left


def test_second_run_completes_what_a_killed_run_held(
    tmp_path: Path, model: Path, batch: Batch
) -> None:
    data, env, expected = batch
    out = tmp_path / "out"

    first = subprocess.Popen(
        _command(data, out, model), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while first.poll() is None and time.monotonic() < deadline:
            if list(out.rglob(f".*{TMP_MARKER}*")):  # an item is being written
                break
            time.sleep(0.005)
        held = list(out.glob(f"{LOCK_PREFIX}*"))
    finally:
        first.kill()  # SIGKILL: no cleanup
        first.wait()
    assert held, "the first run held no lock while writing"

    again = subprocess.run(_command(data, out, model), env=env, capture_output=True, timeout=300)

    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["counts"]["failed"] == 0 and report["counts"]["cancelled"] == 0
    assert all(i["note"] != RUNNING_ELSEWHERE for i in report["items"])
    assert output_files(out) == expected
