"""Render synthetic scenes to a PNG sheet, to look at what the generator makes.

Each row is one scene: what the sensor saw in colour, the same coloured by class, and a top
view coloured by class with the sensor and the sound sources marked. ``--gallery`` renders one
performer of every class instead (front-ish sensor, colour and class).

Usage: ``python -m pcsep_cli.synth.preview OUT.png [--scenes 4] [--seed 0] [--gallery]``
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pcsep_cli.synth.instruments import CLASSES

LABELS: tuple[str, ...] = (*CLASSES, "none")


def class_colours() -> dict[str, tuple[float, float, float]]:
    """A distinct RGB (0–1) per class and ``"none"``; the room is grey."""
    hexes = (
        "#e6194b #3cb44b #4363d8 #f58231 #911eb4 #42d4f4 #f032e6 #bfef45 #9a6324 #800000 #000075"
    ).split()
    return {
        k: tuple(int(h[i : i + 2], 16) / 255 for i in (1, 3, 5))
        for k, h in zip(LABELS, hexes, strict=True)
    }


def _point_colours(cloud, by_class: bool) -> np.ndarray:
    if not by_class:
        return cloud.rgb / 255.0
    table = class_colours()
    palette = np.array([table[o.label] for o in cloud.objects] + [(0.82, 0.82, 0.82)])
    return palette[np.where(cloud.object_index >= 0, cloud.object_index, len(cloud.objects))]


def _sensor_view(ax, cloud, by_class: bool, max_background: int = 60000) -> None:
    o, t = cloud.sensor_position, cloud.sensor_target
    f = (t - o) / np.linalg.norm(t - o)
    r = np.cross(f, [0.0, 0.0, 1.0])
    r /= np.linalg.norm(r)
    u = np.cross(r, f)
    rel = cloud.xyz - o
    depth = rel @ f
    ok = depth > 0.1
    bg = np.flatnonzero(ok & (cloud.object_index < 0))
    if len(bg) > max_background:  # the room only needs to be seen, not every point drawn
        bg = np.random.default_rng(0).choice(bg, max_background, replace=False)
    idx = np.concatenate([bg, np.flatnonzero(ok & (cloud.object_index >= 0))])
    idx = idx[np.argsort(-depth[idx])]  # far first, near on top
    colours = _point_colours(cloud, by_class)
    size = np.where(cloud.object_index[idx] >= 0, 0.8, 0.3)
    ax.scatter(
        (rel[idx] @ r) / depth[idx],
        (rel[idx] @ u) / depth[idx],
        c=colours[idx],
        s=size,
        marker=".",
        linewidths=0,
        rasterized=True,
    )
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def _top_view(ax, cloud) -> None:
    colours = _point_colours(cloud, True)
    obj = cloud.object_index >= 0
    order = np.argsort(cloud.xyz[:, 2])
    order = order[obj[order]]
    ax.scatter(
        cloud.xyz[order, 0],
        cloud.xyz[order, 1],
        c=colours[order],
        s=0.6,
        marker=".",
        linewidths=0,
        rasterized=True,
    )
    s = cloud.sensor_position
    ax.plot(s[0], s[1], "k^", ms=6)
    for o in cloud.objects:
        ax.plot(*o.source_position[:2], "kx", ms=4)
        ax.annotate(o.name, o.position[:2], fontsize=5, ha="center")
    ax.set_aspect("equal")
    ax.tick_params(labelsize=5)


def render_sheet(path: str | Path, clouds: Sequence, titles: Sequence[str] | None = None) -> Path:
    """Write a PNG with one row per scene: colour view, class view, top view.

    Args:
        path: the PNG to write.
        clouds: ``SceneCloud`` objects.
        titles: one caption per row (default: the scene's objects).

    Returns:
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    path = Path(path)
    n = len(clouds)
    fig, axes = plt.subplots(n, 3, figsize=(15, 4.2 * n), squeeze=False)
    for i, cloud in enumerate(clouds):
        caption = titles[i] if titles else ", ".join(o.name for o in cloud.objects)
        dist = np.linalg.norm(cloud.sensor_position[:2] - cloud.sensor_target[:2])
        counts = np.bincount(
            cloud.object_index[cloud.object_index >= 0], minlength=len(cloud.objects)
        )
        _sensor_view(axes[i, 0], cloud, by_class=False)
        axes[i, 0].set_title(
            f"{caption}\nsensor {dist:.1f} m, h {cloud.sensor_position[2]:.1f} m,"
            f" {len(cloud.xyz)} pts",
            fontsize=7,
        )
        _sensor_view(axes[i, 1], cloud, by_class=True)
        axes[i, 1].set_title("points per object: " + " ".join(str(c) for c in counts), fontsize=7)
        _top_view(axes[i, 2], cloud)
        axes[i, 2].set_title("top view (^ sensor, x sources)", fontsize=7)
    table = class_colours()
    fig.legend(
        handles=[Patch(color=table[k], label=k) for k in LABELS],
        loc="lower center",
        ncol=11,
        fontsize=8,
    )
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def render_gallery(path: str | Path, clouds: Sequence, columns: int = 4) -> Path:
    """Write a PNG with each cloud's colour and class sensor views side by side, ``columns``
    clouds per row (for single performers).

    Args:
        path: the PNG to write.
        clouds: ``SceneCloud`` objects, one performer or distractor each.
        columns: clouds per row.

    Returns:
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    rows = -(-len(clouds) // columns)
    fig, axes = plt.subplots(rows, 2 * columns, figsize=(4 * columns, 3.2 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, cloud in enumerate(clouds):
        r, c = divmod(i, columns)
        obj = cloud.objects[0]
        keep = cloud.object_index == 0
        dist = np.linalg.norm(cloud.sensor_position - obj.position - [0, 0, 1.0])
        _sensor_view(axes[r, 2 * c], cloud, by_class=False)
        _sensor_view(axes[r, 2 * c + 1], cloud, by_class=True)
        params = ", ".join(
            f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
            for k, v in list(obj.params.items())[:3]
        )
        axes[r, 2 * c].set_title(
            f"{obj.name}: {int(keep.sum())} pts at {dist:.1f} m\n{params}", fontsize=6
        )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def demo_scenes(seed: int, n: int) -> list:
    """``n`` scenes of 1–5 performers with distractors, from ``seed``."""
    from pcsep_cli.synth.scene import DISTRACTORS, build_scene

    rng = np.random.default_rng(seed)
    clouds = []
    for i in range(n):
        k = int(rng.integers(1, 6))
        instruments = [str(c) for c in rng.choice(CLASSES, k)]
        distractors = [str(d) for d in rng.choice(DISTRACTORS, int(rng.integers(0, 3)))]
        clouds.append(build_scene(rng, instruments, distractors=distractors, walls=i % 2 == 0))
    return clouds


def gallery(seed: int) -> list:
    """One performer of every class, and one of each distractor, alone."""
    from pcsep_cli.synth.scene import DISTRACTORS, performer_cloud

    rng = np.random.default_rng(seed)
    clouds = [performer_cloud(rng, c, body_id=seed * 100 + i) for i, c in enumerate(CLASSES)]
    clouds += [
        performer_cloud(rng, "none", body_id=seed * 100 + 50 + i, distractor=d)
        for i, d in enumerate(DISTRACTORS)
    ]
    return clouds


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry: render a sheet and print its path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="PNG to write")
    parser.add_argument("--scenes", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gallery", action="store_true", help="one performer of each class")
    args = parser.parse_args(argv)
    if args.gallery:
        print(render_gallery(args.out, gallery(args.seed)))
    else:
        print(render_sheet(args.out, demo_scenes(args.seed, args.scenes)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
