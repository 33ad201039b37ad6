"""Atomic writes: nothing half-written under a final name, whatever happens during the write."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pcsep_cli.errors import OutputExistsError, PcsepError
from pcsep_cli.io import atomic
from pcsep_cli.io.atomic import (
    TMP_MARKER,
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    find_stray_temps,
    remove_stray_temps,
)


def _mount_tmpfs(folder: Path, options: str) -> bool:
    """Mount a real tmpfs on ``folder`` (root only); False where mounting is not allowed."""
    if os.geteuid() != 0:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True
    )
    return done.returncode == 0


def _umount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture
def full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on a 64 KiB file system; fault injection of ENOSPC where mount is refused."""
    folder = tmp_path / "small"
    folder.mkdir()
    if _mount_tmpfs(folder, "size=64k"):
        yield folder
        _umount(folder)
        return
    real_write = os.write

    def write(fd: int, data: bytes) -> int:  # fails like a full disk for files in `folder`
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(folder)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    yield folder


@pytest.fixture
def read_only_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder nobody, root included, can create files in."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if _mount_tmpfs(folder, "ro,size=64k"):
        yield folder
        _umount(folder)
        return
    folder.chmod(0o555)  # enough for an unprivileged user
    if os.geteuid() == 0:  # root ignores modes and may not mount: inject the refusal
        real_access = os.access

        def access(path: object, mode: int, **kwargs: object) -> bool:
            refused = Path(str(path)) == folder and mode & os.W_OK
            return False if refused else real_access(path, mode, **kwargs)

        monkeypatch.setattr(os, "access", access)
    yield folder
    folder.chmod(0o755)


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_path_commits_and_leaves_no_temp(tmp_path: Path) -> None:
    final = tmp_path / "stem.wav"
    with atomic_path(final, overwrite=False) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".wav"
        assert tmp.name.startswith(".stem.wav" + TMP_MARKER + f"{os.getpid()}-")
        assert tmp.exists() and not final.exists()  # nothing under the final name yet
        tmp.write_bytes(b"data")
    assert final.read_bytes() == b"data"
    assert _listing(tmp_path) == ["stem.wav"]


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_atomic_path_cleans_up_on_any_exception(tmp_path: Path, exc: BaseException) -> None:
    final = tmp_path / "stem.wav"
    with pytest.raises(type(exc)):
        with atomic_path(final, overwrite=False) as tmp:
            tmp.write_bytes(b"half")
            raise exc
    assert _listing(tmp_path) == []


def test_failed_overwrite_keeps_the_old_file(tmp_path: Path) -> None:
    final = tmp_path / "manifest.json"
    final.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(final, overwrite=True) as tmp:
            tmp.write_text("new, half")
            raise KeyboardInterrupt
    assert final.read_text() == "old"
    assert _listing(tmp_path) == ["manifest.json"]


def test_existing_file_refused_without_overwrite(tmp_path: Path) -> None:
    final = tmp_path / "stem.flac"
    final.write_bytes(b"keep")
    with pytest.raises(OutputExistsError) as info:
        with atomic_path(final, overwrite=False):
            pytest.fail("the block must not run")
    assert str(final) in str(info.value) and "--overwrite" in str(info.value)
    assert final.read_bytes() == b"keep"
    atomic_write_bytes(final, b"new", overwrite=True)
    assert final.read_bytes() == b"new"
    assert _listing(tmp_path) == ["stem.flac"]


def test_file_appearing_during_the_write_is_not_clobbered(tmp_path: Path) -> None:
    final = tmp_path / "a.txt"
    with pytest.raises(OutputExistsError):
        with atomic_path(final, overwrite=False) as tmp:
            tmp.write_text("mine")
            final.write_text("theirs")  # another process got there first
    assert final.read_text() == "theirs"
    assert _listing(tmp_path) == ["a.txt"]


def test_missing_folder_and_folder_as_target(tmp_path: Path) -> None:
    with pytest.raises(PcsepError, match="does not exist"):
        atomic_write_text(tmp_path / "nope" / "a.txt", "x", overwrite=False)
    (tmp_path / "a.wav").mkdir()
    with pytest.raises(PcsepError, match="is a folder"):
        atomic_write_text(tmp_path / "a.wav", "x", overwrite=True)


def test_unwritable_folder_is_a_clear_error(read_only_dir: Path) -> None:
    with pytest.raises(PcsepError) as info:
        atomic_write_text(read_only_dir / "a.txt", "x", overwrite=False)
    message = str(info.value)
    assert str(read_only_dir) in message and "-o" in message
    assert any(word in message for word in ("not writable", "read-only", "permission"))
    assert _listing(read_only_dir) == []


