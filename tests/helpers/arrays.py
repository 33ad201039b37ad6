"""Small array recordings (:mod:`pcsep_cli.synth.arrays`) for spatial training and evaluation
tests: 8 kHz, 1 s, FluidR3 only, Bach chorales, the tiny model's classes."""

from __future__ import annotations

from pathlib import Path

from pcsep_cli.synth import arrays, corpus


def write_arrays(root: Path, count: int, seed: int = 7) -> Path:
    """Examples ``0 .. count-1`` of ``seed`` in ``root/<index:05d>``; returns ``root``."""
    fast = dict(
        sample_rate=8000,
        duration_s=1.0,
        sources=("fluidr3",),
        pieces=[p for p in corpus.corpus_pieces() if p.startswith("bach/bwv")],
        instruments=("violin", "cello", "flute"),  # the tiny model's classes
    )
    for i in range(count):
        arrays.write_array_example(root / f"{i:05d}", seed=seed, index=i, **fast)
    return root
