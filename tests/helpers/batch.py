"""Batch folders: recordings paired with copies of one scene."""

from __future__ import annotations

import shutil
from pathlib import Path

from helpers.audio import recording


def folder_of(root: Path, scene: Path, names: str) -> Path:
    for i, name in enumerate(names):
        recording(root / f"{name}.wav", seed=i)
        shutil.copy(scene, root / f"{name}.ply")
    return root
