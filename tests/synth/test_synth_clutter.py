"""Whole-room clutter: the pieces, where a scene puts them, merged scans from several places,
and the dataset options that ask for them (``clutter``, ``music_splits``, ``pcsep synth``)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree
from typer.testing import CliRunner

from pcsep_cli.cli import app
from pcsep_cli.errors import DatasetError
from pcsep_cli.synth import clutter, corpus
from pcsep_cli.synth.dataset import write_dataset
from pcsep_cli.synth.meshes import Mesh
from pcsep_cli.synth.scene import SceneCloud, build_scene
from pcsep_cli.synth.sensor import SensorSpec
from pcsep_cli.synth.settings import Settings, candidate_pieces

KINDS = clutter.KINDS
SEEDS = range(16)
MUSIC = (0.7, 0.1, 0.2)
# Bach chorales parse fast; among the first 40 a few works fall in each music split.
PIECES = [p for p in corpus.corpus_pieces() if p.startswith("bach/bwv")][:40]

runner = CliRunner()


def _build(kind: str, seed: int):
    return clutter.BUILDERS[kind](np.random.default_rng(seed))


def _top(mesh: Mesh) -> float:
    return float(mesh.vertices[:, 2].max())


def _extent(mesh: Mesh) -> np.ndarray:
    return np.ptp(mesh.vertices, axis=0)


# ---------------------------------------------------------------------------------------------
# The pieces


def test_kinds_weights_and_builders_agree() -> None:
    assert tuple(clutter.BUILDERS) == KINDS
    assert len(clutter.WEIGHTS) == len(KINDS) and min(clutter.WEIGHTS) > 0
    assert sum(clutter.WEIGHTS) == pytest.approx(1.0)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_builds_a_valid_mesh_standing_on_the_floor(kind: str) -> None:
    for seed in SEEDS:
        piece = _build(kind, seed)
        mesh = piece.mesh
        assert piece.name == kind
        assert len(mesh.faces) > 0 and np.isfinite(mesh.vertices).all()
        assert mesh.faces.min() >= 0 and mesh.faces.max() < len(mesh.vertices)
        assert mesh.face_rgb.shape == (len(mesh.faces), 3) and mesh.face_rgb.dtype == np.uint8
        # Standing on the floor: nothing sinks into it or floats above it by more than 1 cm
        # (a tripod leg's end, a lying tube's facets).
        assert abs(mesh.vertices[:, 2].min()) <= 0.01, (kind, seed)
        # The origin is on the floor under the piece.
        lo, hi = mesh.vertices[:, :2].min(0), mesh.vertices[:, :2].max(0)
        assert np.all(lo < 0) and np.all(hi > 0), (kind, seed)


@pytest.mark.parametrize("kind", ["seat_row", "table", "case", "wall_piece"])
def test_symmetric_pieces_are_centred_on_their_origin(kind: str) -> None:
    for seed in SEEDS:
        v = _build(kind, seed).mesh.vertices[:, :2]
        assert np.abs((v.min(0) + v.max(0)) / 2).max() < 0.05, (kind, seed)


def test_same_seed_same_piece() -> None:
    for kind in KINDS:
        a, b = _build(kind, 3), _build(kind, 3)
        np.testing.assert_array_equal(a.mesh.vertices, b.mesh.vertices)
        np.testing.assert_array_equal(a.mesh.face_rgb, b.mesh.face_rgb)
        assert a.params == b.params
    assert not np.array_equal(_build("table", 3).mesh.vertices, _build("table", 4).mesh.vertices)


def test_seat_rows_are_seats_times_pitch_wide_with_backs_behind() -> None:
    seen = set()
    for seed in SEEDS:
        piece = _build("seat_row", seed)
        seats, width = int(piece.params["seats"]), float(piece.params["width"])
        seen.add(seats)
        assert 2 <= seats <= 8
        assert 0.5 <= width / seats <= 0.6  # the seat pitch
        size = _extent(piece.mesh)
        assert abs(size[0] - width) <= 0.1, (seed, size, width)  # arms or legs at the ends
        assert 0.4 <= size[1] <= 0.6 and 0.75 <= size[2] <= 1.05
        # Front towards -y: the backs (all that rises above the arms) stand at +y.
        v = piece.mesh.vertices
        assert v[v[:, 2] > 0.72, 1].mean() > 0.1
    assert len(seen) >= 3


def test_tables_and_wall_pieces_have_their_drawn_size() -> None:
    for seed in SEEDS:
        table = _build("table", seed)
        h, w = float(table.params["height"]), float(table.params["width"])
        assert 0.72 <= h <= 1.1 and 0.6 <= w <= 1.8
        assert _extent(table.mesh)[0] == pytest.approx(w)
        assert 0.5 <= _extent(table.mesh)[1] <= 0.9
        assert h <= _top(table.mesh) <= h + 0.12  # the top, maybe a laptop or desk on it
        wall = _build("wall_piece", seed)
        w, h = float(wall.params["width"]), float(wall.params["height"])
        assert 0.5 <= w <= 2.5 and 1.0 <= h <= 2.8
        assert _extent(wall.mesh) == pytest.approx([w, _extent(wall.mesh)[1], h])
        assert 0.04 <= _extent(wall.mesh)[1] <= 0.6


def test_loudspeaker_styles_and_heights() -> None:
    styles = Counter()
    for seed in range(30):
        piece = _build("loudspeaker", seed)
        style, top = str(piece.params["style"]), _top(piece.mesh)
        styles[style] += 1
        if style == "stand":  # a cabinet on a pole
            assert 1.6 <= top <= 2.5, (seed, top)
        elif style == "floor":  # 1-3 cabinets stacked
            assert 0.4 <= top <= 2.4, (seed, top)
        else:  # a wedge, its front sloping down towards the player at -y
            assert style == "wedge"
            assert 0.3 <= top <= 0.4
            v = piece.mesh.vertices
            assert v[v[:, 1] < 0, 2].max() < 0.5 * v[v[:, 1] > 0, 2].max()
    assert set(styles) == {"stand", "floor", "wedge"}


def test_stands_have_their_pole_height_and_a_head() -> None:
    lamps = set()
    for seed in SEEDS:
        mic = _build("mic_stand", seed)
        h = float(mic.params["height"])
        assert 0.9 <= h <= 1.7
        assert h - 1e-6 <= _top(mic.mesh) <= h + 0.45  # a boom rises at most 0.4 m
        light = _build("light_stand", seed)
        h, n = float(light.params["height"]), int(light.params["lamps"])
        lamps.add(n)
        assert 1.8 <= h <= 3.0 and 1 <= n <= 4
        assert h <= _top(light.mesh) <= h + 0.1
        # The lamps: cans 8-13 cm in radius hanging out from the (1.4 cm) pole near its top.
        v = light.mesh.vertices
        head = v[v[:, 2] > h - 0.5]
        assert np.linalg.norm(head[:, :2], axis=1).max() > 0.15, seed
    assert len(lamps) >= 3


def test_case_kinds() -> None:
    kinds = Counter()
    for seed in range(30):
        piece = _build("case", seed)
        kind, top = str(piece.params["kind"]), _top(piece.mesh)
        kinds[kind] += 1
        if kind == "flat":
            assert 0.1 <= top <= 0.25 and 0.4 <= _extent(piece.mesh)[0] <= 1.3
        elif kind == "standing":  # on end: up to a person's height
            assert 0.8 <= top <= 1.9
        else:  # a tube lying on the floor
            assert kind == "round"
            assert 0.12 - 0.01 <= top <= 0.6 + 0.01
    assert set(kinds) == {"flat", "standing", "round"}


def test_draw_returns_kinds_by_their_weights() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    drawn = Counter(clutter.draw(rng) for _ in range(n))
    assert set(drawn) == set(KINDS)
    for kind, weight in zip(KINDS, clutter.WEIGHTS, strict=True):
        assert abs(drawn[kind] / n - weight) < 0.03, (kind, drawn[kind] / n)
    assert drawn.most_common(1)[0][0] == "seat_row"


# ---------------------------------------------------------------------------------------------
# Placement in a scene: every surface sampled, so each piece's whole footprint is seen


@pytest.fixture(scope="module")
def surveyed() -> list[SceneCloud]:
    return [
        build_scene(
            np.random.default_rng(seed),
            ["violin", "cello", "flute"],
            distractors=("chair", "music_stand"),
            clutter=14,
            full_surface=True,
            surface_density=300.0,
            walls=False,
        )
        for seed in range(6)
    ]


def _clutter(scene: SceneCloud) -> list[tuple[int, object]]:
    return [(k, o) for k, o in enumerate(scene.objects) if o.distractor in KINDS]


def _xy(scene: SceneCloud, k: int) -> np.ndarray:
    return scene.xyz[scene.object_index == k, :2]


def test_clutter_is_labelled_none_after_the_ensemble(surveyed) -> None:
    for scene in surveyed:
        pieces = _clutter(scene)
        assert 1 <= len(pieces) <= 14
        first = pieces[0][0]
        assert first == 5  # three players and two distractors come first
        assert [o.kind for o in scene.objects[:3]] == ["performer"] * 3
        assert [o.distractor for o in scene.objects[3:5]] == ["chair", "music_stand"]
        assert [k for k, _ in pieces] == list(range(first, len(scene.objects)))
        assert len({o.name for o in scene.objects}) == len(scene.objects)
        for k, o in pieces:
            assert (o.kind, o.label, o.body_id) == ("distractor", "none", None)
            assert o.name.startswith(o.distractor + "_")
            assert o.position.shape == (3,) and o.position[2] == 0.0
            assert len(_xy(scene, k)) > 0  # every piece has a surface


def test_clutter_keeps_clear_of_the_sensor(surveyed) -> None:
    for scene in surveyed:
        sensor = scene.sensor_position[:2]
        for k, o in _clutter(scene):
            nearest = np.linalg.norm(_xy(scene, k) - sensor, axis=1).min()
            # A row's rectangle is taken axis-aligned; rows turn by a few degrees at most.
            least = 0.95 if o.distractor == "seat_row" else 1.0 - 1e-6
            assert nearest >= least, (o.name, nearest)


def test_clutter_keeps_clear_of_the_ensemble_and_of_each_other(surveyed) -> None:
    for scene in surveyed:
        ensemble = scene.xyz[(scene.object_index >= 0) & (scene.object_index < 5), :2]
        tree = cKDTree(ensemble)
        loose = []
        for k, o in _clutter(scene):
            gap = tree.query(_xy(scene, k))[0].min()
            assert gap > 0.3, (o.name, gap)
            loose.append((o.name, o.distractor, _xy(scene, k)))
        for i, (name, kind, a) in enumerate(loose):
            for other, other_kind, b in loose[i + 1 :]:
                if kind == other_kind == "seat_row":
                    continue  # rows of one block stand a pitch apart
                gap = cKDTree(a).query(b)[0].min()
                assert gap > 0.3, (name, other, gap)


def test_seat_rows_stand_in_front_facing_the_ensemble(surveyed) -> None:
    rows_seen = 0
    for scene in surveyed:
        players = scene.xyz[(scene.object_index >= 0) & (scene.object_index < 3)]
        rows = [(k, o) for k, o in _clutter(scene) if o.distractor == "seat_row"]
        rows_seen += len(rows)
        for k, o in rows:
            pts = scene.xyz[scene.object_index == k]
            assert pts[:, 1].max() < players[:, 1].min() - 1.0, o.name
            assert np.cos(o.yaw) < -0.99  # turned round: facing +y, the ensemble
            backs = pts[pts[:, 2] > 0.72]
            assert backs[:, 1].mean() < o.position[1]  # the backs are on the audience's side
        # A block: each row behind the one before it.
        ys = [o.position[1] for _, o in rows]
        assert all(np.diff(ys) < -0.8)
    assert rows_seen >= 6


@pytest.fixture(scope="module")
def scans() -> dict[int, SceneCloud]:
    return {
        views: build_scene(
            np.random.default_rng(4),
            ["violin", "cello"],
            body_ids=[1, 2],
            clutter=8,
            views=views,
            sensor=SensorSpec(resolution_deg=0.5),
        )
        for views in (1, 3)
    }


def test_the_scan_sees_clutter_inside_the_room(scans) -> None:
    scene = scans[1]
    pieces = _clutter(scene)
    assert len(pieces) >= 3
    counts = np.bincount(scene.object_index[scene.object_index >= 0], minlength=len(pieces) + 2)
    assert len(counts) == len(scene.objects)
    assert sum(counts[k] for k, _ in pieces) > 1000
    assert scene.room is not None
    for _, o in pieces:  # the room was drawn around the clutter too
        assert np.all(o.position[:2] > scene.room[0][:2]) and np.all(
            o.position[:2] < scene.room[1][:2]
        )


def test_more_views_add_what_the_first_one_misses(scans) -> None:
    one, three = scans[1], scans[3]
    n = len(one.xyz)
    assert [o.name for o in one.objects] == [o.name for o in three.objects]
    # The sensor's own scan comes first, unchanged; the other views add to it.
    np.testing.assert_array_equal(three.xyz[:n], one.xyz)
    np.testing.assert_array_equal(three.object_index[:n], one.object_index)
    assert len(three.xyz) > 2 * n
    seen_once = set(np.unique(one.object_index[one.object_index >= 0]))
    seen_thrice = set(np.unique(three.object_index[three.object_index >= 0]))
    assert seen_once <= seen_thrice
    # Surfaces the first view could not see: objects' points far from any of its points.
    extra = three.xyz[n:][three.object_index[n:] >= 0]
    far = cKDTree(one.xyz).query(extra)[0] > 0.1
    assert far.sum() > 1000
    clutter_once = np.isin(one.object_index, [k for k, _ in _clutter(one)]).sum()
    clutter_thrice = np.isin(three.object_index, [k for k, _ in _clutter(three)]).sum()
    assert clutter_thrice > 1.5 * clutter_once


def test_same_seed_same_whole_room_scan(scans) -> None:
    again = build_scene(
        np.random.default_rng(4),
        ["violin", "cello"],
        body_ids=[1, 2],
        clutter=8,
        views=3,
        sensor=SensorSpec(resolution_deg=0.5),
    )
    first = scans[3]
    np.testing.assert_array_equal(again.xyz, first.xyz)
    np.testing.assert_array_equal(again.rgb, first.rgb)
    np.testing.assert_array_equal(again.object_index, first.object_index)
    for a, b in zip(again.objects, first.objects, strict=True):
        assert a.name == b.name
        np.testing.assert_array_equal(a.position, b.position)


# ---------------------------------------------------------------------------------------------
# The dataset: whole-room scans with chance ``clutter``; music split by ``music_splits``

TINY = dict(
    seed=2,
    performers=(1, 2),
    duration_s=0.5,
    sample_rate=16000,
    sources=("fluidr3",),
    split_fractions=(0.0, 0.0, 1.0),
    pieces=PIECES,
)


@pytest.fixture(scope="module")
def whole_rooms(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clutter") / "data"
    summary = write_dataset(
        root, examples=1, cloud_scenes=1, clutter=1.0, music_splits=MUSIC, **TINY
    )
    assert (summary.written, summary.clouds_written) == (1, 1)
    return root


def _metas(root: Path) -> list[tuple[Path, dict]]:
    return [(p.parent, json.loads(p.read_text())) for p in sorted(root.rglob("meta.json"))]


def test_every_scene_is_a_whole_room_with_clutter(whole_rooms) -> None:
    metas = _metas(whole_rooms)
    assert sorted(folder.relative_to(whole_rooms).as_posix() for folder, _ in metas) == [
        "clouds/test/000000",
        "test/000000",
    ]
    for folder, meta in metas:
        assert meta["walls"] is True
        assert 1 <= meta["whole_room"]["views"] <= 3
        labels = np.load(folder / "labels.npy")
        assert len(labels) == meta["points"]
        pieces = [d for d in meta["distractors"] if d["kind"] in KINDS]
        assert 1 <= len(pieces) <= 14
        for piece in pieces:
            assert piece["body_id"] is None and piece["position"][2] == 0.0
            assert int((labels == piece["object"]).sum()) == piece["points"]
        assert sum(d["points"] for d in pieces) > 0


def test_the_manifest_records_clutter_and_music_splits(whole_rooms) -> None:
    settings = json.loads((whole_rooms / "dataset.json").read_text())["settings"]
    assert settings["clutter"] == 1.0
    assert settings["music_splits"] == list(MUSIC)


def test_a_test_only_set_draws_its_training_sets_test_music(whole_rooms) -> None:
    ((_, meta),) = [(f, m) for f, m in _metas(whole_rooms) if "piece" in m]
    assert meta["split"] == "test"
    assert corpus.piece_split(meta["piece"], MUSIC) == "test"


def test_candidate_pieces_follow_the_music_splits() -> None:
    settings = Settings(seed=0, split_fractions=(0.0, 0.0, 1.0), pieces=tuple(PIECES))
    every = sorted(p for work in candidate_pieces(settings, "test") for p in work)
    assert every == sorted(PIECES)  # without music_splits, all music is test music
    split = Settings(
        seed=0, split_fractions=(0.0, 0.0, 1.0), pieces=tuple(PIECES), music_splits=MUSIC
    )
    chosen = sorted(p for work in candidate_pieces(split, "test") for p in work)
    assert chosen == sorted(p for p in PIECES if corpus.piece_split(p, MUSIC) == "test")
    assert 0 < len(chosen) < len(PIECES)
    train = {p for work in candidate_pieces(split, "train") for p in work}
    assert train and not train & set(chosen)


def test_resume_needs_the_same_clutter_and_music_splits(whole_rooms) -> None:
    again = write_dataset(
        whole_rooms, examples=1, cloud_scenes=1, clutter=1.0, music_splits=MUSIC, **TINY
    )
    assert (again.written, again.skipped, again.clouds_skipped) == (0, 1, 1)
    with pytest.raises(DatasetError, match=r"other settings \(clutter\)"):
        write_dataset(
            whole_rooms, examples=1, cloud_scenes=1, clutter=0.5, music_splits=MUSIC, **TINY
        )
    with pytest.raises(DatasetError, match=r"other settings \(music_splits\)"):
        write_dataset(whole_rooms, examples=1, cloud_scenes=1, clutter=1.0, **TINY)


def test_an_old_manifest_resumes_as_no_clutter(tmp_path) -> None:
    root = tmp_path / "old"
    write_dataset(root, examples=0, **TINY)
    manifest = root / "dataset.json"
    data = json.loads(manifest.read_text())
    assert (data["settings"]["clutter"], data["settings"]["music_splits"]) == (0.0, None)
    del data["settings"]["clutter"], data["settings"]["music_splits"]
    manifest.write_text(json.dumps(data))
    write_dataset(root, examples=0, **TINY)  # no error: it was written without clutter
    with pytest.raises(DatasetError, match="clutter"):
        write_dataset(root, examples=0, clutter=0.25, **TINY)
    with pytest.raises(DatasetError, match="music_splits"):
        write_dataset(root, examples=0, music_splits=MUSIC, **TINY)


def test_without_clutter_no_scene_is_a_whole_room(tmp_path) -> None:
    root = tmp_path / "plain"
    write_dataset(root, examples=0, cloud_scenes=1, **{**TINY, "performers": (1, 1)})
    ((_, meta),) = _metas(root)
    assert "whole_room" not in meta
    assert not [d for d in meta["distractors"] if d["kind"] in KINDS]


def test_rejects_bad_clutter_and_music_splits(tmp_path) -> None:
    for clutter_share in (-0.1, 1.5):
        with pytest.raises(ValueError, match="clutter must be a share"):
            write_dataset(tmp_path / "a", examples=0, clutter=clutter_share, **TINY)
    for shares in ((0.7, 0.3), (0.5, -0.1, 0.6), (0.0, 0.0, 0.0)):
        with pytest.raises(ValueError, match="music_splits must be 3 shares"):
            write_dataset(tmp_path / "b", examples=0, music_splits=shares, **TINY)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_cli_passes_clutter_and_music_splits(tmp_path) -> None:
    out = tmp_path / "ds"
    args = ["synth", "-o", str(out), "--examples", "0", "--clutter", "0.25"]
    result = runner.invoke(app, [*args, "--music-splits", "0.7,0.1,0.2"])
    assert result.exit_code == 0, result.output
    settings = json.loads((out / "dataset.json").read_text())["settings"]
    assert settings["clutter"] == 0.25 and settings["music_splits"] == [0.7, 0.1, 0.2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--clutter", "2"], "--clutter"),
        (["--clutter", "-0.1"], "--clutter"),
        (["--music-splits", "1,2"], "--music-splits takes three numbers"),
        (["--music-splits", "a,b,c"], "--music-splits takes three numbers"),
        (["--music-splits", "0,0,0"], "music_splits must be 3 shares"),
    ],
)
def test_cli_refuses_bad_clutter_and_music_splits(tmp_path, args, message) -> None:
    result = runner.invoke(app, ["synth", "-o", str(tmp_path / "x"), "--examples", "0", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "x").exists()
