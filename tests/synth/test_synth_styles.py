"""Instrument styles: new shapes per class, chosen per split, recorded per performer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pcsep_cli.cli import app
from pcsep_cli.errors import DatasetError
from pcsep_cli.synth import corpus, styles
from pcsep_cli.synth import instruments as inst
from pcsep_cli.synth.dataset import write_dataset
from pcsep_cli.synth.scene import performer_cloud

NEW = [(cls, style) for cls, names in styles.NEW.items() for style in names]
EXTRA = [(cls, style) for cls, names in styles.EXTRA.items() for style in names]


def _only(cls: str, style: str) -> dict[str, tuple[str, ...]]:
    return {**styles.SEEN, cls: (style,)}


def _build(cls: str, style: str, seed: int) -> inst.Instrument:
    with styles.allowed(_only(cls, style)):
        return inst.build(cls, np.random.default_rng(seed))


def _extent(ins: inst.Instrument) -> np.ndarray:
    return np.ptp(ins.mesh.vertices, axis=0)


@pytest.mark.parametrize(("cls", "style"), NEW + EXTRA)
def test_every_new_style_builds_a_valid_mesh_and_says_so(cls: str, style: str) -> None:
    ins = _build(cls, style, 0)
    mesh = ins.mesh
    assert np.isfinite(mesh.vertices).all()
    assert mesh.faces.min() >= 0 and mesh.faces.max() < len(mesh.vertices)
    assert mesh.face_rgb.shape == (len(mesh.faces), 3)
    assert ins.name == cls and "sound" in ins.anchors
    assert styles.style_of(cls, ins.params) == style


def test_new_styles_differ_in_shape_not_only_in_scale() -> None:
    seeds = range(8)

    def ext(cls, style):
        return np.array([_extent(_build(cls, style, s)) for s in seeds])

    alto, soprano = ext("saxophone", "alto"), ext("saxophone", "soprano")
    # A soprano is a straight tube: the bell does not come back up beside the body.
    assert (soprano[:, 1] < 0.1).all() and (alto[:, 1] > 0.15).all()
    assert (ext("saxophone", "baritone")[:, 2] > ext("saxophone", "tenor")[:, 2].max()).all()
    assert (ext("flute", "piccolo").max(axis=1) < 0.35).all()
    assert (ext("flute", "alto").max(axis=1) > 0.83).all()
    bass_cl = ext("clarinet", "bass")
    assert (bass_cl[:, 2] > 0.85).all() and (bass_cl[:, 1] > 0.12).all()  # crook + bell
    cornet, trumpet = ext("trumpet", "cornet"), ext("trumpet", "trumpet")
    assert cornet[:, 0].max() < trumpet[:, 0].min() and (cornet[:, 2] > trumpet[:, 2]).all()
    flugel = [_build("trumpet", "flugelhorn", s).params["bell_diameter"] for s in seeds]
    assert min(flugel) > 0.145  # a trumpet's is 116-128 mm
    tenor_tb = [_build("trombone", "tenor", s).params["bell_diameter"] for s in seeds]
    bass_tb = [_build("trombone", "bass", s).params["bell_diameter"] for s in seeds]
    assert min(bass_tb) > max(tenor_tb)
    assert ext("guitar", "electric")[:, 2].max() < ext("guitar", "acoustic")[:, 2].min()  # thin
    keyboard, upright = ext("piano", "keyboard"), ext("piano", "upright")
    assert keyboard[:, 2].max() < upright[:, 2].min()


def _covered(mesh, x: float, y: float) -> bool:
    """Whether any face, seen from above, covers the point (x, y)."""
    tri = mesh.vertices[mesh.faces][:, :, :2]
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]

    def cross(o, p, q):  # noqa: ANN001, ANN202
        return (p[:, 0] - o[:, 0]) * (q[1] - o[:, 1]) - (p[:, 1] - o[:, 1]) * (q[0] - o[:, 0])

    pt = np.array([x, y])
    d1, d2, d3 = cross(a, b, pt), cross(b, c, pt), cross(c, a, pt)
    inside = ((d1 >= 0) & (d2 >= 0) & (d3 >= 0)) | ((d1 <= 0) & (d2 <= 0) & (d3 <= 0))
    return bool(inside.any())


@pytest.mark.parametrize("cls", ["violin", "cello", "double_bass"])
def test_an_electric_bowed_instrument_is_open_where_the_body_was(cls: str) -> None:
    """Seen from above, the acoustic body covers its lower bout beside the centre line; the
    electric one's spine is too narrow to, and its frame only traces the edge."""
    for seed in range(6):
        acoustic, electric = _build(cls, cls, seed), _build(cls, "electric", seed)
        length, lower = acoustic.params["body_length"], acoustic.params["lower_bout"]
        for side in (-1.0, 1.0):
            spot = (side * lower * 0.3, length * 0.24)
            assert _covered(acoustic.mesh, *spot)
            assert not _covered(electric.mesh, *spot), (seed, side)
        assert electric.anchors.keys() == acoustic.anchors.keys()


