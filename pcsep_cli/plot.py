"""Draw a scene and its performers to a PNG (``pcsep inspect CLOUD --plot FILE.png``).

Two panels in the scene's floor frame (floor at ``z = 0``, see :func:`pcsep_cli.scene.floor_frame`):
a top view (x–y) and the view of the sensor: a perspective from ``sensor_position`` when it is
known, otherwise a front view (x–z) as seen from the -y side. Points are coloured by their RGB,
or by height when the cloud has no colours; each performer is boxed and labelled with its
instrument and confidence. Distractors (instrument ``none``) get a dashed grey box.

matplotlib is imported only here, with the Agg canvas (no display, no pyplot global state), so
plotting works on headless machines and from several threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np

from pcsep_cli.errors import PcsepError
from pcsep_cli.io.atomic import atomic_path, output_error

if TYPE_CHECKING:  # pragma: no cover
    from pcsep_cli.io.pointcloud import PointCloud
    from pcsep_cli.scene import Performer

__all__ = ["plot_scene"]

_NONE = "none"
_MAX_HEIGHT = 2.5  # m, top of the height colour scale
_Box = tuple[np.ndarray, np.ndarray]  # (min [3], max [3]) in the floor frame


def plot_scene(
    cloud: PointCloud,
    performers: Sequence[Performer],
    labels: Sequence[tuple[str, float]] | None,
    out_png: str | PathLike[str],
    sensor_position: np.ndarray | None = None,
    *,
    size: tuple[int, int] = (1600, 800),
    max_points: int = 200_000,
    overwrite: bool = True,
) -> None:
    """Write a PNG with a top view and a sensor view of the scene, performers boxed.

    Args:
        cloud: the scene; ``xyz`` float64 ``[N, 3]``, ``rgb`` uint8 ``[N, 3]`` or ``None``.
        performers: from :func:`pcsep_cli.scene.find_performers`, in that order.
        labels: ``(instrument, confidence)`` per performer, or ``None`` to number them.
        out_png: the PNG to write (atomically: a temporary file renamed into place).
        sensor_position: ``[3]`` in the cloud's coordinates; the second panel is then the
            perspective the sensor had, else a front view from the -y side.
        size: ``(width, height)`` of the image in pixels.
        max_points: at most this many points are drawn (an even subsample).
        overwrite: replace ``out_png`` if it exists.

    Raises:
        ValueError: ``labels`` and ``performers`` differ in length, ``sensor_position`` is not
            ``[3]``, or ``cloud.xyz`` is not ``[N, 3]``.
        PcsepError: matplotlib is missing, or ``out_png`` cannot be written.
    """
    xyz = np.asarray(cloud.xyz)
    if xyz.ndim != 2 or xyz.shape[1] != 3 or len(xyz) < 3:
        raise ValueError(f"cloud.xyz must be [N, 3] with N >= 3, got {list(xyz.shape)}")
    if labels is not None and len(labels) != len(performers):
        raise ValueError(f"{len(labels)} labels given for {len(performers)} performers")
    sensor = None
    if sensor_position is not None:
        sensor = np.asarray(sensor_position, dtype=np.float64)
        if sensor.shape != (3,):
            raise ValueError(f"sensor_position must be [3], got {list(sensor.shape)}")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise PcsepError(
            "matplotlib is needed to draw plots", path=out_png, hint="pip install matplotlib"
        ) from err

    from pcsep_cli.scene import floor_frame

    frame = performers[0].frame if performers else floor_frame(cloud)
    step = max(1, -(-len(xyz) // max_points))
    pts = _apply(frame, xyz[::step])
    rgb = getattr(cloud, "rgb", None)
    colours = _colours(pts, None if rgb is None else rgb[::step])
    foreground = np.zeros(len(xyz), dtype=bool)
    for p in performers:
        if p.index.size and (p.index.min() < 0 or p.index.max() >= len(xyz)):
            raise ValueError(f"a performer's index reaches past the cloud's {len(xyz)} points")
        foreground[p.index] = True
    foreground = foreground[::step]
    # Background faded towards white and drawn small, so the performers stand out.
    colours[~foreground, :3] = 0.55 + 0.45 * colours[~foreground, :3]
    colours[:, 3] = np.where(foreground, 1.0, 0.5)
    texts = _texts(performers, labels)
    boxes = [_box(_apply(frame, p.points)) for p in performers]
    eye = None if sensor is None else _apply(frame, sensor[None])[0]

    dpi = 100
    fig = Figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    top, side = fig.subplots(1, 2)
    _top_view(top, pts, colours, boxes, texts, eye)
    if eye is None:
        _front_view(side, pts, colours, boxes, texts)
    else:
        target = np.mean([b[0] + b[1] for b in boxes], axis=0) / 2 if boxes else pts.mean(axis=0)
        _sensor_view(side, pts, colours, boxes, texts, eye, target)
    name = getattr(cloud, "source", None) or "cloud"
    fig.suptitle(f"{name}: {len(performers)} performer(s), {len(xyz):,} points (floor frame)")
    fig.tight_layout()
    try:
        with atomic_path(out_png, overwrite=overwrite) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
    except OSError as err:
        raise output_error(err, out_png) from err


def _apply(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    return p @ t[:3, :3].T + t[:3, 3]


def _colours(pts: np.ndarray, rgb: np.ndarray | None) -> np.ndarray:
    """RGBA ``[N, 4]`` float in [0, 1]: the scan's colours, else height on viridis."""
    if rgb is not None:
        return np.c_[rgb / 255.0, np.ones(len(rgb))]
    from matplotlib import colormaps

    return colormaps["viridis"](np.clip(pts[:, 2] / _MAX_HEIGHT, 0.0, 1.0))


