"""Where in the spectrum models separate well: label-mode SDRi per frequency band, side by side.

For each example of a dataset split (the dataset layout, e.g. a ``pcsep synth`` validation
split), every model separates the first ``--seconds`` with the instruments given
(``Separator.separate(..., instruments=...)``, the path of ``pcsep separate --instruments``).
References, estimates and the mixture are then filtered alike (8th-order Butterworth, zero
phase) and scored with BSS Eval (``pcsep_cli.train.metrics.bss_eval``): SDRi over the whole
band, below ``--low`` Hz and above ``--high`` Hz. A performer whose reference is silent in a band
is left out of that band's mean. The last column is the share of the mixtures' energy above
``--high``.

Written to see where a 22,050 Hz model gains and loses against an 11,025 Hz one (the pcsep-base
card, "Tried after stage 5"). Never point it at a test split to choose a model.

Usage: ``.venv/bin/python tests/benchmarks/bench_bands.py DATASET_SPLIT MODEL [MODEL ...]
[--seconds 6] [--low 5000] [--high 5500]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.signal import butter, sosfiltfilt

from pcsep_cli.separate.separator import Separator
from pcsep_cli.train.evaluate import read_example
from pcsep_cli.train.metrics import bss_eval, silent_rows


def _sdri(refs: np.ndarray, est: np.ndarray, mix: np.ndarray) -> list[float]:
    # 60 dB under the loudest performer in the band (the card's figures were taken so).
    heard = np.ones(len(refs), dtype=bool)
    heard[silent_rows(refs, below_db=60.0)] = False
    if not heard.any():
        return []
    gain = bss_eval(refs[heard], est[heard])["sdr"] - bss_eval(refs[heard], mix[heard])["sdr"]
    return [float(v) for v in gain]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("split", type=Path, help="a dataset split folder (one folder per example)")
    parser.add_argument("models", nargs="+", help="model references (bundled name or folder)")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--low", type=float, default=5000.0, help="top of the low band (Hz)")
    parser.add_argument("--high", type=float, default=5500.0, help="bottom of the high band (Hz)")
    args = parser.parse_args()
    seps = [Separator.from_pretrained(m) for m in args.models]
    scores = {m: {"whole": [], "low": [], "high": []} for m in args.models}
    shares = []
    examples = sorted(p for p in args.split.iterdir() if (p / "meta.json").is_file())
    for folder in examples:
        ex = read_example(folder, None, args.seconds)
        instruments = [p["instrument"] for p in ex.meta["performers"]]
        refs = np.stack(ex.stems)
        mix = np.repeat(ex.mixture[None], len(instruments), axis=0)
        sr = ex.sample_rate
        bands = {
            "whole": None,
            "low": butter(8, args.low, "low", fs=sr, output="sos"),
            "high": butter(8, args.high, "high", fs=sr, output="sos"),
        }
        top = sosfiltfilt(bands["high"], ex.mixture, axis=-1)
        shares.append(float((top**2).sum() / max((ex.mixture**2).sum(), 1e-20)))
        for name, sep in zip(args.models, seps, strict=True):
            est = sep.separate(ex.mixture, sr, instruments=instruments).stems
            for band, sos in bands.items():
                r, e, m = (
                    x if sos is None else sosfiltfilt(sos, x, axis=-1).astype(np.float32)
                    for x in (refs, est, mix)
                )
                scores[name][band] += _sdri(r, e, m)
    print(f"{args.split}: {len(examples)} examples, first {args.seconds:g} s, label mode")
    bands = ["whole", f"< {args.low:g} Hz", f"> {args.high:g} Hz"]
    print(f"{'model (SDRi, performers)':40s} " + " ".join(f"{b:>15s}" for b in bands))
    for name, per in scores.items():
        cells = [
            f"{np.mean(v):6.2f} dB ({len(v):4d})" if v else f"{'-':>15s}" for v in per.values()
        ]
        print(f"{name:40s} " + " ".join(cells))
    print(f"energy above {args.high:g} Hz: {100 * np.mean(shares):.3f} % of the mixtures (mean)")


if __name__ == "__main__":
    main()
