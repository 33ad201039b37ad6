"""Sound sources in written datasets: recorded per performer, held out of training on ask."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pcsep_cli.errors import DatasetError
from pcsep_cli.synth import corpus, sources
from pcsep_cli.synth.dataset import write_dataset

SETTINGS = dict(
    seed=3,
    performers=(3, 3),
    duration_s=1.0,
    sample_rate=16000,
    mics="mono",
    split_fractions=(0.5, 0.0, 0.5),
    distractor_prob=0.0,
    cycle_instruments=True,
    pieces=[p for p in corpus.corpus_pieces() if p.startswith("bach/bwv")],
)
HELD_OUT = ("fluidr3", "csound", "musescore", "test:freepats", "test:stk")


def _installed() -> bool:
    try:
        for name in ("fluidr3", "musescore", "csound", "stk", "freepats"):
            sources.SOURCES[name].check()
    except DatasetError:
        return False
    return True


pytestmark = pytest.mark.skipif(not _installed(), reason="sound sources missing (make apt)")


def _metas(root: Path, pattern: str) -> list[dict]:
    found = [json.loads(p.read_text()) for p in root.glob(pattern)]
    return sorted(found, key=lambda m: m["index"])


@pytest.fixture(scope="module")
def held_out(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sources") / "data"
    write_dataset(root, examples=4, solo_pool=2, sources=HELD_OUT, **SETTINGS)
    return root


def test_meta_records_the_source_of_each_performer(held_out) -> None:
    metas = _metas(held_out, "*/0*/meta.json")
    assert {m["split"] for m in metas} == {"train", "test"}
    for meta in metas:
        allowed = sources.for_split(HELD_OUT, meta["split"])
        for performer in meta["performers"]:
            assert performer["source"] in allowed
        used = {p["source"] for p in meta["performers"]}
        if meta["split"] == "train":
            assert not used & {"freepats", "stk"}  # never heard in training
        else:
            assert used <= {"freepats", "stk"}
    for meta in _metas(held_out, "pool/*/*/meta.json"):
        assert meta["sound_source"] in sources.for_split(HELD_OUT, meta["split"])
    settings = json.loads((held_out / "dataset.json").read_text())["settings"]
    assert settings["sources"] == list(HELD_OUT)


def test_other_sources_change_the_sound_and_nothing_else(held_out, tmp_path) -> None:
    root = tmp_path / "fluid"
    write_dataset(root, examples=2, solo_pool=0, sources=("fluidr3",), **SETTINGS)
    fluid_only = _metas(root, "*/0*/meta.json")
    for a, b in zip(_metas(held_out, "*/0*/meta.json")[:2], fluid_only, strict=True):
        assert {p["source"] for p in b["performers"]} == {"fluidr3"}
        for key in ("piece", "bpm", "microphones", "points"):
            assert a[key] == b[key]
        strip = ("source", "gain_db", "rms_db")
        assert [{k: v for k, v in p.items() if k not in strip} for p in a["performers"]] == [
            {k: v for k, v in p.items() if k not in strip} for p in b["performers"]
        ]
    with pytest.raises(DatasetError, match="other settings \\(sources\\)"):
        write_dataset(root, examples=2, solo_pool=0, **SETTINGS)
