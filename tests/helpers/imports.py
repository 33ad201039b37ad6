"""Walk a package's imports with ``ast`` and check the layout rules (DESIGN: arrows point down).

Every ``import`` and ``from … import`` counts, wherever it stands (top level, inside a function,
under ``TYPE_CHECKING``): a lazy import still ties two modules together.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name → file, for every ``.py`` under ``root / package``."""
    found = {}
    for file in sorted((root / package).rglob("*.py")):
        parts = list(file.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = file
    return found


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    """The module that defines dotted ``name`` (itself, or the nearest enclosing module)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imported_names(module: str, file: Path) -> Iterable[tuple[str, int]]:
    """``(absolute dotted name, line)`` of everything ``file`` imports."""
    tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    package = module if file.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                yield f"{source}.{alias.name}", node.lineno


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module → the modules of ``package`` it imports (itself left out)."""
    modules = module_files(root, package)
    graph: dict[str, set[str]] = {}
    for module, file in modules.items():
        targets = set()
        for name, _ in imported_names(module, file):
            owner = _owner(name, modules)
            if owner is not None and owner != module:
                targets.add(owner)
        graph[module] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles: strongly connected components of more than one module (or a module
    importing itself), each sorted; Tarjan's algorithm, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, ()):
                    found.append(sorted(component))
    return sorted(found)


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def forbidden_imports(
    root: Path,
    package: str,
    forbidden: Iterable[str],
    *,
    within: Iterable[str] | None = None,
    exempt: Iterable[str] = (),
) -> list[str]:
    """``"file:line imports name"`` for every import of a name under one of ``forbidden``
    (dotted prefixes) by a module under one of ``within`` (default: the whole package) and
    under none of ``exempt``."""
    forbidden, exempt = tuple(forbidden), tuple(exempt)
    within = (package,) if within is None else tuple(within)
    found = []
    for module, file in module_files(root, package).items():
        if not _under(module, within) or _under(module, exempt):
            continue
        for name, line in imported_names(module, file):
            if _under(name, forbidden):
                found.append(f"{file.relative_to(root)}:{line} imports {name}")
    return found
