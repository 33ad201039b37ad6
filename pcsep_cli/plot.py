"""Draw a scene and its performers to a PNG (``pcsep inspect CLOUD --plot FILE.png``).

Everything is drawn in the cloud's own coordinates, the frame of ``pcsep inspect``'s table and
of ``manifest.json`` (a performer's position there is the cross on the plot). Two panels: a top
view (x–y, metres) and the view of the sensor: a perspective from ``sensor_position`` when it
is known (angles in degrees), otherwise a front view (x–z, metres) as seen from the -y side.
Points are coloured by their RGB, or by height above the floor when the cloud has no colours;
each performer is boxed, marked at its position and labelled with its number (the table's),
instrument and confidence. Distractors (instrument ``none``) get a dashed grey box. Labels are
moved apart where they would overlap, with a thin line back to what they name.

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
    from matplotlib.figure import Figure

    from pcsep_cli.io.pointcloud import PointCloud
    from pcsep_cli.scene import Performer

__all__ = ["plot_scene", "scene_figure"]

_NONE = "none"
_MAX_HEIGHT = 2.5  # m, top of the height colour scale
_LABEL_GAP = 2.0  # pixels between two labels moved apart
_Box = tuple[np.ndarray, np.ndarray]  # (min [3], max [3]) in the cloud's coordinates


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
    """Write a PNG of the scene: a top view and a front view (or the sensor's), performers boxed.

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
    fig = scene_figure(
        cloud, performers, labels, sensor_position, size=size, max_points=max_points, path=out_png
    )
    try:
        with atomic_path(out_png, overwrite=overwrite) as tmp:
            fig.savefig(tmp, format="png", dpi=fig.dpi)
    except OSError as err:
        raise output_error(err, out_png) from err


def scene_figure(
    cloud: PointCloud,
    performers: Sequence[Performer],
    labels: Sequence[tuple[str, float]] | None,
    sensor_position: np.ndarray | None = None,
    *,
    size: tuple[int, int] = (1600, 800),
    max_points: int = 200_000,
    path: str | PathLike[str] | None = None,
) -> Figure:
    """The figure :func:`plot_scene` saves, laid out (labels placed), on an Agg canvas.

    Each performer's position is a line artist with ``gid`` ``"performer <n>"`` (n from 1, the
    table's numbering) in each panel, its box a rectangle with the same ``gid`` and its label an
    annotation with the same ``gid``: what is drawn can be read back from the figure.

    Args:
        cloud, performers, labels, sensor_position, size, max_points: as :func:`plot_scene`.
        path: named in the error when matplotlib is missing.

    Raises:
        ValueError, PcsepError: as :func:`plot_scene`.
    """
    xyz = np.asarray(cloud.xyz, dtype=np.float64)
    if xyz.ndim != 2 or xyz.shape[1] != 3 or len(xyz) < 3:
        raise ValueError(f"cloud.xyz must be [N, 3] with N >= 3, got {list(xyz.shape)}")
    if labels is not None and len(labels) != len(performers):
        raise ValueError(f"{len(labels)} labels given for {len(performers)} performers")
    eye = None
    if sensor_position is not None:
        eye = np.asarray(sensor_position, dtype=np.float64)
        if eye.shape != (3,):
            raise ValueError(f"sensor_position must be [3], got {list(eye.shape)}")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise PcsepError(
            "matplotlib is needed to draw plots", path=path, hint="pip install matplotlib"
        ) from err

    from pcsep_cli.scene import floor_frame

    frame = performers[0].frame if performers else floor_frame(cloud)
    step = max(1, -(-len(xyz) // max_points))
    pts = xyz[::step]
    rgb = getattr(cloud, "rgb", None)
    height = _apply(frame, pts)[:, 2]  # above the floor: for the colours only
    colours = _colours(height, None if rgb is None else rgb[::step])
    foreground = np.zeros(len(xyz), dtype=bool)
    for p in performers:
        if p.index.size and (p.index.min() < 0 or p.index.max() >= len(xyz)):
            raise ValueError(f"a performer's index reaches past the cloud's {len(xyz)} points")
        foreground[p.index] = True
    foreground = foreground[::step]
    # Background faded towards white and drawn small, so the performers stand out.
    colours[~foreground, :3] = 0.55 + 0.45 * colours[~foreground, :3]
    colours[:, 3] = np.where(foreground, 1.0, 0.5)
    marks = [
        _Mark(i, text, distractor, _box(p.points), np.asarray(p.position, dtype=np.float64))
        for i, (p, (text, distractor)) in enumerate(
            zip(performers, _texts(performers, labels), strict=True)
        )
    ]

    dpi = 100
    fig = Figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    top, side = fig.subplots(1, 2)
    _top_view(top, pts, colours, marks, eye)
    if eye is None:
        _front_view(side, pts, colours, marks)
    else:
        boxes = [m.box for m in marks]
        target = np.mean([b[0] + b[1] for b in boxes], axis=0) / 2 if boxes else pts.mean(axis=0)
        _sensor_view(side, pts, colours, marks, eye, target)
    name = getattr(cloud, "source", None) or "cloud"
    fig.suptitle(
        f"{name}\n{len(performers)} performer(s), {len(xyz):,} points, in the cloud's "
        "coordinates (as in `pcsep inspect` and manifest.json)"
    )
    fig.tight_layout()
    fig.draw_without_rendering()  # sets the equal-aspect axes' final boxes
    _separate_labels(fig, canvas.get_renderer())
    return fig


class _Mark:
    """What is drawn for one performer."""

    def __init__(self, i: int, text: str, distractor: bool, box: _Box, pos: np.ndarray) -> None:
        self.gid = f"performer {i + 1}"
        self.text, self.box, self.pos = text, box, pos
        self.style = _style(i, distractor)


def _apply(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    return p @ t[:3, :3].T + t[:3, 3]


def _colours(height: np.ndarray, rgb: np.ndarray | None) -> np.ndarray:
    """RGBA ``[N, 4]`` float in [0, 1]: the scan's colours, else height on viridis."""
    if rgb is not None:
        return np.c_[rgb / 255.0, np.ones(len(rgb))]
    from matplotlib import colormaps

    return colormaps["viridis"](np.clip(height / _MAX_HEIGHT, 0.0, 1.0))


def _texts(
    performers: Sequence[Performer], labels: Sequence[tuple[str, float]] | None
) -> list[tuple[str, bool]]:
    """``(text, is_distractor)`` per performer, numbered as ``pcsep inspect``'s table."""
    if labels is None:
        return [(f"{i + 1}", False) for i in range(len(performers))]
    return [
        (f"{i + 1} {name} {100 * conf:.0f}%", name == _NONE)
        for i, (name, conf) in enumerate(labels)
    ]


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


def _draw(ax: Any, mark: _Mark, u: tuple[float, float], v: tuple[float, float],
          at: tuple[float, float]) -> None:  # fmt: skip
    """A performer's box ``u × v``, its position ``at`` (a cross) and its label."""
    from matplotlib.patches import Rectangle

    colour = mark.style["edgecolor"]
    ax.add_patch(
        Rectangle((u[0], v[0]), u[1] - u[0], v[1] - v[0], fill=False, linewidth=1.5,
                  gid=mark.gid, **mark.style)
    )  # fmt: skip
    ax.plot([at[0]], [at[1]], marker="x", markersize=7, mew=2, color=colour, gid=mark.gid)
    ax.annotate(
        mark.text,
        (u[0], v[1]),
        xytext=(0, 3),
        textcoords="offset points",
        fontsize=9,
        color="black",
        gid=mark.gid,
        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": colour, "alpha": 0.85},
        arrowprops={"arrowstyle": "-", "color": colour, "linewidth": 0.6, "shrinkA": 0,
                    "shrinkB": 0},
    )  # fmt: skip


def _separate_labels(fig: Any, renderer: Any) -> None:
    """Move labels up, lowest first, until none overlaps another (in pixels, after layout).

    Each label starts just above the top left corner of its box; one that would cover a label
    already placed goes just above it, and its line still points at its box. Greedy and
    deterministic; a handful of labels per panel needs nothing more.
    """
    from matplotlib.text import Annotation

    notes = [a for ax in fig.axes for a in ax.texts if isinstance(a, Annotation)]
    notes.sort(key=lambda a: tuple(_label_box(a, renderer).p0))
    placed: list[Any] = []
    points_per_pixel = 72.0 / fig.dpi
    for note in notes:
        for _ in range(len(notes) + 1):
            box = _label_box(note, renderer)
            hit = next((p for p in placed if box.overlaps(p)), None)
            if hit is None:
                break
            dx, dy = note.xyann
            note.xyann = (dx, dy + (hit.y1 - box.y0 + _LABEL_GAP) * points_per_pixel)
        placed.append(_label_box(note, renderer))


def _label_box(note: Any, renderer: Any) -> Any:
    """The pixels of a label's text with its rounded box (not its line), as drawn."""
    from matplotlib.text import Text

    note.update_positions(renderer)
    pad = 0.0
    patch = note.get_bbox_patch()
    if patch is not None:  # the box's pad is in units of the font size, in points
        pad = patch.get_boxstyle().pad * note.get_size() * note.figure.dpi / 72.0
    return Text.get_window_extent(note, renderer).padded(pad + 1.0)


def _top_view(
    ax: Any, pts: np.ndarray, colours: np.ndarray, marks: list[_Mark], eye: np.ndarray | None
) -> None:
    order = np.lexsort((pts[:, 2], colours[:, 3]))  # performers, then higher points, on top
    _scatter(ax, pts[order, 0], pts[order, 1], colours[order])
    _limits(ax, pts[:, 0], pts[:, 1], 0.3)
    for m in marks:
        lo, hi = m.box
        _draw(ax, m, (lo[0], hi[0]), (lo[1], hi[1]), (m.pos[0], m.pos[1]))
    if eye is not None:
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        ax.set_xlim(min(x0, eye[0] - 0.3), max(x1, eye[0] + 0.3))
        ax.set_ylim(min(y0, eye[1] - 0.3), max(y1, eye[1] + 0.3))
        ax.plot([eye[0]], [eye[1]], marker="^", color="red", markersize=9, gid="sensor")
        ax.annotate("sensor", (eye[0], eye[1]), xytext=(6, -10), textcoords="offset points")
    ax.set_title("top view")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")


def _front_view(ax: Any, pts: np.ndarray, colours: np.ndarray, marks: list[_Mark]) -> None:
    order = np.argsort(-pts[:, 1])  # far (large y) first so near points cover them
    _scatter(ax, pts[order, 0], pts[order, 2], colours[order])
    _limits(ax, pts[:, 0], pts[:, 2], 0.3)
    for m in marks:
        lo, hi = m.box
        _draw(ax, m, (lo[0], hi[0]), (lo[2], hi[2]), (m.pos[0], m.pos[2]))
    ax.set_title("front view (from -y)")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("z (m)")


def _sensor_view(
    ax: Any,
    pts: np.ndarray,
    colours: np.ndarray,
    marks: list[_Mark],
    eye: np.ndarray,
    target: np.ndarray,
) -> None:
    """The view from ``eye`` towards ``target``, level (z up): each point at its angles (°)
    right of and above the line of sight."""
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
        return (
            np.degrees(np.arctan(rel @ right / safe)),
            np.degrees(np.arctan(rel[:, 2] / safe)),
            depth,
        )

    u, v, depth = project(pts)
    visible = depth > 0.2
    order = np.flatnonzero(visible)[np.argsort(-depth[visible])]  # painter's order
    _scatter(ax, u[order], v[order], colours[order])
    shown: list[tuple[float, float]] = []
    for m in marks:
        lo, hi = m.box
        corners = np.array(
            [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
        )
        cu, cv, cd = project(corners)
        pu, pv, pd = project(m.pos[None])
        if (cd <= 0.2).any() or pd[0] <= 0.2:
            continue  # the box reaches behind the sensor
        _draw(ax, m, (cu.min(), cu.max()), (cv.min(), cv.max()), (pu[0], pv[0]))
        shown += [(cu.min(), cv.min()), (cu.max(), cv.max())]
    if shown:  # frame the performers, not the floor at the sensor's feet
        lo, hi = np.min(shown, axis=0), np.max(shown, axis=0)
        pad = 0.25 * (hi - lo).max()
        ax.set_xlim(lo[0] - pad, hi[0] + pad)
        ax.set_ylim(lo[1] - pad, hi[1] + pad)
    else:
        _limits(ax, u[order], v[order], 0.0)
    ax.set_title("sensor view")
    ax.set_xlabel("right of the line of sight (°)")
    ax.set_ylabel("above the sensor (°)")