def _texts(
    performers: Sequence[Performer], labels: Sequence[tuple[str, float]] | None
) -> list[tuple[str, bool]]:
    """``(text, is_distractor)`` per performer."""
    if labels is None:
        return [(f"#{i + 1}", False) for i in range(len(performers))]
    return [(f"{name} {conf:.2f}", name == _NONE) for name, conf in labels]


def _box(p: np.ndarray) -> _Box:
    return p.min(axis=0), p.max(axis=0)


def _style(i: int, distractor: bool) -> dict[str, Any]:
    from matplotlib import colormaps

    if distractor:
        return {"edgecolor": "0.4", "linestyle": "--"}
    return {"edgecolor": colormaps["tab10"](i % 10), "linestyle": "-"}


def _scatter(ax: Any, u: np.ndarray, v: np.ndarray, colours: np.ndarray) -> None:
    sizes = np.where(colours[:, 3] < 1.0, 0.6, 2.0)  # background small, performers larger
    ax.scatter(u, v, c=colours, s=sizes, marker=".", linewidths=0, rasterized=True)
    ax.set_aspect("equal", adjustable="box")
    ax.grid(True, linewidth=0.3, alpha=0.5)


def _limits(ax: Any, u: np.ndarray, v: np.ndarray, pad: float) -> None:
    """Axis limits around the bulk of the points (0.1–99.9 %), plus ``pad`` on each side."""
    if u.size:
        ax.set_xlim(*(np.quantile(u, [0.001, 0.999]) + [-pad, pad]))
        ax.set_ylim(*(np.quantile(v, [0.001, 0.999]) + [-pad, pad]))


def _label(ax: Any, x: float, y: float, text: str, style: dict[str, Any]) -> None:
    ax.annotate(
        text,
        (x, y),
        xytext=(0, 3),
        textcoords="offset points",
        fontsize=9,
        color="black",
        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": style["edgecolor"], "alpha": 0.85},
    )


def _rect(ax: Any, u0: float, v0: float, u1: float, v1: float, style: dict[str, Any]) -> None:
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((u0, v0), u1 - u0, v1 - v0, fill=False, linewidth=1.5, **style))


