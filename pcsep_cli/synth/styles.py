"""Instrument styles: shapes of one class that differ in more than scale.

A model that learned one saxophone shape calls a soprano saxophone (a straight tube) a
clarinet. The generator builds several styles per class; which ones a dataset may draw is a
setting (``pcsep synth --styles``), so a test set can hold shapes the training never saw.

``seen`` are the styles pcsep-base's first stages were trained on (the generator's styles
before this module); ``new`` are the styles the shift split holds out (no model of pcsep's is
trained on them); ``extra`` are more shapes for training, so that every class has at least two
to learn from and three in all. A dataset that allows none of a class's styles keeps that
class's seen styles, so ``--styles new`` changes the classes that have new styles and leaves
the others.

Spec items (comma-separated): ``seen``, ``new``, ``extra``, ``all``, or one style ``CLASS:STYLE``
(``saxophone:soprano``); each may be prefixed by a split (``test:new``): then that item
applies to that split only, and a split with items of its own uses only those.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from pcsep_cli.classes import INSTRUMENTS
from pcsep_cli.errors import DatasetError

SEEN: dict[str, tuple[str, ...]] = {
    "violin": ("violin",),
    "cello": ("cello",),
    "double_bass": ("double_bass",),
    "guitar": ("acoustic",),
    "saxophone": ("alto", "tenor"),
    "flute": ("concert",),
    "clarinet": ("soprano",),
    "trumpet": ("trumpet",),
    "trombone": ("tenor",),
    "piano": ("grand", "upright"),
}
"""Styles of the generator pcsep-base was trained on (drawn exactly as before: same bytes)."""

NEW: dict[str, tuple[str, ...]] = {
    "violin": ("electric",),
    "cello": ("electric",),
    "double_bass": ("electric",),
    "guitar": ("electric",),
    "saxophone": ("soprano", "baritone"),
    "flute": ("piccolo", "alto"),
    "clarinet": ("bass",),
    "trumpet": ("flugelhorn", "cornet"),
    "trombone": ("bass",),
    "piano": ("keyboard",),
}
"""Styles added later: electric violin, cello and double bass (a narrow spine and a frame
tracing the bouts), straight soprano and looped baritone saxophones, piccolo and alto
flutes, the bass clarinet, flugelhorn and cornet, the bass trombone with its F attachment,
a solid-body electric guitar, a stage keyboard on an X stand."""

EXTRA: dict[str, tuple[str, ...]] = {
    "violin": ("solid",),
    "cello": ("solid",),
    "double_bass": ("solid",),
    "guitar": ("semi",),
    "flute": ("bass",),
    "clarinet": ("alto",),
    "trumpet": ("pocket",),
    "trombone": ("valve",),
}
"""Styles for training only: solid-body electric violin, cello and upright bass (a paddle
without bouts or frame), a semi-hollow double-cutaway guitar, the bass flute with its J-shaped
head joint, the alto clarinet (crook and upturned bell, smaller than a bass clarinet), the
pocket trumpet (a tight coil behind a full-size bell), the valve trombone (three valves, no
slide). Saxophone and piano have two seen styles already."""

DEFAULT: tuple[str, ...] = ("seen",)
SPLITS = ("train", "val", "test")

Policy = Mapping[str, tuple[str, ...]]
"""Class -> styles allowed. ``None`` in place of a policy: the seen styles, drawn as before."""

_POLICY: contextvars.ContextVar[Policy | None] = contextvars.ContextVar(
    "pcsep_instrument_styles", default=None
)


def all_styles(name: str) -> tuple[str, ...]:
    """Every style of class ``name``, seen first."""
    return SEEN[name] + NEW.get(name, ()) + EXTRA.get(name, ())


def _expand(item: str) -> dict[str, set[str]]:
    if item in ("seen", "new", "extra", "all"):
        groups = {"seen": [SEEN], "new": [NEW], "extra": [EXTRA], "all": [SEEN, NEW, EXTRA]}[item]
        out: dict[str, set[str]] = {}
        for group in groups:
            for cls, styles in group.items():
                out.setdefault(cls, set()).update(styles)
        return out
    cls, sep, style = item.partition(":")
    if not sep or cls not in SEEN or style not in all_styles(cls):
        known = ", ".join(f"{c}:{s}" for c in INSTRUMENTS for s in all_styles(c))
        raise DatasetError(
            f"unknown instrument style {item!r}",
            hint=f"use seen, new, extra, all or CLASS:STYLE, one of {known}",
        )
    return {cls: {style}}


def for_split(spec: Sequence[str], split: str) -> Policy | None:
    """The styles ``split`` may draw under ``spec`` (see the module docstring).

    Returns:
        ``None`` when that is exactly the seen styles (the builders then draw as they always
        did), otherwise class -> allowed styles in :func:`all_styles` order.

    Raises:
        DatasetError: an unknown item, or a spec that allows nothing for ``split``.
    """
    own, shared = [], []
    for raw in spec:
        item = raw.strip()
        head, sep, rest = item.partition(":")
        if sep and head in SPLITS:
            if head == split:
                own.append(rest)
            _expand(rest)  # unknown names fail for every split
        else:
            shared.append(item)
    chosen: dict[str, set[str]] = {}
    for item in own or shared:
        for cls, styles in _expand(item).items():
            chosen.setdefault(cls, set()).update(styles)
    if not own and not shared:
        raise DatasetError(
            f"--styles allows no instrument style in the {split} split",
            hint="add a shared item such as seen, or one for that split (test:new)",
        )
    policy = {
        cls: tuple(s for s in all_styles(cls) if s in chosen.get(cls, ())) or SEEN[cls]
        for cls in INSTRUMENTS
    }
    return None if policy == SEEN else policy


@contextlib.contextmanager
def allowed(policy: Policy | None) -> Iterator[None]:
    """Let :func:`draw` use ``policy`` inside the block (each example sets its split's)."""
    token = _POLICY.set(policy)
    try:
        yield
    finally:
        _POLICY.reset(token)


def draw(name: str, rng: np.random.Generator) -> str | None:
    """The style of the next ``name`` instrument: ``None`` under the seen policy (the builder
    draws among its seen styles as it always did, so old seeds give the same bytes), else one
    allowed style drawn uniformly."""
    policy = _POLICY.get()
    if policy is None or name not in policy:
        return None
    options = policy[name]
    return options[int(rng.integers(len(options)))]


def style_of(name: str, params: Mapping[str, object]) -> str:
    """The style of a built instrument of class ``name`` (recorded in ``meta.json``)."""
    variant = params.get("variant")
    return str(variant) if variant in all_styles(name) else SEEN[name][0]
