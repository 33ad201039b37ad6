"""Per-item locks: two ``pcsep batch`` runs on one output folder never run the same item.

A SLURM array launched twice, or a second run started on a folder another is still working
on, must neither separate an item twice nor have two writers race on its files. Before an item
runs, its worker takes an exclusive ``flock`` on a hidden file in the output root,
``.pcsep-lock-<key>`` (``key``: a hash of the item's name, lower-cased as item names are
compared). The kernel drops the lock when its holder exits, SIGKILL included, so a killed run
never leaves an item locked; a lock that is taken makes the other run skip the item (it is
being done elsewhere) rather than wait for it.

The holder removes the file when it is done, so no lock file stays behind except after a
kill (an empty hidden file; the next run that takes it removes it). Removal lets a second run
lock a file that is no longer at the path; so after locking, the file's identity is checked
against the path and the lock taken again when they differ.

``flock`` works between processes on one machine and, on Linux, on NFS v4 and the usual
cluster file systems (Lustre mounted with ``flock``, GPFS, BeeGFS); where the file system does
not support it, or off POSIX (no ``fcntl``), items run unlocked, as before locks existed.
"""

from __future__ import annotations

import errno
import hashlib
import os
import time
from pathlib import Path
from types import TracebackType

from pcsep_cli.errors import PcsepError

try:
    import fcntl
except ModuleNotFoundError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_PREFIX", "ItemLock", "lock_path", "remove_stale_locks"]

LOCK_PREFIX = ".pcsep-lock-"
"""Start of every lock file's name (hidden: listings, resume and discovery skip it)."""

_BUSY_RETRIES, _BUSY_WAIT_S = 3, 0.05
# The file system cannot lock: run unlocked rather than not at all.
_NO_LOCKING = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


def lock_path(out: Path, name: str) -> Path:
    """The lock file of item ``name`` under the output root ``out``."""
    key = hashlib.sha1(name.lower().encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return out / f"{LOCK_PREFIX}{key}"


class ItemLock:
    """An item's lock, held until :meth:`release` (or the end of a ``with`` block).

    Use :meth:`try_acquire`; it never waits.
    """

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path = path
        self._fd = fd

    @classmethod
    def try_acquire(cls, out: Path, name: str) -> ItemLock | None:
        """Lock item ``name`` under the output root ``out`` (created if missing).

        Returns:
            The lock, or ``None`` when another process holds it (still after a few tries
            over 0.15 s: a run removing stale locks holds one for an instant).

        Raises:
            PcsepError: the lock file cannot be made (no permission, disk full ...).
        """
        path = lock_path(out, name)
        busy = 0
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            except FileNotFoundError:
                _make_root(out)
                continue
            except OSError as err:
                raise _lock_error(err, path) from err
            if fcntl is None:
                return cls(path, fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                busy += 1
                if busy > _BUSY_RETRIES:
                    return None
                # A run cleaning stale locks holds one for microseconds: look again shortly.
                time.sleep(_BUSY_WAIT_S)
                continue
            except OSError as err:
                if err.errno in _NO_LOCKING:
                    return cls(path, fd)
                os.close(fd)
                raise _lock_error(err, path) from err
            if _same_file(path, fd):
                return cls(path, fd)
            os.close(fd)  # its holder removed it after we opened it: lock the new one

    def release(self) -> None:
        """Remove the lock file and drop the lock (in that order: see the module docstring)."""
        if self._fd is None:
            return
        try:
            if _same_file(self.path, self._fd):
                self.path.unlink()
        except OSError:
            pass  # a stale empty hidden file at worst; the next holder removes it
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> ItemLock:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.release()


def remove_stale_locks(out: Path) -> list[Path]:
    """Remove lock files under the output root ``out`` that no process holds (left by killed
    runs); those held are left alone. Returns the files removed."""
    removed = []
    for path in sorted(out.glob(f"{LOCK_PREFIX}*")) if out.is_dir() else []:
        try:
            fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            continue  # removed meanwhile, or not ours to touch
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _same_file(path, fd):
                path.unlink()
                removed.append(path)
        except OSError:
            pass  # held by a live run (BlockingIOError), or cannot lock here: keep it
        finally:
            os.close(fd)
    return removed


def _same_file(path: Path, fd: int) -> bool:
    try:
        here, held = os.stat(path), os.fstat(fd)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino)


def _make_root(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _lock_error(err, out) from err


def _lock_error(err: OSError, path: Path) -> PcsepError:
    return PcsepError(
        f"cannot make the item's lock file: {err.strerror or err}",
        path,
        "check that the output folder is writable and has free space",
    )
