"""Atomic file writes: write to a temporary name beside the target, then rename onto it.

An interrupted run (exception, Ctrl-C, SIGKILL, power loss) never leaves a half-written file
under the final name: the data is written to ``.{name}.pcsep-tmp-{pid}-{host}-{random}{suffix}``
in the same folder (same file system, so the rename is atomic), flushed to disk with ``fsync``
and moved into place with :func:`os.replace`. On an exception the temporary file is removed;
after a SIGKILL it stays behind and the next run removes it with :func:`remove_stray_temps`.

The temporary name keeps the real suffix so libraries that choose the format from the
extension (soundfile) write the right one.

Several files that belong together (an item's stems and its manifest) are committed with
:func:`commit_together`: once every temporary file is complete, a *journal* listing them is
written, then the renames happen, then the journal goes. A run killed during the renames
leaves the journal; the next run's :func:`remove_stray_temps` finishes the renames (the data
was complete) before it sweeps, so the files appear all together or not at all. A rename that
fails (rather than a process that dies) takes the group's earlier renames back.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from os import PathLike
from pathlib import Path

from pcsep_cli.errors import OutputExistsError, PcsepError

TMP_MARKER = ".pcsep-tmp-"
"""Part of every temporary name; :func:`find_stray_temps` looks for it."""

STALE_AFTER_S = 3600.0
"""Age after which a temporary file is stray even when its writer cannot be checked.

