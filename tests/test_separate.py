"""The inference pipeline as a library: crossfades, rate mapping, masks, in-memory and files."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers.models import save_tiny, tiny_net
from helpers.scenes import QUARTET, person_mesh, room

from pcsep_cli.errors import ModelError, OutputExistsError, PcsepError, SceneError
from pcsep_cli.io.atomic import PendingFile
from pcsep_cli.io.pointcloud import PointCloud
from pcsep_cli.nets.stft import StftConfig
from pcsep_cli.separate import SeparateOptions, Separator, prepare_job, run_job
from pcsep_cli.separate.job import check_template, exists_error, render_template
from pcsep_cli.separate.masks import RateMap, normalise
from pcsep_cli.separate.stream import array_blocks, overlap_add
from pcsep_cli.separate.types import stem_names


@pytest.fixture(scope="module")
def quartet_cloud() -> PointCloud:
    xyz, _ = room([person_mesh(x, y, s, i) for (x, y), s, i in QUARTET], density=300.0)
    return PointCloud(xyz)


@pytest.fixture(scope="module")
def quartet(quartet_cloud: PointCloud) -> list:
    from pcsep_cli.scene import find_performers

    return find_performers(quartet_cloud)


def noise(channels: int, seconds: float, sr: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.2 * rng.standard_normal((channels, int(seconds * sr)))).astype(np.float32)


# -- chunks and crossfades ----------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 7, 100, 101, 1000, 1234])
@pytest.mark.parametrize(("block", "overlap"), [(100, 25), (100, 0), (64, 32), (10, 9)])
def test_overlap_add_of_identity_gives_the_signal_back(length, block, overlap) -> None:  # noqa: ANN001
    x = np.random.default_rng(length).standard_normal((2, length)).astype(np.float32)
    pieces = list(overlap_add(array_blocks(x, block, overlap), overlap, lambda b: b.copy()))
    np.testing.assert_allclose(np.concatenate(pieces, axis=-1), x, atol=2e-6)


def test_overlap_add_matches_file_blocks(tmp_path: Path) -> None:
    from pcsep_cli.io.audio import iter_blocks

    x = noise(3, 1.0, 8000)
    sf.write(tmp_path / "x.wav", x.T, 8000, subtype="FLOAT")
    file_blocks = [b.shape for b in iter_blocks(tmp_path / "x.wav", 3000, overlap=700)]
    assert file_blocks == [b.shape for b in array_blocks(x, 3000, 700)]


def test_stem_names_number_repeats_left_to_right() -> None:
    assert stem_names(["violin", "cello", "violin", "violin"]) == [
        "violin",
        "cello",
        "violin_2",
        "violin_3",
    ]


# -- masks at the input's rate ------------------------------------------------------------


def test_rate_map_reads_masks_at_the_same_frequency_and_time() -> None:
    model_stft, sr_m, sr_in = StftConfig(n_fft=254, hop=64, warp_bins=32), 8000, 44100
    rmap = RateMap(model_stft, sr_m, sr_in)
    frames_m = model_stft.frames(8000)
    f_m = torch.arange(model_stft.bins) * sr_m / model_stft.n_fft
    t_m = torch.arange(frames_m) * model_stft.hop / sr_m
    # 1 below 1 kHz during the first half second, else 0.
    masks = ((f_m[:, None] < 1000) & (t_m[None] < 0.5)).float()[None]
    carried = rmap.carry(masks, 44100)
    stft_in = rmap.stft_in
    assert carried.shape == (1, stft_in.bins, stft_in.frames(44100))
    f_in = np.arange(stft_in.bins) * sr_in / stft_in.n_fft
    t_in = np.arange(stft_in.frames(44100)) * stft_in.hop / sr_in
    sure_f, sure_t = f_in < 900, t_in < 0.45
    assert torch.all(carried[0][np.ix_(sure_f, sure_t)] == 1)
    assert torch.all(carried[0][np.ix_(f_in > 1100, np.ones_like(sure_t))] == 0)
    assert torch.all(carried[0][np.ix_(np.ones_like(sure_f), t_in > 0.55)] == 0)


def test_rate_map_gives_treble_the_top_octave_mean() -> None:
    model_stft = StftConfig(n_fft=254, hop=64, warp_bins=32)
    rmap = RateMap(model_stft, 8000, 48000)
    masks = torch.zeros(1, model_stft.bins, 20)
    masks[:, model_stft.bins // 2 :] = 0.8  # the model's top octave (2-4 kHz)
    carried = rmap.carry(masks, 5000)
    f_in = np.arange(rmap.stft_in.bins) * 48000 / rmap.stft_in.n_fft
    assert torch.allclose(carried[0, f_in > 4100], torch.tensor(0.8))


def test_normalise_partitions_one() -> None:
    m = torch.rand(4, 30, 20)
    out = normalise(m)
    assert torch.all(out.sum(0) <= 1 + 1e-6)
    small = m.sum(0) <= 1
    assert torch.allclose(out[:, small], m[:, small])


def test_masks_match_the_models_forward(quartet: list) -> None:
    """Condition once + masks per chunk must equal one forward pass of the network."""
    from pcsep_cli.nets.stft import stft
    from pcsep_cli.train.batch import clouds_to_tensor

    sep = Separator(tiny_net(), device="cpu", views=1)  # one view: the forward's own input
    performers = quartet
    cond = sep.condition(performers)
    x = torch.from_numpy(noise(1, 1.0, 8000)[0])
    mag = stft(x, sep.net.config.stft).abs()[None, None]
    clouds = clouds_to_tensor(sep._clouds(performers), sep.net.config.visual.voxel_size)
    with torch.inference_mode():
        ours = sep.masks(mag, cond.film)
        ref = sep.net(mag, clouds, torch.zeros(len(performers), dtype=torch.long)).masks[:, 0]
    torch.testing.assert_close(ours, ref)


# -- in memory -----------------------------------------------------------------------------


@pytest.mark.parametrize(("channels", "rate"), [(1, 8000), (2, 44100), (8, 96000)])
def test_stems_and_residual_sum_to_the_mixture(quartet, channels, rate) -> None:  # noqa: ANN001
    sep = Separator(tiny_net(), device="cpu", segment=0.6, overlap=0.25)
    audio = noise(channels, 1.3, rate)
    result = sep.separate(audio, rate, performers=quartet)
    assert result.stems.shape == (4, channels, audio.shape[1])
    assert result.residual.shape == audio.shape
    assert np.abs(result.stems.sum(0) + result.residual - audio).max() <= 1e-5
    # The stems hold real parts of the mixture: each is neither silent nor the whole mix.
    energy = (result.stems.astype(np.float64) ** 2).sum(axis=(1, 2)) / (audio**2).sum()
    assert np.all(energy > 1e-3) and np.all(energy < 0.9)
    assert [d.position[0] for d in result.detections] == sorted(
        d.position[0] for d in result.detections
    )


def test_chunked_matches_unchunked(quartet: list) -> None:
    audio = noise(2, 1.5, 16000)
    whole = Separator(tiny_net(), segment=10.0).separate(audio, 16000, performers=quartet)
    parts = Separator(tiny_net(), segment=0.7, overlap=0.5).separate(
        audio, 16000, performers=quartet
    )
    # Chunks normalise their own level, so the stems differ a little; they must still agree.
    diff = np.abs(whole.stems - parts.stems).mean() / np.abs(whole.stems).mean()
    assert diff < 0.5


def test_blocks_shorten_with_rate_channels_and_stems() -> None:
    from pcsep_cli.separate.separator import _BLOCK_BUDGET, MIN_SEGMENT, _frame_bytes

    sep = Separator(tiny_net())
    # CD-rate stereo with a quartet keeps the full 20 s segment.
    assert sep.block_sizes(44100, 2, 4) == (20 * 44100, 2 * 44100)
    block, overlap = sep.block_sizes(192000, 8, 4)
    assert MIN_SEGMENT * 192000 <= block < 20 * 192000
    assert block * _frame_bytes(8, 4) <= _BLOCK_BUDGET
    assert overlap == round(0.1 * block)
    # More channels or more stems: shorter blocks; never below MIN_SEGMENT.
    assert sep.block_sizes(192000, 8, 8)[0] < block
    assert sep.block_sizes(192000, 2, 4)[0] > block
    assert sep.block_sizes(192000, 64, 40)[0] == round(MIN_SEGMENT * 192000)
    # A segment asked for shorter than MIN_SEGMENT is kept.
    assert Separator(tiny_net(), segment=0.5).block_sizes(192000, 64, 40)[0] == 96000


def test_stream_refuses_blocks_cut_for_other_sizes(quartet: list) -> None:
    sep = Separator(tiny_net())
    cond = sep.condition(quartet)
    audio = noise(8, 1.0, 192000)
    # Cut for mono: longer than the 8-channel block allows.
    block, overlap = sep.block_sizes(192000)
    whole = np.concatenate([audio] * 6, axis=1)
    with pytest.raises(ValueError, match="block_sizes"):
        next(sep.stream(array_blocks(whole, block, overlap), 192000, cond))
    block, overlap = sep.block_sizes(192000, 8, len(cond.stems))
    out = np.concatenate(list(sep.stream(array_blocks(audio, block, overlap), 192000, cond)), -1)
    assert np.abs(out.sum(0) - audio).max() <= 1e-5


def test_label_mode_without_a_cloud() -> None:
    sep = Separator(tiny_net(), device="cpu")
    result = sep.separate(noise(2, 1.0, 8000), 8000, instruments=["cello", "cello", "flute"])
    assert result.names == ["cello", "cello_2", "flute"]
    assert all(d.position is None and d.confidence == 1.0 for d in result.detections)


def test_label_mode_errors(quartet: list) -> None:
    sep = Separator(tiny_net(), device="cpu")
    with pytest.raises(ModelError, match="unknown instrument 'tuba'.*knows violin, cello"):
        sep.separate(noise(1, 0.5, 8000), 8000, instruments=["tuba"])
    with pytest.raises(SceneError, match="4 performers found in the cloud, 2 instruments"):
        sep.separate(noise(1, 0.5, 8000), 8000, performers=quartet, instruments=["violin", "cello"])
    cloud_only = Separator(tiny_net(conditioning="cloud"))
    with pytest.raises(ModelError, match="point clouds only"):
        cloud_only.separate(noise(1, 0.5, 8000), 8000, instruments=["violin"])


def test_all_none_is_a_scene_error(quartet: list) -> None:
    net = tiny_net()
    with torch.no_grad():
        net.visual.classify[-1].bias[-1] = 1e4
    with pytest.raises(SceneError, match="look like no instrument"):
        Separator(net).separate(noise(1, 0.5, 8000), 8000, performers=quartet)


def test_all_none_names_the_cloud_file(tmp_path: Path, quartet_cloud: PointCloud) -> None:
    net = tiny_net()
    with torch.no_grad():
        net.visual.classify[-1].bias[-1] = 1e4
    sf.write(tmp_path / "mix.wav", noise(1, 0.4, 8000).T, 8000, subtype="PCM_16")
    scene = _write_scene(tmp_path / "scene.ply", quartet_cloud)
    job = prepare_job(tmp_path / "mix.wav", [scene], tmp_path / "o", SeparateOptions())
    with pytest.raises(SceneError) as err:
        run_job(Separator(net, segment=0.3), job)
    assert str(err.value).startswith(f"{scene}: all 4 performers found look like no instrument")
    assert not (tmp_path / "o").exists()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="overlap"):
        Separator(tiny_net(), overlap=0.7)
    with pytest.raises(ValueError, match=r"\(channels, samples\)"):
        Separator(tiny_net()).separate(np.zeros(100, np.float32), 8000, instruments=["violin"])


# -- files -----------------------------------------------------------------------------------


def test_templates() -> None:
    assert render_template(
        "{track}/{stem}.{ext}", track="a", stem="violin", instrument="violin", ext="wav"
    ) == Path("a/violin.wav")
    for bad in ("../{stem}.{ext}", "/tmp/{stem}.{ext}", "{track}.{ext}", "{stem}/{nope}"):
        with pytest.raises(ValueError):
            check_template(bad)


def _write_scene(path: Path, cloud: PointCloud) -> Path:
    from pcsep_cli.io.pointcloud import write_ply

    write_ply(path, cloud)
    return path


@pytest.mark.parametrize(("bits", "tol"), [("32f", 1e-6), ("16", 0.0), ("24", 2.0**-24)])
def test_files_sum_to_the_mixture_at_any_bit_depth(tmp_path, quartet_cloud, bits, tol) -> None:  # noqa: ANN001
    """44.1 kHz stereo 16-bit input, 16 kHz model: written stems + residual = mixture."""
    audio = noise(2, 0.8, 44100)
    sf.write(tmp_path / "mix.wav", audio.T, 44100, subtype="PCM_16")
    scene = _write_scene(tmp_path / "scene.ply", quartet_cloud)
    model = save_tiny(tmp_path / "model", sample_rate=16000)
    job = prepare_job(tmp_path / "mix.wav", [scene], tmp_path / "out", SeparateOptions(bits=bits))
    manifest = run_job(Separator.from_pretrained(str(model), device="cpu", segment=0.5), job)
    mix = sf.read(tmp_path / "mix.wav", dtype="float64")[0]
    out = tmp_path / "out" / "mix"  # the manifest's folder: its paths are relative to it
    total = sum(sf.read(out / s["path"], dtype="float64")[0] for s in manifest["stems"])
    total = total + sf.read(out / manifest["residual"]["path"], dtype="float64")[0]
    assert np.abs(total - mix).max() <= max(tol, 1e-12)
    assert manifest["sum_max_error"] <= max(tol, 1e-12)
    assert manifest["manifest"] == str(out / "manifest.json")
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == manifest and manifest["model"]["source"] == "local"
    assert {s["path"] for s in manifest["stems"]} == {
        f"{n}.wav" for n in stem_names([s["instrument"] for s in manifest["stems"]])
    }
    info = sf.info(out / manifest["stems"][0]["path"])
    assert info.samplerate == 44100 and info.channels == 2
    assert info.subtype == {"32f": "FLOAT", "16": "PCM_16", "24": "PCM_24"}[bits]


def test_existing_outputs_are_kept(tmp_path: Path) -> None:
    sf.write(tmp_path / "mix.flac", noise(1, 0.5, 8000).T, 8000, subtype="PCM_16")
    opts = SeparateOptions(format="flac", instruments=("violin", "flute"))
    sep = Separator(tiny_net(), segment=0.3)
    first = run_job(sep, prepare_job(tmp_path / "mix.flac", [], tmp_path / "o", opts))
    flute = tmp_path / "o" / "mix" / first["stems"][1]["path"]
    before = flute.read_bytes()
    flute.write_bytes(b"mine")
    # Refused before any model runs, naming every output there (first the stems).
    with pytest.raises(OutputExistsError) as refused:
        prepare_job(tmp_path / "mix.flac", [], tmp_path / "o", opts)
    assert str(refused.value) == (
        f"{tmp_path / 'o' / 'mix'}: 4 outputs exist already: violin.flac, flute.flac, "
        "residual.flac and manifest.json (pass --overwrite to replace them)"
    )
    assert flute.read_bytes() == b"mine"
    assert not [p for p in (tmp_path / "o").rglob("*") if ".pcsep-tmp-" in p.name]
    again = dataclasses.replace(opts, overwrite=True)
    run_job(sep, prepare_job(tmp_path / "mix.flac", [], tmp_path / "o", again))
    assert flute.read_bytes() == before  # same input, same model: same bytes


def test_an_exists_error_names_every_output_in_one_line(tmp_path: Path) -> None:
    """However many: the README promises all are named (it once named four, then "and N more")."""
    paths = [tmp_path / f"stem_{i}.wav" for i in range(40)] + [tmp_path / "manifest.json"]
    names = [f"stem_{i}.wav" for i in range(40)]
    assert str(exists_error(paths)) == (
        f"{tmp_path}: 41 outputs exist already: {', '.join(names)} and manifest.json "
        "(pass --overwrite to replace them)"
    )


def test_stems_named_by_the_model_are_checked_once_it_has_run(
    tmp_path: Path, quartet_cloud: PointCloud
) -> None:
    """Scene mode without an earlier manifest: the stems' names come from the classifier, so
    run_job names every existing one after classifying, still before writing anything."""
    sf.write(tmp_path / "mix.wav", noise(1, 0.4, 8000).T, 8000, subtype="PCM_16")
    scene = _write_scene(tmp_path / "scene.ply", quartet_cloud)
    sep = Separator(tiny_net(), segment=0.3)
    opts = SeparateOptions(residual=False)
    first = run_job(sep, prepare_job(tmp_path / "mix.wav", [scene], tmp_path / "o", opts))
    out = tmp_path / "o" / "mix"
    (out / "manifest.json").unlink()  # the stems stay, nothing names them before the model
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    job = prepare_job(tmp_path / "mix.wav", [scene], tmp_path / "o", opts)  # passes
    with pytest.raises(OutputExistsError) as refused:
        run_job(sep, job)
    names = [s["path"] for s in first["stems"]]
    assert len(names) == 4
    assert str(refused.value) == (
        f"{out}: 4 outputs exist already: {', '.join(names[:3])} and {names[3]} "
        "(pass --overwrite to replace them)"
    )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_run_failing_while_it_sets_up_its_files_leaves_o_as_it_found_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A temporary file that cannot be made after others were (a folder appearing under a
    stem's name meanwhile, a full inode table): those made are removed, and the folders."""
    import pcsep_cli.separate.output as output

    sf.write(tmp_path / "mix.flac", noise(1, 0.5, 8000).T, 8000, subtype="PCM_16")
    opts = SeparateOptions(format="flac", instruments=("violin", "flute", "cello"))
    made = []

    def third_fails(final: Path, *, overwrite: bool) -> PendingFile:
        if len(made) == 2:
            raise PcsepError("no more files", final)
        made.append(PendingFile(final, overwrite=overwrite))
        return made[-1]

    job = prepare_job(tmp_path / "mix.flac", [], tmp_path / "o", opts)
    monkeypatch.setattr(output, "PendingFile", third_fails)
    with pytest.raises(PcsepError, match="no more files"):
        run_job(Separator(tiny_net(), segment=0.3), job)
    assert len(made) == 2 and not (tmp_path / "o").exists()


