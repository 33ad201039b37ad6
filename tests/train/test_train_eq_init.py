"""Random equaliser of training sources (``eq_db``), ``init_from`` across rates and STFTs,
and another dataset's cloud scenes in the pool (``cloud_pool``).

The pool is the tiny one of tests/helpers/training.py (written with the real writers); the
models are the tiny random ones of tests/helpers/models.py.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.models import save_tiny, spatial_tiny
from helpers.training import make_dataset, make_pool

from pcsep_cli.errors import DatasetError
from pcsep_cli.hub.models import load_model
from pcsep_cli.nets.model import SeparationNet
from pcsep_cli.nets.stft import stft
from pcsep_cli.progress import Progress
from pcsep_cli.train import batch as batch_module
from pcsep_cli.train.batch import make_batch, random_eq, step_rng
from pcsep_cli.train.checkpoint import list_checkpoints
from pcsep_cli.train.config import TrainConfig, TrainConfigError, load_train_config
from pcsep_cli.train.loop import _init_weights, _load_pools, train
from pcsep_cli.train.pool import load_pool


@pytest.fixture(scope="module")
def pool_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pool(tmp_path_factory.mktemp("pool"), per_instrument=1)


def _cfg(pool: Path, out: Path | None = None, **changes) -> TrainConfig:
    cfg = load_train_config("tiny")
    return cfg.replace(pool=str(pool), out_dir=str(out or pool / "run"), **changes)


def _pool(cfg: TrainConfig, split: str = "train", **kwargs):
    m = cfg.model
    return load_pool(
        cfg.pool,
        split,
        m.classes,
        m.sample_rate,
        m.visual.voxel_size,
        cfg.segment_samples,
        **kwargs,
    )


# -- random_eq ----------------------------------------------------------------------------


RATE = 22050


def _gain_db(seed: int, db: float, n: int = RATE) -> tuple[np.ndarray, np.ndarray]:
    """The equaliser's gain (dB) on each rfft bin, measured on white noise, and the bins' Hz."""
    x = np.random.default_rng(1234).standard_normal(n).astype(np.float32)
    y = random_eq(x, np.random.default_rng(seed), db, RATE)
    assert y.dtype == np.float32 and y.shape == x.shape
    gain = 20 * np.log10(np.abs(np.fft.rfft(y.astype(np.float64))) / np.abs(np.fft.rfft(x)))
    return gain, np.fft.rfftfreq(n, 1 / RATE)


def test_random_eq_gain_stays_within_tilt_plus_three_bumps():
    # Tilt: ±db/2 at each end (±db end to end); three bumps of up to db/2 each: |gain| <= 2 db.
    # End to end: the tilt's db plus, at most, db/2 from each bump.
    db = 6.0
    peaks = []
    for seed in range(300):
        gain, _ = _gain_db(seed, db, n=4096)
        assert np.all(np.abs(gain) <= 2 * db + 0.01), (seed, float(np.abs(gain).max()))
        assert abs(gain[-1] - gain[1]) <= 2.5 * db + 0.01, seed
        peaks.append(float(np.abs(gain).max()))
    # The curve is not scaled down to nothing: some draws go well past half the tilt.
    assert max(peaks) > db / 2, peaks


def test_random_eq_is_a_smooth_curve_on_a_log_axis_from_20_hz():
    gain, freqs = _gain_db(seed=3, db=12.0)
    # Worst case slope: tilt 12 dB per axis unit plus three bumps of 6 dB, 0.03 wide (~0.6
    # dB/Hz at 100 Hz, ~0.3 at 200 Hz for 1 Hz bins); a curve drawn per bin jumps far more.
    step = np.abs(np.diff(gain))
    assert float(step[freqs[1:] >= 200].max()) < 0.5
    # Below 20 Hz the axis is clamped: one gain for all those bins.
    low = gain[(freqs >= 1) & (freqs <= 20)]
    assert float(np.ptp(low)) < 1e-3
    # Not flat: the curve actually shapes the spectrum.
    assert float(np.ptp(gain)) > 1.0


def test_random_eq_differs_between_seeds_and_repeats_for_one():
    a, _ = _gain_db(seed=0, db=6.0)
    b, _ = _gain_db(seed=1, db=6.0)
    again, _ = _gain_db(seed=0, db=6.0)
    assert float(np.abs(a - b).max()) > 1.0
    np.testing.assert_allclose(a, again, atol=1e-9)


def test_random_eq_of_zero_db_keeps_the_signal():
    x = np.random.default_rng(5).standard_normal(4000).astype(np.float32)
    y = random_eq(x, np.random.default_rng(0), 0.0, 8000)
    np.testing.assert_allclose(y, x, atol=1e-5)


# -- eq_db in batches ----------------------------------------------------------------------


def test_eq_db_must_be_between_0_and_40(pool_dir: Path, tmp_path: Path):
    cfg = _cfg(pool_dir)
    for bad in (-0.5, 40.5):
        with pytest.raises(ValueError, match="eq_db"):
            cfg.replace(eq_db=bad)
    assert cfg.replace(eq_db=40.0).eq_db == 40.0
    assert cfg.eq_db == 0.0  # off unless asked
    file = tmp_path / "eq.json"
    file.write_text(json.dumps({"pool": str(pool_dir), "eq_db": 41}))
    with pytest.raises(TrainConfigError, match="eq_db"):
        load_train_config(file)
    round_trip = TrainConfig.from_dict(cfg.replace(eq_db=6.5).to_dict())
    assert round_trip.eq_db == 6.5


def test_eq_db_zero_draws_nothing_and_never_equalises(pool_dir: Path, monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("random_eq called with eq_db = 0")

    cfg = _cfg(pool_dir, distractor_prob=0.5)
    pool = _pool(cfg)
    monkeypatch.setattr(batch_module, "random_eq", refuse)
    a = make_batch(pool, cfg, step_rng(0, 3), clouds=False)
    b = make_batch(pool, cfg, step_rng(0, 3), clouds=False)
    for name in ("mix_mag", "src_mag", "labels", "mix_index", "is_source"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


class _Spy:
    """The real equaliser, with each call's output kept."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, int]] = []
        self.outputs: list[np.ndarray] = []

    def __call__(self, x, rng, db, sample_rate):  # noqa: ANN001
        self.calls.append((db, sample_rate))
        y = random_eq(x, rng, db, sample_rate)
        self.outputs.append(y)
        return y


