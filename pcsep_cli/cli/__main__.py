"""``python -m pcsep_cli.cli``: the same as ``pcsep``."""

from __future__ import annotations

from pcsep_cli.cli.app import main

main()
