"""``pcsep separate`` against htdemucs and open-unmix, side by side in one run.

Input: 60 s of 44.1 kHz stereo (the shipped example's mixture repeated, 16-bit WAV) and a
~150,000-point scene of four performers (the shipped scene, each point also drawn again with
3 mm of jitter). Every row is a fresh process, timed from start to exit (model load, reading
and writing included); its peak RSS comes from ``wait4``'s rusage.

- ``pcsep separate``: the bundled ``pcsep-base`` when ``models/pcsep-base`` exists, otherwise
  the ``pcsep-base`` training config with random weights (same architecture, same cost).
- htdemucs (demucs 4.1.0): the architecture with random weights, ``apply_model`` with its
  default segment and overlap. demucs imports torchaudio, whose library does not load beside
  torch 2.13; the architecture never calls it, so an empty stand-in module is put in
  ``sys.modules`` first (open-unmix imports it too, and gets the same).
- open-unmix: a umxl-sized ``Separator`` (4 targets, hidden size 1024, 16 kHz bandwidth,
  n_fft 4096), random weights, ``niter=1``.

demucs and open-unmix live in their own venv, ``~/.cache/pcsep-bench/demucs`` (torch==2.13.0
pinned, the same CPU build as pcsep's)::

    python3 -m venv ~/.cache/pcsep-bench/demucs
    ~/.cache/pcsep-bench/demucs/bin/pip install torch==2.13.0 demucs==4.1.0 openunmix soundfile

Targets (issue 6): real-time factor <= 0.1 and >= 6x faster than htdemucs in the same run;
peak RSS <= 1.5 GB; peak RSS on a 30-minute input within 10% of the 60 s figure.
Prints a table; exits 1 if a target is missed.

Usage: ``.venv/bin/python tests/benchmarks/bench_separate.py [--runs K] [--long-minutes M]
[--model REF]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "pcsep_cli" / "examples" / "quartet"
BENCH_VENV = Path.home() / ".cache" / "pcsep-bench" / "demucs"
TARGET_RTF, TARGET_SPEEDUP, TARGET_RSS_MB, TARGET_FLAT = 0.1, 6.0, 1500.0, 0.10
SR = 44100

HTDEMUCS = """
import sys, time, types
sys.modules["torchaudio"] = types.ModuleType("torchaudio")  # stand-in: never called
import soundfile as sf, torch
from demucs.apply import apply_model
from demucs.htdemucs import HTDemucs
torch.manual_seed(0)
model = HTDemucs(sources=["drums", "bass", "other", "vocals"], samplerate=44100).eval()
mix, sr = sf.read(sys.argv[1], dtype="float32")
with torch.inference_mode():
    out = apply_model(model, torch.from_numpy(mix.T.copy())[None], device="cpu", progress=False)
assert out.shape[1] == 4 and out.shape[-1] == mix.shape[0], out.shape
"""

OPENUNMIX = """
import sys, types
sys.modules["torchaudio"] = types.ModuleType("torchaudio")  # stand-in: never called
import soundfile as sf, torch
from openunmix.model import OpenUnmix, Separator
from openunmix.utils import bandwidth_to_max_bin
torch.manual_seed(0)
max_bin = bandwidth_to_max_bin(44100, 4096, 16000)
targets = {
    t: OpenUnmix(nb_bins=2049, nb_channels=2, hidden_size=1024, max_bin=max_bin).eval()
    for t in ("vocals", "drums", "bass", "other")
}
sep = Separator(targets, niter=1, n_fft=4096, n_hop=1024, nb_channels=2, sample_rate=44100.0)
sep.freeze()
mix, sr = sf.read(sys.argv[1], dtype="float32")
with torch.inference_mode():
    out = sep(torch.from_numpy(mix.T.copy())[None])
