"""``pcsep separate --mics`` with pcsep-spatial beside pcsep-base, side by side in one run.

Input (issue 15's speed target): 60 s of 4-channel 44.1 kHz audio (16-bit WAV: the shipped
example's stereo mixture repeated, channels 3 and 4 copies of 1 and 2 two samples later), the
shipped quartet's scene (four performers) and a ``mics.json`` of four omnis on a circle of
8 cm radius, 3.5 m in front of the ensemble at 1.6 m. Every row is a fresh process, timed from
start to exit (model load, reading and writing included), peak RSS from ``wait4``'s rusage;
the median of ``--runs`` runs.

- ``pcsep-spatial``: the bundled spatial model (``models/pcsep-spatial``), with ``--mics``.
- ``pcsep-base``: the bundled mono model on the same files (it ignores ``--mics``).

Targets (issue 15): real-time factor <= 0.15 and peak RSS <= 1.5 GB for pcsep-spatial.
Prints a table; exits 1 if a target is missed.

``--models A,B,...`` times other models (names or folders) in the same run; the first is the one
held to the targets. ``--instruments violin,violin,violin,violin`` names the performers (label
mode, positions still from the scene): four players of one class is the slowest case of a model
that splits a class by fitted covariances (``spatial.covariance``).

Usage: ``.venv/bin/python tests/benchmarks/bench_spatial.py [--runs K] [--seconds S]
[--models A,B] [--instruments NAMES]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from bench_separate import run_once  # beside this script: timing and rusage, one process

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "pcsep_cli" / "examples" / "quartet"
TARGET_RTF, TARGET_RSS_MB = 0.15, 1500.0


def write_inputs(work: Path, seconds: float) -> None:
    """The 4-channel mixture and the microphones (module docstring)."""
    mix, sr = sf.read(EXAMPLE / "mixture.flac", dtype="float32", always_2d=True)
    total = int(seconds * sr)
    four = np.concatenate([mix, np.roll(mix, 2, axis=0)], axis=1)
    with sf.SoundFile(work / "mix.wav", "w", sr, 4, "PCM_16", format="WAV") as f:
        done = 0
        while done < total:
            part = four[: total - done]
            f.write(part)
            done += len(part)
    meta = json.loads((EXAMPLE / "meta.json").read_text())
    feet = np.array([p["position"] for p in meta["performers"]], dtype=np.float64)
    centre = feet.mean(axis=0) + np.array([0.0, -3.5, 1.6])
    angles = np.arange(4) * np.pi / 2
    ring = centre + 0.08 * np.stack([np.cos(angles), np.sin(angles), 0 * angles], axis=1)
    mics = {"microphones": [{"position": [round(float(v), 4) for v in p]} for p in ring]}
    (work / "mics.json").write_text(json.dumps(mics))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--models", default="pcsep-spatial,pcsep-base")
    parser.add_argument("--instruments", default="", help="label mode: one per performer")
    args = parser.parse_args()
    pcsep = str(Path(sys.executable).parent / "pcsep")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_inputs(work, args.seconds)
        for k, name in enumerate(args.models.split(",")):
            cmd = [pcsep, "separate", str(work / "mix.wav"), str(EXAMPLE / "scene.ply")]
            cmd += ["--mics", str(work / "mics.json"), "--model", name]
            cmd += ["-o", str(work / f"out{k}"), "--overwrite", "--quiet"]
            cmd += ["--instruments", args.instruments] if args.instruments else []
            runs = [run_once(cmd) for _ in range(args.runs)]
            wall = statistics.median(r[0] for r in runs)
            rss = max(r[1] for r in runs)  # run_once: (wall s, peak RSS MB, CPU s)
            rows.append((name, wall, wall / args.seconds, rss))
    print(
        f"{args.seconds:g} s of 4-channel 44.1 kHz, quartet scene, 4-mic circle"
        f"{', instruments ' + args.instruments if args.instruments else ''}; "
        f"median of {args.runs} runs\n"
    )
    print("| model | wall (s) | RTF | peak RSS (MB) |")
    print("|---|---|---|---|")
    for name, wall, rtf, rss in rows:
        print(f"| {name} | {wall:.2f} | {rtf:.3f} | {rss:.0f} |")
    spatial = rows[0]
    for other in rows[1:]:
        print(f"\n{spatial[0]} / {other[0]} wall time: {spatial[1] / other[1]:.2f}x")
    ok = spatial[2] <= TARGET_RTF and spatial[3] <= TARGET_RSS_MB
    print(
        f"targets (RTF <= {TARGET_RTF}, RSS <= {TARGET_RSS_MB:.0f} MB): {'met' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