def _top_view(
    ax: Any,
    pts: np.ndarray,
    colours: np.ndarray,
    boxes: list[_Box],
    texts: list[tuple[str, bool]],
    eye: np.ndarray | None,
) -> None:
    order = np.lexsort((pts[:, 2], colours[:, 3]))  # performers, then higher points, on top
    _scatter(ax, pts[order, 0], pts[order, 1], colours[order])
    _limits(ax, pts[:, 0], pts[:, 1], 0.3)
    for i, ((lo, hi), (text, distractor)) in enumerate(zip(boxes, texts, strict=True)):
        style = _style(i, distractor)
        _rect(ax, lo[0], lo[1], hi[0], hi[1], style)
        _label(ax, lo[0], hi[1], text, style)
    if eye is not None:
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        ax.set_xlim(min(x0, eye[0] - 0.3), max(x1, eye[0] + 0.3))
        ax.set_ylim(min(y0, eye[1] - 0.3), max(y1, eye[1] + 0.3))
        ax.plot([eye[0]], [eye[1]], marker="^", color="red", markersize=9)
        ax.annotate("sensor", (eye[0], eye[1]), xytext=(6, -10), textcoords="offset points")
    ax.set_title("top view")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")


def _front_view(
    ax: Any,
    pts: np.ndarray,
    colours: np.ndarray,
    boxes: list[_Box],
    texts: list[tuple[str, bool]],
) -> None:
    order = np.argsort(-pts[:, 1])  # far (large y) first so near points cover them
    _scatter(ax, pts[order, 0], pts[order, 2], colours[order])
    _limits(ax, pts[:, 0], pts[:, 2], 0.3)
    for i, ((lo, hi), (text, distractor)) in enumerate(zip(boxes, texts, strict=True)):
        style = _style(i, distractor)
        _rect(ax, lo[0], lo[2], hi[0], hi[2], style)
        _label(ax, lo[0], hi[2], text, style)
    ax.set_title("front view (from -y)")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("z (m)")


def _sensor_view(
    ax: Any,
    pts: np.ndarray,
    colours: np.ndarray,
    boxes: list[_Box],
    texts: list[tuple[str, bool]],
    eye: np.ndarray,
    target: np.ndarray,
) -> None:
    """Pinhole view from ``eye`` towards ``target``, level (z up), in tangent units."""
    forward = target - eye
    forward[2] = 0.0
    if np.linalg.norm(forward) < 1e-9:
        forward = np.array([0.0, 1.0, 0.0])
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])

    def project(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rel = p - eye
        depth = rel @ forward
        safe = np.maximum(depth, 1e-6)
        return rel @ right / safe, rel[:, 2] / safe, depth

    u, v, depth = project(pts)
    visible = depth > 0.2
    order = np.flatnonzero(visible)[np.argsort(-depth[visible])]  # painter's order
    _scatter(ax, u[order], v[order], colours[order])
    shown: list[tuple[float, float]] = []
    for i, ((lo, hi), (text, distractor)) in enumerate(zip(boxes, texts, strict=True)):
        corners = np.array(
            [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
        )
        cu, cv, cd = project(corners)
        if (cd <= 0.2).any():
            continue  # the box reaches behind the sensor
        style = _style(i, distractor)
        _rect(ax, cu.min(), cv.min(), cu.max(), cv.max(), style)
        shown += [(cu.min(), cv.min()), (cu.max(), cv.max())]
        _label(ax, cu.min(), cv.max(), text, style)
    if shown:  # frame the performers, not the floor at the sensor's feet
        lo, hi = np.min(shown, axis=0), np.max(shown, axis=0)
        pad = 0.25 * (hi - lo).max()
        ax.set_xlim(lo[0] - pad, hi[0] + pad)
        ax.set_ylim(lo[1] - pad, hi[1] + pad)
    else:
        _limits(ax, u[order], v[order], 0.0)
    ax.set_title("sensor view")
    ax.set_xlabel("right (tan)")
    ax.set_ylabel("up (tan)")