@pytest.mark.parametrize("mode", ["rescale", "none"])
def test_clip_modes(tmp_path: Path, mode: str) -> None:
    """A mask of one on a near-full-scale mixture: rescale scales the stem below 1/1.01 and
    the residual takes the rest; none leaves it as it is. Both still sum to the mixture."""
    net = tiny_net()
    with torch.no_grad():
        net.audio_decoder.head[-1].bias.fill_(40.0)  # every mask is 1
    t = np.arange(8000) / 8000
    audio = 0.9999 * np.sin(2 * np.pi * 220 * t)[None].repeat(2, 0)
    sf.write(tmp_path / "loud.wav", audio.T.astype(np.float32), 8000, subtype="FLOAT")
    opts = SeparateOptions(instruments=("violin",), clip_mode=mode)
    manifest = run_job(
        Separator(net, segment=0.5), prepare_job(tmp_path / "loud.wav", [], tmp_path / "o", opts)
    )
    out = tmp_path / "o" / "loud"
    stem = sf.read(out / manifest["stems"][0]["path"], dtype="float64")[0]
    residual = sf.read(out / manifest["residual"]["path"], dtype="float64")[0]
    mix = sf.read(tmp_path / "loud.wav", dtype="float64")[0]
    assert np.abs(stem + residual - mix).max() <= 1e-6
    gain = manifest["stems"][0]["gain"]
    if mode == "rescale":
        assert gain == pytest.approx(1 / (1.01 * manifest["stems"][0]["peak"]), rel=1e-5)
        assert np.abs(stem).max() <= 1 / 1.01 + 1e-6
        assert np.abs(residual).max() == pytest.approx(np.abs(mix).max() * (1 - gain), rel=0.05)
    else:
        assert gain == 1.0 and np.abs(residual).max() < 1e-3
