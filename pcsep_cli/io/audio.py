"""Audio files in and out: soundfile (libsndfile) to read and write, soxr to resample.

Arrays are always ``(channels, samples)``, float32 unless said otherwise, full scale ±1.
Reading takes any channel count, sample rate and format libsndfile reads (WAV, FLAC, OGG
Vorbis/Opus, MP3, AIFF, W64, RF64, CAF ...). Writing produces WAV (PCM 16/24/32, float) or
FLAC (16/24), always through a temporary file renamed into place (:mod:`pcsep_cli.io.atomic`).
Long files stream: :func:`iter_blocks`, :class:`StreamResampler` and :class:`AudioWriter` keep
memory flat with duration.

Every failure of soundfile or soxr leaves the public functions as :class:`AudioError` naming
the file and how to fix it; wrong array shapes are :class:`ValueError`.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from pcsep_cli.errors import AudioError
from pcsep_cli.io.atomic import DISK_FULL_ERRNOS, PendingFile, output_error

__all__ = [
    "AudioInfo",
    "AudioWriter",
    "StreamResampler",
    "audio_info",
    "iter_blocks",
    "read_audio",
    "resample",
    "subtype_for",
    "write_audio",
]

_PathArg = str | PathLike[str]
# What soundfile raises besides its own classes: bad argument combinations, OS-level failures.
_SF_ERRORS = (sf.SoundFileError, RuntimeError, OSError, ValueError, TypeError, AssertionError)
_WRITE_FORMATS = {".wav": "WAV", ".flac": "FLAC"}
_BITS = {"16": "PCM_16", "24": "PCM_24", "32f": "FLOAT"}
# Subtypes kept as they are when the input had them; lossy and 8-bit inputs become PCM_16.
_KEEP = {"WAV": {"PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"}, "FLAC": {"PCM_16", "PCM_24"}}
_DEEP = {"PCM_32", "FLOAT", "DOUBLE"}  # deeper than FLAC holds: written as PCM_24
_FLOAT_SUBTYPES = {"FLOAT", "DOUBLE"}
_PCM_BITS = {"PCM_16": 16, "PCM_24": 24, "PCM_32": 32}
_SAMPLE_BYTES = {"PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}
_FLAC_MAX_CHANNELS, _FLAC_MAX_RATE = 8, 655_350
_WAV_MAX_BYTES = 2**32 - 2**20  # RIFF sizes are 32-bit; past this WAV becomes RF64
_WRITE_SLICE = 1 << 18  # frames per write call: bounds the transposed copy
_CONVERT_HINT = "convert it to WAV or FLAC, e.g. `ffmpeg -i IN out.wav`"
# Containers libsndfile knows: failing to open one means damage, not an unknown format.
_AUDIO_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"FORM", b"fLaC", b"OggS", b"caff", b"riff")
_NOT_AUDIO = (  # (magic test, what it is); point clouds first: swapped arguments are common
    (lambda h: h.startswith((b"ply\n", b"ply\r\n")), "a PLY point cloud"),
    (lambda h: h.startswith(b"LASF"), "a LAS/LAZ point cloud"),
    (lambda h: h.startswith((b"# .PCD", b"VERSION")), "a PCD point cloud"),
    (lambda h: h[4:8] == b"ftyp", "an MP4/M4A/MOV file, which libsndfile cannot read"),
)


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


def _open_read(path: _PathArg) -> sf.SoundFile:
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
    except _SF_ERRORS as err:
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
    if subtype in _FLOAT_SUBTYPES and not np.isfinite(x).all():
        raise AudioError(
            "holds NaN or infinite samples", path, hint="re-export it with finite samples"
        )


def audio_info(path: _PathArg) -> AudioInfo:
    """Read an audio file's header.

    Raises:
        AudioError: missing, unreadable, not audio, or holding no samples.
    """
    with _open_read(path) as f:
        return AudioInfo(Path(path), f.samplerate, f.channels, f.frames, f.subtype, f.format)


def read_audio(
    path: _PathArg, *, start: int = 0, frames: int | None = None
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
            data = f.read(count, dtype="float32", always_2d=True)
        except _SF_ERRORS as err:
            raise AudioError(
                f"cannot read samples ({err})", p, hint="the file is damaged; re-export it"
            ) from err
        audio = np.ascontiguousarray(data.T)
        _check_finite(audio, p, f.subtype)
        return audio, f.samplerate


def iter_blocks(path: _PathArg, block_frames: int, *, overlap: int = 0) -> Iterator[np.ndarray]:
    """Stream an audio file as blocks, holding one block in memory at a time.

    Each block but the last has ``block_frames`` samples; consecutive blocks share
    ``overlap`` samples (block ``i + 1`` starts ``block_frames - overlap`` after block ``i``).

    Args:
        path: any file libsndfile reads (checked before the first block is asked for).
        block_frames: samples per block (per channel).
        overlap: samples repeated from the end of the previous block.

    Returns:
        An iterator of float32 ``(channels, n)`` arrays.

    Raises:
        AudioError: as :func:`read_audio` (while iterating, for damage found mid-file).
        ValueError: ``block_frames < 1`` or ``overlap`` outside ``[0, block_frames)``.
    """
    if block_frames < 1 or not 0 <= overlap < block_frames:
        raise ValueError(f"need block_frames >= 1 > overlap >= 0, got {block_frames}, {overlap}")
    audio_info(path)  # fail now, not at the first next()
    return _blocks(Path(path), block_frames, overlap)


def _blocks(path: Path, block_frames: int, overlap: int) -> Iterator[np.ndarray]:
    with _open_read(path) as f:
        blocks = f.blocks(block_frames, overlap, dtype="float32", always_2d=True)
        while True:
            try:
                block = next(blocks)
            except StopIteration:
                return
            except _SF_ERRORS as err:
                raise AudioError(
                    f"cannot read samples ({err})", path, hint="the file is damaged; re-export it"
                ) from err
            block = np.ascontiguousarray(block.T)
            _check_finite(block, path, f.subtype)
            yield block


def _check_audio(x: Any, name: str, channels: int | None = None) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or (channels is not None and x.shape[0] != channels):
        want = f"({channels}, samples)" if channels else "(channels, samples)"
        raise ValueError(f"{name} must be {want}, got shape {x.shape}")
    if x.shape[0] < 1:
        raise ValueError(f"{name} must have at least one channel, got shape {x.shape}")
    if x.dtype.kind != "f":
        raise ValueError(f"{name} must hold floats (full scale ±1), got dtype {x.dtype}")
    return x


def _check_rate(rate: float, name: str) -> float:
    if not np.isfinite(rate) or rate <= 0:
        raise ValueError(f"{name} must be a positive number of Hz, got {rate}")
    return float(rate)


def resample(x: np.ndarray, sr_from: float, sr_to: float, *, quality: str = "HQ") -> np.ndarray:
    """Resample a whole signal with soxr.

    Args:
        x: ``(channels, samples)`` float array.
        sr_from: its sample rate (Hz).
        sr_to: the rate wanted (Hz).
        quality: soxr quality (``"QQ"``, ``"LQ"``, ``"MQ"``, ``"HQ"``, ``"VHQ"``).

    Returns:
        ``(channels, round(samples * sr_to / sr_from))``, float64 if ``x`` is, else float32.
        A copy of ``x`` when the rates are equal.

    Raises:
        ValueError: wrong shape or dtype, or a rate that is not positive.
    """
    x = _check_audio(x, "x")
    sr_from, sr_to = _check_rate(sr_from, "sr_from"), _check_rate(sr_to, "sr_to")
    dtype = np.float64 if x.dtype == np.float64 else np.float32
    if sr_from == sr_to:
        return x.astype(dtype, copy=True)
    if x.shape[1] == 0:
        return np.zeros((x.shape[0], 0), dtype)
    try:
        y = soxr.resample(np.ascontiguousarray(x.T, dtype), sr_from, sr_to, quality=quality)
    except (ValueError, RuntimeError, TypeError) as err:
        raise AudioError(f"resampling {sr_from:g} Hz to {sr_to:g} Hz failed ({err})") from err
    return np.ascontiguousarray(y.T)


class StreamResampler:
    """Resample a long signal block by block; the result matches :func:`resample`.

    Wraps :class:`soxr.ResampleStream`, which keeps the filter state between blocks, so the
    joins are seamless and the total length is the one-shot length.

    Args:
        sr_from: input rate (Hz).
        sr_to: output rate (Hz).
        channels: channel count of every block.
        dtype: ``np.float32`` or ``np.float64``.
        quality: soxr quality, as :func:`resample`.

    Raises:
        ValueError: a rate that is not positive, or ``channels < 1``.
    """

    def __init__(
        self,
        sr_from: float,
        sr_to: float,
        channels: int,
        *,
        dtype: type[np.floating] = np.float32,
        quality: str = "HQ",
    ) -> None:
        self.sr_from, self.sr_to = _check_rate(sr_from, "sr_from"), _check_rate(sr_to, "sr_to")
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self.channels = channels
        self.dtype = np.dtype(dtype)
        self.frames_in = 0
        self.frames_out = 0
        self._finished = False
        self._stream = None
        if self.sr_from != self.sr_to:
            try:
                self._stream = soxr.ResampleStream(
                    self.sr_from, self.sr_to, channels, dtype=self.dtype.name, quality=quality
                )
            except (ValueError, RuntimeError, TypeError) as err:
                raise AudioError(f"cannot start resampling ({err})") from err

    def process(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        """Feed one block; return the output ready so far.

        Args:
            block: ``(channels, n)`` float array (``n`` may be 0, e.g. to flush).
            last: true for the final block: flushes the filter's tail.

        Returns:
            ``(channels, m)`` array of ``self.dtype``; ``m`` varies from block to block.

        Raises:
            ValueError: wrong shape or dtype.
            RuntimeError: called again after ``last=True``.
        """
        block = _check_audio(block, "block", self.channels)
        if self._finished:
            raise RuntimeError("StreamResampler.process called after last=True")
        x = np.ascontiguousarray(block.T, self.dtype)
        if self._stream is None:
            y = x.copy()
        else:
            try:
                y = self._stream.resample_chunk(x, last=last)
            except (ValueError, RuntimeError, TypeError) as err:
                raise AudioError(f"resampling failed ({err})") from err
        self._finished = last
        self.frames_in += x.shape[0]
        self.frames_out += y.shape[0]
        return np.ascontiguousarray(y.T)


def _write_format(ext: str) -> str:
    key = ext.lower() if ext.startswith(".") else f".{ext.lower()}"
    if key not in _WRITE_FORMATS:
        raise AudioError(f"cannot write '{ext}' files", hint="use .wav or .flac")
    return _WRITE_FORMATS[key]


def subtype_for(bits: str | int | None, ext: str, input_subtype: str | None = None) -> str:
    """Choose the sample encoding of an output file.

    With ``bits`` given: ``"16"`` → PCM_16, ``"24"`` → PCM_24, ``"32f"`` → FLOAT (WAV only).
    Without: the input's subtype where the output format holds it (WAV: PCM 16/24/32, FLOAT,
    DOUBLE; FLAC: PCM 16/24), PCM_24 for deeper inputs to FLAC, PCM_16 for everything else
    (lossy codecs, 8-bit, unknown input).

    Args:
        bits: ``"16"``, ``"24"``, ``"32f"`` (or 16, 24), or None to follow the input.
        ext: the output's extension, ``".wav"`` or ``".flac"``.
        input_subtype: :attr:`AudioInfo.subtype` of the input, if known.

    Returns:
        A libsndfile subtype name.

    Raises:
        AudioError: unknown extension or bit depth, or 32-bit float asked of FLAC.
    """
    fmt = _write_format(ext)
    if bits is not None:
        subtype = _BITS.get(str(bits).lower())
        if subtype is None:
            raise AudioError(f"unknown bit depth {bits!r}", hint="choose 16, 24 or 32f")
        if fmt == "FLAC" and subtype == "FLOAT":
            raise AudioError(
                "FLAC cannot hold 32-bit float samples", hint="use --bits 16 or 24, or --format wav"
            )
        return subtype
    if input_subtype in _KEEP[fmt]:
        return input_subtype
    return "PCM_24" if input_subtype in _DEEP else "PCM_16"


class AudioWriter:
    """Write an audio file block by block; it appears under its name only when complete.

    Samples go to a temporary file beside ``path``; a clean exit from the ``with`` block
    renames it into place, an exception (``KeyboardInterrupt`` included) removes it. Samples
    are rounded to the nearest step in integer formats, and clipped beyond ±1 (never wrapped).

    Example:
        >>> with AudioWriter(out, 44100, 2, input_subtype=info.subtype) as w:  # doctest: +SKIP
        ...     for block in blocks:
        ...         w.write(block)

    Args:
        path: the output file; ``.wav`` or ``.flac`` chooses the format.
        sample_rate: Hz, a positive whole number.
        channels: channel count of every block.
        bits: ``"16"``, ``"24"``, ``"32f"`` or None (see :func:`subtype_for`).
        input_subtype: the input's subtype, kept by default where possible.
        overwrite: replace an existing file.
        frames_hint: expected length; a WAV that will pass 4 GiB is written as RF64.

    Raises:
        AudioError: unsupported extension, bit depth, rate or channel count for the format.
        OutputExistsError: on entering, ``path`` exists and ``overwrite`` is false.
        PcsepError: on entering, the folder is missing or not writable.
    """

    def __init__(
        self,
        path: _PathArg,
        sample_rate: int,
        channels: int,
        *,
        bits: str | int | None = None,
        input_subtype: str | None = None,
        overwrite: bool = False,
        frames_hint: int | None = None,
    ) -> None:
        self.path = Path(path)
        try:
            fmt = _write_format(self.path.suffix)
            self.subtype = subtype_for(bits, self.path.suffix, input_subtype)
        except AudioError as err:
            raise AudioError(err.message, self.path, hint=err.hint) from None
        if not _whole_positive(sample_rate):
            raise AudioError(
                f"sample rate must be a positive whole number of Hz, got {sample_rate}", self.path
            )
        if not _whole_positive(channels):
            raise ValueError(f"channels must be >= 1, got {channels}")
        self.sample_rate, self.channels = int(sample_rate), int(channels)
        if fmt == "FLAC" and channels > _FLAC_MAX_CHANNELS:
            raise AudioError(
                f"FLAC holds at most 8 channels, this audio has {channels}",
                self.path,
                hint="use --format wav",
            )
        if fmt == "FLAC" and sample_rate > _FLAC_MAX_RATE:
            raise AudioError(
                f"FLAC holds at most {_FLAC_MAX_RATE} Hz, got {sample_rate}",
                self.path,
                hint="use --format wav",
            )
        size = (frames_hint or 0) * self.channels * _SAMPLE_BYTES.get(self.subtype, 4)
        self.format = "RF64" if fmt == "WAV" and size > _WAV_MAX_BYTES else fmt
        self.overwrite = overwrite
        self.frames_written = 0
        self._pending: PendingFile | None = None
        self._file: sf.SoundFile | None = None

    def __enter__(self) -> AudioWriter:
        self._pending = PendingFile(self.path, overwrite=self.overwrite)
        try:
            self._file = sf.SoundFile(
                self._pending.tmp,
                "w",
                self.sample_rate,
                self.channels,
                self.subtype,
                format=self.format,
            )
            _no_peak_chunk(self._file)
        except BaseException as err:
            self._pending.discard()
            if isinstance(err, _SF_ERRORS):
                raise self._failure(err) from err
            raise
        return self

    def write(self, block: np.ndarray) -> None:
        """Append ``block``, a float ``(channels, n)`` array.

        Raises:
            ValueError: wrong shape or dtype.
            AudioError: NaN/inf samples, disk full, or another write failure.
        """
        if self._file is None:
            raise RuntimeError("AudioWriter.write called outside its `with` block")
        block = _check_audio(block, "block", self.channels)
        if not np.isfinite(block).all():
            raise AudioError(
                "refusing to write NaN or infinite samples",
                self.path,
                hint="the input or the model produced them; rerun with --debug and report it",
            )
        bits = _PCM_BITS.get(self.subtype)
        try:
            for i in range(0, block.shape[1], _WRITE_SLICE):
                frames = block[:, i : i + _WRITE_SLICE].T  # soundfile's (frames, channels)
                self._file.write(frames if bits is None else _quantise(frames, bits))
        except _SF_ERRORS as err:
            raise self._failure(err) from err
        self.frames_written += block.shape[1]

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        file, pending = self._file, self._pending
        self._file = self._pending = None
        if file is None or pending is None:
            return
        if exc_type is not None:
            try:
                file.close()
            except _SF_ERRORS:
                pass  # the exception in flight is the one to report
            pending.discard()
            return
        try:
            file.close()  # writes FLAC's last frames and the WAV header: may fill the disk
        except _SF_ERRORS as err:
            pending.discard()
            raise self._failure(err) from err
        except BaseException:
            pending.discard()
            raise
        pending.commit()

    def _failure(self, err: BaseException) -> AudioError:
        # libsndfile reports every OS error as code 2 "System error."; the errno cffi saved
        # right after the failing call says which. The free-space test covers platforms
        # where that errno was overwritten.
        os_errno = None
        if isinstance(err, OSError):
            os_errno = err.errno
        elif getattr(err, "code", None) == 2:
            os_errno = getattr(getattr(sf, "_ffi", None), "errno", None) or -1
        if os_errno is not None:
            if os_errno in DISK_FULL_ERRNOS or _nearly_full(self.path.parent):
                os_errno = errno.ENOSPC
            if os_errno > 0:
                oserr = OSError(os_errno, os.strerror(os_errno))
                return output_error(oserr, self.path, AudioError)  # type: ignore[return-value]
        detail = getattr(err, "error_string", None) or str(err) or type(err).__name__
        return AudioError(
            f"cannot write ({detail})", self.path, hint="check the output folder and free space"
        )


_SFC_SET_ADD_PEAK_CHUNK = 0x1050  # libsndfile's sndfile.h


def _no_peak_chunk(f: sf.SoundFile) -> None:
    """Leave out the PEAK chunk of float WAVs: it stores the time of writing, so the same
    samples would give different bytes on every run (outputs must be bit-identical)."""
    if f.subtype in _FLOAT_SUBTYPES and f.format in ("WAV", "RF64"):
        sf._snd.sf_command(f._file, _SFC_SET_ADD_PEAK_CHUNK, sf._ffi.NULL, 0)


def _quantise(frames: np.ndarray, bits: int) -> np.ndarray:
    """Round float samples to ``bits``-bit PCM, clipped, as int16 or left-aligned int32.

    libsndfile's own float-to-PCM conversion for WAV truncates toward minus infinity
    (error up to one step, a -0.5 step DC offset); rounding here makes WAV and FLAC agree.
    """
    scale = 2.0 ** (bits - 1)
    q = np.rint(frames.astype(np.float64) * scale)
    np.clip(q, -scale, scale - 1, out=q)
    if bits == 16:
        return q.astype(np.int16)
    return q.astype(np.int32) << (32 - bits)  # libsndfile keeps the top bits of int32


def _whole_positive(value: float) -> bool:
    try:
        return bool(value > 0 and int(value) == value)
    except (TypeError, ValueError, OverflowError):
        return False


def _nearly_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < (1 << 20)
    except OSError:
        return False


def write_audio(
    path: _PathArg,
    data: np.ndarray,
    sample_rate: int,
    *,
    bits: str | int | None = None,
    input_subtype: str | None = None,
    overwrite: bool = False,
) -> None:
    """Write a whole signal to ``path`` atomically (see :class:`AudioWriter`).

    Args:
        path: ``.wav`` or ``.flac`` file to produce.
        data: float ``(channels, samples)``, full scale ±1 (clipped in integer formats).
        sample_rate: Hz.
        bits: ``"16"``, ``"24"``, ``"32f"`` or None (see :func:`subtype_for`).
        input_subtype: the input's subtype, kept by default where possible.
        overwrite: replace an existing file.

    Raises:
        ValueError: ``data`` is not a float ``(channels, samples)`` array.
        AudioError: unsupported format/bits/rate, NaN samples, disk full, write failure.
        OutputExistsError: ``path`` exists and ``overwrite`` is false.
        PcsepError: the folder is missing or not writable.
    """
    data = _check_audio(data, "data")
    with AudioWriter(
        path,
        sample_rate,
        data.shape[0],
        bits=bits,
        input_subtype=input_subtype,
        overwrite=overwrite,
        frames_hint=data.shape[1],
    ) as writer:
        writer.write(data)