def test_eq_changes_source_spectra_but_not_who_plays(pool_dir: Path, monkeypatch):
    # distractor_prob 1: every mixture's draws of who plays happen before any equaliser draw.
    cfg = _cfg(pool_dir, distractor_prob=1.0)
    pool = _pool(cfg)
    plain = make_batch(pool, cfg, step_rng(0, 7), clouds=False)
    spy = _Spy()
    monkeypatch.setattr(batch_module, "random_eq", spy)
    eq = make_batch(pool, cfg.replace(eq_db=20.0), step_rng(0, 7), clouds=False)
    assert len(spy.calls) == int(eq.is_source.sum())  # one curve per sounding source
    assert set(spy.calls) == {(20.0, cfg.model.sample_rate)}
    for name in ("labels", "mix_index", "is_source"):
        assert torch.equal(getattr(plain, name), getattr(eq, name)), name
    assert eq.src_mag.shape == plain.src_mag.shape
    # A mixture's first source is the same excerpt in both batches (drawn before the curve):
    # band by band, eq / plain is the curve plus one level, so it spans at most the curve's
    # range, 4 db, and a narrow-band source (a flute) sees a short, flat-ish piece of it: yet
    # never a mere change of level.
    src = eq.is_source
    spreads = []
    for m in range(cfg.batch_size):
        first = int(torch.nonzero(eq.mix_index == m)[0])
        a, b = eq.src_mag[first, 0].sum(-1), plain.src_mag[first, 0].sum(-1)
        loud = b > 0.01 * b.max()
        ratio = 20 * torch.log10(a[loud] / b[loud])
        spreads.append(float(ratio.max() - ratio.min()))
    assert max(spreads) < 4 * 20.0 + 3.0, spreads
    assert min(spreads) > 0.1, spreads
    assert bool((eq.src_mag[~src] == 0).all())  # distractors stay silent


