"""Audio files in and out: soundfile (libsndfile) to read and write, soxr to resample.

Arrays are always ``(channels, samples)``, float32 unless said otherwise, full scale ±1.
Reading takes any channel count, sample rate and format libsndfile reads (WAV, FLAC, OGG
Vorbis/Opus, MP3, AIFF, W64, RF64, CAF ...). Writing produces WAV (PCM 16/24/32, float),
FLAC (16/24), MP3, Ogg Vorbis or Opus, always through a temporary file renamed into place
(:mod:`pcsep_cli.io.atomic`).
Long files stream: :func:`iter_blocks`, :class:`StreamResampler` and :class:`AudioWriter` keep
memory flat with duration.

Every failure of soundfile or soxr leaves the public functions as :class:`AudioError` naming
the file and how to fix it; wrong array shapes are :class:`ValueError`.

This module reads; :mod:`pcsep_cli.io.resample` resamples and :mod:`pcsep_cli.io.audio_write`
writes; :mod:`pcsep_cli.io.audio_common` holds what the three share.
"""

from __future__ import annotations

import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from pcsep_cli.errors import AudioError
from pcsep_cli.io.audio_common import FLOAT_SUBTYPES, SF_ERRORS, PathArg

__all__ = ["AudioInfo", "audio_info", "iter_blocks", "read_audio"]

_CONVERT_HINT = "convert it to WAV or FLAC, e.g. `ffmpeg -i IN out.wav`"
# Containers libsndfile knows: failing to open one means damage, not an unknown format.
_AUDIO_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"FORM", b"fLaC", b"OggS", b"caff", b"riff")
_NOT_AUDIO = (  # (magic test, what it is); point clouds first: swapped arguments are common
    (lambda h: h.startswith((b"ply\n", b"ply\r\n")), "a PLY point cloud"),
    (lambda h: h.startswith(b"LASF"), "a LAS/LAZ point cloud"),
    (lambda h: h.startswith((b"# .PCD", b"VERSION")), "a PCD point cloud"),
    (lambda h: h[4:8] == b"ftyp", "an MP4/M4A/MOV file, which libsndfile cannot read"),
)

_READ_SLICE = 1 << 20  # frames per read in read_audio


@dataclass(frozen=True)
class AudioInfo:
    """What an audio file holds, read from its header.

    Attributes:
        path: the file.
        sample_rate: samples per second per channel (Hz).
        channels: channel count.
        frames: samples per channel.
        subtype: libsndfile's sample encoding (``"PCM_16"``, ``"PCM_24"``, ``"FLOAT"``,
            ``"VORBIS"`` ...); give it to :func:`subtype_for` to keep it on output.
        format: libsndfile's container (``"WAV"``, ``"FLAC"``, ``"OGG"`` ...).
    """

    path: Path
    sample_rate: int
    channels: int
    frames: int
    subtype: str
    format: str

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate


def _riff_header_problem(head: bytes) -> str | None:
    """Explain a WAV header libsndfile refused with a cryptic message, or None."""
    if head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        return None
    at = head.find(b"fmt ", 12)
    if at < 0 or len(head) < at + 16:
        return None
    _tag, channels, rate = struct.unpack_from("<HHI", head, at + 8)
    if rate <= 0 or rate > 2**31 - 1:
        return f"the WAV header gives an impossible sample rate ({rate} Hz)"
    if channels == 0:
        return "the WAV header gives 0 channels"
    return None


def _unreadable(path: Path, head: bytes, err: BaseException) -> AudioError:
    for test, what in _NOT_AUDIO:
        if test(head):
            hint = "give the recording first, then the point cloud" if "cloud" in what else None
            return AudioError(f"is {what}, not audio", path, hint=hint or _CONVERT_HINT)
    problem = _riff_header_problem(head)
    if problem:
        return AudioError(problem, path, hint="the file is damaged; re-export it")
    detail = getattr(err, "error_string", None) or str(err)
    if head.startswith(_AUDIO_MAGIC):
        return AudioError(f"is damaged or cut short ({detail})", path, hint="re-export it")
    return AudioError(f"not an audio file libsndfile can read ({detail})", path, hint=_CONVERT_HINT)


def _open_read(path: PathArg) -> sf.SoundFile:
    """Open ``path`` for reading, turning every way it can fail into one clear AudioError."""
    p = Path(path)
    try:
        st = p.stat()
        if stat.S_ISDIR(st.st_mode):
            raise AudioError("is a folder, not an audio file", p, hint="give a file inside it")
        if not stat.S_ISREG(st.st_mode):
            # A FIFO or device would block or never end.
            raise AudioError("is not a regular file", p, hint="save the audio to a file first")
        if st.st_size == 0:
            raise AudioError("is empty (0 bytes)", p, hint="copy or export the recording again")
        with open(p, "rb") as fh:
            head = fh.read(4096)
    except FileNotFoundError:
        raise AudioError("no such file", p, hint="check the path") from None
    except PermissionError:
        raise AudioError(
            "permission denied", p, hint="make it readable (chmod a+r) or run as its owner"
        ) from None
    except OSError as err:
        raise AudioError(f"cannot open ({err.strerror or err})", p) from None
    try:
        f = sf.SoundFile(p)
    except SF_ERRORS as err:
        raise _unreadable(p, head, err) from err
    problem = None
    if f.samplerate <= 0:
        problem = f"has an impossible sample rate ({f.samplerate} Hz)"
    elif f.channels <= 0:
        problem = "has no channels"
    elif f.frames <= 0:
        problem = "holds no audio (0 samples)"
    if problem:
        f.close()
        raise AudioError(problem, p, hint="re-export the recording")
    return f


