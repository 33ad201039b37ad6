"""The v1 instrument classes: ten instruments and ``none``.

A model carries its own class list in its config; this is the list new models and the
synthetic data start from. ``none`` (a person or thing without an instrument) is detected and
never separated.
"""

from __future__ import annotations

import re

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

CLASS_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
"""What a class name may be. Class names come from a model's config (untrusted: a Hub
download) and become file names, manifest fields and terminal text, so they are kept to
plain identifiers: no path separators, dots, spaces or control characters."""
