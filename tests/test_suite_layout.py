"""The test suite's own layout: no module under tests/ imports a test module.

Shared builders live in tests/helpers/ and shared fixtures in a conftest.py; a test module
(``test_*.py``) is only ever collected, never imported, so moving or renaming one cannot break
another. The checker is also shown to catch such imports planted in a small tree of its own.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _is_test_module(dotted: str) -> bool:
    """Whether any part of a dotted module name names a test module (``test_*``)."""
    return any(part.startswith("test_") for part in dotted.split("."))


def imports_of_test_modules(root: Path) -> list[str]:
    """``"file:line imports name"`` for every import of a test module by a ``.py`` under
    ``root``: test modules, conftest.py, helpers and scripts alike.

    Every ``import`` and ``from … import`` counts, wherever it stands (top level, inside a
    function, under ``TYPE_CHECKING``). In ``from m import n``, ``n`` counts too when ``m`` is
    not a test module itself: it may be one (``from io import test_audio``)."""
    found = []
    for file in sorted(root.rglob("*.py")):
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                module = "." * node.level + (node.module or "")
                joint = "" if module.endswith(".") else "."
                names = (
                    [module]
                    if _is_test_module(module)
                    else [module + joint + alias.name for alias in node.names]
                )
            else:
                continue
            found += [
                f"{file.relative_to(root).as_posix()}:{node.lineno} imports {name}"
                for name in names
                if _is_test_module(name)
            ]
    return found


def test_no_module_under_tests_imports_a_test_module() -> None:
    assert imports_of_test_modules(TESTS) == []


def test_planted_imports_of_test_modules_are_reported(tmp_path: Path) -> None:
    files = {
        "conftest.py": "import pytest\nfrom helpers.scenes import room\n",
        "helpers/__init__.py": "",
        "helpers/scenes.py": "import numpy as np\n\n\ndef room():\n    return np.zeros(3)\n",
        "test_scene.py": "from helpers.scenes import room\n\n\ndef test_room():\n    room()\n",
        "test_cli.py": "import json\nfrom test_scene import room\n",
        "io/test_reader.py": (
            "import pytest\n\n\ndef test_it():\n    import test_scene, os\n"
            "    from io import test_writer\n"
        ),
        "io/test_writer.py": "from .test_reader import test_it  # relative, still a test module\n",
        "fuzz/make_corpus.py": "import sys\nimport test_cli as cli\n",
        "fuzz/fuzz_mutations.py": "from contextlib import contextmanager\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert imports_of_test_modules(tmp_path) == [
        "fuzz/make_corpus.py:2 imports test_cli",
        "io/test_reader.py:5 imports test_scene",
        "io/test_reader.py:6 imports io.test_writer",
        "io/test_writer.py:1 imports .test_reader",
        "test_cli.py:2 imports test_scene",
    ]
