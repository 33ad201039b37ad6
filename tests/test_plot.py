"""The scene plot: a real PNG of the asked size, with the scene drawn and performers boxed, in
the coordinates of ``pcsep inspect``'s table and the manifest, labels apart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.image import imread
from matplotlib.text import Annotation
from typer.testing import CliRunner

from pcsep_cli.cli import app
from pcsep_cli.errors import OutputExistsError, PcsepError
from pcsep_cli.io.pointcloud import PointCloud, read_cloud, write_ply
from pcsep_cli.plot import plot_scene, scene_figure
from pcsep_cli.scene import Performer, find_performers


def _scene(rgb: bool) -> tuple[PointCloud, list[Performer]]:
    """A 6 x 4 m grey floor with two box-shaped 'performers', pure red, 2 m apart."""
    rng = np.random.default_rng(0)
    floor = rng.uniform([-3, 0, 0], [3, 4, 0], size=(20000, 3))
    people = []
    for x in (-1.0, 1.0):
        body = rng.uniform([x - 0.25, 1.8, 0.0], [x + 0.25, 2.2, 1.7], size=(4000, 3))
        people.append(body)
    xyz = np.concatenate([floor, *people]) + rng.normal(0, 0.003, (28000, 3))
    colours = None
    if rgb:
        colours = np.full((len(xyz), 3), 128, dtype=np.uint8)
        colours[len(floor) :] = (255, 0, 0)
    cloud = PointCloud(xyz=xyz, rgb=colours)
    return cloud, find_performers(cloud)


def _read(path: Path) -> np.ndarray:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return (imread(path)[..., :3] * 255).round().astype(np.int64)


def _has_colour(image: np.ndarray, rgb: tuple[int, int, int], tol: int = 12) -> int:
    return int(np.sum(np.abs(image - np.array(rgb)).max(axis=-1) <= tol))


def test_top_and_front_view_png(tmp_path: Path) -> None:
    cloud, performers = _scene(rgb=True)
    assert len(performers) == 2
    out = tmp_path / "scene.png"
    plot_scene(cloud, performers, [("violin", 0.97), ("none", 0.55)], out)
    image = _read(out)
    assert image.shape == (800, 1600, 3)
    assert image.std() > 20  # not blank
    assert _has_colour(image, (255, 0, 0), tol=40) > 200  # the performers' own colours
    first_box = tuple(int(round(255 * c)) for c in colormaps["tab10"](0)[:3])
    assert _has_colour(image, first_box) > 100  # the first performer is boxed in its colour
    assert [p.name for p in tmp_path.iterdir()] == ["scene.png"]  # no temporary file left


def test_sensor_view_and_custom_size(tmp_path: Path) -> None:
    cloud, performers = _scene(rgb=False)
    front, sensor = tmp_path / "front.png", tmp_path / "sensor.png"
    plot_scene(cloud, performers, None, front, size=(900, 500))
    plot_scene(cloud, performers, None, sensor, np.array([0.0, -3.0, 1.5]), size=(900, 500))
    a, b = _read(front), _read(sensor)
    assert a.shape == b.shape == (500, 900, 3)
    assert a.std() > 20 and b.std() > 20
    assert np.mean(np.any(a != b, axis=-1)) > 0.05  # the right panel differs
    # Colours by height (viridis) when the cloud has none: its top end shows on the heads.
    assert _has_colour(a, tuple(int(round(255 * c)) for c in colormaps["viridis"](0.68)[:3])) > 0


def test_bad_arguments(tmp_path: Path) -> None:
    cloud, performers = _scene(rgb=False)
    out = tmp_path / "x.png"
    with pytest.raises(ValueError, match="1 labels given for 2 performers"):
        plot_scene(cloud, performers, [("violin", 0.9)], out)
    with pytest.raises(ValueError, match=r"sensor_position must be \[3\]"):
        plot_scene(cloud, performers, None, out, np.zeros(2))
    with pytest.raises(PcsepError, match="output folder does not exist"):
        plot_scene(cloud, performers, None, tmp_path / "missing" / "x.png")
    out.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError):
        plot_scene(cloud, performers, None, out, overwrite=False)
    assert out.read_bytes() == b"keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]  # no temporary file left


def _turned(cloud: PointCloud, degrees: float, shift: tuple[float, float, float]) -> PointCloud:
    """The same scene turned about z and moved: its floor frame is not its own coordinates."""
    a = np.radians(degrees)
    turn = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
    return PointCloud(xyz=cloud.xyz @ turn.T + np.array(shift), rgb=cloud.rgb)


def _drawn(fig: Figure, gid: str) -> tuple[list[np.ndarray], list[Any], list[Any]]:
    """The crosses, boxes and labels drawn for ``gid`` in each panel."""
    crosses, boxes, labels = [], [], []
    for ax in fig.axes[:2]:
        crosses += [np.r_[ln.get_xdata(), ln.get_ydata()] for ln in ax.lines if ln.get_gid() == gid]
        boxes += [p for p in ax.patches if p.get_gid() == gid]
        labels += [t for t in ax.texts if t.get_gid() == gid]
    return crosses, boxes, labels


def test_plotted_positions_are_the_table_s(tmp_path: Path) -> None:
    """The plot draws in the cloud's own coordinates, as ``pcsep inspect`` and the manifest
    give them (it drew in the floor frame, up to a metre away)."""
    scene, _ = _scene(rgb=True)
    cloud = _turned(scene, 30.0, (100.0, -50.0, 2.0))
    path = tmp_path / "scene.ply"
    write_ply(path, cloud)
    report = CliRunner().invoke(
        app, ["inspect", str(path), "--json", "--plot", str(tmp_path / "s.png")]
    )
    assert report.exit_code == 0, report.output
    table = [p["position"] for p in json.loads(report.stdout)["performers"]]
    read = read_cloud(path)
    performers = find_performers(read)
    fig = scene_figure(read, performers, None)
    assert len(performers) == len(table) == 2
    for i, perf in enumerate(performers):
        crosses, boxes, labels = _drawn(fig, f"performer {i + 1}")
        top, front = crosses
        assert np.allclose(top, table[i][:2], atol=1e-4) and np.allclose(
            front, table[i][::2], atol=1e-4
        )
        assert np.array_equal(top, perf.position[:2])  # exactly what the manifest is given
        lo, hi = perf.bbox
        assert np.allclose(boxes[0].get_xy(), lo[:2]) and np.isclose(
            boxes[0].get_width(), hi[0] - lo[0]
        )
        assert [t.get_text() for t in labels] == [f"{i + 1}"] * 2  # numbered as the table
    axes = [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes[:2]]
    assert axes == [("x (m)", "y (m)"), ("x (m)", "z (m)")]
    # The floor frame is far from these coordinates: a plot in it would not match.
    floor = _apply_frame(performers[0].frame, performers[0].position)
    assert np.linalg.norm(floor[:2] - performers[0].position[:2]) > 1.0


def test_help_and_readme_name_the_panels_inspect_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    """``inspect`` knows no sensor position, so it draws a top and a front view, both in
    metres; its help and the README promised a "sensor view in degrees"."""
    cloud, performers = _scene(rgb=False)
    fig = scene_figure(cloud, performers, None)  # as `pcsep inspect --plot` calls it
    panels = [(ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes[:2]]
    assert panels == [("top view", "x (m)", "y (m)"), ("front view (from -y)", "x (m)", "z (m)")]
    monkeypatch.setenv("COLUMNS", "200")
    text = " ".join(CliRunner().invoke(app, ["inspect", "--help"]).stdout.split())
    assert "Write a PNG: a top view and a front view (from -y), in metres," in text
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    [said] = [p for p in readme.split("\n\n") if p.startswith("`inspect --plot`")]
    said = " ".join(said.split())
    assert "a top view (x–y) and a front view (x–z, from -y), both in metres" in said
    assert "sensor" not in said and "degrees" not in said


def _apply_frame(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    return t[:3, :3] @ p + t[:3, 3]


@pytest.mark.parametrize("sensor", [None, np.array([0.0, -3.0, 1.5])])
def test_labels_of_performers_close_together_do_not_overlap(sensor: np.ndarray | None) -> None:
    rng = np.random.default_rng(1)
    floor = rng.uniform([-3, 0, 0], [3, 4, 0], size=(20000, 3))
    xs = (-1.7, -0.85, 0.0, 0.85, 1.7)  # 0.35 m between bodies: labels are wider than that
    bodies = [rng.uniform([x - 0.25, 1.8, 0.0], [x + 0.25, 2.2, 1.7], (3000, 3)) for x in xs]
    cloud = PointCloud(xyz=np.concatenate([floor, *bodies]) + rng.normal(0, 0.003, (35000, 3)))
    performers = find_performers(cloud)
    assert len(performers) == len(xs)
    labels = [("double_bass", 0.99), ("saxophone", 0.97), ("none", 0.61), ("trombone", 0.9),
              ("clarinet", 0.88)]  # fmt: skip
    fig = scene_figure(cloud, performers, labels, sensor)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    notes = [t for ax in fig.axes for t in ax.texts if isinstance(t, Annotation)]
    assert len(notes) == 2 * len(xs) + (sensor is not None)
    boxes = [n.get_bbox_patch().get_window_extent(renderer) if n.get_bbox_patch() else
             n.get_window_extent(renderer) for n in notes]  # fmt: skip
    for a in range(len(boxes)):
        for b in range(a + 1, len(boxes)):
            assert not boxes[a].overlaps(boxes[b]), (notes[a].get_text(), notes[b].get_text())
    assert sum(n.xyann != (0, 3) for n in notes) >= 2  # some had to move
    assert {n.get_text() for n in notes} >= {"1 double_bass 99%", "3 none 61%"}
