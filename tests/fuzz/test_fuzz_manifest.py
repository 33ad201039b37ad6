"""Fuzz the CSV manifest of ``pcsep batch --manifest`` with mutated real CSV files.

Every input must give items or a one-line DatasetError within 5 s and 1 GiB; every item it
gives must have a name that the output template accepts and that stays inside ``-o`` (a name
the reader lets through but the writer refuses would fail later, after the model loaded).
"""

from __future__ import annotations

import tempfile
from pathlib import Path, PurePosixPath

from fuzz_mutations import (
    SHARE,
    apply,
    bounded,
    fuzz_settings,
    mutations,
    run_fuzz,
    save_regression,
)
from fuzz_mutations import seeds as seed_files
from hypothesis import given
from hypothesis import strategies as st

from pcsep_cli.batch.plan import discover
from pcsep_cli.errors import DatasetError
from pcsep_cli.separate.job import DEFAULT_TEMPLATE, render_template


def _plan(path: Path) -> None:
    found = discover(path.parent, manifest=path)
    for item in found.items:
        assert item.audio.is_absolute() or item.audio.parts, item
        rel = render_template(
            DEFAULT_TEMPLATE, track=item.name, stem="violin", instrument="violin", ext="wav"
        )
        assert not rel.is_absolute() and ".." not in rel.parts, rel
        assert PurePosixPath(item.name).parts == rel.parts[: len(PurePosixPath(item.name).parts)]


def check_input(name: str, data: bytes, folder: Path) -> None:
    path = folder / "manifest.csv"
    path.write_bytes(data)
    try:
        with bounded(f"the CSV manifest on a mutated {name}"):
            _plan(path)
    except DatasetError as err:
        assert str(err) and "\n" not in str(err)
    except BaseException as err:
        kept = save_regression(name, data)
        raise AssertionError(f"{type(err).__name__}: {err} (kept as {kept.name})") from err


def test_mutated_manifests_give_items_or_a_dataset_error() -> None:
    corpus = {p.name: p.read_bytes() for p in seed_files(".csv")}
    names = sorted(corpus)
    donors = [p.read_bytes() for p in seed_files(".csv", ".ply", ".pcd")]

    with tempfile.TemporaryDirectory() as tmp:

        @fuzz_settings()
        @given(st.sampled_from(names), mutations, st.sampled_from(range(len(donors))))
        def fuzz(name: str, ops: list[tuple], donor: int) -> None:
            check_input(name, apply(corpus[name], ops, donors[donor]), Path(tmp))

        run_fuzz(fuzz, share=SHARE)
