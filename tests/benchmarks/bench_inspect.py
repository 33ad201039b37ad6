"""Wall time and peak memory of ``pcsep inspect`` on a 1-million-point binary PLY.

Targets (issue "Foundation"): under 1.5 s wall and under 300 MB peak RSS for the whole CLI
process. The file is written with plyfile (float32 xyz, normals, uint8 rgba: 28 bytes a point,
as scanners export). Each run is a fresh ``pcsep`` process; its peak RSS comes from
``wait4``'s rusage. Prints a table of medians and exits 1 if a target is missed.

Usage: ``.venv/bin/python tests/benchmarks/bench_inspect.py [--points N] [--runs K]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from plyfile import PlyData, PlyElement

TARGET_WALL_S = 1.5
TARGET_RSS_MB = 300.0


def write_scan(path: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    fields = [(a, "f4") for a in ("x", "y", "z", "nx", "ny", "nz")]
    fields += [(c, "u1") for c in ("red", "green", "blue", "alpha")]
    v = np.empty(n, dtype=fields)
    for name in ("x", "y", "z"):
        v[name] = rng.uniform(-10, 10, n)
    for name in ("nx", "ny", "nz"):
        v[name] = rng.uniform(-1, 1, n)
    for name in ("red", "green", "blue", "alpha"):
        v[name] = rng.integers(0, 256, n)
    PlyData([PlyElement.describe(v, "vertex")], byte_order="<").write(str(path))


def run_once(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return wall, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    pcsep = shutil.which("pcsep", path=str(Path(sys.executable).parent))
    if pcsep is None:
        sys.exit("pcsep is not installed in this venv: pip install -e . --no-deps")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scan.ply"
        write_scan(path, args.points)
        size_mb = path.stat().st_size / 1e6
        rows = []
        for label, extra in (("inspect --json", ["--json"]), ("inspect (table)", [])):
            cmd = [pcsep, "inspect", str(path), *extra]
            run_once(cmd)  # page cache warm, as for a file just written or read before
            runs = [run_once(cmd) for _ in range(args.runs)]
            walls, rss = [r[0] for r in runs], [r[1] for r in runs]
            rows.append((label, statistics.median(walls), max(walls), statistics.median(rss)))
    print(
        f"pcsep inspect, {args.points:,}-point binary PLY ({size_mb:.0f} MB), "
        f"{args.runs} runs, {os.cpu_count()} CPUs"
    )
    print(f"{'command':<18}{'wall median':>12}{'wall max':>10}{'peak RSS':>11}{'target':>22}  ok")
    ok = True
    for label, wall, worst, rss in rows:
        good = wall < TARGET_WALL_S and rss < TARGET_RSS_MB
        ok &= good
        print(
            f"{label:<18}{wall:>10.2f} s{worst:>8.2f} s{rss:>8.0f} MB"
            f"{f'< {TARGET_WALL_S} s, < {TARGET_RSS_MB:.0f} MB':>22}  {'yes' if good else 'NO'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
