"""Throughput of synthetic training data: whole scenes and solo audio.

Targets (issue "Training data"), on one core:

- scenes: >= 1 scene (3 performers, 8 s, stereo) per 2 s, geometry, music, room and files
  included (``write_dataset`` with ``jobs=1``, after a first pass over the same examples that
  loads anny and music21 and fills the parsed-piece cache);
- solo audio: >= 60 s of solo audio rendered per second (FluidSynth, in pool batches of
  :data:`~pcsep_cli.synth.dataset.POOL_CHUNK` clips). Also printed: solo clips with their room
  (audio only) and whole pool items (with the performer's cloud and the files).

Each figure is given twice: wall time, and CPU time (this process and its FluidSynth children,
user + system). On a machine shared with other jobs the CPU figure is the per-core cost; the
targets are checked against it.

Prints medians and exits 1 if a target is missed.

Usage: ``.venv/bin/python tests/benchmarks/bench_synth.py [--scenes N] [--solo N]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_SCENE_S = 2.0
TARGET_SOLO_RATE = 60.0
SR = 22050
DURATION = 8.0


def cpu() -> float:
    """CPU seconds used so far by this process and its waited-for children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def bench_scenes(root: Path, n: int) -> tuple[list[float], list[float]]:
    """Seconds per scene, warm: a first pass loads anny and fills the parsed-piece cache."""
    from pcsep_cli.synth.dataset import write_dataset

    common = dict(seed=1, performers=(3, 3), duration_s=DURATION, sample_rate=SR, mics="stereo")
    write_dataset(root / "warm-up", examples=n, **common)
    wall: list[float] = []
    cpus: list[float] = []
    for k in range(1, n + 1):  # one more example per call: the others are skipped
        start, start_cpu = time.perf_counter(), cpu()
        summary = write_dataset(root / "timed", examples=k, **common)
        wall.append(time.perf_counter() - start)
        cpus.append(cpu() - start_cpu)
        assert summary.written == 1, summary
    return wall, cpus


def bench_solo(n: int) -> dict[str, tuple[float, float]]:
    """Seconds of solo audio per (wall, CPU) second: FluidSynth alone, and with the room."""
    from pcsep_cli.synth import corpus, fluid, music, room
    from pcsep_cli.synth.dataset import POOL_CHUNK
    from pcsep_cli.synth.settings import Settings, candidate_pieces

    rng = np.random.default_rng(0)
    ids = [p for work in candidate_pieces(Settings(seed=0), "train") for p in work]
    plays = []
    while len(plays) < n:
        piece = corpus.load_piece(ids[int(rng.integers(len(ids)))])
        if piece.parts:
            name = list(music.GM_PROGRAMS)[len(plays) % len(music.GM_PROGRAMS)]
            plays.append(music.plan_solo(rng, piece, name, duration_s=DURATION, preroll_s=1.0))
    samples = int((DURATION + 1.0) * SR)

    start, start_cpu = time.perf_counter(), cpu()
    dry = [
        fluid.render(plays[i : i + POOL_CHUNK], sample_rate=SR, num_samples=samples)
        for i in range(0, n, POOL_CHUNK)
    ]
    render = (time.perf_counter() - start, cpu() - start_cpu)

    start, start_cpu = time.perf_counter(), cpu()
    for chunk in dry:
        for signal in chunk:
            source = rng.uniform([-1, -1, 0.8], [1, 1, 1.4])
            mics = room.microphone_array(rng, "stereo", source + [0, -3.0, 0.4], source)
            space = room.draw_room(rng, np.concatenate([source[None], mics]))
            room.record(space, source[None], mics, signal[None], SR, start=SR)
    acoustics = (time.perf_counter() - start, cpu() - start_cpu)
    audio = n * DURATION
    return {
        "render": (audio / render[0], audio / render[1]),
        "room": (audio / (render[0] + acoustics[0]), audio / (render[1] + acoustics[1])),
    }


def bench_pool(root: Path, n: int) -> tuple[float, float]:
    """Seconds of solo audio per second for whole pool items (cloud and files included), warm."""
    from pcsep_cli.synth.dataset import write_dataset

    common = dict(seed=2, duration_s=DURATION, sample_rate=SR, mics="stereo")
    write_dataset(root / "warm-up", examples=0, solo_pool=n, **common)
    start, start_cpu = time.perf_counter(), cpu()
    write_dataset(root / "timed", examples=0, solo_pool=n, **common)
    return n * DURATION / (time.perf_counter() - start), n * DURATION / (cpu() - start_cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=5, help="scenes timed (after a warm-up)")
    parser.add_argument("--solo", type=int, default=16, help="solo clips of 8 s")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pcsep-bench-synth-") as tmp:
        wall, cpus = bench_scenes(Path(tmp) / "scenes", args.scenes)
        solo = bench_solo(args.solo)
        pool = bench_pool(Path(tmp) / "pool", args.solo)

    scene = (statistics.median(wall), statistics.median(cpus))
    rows = [
        ("scene (3 performers, 8 s, stereo), s per scene", scene, f"<= {TARGET_SCENE_S} CPU"),
        ("solo audio rendered (FluidSynth), s per s", solo["render"], f">= {TARGET_SOLO_RATE} CPU"),
        ("solo audio with its room, s per s", solo["room"], ""),
        ("solo pool items (cloud, room, files), s per s", pool, ""),
    ]
    print(f"{'measure':48s} {'wall':>8s} {'CPU':>8s}  target")
    for name, (w, c), target in rows:
        print(f"{name:48s} {w:8.2f} {c:8.2f}  {target}")
    print(f"scenes, wall: {', '.join(f'{t:.2f}' for t in wall)}")
    print(f"scenes, CPU:  {', '.join(f'{t:.2f}' for t in cpus)}")
    ok = scene[1] <= TARGET_SCENE_S and solo["render"][1] >= TARGET_SOLO_RATE
    print("OK" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