def test_the_mixture_is_the_sum_of_the_equalised_sources(pool_dir: Path, monkeypatch):
    cfg = _cfg(pool_dir, eq_db=10.0, distractor_prob=0.5)
    spy = _Spy()
    monkeypatch.setattr(batch_module, "random_eq", spy)
    b = make_batch(_pool(cfg), cfg, step_rng(1, 2), clouds=False)
    st = cfg.model.stft
    eq_specs = iter(stft(torch.from_numpy(np.stack(spy.outputs)), st))
    for m in range(cfg.batch_size):
        total = torch.zeros_like(b.mix_mag[m, 0], dtype=torch.complex64)
        for p in torch.nonzero((b.mix_index == m) & b.is_source).flatten().tolist():
            spec = next(eq_specs)
            # The source is the equalised excerpt times its (positive) level and gain.
            scale = b.src_mag[p, 0].sum() / spec.abs().sum()
            torch.testing.assert_close(b.src_mag[p, 0], spec.abs() * scale, rtol=1e-3, atol=1e-5)
            total += spec * scale
        torch.testing.assert_close(b.mix_mag[m, 0], total.abs(), rtol=1e-3, atol=1e-4)


# -- init_from across rates and STFTs ------------------------------------------------------


def _other_grid(cfg: TrainConfig):
    """The tiny model at 16 kHz on another linear grid: only the rate and STFT but warp_bins
    differ."""
    st = dataclasses.replace(cfg.model.stft, n_fft=510, hop=128, window="hamming", warp="band")
    return dataclasses.replace(cfg.model, sample_rate=16000, stft=st)


def test_init_from_loads_a_model_of_another_rate_and_stft(pool_dir: Path, tmp_path: Path):
    src = save_tiny(tmp_path / "src", seed=1)  # the tiny preset: 8 kHz, n_fft 254, point warp
    cfg = _cfg(pool_dir)
    target = _other_grid(cfg)
    torch.manual_seed(0)
    model = SeparationNet(target)
    source = load_model(str(src)).state_dict()
    assert not torch.equal(
        model.state_dict()["cond_trunk.net.0.weight"], source["cond_trunk.net.0.weight"]
    )
    _init_weights(model, cfg.replace(model=target, init_from=str(src)))
    got = model.state_dict()
    assert got.keys() == source.keys()
    for name, value in source.items():
        assert torch.equal(got[name], value), name
    # The model keeps its own grid: its warp reads 510 // 2 + 1 linear bins.
    assert model.config == target
    assert model.warp.fwd.shape == (32, 256)


def test_training_starts_at_another_rate_from_a_model(pool_dir: Path, tmp_path: Path):
    src = save_tiny(tmp_path / "src", seed=1)
    base = _cfg(pool_dir, tmp_path / "run", steps=1, lr=1e-12, lr_min=0.0, val_batches=1)
    cfg = base.replace(model=_other_grid(base), init_from=str(src))
    seen: list[Progress] = []
    out = train(cfg, progress=seen.append)
    assert seen[0].detail == f"started from {src}"
    assert load_model(str(out)).config.sample_rate == 16000
    a = dict(load_model(str(src)).named_parameters())
    b = dict(load_model(str(list_checkpoints(tmp_path / "run")[-1])).named_parameters())
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=name)