A writer that is alive touches its file at least once per chunk, so an hour without a change
means it died: this catches files written from another machine on a shared folder (whose PIDs
mean nothing here) and PIDs reused by containers, where every run may be PID 1.
"""

JOURNAL_SUFFIX = ".journal"
"""Suffix of the journal of a :func:`commit_together` (a temporary name like the others)."""

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_NAME_MAX = 255  # bytes per file name on every common file system
_TEMP_RE = re.compile(
    r"^\.(?P<name>.*)" + re.escape(TMP_MARKER) + r"(?P<pid>\d+)-(?P<host>[0-9a-f]{6})-[0-9a-f]{8}"
)
_DISK_FULL_HINT = "free some space or choose another output folder with -o"
_PathArg = str | PathLike[str]


def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]


def disk_full_error(path: _PathArg, cls: type[PcsepError] = PcsepError) -> PcsepError:
    """The error raised when the disk filled up while ``path`` was being written."""
    return cls("disk full while writing", path=path, hint=_DISK_FULL_HINT)


def output_error(err: OSError, path: _PathArg, cls: type[PcsepError] = PcsepError) -> PcsepError:
    """Turn an :class:`OSError` met while writing ``path`` into a one-line typed error.

    Args:
        err: the error raised by the operating system.
        path: the file being written (the final name, not the temporary one).
        cls: the :class:`PcsepError` subclass to build (``AudioError`` for audio files).

    Returns:
        The error to raise, with a hint on how to fix it.
    """
    if err.errno in DISK_FULL_ERRNOS:
        return disk_full_error(path, cls)
    if err.errno in (errno.EACCES, errno.EPERM):
        return cls(
            "permission denied while writing",
            path=path,
            hint="check the folder's permissions or choose another output folder with -o",
        )
    if err.errno == errno.EROFS:
        return cls("the file system is read-only", path=path, hint="choose another folder with -o")
    return cls(
        f"cannot write: {err.strerror or err}", path=path, hint="choose another folder with -o"
    )


def _check_target(final: Path, overwrite: bool) -> None:
    folder = final.parent
    if not folder.exists():
        raise PcsepError(
            "output folder does not exist",
            path=folder,
            hint="create it or choose another output folder with -o",
        )
    if not folder.is_dir():
        raise PcsepError("is not a folder", path=folder, hint="choose another folder with -o")
    _check_final(final, overwrite)
    # Catches unprivileged users early; root passes here and is stopped by open() on a
    # read-only mount instead.
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PcsepError(
            "output folder is not writable",
            path=folder,
            hint="check its permissions or choose another output folder with -o",
        )


def _check_final(final: Path, overwrite: bool) -> None:
    """``final`` can take a file now: not a folder, and absent unless ``overwrite``."""
    if final.is_dir():
        raise PcsepError(
            "is a folder, cannot write a file under this name",
            path=final,
            hint="remove or rename that folder, or write elsewhere",
        )
    if not overwrite and os.path.lexists(final):
        raise OutputExistsError("exists already", path=final, hint="pass --overwrite to replace it")


def _temp_name(final: Path) -> str:
    tag = f"{TMP_MARKER}{os.getpid()}-{_host_tag()}-{secrets.token_hex(4)}{final.suffix}"
    base = final.name
    # A long final name plus the tag may pass NAME_MAX: shorten the part that only humans read.
    while base and len(os.fsencode(f".{base}{tag}")) > _NAME_MAX:
        base = base[:-1]
    return f".{base}{tag}"


def _fsync_path(path: Path) -> None:
    # Windows' fsync (_commit) needs a handle open for writing.
    fd = os.open(path, os.O_RDWR if os.name == "nt" else os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    if os.name == "nt":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on folders; the rename itself is still atomic
    finally:
        os.close(fd)


class PendingFile:
    """An empty temporary file beside ``final``, waiting to be committed or discarded.

    Creating it checks the target (folder exists and is writable; ``final`` absent unless
    ``overwrite``) so callers fail before any expensive work.

    Args:
        final: the file to produce.
        overwrite: replace ``final`` if it exists.

    Raises:
        OutputExistsError: ``final`` exists and ``overwrite`` is false.
        PcsepError: the folder is missing, not writable, read-only or full.
    """

    def __init__(self, final: _PathArg, *, overwrite: bool) -> None:
        self.final = Path(final)
        self.overwrite = overwrite
        _check_target(self.final, overwrite)
        self.tmp = self.final.parent / _temp_name(self.final)
        try:
            # O_EXCL: two writers can never share a temporary file.
            fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as err:
            raise output_error(err, self.final) from err
        os.close(fd)
        self._open = True

    def commit(self) -> None:
        """Flush the temporary file to disk and rename it onto the final name.

        Raises:
            OutputExistsError: ``final`` appeared meanwhile and ``overwrite`` is false.
            PcsepError: the flush or the rename failed (the temporary file is removed).
        """
        if not self._open:
            raise RuntimeError(f"{self.final}: pending file was already committed or discarded")
        try:
            _fsync_path(self.tmp)
            if not self.overwrite and os.path.lexists(self.final):
                raise OutputExistsError(
                    "was created by someone else while pcsep wrote it",
                    path=self.final,
                    hint="pass --overwrite to replace it",
                )
            os.replace(self.tmp, self.final)
        except OSError as err:
            self.discard()
            raise output_error(err, self.final) from err
        except BaseException:
            self.discard()
            raise
        self._open = False
        _fsync_dir(self.final.parent)

    def discard(self) -> None:
        """Remove the temporary file (never raises)."""
        self._open = False
        try:
            self.tmp.unlink()
        except OSError:
            pass


@contextmanager
def atomic_path(final: _PathArg, *, overwrite: bool) -> Iterator[Path]:
    """Yield a temporary path beside ``final`` that becomes ``final`` when the block succeeds.

    On any exception, ``KeyboardInterrupt`` included, the temporary file is removed and the
    exception goes on; an :class:`OSError` for a full disk becomes a :class:`PcsepError`.

    Example:
        >>> with atomic_path(out / "violin.wav", overwrite=False) as tmp:  # doctest: +SKIP
        ...     soundfile.write(tmp, data, 44100)

    Args:
        final: the file to produce.
        overwrite: replace ``final`` if it exists.

    Yields:
        The temporary path (same folder, same suffix, already created empty).

    Raises:
        OutputExistsError: ``final`` exists and ``overwrite`` is false.
        PcsepError: the folder is missing, not writable, read-only or full.
    """
    pending = PendingFile(final, overwrite=overwrite)
    try:
        yield pending.tmp
    except OSError as err:
        pending.discard()
        if err.errno in DISK_FULL_ERRNOS:
            raise disk_full_error(pending.final) from err
        raise
    except BaseException:
        pending.discard()
        raise
    pending.commit()


def atomic_write_bytes(path: _PathArg, data: bytes, *, overwrite: bool) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`).

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false.
        PcsepError: the folder is missing, not writable, or the disk is full.
    """
    with atomic_path(path, overwrite=overwrite) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (``os.write`` may write less than it is given)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def atomic_write_text(
    path: _PathArg, text: str, *, overwrite: bool, encoding: str = "utf-8"
) -> None:
    """Write ``text`` to ``path`` atomically, newlines unchanged (see :func:`atomic_path`).

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false.
        PcsepError: the folder is missing, not writable, or the disk is full.
    """
    atomic_write_bytes(path, text.encode(encoding), overwrite=overwrite)


