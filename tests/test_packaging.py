"""The wheel carries every subpackage, the bundled models and the package data."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")


def _setuptools_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_subpackage_is_listed() -> None:
    listed = set(_setuptools_config()["packages"])
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "pcsep_cli").rglob("__init__.py")
    }
    missing = on_disk - listed
    assert not missing, f"add these to [tool.setuptools] packages in pyproject.toml: {missing}"


def test_bundled_models_map_to_models_dir() -> None:
    cfg = _setuptools_config()
    assert cfg["package-dir"]["pcsep_cli.bundled"] == "models"
    for model in (ROOT / "models").iterdir():
        if model.is_dir():
            assert (model / "config.json").is_file(), model
            assert any(model.glob("*.safetensors")), model
