"""The package keeps its layout rules: no import circle, inference never imports training or
data-generation code, only the CLI imports rich. Each checker is also shown to catch a
violation planted in a small package of its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.imports import cycles, forbidden_imports, import_graph

ROOT = Path(__file__).resolve().parents[1]
INFERENCE = [f"pcsep_cli.{p}" for p in ("separate", "scene", "nets", "sparse", "io", "hub")]
TRAINING = ["pcsep_cli.train", "pcsep_cli.synth"]


def test_no_import_cycle_in_pcsep_cli() -> None:
    assert cycles(import_graph(ROOT, "pcsep_cli")) == []


def test_inference_never_imports_training_or_synth() -> None:
    assert forbidden_imports(ROOT, "pcsep_cli", TRAINING, within=INFERENCE) == []


def test_only_the_cli_imports_rich() -> None:
    assert forbidden_imports(ROOT, "pcsep_cli", ["rich"], exempt=["pcsep_cli.cli"]) == []
    # ... and the CLI does, so the walk finds rich where it is.
    assert forbidden_imports(ROOT, "pcsep_cli", ["rich"], within=["pcsep_cli.cli"]) != []


def test_the_package_list_is_walked() -> None:
    graph = import_graph(ROOT, "pcsep_cli")
    # The walk sees the real modules and their real edges (a checker that saw nothing would pass).
    assert "pcsep_cli.separate.separator" in graph["pcsep_cli.separate.output"]
    assert "pcsep_cli.io.cloud" in graph["pcsep_cli.io.ply"]


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A package ``pkg`` with one of each violation: a circle through a lazy import, inference
    importing training code, and rich outside the CLI."""
    files = {
        "pkg/__init__.py": "",
        "pkg/io/__init__.py": "",
        "pkg/io/a.py": "from pkg.io.b import thing\n",
        "pkg/io/b.py": "def thing():\n    from pkg.io import a\n",
        "pkg/separate/__init__.py": "",
        "pkg/separate/run.py": "from ..train.augment import canonical\nimport rich.console\n",
        "pkg/train/__init__.py": "",
        "pkg/train/augment.py": "import numpy\n",
        "pkg/cli/__init__.py": "from rich.table import Table\nfrom pkg.separate import run\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_checkers_catch_planted_violations(planted: Path) -> None:
    graph = import_graph(planted, "pkg")
    assert cycles(graph) == [["pkg.io.a", "pkg.io.b"]]
    bad = forbidden_imports(planted, "pkg", ["pkg.train"], within=["pkg.separate", "pkg.io"])
    assert bad == ["pkg/separate/run.py:1 imports pkg.train.augment.canonical"]
    assert forbidden_imports(planted, "pkg", ["rich"], exempt=["pkg.cli"]) == [
        "pkg/separate/run.py:2 imports rich.console"
    ]


def test_cycle_checker_sees_a_self_import_and_a_three_module_ring(tmp_path: Path) -> None:
    for name, text in {
        "q/__init__.py": "",
        "q/x.py": "import q.y\n",
        "q/y.py": "from q import z\n",
        "q/z.py": "from . import x\n",
        "q/s.py": "from q.s import f\n",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path, "q")
    # q.s imports itself by name: the graph leaves self-edges out, so it is no circle here;
    # the ring x → y → z → x is.
    assert cycles(graph) == [["q.x", "q.y", "q.z"]]


def test_each_rule_fails_when_a_violation_is_added_to_the_real_package(tmp_path: Path) -> None:
    """The real package, copied, with one violation of each rule appended: each check fails."""
    import shutil

    shutil.copytree(
        ROOT / "pcsep_cli",
        tmp_path / "pcsep_cli",
        ignore=shutil.ignore_patterns("*.pyc", "__pycache__", "examples"),
    )
    assert cycles(import_graph(tmp_path, "pcsep_cli")) == []  # the copy is clean
    with (tmp_path / "pcsep_cli/io/cloud.py").open("a") as f:
        f.write("\nfrom pcsep_cli.io.pointcloud import read_cloud\n")  # pointcloud imports cloud
    with (tmp_path / "pcsep_cli/separate/separator.py").open("a") as f:
        f.write("\nfrom pcsep_cli.train.augment import augment\n")
    with (tmp_path / "pcsep_cli/batch/run.py").open("a") as f:
        f.write("\nimport rich.progress\n")
    circles = cycles(import_graph(tmp_path, "pcsep_cli"))
    assert any({"pcsep_cli.io.cloud", "pcsep_cli.io.pointcloud"} <= set(c) for c in circles)
    assert forbidden_imports(tmp_path, "pcsep_cli", TRAINING, within=INFERENCE) != []
    assert forbidden_imports(tmp_path, "pcsep_cli", ["rich"], exempt=["pcsep_cli.cli"]) != []