@pytest.mark.parametrize(
    "change",
    [
        lambda m: {"stft": dataclasses.replace(m.stft, n_fft=510, warp_bins=64)},
        lambda m: {"film": dataclasses.replace(m.film, hidden=m.film.hidden * 2)},
        lambda m: {"classes": ("cello", "violin", "flute", "none")},  # same shapes, other meaning
    ],
    ids=["warp_bins", "film", "classes"],
)
def test_init_from_refuses_a_model_whose_weights_mean_something_else(
    pool_dir: Path, tmp_path: Path, change
):
    src = save_tiny(tmp_path / "src", seed=1)
    cfg = _cfg(pool_dir)
    target = dataclasses.replace(cfg.model, sample_rate=16000, **change(cfg.model))
    torch.manual_seed(0)
    model = SeparationNet(target)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(TrainConfigError, match="init_from holds a model of another config"):
        _init_weights(model, cfg.replace(model=target, init_from=str(src)))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# -- cloud scenes of another dataset -------------------------------------------------------


def _cloud_scenes(root: Path, layouts: list[list[str]], seed: int) -> Path:
    """Cloud scenes in ``root`` (a scene's geometry and labels, no sound file)."""
    make_dataset(root, layouts, seed=seed)
    for wav in root.rglob("*.wav"):
        wav.unlink()
    return root


@pytest.fixture(scope="module")
def two_datasets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("clouds")
    data = make_pool(base / "data", per_instrument=1)
    _cloud_scenes(data / "clouds" / "train", [["violin", "flute"]], seed=4)
    _cloud_scenes(data / "clouds" / "val", [["cello", "flute"]], seed=5)
    other = base / "rooms"
    _cloud_scenes(other / "clouds" / "train", [["cello", "flute"], ["violin", "cello"]], seed=6)
    _cloud_scenes(other / "clouds" / "val", [["violin"]], seed=7)
    return data, other


def test_more_clouds_adds_the_other_datasets_cloud_scenes(two_datasets):
    data, other = two_datasets
    cfg = _cfg(data)
    own = _pool(cfg, clouds=True)
    both = _pool(cfg, clouds=True, more_clouds=other)
    assert len(both.solos) == len(own.solos)  # no audio: not separation material
    # Own cloud scene: violin, flute, a chair; the other's two: four performers, two chairs.
    assert sorted(s.instrument for s in own.soundless) == ["flute", "violin"]
    assert sorted(s.instrument for s in both.soundless) == [
        "cello",
        "cello",
        "flute",
        "flute",
        "violin",
        "violin",
    ]
    assert len(both.distractors) == len(own.distractors) + 2
    assert {k: len(v) for k, v in both.soundless_by_label.items()} == {0: 2, 1: 2, 2: 2}
    added = [s.name for s in both.soundless if s.name.startswith("rooms/clouds/train/")]
    assert len(added) == 4
    # The other dataset's split is the one asked for.
    val = _pool(cfg, "val", clouds=True, more_clouds=other)
    assert sorted(s.instrument for s in val.soundless) == ["cello", "flute", "violin"]


def test_more_clouds_needs_clouds_and_the_split(two_datasets, tmp_path: Path):
    data, _ = two_datasets
    cfg = _cfg(data)
    only_train = _cloud_scenes(tmp_path / "rooms" / "clouds" / "train", [["violin"]], seed=8)
    assert only_train.parent.name == "clouds"
    with pytest.raises(DatasetError, match="no cloud scenes of split 'val'") as err:
        _pool(cfg, "val", clouds=True, more_clouds=tmp_path / "rooms")
    assert str(tmp_path / "rooms") in str(err.value)
    # Without clouds, more_clouds is not read at all.
    plain = _pool(cfg, more_clouds=tmp_path / "missing")
    assert plain.soundless == []