def test_every_class_has_three_styles_and_two_outside_the_held_out_ones() -> None:
    for cls in styles.SEEN:
        assert len(set(styles.all_styles(cls))) >= 3, cls
        trainable = set(styles.SEEN[cls]) | set(styles.EXTRA.get(cls, ()))
        assert len(trainable) >= 2 and not trainable & set(styles.NEW.get(cls, ())), cls


def test_extra_styles_differ_in_shape_not_only_in_scale() -> None:
    seeds = range(6)

    def ext(cls, style):
        return np.array([_extent(_build(cls, style, s)) for s in seeds])

    for seed in seeds:  # a paddle: covers the centre of the lower bout, not its edges
        for cls in ("violin", "cello", "double_bass"):
            acoustic, solid = _build(cls, cls, seed), _build(cls, "solid", seed)
            electric = _build(cls, "electric", seed)
            length, lower = acoustic.params["body_length"], acoustic.params["lower_bout"]
            for side in (-1.0, 1.0):
                centre, edge = (
                    (side * lower * 0.2, length * 0.24),
                    (side * lower * 0.4, length * 0.24),
                )
                assert _covered(solid.mesh, *centre) and not _covered(electric.mesh, *centre)
                assert _covered(acoustic.mesh, *edge) and not _covered(solid.mesh, *edge)
    semi = [_build("guitar", "semi", s).params for s in seeds]
    acoustic = [_build("guitar", "acoustic", s).params for s in seeds]
    electric = [_build("guitar", "electric", s).params for s in seeds]
    assert max(p["depth"] for p in semi) < min(p["depth"] for p in acoustic)
    assert min(p["lower_bout"] for p in semi) > max(p["lower_bout"] for p in electric)
    # the bass flute's body runs below its head joint; a concert flute is one straight tube
    assert (ext("flute", "bass")[:, 2] > 0.1).all() and (ext("flute", "concert")[:, 2] < 0.04).all()
    alto, bass, soprano = (
        ext("clarinet", "alto"),
        ext("clarinet", "bass"),
        ext("clarinet", "soprano"),
    )
    assert (alto[:, 1] > 0.15).all() and (soprano[:, 1] < 0.1).all()  # crook and upturned bell
    assert alto[:, 2].max() < bass[:, 2].min()
    pocket, cornet, trumpet = (
        ext("trumpet", "pocket"),
        ext("trumpet", "cornet"),
        ext("trumpet", "trumpet"),
    )
    assert pocket[:, 0].max() < cornet[:, 0].min() and (pocket[:, 2] > trumpet[:, 2].max()).all()
    for seed in seeds:  # valves stand up beside the mouthpiece; a slide trombone has none
        for style, has_valves in (("valve", True), ("tenor", False), ("bass", False)):
            v = _build("trombone", style, seed).mesh.vertices
            near = v[(v[:, 0] > 0.15) & (v[:, 0] < 0.3)]
            assert (np.abs(near[:, 2]).max() > 0.06) == has_valves, (style, seed)
        assert _build("trombone", "valve", seed).params["slide_extension"] == 0.0


