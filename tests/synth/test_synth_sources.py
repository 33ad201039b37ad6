"""Sound sources: real rendering by every source, their independence, the per-split choice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pcsep_cli.errors import DatasetError
from pcsep_cli.synth import freepats, sources, stk
from pcsep_cli.synth.music import GM_PROGRAMS, PROGRAM_RANGES, Performance

SR = 16000
N = SR  # 1 s clips


def _part(instrument: str, program: int) -> Performance:
    centre = PROGRAM_RANGES[program][2]
    steps = (0, 2, 4, 5, 7, 5)
    notes = np.array([[0.02 + 0.16 * i, 0.15, centre + steps[i], 96] for i in range(6)])
    return Performance(instrument, program, "test", 0, "part", 0, notes, 0.0, 120.0, "normal")


PARTS = [_part(i, p) for i, programs in GM_PROGRAMS.items() for p in programs]


def _available(name: str) -> bool:
    try:
        sources.SOURCES[name].check()
    except DatasetError:
        return False
    return True


needs_stk = pytest.mark.skipif(not _available("stk"), reason="stk not installed (make apt)")


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[int, np.ndarray]]:
    """Every available source's rendering of every part it plays, by part index."""
    out: dict[str, dict[int, np.ndarray]] = {}
    for name, source in sources.SOURCES.items():
        if not _available(name):
            continue
        rows = [k for k, p in enumerate(PARTS) if source.plays(p)]
        audio = source.render([PARTS[k] for k in rows], sample_rate=SR, num_samples=N)
        out[name] = dict(zip(rows, audio, strict=True))
    return out


@pytest.mark.parametrize("name", list(sources.SOURCES), ids=list(sources.SOURCES))
def test_each_source_renders_every_part_it_plays(name, rendered) -> None:
    if name not in rendered:
        pytest.skip(f"{name} not installed (make apt)")
    got = rendered[name]
    assert got, f"{name} plays no class"
    for k, audio in got.items():
        assert audio.shape == (N,) and audio.dtype == np.float32
        assert np.isfinite(audio).all()
        rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
        assert rms > 1e-3, f"{name} {PARTS[k].instrument} ({PARTS[k].program}) is silent"
        assert np.abs(audio).max() < 1.0


def test_the_sources_cover_every_class_and_stk_freepats_have_their_gaps(rendered) -> None:
    played = {PARTS[k].instrument for got in rendered.values() for k in got}
    assert played == set(GM_PROGRAMS)
    assert not sources.SOURCES["stk"].plays(_part("piano", 0))
    assert not sources.SOURCES["freepats"].plays(_part("double_bass", 43))
    assert sources.SOURCES["musescore"].plays(_part("piano", 0))
    assert not sources.SOURCES["musescore"].plays(_part("violin", 40))  # FluidR3's samples
    assert not sources.SOURCES["musescore"].plays(_part("trumpet", 56))  # the same recording


def _log_spectrum(audio: np.ndarray) -> np.ndarray:
    frames = np.lib.stride_tricks.sliding_window_view(audio, 1024)[::256] * np.hanning(1024)
    power = np.mean(np.abs(np.fft.rfft(frames, axis=1)) ** 2, axis=0)
    return 10 * np.log10(power / power.sum() + 1e-12)


def test_sources_sound_different_for_the_same_part(rendered) -> None:
    """Mean log-spectrum distance (dB) between two sources' renderings of one part, against
    the distance between two renderings of one source: well above it for every pair."""
    names = sorted(rendered)
    if len(names) < 2:
        pytest.skip("fewer than two sources installed")
    checked = 0
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            for k in set(rendered[a]) & set(rendered[b]):
                la, lb = _log_spectrum(rendered[a][k]), _log_spectrum(rendered[b][k])
                distance = float(np.mean(np.abs(la - lb)[:400]))  # up to 6.25 kHz
                assert distance > 3.0, f"{a} and {b} alike for {PARTS[k].instrument}"
                checked += 1
    assert checked >= 10


@needs_stk
def test_stk_is_deterministic() -> None:
    one = stk.render(PARTS[:3], sample_rate=SR, num_samples=N)
    two = stk.render(PARTS[:3], sample_rate=SR, num_samples=N)
    np.testing.assert_array_equal(one, two)


def test_choice_is_deterministic_and_mixes_sources() -> None:
    allowed = sources.DEFAULT_SOURCES
    draws = [sources.choose(sources.source_rng(7, 0, index), PARTS, allowed) for index in range(20)]
    again = [sources.choose(sources.source_rng(7, 0, index), PARTS, allowed) for index in range(20)]
    assert draws == again
    assert draws != [sources.choose(sources.source_rng(8, 0, i), PARTS, allowed) for i in range(20)]
    assert set().union(*draws) == set(allowed)  # every allowed source gets used
    assert any(len(set(d)) > 1 for d in draws)  # one scene mixes sources
    for names in draws:
        for perf, name in zip(PARTS, names, strict=True):
            assert sources.SOURCES[name].plays(perf)  # fell back where it had to


def test_excluded_source_is_never_chosen() -> None:
    spec = ("fluidr3", "csound", "stk", "musescore", "test:freepats")
    train = sources.for_split(spec, "train")
    assert train == ("fluidr3", "csound", "stk", "musescore")
    assert sources.for_split(spec, "test") == ("freepats",)
    for index in range(50):
        names = sources.choose(sources.source_rng(0, 0, index), PARTS, train)
        assert "freepats" not in names
    with pytest.raises(DatasetError, match="unknown sound source"):
        sources.for_split(("fluidr3", "timgm6mb"), "train")


def test_a_class_no_allowed_source_plays_is_an_error() -> None:
    with pytest.raises(DatasetError, match="no allowed sound source plays piano"):
        sources.choose(np.random.default_rng(0), [_part("piano", 0)], ("stk",))


def test_missing_soundfont_is_one_line_with_a_hint(monkeypatch, tmp_path) -> None:
    missing = tmp_path / "nope.sf2"
    monkeypatch.setenv("PCSEP_SOUNDFONT", str(missing))
    with pytest.raises(DatasetError) as err:
        sources.render(PARTS[:1], ["fluidr3"], sample_rate=SR, num_samples=N)
    text = str(err.value)
    assert "\n" not in text and "soundfont not found" in text and "make" in text
    render, _, _ = sources._soundfont(Path(tmp_path / "gone.sf3"))
    with pytest.raises(DatasetError, match="make apt"):
        render(PARTS[:1], sample_rate=SR, num_samples=N)


def test_missing_program_is_one_line_with_a_hint(monkeypatch) -> None:
    monkeypatch.setattr(stk.shutil, "which", lambda _: None)
    with pytest.raises(DatasetError, match="stk-demo program is not on PATH.*make apt"):
        stk.render(PARTS[:1], sample_rate=SR, num_samples=N)
    monkeypatch.setattr(freepats.shutil, "which", lambda _: None)
    with pytest.raises(DatasetError, match="timidity program is not on PATH.*make apt"):
        freepats.render(PARTS[:1], sample_rate=SR, num_samples=N)