def commit_together(pending: Sequence[PendingFile], folder: _PathArg) -> None:
    """Commit several complete temporary files as one step that survives SIGKILL.

    The journal (a temporary file in ``folder`` naming each temporary file and its final
    name, relative to ``folder``) is written and flushed before the first rename and removed
    after the last. If the process dies in between, the next :func:`remove_stray_temps` on
    ``folder`` completes the renames. Commit order is the order given: put the file whose
    presence marks the group as done (the manifest) last.

    An error is all or nothing too, as far as the file system allows: every final name is
    checked before the first rename (a folder there, or a file where ``overwrite`` is off,
    refuses the whole group), and when a rename fails after others succeeded, those are taken
    back: the files they replaced are put back from hard links made just before (where the
    file system has none, the new file stays), and new files are removed.

    Raises:
        OutputExistsError, PcsepError: as :meth:`PendingFile.commit`; nothing of the group is
            left in place and no temporary file remains.
    """
    base = Path(folder)
    journal = base / _temp_name(Path("commit" + JOURNAL_SUFFIX))
    entries = [
        {
            "tmp": os.path.relpath(p.tmp, base),
            "final": os.path.relpath(p.final, base),
            "overwrite": p.overwrite,
        }
        for p in pending
    ]
    try:
        for p in pending:
            _fsync_path(p.tmp)
        data = json.dumps({"version": 1, "files": entries}).encode()
        fd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_dir(base)
    except OSError as err:
        for p in pending:
            p.discard()
        _unlink_quietly(journal)
        if err.errno in DISK_FULL_ERRNOS:
            raise disk_full_error(journal) from err
        raise output_error(err, journal) from err
    done: list[tuple[PendingFile, bool, Path | None]] = []  # committed: existed before, kept
    try:
        for p in pending:  # refuse the whole group before its first rename, where possible
            _check_final(p.final, p.overwrite)
        for p in pending:
            existed = os.path.lexists(p.final)
            kept = _keep_old(p.final) if existed else None
            try:
                p.commit()
            except BaseException:
                if kept is not None:
                    _unlink_quietly(kept)
                raise
            done.append((p, existed, kept))
    except BaseException:
        # The journal goes first: a later sweep must not finish a group being taken back.
        _unlink_quietly(journal)
        for p in pending:
            p.discard()
        for p, existed, kept in reversed(done):
            _put_back(p.final, existed, kept)
        raise
    _unlink_quietly(journal)
    _fsync_dir(base)
    for _, _, kept in done:
        if kept is not None:
            _unlink_quietly(kept)


def _keep_old(final: Path) -> Path | None:
    """A second name (a hard link) for the file that ``final`` is about to replace, so that a
    failed group can put it back; ``None`` where the file system has no hard links.

    A link, not a rename: ``final`` never goes missing while the group commits. Left behind
    by a kill, it is a temporary file like the others, and a later sweep removes it.
    """
    kept = final.parent / _temp_name(final)
    try:
        os.link(final, kept, follow_symlinks=False)
    except (OSError, NotImplementedError):
        return None
    return kept


