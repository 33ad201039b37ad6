"""Audio I/O on real files written by soundfile: formats, round trips, streaming, failures."""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pcsep_cli.errors import AudioError, OutputExistsError
from pcsep_cli.io.audio import audio_info, iter_blocks, read_audio
from pcsep_cli.io.audio_write import AudioWriter, subtype_for, write_audio
from pcsep_cli.io.resample import StreamResampler, resample

_BITS = {"PCM_16": 16, "PCM_24": 24}


def _pcm(rng: np.random.Generator, frames: int, channels: int, bits: int) -> np.ndarray:
    """(frames, channels) float64 holding exact PCM values of ``bits`` bits."""
    scale = 2 ** (bits - 1)
    return rng.integers(-scale, scale, size=(frames, channels)) / scale


def _noise(rng: np.random.Generator, frames: int, channels: int) -> np.ndarray:
    # Kept off the rails: +1.0 itself is one step above the largest PCM value.
    return (0.3 * rng.standard_normal((frames, channels))).clip(-0.99, 0.99)


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- reading -----------------------------------------------------------------------------------

READ_CASES = [  # (file name, format, subtype, channels, rate)
    ("a.wav", "WAV", "PCM_16", 1, 8000),
    ("b.wav", "WAV", "PCM_24", 2, 44100),
    ("c.wav", "WAV", "FLOAT", 8, 96000),
    ("d.flac", "FLAC", "PCM_16", 2, 22050),
    ("e.flac", "FLAC", "PCM_24", 8, 48000),
    ("f.aiff", "AIFF", "PCM_16", 2, 44100),
    ("g.w64", "W64", "PCM_24", 3, 32000),
    ("h.rf64", "RF64", "PCM_16", 2, 16000),
    ("i.caf", "CAF", "FLOAT", 1, 88200),
    ("j.ogg", "OGG", "VORBIS", 2, 44100),
    ("k.mp3", "MP3", "MPEG_LAYER_III", 2, 44100),
]


@pytest.mark.parametrize("name,fmt,subtype,channels,rate", READ_CASES)
def test_reads_any_container_rate_and_channel_count(
    tmp_path: Path, name: str, fmt: str, subtype: str, channels: int, rate: int
) -> None:
    rng = np.random.default_rng(0)
    frames = rate // 4 + 17
    lossy = subtype in ("VORBIS", "MPEG_LAYER_III")
    source = _noise(rng, frames, channels) if lossy else _pcm(rng, frames, channels, 16)
    path = tmp_path / name
    sf.write(path, source, rate, subtype=subtype, format=fmt)

    info = audio_info(path)
    assert (info.format, info.subtype, info.channels, info.sample_rate) == (
        fmt,
        subtype,
        channels,
        rate,
    )
    x, sr = read_audio(path)
    assert sr == rate and x.dtype == np.float32 and x.flags.c_contiguous
    assert x.shape == (channels, info.frames)
    assert info.duration == pytest.approx(info.frames / rate)
    if lossy:  # decoded once more by libsndfile itself: same samples, our layout
        np.testing.assert_array_equal(x, sf.read(path, dtype="float32", always_2d=True)[0].T)
    else:
        assert info.frames == frames
        np.testing.assert_array_equal(x, source.T.astype(np.float32))


def test_partial_reads_are_slices_of_the_full_read(tmp_path: Path) -> None:
    path = tmp_path / "a.flac"
    sf.write(path, _pcm(np.random.default_rng(1), 5000, 2, 16), 44100, subtype="PCM_16")
    full, _ = read_audio(path)
    np.testing.assert_array_equal(read_audio(path, start=1234, frames=100)[0], full[:, 1234:1334])
    np.testing.assert_array_equal(read_audio(path, start=4990, frames=100)[0], full[:, 4990:])
    np.testing.assert_array_equal(read_audio(path, start=300)[0], full[:, 300:])
    assert read_audio(path, start=9000)[0].shape == (2, 0)
    with pytest.raises(ValueError, match="start"):
        read_audio(path, start=-1)


