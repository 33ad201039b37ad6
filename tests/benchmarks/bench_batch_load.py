"""``pcsep batch --jobs 2`` on 20 and on 200 short items: memory must stay flat with the count.

Each item is 3 s of the shipped example's mixture (44.1 kHz stereo, 16-bit WAV, a different
offset per item) beside a copy of the shipped quartet scene, separated with the bundled
``pcsep-base``. Each row is one fresh ``pcsep batch`` process; its peak RSS comes from
``wait4``. A run of 200 items then repeats on the finished folder, which must skip them all.

Target (issue 8): peak RSS at 200 items within 10 % of the figure at 20 items; every item
done. Prints a table; exits 1 if a target is missed.

Usage: ``.venv/bin/python tests/benchmarks/bench_batch_load.py [--items 20 200] [--jobs 2]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "pcsep_cli" / "examples" / "quartet"
TARGET_FLAT = 0.10
SECONDS = 3.0


def make_folder(folder: Path, items: int) -> None:
    mix, sr = sf.read(EXAMPLE / "mixture.flac", dtype="float32", always_2d=True)
    length = int(SECONDS * sr)
    folder.mkdir(parents=True)
    for i in range(items):
        start = (i * 7919) % max(1, len(mix) - length)
        sf.write(folder / f"take{i:03d}.wav", mix[start : start + length], sr, "PCM_16")
        shutil.copy(EXAMPLE / "scene.ply", folder / f"take{i:03d}.ply")


def run(folder: Path, out: Path, jobs: int) -> tuple[float, float, dict]:
    """Wall seconds, peak RSS (MB) and the ``--json`` summary of one ``pcsep batch``."""
    cmd = [sys.executable, "-m", "pcsep_cli.cli", "batch", str(folder), "-o", str(out)]
    cmd += ["--jobs", str(jobs), "--model", str(ROOT / "models" / "pcsep-base"), "--json"]
    print(f"running {' '.join(cmd)[:110]} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    with tempfile.TemporaryFile() as stdout:
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            err = proc.stderr.read().decode()[-3000:] if proc.stderr else ""
            sys.exit(f"{' '.join(cmd)} failed:\n{err}")
        stdout.seek(0)
        summary = json.loads(stdout.read())
    return wall, usage.ru_maxrss / 1024, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, nargs="+", default=[20, 200])
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    rows, ok = [], True
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for n in args.items:
            folder, out = work / f"in{n}", work / f"out{n}"
            make_folder(folder, n)
            wall, rss, summary = run(folder, out, args.jobs)
            done = sum(item["status"] == "done" for item in summary["items"])
            rows.append((f"{n} items", wall, wall / n, rss, f"{done}/{n} done"))
            ok &= done == n
            if n == max(args.items):
                wall, rss2, summary = run(folder, out, args.jobs)
                skipped = sum(item["status"] == "skipped" for item in summary["items"])
                rows.append((f"{n} items, rerun", wall, wall / n, rss2, f"{skipped}/{n} skipped"))
                ok &= skipped == n
            shutil.rmtree(folder)
            shutil.rmtree(out)
    print(f"\npcsep batch --jobs {args.jobs}, {SECONDS:.0f} s items, {os.cpu_count()} CPUs")
    print(f"{'run':<20} {'wall s':>8} {'s/item':>8} {'peak RSS MB':>12}  result")
    for name, wall, per, rss, result in rows:
        print(f"{name:<20} {wall:>8.1f} {per:>8.2f} {rss:>12.0f}  {result}")
    first = [r for r in rows if r[0] == f"{min(args.items)} items"][0][3]
    last = [r for r in rows if r[0] == f"{max(args.items)} items"][0][3]
    growth = last / first - 1
    flat = growth <= TARGET_FLAT
    print(f"\npeak RSS {max(args.items)} vs {min(args.items)} items: {growth:+.1%} ", end="")
    print(f"(target <= +{TARGET_FLAT:.0%}) {'ok' if flat else 'MISSED'}")
    return 0 if ok and flat else 1


if __name__ == "__main__":
    sys.exit(main())