assert out.shape[1] == 4, out.shape
"""


def run_once(cmd: list[str]) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MB) and CPU seconds (user + system) of one process."""
    print(f"running {' '.join(cmd)[:120]} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        err = proc.stderr.read().decode()[-3000:] if proc.stderr else ""
        sys.exit(f"{' '.join(cmd)} failed:\n{err}")
    result = wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime  # RSS in KiB
    print(
        f"  wall {result[0]:.1f} s, RSS {result[1]:.0f} MB, CPU {result[2]:.1f} s", file=sys.stderr
    )
    return result


def write_mixture(path: Path, seconds: float) -> None:
    """The example's mixture repeated to ``seconds``, written block by block (16-bit WAV)."""
    mix, sr = sf.read(EXAMPLE / "mixture.flac", dtype="float32", always_2d=True)
    total = int(seconds * sr)
    with sf.SoundFile(path, "w", sr, mix.shape[1], "PCM_16", format="WAV") as f:
        done = 0
        while done < total:
            part = mix[: total - done]
            f.write(part)
            done += len(part)


def write_scene(path: Path, points: int = 150_000) -> int:
    """The example's scene with extra jittered copies of its points, to ``points`` points."""
    from pcsep_cli.io.pointcloud import PointCloud, read_cloud, write_ply

    cloud = read_cloud(EXAMPLE / "scene.ply")
    rng = np.random.default_rng(0)
    extra = rng.integers(0, len(cloud.xyz), points - len(cloud.xyz))
    xyz = np.concatenate([cloud.xyz, cloud.xyz[extra] + rng.normal(0, 0.003, (len(extra), 3))])
    rgb = None if cloud.rgb is None else np.concatenate([cloud.rgb, cloud.rgb[extra]])
    write_ply(path, PointCloud(xyz, rgb))
    return len(xyz)


def model_dir(work: Path, ref: str | None = None) -> tuple[str, str]:
    if ref:
        return ref, ref
    bundled = ROOT / "models" / "pcsep-base"
    if (bundled / "model.safetensors").is_file():
        return str(bundled), "pcsep-base (bundled)"
    import torch

    from pcsep_cli.nets.model import SeparationNet
    from pcsep_cli.train.config import load_train_config

    torch.manual_seed(0)
    out = SeparationNet(load_train_config("pcsep-base").model).save_pretrained(work / "model")
    return str(out), "pcsep-base config, random weights"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each 60 s row (median)")
    parser.add_argument("--long-minutes", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--skip-baselines", action="store_true")
    parser.add_argument("--model", help="model reference to time (default: the bundled pcsep-base)")
    args = parser.parse_args()
    bench_py = BENCH_VENV / "bin" / "python"
    if not args.skip_baselines and not bench_py.is_file():
        sys.exit(f"no {bench_py}: make it as the module docstring says")
    rows: list[tuple[str, float, float, float, float]] = []  # name, wall, RSS, audio s, CPU s
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        mix = work / "mix.wav"
        write_mixture(mix, args.seconds)
        npts = write_scene(work / "scene.ply")
        model, model_name = model_dir(work, args.model)

        def pcsep(audio: Path) -> list[str]:
            return [
                sys.executable, "-m", "pcsep_cli.cli", "separate", str(audio),
                str(work / "scene.ply"), "-o", str(work / "out"), "--model", model,
                "--device", "cpu", "--overwrite", "--json",
            ]  # fmt: skip

        runs = [run_once(pcsep(mix)) for _ in range(args.runs)]
        rows.append(
            (
                "pcsep separate",
                statistics.median(r[0] for r in runs),
                max(r[1] for r in runs),
                args.seconds,
                statistics.median(r[2] for r in runs),
            )
        )
        manifest = json.loads(
            subprocess.run(pcsep(mix), capture_output=True, text=True, check=True).stdout
        )
        if not args.skip_baselines:
            for name, script in (("htdemucs", HTDEMUCS), ("open-unmix umxl", OPENUNMIX)):
                wall, rss, cpu = run_once([str(bench_py), "-c", script, str(mix)])
                rows.append((name, wall, rss, args.seconds, cpu))
        long_mix = work / "long.wav"
        write_mixture(long_mix, args.long_minutes * 60)
        wall, rss, cpu = run_once(pcsep(long_mix))
        long_name = f"pcsep separate, {args.long_minutes:g} min"
        rows.append((long_name, wall, rss, args.long_minutes * 60, cpu))

    print(
        f"{args.seconds:g} s of 44.1 kHz stereo, {npts:,}-point scene with "
        f"{len(manifest['stems'])} stems ({', '.join(s['name'] for s in manifest['stems'])}); "
        f"model: {model_name}; {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}; pcsep median of {args.runs}"
    )
    # CPU seconds / cores: the wall time an otherwise idle machine would give (this one is
    # shared, so wall times swing with the load average).
    cores = os.cpu_count() or 1
    print(
        f"{'':<28}{'wall':>9}{'RTF':>8}{'CPU':>9}{'CPU RTF':>9}{'peak RSS':>11}"
        f"{'vs htdemucs (wall, CPU)':>25}"
    )
    demucs = next(((w, c) for n, w, _, _, c in rows if n == "htdemucs"), None)
    for name, wall, rss, secs, cpu in rows:
        speed = ""
        if demucs and secs == args.seconds:
            speed = f"{demucs[0] / wall:.1f}x, {demucs[1] / cpu:.1f}x"
        print(
            f"{name:<28}{wall:>7.1f} s{wall / secs:>8.3f}{cpu:>7.1f} s{cpu / cores / secs:>9.3f}"
            f"{rss:>8.0f} MB{speed:>25}"
        )
    demucs_wall = demucs[0] if demucs else None
    pc_wall, pc_rss = rows[0][1], rows[0][2]
    long_rss = rows[-1][2]
    checks = {
        f"RTF <= {TARGET_RTF}": pc_wall / args.seconds <= TARGET_RTF,
        f"peak RSS <= {TARGET_RSS_MB:.0f} MB": max(pc_rss, long_rss) <= TARGET_RSS_MB,
        f"{args.long_minutes:g} min RSS within 10% of {args.seconds:g} s": long_rss
        <= pc_rss * (1 + TARGET_FLAT),
    }
    if demucs_wall:
        checks[f">= {TARGET_SPEEDUP:g}x faster than htdemucs"] = (
            demucs_wall / pc_wall >= TARGET_SPEEDUP
        )
    for name, ok in checks.items():
        print(f"  {'yes' if ok else 'NO ':<4}{name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
