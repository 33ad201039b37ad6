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


def output_files(out: Path) -> dict[str, bytes]:
    """Every file under ``out`` (hidden and temporary ones included), paths inside manifests
    made relative, so two runs into different folders compare byte for byte."""
    prefix = str(out).encode()
    return {
        str(p.relative_to(out)): p.read_bytes().replace(prefix, b"OUT")
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }
