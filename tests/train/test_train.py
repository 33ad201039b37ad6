"""Training loop, checkpoints/resume and evaluation on a tiny pool written with the real writers.

The pool and the dataset are made here (not by ``pcsep synth``) so the tests stay fast: three
instruments with distinct pitch ranges and timbres, and clouds whose shapes differ by
instrument (a body plus a box, a big upright ellipsoid, or a horizontal rod).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.training import make_dataset, make_pool

from pcsep_cli.errors import DatasetError, ModelError
from pcsep_cli.hub.models import load_model
from pcsep_cli.nets.model import SeparationNet
from pcsep_cli.progress import Progress
from pcsep_cli.train.checkpoint import list_checkpoints
from pcsep_cli.train.config import TrainConfigError, load_train_config
from pcsep_cli.train.evaluate import crop_performer, evaluate, markdown_tables
from pcsep_cli.train.loop import train


def _load(directory: Path) -> SeparationNet:
    return load_model(str(directory))


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pool(tmp_path_factory.mktemp("pool"))


def _cfg(pool: Path, out: Path, **changes):
    cfg = load_train_config("tiny")
    return cfg.replace(pool=str(pool), out_dir=str(out), **changes)


def test_training_reduces_the_loss_and_writes_a_loadable_model(pool: Path, tmp_path: Path):
    cfg = _cfg(pool, tmp_path / "run", steps=40, val_every=20, checkpoint_every=10)
    seen: list[Progress] = []
    model_dir = train(cfg, progress=seen.append)
    assert [p.done for p in seen] == list(range(1, 41))
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    first = np.mean([r["sep"] for r in log[:8]])
    last = np.mean([r["sep"] for r in log[-8:]])
    assert last < 0.85 * first, (first, last)
    assert {r["clouds"] for r in log} == {True, False}  # "both": clouds and labels steps
    model = _load(model_dir)
    assert model.config == cfg.model
    # keep_checkpoints = 2: the older ones are gone.
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["step_0000030", "step_0000040"]
    # Weights and optimiser state are readable as the umask allows, like config.json (not 0600).
    last = list_checkpoints(tmp_path / "run")[-1]
    modes = {f.name: f.stat().st_mode & 0o777 for f in [*model_dir.iterdir(), *last.iterdir()]}
    assert set(modes.values()) == {(model_dir / "config.json").stat().st_mode & 0o777}, modes


class _Stop(Exception):
    pass


def _stop_at(step: int):
    def progress(p: Progress) -> None:
        if p.done == step:
            raise _Stop

    return progress


def test_resume_continues_from_the_last_checkpoint(pool: Path, tmp_path: Path):
    out = tmp_path / "run"
    full = _cfg(pool, tmp_path / "ref", steps=20, checkpoint_every=10, val_every=10)
    train(full)
    # The same run stopped at step 12 (after its step-10 checkpoint), then started again: it
    # must end with the uninterrupted run's weights.
    with pytest.raises(_Stop):
        train(full.replace(out_dir=str(out)), progress=_stop_at(12))
    with pytest.raises(ModelError, match="differs in lr"):
        train(full.replace(out_dir=str(out), lr=0.01))  # another run: refused, not mixed
    seen: list[Progress] = []
    train(full.replace(out_dir=str(out)), progress=seen.append)
    assert seen[0].detail == "resumed from step 10"
    assert [p.done for p in seen[1:]] == list(range(11, 21))
    a = _load(list_checkpoints(tmp_path / "ref")[-1])
    b = _load(list_checkpoints(out)[-1])
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5, msg=name)
    # A finished run can be extended.
    seen.clear()
    train(full.replace(out_dir=str(out), steps=22), progress=seen.append)
    assert seen[0].detail == "resumed from step 20 (steps 20 -> 22)"
    assert seen[-1].done == 22


def test_fresh_run_refuses_a_folder_with_checkpoints(pool: Path, tmp_path: Path):
    cfg = _cfg(pool, tmp_path / "run", steps=2, checkpoint_every=1, val_every=1)
    train(cfg)
    with pytest.raises(ModelError, match="already holds checkpoints"):
        train(cfg, resume=False)


def test_config_errors_name_the_field(tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"steps": 10, "batchsize": 3}))
    with pytest.raises(TrainConfigError, match="batchsize"):
        load_train_config(bad)
    bad.write_text(json.dumps({"model": {"sample_rate": "fast"}}))
    with pytest.raises(TrainConfigError, match="model.sample_rate"):
        load_train_config(bad)
    with pytest.raises(TrainConfigError, match="not found"):
        load_train_config(tmp_path / "missing.json")
    toml = tmp_path / "c.toml"
    toml.write_text('pool = "p"\nsteps = 7\n[augment]\ndropout = 0.1\n')
    cfg = load_train_config(toml)
    assert (cfg.steps, cfg.augment.dropout, cfg.pool) == (7, 0.1, "p")


def test_missing_pool_is_a_dataset_error(tmp_path: Path):
    with pytest.raises(DatasetError, match="pool folder not found"):
        train(_cfg(tmp_path / "nothing", tmp_path / "run", steps=1))


def test_crop_keeps_the_cylinder_above_the_floor():
    xyz = np.array([[0, 0, 0.0], [0.1, 0.1, 1.0], [0.7, 0, 1.0], [0.3, -0.3, 0.5]])
    got = crop_performer(xyz, [0, 0, 0], radius=0.6, floor=0.0)
    np.testing.assert_array_equal(got, xyz[[1, 3]])


def test_evaluate_reports_model_and_baselines(pool: Path, tmp_path: Path):
    cfg = _cfg(pool, tmp_path / "run", steps=40, val_every=20, checkpoint_every=40)
    model_dir = train(cfg)
    data = make_dataset(tmp_path / "data", [["violin", "cello"], ["violin", "cello", "flute"]])
    report = evaluate(model_dir, data)
    # Without labels.npy the performers are cut from the scene around their positions: the
    # same points, less the few within 2 cm of the floor.
    from pcsep_cli.train.evaluate import _performer_clouds

    folder = data / "000001"
    objects = json.loads((folder / "meta.json").read_text())
    objects = objects["performers"] + objects["distractors"]
    exact = _performer_clouds(folder, objects, 0.6)
    (folder / "labels.npy").unlink()
    cut = _performer_clouds(folder, [{"position": o["position"]} for o in objects], 0.6)
    for a, b in zip(exact, cut, strict=True):
        assert 0.9 * len(a) <= len(b) <= len(a)
    assert report["examples"] == 2
    assert set(report["by_performers"]) == {"2", "3-4"}
    assert set(report["per_instrument"]) == {"violin", "cello", "flute"}
    assert report["overall"]["count"] == 5
    irm = report["baselines"]["oracle_irm"]["overall"]
    mix = report["baselines"]["mixture"]["overall"]
    # The oracle mask beats the unprocessed mixture by far on these well-separated tones,
    # and the mixture's own improvement over itself is zero by definition.
    assert irm["sdr"]["mean"] > mix["sdr"]["mean"] + 10
    assert mix["sdri"]["mean"] == pytest.approx(0.0)
    assert report["baselines"]["labels"]["overall"]["count"] == 5
    cls = report["classification"]
    assert (cls["performers"], cls["distractors"]) == (5, 2)
    assert 0 <= cls["accuracy"]["mean"] <= 1
    assert all(math.isfinite(report["overall"][m]["mean"]) for m in ("sdr", "sir", "sar", "si_sdr"))
    json.dumps(report)  # the CLI prints it as JSON
    table = markdown_tables(report)
    assert "| oracle IRM |" in table and "| violin | 2 | 2 |" in table


def test_evaluate_rejects_a_folder_without_examples(pool: Path, tmp_path: Path):
    model_dir = train(_cfg(pool, tmp_path / "run", steps=1, val_every=1, checkpoint_every=1))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no example folders"):
        evaluate(model_dir, tmp_path / "empty")


def test_pool_reads_solos_scenes_and_distractors(pool: Path):
    from pcsep_cli.train.pool import load_pool

    p = load_pool(pool, "train", ("violin", "cello", "flute", "none"), 8000, 0.05, 4000)
    assert len(p.solos) == 3 * 2 + 2  # pool solos + the scene's two performers
    assert [d.instrument for d in p.distractors] == ["none"]
    assert {k: len(v) for k, v in p.by_label.items()} == {0: 2, 1: 3, 2: 3}
    solo = p.solos[0]
    assert solo.audio.shape == (2, 16000)  # resampled 16 kHz → 8 kHz, stereo kept
    # Canonical frame: centred horizontally (before thinning), lowest point on z = 0.
    assert abs(float(np.median(solo.points[:, 0]))) < 0.03
    assert float(solo.points[:, 2].min()) == 0


def test_cloud_scenes_add_soundless_performers_and_distractors_only_when_asked(tmp_path: Path):
    from pcsep_cli.train.batch import make_cloud_batch, step_rng
    from pcsep_cli.train.pool import load_pool

    root = make_pool(tmp_path / "data", per_instrument=1)
    # Cloud scenes: like a scene's geometry, without any sound file.
    make_dataset(root / "clouds" / "train", [["violin", "flute"], ["violin", "cello"]])
    for wav in (root / "clouds").rglob("*.wav"):
        wav.unlink()
    classes = ("violin", "cello", "flute", "none")
    plain = load_pool(root, "train", classes, 8000, 0.05, 4000)
    assert plain.soundless == [] and len(plain.distractors) == 1
    p = load_pool(root, "train", classes, 8000, 0.05, 4000, clouds=True)
    assert len(p.solos) == len(plain.solos)  # no audio: not separation material
    assert sorted(v.instrument for v in p.soundless) == ["cello", "flute", "violin", "violin"]
    assert {k: len(v) for k, v in p.soundless_by_label.items()} == {0: 2, 1: 1, 2: 1}
    assert len(p.distractors) == 1 + 2

    cfg = _cfg(root, tmp_path / "run", none_share=0.6)
    _, labels = make_cloud_batch(p, cfg, step_rng(0, 0), 400)
    share = float((labels == 3).float().mean())
    assert 0.5 < share < 0.7, share
    # Without none_share, `none` is one class in four.
    _, labels = make_cloud_batch(p, cfg.replace(none_share=0.0), step_rng(0, 0), 400)
    assert 0.17 < float((labels == 3).float().mean()) < 0.33
    with pytest.raises(ValueError, match="none_share"):
        cfg.replace(none_share=1.0)


def test_init_from_starts_a_new_run_from_a_model(pool: Path, tmp_path: Path):
    first = train(_cfg(pool, tmp_path / "a", steps=4, checkpoint_every=4, val_every=4))
    seen: list[Progress] = []
    # A learning rate of ~0: after one step the weights are still the source's (the norms'
    # running statistics, buffers, move with the data).
    cfg = _cfg(pool, tmp_path / "b", steps=1, lr=1e-12, lr_min=0.0, init_from=str(first))
    train(cfg, progress=seen.append)
    assert seen[0].detail == f"started from {first}"
    a = dict(_load(first).named_parameters())
    b = dict(_load(list_checkpoints(tmp_path / "b")[-1]).named_parameters())
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=name)
    fresh = _cfg(pool, tmp_path / "c", steps=1, lr=1e-12, lr_min=0.0)
    c = dict(_load(train(fresh)).named_parameters())
    assert any(not torch.allclose(a[n], c[n]) for n in a)
    # A model of another shape is refused before any step.
    film = dataclasses.replace(cfg.model.film, hidden=cfg.model.film.hidden * 2)
    model = dataclasses.replace(cfg.model, film=film)
    other = cfg.replace(out_dir=str(tmp_path / "d"), model=model)
    with pytest.raises(TrainConfigError, match="init_from holds a model of another config"):
        train(other)


def test_a_checkpoint_older_than_a_setting_resumes_as_its_default(pool: Path, tmp_path: Path):
    """A checkpoint written before a training setting existed holds no entry for it: the run
    had that setting's default, so it resumes under the default and is refused otherwise."""
    out = tmp_path / "run"
    cfg = _cfg(pool, out, steps=4, checkpoint_every=2, val_every=2)
    with pytest.raises(_Stop):
        train(cfg, progress=_stop_at(3))
    state_file = list_checkpoints(out)[-1] / "state.json"
    state = json.loads(state_file.read_text())
    for newer in ("eq_db", "cloud_pool"):  # settings added after the first checkpoints
        assert newer in state["config"]
        del state["config"][newer]
    state_file.write_text(json.dumps(state))
    with pytest.raises(ModelError, match="differs in eq_db"):
        train(cfg.replace(eq_db=3.0))
    seen: list[Progress] = []
    train(cfg, progress=seen.append)
    assert seen[0].detail == "resumed from step 2"
    assert seen[-1].done == 4


def test_coherent_mixtures_take_one_scenes_performers_at_one_moment(tmp_path: Path):
    from pcsep_cli.io.audio import read_audio
    from pcsep_cli.io.resample import resample
    from pcsep_cli.train.batch import _sources, make_batch, step_rng
    from pcsep_cli.train.pool import load_pool

    root = make_pool(tmp_path / "data", per_instrument=1, seconds=3.0)
    # A second scene: two violins (one serves: a cloud cannot tell them apart) and a cello.
    make_dataset(root / "train" / "more", [["violin", "violin", "cello"]], seconds=3.0, seed=5)
    for folder in (root / "train" / "more").iterdir():
        folder.rename(root / "train" / "000001")
    classes = ("violin", "cello", "flute", "none")
    p = load_pool(root, "train", classes, 8000, 0.05, 4000)
    scenes = sorted({p.solos[i].scene for g in p.ensembles for i in g})
    assert scenes == ["train/000000", "train/000001"]
    groups = {p.solos[g[0]].scene: sorted(p.solos[i].name for i in g) for g in p.ensembles}
    assert groups["train/000001"] == ["train/000001:p0", "train/000001:p2"]
    assert all(s.scene == "" for s in p.solos if s.name.startswith("pool/"))

    cfg = _cfg(root, tmp_path / "run", coherent_prob=1.0, min_sources=2, max_sources=3)
    length = 4000
    for seed in range(6):
        drawn = list(_sources(p, cfg, step_rng(seed, 0), length))
        assert len({solo.scene for solo, _, _ in drawn}) == 1 and len(drawn) == 2
        folder = root / drawn[0][0].scene
        monos = []
        for solo, _, _ in drawn:
            audio, rate = read_audio(folder / "stems" / f"{solo.name.split(':')[1]}.wav")
            monos.append(resample(audio, rate, 8000).mean(0))
        lead = drawn[0][1]
        starts = range(len(monos[0]) - length + 1)
        start = int(np.argmin([np.abs(monos[0][s : s + length] - lead).max() for s in starts]))
        for (solo, x, level), mono in zip(drawn, monos, strict=True):
            # Every performer at the lead's moment, and its whole recording's loudness.
            np.testing.assert_allclose(x, mono[start : start + length], atol=1e-6)
            assert level == pytest.approx(float(np.sqrt(np.mean(solo.audio.mean(0) ** 2))))

    batch = make_batch(p, cfg.replace(distractor_prob=0.0), step_rng(0, 1))
    for b in range(cfg.batch_size):
        names = {classes[int(k)] for k in batch.labels[batch.mix_index == b]}
        assert names in ({"cello", "flute"}, {"violin", "cello"})
    with pytest.raises(ValueError, match="coherent_prob"):
        cfg.replace(coherent_prob=1.5)


