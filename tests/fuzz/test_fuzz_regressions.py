"""Replay every input the fuzzers found under ``regressions/`` (README.md lists them).

They run in a child process: the LAZ ones once aborted the interpreter (a 35 GB allocation
in lazrs) or looped with memory growing past 14 GB, which no in-process check survives.
The child reports, per file, the error type, the time taken, its peak resident memory and
the peak allocated (tracemalloc: a lazily committed 4 GB buffer shows there, not in RSS).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fuzz_mutations import MEMORY_LIMIT, REGRESSIONS, TIME_LIMIT_S

CHILD = r"""
import json, sys, time, tracemalloc
from pcsep_cli.errors import PcsepError
from pcsep_cli.io.audio import read_audio
from pcsep_cli.io.pointcloud import read_cloud

for name in sys.argv[1:]:
    read = read_audio if name.endswith((".wav", ".flac", ".ogg")) else read_cloud
    tracemalloc.start()
    start = time.perf_counter()
    try:
        read(name)
        outcome = "ok"
    except PcsepError as err:
        outcome = type(err).__name__
    took = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # VmHWM: this image's own peak. ru_maxrss would also hold the parent's peak before exec
    # (Linux carries it over), so after a long fuzz run in pytest it read 1.7 GB here.
    with open("/proc/self/status") as status:
        hwm = next(line for line in status if line.startswith("VmHWM:"))
    rss = int(hwm.split()[1]) * 1024
    row = {"file": name, "outcome": outcome, "s": took, "rss": rss, "peak": peak}
    print(json.dumps(row), flush=True)
"""

EXPECTED = {
    "laz-chunk-table-count-2e9.laz": "PointCloudError",
    "laz-vlr-count-4e9.laz": "PointCloudError",
    "laz-layer-size-4e9.laz": "PointCloudError",
    "laz-chunk-bytes-2e64.laz": "PointCloudError",
    "laz-chunk-size-2e28.laz": "PointCloudError",
    "las-point-offset-3e9.las": "PointCloudError",
    "flac-damaged-frame-reads-short.flac": "AudioError",
    "flac-streaminfo-frames-4e9.flac": "AudioError",
}


def test_every_kept_input_ends_in_the_typed_error_quickly_and_small() -> None:
    # Model configs are replayed by test_fuzz_model.py, beside a model's weights.
    files = sorted(p for p in REGRESSIONS.iterdir() if p.is_file() and p.suffix != ".json")
    assert {p.name for p in files} == set(EXPECTED), "list new regression files in EXPECTED"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [Path(r["file"]).name for r in results] == [p.name for p in files]
    for r in results:
        name = Path(r["file"]).name
        assert r["outcome"] == EXPECTED[name], name
        assert r["s"] < TIME_LIMIT_S, name
        assert r["rss"] < MEMORY_LIMIT, f"{name}: {r['rss'] / 2**20:.0f} MiB resident"
        assert r["peak"] < MEMORY_LIMIT, f"{name}: {r['peak'] / 2**20:.0f} MiB allocated"


def test_a_rust_panic_in_the_laz_decoder_is_the_typed_error(monkeypatch) -> None:
    # Without the chunk-table check, lazrs panics on this file ("capacity overflow"); the
    # panic (pyo3's PanicException, a BaseException) must still end in one typed error.
    from pcsep_cli.errors import PointCloudError
    from pcsep_cli.io import las
    from pcsep_cli.io.pointcloud import read_cloud

    monkeypatch.setattr(las, "_check_chunk_bytes", lambda *args: None)
    with pytest.raises(PointCloudError, match="corrupt or truncated.*PanicException") as err:
        read_cloud(REGRESSIONS / "laz-chunk-bytes-2e64.laz")
    assert "\n" not in str(err.value)
