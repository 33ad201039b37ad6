"""Make the example that ships in ``pcsep_cli/examples/quartet/`` (README's first command).

One synthetic scene of :mod:`pcsep_cli.synth` (test-split music, so no model was trained on
it): four performers, 9 s of 44.1 kHz stereo. The mixture is stored as 16-bit FLAC and the
scene as binary PLY with float32 coordinates, thinned to at most ``max_points`` points (floor
and walls kept, so :func:`pcsep_cli.scene.find_performers` has its usual work to do), with a
``meta.json`` holding the true instruments and positions. Run::

    python -m pcsep_cli.synth.shipped_example pcsep_cli/examples/quartet
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["make_shipped_example"]

SEED = 7
MAX_POINTS = 80_000


def _write_ply32(path: Path, xyz: np.ndarray, rgb: np.ndarray | None) -> None:
    from plyfile import PlyData, PlyElement

    from pcsep_cli.io.atomic import atomic_path

    fields = [("x", "f4"), ("y", "f4"), ("z", "f4")]
    if rgb is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    vertex = np.empty(len(xyz), dtype=fields)
    for k, name in enumerate("xyz"):
        vertex[name] = xyz[:, k]
    if rgb is not None:
        for k, name in enumerate(("red", "green", "blue")):
            vertex[name] = rgb[:, k]
    with atomic_path(path, overwrite=True) as tmp:
        PlyData([PlyElement.describe(vertex, "vertex")], text=False).write(str(tmp))


def make_shipped_example(
    out: str | Path, *, seed: int = SEED, max_points: int = MAX_POINTS, duration_s: float = 9.0
) -> dict:
    """Write ``mixture.flac``, ``scene.ply`` and ``meta.json`` into ``out`` (created).

    Returns:
        The ``meta.json`` written.
    """
    from pcsep_cli.io.audio import read_audio
    from pcsep_cli.io.audio_write import write_audio
    from pcsep_cli.io.pointcloud import read_cloud
    from pcsep_cli.synth.dataset import write_dataset

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        write_dataset(
            Path(tmp) / "data",
            examples=1,
            seed=seed,
            split_fractions=(0.0, 0.0, 1.0),
            performers=(4, 4),
            distractor_prob=0.0,
            duration_s=duration_s,
            sample_rate=44100,
            mics="stereo",
        )
        example = next(p for p in (Path(tmp) / "data").rglob("meta.json") if "pool" not in str(p))
        folder = example.parent
        mix, sr = read_audio(folder / "mixture.wav")
        write_audio(out / "mixture.flac", mix, sr, bits="16", overwrite=True)
        cloud = read_cloud(folder / "scene.ply")
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.permutation(len(cloud.xyz))[:max_points])
        rgb = None if cloud.rgb is None else cloud.rgb[keep]
        _write_ply32(out / "scene.ply", cloud.xyz[keep], rgb)
        meta = json.loads(example.read_text())
        shutil.rmtree(folder, ignore_errors=True)
    small = {
        "sample_rate": sr,
        "channels": int(mix.shape[0]),
        "duration_s": duration_s,
        "points": int(len(keep)),
        "performers": [
            {"instrument": p["instrument"], "position": p["position"]} for p in meta["performers"]
        ],
        "source": meta["source"],
        "piece": meta["piece"],
        "made_with": f"python -m pcsep_cli.synth.shipped_example {out} (seed {seed})",
    }
    (out / "meta.json").write_text(json.dumps(small, indent=1) + "\n")
    return small


if __name__ == "__main__":  # pragma: no cover
    make_shipped_example(sys.argv[1] if len(sys.argv) > 1 else "pcsep_cli/examples/quartet")