# --- writing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "src_name,subtype,out_name",
    [
        ("in.wav", "PCM_16", "out.wav"),
        ("in.wav", "PCM_24", "out.wav"),
        ("in.wav", "FLOAT", "out.wav"),
        ("in.flac", "PCM_16", "out.flac"),
        ("in.flac", "PCM_24", "out.flac"),
        ("in.wav", "PCM_24", "out.flac"),
        ("in.flac", "PCM_24", "out.wav"),
    ],
)
def test_read_write_read_is_exact_and_keeps_the_subtype(
    tmp_path: Path, src_name: str, subtype: str, out_name: str
) -> None:
    rng = np.random.default_rng(2)
    src, out = tmp_path / src_name, tmp_path / out_name
    bits = _BITS.get(subtype, 24)
    sf.write(src, _pcm(rng, 3001, 2, bits), 48000, subtype=subtype)
    info = audio_info(src)
    x, sr = read_audio(src)
    write_audio(out, x, sr, input_subtype=info.subtype)
    assert sf.info(out).subtype == subtype and sf.info(out).samplerate == 48000
    np.testing.assert_array_equal(sf.read(out, dtype="int32")[0], sf.read(src, dtype="int32")[0])
    np.testing.assert_array_equal(read_audio(out)[0], x)


@pytest.mark.parametrize(
    "bits,ext,step",
    [("16", ".wav", 2**-15), ("24", ".wav", 2**-23), (16, ".flac", 2**-15), (24, ".flac", 2**-23)],
)
def test_explicit_bits_quantise_within_one_step(
    tmp_path: Path, bits: str | int, ext: str, step: float
) -> None:
    x = _noise(np.random.default_rng(3), 4000, 2).T.astype(np.float32)
    path = tmp_path / f"q{ext}"
    write_audio(path, x, 44100, bits=bits)
    y, _ = read_audio(path)
    assert sf.info(path).subtype == f"PCM_{int(bits)}"
    error = (y.astype(np.float64) - x) / step
    assert 0.49 < np.abs(error).max() <= 0.5  # rounded to the nearest step, not truncated
    assert abs(error.mean()) < 0.01  # so no DC offset
    write_audio(tmp_path / "f.wav", x, 44100, bits="32f")
    np.testing.assert_array_equal(read_audio(tmp_path / "f.wav")[0], x)


def test_subtype_choice() -> None:
    assert subtype_for(None, ".wav", "PCM_24") == "PCM_24"
    assert subtype_for(None, "wav", "DOUBLE") == "DOUBLE"
    assert subtype_for(None, ".WAV", "PCM_32") == "PCM_32"
    assert subtype_for(None, ".flac", "FLOAT") == "PCM_24"
    assert subtype_for(None, ".flac", "PCM_32") == "PCM_24"
    assert subtype_for(None, ".wav", "MPEG_LAYER_III") == "PCM_16"
    assert subtype_for(None, ".flac", "VORBIS") == "PCM_16"
    assert subtype_for(None, ".wav", "PCM_U8") == "PCM_16"
    assert subtype_for(None, ".wav", None) == "PCM_16"
    assert subtype_for("32f", ".wav", "PCM_16") == "FLOAT"
    assert subtype_for(16, ".flac", "PCM_24") == "PCM_16"
    with pytest.raises(AudioError, match="FLAC cannot hold 32-bit float"):
        subtype_for("32f", ".flac")
    with pytest.raises(AudioError, match="choose 16, 24 or 32f"):
        subtype_for("8", ".wav")
    assert subtype_for(None, ".mp3", "PCM_24") == "MPEG_LAYER_III"  # lossy: the codec's own
    assert subtype_for(None, ".opus") == "OPUS" and subtype_for(None, ".ogg") == "VORBIS"
    with pytest.raises(AudioError, match="mp3 is lossy and has no bit depth"):
        subtype_for("16", ".mp3")
    with pytest.raises(AudioError, match=r"use \.wav, \.flac, \.mp3, \.ogg, \.opus"):
        subtype_for(None, ".aiff")


def test_mp3_input_gives_pcm16_wav(tmp_path: Path) -> None:
    src = tmp_path / "in.mp3"
    sf.write(src, _noise(np.random.default_rng(4), 44100, 2), 44100, format="MP3")
    info = audio_info(src)
    x, sr = read_audio(src)
    write_audio(tmp_path / "out.wav", x, sr, input_subtype=info.subtype)
    assert sf.info(tmp_path / "out.wav").subtype == "PCM_16"