def _check_finite(x: np.ndarray, path: Path, subtype: str) -> None:
    # Integer encodings cannot hold NaN; only float files need the pass over the data.
    if subtype in FLOAT_SUBTYPES and not np.isfinite(x).all():
        raise AudioError(
            "holds NaN or infinite samples", path, hint="re-export it with finite samples"
        )


def audio_info(path: PathArg) -> AudioInfo:
    """Read an audio file's header.

    Raises:
        AudioError: missing, unreadable, not audio, or holding no samples.
    """
    with _open_read(path) as f:
        return AudioInfo(Path(path), f.samplerate, f.channels, f.frames, f.subtype, f.format)


def read_audio(
    path: PathArg, *, start: int = 0, frames: int | None = None
) -> tuple[np.ndarray, int]:
    """Read a whole audio file, or ``frames`` samples from ``start``.

    Args:
        path: any file libsndfile reads.
        start: first sample (per channel) to read.
        frames: how many samples to read; None or more than remain: up to the end.

    Returns:
        ``(audio, sample_rate)``: audio float32 ``(channels, samples)``, full scale ±1.

    Raises:
        AudioError: missing, unreadable, not audio, empty, damaged, or non-finite samples.
        ValueError: negative ``start`` or ``frames``.
    """
    if start < 0 or (frames is not None and frames < 0):
        raise ValueError(f"start and frames must be >= 0, got start={start}, frames={frames}")
    p = Path(path)
    with _open_read(p) as f:
        count = max(0, f.frames - start if frames is None else min(frames, f.frames - start))
        try:
            if count and start:
                f.seek(start)
            # In slices, so memory follows the samples really decoded, not the header's
            # count (a corrupt FLAC header promised 4.3e9 frames: a 32 GiB allocation).
            parts = []
            left = count
            while left > 0:
                part = f.read(min(left, _READ_SLICE), dtype="float32", always_2d=True)
                if not len(part):
                    break
                parts.append(part)
                left -= len(part)
            data = (
                np.concatenate(parts)
                if len(parts) > 1
                else parts[0]
                if parts
                else np.zeros((0, f.channels), np.float32)
            )
        except SF_ERRORS as err:
            raise AudioError(
                f"cannot read samples ({err})", p, hint="the file is damaged; re-export it"
            ) from err
        if len(data) < count and f.format != "MPEG":
            # libsndfile stops at a damaged frame without an error: a short read is damage.
            # (An MP3's length in frames can be an estimate, so it is left out.)
            raise AudioError(
                f"is damaged: the header promises {count:,} samples from {start:,}, "
                f"only {len(data):,} could be decoded",
                p,
                hint="re-export it",
            )
        audio = np.ascontiguousarray(data.T)
        _check_finite(audio, p, f.subtype)
        return audio, f.samplerate


def iter_blocks(
    path: PathArg,
    block_frames: int,
    *,
    overlap: int = 0,
    start: int = 0,
    frames: int | None = None,
) -> Iterator[np.ndarray]:
    """Stream an audio file as blocks, holding one block in memory at a time.

    Each block but the last has ``block_frames`` samples; consecutive blocks share
    ``overlap`` samples (block ``i + 1`` starts ``block_frames - overlap`` after block ``i``).
    With ``start``, the file is sought there first: nothing before it is handed out (nor
    decoded into memory, beyond what the codec needs to find its place).

    Args:
        path: any file libsndfile reads (checked before the first block is asked for).
        block_frames: samples per block (per channel).
        overlap: samples repeated from the end of the previous block.
        start: first sample (per channel) to read.
        frames: samples to read from ``start``; None or more than remain: up to the end.

    Returns:
        An iterator of float32 ``(channels, n)`` arrays.

    Raises:
        AudioError: as :func:`read_audio` (while iterating, for damage found mid-file).
        ValueError: ``block_frames < 1``, ``overlap`` outside ``[0, block_frames)``, or a
            negative ``start`` or ``frames``.
    """
    if block_frames < 1 or not 0 <= overlap < block_frames:
        raise ValueError(f"need block_frames >= 1 > overlap >= 0, got {block_frames}, {overlap}")
    if start < 0 or (frames is not None and frames < 0):
        raise ValueError(f"start and frames must be >= 0, got start={start}, frames={frames}")
    audio_info(path)  # fail now, not at the first next()
    return _blocks(Path(path), block_frames, overlap, start, frames)


def _blocks(
    path: Path, block_frames: int, overlap: int, start: int, frames: int | None
) -> Iterator[np.ndarray]:
    with _open_read(path) as f:
        if start >= f.frames:
            return
        try:
            if start:
                f.seek(start)
        except SF_ERRORS as err:
            raise AudioError(
                f"cannot seek to sample {start:,} ({err})",
                path,
                hint="the file is damaged; re-export it",
            ) from err
        count = -1 if frames is None else frames
        blocks = f.blocks(block_frames, overlap, count, dtype="float32", always_2d=True)
        while True:
            try:
                block = next(blocks)
            except StopIteration:
                return
            except SF_ERRORS as err:
                raise AudioError(
                    f"cannot read samples ({err})", path, hint="the file is damaged; re-export it"
                ) from err
            block = np.ascontiguousarray(block.T)
            _check_finite(block, path, f.subtype)
            yield block