def test_cloud_pool_reaches_the_training_pools(two_datasets, tmp_path: Path):
    data, other = two_datasets
    cfg = _cfg(data, tmp_path / "run", cloud_scenes=True, cloud_pool=str(other))
    train_pool, val_pool = _load_pools(cfg)
    assert len(train_pool.soundless) == 2 + 4
    assert len(val_pool.soundless) == 2 + 1
    assert any(s.name.startswith("rooms/clouds/val/") for s in val_pool.soundless)
    # cloud_pool goes with cloud_scenes: without them neither dataset's clouds are read.
    plain, _ = _load_pools(cfg.replace(cloud_scenes=False))
    assert plain.soundless == []


def test_cloud_pool_without_a_val_split_fails_instead_of_validating_on_train(
    two_datasets, tmp_path: Path
):
    # The pool's own val split is there; only cloud_pool lacks one. Validating on the train
    # pool would hide that the other dataset's val clouds never reach validation.
    data, _ = two_datasets
    other = tmp_path / "rooms"
    _cloud_scenes(other / "clouds" / "train", [["violin", "cello"]], seed=9)
    cfg = _cfg(data, tmp_path / "run", cloud_scenes=True, cloud_pool=str(other))
    with pytest.raises(DatasetError, match="no cloud scenes of split 'val'") as err:
        _load_pools(cfg)
    assert err.value.path == str(other)
    assert "'train'" not in str(err.value)
    # A process that does not validate needs only the train split, and reads it.
    train_pool, val_pool = _load_pools(cfg, validation=False)
    assert val_pool is None
    assert sorted(s.name.split("/")[0] for s in train_pool.soundless) == [
        "clouds",
        "clouds",
        "rooms",
        "rooms",
    ]


def test_cloud_pool_without_a_train_split_is_an_error(two_datasets, tmp_path: Path):
    data, _ = two_datasets
    other = tmp_path / "rooms"
    _cloud_scenes(other / "clouds" / "val", [["violin"]], seed=10)
    cfg = _cfg(data, tmp_path / "run", cloud_scenes=True, cloud_pool=str(other))
    for validation in (True, False):
        with pytest.raises(DatasetError, match="no cloud scenes of split 'train'") as err:
            _load_pools(cfg, validation=validation)
        assert err.value.path == str(other)
    # No cloud folder at all, or a path that does not exist: the same error.
    (tmp_path / "empty").mkdir()
    for where in (tmp_path / "empty", tmp_path / "missing"):
        with pytest.raises(DatasetError, match="no cloud scenes of split 'train'"):
            _load_pools(cfg.replace(cloud_pool=str(where)))


def test_a_pool_without_val_still_validates_on_train_with_a_full_cloud_pool(
    two_datasets, tmp_path: Path
):
    # The fallback for a dataset without a val split stays: only a missing cloud_pool split
    # is an error.
    data, other = two_datasets
    bare = tmp_path / "bare"
    shutil.copytree(data, bare)
    shutil.rmtree(bare / "pool" / "val")
    shutil.rmtree(bare / "val")
    cfg = _cfg(bare, tmp_path / "run", cloud_scenes=True, cloud_pool=str(other))
    train_pool, val_pool = _load_pools(cfg)
    assert val_pool is train_pool
    assert len(train_pool.soundless) == 2 + 4


# -- init_from: what may differ ------------------------------------------------------------


def _saved(net: SeparationNet, path: Path) -> Path:
    return net.save_pretrained(path)


def _refused(model: SeparationNet, cfg: TrainConfig) -> None:
    """``_init_weights`` refuses with TrainConfigError (no raw load error) and leaves ``model``
    as it was."""
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(TrainConfigError, match="init_from holds a model of another config"):
        _init_weights(model, cfg)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def _loaded(model: SeparationNet, cfg: TrainConfig) -> None:
    source = load_model(cfg.init_from).state_dict()
    assert any(not torch.equal(model.state_dict()[k], v) for k, v in source.items())
    _init_weights(model, cfg)
    got = model.state_dict()
    assert got.keys() == source.keys()
    for name, value in source.items():
        assert torch.equal(got[name], value), name


