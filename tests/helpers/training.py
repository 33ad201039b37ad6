"""A tiny solo pool and dataset, written with the real writers, for training and evaluation
tests: three instruments with distinct pitch ranges and timbres, and clouds whose shapes differ
by instrument (a body plus a box, a big upright ellipsoid, or a horizontal rod)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pcsep_cli.io.audio_write import write_audio
from pcsep_cli.io.pointcloud import PointCloud, write_ply

RATE = 16000
F0 = {"violin": (440.0, 880.0), "cello": (98.0, 196.0), "flute": (1000.0, 1600.0)}


def _tone(instrument: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Stereo notes of the instrument's range: a different spectrum per instrument."""
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    lo, hi = F0[instrument]
    out = np.zeros(n)
    note = RATE // 4
    for start in range(0, n, note):
        f0 = rng.uniform(lo, hi)
        seg = t[start : start + note] - t[start]
        harmonics = {"violin": 8, "cello": 6, "flute": 1}[instrument]
        for h in range(1, harmonics + 1):
            if f0 * h < RATE / 2:
                out[start : start + note] += np.sin(2 * np.pi * f0 * h * seg) / h
        out[start : start + note] *= np.minimum(1, seg * 40) * np.exp(-seg * 2)
    pan = rng.uniform(0.3, 0.7)
    return (np.stack([out * pan, out * (1 - pan)]) * 0.2).astype(np.float32)


def _body(rng: np.random.Generator, n: int = 600) -> np.ndarray:
    theta = rng.uniform(0, 2 * np.pi, n)
    z = rng.uniform(0, 1.7, n)
    return np.stack([0.18 * np.cos(theta), 0.12 * np.sin(theta), z], 1)


def _instrument_points(kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "violin":
        pts = rng.uniform([-0.05, 0.1, 1.3], [0.3, 0.2, 1.4], (300, 3))
    elif kind == "cello":
        u = rng.normal(size=(500, 3))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        pts = u * [0.22, 0.12, 0.5] + [0.0, 0.35, 0.6]
    elif kind == "flute":
        pts = np.stack(
            [rng.uniform(-0.1, 0.6, 250), np.full(250, 0.15), np.full(250, 1.55)], 1
        ) + rng.normal(0, 0.01, (250, 3))
    else:  # none: a chair, no body
        return rng.uniform([-0.25, -0.25, 0.0], [0.25, 0.25, 0.9], (500, 3))
    return np.concatenate([_body(rng), pts])


def _write_cloud(path: Path, xyz: np.ndarray) -> None:
    write_ply(path, PointCloud(xyz=np.ascontiguousarray(xyz, dtype=np.float64)))


def make_pool(root: Path, per_instrument: int = 2, seconds: float = 2.0) -> Path:
    """A dataset as ``pcsep synth`` lays it out: a solo pool and one scene per split."""
    rng = np.random.default_rng(1)
    for split, count in (("train", per_instrument), ("val", 1)):
        for kind in F0:
            for i in range(count):
                folder = root / "pool" / split / f"{kind}_{i}"
                folder.mkdir(parents=True)
                _write_cloud(folder / "cloud.ply", _instrument_points(kind, rng) + [3.0, -1.0, 0])
                write_audio(folder / "audio.wav", _tone(kind, seconds, rng), RATE)
                (folder / "meta.json").write_text(json.dumps({"instrument": kind}))
        # Scenes add performers (their stems) and the only `none` clouds.
        make_dataset(root / split, [["cello", "flute"]], seconds=seconds, seed=len(split))
    return root


def make_dataset(root: Path, layouts: list[list[str]], seconds: float = 1.5, seed: int = 2) -> Path:
    """Examples in the dataset layout with labels.npy; a chair distractor in each scene."""
    rng = np.random.default_rng(seed)
    for e, kinds in enumerate(layouts):
        folder = root / f"{e:06d}"
        (folder / "stems").mkdir(parents=True)
        parts, performers = [], []
        stems = []
        for i, kind in enumerate(kinds):
            pos = [2.0 * i, 0.0, 0.0]
            parts.append(_instrument_points(kind, rng) + pos)
            audio = _tone(kind, seconds, rng)
            stems.append(audio)
            write_audio(folder / "stems" / f"p{i}.wav", audio, RATE)
            performers.append(
                {
                    "name": f"p{i}",
                    "instrument": kind,
                    "position": pos,
                    "stem": f"stems/p{i}.wav",
                    "object": i,
                }
            )
        chair = [1.0, 2.0, 0.0]
        parts.append(_instrument_points("none", rng) + chair)
        floor = np.concatenate(
            [rng.uniform([-1, -1], [2 * len(kinds), 3], (3000, 2)), np.zeros((3000, 1))], 1
        )
        _write_cloud(folder / "scene.ply", np.concatenate([*parts, floor]))
        labels = np.concatenate(
            [np.full(len(p), k) for k, p in enumerate(parts)] + [np.full(len(floor), -1)]
        )
        np.save(folder / "labels.npy", labels.astype(np.int32))
        write_audio(folder / "mixture.wav", np.sum(stems, axis=0), RATE)
        meta = {
            "sample_rate": RATE,
            "performers": performers,
            "distractors": [
                {"kind": "chair", "position": chair, "object": len(kinds), "points": 500},
                # Fully occluded: in the meta data, not in the cloud.
                {"kind": "music_stand", "position": [9.0, 9.0, 0.0], "object": 99, "points": 0},
            ],
        }
        (folder / "meta.json").write_text(json.dumps(meta))
    return root


def make_capture(root: Path, layouts: list[list[str]], *, own_clouds: bool, seed: int = 5) -> Path:
    """Examples in the real-capture layout: ``stems/<name>.wav`` found by name (no ``stem``
    key), no ``labels.npy``; with ``own_clouds`` each performer's cloud in
    ``performers/<name>.ply`` (cut with the labels before they are dropped) and no scene,
    otherwise the whole ``scene.ply`` and each performer's ``position``."""
    from pcsep_cli.io.pointcloud import read_cloud

    make_dataset(root, layouts, seed=seed)
    for folder in sorted(p for p in root.iterdir() if (p / "meta.json").is_file()):
        meta = json.loads((folder / "meta.json").read_text())
        labels = np.load(folder / "labels.npy")
        if own_clouds:
            xyz = read_cloud(folder / "scene.ply").xyz
            (folder / "performers").mkdir()
            for perf in meta["performers"]:
                _write_cloud(
                    folder / "performers" / f"{perf['name']}.ply", xyz[labels == perf["object"]]
                )
            (folder / "scene.ply").unlink()
        (folder / "labels.npy").unlink()
        for perf in meta["performers"]:
            del perf["stem"], perf["object"]
            if own_clouds:
                del perf["position"]
        meta.pop("distractors")
        (folder / "meta.json").write_text(json.dumps(meta))
    return root