def test_write_text_and_bytes_round_trip(tmp_path: Path) -> None:
    text = "first line\r\nsecond: é ✓\n"
    atomic_write_text(tmp_path / "t.txt", text, overwrite=False)
    assert (tmp_path / "t.txt").read_bytes() == text.encode()
    blob = os.urandom(3 << 20)
    atomic_write_bytes(tmp_path / "b.bin", blob, overwrite=False)
    assert (tmp_path / "b.bin").read_bytes() == blob


def test_disk_full_is_typed_and_leaves_nothing(full_disk: Path) -> None:
    final = full_disk / "stem.bin"
    with pytest.raises(PcsepError, match="disk full") as info:
        atomic_write_bytes(final, b"\0" * (1 << 20), overwrite=False)
    assert str(final) in str(info.value) and "-o" in str(info.value)
    assert _listing(full_disk) == []


def test_long_names_get_a_shorter_temp(tmp_path: Path) -> None:
    final = tmp_path / ("x" * 245 + ".wav")  # 249 bytes: the temp tag would pass NAME_MAX
    with atomic_path(final, overwrite=False) as tmp:
        assert len(tmp.name.encode()) <= 255 and tmp.suffix == ".wav"
        tmp.write_bytes(b"ok")
    assert final.read_bytes() == b"ok"


def test_concurrent_writers_get_distinct_temps(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "a.wav", overwrite=True) as t1:
        with atomic_path(tmp_path / "a.wav", overwrite=True) as t2:
            assert t1 != t2
            t2.write_bytes(b"2")
        t1.write_bytes(b"1")
    assert (tmp_path / "a.wav").read_bytes() == b"1"  # last commit wins, nothing mixed


_WRITER = """
import sys, time
from pcsep_cli.io.atomic import atomic_path
with atomic_path(sys.argv[1], overwrite=False) as tmp:
    tmp.write_bytes(b"partial")
    print(tmp, flush=True)
    time.sleep(60)
"""


def test_sigkilled_writer_leaves_a_temp_that_the_next_run_removes(tmp_path: Path) -> None:
    final = tmp_path / "stem.wav"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(final)], stdout=subprocess.PIPE, text=True
    )
    try:
        tmp = Path(proc.stdout.readline().strip())
        assert tmp.exists()
        assert find_stray_temps(tmp_path) == []  # its writer is alive: not stray
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
        proc.stdout.close()
    assert not final.exists()
    assert find_stray_temps(tmp_path) == [tmp]
    assert remove_stray_temps(tmp_path) == [tmp]
    assert _listing(tmp_path) == []


def test_stray_detection_by_age_and_ownership(tmp_path: Path) -> None:
    sub = tmp_path / "track"
    sub.mkdir()
    foreign_old = sub / f".a.wav{TMP_MARKER}123-abcdef-0123abcd.wav"  # another host, died
    foreign_new = tmp_path / f".b.wav{TMP_MARKER}123-abcdef-0123abcd.wav"  # another host, busy
    unrelated = tmp_path / ".c.wav.tmp"
    for path in (foreign_old, foreign_new, unrelated):
        path.write_bytes(b"x")
    old = time.time() - 2 * atomic.STALE_AFTER_S
    os.utime(foreign_old, (old, old))
    (tmp_path / "stem.wav").write_bytes(b"x")
    with atomic_path(tmp_path / "mine.wav", overwrite=False) as mine:  # this process: alive
        assert find_stray_temps(tmp_path) == []
        assert find_stray_temps(tmp_path, recursive=True) == [foreign_old]
        assert remove_stray_temps(tmp_path, recursive=True) == [foreign_old]
        assert mine.exists() and foreign_new.exists() and unrelated.exists()
    assert find_stray_temps(tmp_path / "missing") == []


_KILLED_MID_COMMIT = """
import os, signal, sys
from pathlib import Path
from pcsep_cli.io import atomic
folder = Path(sys.argv[1])
(folder / "sub").mkdir()
pending = [atomic.PendingFile(folder / name, overwrite=False) for name in ("a", "sub/b", "c")]
for i, p in enumerate(pending):
    p.tmp.write_bytes(bytes([i]) * 1000)
commit = atomic.PendingFile.commit
calls = []
def dying_commit(self):
    if calls:  # the second rename never happens: the process is killed first
        os.kill(os.getpid(), signal.SIGKILL)
    calls.append(self)
    commit(self)
atomic.PendingFile.commit = dying_commit
atomic.commit_together(pending, folder)
"""


def test_a_group_killed_during_its_renames_is_completed_by_the_next_sweep(
    tmp_path: Path,
) -> None:
    proc = subprocess.run([sys.executable, "-c", _KILLED_MID_COMMIT, str(tmp_path)], check=False)
    assert proc.returncode == -signal.SIGKILL
    journals = list(tmp_path.glob(f".*{TMP_MARKER}*{atomic.JOURNAL_SUFFIX}"))
    assert len(journals) == 1
    assert (tmp_path / "a").exists() and not (tmp_path / "c").exists()

    handled = remove_stray_temps(tmp_path, recursive=True)

    assert journals[0] in handled
    assert (tmp_path / "a").read_bytes() == b"\x00" * 1000
    assert (tmp_path / "sub" / "b").read_bytes() == b"\x01" * 1000
    assert (tmp_path / "c").read_bytes() == b"\x02" * 1000
    assert not list(tmp_path.rglob(f"*{TMP_MARKER}*"))


