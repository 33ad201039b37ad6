"""Peak memory of ``pcsep separate`` against rate × channels (issue 18).

Each row separates 60 s of a recording at one rate and channel count (the shipped example's
mixture, resampled and spread over the channels with different gains, 24-bit WAV) against the
shipped quartet scene, with the bundled ``pcsep-base``, in a fresh process; its peak RSS
comes from ``wait4``'s rusage. The chunk length adapts to rate × channels × stems
(``Separator.block_sizes``), so the peak follows the chunk, not the input's size.

Target: the 60 s, 8-channel, 192 kHz row peaks at <= 1.5 GB (it peaked at 3.39 GB with fixed
20 s chunks, commit 6208c35). Prints a table; exits 1 if the target is missed.

Usage: ``.venv/bin/python tests/benchmarks/bench_memory.py [--seconds S]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "pcsep_cli" / "examples" / "quartet"
TARGET_RSS_MB = 1500.0
ROWS = [(44100, 2), (96000, 4), (192000, 8)]


def write_recording(path: Path, rate: int, channels: int, seconds: float) -> None:
    """The example's mono mix at ``rate``, repeated to ``seconds``, one gain per channel."""
    src, sr = sf.read(EXAMPLE / "mixture.flac", dtype="float32")
    g = np.gcd(rate, sr)
    mono = resample_poly(src.mean(axis=1), rate // g, sr // g).astype(np.float32)
    gains = 0.5 + 0.05 * np.arange(channels, dtype=np.float32)
    total = round(seconds * rate)
    with sf.SoundFile(path, "w", rate, channels, subtype="PCM_24") as f:
        done = 0
        while done < total:
            k = min(len(mono), total - done)
            f.write(np.outer(mono[:k], gains))
            done += k


def run(audio: Path, out: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one ``pcsep separate`` process."""
    cmd = [
        sys.executable, "-m", "pcsep_cli.cli", "separate", str(audio),
        str(EXAMPLE / "scene.ply"), "-o", str(out), "--offline", "--overwrite",
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    err = proc.stderr.read().decode() if proc.stderr else ""
    if status != 0:
        raise SystemExit(f"pcsep separate failed on {audio.name}: {err.strip()}")
    return seconds, usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for rate, channels in ROWS:
            audio = work / f"rec_{rate}_{channels}ch.wav"
            write_recording(audio, rate, channels, args.seconds)
            seconds, rss = run(audio, work / "out")
            rows.append((rate, channels, audio.stat().st_size / 2**20, seconds, rss))
            audio.unlink()
    print(f"{args.seconds:.0f} s recordings, pcsep-base, quartet scene, one process per row")
    print(f"{'rate':>7} {'ch':>3} {'input MB':>9} {'wall s':>7} {'RTF':>6} {'peak RSS MB':>12}")
    for rate, ch, size, sec, rss in rows:
        print(f"{rate:>7} {ch:>3} {size:>9.0f} {sec:>7.1f} {sec / args.seconds:>6.3f} {rss:>12.0f}")
    peak = rows[-1][-1]
    ok = peak <= TARGET_RSS_MB
    print(f"target: 192 kHz x 8 ch peak RSS <= {TARGET_RSS_MB:.0f} MB: {peak:.0f} MB "
          f"{'OK' if ok else 'MISSED'}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
