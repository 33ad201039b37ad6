"""The scene plot: a real PNG of the asked size, with the scene drawn and performers boxed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib import colormaps
from matplotlib.image import imread

from pcsep_cli.errors import OutputExistsError, PcsepError
from pcsep_cli.io.pointcloud import PointCloud
from pcsep_cli.plot import plot_scene
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