def _put_back(final: Path, existed: bool, kept: Path | None) -> None:
    """Undo one commit of a failed group: the old file back under ``final``, or no file where
    there was none. Where the old file could not be kept, the new one (complete) stays. Never
    raises: the group's own error is the one to report."""
    try:
        if kept is not None:
            os.replace(kept, final)
        elif not existed:
            final.unlink()
    except OSError:
        pass


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _inside(base: Path, rel: object) -> Path | None:
    """``base / rel`` when ``rel`` is a plain relative path that stays inside ``base``."""
    if not isinstance(rel, str) or not rel or os.path.isabs(rel):
        return None
    if any(part in ("..", "") for part in Path(rel).parts):
        return None
    return base / rel


def replay_journal(journal: _PathArg) -> list[Path]:
    """Finish the renames of a :func:`commit_together` whose process died; return the files
    that were put in place. The journal is removed.

    A temporary file still present was complete when the journal was written, so it is
    renamed onto its final name (unless that name exists now and overwriting was off: a file
    made meanwhile by someone else wins, and the temporary file is dropped). An unreadable or
    malformed journal (the process died while writing it, before any rename) is just removed.
    """
    path = Path(journal)
    base = path.parent
    done: list[Path] = []
    try:
        data = json.loads(path.read_text())
        entries = data["files"] if isinstance(data, dict) else None
    except (OSError, UnicodeDecodeError, ValueError, KeyError):
        entries = None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        tmp, final = _inside(base, entry.get("tmp")), _inside(base, entry.get("final"))
        if tmp is None or final is None or tmp.parent != final.parent:
            continue
        if not _TEMP_RE.match(tmp.name) or not tmp.is_file():
            continue  # renamed before the process died, or not one of ours
        if entry.get("overwrite") is not True and os.path.lexists(final):
            _unlink_quietly(tmp)
            continue
        try:
            os.replace(tmp, final)
        except OSError as err:
            raise output_error(err, final) from err
        _fsync_dir(final.parent)
        done.append(final)
    _unlink_quietly(path)
    return done


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":
        return True  # os.kill would terminate it; leave the decision to the file's age
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def find_stray_temps(
    folder: _PathArg, *, recursive: bool = False, stale_after: float = STALE_AFTER_S
) -> list[Path]:
    """Temporary files left in ``folder`` by writers that died (SIGKILL, power loss).

    A temporary file is stray when it was made on this machine by a process that no longer
    exists, or when it has not changed for ``stale_after`` seconds (writers elsewhere, reused
    PIDs). Files of live writers, this process's included, are left alone.

    Args:
        folder: the output folder to look in (missing folder: nothing found).
        recursive: also look in its subfolders (``out/<track>/<stem>.wav``).
        stale_after: seconds without modification after which any temporary file is stray.

    Returns:
        The stray files, sorted.
    """
    root = Path(folder)
    if not root.is_dir():
        return []
    candidates = root.rglob(f".*{TMP_MARKER}*") if recursive else root.glob(f".*{TMP_MARKER}*")
    host, now, stray = _host_tag(), time.time(), []
    for path in candidates:
        match = _TEMP_RE.match(path.name)
        if match is None:
            continue
        try:
            if not path.is_file():
                continue
            age = now - path.stat().st_mtime
        except OSError:
            continue  # removed meanwhile
        pid = int(match["pid"])
        dead_here = match["host"] == host and pid != os.getpid() and not _pid_alive(pid)
        if dead_here or age > stale_after:
            stray.append(path)
    return sorted(stray)


def remove_stray_temps(
    folder: _PathArg, *, recursive: bool = False, stale_after: float = STALE_AFTER_S
) -> list[Path]:
    """Remove the files :func:`find_stray_temps` finds; return those removed.

    Safe to run while other pcsep processes write into the same folder.
    """
    removed = []
    stray = find_stray_temps(folder, recursive=recursive, stale_after=stale_after)
    # Journals first: their temporary files are finished outputs, to be put in place.
    for path in stray:
        if path.suffix == JOURNAL_SUFFIX and path.exists():
            replay_journal(path)
            removed.append(path)
    for path in stray:
        if path.suffix == JOURNAL_SUFFIX:
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue  # another run cleaned it first
        except OSError as err:
            raise output_error(err, path) from err
        removed.append(path)
    return removed