@pytest.mark.parametrize("name,bits", [("c.wav", "16"), ("c.flac", "24")])
def test_integer_formats_clip_instead_of_wrapping(tmp_path: Path, name: str, bits: str) -> None:
    write_audio(tmp_path / name, np.array([[1.5, -1.5, 0.5]], np.float32), 8000, bits=bits)
    y, _ = read_audio(tmp_path / name)
    assert y[0, 0] == pytest.approx(1.0, abs=1e-4) and y[0, 1] == -1.0 and y[0, 2] == 0.5


def test_streamed_writer_matches_one_shot_write(tmp_path: Path) -> None:
    x = _noise(np.random.default_rng(5), 10_000, 3).T.astype(np.float32)
    write_audio(tmp_path / "one.flac", x, 32000, bits="24")
    with AudioWriter(tmp_path / "stream.flac", 32000, 3, bits="24") as writer:
        for i in range(0, x.shape[1], 999):
            writer.write(x[:, i : i + 999])
        assert not (tmp_path / "stream.flac").exists()  # only a temp so far
    assert writer.frames_written == 10_000
    np.testing.assert_array_equal(
        read_audio(tmp_path / "stream.flac")[0], read_audio(tmp_path / "one.flac")[0]
    )
    assert _listing(tmp_path) == ["one.flac", "stream.flac"]


@pytest.mark.parametrize("exc", [RuntimeError("model failed"), KeyboardInterrupt()])
def test_writer_interrupted_leaves_no_file_and_no_temp(tmp_path: Path, exc: BaseException) -> None:
    with pytest.raises(type(exc)):
        with AudioWriter(tmp_path / "violin.wav", 44100, 2) as writer:
            writer.write(np.zeros((2, 4096), np.float32))
            raise exc
    assert _listing(tmp_path) == []


def test_overwrite_is_refused_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "cello.wav"
    write_audio(path, np.zeros((1, 100), np.float32), 8000)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_audio(path, np.ones((1, 50), np.float32) * 0.5, 8000)
    assert sf.info(path).frames == 100
    write_audio(path, np.ones((1, 50), np.float32) * 0.5, 8000, overwrite=True)
    assert sf.info(path).frames == 50
    assert _listing(tmp_path) == ["cello.wav"]