def test_for_split_reads_groups_single_styles_and_split_prefixes() -> None:
    assert styles.for_split(["seen"], "train") is None  # builders draw as they always did
    assert styles.for_split(["saxophone:alto", "saxophone:tenor"], "train") is None
    everything = styles.for_split(["all"], "train")
    assert everything["saxophone"] == ("alto", "tenor", "soprano", "baritone")
    assert everything["violin"] == ("violin", "electric", "solid")
    extra = styles.for_split(["seen", "extra"], "train")
    assert extra["trumpet"] == ("trumpet", "pocket") and extra["piano"] == ("grand", "upright")
    new = styles.for_split(["new"], "train")
    assert new["saxophone"] == ("soprano", "baritone")
    assert new["violin"] == ("electric",)
    only_sax = styles.for_split(["saxophone:soprano"], "train")
    assert only_sax["violin"] == ("violin",)  # a class the spec allows nothing of keeps its seen
    spec = ["seen", "test:new"]
    assert styles.for_split(spec, "train") is None and styles.for_split(spec, "val") is None
    assert styles.for_split(spec, "test") == new
    one = styles.for_split(["test:piano:keyboard", "seen"], "test")
    assert one["piano"] == ("keyboard",) and one["guitar"] == ("acoustic",)
    with pytest.raises(DatasetError, match="saxophone:sopranino"):
        styles.for_split(["saxophone:sopranino"], "train")
    with pytest.raises(DatasetError, match="unknown instrument style"):
        styles.for_split(["seen", "test:bogus"], "train")  # bad items fail in every split
    with pytest.raises(DatasetError, match="no instrument style in the train split"):
        styles.for_split(["test:new"], "train")


def test_the_draw_is_uniform_over_the_allowed_styles() -> None:
    rng = np.random.default_rng(0)
    with styles.allowed(styles.for_split(["new"], "test")):
        drawn = [styles.draw("saxophone", rng) for _ in range(400)]
    assert {d: drawn.count(d) for d in set(drawn)}.keys() == {"soprano", "baritone"}
    assert 150 < drawn.count("soprano") < 250
    assert styles.draw("saxophone", rng) is None  # outside the block: the seen policy


def test_a_held_out_style_reaches_only_its_split(tmp_path: Path) -> None:
    root = tmp_path / "data"
    spec = ("seen", "test:new")
    write_dataset(
        root,
        examples=4,
        seed=7,
        performers=(5, 5),
        duration_s=0.5,
        sample_rate=16000,
        mics="mono",
        split_fractions=(0.5, 0.0, 0.5),
        distractor_prob=0.0,
        cycle_instruments=True,
        pieces=[p for p in corpus.corpus_pieces() if p.startswith("bach/bwv")],
        sources=("fluidr3",),
        styles=spec,
    )
    by_split: dict[str, set[str]] = {"train": set(), "test": set()}
    for meta_path in root.glob("*/0*/meta.json"):
        meta = json.loads(meta_path.read_text())
        for p in meta["performers"]:
            by_split[meta["split"]].add(f"{p['instrument']}:{p['style']}")
    seen = {f"{c}:{s}" for c, names in styles.SEEN.items() for s in names}
    assert by_split["train"] and by_split["train"] <= seen
    new = {f"{c}:{s}" for c, s in NEW}
    kept = {f"{c}:{s}" for c, names in styles.SEEN.items() if c not in styles.NEW for s in names}
    assert by_split["test"] & new and by_split["test"] <= new | kept
    assert json.loads((root / "dataset.json").read_text())["settings"]["styles"] == list(spec)


def test_performer_cloud_under_a_policy_carries_the_style() -> None:
    with styles.allowed(_only("piano", "keyboard")):
        cloud = performer_cloud(np.random.default_rng(3), "piano", body_id=3)
    assert styles.style_of("piano", cloud.objects[0].params) == "keyboard"


def test_synth_refuses_an_unknown_style_before_writing(tmp_path: Path) -> None:
    out = tmp_path / "x"
    result = CliRunner().invoke(app, ["synth", "-o", str(out), "--styles", "trumpet:tuba"])
    assert result.exit_code == 1
    assert "trumpet:tuba" in result.output and "trumpet:flugelhorn" in result.output
    assert not out.exists()