def test_commit_together_puts_every_file_in_place_and_leaves_no_journal(tmp_path: Path) -> None:
    pending = [atomic.PendingFile(tmp_path / n, overwrite=False) for n in ("x", "y")]
    for p in pending:
        p.tmp.write_text(p.final.name)
    atomic.commit_together(pending, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x", "y"]
    assert (tmp_path / "y").read_text() == "y"


def _group(folder: Path, names: tuple[str, ...], old: tuple[str, ...]) -> list:
    """Complete temporary files for ``names`` (``new <name>``); those in ``old`` exist already
    (``old <name>``) and are replaced."""
    for name in old:
        (folder / name).write_text(f"old {name}")
    pending = [atomic.PendingFile(folder / n, overwrite=True) for n in names]
    for p in pending:
        p.tmp.write_text(f"new {p.final.name}")
    return pending


def test_a_group_is_refused_whole_when_one_target_became_a_folder(tmp_path: Path) -> None:
    pending = _group(tmp_path, ("a", "b", "c"), old=("a", "b", "c"))
    (tmp_path / "c").unlink()
    (tmp_path / "c").mkdir()  # after the check at creation, before the commit

    with pytest.raises(PcsepError, match="is a folder, cannot write a file under this name"):
        atomic.commit_together(pending, tmp_path)

    assert [(tmp_path / n).read_text() for n in "ab"] == ["old a", "old b"]
    assert (tmp_path / "c").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]


def test_a_group_whose_later_rename_fails_puts_back_what_it_had_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pending = _group(tmp_path, ("a", "new", "c"), old=("a", "c"))
    replace, failed = os.replace, []

    def failing_once(src: str, dst: str) -> None:
        if Path(dst).name == "c" and not failed:
            failed.append(dst)
            raise OSError(errno.EIO, "Input/output error")
        replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", failing_once)
    with pytest.raises(PcsepError, match="Input/output error"):
        atomic.commit_together(pending, tmp_path)

    assert failed  # "a" and "new" were in place when "c" failed
    assert [(tmp_path / n).read_text() for n in "ac"] == ["old a", "old c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "c"]


def test_replaced_files_are_never_missing_while_a_group_commits(tmp_path: Path) -> None:
    pending = _group(tmp_path, ("a", "b"), old=("a", "b"))
    seen = []
    commit = atomic.PendingFile.commit

    def watched(self: atomic.PendingFile) -> None:
        seen.append(sorted(p.name for p in tmp_path.iterdir() if TMP_MARKER not in p.name))
        commit(self)

    atomic.PendingFile.commit = watched  # type: ignore[method-assign]
    try:
        atomic.commit_together(pending, tmp_path)
    finally:
        atomic.PendingFile.commit = commit  # type: ignore[method-assign]
    assert seen == [["a", "b"], ["a", "b"]]
    assert [(tmp_path / n).read_text() for n in "ab"] == ["new a", "new b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_a_journal_replay_never_leaves_its_folder_and_never_clobbers(tmp_path: Path) -> None:
    import json

    inner = tmp_path / "out"
    inner.mkdir()
    keep = inner / "kept.wav"
    keep.write_text("the user's own file")
    tmp_keep = inner / f".kept.wav{TMP_MARKER}1-abcdef-00000000.wav"
    tmp_keep.write_text("pcsep's")
    outside = inner / f".x{TMP_MARKER}1-abcdef-00000001.wav"
    outside.write_text("x")
    journal = inner / f".commit.journal{TMP_MARKER}1-abcdef-00000002.journal"
    journal.write_text(
        json.dumps(
            {
                "version": 1,
                "files": [
                    {"tmp": tmp_keep.name, "final": "kept.wav", "overwrite": False},
                    {"tmp": outside.name, "final": "../escaped.wav", "overwrite": True},
                    {"tmp": "/etc/passwd", "final": "p", "overwrite": True},
                    "garbage",
                ],
            }
        )
    )
    assert atomic.replay_journal(journal) == []
    assert keep.read_text() == "the user's own file"
    assert not (tmp_path / "escaped.wav").exists() and not (inner / "p").exists()
    assert not journal.exists() and not tmp_keep.exists()

    torn = inner / f".commit.journal{TMP_MARKER}1-abcdef-00000003.journal"
    torn.write_text('{"version": 1, "fil')  # killed while writing the journal
    assert atomic.replay_journal(torn) == []
    assert not torn.exists()
