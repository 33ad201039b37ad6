"""Fuzz the point cloud and audio readers with mutated real files (see README.md).

Every input must give a result or the reader's typed error (PointCloudError, AudioError),
never another exception, within 5 s and 1 GiB.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from fuzz_mutations import (
    E57_LAYERS,
    SHARE,
    apply,
    apply_e57,
    bounded,
    fuzz_settings,
    mutations,
    run_fuzz,
    save_regression,
    xml_numbers,
)
from fuzz_mutations import seeds as seed_files
from hypothesis import given
from hypothesis import strategies as st

from pcsep_cli.errors import AudioError, PointCloudError
from pcsep_cli.io.audio import audio_info, iter_blocks, read_audio
from pcsep_cli.io.pointcloud import PointCloud, read_cloud

TARGETS = {
    "ply": (".ply",),
    "las": (".las", ".laz"),
    "pcd": (".pcd",),
    "e57": (".e57",),
    "audio": (".wav", ".flac", ".ogg"),
}


def _read_cloud(path: Path) -> None:
    cloud = read_cloud(path)
    assert isinstance(cloud, PointCloud)


def _read_audio(path: Path) -> None:
    info = audio_info(path)
    audio, rate = read_audio(path)
    assert rate == info.sample_rate and audio.shape == (info.channels, info.frames)
    assert sum(b.shape[1] for b in iter_blocks(path, 4096)) == info.frames


READERS = {"ply": _read_cloud, "las": _read_cloud, "pcd": _read_cloud, "e57": _read_cloud,
           "audio": _read_audio}  # fmt: skip
TYPED = {"ply": PointCloudError, "las": PointCloudError, "pcd": PointCloudError,
         "e57": PointCloudError, "audio": AudioError}  # fmt: skip


def check_input(target: str, name: str, data: bytes, folder: Path) -> None:
    """Read ``data`` saved as ``name`` with ``target``'s reader; any other exception keeps
    the input under regressions/ and fails."""
    path = folder / f"input{Path(name).suffix}"
    path.write_bytes(data)
    # A reader that kills the process (abort in native code) leaves its input here.
    (Path(tempfile.gettempdir()) / f"pcsep-fuzz-last-{target}{path.suffix}").write_bytes(data)
    try:
        with bounded(f"{target} on a mutated {name}"):
            READERS[target](path)
    except TYPED[target] as err:
        assert str(err) and "\n" not in str(err)
    except BaseException as err:
        kept = save_regression(name, data)
        raise AssertionError(f"{type(err).__name__}: {err} (kept as {kept.name})") from err


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_mutated_files_give_a_result_or_the_typed_error(target: str) -> None:
    corpus = {p.name: p.read_bytes() for p in seed_files(*TARGETS[target])}
    names = sorted(corpus)
    donors = [p.read_bytes() for p in seed_files(".ply", ".las", ".laz", ".pcd", ".wav")]
    # E57 pages carry CRCs: most mutations also go inside the pages, CRCs made right again.
    layers = E57_LAYERS if target == "e57" else ("file",)

    with tempfile.TemporaryDirectory() as tmp:

        @fuzz_settings()
        @given(
            st.sampled_from(names),
            mutations,
            st.sampled_from(range(len(donors))),
            st.sampled_from(layers),
            xml_numbers,
        )
        def fuzz(name: str, ops: list[tuple], donor: int, layer: str, numbers: list) -> None:
            if target == "e57":
                ops = numbers if layer == "numbers" else ops
                data = apply_e57(corpus[name], ops, donors[donor], layer)
            else:
                data = apply(corpus[name], ops, donors[donor])
            check_input(target, name, data, Path(tmp))

        run_fuzz(fuzz, share=SHARE)
