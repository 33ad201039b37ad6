"""Lossy output formats (MP3, Ogg Vorbis, Opus) written by libsndfile through the streaming
writer and read back with soundfile; what each format refuses, before anything is written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pcsep_cli.errors import AudioError
from pcsep_cli.io.atomic import TMP_MARKER
from pcsep_cli.io.audio_write import AudioWriter, write_audio
from pcsep_cli.io.encoding import Encoding, bitrate_range, encoding_for
from pcsep_cli.io.resample import resample

MP3_FRAME = 1152  # samples per channel in an MPEG-1 Layer III frame


def tones(channels: int, frames: int, rate: int) -> np.ndarray:
    t = np.arange(frames) / rate
    return np.stack([0.3 * np.sin(2 * np.pi * (300 + 100 * c) * t + c) for c in range(channels)])


def streamed(path: Path, x: np.ndarray, rate: int, block: int = 4000, **settings) -> None:  # noqa: ANN003
    with AudioWriter(path, rate, x.shape[0], **settings) as writer:
        for i in range(0, x.shape[1], block):
            writer.write(x[:, i : i + block].astype(np.float32))


def snr_db(reference: np.ndarray, decoded: np.ndarray) -> float:
    noise = ((reference - decoded) ** 2).sum()
    return float(10 * np.log10((reference**2).sum() / noise))


@pytest.mark.parametrize(
    "ext,rate,channels,file_rate,fmt,subtype",
    [
        (".mp3", 44100, 2, 44100, "MP3", "MPEG_LAYER_III"),
        (".mp3", 22050, 1, 22050, "MP3", "MPEG_LAYER_III"),
        (".mp3", 8000, 2, 8000, "MP3", "MPEG_LAYER_III"),
        (".ogg", 44100, 2, 44100, "OGG", "VORBIS"),
        (".ogg", 96000, 6, 96000, "OGG", "VORBIS"),
        (".opus", 48000, 1, 48000, "OGG", "OPUS"),
        (".opus", 44100, 2, 48000, "OGG", "OPUS"),  # resampled: Opus has no 44.1 kHz
        (".opus", 22050, 3, 24000, "OGG", "OPUS"),  # the lowest Opus rate at or above
    ],
)
def test_lossy_formats_round_trip(
    tmp_path: Path, ext: str, rate: int, channels: int, file_rate: int, fmt: str, subtype: str
) -> None:
    frames = int(1.3 * rate) + 17
    x = tones(channels, frames, rate)
    path = tmp_path / f"stem{ext}"
    streamed(path, x, rate)
    info = sf.info(path)
    assert (info.format, info.subtype) == (fmt, subtype)
    assert (info.samplerate, info.channels) == (file_rate, channels)
    y = sf.read(path, dtype="float64", always_2d=True)[0].T
    reference = x if file_rate == rate else resample(x, rate, file_rate)
    # Decoded to the length written (MP3: the info tag's delay and padding are honoured).
    assert abs(y.shape[1] - reference.shape[1]) <= (MP3_FRAME if ext == ".mp3" else 0)
    n = min(y.shape[1], reference.shape[1])
    assert snr_db(reference[:, :n], y[:, :n]) > 20  # the same signal, in place
    assert not list(tmp_path.glob(f"*{TMP_MARKER}*"))


def test_mp3_keeps_its_timing(tmp_path: Path) -> None:
    """A click at a known sample is decoded there: LAME's encoder delay is taken away."""
    rate = 44100
    x = np.zeros((2, 3 * rate + 123))
    at = [rate // 3, rate, 2 * rate + 7]
    x[:, at] = 0.8
    write_audio(tmp_path / "clicks.mp3", x.astype(np.float32), rate)
    y = sf.read(tmp_path / "clicks.mp3", always_2d=True)[0][:, 0]
    assert abs(len(y) - x.shape[1]) <= MP3_FRAME
    for sample in at:
        window = np.abs(y[sample - 400 : sample + 400])
        assert abs(int(np.argmax(window)) - 400) <= 2


@pytest.mark.parametrize(
    "ext,small,large,ratio",
    [
        (".mp3", {"bitrate": 64}, {"bitrate": 320}, 4.0),
        (".opus", {"bitrate": 32}, {"bitrate": 256}, 4.0),
        (".ogg", {"quality": 0}, {"quality": 10}, 1.4),
    ],
)
def test_bitrate_and_quality_set_the_size(
    tmp_path: Path, ext: str, small: dict, large: dict, ratio: float
) -> None:
    rng = np.random.default_rng(0)
    x = 0.2 * rng.standard_normal((2, 2 * 48000))  # noise: every codec spends what it may
    streamed(tmp_path / f"small{ext}", x, 48000, **small)
    streamed(tmp_path / f"large{ext}", x, 48000, **large)
    sizes = [(tmp_path / f"{name}{ext}").stat().st_size for name in ("small", "large")]
    assert sizes[1] > ratio * sizes[0]
    if "bitrate" in small:  # constant (MP3) or target (Opus) bitrate: the size follows it
        for kbps, size in zip((small["bitrate"], large["bitrate"]), sizes, strict=True):
            assert size * 8 / 2.0 / 1000 == pytest.approx(kbps, rel=0.25)


def test_opus_records_the_rate_it_was_resampled_from(tmp_path: Path) -> None:
    streamed(tmp_path / "a.opus", tones(2, 44100, 44100), 44100)
    with sf.SoundFile(tmp_path / "a.opus") as f:
        rate = sf._ffi.new("int*")
        sf._snd.sf_command(f._file, 0x1501, rate, sf._ffi.sizeof("int"))  # GET_ORIGINAL_SAMPLERATE
        assert (f.samplerate, rate[0]) == (48000, 44100)


def test_encodings_and_their_defaults() -> None:
    assert encoding_for(".wav", 44100, 2, input_subtype="PCM_24") == Encoding(
        "WAV", "PCM_24", 44100
    )
    mp3 = encoding_for(".mp3", 44100, 2)
    assert (mp3.bitrate, mp3.lossy) == (320, True)
    assert encoding_for(".mp3", 22050, 1).bitrate == 160  # MPEG-2's top
    assert encoding_for(".mp3", 11025, 1).bitrate == 64
    assert encoding_for(".opus", 44100, 3) == Encoding("OGG", "OPUS", 48000, bitrate=192)
    assert encoding_for(".opus", 96000, 1).sample_rate == 48000
    assert encoding_for(".ogg", 44100, 2).quality == 6.0
    assert not encoding_for(".flac", 44100, 2).lossy


def test_bitrate_range_is_what_some_input_takes() -> None:
    """The bounds ``--bitrate`` is checked against before a file is read: each end is taken
    by some input, one step past it by none."""
    assert bitrate_range("mp3") == (8, 320) and bitrate_range("opus") == (6, 256 * 255)
    assert bitrate_range("wav") is None and bitrate_range("ogg") is None
    assert encoding_for(".mp3", 8000, 1, bitrate=8).bitrate == 8
    assert encoding_for(".mp3", 48000, 2, bitrate=320).bitrate == 320
    assert encoding_for(".opus", 48000, 1, bitrate=6).bitrate == 6
    assert encoding_for(".opus", 48000, 255, bitrate=256 * 255).bitrate == 256 * 255
    for rate in (8000, 16000, 44100):
        with pytest.raises(AudioError):
            encoding_for(".mp3", rate, 1, bitrate=321)
        with pytest.raises(AudioError):
            encoding_for(".mp3", rate, 1, bitrate=7)


@pytest.mark.parametrize(
    "ext,rate,channels,settings,match",
    [
        (".mp3", 44100, 2, {"bits": "16"}, "mp3 is lossy and has no bit depth"),
        (".mp3", 44100, 2, {"bitrate": 100}, "takes a bitrate of 32, 40"),
        (".mp3", 22050, 2, {"bitrate": 320}, r"at 22050 Hz takes .* 160 kbit/s, not 320"),
        (".mp3", 44100, 2, {"quality": 5}, "--quality is for ogg"),
        (".mp3", 44100, 6, {}, "MP3 holds 1 or 2 channels, this audio has 6"),
        (".mp3", 88200, 2, {}, "this audio is 88200 Hz"),
        (".ogg", 44100, 2, {"bitrate": 128}, "Vorbis is encoded by quality"),
        (".ogg", 44100, 2, {"quality": 11}, "0 to 10"),
        (".ogg", 384000, 2, {}, "Vorbis holds at most 200000 Hz"),
        (".ogg", 44100, 300, {}, "at most 255 channels"),
        (".opus", 48000, 2, {"bitrate": 8}, "12 to 512 for 2 channel"),
        (".opus", 48000, 1, {"quality": 3}, "Opus is encoded by bitrate"),
        (".wav", 44100, 2, {"bitrate": 128}, "wav is lossless: --bitrate"),
        (".flac", 44100, 9, {}, "FLAC holds at most 8 channels"),
    ],
)
def test_what_a_format_cannot_hold_is_refused(
    ext: str, rate: int, channels: int, settings: dict, match: str
) -> None:
    with pytest.raises(AudioError, match=match):
        encoding_for(ext, rate, channels, **settings)


def test_an_interrupted_lossy_stream_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        with AudioWriter(tmp_path / "violin.opus", 44100, 2) as writer:
            writer.write(tones(2, 20000, 44100).astype(np.float32))
            (tmp,) = tmp_path.iterdir()
            # The temporary name keeps the suffix; the format is given, not guessed from it.
            assert TMP_MARKER in tmp.name and tmp.suffix == ".opus"
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ext", [".mp3", ".ogg", ".opus"])
def test_a_full_disk_is_one_error_and_leaves_nothing(full_disk: Path, ext: str) -> None:
    noise = 0.3 * np.random.default_rng(1).standard_normal((2, 10 * 44100))
    with pytest.raises(AudioError, match="disk full while writing"):
        write_audio(full_disk / f"stem{ext}", noise.astype(np.float32), 44100)
    assert list(full_disk.iterdir()) == []