def test_same_class_mixtures_train_both_players_towards_the_whole_part(tmp_path: Path):
    from pcsep_cli.train.batch import _sources, make_batch, step_rng
    from pcsep_cli.train.pool import load_pool

    root = make_pool(tmp_path / "data", per_instrument=2, seconds=2.0)
    classes = ("violin", "cello", "flute", "none")
    p = load_pool(root, "train", classes, 8000, 0.05, 4000)
    cfg = _cfg(root, tmp_path / "run", min_sources=3, max_sources=3, eq_db=0.0)
    for seed in range(8):  # off: three different instruments, as always
        drawn = [solo for solo, _, _ in _sources(p, cfg, step_rng(seed, 0), 4000)]
        assert len({solo.label for solo in drawn}) == 3
        # On: the last is another recording of an instrument already drawn.
        drawn = [
            solo
            for solo, _, _ in _sources(p, cfg.replace(same_class_prob=1.0), step_rng(seed, 0), 4000)
        ]
        assert len({solo.label for solo in drawn}) == 2 and len({solo.name for solo in drawn}) == 3
        assert drawn[-1].label in {solo.label for solo in drawn[:-1]}

    # A pair alone in its mixture: each one's target is the mixture itself.
    pair = cfg.replace(same_class_prob=1.0, min_sources=2, max_sources=2, distractor_prob=0.0)
    batch = make_batch(p, pair, step_rng(3, 1))
    for b in range(pair.batch_size):
        rows = torch.nonzero(batch.mix_index == b).flatten()
        assert len(rows) == 2 and len(set(batch.labels[rows].tolist())) == 1
        for r in rows:
            torch.testing.assert_close(batch.src_mag[r], batch.mix_mag[b], atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="same_class_prob"):
        cfg.replace(same_class_prob=-0.1)


