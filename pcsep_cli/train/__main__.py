"""``python -m pcsep_cli.train CONFIG``: the training command without the Typer app.

Same as ``pcsep train CONFIG``; prints one line per validation/checkpoint event and a
progress line every 50 steps. Stop it at any time and start it again to resume.
"""

from __future__ import annotations

import sys
import time


def main(argv: list[str]) -> int:
    """Train from the config named in ``argv``; return the exit code."""
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print("usage: python -m pcsep_cli.train CONFIG(.json|.toml|preset name)")
        return 2
    from pcsep_cli.errors import PcsepError
    from pcsep_cli.train.loop import TrainProgress, train

    def show(p: TrainProgress) -> None:
        if p.message or p.step % 50 == 0:
            stamp = time.strftime("%H:%M:%S")
            text = f"{stamp} step {p.step}/{p.total} loss {p.loss:.4f} {p.steps_per_s:.2f} it/s"
            print(text + (f"  {p.message}" if p.message else ""), flush=True)

    try:
        out = train(argv[0], progress=show)
    except PcsepError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"model: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
