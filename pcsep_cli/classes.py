"""The v1 instrument classes: ten instruments and ``none``.

A model carries its own class list in its config; this is the list new models and the
synthetic data start from. ``none`` (a person or thing without an instrument) is detected and
never separated.
"""

from __future__ import annotations

INSTRUMENTS: tuple[str, ...] = (
    "violin",
    "cello",
    "double_bass",
    "guitar",
    "saxophone",
    "flute",
    "clarinet",
    "trumpet",
    "trombone",
    "piano",
)
NONE = "none"