def test_init_from_refuses_a_spatial_model_at_another_grid_or_rate(pool_dir: Path, tmp_path: Path):
    # The spatial head has weights per linear bin (its shapes follow n_fft) and its steering
    # follows the rate: neither may change.
    src_net = spatial_tiny(seed=1)
    src = _saved(src_net, tmp_path / "spatial")
    base = src_net.config
    assert base.spatial.enabled and base.stft.warp_bins > 0
    cfg = _cfg(pool_dir)
    other_fft = dataclasses.replace(base, stft=dataclasses.replace(base.stft, n_fft=510))
    other_rate = dataclasses.replace(base, sample_rate=16000)
    for target in (other_fft, other_rate):
        torch.manual_seed(0)
        _refused(SeparationNet(target), cfg.replace(model=target, init_from=str(src)))
    # The same spatial config loads.
    torch.manual_seed(0)
    _loaded(SeparationNet(base), cfg.replace(model=base, init_from=str(src)))


def test_init_from_refuses_a_linear_bin_model_at_another_grid_or_rate(
    pool_dir: Path, tmp_path: Path
):
    # warp_bins 0: the network reads the linear bins themselves, so the grid is its own.
    cfg = _cfg(pool_dir)
    linear = dataclasses.replace(
        cfg.model, stft=dataclasses.replace(cfg.model.stft, n_fft=256, warp_bins=0)
    )
    torch.manual_seed(1)
    src = _saved(SeparationNet(linear), tmp_path / "linear")
    targets = [
        dataclasses.replace(linear, stft=dataclasses.replace(linear.stft, n_fft=512)),
        dataclasses.replace(linear, stft=dataclasses.replace(linear.stft, hop=128)),
        dataclasses.replace(linear, sample_rate=16000),
    ]
    for target in targets:
        torch.manual_seed(0)
        _refused(SeparationNet(target), cfg.replace(model=target, init_from=str(src)))
    torch.manual_seed(0)
    _loaded(SeparationNet(linear), cfg.replace(model=linear, init_from=str(src)))


def test_init_from_ignores_none_below(pool_dir: Path, tmp_path: Path):
    # A calibrated model (none_below set by calibration) starts an uncalibrated config, and
    # the other way round; the model keeps its own config's threshold.
    cfg = _cfg(pool_dir)
    assert cfg.model.none_below == 0.0
    calibrated = dataclasses.replace(cfg.model, none_below=0.35)
    torch.manual_seed(1)
    src = _saved(SeparationNet(calibrated), tmp_path / "calibrated")
    assert load_model(str(src)).config.none_below == 0.35
    for target in (cfg.model, _other_grid(cfg), dataclasses.replace(cfg.model, none_below=0.6)):
        torch.manual_seed(0)
        model = SeparationNet(target)
        _loaded(model, cfg.replace(model=target, init_from=str(src)))
        assert model.config == target
    torch.manual_seed(2)
    plain = _saved(SeparationNet(cfg.model), tmp_path / "plain")
    torch.manual_seed(0)
    _loaded(SeparationNet(calibrated), cfg.replace(model=calibrated, init_from=str(plain)))


def test_data_may_be_a_second_synthetic_dataset(tmp_path: Path):
    # `data` reads the synthetic layout as `pool` does: a run mixes two generators' datasets
    # (e.g. other sound sources) at `data_share`, on both splits.
    first = make_pool(tmp_path / "first", per_instrument=1)
    second = make_pool(tmp_path / "second", per_instrument=2)
    cfg = _cfg(first, tmp_path / "run", data=str(second), data_share=0.7)
    train_pool, val_pool = _load_pools(cfg)
    assert train_pool.share == 0.7 and val_pool.share == 0.7
    # the second holds one more pool clip per class; the scenes are alike
    extra = len(list((second / "pool" / "train").iterdir())) - len(
        list((first / "pool" / "train").iterdir())
    )
    assert extra > 0 and len(train_pool.own.solos) == len(train_pool.base.solos) + extra
    assert len(val_pool.own.solos) == len(val_pool.base.solos)
