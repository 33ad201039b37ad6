"""Fixtures shared by tests in several folders."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


@pytest.fixture
def full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on a real 64 KiB tmpfs; where mounting is refused, libsndfile's ENOSPC failure
    is injected instead (the same error code and errno that the real case produces)."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = os.geteuid() == 0 and (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True
        ).returncode
        == 0
    )
    if not mounted:
        real_write = sf.SoundFile.write

        def write(self: sf.SoundFile, data: np.ndarray) -> None:
            if str(self.name).startswith(str(folder)) and self.frames + len(data) > 8192:
                sf._ffi.errno = errno.ENOSPC
                raise sf.LibsndfileError(2)
            real_write(self, data)

        monkeypatch.setattr(sf.SoundFile, "write", write)
    yield folder
    if mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)
