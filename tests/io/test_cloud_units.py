"""A cloud whose size says its coordinates are not metres gets a word naming the units
(:func:`pcsep_cli.io.pointcloud.units_warning`), on real PLY files read back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh
from helpers.scenes import person_mesh, room

from pcsep_cli.errors import SceneError
from pcsep_cli.io.pointcloud import PointCloud, read_cloud, units_warning, write_ply
from pcsep_cli.scene import find_performers, find_scene_performers


@pytest.fixture(scope="module")
def stage() -> np.ndarray:
    """Two performers in an 8 × 6 × 3 m room, in metres."""
    xyz, _ = room([person_mesh(-1.0, 0.0, seated=True, instrument="cello"), person_mesh(1.0, 0.0)],
                  density=200.0, floor_density=100.0)  # fmt: skip
    return xyz


def _written(tmp_path: Path, name: str, xyz: np.ndarray) -> Path:
    write_ply(tmp_path / name, PointCloud(xyz))
    return tmp_path / name


@pytest.mark.parametrize(("scale", "unit", "name"), [(1000.0, "mm", "millimetres"),
                                                     (100.0, "cm", "centimetres")])  # fmt: skip
def test_a_room_in_mm_or_cm_names_its_units(
    stage: np.ndarray, tmp_path: Path, scale: float, unit: str, name: str
) -> None:
    path = _written(tmp_path, f"stage_{unit}.ply", stage * scale)
    word = units_warning(read_cloud(path))
    width = float(np.ptp(stage, axis=0).max() * scale)
    assert word is not None and word.startswith(f"it spans {width:,.0f} m across")
    assert word.endswith(f"its coordinates look like {name}; pass --units {unit}")
    # Read in the units it names, it is a stage: no word, and the performers are found.
    fixed = read_cloud(path, units=unit)
    assert units_warning(fixed) is None
    assert len(find_performers(fixed)) == 2


def test_a_stage_in_metres_has_no_word(stage: np.ndarray, tmp_path: Path) -> None:
    assert units_warning(read_cloud(_written(tmp_path, "stage.ply", stage))) is None
    # Georeferenced: huge coordinates, a small extent.
    far = stage + [512_000.0, 5_400_000.0, 100.0]
    assert units_warning(read_cloud(_written(tmp_path, "utm.ply", far))) is None


def test_a_wide_flat_survey_is_not_given_units(tmp_path: Path) -> None:
    """500 m of terrain 20 m high: no unit makes it a stage, so none is claimed."""
    rng = np.random.default_rng(0)
    xyz = rng.uniform([0, 0, 0], [500, 400, 20], (5000, 3))
    word = units_warning(read_cloud(_written(tmp_path, "survey.ply", xyz)))
    assert word == (
        "it spans 500 m across and 20 m high, too big for a stage: if its coordinates are not "
        "metres, pass --units mm, cm or ft"
    )


def test_no_performer_in_a_mm_cloud_says_mm(stage: np.ndarray, tmp_path: Path) -> None:
    """The scene's error carries the guess as its hint: the whole scene, and one performer's
    own cloud (sampled from its mesh, 1.4 m tall in millimetres)."""
    scene = read_cloud(_written(tmp_path, "stage_mm.ply", stage * 1000))
    with pytest.raises(SceneError) as info:
        find_performers(scene)
    assert str(info.value).endswith("its coordinates look like millimetres; pass --units mm)")
    assert str(info.value).startswith(f"{tmp_path / 'stage_mm.ply'}: no performer found")
    body = person_mesh(0.0, 0.0, seated=True, instrument="cello")
    points = np.asarray(trimesh.sample.sample_surface(body, 4000, seed=0)[0]) * 1000
    one = read_cloud(_written(tmp_path, "cellist_mm.ply", points))
    with pytest.raises(SceneError, match=r"look like millimetres; pass --units mm\)$"):
        find_scene_performers([one])
