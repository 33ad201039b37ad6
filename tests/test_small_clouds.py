"""Clouds too small to hold a performer: one SceneError that says how many points there are
and how many a performer needs, from the library and the CLI, before anything is written.

(Before: 1 or 2 points failed with a ValueError traceback about shapes; 3-49 points in one
scene blamed "a floor/walls or specks" and hinted at passing one cloud per performer; a
3-point cloud passed as one performer was separated.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers.audio import wav
from helpers.clouds import write_ply_file
from helpers.output import other_lines
from typer.testing import CliRunner

from pcsep_cli.cli import app
from pcsep_cli.errors import SceneError
from pcsep_cli.io.pointcloud import PointCloud, read_cloud
from pcsep_cli.scene import find_performers, find_scene_performers, performer_from_cloud
from pcsep_cli.scene.performers import MIN_PERFORMER_POINTS

runner = CliRunner()


def _standing(n: int, seed: int = 0) -> np.ndarray:
    """``n`` points in a person-sized box standing at the origin."""
    return np.random.default_rng(seed).uniform([0, 0, 0], [0.5, 0.5, 1.7], (n, 3))


@pytest.mark.parametrize("n", [1, 2, 3, 10, MIN_PERFORMER_POINTS - 1])
def test_too_few_points_for_a_performer_is_a_scene_error(n: int) -> None:
    cloud = PointCloud(xyz=_standing(n))
    noun = "point" if n == 1 else "points"
    message = f"the cloud holds {n} {noun}; a performer needs at least {MIN_PERFORMER_POINTS}"
    for find in (find_performers, performer_from_cloud, lambda c: find_scene_performers([c])):
        with pytest.raises(SceneError, match=message) as err:
            find(cloud)
        assert err.value.hint and "exported whole" in err.value.hint


def test_the_minimum_follows_find_performers_min_points() -> None:
    cloud = PointCloud(xyz=_standing(20))
    with pytest.raises(SceneError, match="at least 50"):
        find_performers(cloud)
    assert len(find_performers(cloud, min_points=10)) == 1


def test_clouds_at_the_minimum_still_hold_a_performer() -> None:
    cloud = PointCloud(xyz=_standing(MIN_PERFORMER_POINTS + 10))
    assert len(find_performers(cloud)) == 1
    assert len(performer_from_cloud(cloud).points) == MIN_PERFORMER_POINTS + 10


def test_error_names_the_file(tmp_path: Path) -> None:
    path = write_ply_file(tmp_path / "few.ply", _standing(5))
    with pytest.raises(SceneError) as err:
        find_scene_performers([read_cloud(path)])
    assert err.value.path == str(path)


@pytest.mark.parametrize("n", [1, 2, 3, 30])
def test_cli_separate_and_inspect_refuse_a_tiny_cloud_in_one_line(
    model: Path, scene_ply: Path, tmp_path: Path, n: int
) -> None:
    few = write_ply_file(tmp_path / "few.ply", _standing(n))
    mix = wav(tmp_path / "mix.wav")
    out = tmp_path / "out"
    expected = f"{few}: the cloud holds {n} point"

    for args in (
        ["separate", str(mix), str(few), "-o", str(out), "--model", str(model)],
        ["separate", str(mix), str(scene_ply), str(few), "-o", str(out), "--model", str(model)],
        ["inspect", str(few), "--model", str(model)],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, result.output
        lines = other_lines(result.stderr)  # the error, after any progress lines
        assert len(lines) == 1 and lines[0].startswith(f"error: {expected}"), result.stderr
        assert "Traceback" not in result.stderr
        assert not out.exists()
