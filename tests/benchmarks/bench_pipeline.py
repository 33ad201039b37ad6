"""The whole pipeline on a synthetic split: scene step, classifier and separation together.

``pcsep evaluate`` cuts each performer out of the scene with the generator's per-point labels,
so it scores the separation alone (``pcsep evaluate --scene`` gives one stem per performer,
Hungarian matching). Here every example goes through what ``pcsep separate`` does with a whole
scene: :func:`~pcsep_cli.scene.find_performers` clusters it, the model classifies each cluster
and separates those it calls instruments. Each cluster is matched to the nearest placed object
(performer or visible distractor) within 1 m of its footprint centre; a performer's estimate is
the sum of the stems of its clusters, which shows what split performers cost. Beside it, in the
same run, ``evaluate`` on the same examples gives the figures with labelled clouds.

No target: it shows what the scene step costs. Prints three tables.

Usage: ``.venv/bin/python tests/benchmarks/bench_pipeline.py [DATASET] [--model REF]``
(``DATASET``: a split folder of ``pcsep synth``, default ``runs/data/test``, the bundled
models' test split; without it, 12 new test scenes are written first: seed 1, pieces of the
models' test split, test bodies, which needs FluidSynth, ``make setup-train``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

MATCH_RADIUS = 1.0  # m between a cluster's footprint centre and the object it is given to
SPLITS = (0.7, 0.1, 0.2)  # the bundled models' data (their cards)


def write_test_scenes(out: Path, examples: int = 12) -> Path:
    """``examples`` scenes like the bundled models' test split (their pieces and bodies)."""
    from pcsep_cli.synth.corpus import corpus_pieces, piece_split
    from pcsep_cli.synth.dataset import write_dataset

    pieces = [p for p in corpus_pieces() if piece_split(p, SPLITS) == "test"]
    write_dataset(
        out,
        examples=examples,
        seed=1,
        jobs=2,
        split_fractions=(0.0, 0.0, 1.0),
        performers=(2, 4),
        pieces=pieces,
    )
    return out / "test"


def run(dataset: Path, model: str, max_seconds: float) -> dict:
    import torch

    from pcsep_cli.io.pointcloud import read_cloud
    from pcsep_cli.scene import find_performers
    from pcsep_cli.separate import Separator
    from pcsep_cli.train.evaluate import evaluate, group_name, read_example
    from pcsep_cli.train.metrics import bss_eval

    torch.set_num_threads(2)
    sep = Separator.from_pretrained(model, device="cpu", offline=True)
    rate = sep.sample_rate
    seg: Counter[str] = Counter()
    cls: Counter[str] = Counter()
    sdri: dict[str, list[float]] = {}
    started = time.perf_counter()
    examples = sorted(p for p in dataset.iterdir() if (p / "meta.json").is_file())
    for folder in examples:
        ex = read_example(folder, rate, max_seconds)
        meta, mix, stems = ex.meta, ex.mixture, ex.stems
        performers = meta["performers"]
        visible = [d for d in meta.get("distractors", []) if d.get("points", 1) > 0]
        objects = performers + visible
        truth = [p["instrument"] for p in performers] + ["none"] * len(visible)
        where = np.array([o["position"][:2] for o in objects], dtype=np.float64)
        result = sep.separate(
            mix, rate, performers=find_performers(read_cloud(folder / "scene.ply"))
        )
        estimate = np.zeros((len(performers), *mix.shape), dtype=np.float32)
        owner: list[int | None] = []
        stem = iter(result.stems)
        for det in result.detections:
            dist = np.linalg.norm(where - np.asarray(det.position[:2]), axis=1)
            j = int(np.argmin(dist))
            owner.append(j if dist[j] < MATCH_RADIUS else None)
            if det.name is not None:
                audio = next(stem)
                if owner[-1] is not None and j < len(performers):
                    estimate[j] += audio
        count = Counter(j for j in owner if j is not None)
        seg["clusters"] += len(owner)
        seg["clusters matching no object"] += sum(j is None for j in owner)
        for j in range(len(objects)):
            kind = "performers" if j < len(performers) else "distractors"
            seg[f"{kind}"] += 1
            seg[f"{kind}: one cluster"] += count[j] == 1
            seg[f"{kind}: split"] += count[j] > 1
            seg[f"{kind}: missed"] += count[j] == 0
        for det, j in zip(result.detections, owner, strict=True):
            if j is not None:
                whole = "whole objects" if count[j] == 1 else "pieces of split objects"
                cls[whole] += 1
                cls[f"{whole}: right"] += det.instrument == truth[j]
        found = [j for j in range(len(performers)) if np.any(estimate[j])]
        seg["performers without a stem"] += len(performers) - len(found)
        if found:
            refs = np.stack([stems[j] for j in found])
            got = bss_eval(refs, estimate[found])["sdr"]
            base = bss_eval(refs, np.repeat(mix[None], len(found), axis=0))["sdr"]
            sdri.setdefault(group_name(len(performers)), []).extend(np.asarray(got) - base)
    pipeline_s = time.perf_counter() - started
    labelled = evaluate(model, dataset, max_seconds=max_seconds, device="cpu")
    return {
        "examples": len(examples),
        "seg": seg,
        "cls": cls,
        "sdri": sdri,
        "pipeline_s": pipeline_s,
        "labelled": labelled,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", nargs="?", type=Path, default=Path("runs/data/test"))
    parser.add_argument("--model", default="pcsep-base")
    parser.add_argument("--max-seconds", type=float, default=6.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if not args.dataset.is_dir():
            print(f"{args.dataset} not found: writing 12 test scenes", file=sys.stderr)
            args.dataset = write_test_scenes(Path(tmp) / "data")
        r = run(args.dataset, args.model, args.max_seconds)
    seg, cls, lab = r["seg"], r["cls"], r["labelled"]
    print(
        f"{r['examples']} examples of {args.dataset}, model {args.model}, first "
        f"{args.max_seconds:g} s; pipeline {r['pipeline_s']:.0f} s"
    )
    print("\nscene step                  objects  one cluster  split  missed")
    for kind in ("performers", "distractors"):
        print(
            f"{kind:<26}{seg[kind]:>9}{seg[kind + ': one cluster']:>13}"
            f"{seg[kind + ': split']:>7}{seg[kind + ': missed']:>8}"
        )
    print(
        f"clusters {seg['clusters']}, matching no object {seg['clusters matching no object']}; "
        f"performers left without a stem {seg['performers without a stem']}"
    )
    print("\nclassification of clusters        clusters  right")
    for kind in ("whole objects", "pieces of split objects"):
        n = cls[kind]
        right = f"{100 * cls[kind + ': right'] / n:5.1f} %" if n else "    -"
        print(f"{kind:<34}{n:>9}  {right}")
    c = lab["classification"]
    total = c["performers"] + c["distractors"]
    hits = c["accuracy"]["mean"] * c["performers"] + c["none_accuracy"]["mean"] * c["distractors"]
    print(f"{'labelled clouds (evaluate)':<34}{total:>9}  {100 * hits / total:5.1f} %")
    print("\nSDRi (dB)                 2 perf.  3-4 perf.")
    pipe = {g: float(np.mean(v)) for g, v in r["sdri"].items()}
    nan = float("nan")
    print(f"{'whole pipeline':<24}{pipe.get('2', nan):>8.2f}{pipe.get('3-4', nan):>11.2f}")
    groups = lab["by_performers"]
    lab_2, lab_34 = (groups.get(g, {}).get("sdri", {}).get("mean", nan) for g in ("2", "3-4"))
    print(f"{'labelled clouds':<24}{lab_2:>8.2f}{lab_34:>11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