def test_wav_past_4gib_becomes_rf64(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    with AudioWriter(path, 48000, 2, bits="32f", frames_hint=2**30) as writer:
        assert writer.format == "RF64"
        writer.write(np.full((2, 1000), 0.25, np.float32))
    assert sf.info(path).format == "RF64"
    np.testing.assert_array_equal(read_audio(path)[0], np.full((2, 1000), 0.25, np.float32))
    with AudioWriter(tmp_path / "short.wav", 48000, 2, frames_hint=48000 * 60) as writer:
        assert writer.format == "WAV"


@pytest.mark.parametrize(
    "name,data,rate,exc,match",
    [
        ("a.aiff", np.zeros((2, 10), np.float32), 44100, AudioError, "use .wav, .flac, .mp3"),
        ("a.mp3", np.zeros((3, 10), np.float32), 44100, AudioError, "MP3 holds 1 or 2 channels"),
        ("a.mp3", np.zeros((2, 10), np.float32), 96000, AudioError, "MP3 holds 8000, 11025"),
        # libsndfile segfaults on Vorbis past 200 kHz: refused before it is called
        ("a.ogg", np.zeros((2, 10), np.float32), 250000, AudioError, "at most 200000 Hz"),
        ("a.opus", np.zeros((256, 10), np.float32), 48000, AudioError, "at most 255 channels"),
        ("a.wav", np.zeros((2, 10), np.float32), 0, AudioError, "sample rate"),
        ("a.wav", np.zeros((2, 10), np.float32), 44100.5, AudioError, "sample rate"),
        ("a.flac", np.zeros((9, 10), np.float32), 44100, AudioError, "at most 8 channels"),
        ("a.wav", np.full((2, 10), np.nan, np.float32), 44100, AudioError, "NaN"),
        ("a.wav", np.zeros(10, np.float32), 44100, ValueError, r"got shape \(10,\)"),
        ("a.wav", np.zeros((2, 10), np.int16), 44100, ValueError, "int16"),
    ],
)
def test_bad_writes_raise_typed_errors_and_leave_nothing(
    tmp_path: Path, name: str, data: np.ndarray, rate: float, exc: type, match: str
) -> None:
    with pytest.raises(exc, match=match):
        write_audio(tmp_path / name, data, rate)  # type: ignore[arg-type]
    assert _listing(tmp_path) == []


def test_writer_checks_block_shape(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\(2, samples\), got shape \(3, 5\)"):
        with AudioWriter(tmp_path / "a.wav", 8000, 2) as writer:
            writer.write(np.zeros((3, 5), np.float32))
    assert _listing(tmp_path) == []


def test_disk_full_one_shot_write(full_disk: Path) -> None:
    x = _noise(np.random.default_rng(6), 88200, 2).T.astype(np.float32)
    with pytest.raises(AudioError, match="disk full while writing") as info:
        write_audio(full_disk / "piano.wav", x, 44100, bits="32f")
    assert str(full_disk / "piano.wav") in str(info.value) and "-o" in str(info.value)
    assert _listing(full_disk) == []


def test_disk_full_streamed_flac(full_disk: Path) -> None:
    rng = np.random.default_rng(7)
    with pytest.raises(AudioError, match="disk full"):
        with AudioWriter(full_disk / "flute.flac", 44100, 2, bits="24") as writer:
            for _ in range(20):
                writer.write(_noise(rng, 8192, 2).T)
    assert _listing(full_disk) == []


# --- reading failures ------------------------------------------------------------------------


def _wav_bytes(tmp_path: Path, **kwargs: object) -> bytearray:
    sf.write(tmp_path / "ok.wav", np.zeros((1000, 2)), 44100, **kwargs)
    data = bytearray((tmp_path / "ok.wav").read_bytes())
    (tmp_path / "ok.wav").unlink()
    return data


def _make_bad(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / {"dir": "folder.wav", "missing": "missing.wav"}.get(kind, f"{kind}.wav")
    if kind == "ply":
        header = "ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nend_header\n"
        path.write_text(header + "1\n")
    elif kind == "garbage":
        path.write_bytes(np.random.default_rng(8).bytes(5000))
    elif kind == "empty":
        path.touch()
    elif kind == "zero_frames":
        sf.write(path, np.zeros((0, 2)), 44100)
    elif kind == "dir":
        path.mkdir()
    elif kind == "truncated":
        path.write_bytes(_wav_bytes(tmp_path)[:30])
    elif kind == "rate0":
        data = _wav_bytes(tmp_path)
        struct.pack_into("<I", data, data.find(b"fmt ") + 12, 0)
        path.write_bytes(data)
    elif kind == "nan":
        sf.write(path, np.array([[0.1, np.nan]]), 44100, subtype="FLOAT")
    elif kind == "fifo":
        os.mkfifo(path)  # reading it would block forever
    return path


@pytest.mark.parametrize(
    "kind,match",
    [
        ("ply", "PLY point cloud, not audio"),
        ("garbage", "not an audio file"),
        ("empty", "empty"),
        ("zero_frames", "holds no audio"),
        ("dir", "is a folder"),
        ("missing", "no such file"),
        ("truncated", "damaged"),
        ("rate0", r"impossible sample rate \(0 Hz\)"),
        ("nan", "NaN"),
        ("fifo", "not a regular file"),
    ],
)
def test_bad_inputs_raise_audio_error_naming_the_file(
    tmp_path: Path, kind: str, match: str
) -> None:
    path = _make_bad(tmp_path, kind)
    readers = [read_audio, lambda p: list(iter_blocks(p, 512))]
    if kind != "nan":  # the header is fine: only the samples are bad
        readers.append(audio_info)
    for reader in readers:
        with pytest.raises(AudioError, match=match) as info:
            reader(path)
        assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def _read_as_nobody(path: Path) -> str:
    """Read ``path`` in a forked child running as user ``nobody``; return what it saw."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: modules are loaded already, so no access to the venv is needed
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                message = f"ok {read_audio(path)[0].shape}"
            except AudioError as err:
                message = f"AudioError: {err}"
            except BaseException as err:  # noqa: BLE001 - reported to the parent
                message = f"{type(err).__name__}: {err}"
            os.write(write_end, message.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode()
    os.waitpid(pid, 0)
    return message


def test_unreadable_file_is_permission_denied() -> None:
    # Root reads any file whatever its mode: drop to `nobody` in a child to meet a real EACCES.
    folder = Path(tempfile.mkdtemp())
    try:
        folder.chmod(0o755)
        locked, readable = folder / "locked.wav", folder / "readable.wav"
        for path in (locked, readable):
            sf.write(path, np.zeros((100, 1)), 8000)
        locked.chmod(0o000)
        readable.chmod(0o644)
        if os.geteuid() != 0:
            with pytest.raises(AudioError, match="permission denied"):
                read_audio(locked)
            return
        assert _read_as_nobody(readable) == "ok (1, 100)"  # the child reads what it may
        assert _read_as_nobody(locked).startswith(f"AudioError: {locked}: permission denied")
    finally:
        shutil.rmtree(folder)


# --- streaming reads -------------------------------------------------------------------------


@pytest.mark.parametrize("name,overlap", [("n.wav", 0), ("n.flac", 100), ("n.ogg", 37)])
def test_blocks_concatenate_to_the_full_read(tmp_path: Path, name: str, overlap: int) -> None:
    path = tmp_path / name
    sf.write(path, _noise(np.random.default_rng(9), 10_007, 2), 22050)
    full, _ = read_audio(path)
    blocks = list(iter_blocks(path, 1000, overlap=overlap))
    assert all(b.shape[0] == 2 and b.dtype == np.float32 for b in blocks)
    assert all(b.shape[1] == 1000 for b in blocks[:-1]) and 0 < blocks[-1].shape[1] <= 1000
    for a, b in zip(blocks, blocks[1:], strict=False):
        np.testing.assert_array_equal(a[:, 1000 - overlap :], b[:, :overlap])
    joined = np.concatenate([blocks[0]] + [b[:, overlap:] for b in blocks[1:]], axis=1)
    np.testing.assert_array_equal(joined, full)


@pytest.mark.parametrize("name,overlap", [("p.wav", 0), ("p.flac", 100), ("p.mp3", 37)])
@pytest.mark.parametrize("start,frames", [(0, 2500), (4321, 3000), (9000, None), (9000, 10**6)])
def test_blocks_from_a_start_give_that_slice(
    tmp_path: Path, name: str, overlap: int, start: int, frames: int | None
) -> None:
    path = tmp_path / name
    sf.write(path, _noise(np.random.default_rng(10), 10_007, 2), 22050)
    full, _ = read_audio(path)
    blocks = list(iter_blocks(path, 1000, overlap=overlap, start=start, frames=frames))
    joined = np.concatenate([blocks[0]] + [b[:, overlap:] for b in blocks[1:]], axis=1)
    # mpg123 decodes to float a last bit differently by the size of the read: 1e-7
    atol = 1e-6 if name.endswith(".mp3") else 0
    want = full[:, start : None if frames is None else start + frames]
    np.testing.assert_allclose(joined, want, rtol=0, atol=atol)
    assert all(b.shape[1] == 1000 for b in blocks[:-1])
    assert list(iter_blocks(path, 1000, start=full.shape[1])) == []


def test_blocks_from_a_start_never_read_what_lies_before(tmp_path: Path) -> None:
    """A float WAV whose first second is NaN: from 1 s on it streams; from 0 the NaN is found
    (every block read is checked), so the part before the start was never read."""
    x = _noise(np.random.default_rng(11), 3 * 8000, 1).astype(np.float32)
    x[:8000] = np.nan
    sf.write(tmp_path / "nan.wav", x, 8000, subtype="FLOAT")
    tail = np.concatenate(list(iter_blocks(tmp_path / "nan.wav", 1024, start=8000)), axis=1)
    np.testing.assert_array_equal(tail[0], x[8000:, 0])
    with pytest.raises(AudioError, match="NaN"):
        list(iter_blocks(tmp_path / "nan.wav", 1024, frames=9000))
    with pytest.raises(ValueError, match="start and frames"):
        iter_blocks(tmp_path / "nan.wav", 1024, start=-1)


def test_iter_blocks_checks_arguments_and_file_before_iterating(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="no such file"):
        iter_blocks(tmp_path / "missing.wav", 1024)  # no next() needed
    sf.write(tmp_path / "a.wav", np.zeros((10, 1)), 8000)
    for block, overlap in [(0, 0), (100, 100), (100, -1)]:
        with pytest.raises(ValueError, match="block_frames"):
            iter_blocks(tmp_path / "a.wav", block, overlap=overlap)


def test_block_iteration_memory_stays_flat(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    seconds, rate = 60, 44100
    with sf.SoundFile(path, "w", rate, 2, "PCM_16") as f:
        for _ in range(seconds):
            f.write(np.zeros((rate, 2), np.float32))
    tracemalloc.start()
    try:
        frames = sum(block.shape[1] for block in iter_blocks(path, 4096))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert frames == seconds * rate
    full_read = seconds * rate * 2 * 4
    assert peak < 1 << 20 < full_read // 20  # a few blocks, not the file


# --- resampling ------------------------------------------------------------------------------


@pytest.mark.parametrize("sr_from,sr_to,freq", [(44100, 48000, 997.0), (96000, 8000, 1000.0)])
def test_resampled_sine_keeps_frequency_and_amplitude(
    sr_from: int, sr_to: int, freq: float
) -> None:
    n = sr_from // 2
    phases = np.linspace(0, np.pi, 8)[:, None]
    x = (0.5 * np.sin(2 * np.pi * freq * np.arange(n) / sr_from + phases)).astype(np.float32)
    y = resample(x, sr_from, sr_to)
    assert y.shape == (8, round(n * sr_to / sr_from)) and y.dtype == np.float32
    expected = 0.5 * np.sin(2 * np.pi * freq * np.arange(y.shape[1]) / sr_to + phases)
    middle = slice(sr_to // 50, -sr_to // 50)  # soxr's filter edges
    assert np.abs(y[:, middle] - expected[:, middle]).max() < 1e-3


@pytest.mark.parametrize("sr_from,sr_to", [(44100, 48000), (48000, 44100), (96000, 22050)])
def test_streaming_resampler_matches_one_shot(sr_from: int, sr_to: int) -> None:
    rng = np.random.default_rng(10)
    x = _noise(rng, sr_from, 2).T.astype(np.float32)
    one_shot = resample(x, sr_from, sr_to)
    stream = StreamResampler(sr_from, sr_to, 2)
    cuts = np.sort(rng.integers(0, x.shape[1], 12))
    pieces = np.split(x, cuts, axis=1)
    out = [stream.process(p, last=i == len(pieces) - 1) for i, p in enumerate(pieces)]
    streamed = np.concatenate(out, axis=1)
    assert streamed.shape == one_shot.shape
    assert stream.frames_in == x.shape[1] and stream.frames_out == streamed.shape[1]
    edge = 200
    assert np.abs(streamed[:, edge:-edge] - one_shot[:, edge:-edge]).max() < 1e-4
    with pytest.raises(RuntimeError, match="after last=True"):
        stream.process(x[:, :10])


def test_resample_boundaries() -> None:
    x = np.ones((2, 100), np.float64)
    same = resample(x, 44100, 44100)
    assert same is not x and same.dtype == np.float64
    np.testing.assert_array_equal(same, x)
    assert resample(np.zeros((3, 0), np.float32), 44100, 48000).shape == (3, 0)
    passthrough = StreamResampler(8000, 8000, 2)
    np.testing.assert_array_equal(passthrough.process(x.astype(np.float32)), x)
    with pytest.raises(ValueError, match=r"\(channels, samples\), got shape \(100,\)"):
        resample(np.zeros(100, np.float32), 44100, 48000)
    with pytest.raises(ValueError, match="sr_to"):
        resample(x, 44100, 0)
    with pytest.raises(ValueError, match=r"\(2, samples\), got shape \(1, 10\)"):
        StreamResampler(44100, 48000, 2).process(np.zeros((1, 10), np.float32))


def test_float_wav_bytes_do_not_depend_on_the_time_of_writing(tmp_path, monkeypatch):
    """libsndfile stamps float WAVs with the time in a PEAK chunk unless told not to."""
    import time

    from pcsep_cli.io.audio_write import write_audio

    x = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 4000)).astype(np.float32)
    write_audio(tmp_path / "a.wav", x, 16000, bits="32f")
    time.sleep(1.1)
    write_audio(tmp_path / "b.wav", x, 16000, bits="32f")
    a, b = (tmp_path / "a.wav").read_bytes(), (tmp_path / "b.wav").read_bytes()
    assert b"PEAK" not in a
    assert a == b
