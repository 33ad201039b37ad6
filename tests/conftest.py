"""Fixtures shared by tests in several modules or folders.

Builders shared the same way live in tests/helpers/ (``from helpers.scenes import room``):
pytest's default ``prepend`` import mode puts this folder, tests/, on ``sys.path`` when it
loads this conftest, which it does before collecting any test under tests/, subfolders
included. Test modules never import one another (tests/test_suite_layout.py checks it).

The batch fixtures import torch, trimesh and plyfile inside their bodies, so only the tests
that use them pay for those imports.
"""

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


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny config, random weights; 'none' never wins, so every performer is separated."""
    import torch

    from pcsep_cli.nets.model import SeparationNet
    from pcsep_cli.train.config import load_train_config

    cfg = load_train_config("tiny").model
    torch.manual_seed(0)
    net = SeparationNet(cfg)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
        net.visual.classify[-1].bias[cfg.classes.index("none")] = -50.0
    return net.save_pretrained(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="module")
def scene_ply(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two performers (a seated cellist, a standing player) in a room, ~14k points, as PLY."""
    from helpers.scenes import person_mesh, room
    from plyfile import PlyData, PlyElement

    xyz, _ = room(
        [person_mesh(-1.0, 0.0, seated=True, instrument="cello"), person_mesh(1.0, 0.0)],
        density=300,
        floor_density=150,
    )
    v = np.zeros(len(xyz), dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])
    v["x"], v["y"], v["z"] = xyz.T
    path = tmp_path_factory.mktemp("scene") / "scene.ply"
    PlyData([PlyElement.describe(v, "vertex")]).write(str(path))
    return path
