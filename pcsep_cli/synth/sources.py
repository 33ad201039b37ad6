"""Independent sound sources for the training audio, one drawn per performance.

A model trained on one soundfont learns that soundfont: on recordings of other instruments
separation drops (~2 dB). So each performance of a scene is rendered by a source drawn from
an allowed list, and one scene mixes sources. Sources share no samples:

==========  =====================================================  ==========================
name        what renders                                           licence (Debian copyright)
==========  =====================================================  ==========================
fluidr3     FluidR3_GM.sf2 (``fluid-soundfont-gm``) by FluidSynth  MIT (Frank Wen et al.)
musescore   MuseScore_General.sf3 (``musescore-general-soundfont``)  MIT (S. Christian Collins;
            by FluidSynth, **piano only**                           piano: AKAI, public domain)
csound      sf_GMbank.sf2 (``csound-soundfont``, an EMU8000 GM      public domain (its licence
            bank shipped with Csound) by FluidSynth                 field)
freepats    freepats GUS patches (``freepats``) by TiMidity++       GPL-2+ with an exception for
            (``timidity``); no contrabass                           compositions made with them
stk         Synthesis ToolKit physical models (``stk``, its         STK licence (MIT-like,
            ``stk-demo`` program; ``faketime``); no piano           Cook and Scavone)
opl3        OPL-3_FM_128M.sf2 (``opl3-soundfont``, OPL3 FM chip     CC BY-SA 4.0 (Zandro
            timbres) by FluidSynth; not in the default list         Reveille)
additive    pcsep's own parametric synthesiser (:mod:`.additive`):  pcsep's own code
            a timbre drawn per performance; not in the default list
==========  =====================================================  ==========================

MuseScore General is a fork of FluidR3Mono: its sample list
(``/usr/share/doc/musescore-general-soundfont/MuseScore_General_HQ_Sample_Sources.csv.gz``)
credits new samples only for the grand piano (0) and the trumpet (56) among pcsep's programs,
every other program still plays FluidR3's samples. Its trumpet (credited "uncredited, public
domain") renders within 1 dB of FluidR3's in log spectrum (the test of independence found
it): the same recording. So ``musescore`` plays the piano only.
opl3 is synthetic FM, far from any acoustic instrument: it can be allowed, not by default.
TimGM6mb (``timgm6mb-soundfont``) is kept for an independent check and is never used here;
nothing reads ``default-GM.sf2``/``.sf3`` either, which may point at it.

A source that cannot play a performance (STK has no piano, freepats no contrabass) is
replaced by another allowed source that can, drawn from the same generator; the name used
is what :func:`choose` returns and what the example's ``meta.json`` records per performer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pcsep_cli.errors import DatasetError
from pcsep_cli.synth import additive, fluid, freepats, stk
from pcsep_cli.synth.music import Performance

Renderer = Callable[..., np.ndarray]
"""``(performances, *, sample_rate, num_samples) -> float32 (P, num_samples)``, like
:func:`pcsep_cli.synth.fluid.render`."""

_SF = Path("/usr/share/sounds")
_APT_HINT = "install the sound sources with `make apt`"


@dataclass(frozen=True)
class Source:
    """One sound source.

    Attributes:
        name: registry key (recorded in ``meta.json``).
        render: renders performances it :attr:`plays` (see :data:`Renderer`).
        plays: whether it has the performance's instrument or program.
        check: raises :class:`DatasetError` (with a setup hint) if it is not installed.
        licence: of its samples or code, from the Debian package's copyright file.
    """

    name: str
    render: Renderer
    plays: Callable[[Performance], bool]
    check: Callable[[], None]
    licence: str


def _soundfont(
    path: Path, programs: frozenset[int] | None = None
) -> tuple[Renderer, Callable[[Performance], bool], Callable[[], None]]:
    def check() -> None:
        if not path.is_file():
            raise DatasetError("soundfont not found", path=path, hint=_APT_HINT)
        fluid._checked(path)

    def render(performances, *, sample_rate, num_samples):  # noqa: ANN001, ANN202
        check()
        return fluid.render(
            performances, sample_rate=sample_rate, num_samples=num_samples, soundfont=path
        )

    def plays(perf: Performance) -> bool:
        return programs is None or perf.program in programs

    return render, plays, check


def _fluidr3(performances, *, sample_rate, num_samples):  # noqa: ANN001, ANN202
    return fluid.render(performances, sample_rate=sample_rate, num_samples=num_samples)


def _fluidr3_check() -> None:
    fluid.soundfont_path()


SOURCES: dict[str, Source] = {
    "fluidr3": Source("fluidr3", _fluidr3, lambda p: True, _fluidr3_check, "MIT"),
    "musescore": Source(
        "musescore",
        *_soundfont(_SF / "sf3/MuseScore_General.sf3", frozenset({0})),
        "MIT (piano samples: public domain)",
    ),
    "csound": Source("csound", *_soundfont(_SF / "sf2/sf_GMbank.sf2"), "public domain"),
    "freepats": Source(
        "freepats", freepats.render, freepats.plays, freepats.check, "GPL-2+ with exception"
    ),
    "stk": Source("stk", stk.render, stk.plays, stk.check, "STK licence (MIT-like)"),
    "opl3": Source("opl3", *_soundfont(_SF / "sf2/OPL-3_FM_128M.sf2"), "CC BY-SA 4.0"),
    "additive": Source(
        "additive", additive.render, additive.plays, additive.check, "pcsep's own code"
    ),
}
"""Every source pcsep can render with, by name."""

DEFAULT_SOURCES = ("fluidr3", "musescore", "csound", "freepats", "stk")
"""What ``Settings.sources`` allows unless told otherwise."""

_RNG_STREAM = 3  # example.py spawns streams 0-2 (geometry, music, room) from the same seed


def for_split(spec: Sequence[str], split: str) -> tuple[str, ...]:
    """The sources allowed in ``split`` by a ``Settings.sources`` list.

    Entries are source names, for every split, or ``"split:name"``, for that split only. A
    split named in some entry uses exactly its own entries: ``("fluidr3", "csound", "stk",
    "test:freepats")`` trains on three sources and tests on a fourth that training never
    hears. Leaving a name out excludes it.

    Raises:
        DatasetError: an unknown source, or none left for ``split``.
    """
    common, own = [], []
    for entry in spec:
        where, _, name = entry.rpartition(":")
        if name not in SOURCES:
            raise DatasetError(
                f"unknown sound source {name!r}",
                hint=f"choose from {', '.join(SOURCES)} (optionally as split:name)",
            )
        if not where:
            common.append(name)
        elif where == split:
            own.append(name)
    chosen = tuple(dict.fromkeys(own or common))
    if not chosen:
        raise DatasetError(f"no sound source allowed for split {split!r}", hint=f"{spec=}")
    return chosen


def source_rng(seed: int, kind: int, index: int) -> np.random.Generator:
    """The generator of an example's source choice: its own stream of ``(seed, kind, index)``,
    so that changing the allowed sources changes no note, body or room."""
    return np.random.default_rng(
        np.random.SeedSequence([seed, kind, index], spawn_key=(_RNG_STREAM,))
    )


def choose(
    rng: np.random.Generator, performances: Sequence[Performance], allowed: Sequence[str]
) -> list[str]:
    """Draw a source per performance from ``allowed``; one that cannot play it is redrawn
    among those that can.

    Raises:
        DatasetError: no allowed source plays one of the performances.
    """
    names = []
    for perf in performances:
        name = allowed[int(rng.integers(len(allowed)))]
        if not SOURCES[name].plays(perf):
            able = [n for n in allowed if SOURCES[n].plays(perf)]
            if not able:
                raise DatasetError(
                    f"no allowed sound source plays {perf.instrument} (GM {perf.program})",
                    hint=f"allow one more source than {', '.join(allowed)}",
                )
            name = able[int(rng.integers(len(able)))]
        names.append(name)
    return names


def render(
    performances: Sequence[Performance],
    names: Sequence[str],
    *,
    sample_rate: int,
    num_samples: int,
) -> np.ndarray:
    """Render each performance with its source; one renderer call per source.

    Args:
        performances: what to play.
        names: a source name per performance (:func:`choose`).
        sample_rate: Hz.
        num_samples: samples per performance.

    Returns:
        float32 ``(P, num_samples)`` in the order of ``performances`` (not normalised).

    Raises:
        DatasetError: a source is missing or failed.
    """
    if len(names) != len(performances):
        raise ValueError(f"{len(names)} source names for {len(performances)} performances")
    out = np.zeros((len(performances), num_samples), dtype=np.float32)
    for name in dict.fromkeys(names):
        rows = [k for k, n in enumerate(names) if n == name]
        out[rows] = SOURCES[name].render(
            [performances[k] for k in rows], sample_rate=sample_rate, num_samples=num_samples
        )
    return out
