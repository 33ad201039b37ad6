"""``python -m pcsep_cli.train CONFIG``: the same as ``pcsep train CONFIG``.

Prints one line per validation/checkpoint event and a progress line every 50 steps. Stop it at
any time and start it again to resume.

It is also what torchrun starts in each process of a distributed run:
``torchrun --nproc-per-node N -m pcsep_cli.train CONFIG [--device cuda]`` (add ``--nnodes``
and a rendezvous endpoint for several machines); process 0 alone prints and writes.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    """Run ``pcsep train`` with ``argv``; return the exit code."""
    from pcsep_cli.cli import main as cli_main

    try:
        cli_main(["train", *argv])
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
