"""Reading what the CLI printed: its progress lines apart from the rest.

When stderr is not a terminal (a pipe, ``CliRunner``), ``pcsep separate`` and ``pcsep batch``
print plain progress lines that start with the time since the command began, ``[0:07] ``
(:mod:`pcsep_cli.cli.progress_view`). An error is still one line of its own; these helpers
let a test check that, and check the progress lines themselves.
"""

from __future__ import annotations

import re

PROGRESS_LINE = re.compile(r"^\[\d+:\d\d(?::\d\d)?\] \S")
"""A plain progress line: ``[m:ss] `` or ``[h:mm:ss] `` and then what runs."""


def progress_lines(output: str) -> list[str]:
    """The plain progress lines of ``output``."""
    return [line for line in output.splitlines() if PROGRESS_LINE.match(line)]


def other_lines(output: str) -> list[str]:
    """The lines of ``output`` that are neither blank nor progress lines (results, errors)."""
    return [ln for ln in output.splitlines() if ln.strip() and not PROGRESS_LINE.match(ln)]
