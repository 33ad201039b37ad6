"""Time and peak memory of reading a 10-million-point E57 file through pcsep's reader.

Targets (issue 16): ``read_cloud`` under 3 s and under 1 GB peak RSS. The file is written with
pye57's ``write_scan_raw`` (float32 xyz, float32 intensity, 8-bit colour: one Cartesian scan,
as a registered export looks). Each read runs in a fresh Python process that times
``read_cloud`` alone (the pye57 import included) and reports its own peak RSS
(``resource.getrusage``). For comparison the same file is read with pye57's own
``read_scan_raw`` and, when installed, with the ``e57`` package (Rust); no target applies to
those. Prints a table of medians and exits 1 if pcsep misses a target.

Usage: ``.venv/bin/python tests/benchmarks/bench_e57.py [--points N] [--runs K]``
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_S = 3.0
TARGET_RSS_MB = 1000.0

CHILD = r"""
import json, resource, sys, time
how, path = sys.argv[1], sys.argv[2]
start = time.perf_counter()
if how == "pcsep":
    from pcsep_cli.io.pointcloud import read_cloud
    n = read_cloud(path).num_points
elif how == "pye57":
    import numpy as np, pye57
    with pye57.E57(path) as f:
        d = f.read_scan_raw(0)
        n = len(np.stack([d["cartesianX"], d["cartesianY"], d["cartesianZ"]], axis=1))
else:
    import e57
    n = len(e57.read_points(path).points)
took = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
print(json.dumps({"points": n, "s": took, "rss_mb": rss}))
"""


def write_scan(path: Path, n: int) -> None:
    import pye57

    rng = np.random.default_rng(0)
    data = {
        "cartesianX": rng.uniform(-20, 20, n),
        "cartesianY": rng.uniform(-20, 20, n),
        "cartesianZ": rng.uniform(0, 5, n),
        "intensity": rng.uniform(0, 1, n).astype(np.float32),
    }
    for name in ("colorRed", "colorGreen", "colorBlue"):
        data[name] = rng.integers(0, 256, n, dtype=np.uint8)
    with pye57.E57(str(path), mode="w") as f:
        f.write_scan_raw(data)


def run_once(how: str, path: Path) -> dict[str, float]:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, how, str(path)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"reading with {how} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    readers = ["pcsep", "pye57"] + (["e57"] if importlib.util.find_spec("e57") else [])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scan.e57"
        start = time.perf_counter()
        write_scan(path, args.points)
        wrote = time.perf_counter() - start
        size_mb = path.stat().st_size / 1e6
        rows = []
        for how in readers:
            runs = [run_once(how, path) for _ in range(args.runs)]
            assert all(r["points"] == args.points for r in runs), runs
            walls = [r["s"] for r in runs]
            rows.append((how, statistics.median(walls), max(walls), max(r["rss_mb"] for r in runs)))
    print(
        f"E57 read, {args.points:,} points, 1 Cartesian scan with colour and intensity "
        f"({size_mb:.0f} MB, written in {wrote:.1f} s), {args.runs} runs, {os.cpu_count()} CPUs"
    )
    print(f"{'reader':<24}{'time median':>12}{'time max':>10}{'peak RSS':>11}{'target':>22}  ok")
    ok = True
    names = {
        "pcsep": "pcsep read_cloud",
        "pye57": "pye57 read_scan_raw",
        "e57": "e57 read_points",
    }
    for how, wall, worst, rss in rows:
        target, verdict = "", ""
        if how == "pcsep":
            good = wall < TARGET_S and rss < TARGET_RSS_MB
            ok &= good
            target, verdict = f"< {TARGET_S} s, < {TARGET_RSS_MB:.0f} MB", "yes" if good else "NO"
        print(
            f"{names[how]:<24}{wall:>10.2f} s{worst:>8.2f} s{rss:>8.0f} MB{target:>22}  {verdict}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
