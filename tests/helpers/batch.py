"""Batch folders: recordings paired with copies of one scene."""

from __future__ import annotations

import json
import os
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
    made relative, so two runs into different folders compare byte for byte.

    A manifest names its inputs relative to its own folder (``../../data/a.wav``), which
    differs with where ``out`` lies: they are compared as the absolute paths they lead to."""
    prefix = str(out).encode()
    return {
        str(p.relative_to(out)): _inputs_resolved(p).replace(prefix, b"OUT")
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def _inputs_resolved(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name != "manifest.json":
        return data
    manifest = json.loads(data)
    for key in ("audio", "clouds"):
        paths = manifest[key] if isinstance(manifest[key], list) else [manifest[key]]
        paths = [os.path.normpath(path.parent / p) for p in paths]
        manifest[key] = paths if isinstance(manifest[key], list) else paths[0]
    return (json.dumps(manifest, indent=1) + "\n").encode()