def test_fine_tuning_a_spatial_model_trains_its_mono_network_and_keeps_its_head(
    pool: Path, tmp_path: Path
):
    """``--init-from pcsep-spatial``: the mono network learns exactly as from its mono twin
    (the head takes no part in mono training) and the spatial head comes out unchanged."""
    from helpers.models import spatial_tiny

    base = train(_cfg(pool, tmp_path / "base", steps=2, checkpoint_every=2, val_every=2))
    spatial = spatial_tiny(seed=3)
    spatial.load_state_dict(_load(base).state_dict(), strict=False)
    spatial.save_pretrained(tmp_path / "spatial")
    run = {"steps": 3, "checkpoint_every": 3, "val_every": 3, "lr": 1e-2}
    mono = _load(train(_cfg(pool, tmp_path / "a", init_from=str(base), **run)))
    tuned = _load(
        train(
            _cfg(
                pool,
                tmp_path / "b",
                init_from=str(tmp_path / "spatial"),
                model=spatial.config,
                **run,
            )
        )
    )
    assert tuned.config.spatial.enabled
    got, start = tuned.state_dict(), spatial.state_dict()
    moved = 0
    for name, value in mono.state_dict().items():
        torch.testing.assert_close(got[name], value, rtol=0, atol=0, msg=name)
        moved += not torch.equal(value, start[name])
    assert moved > 10  # the mono network did learn
    head = [n for n in got if n.startswith("spatial.")]
    assert head and all(torch.equal(got[n], start[n]) for n in head)
