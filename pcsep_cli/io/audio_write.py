"""Writing audio files: WAV (PCM 16/24/32, float) or FLAC (16/24) with soundfile.

Files are always written through a temporary file renamed into place
(:mod:`pcsep_cli.io.atomic`); :class:`AudioWriter` streams block by block, :func:`write_audio`
writes a whole signal. Samples are rounded to the nearest PCM step (never truncated) and float
WAVs carry no PEAK chunk, so the same samples always give the same bytes.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from types import TracebackType

import numpy as np
import soundfile as sf

from pcsep_cli.errors import AudioError
from pcsep_cli.io.atomic import DISK_FULL_ERRNOS, PendingFile, output_error
from pcsep_cli.io.audio_common import FLOAT_SUBTYPES, SF_ERRORS, PathArg, check_audio

__all__ = ["AudioWriter", "subtype_for", "write_audio"]

_WRITE_FORMATS = {".wav": "WAV", ".flac": "FLAC"}
_BITS = {"16": "PCM_16", "24": "PCM_24", "32f": "FLOAT"}
# Subtypes kept as they are when the input had them; lossy and 8-bit inputs become PCM_16.
_KEEP = {"WAV": {"PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"}, "FLAC": {"PCM_16", "PCM_24"}}
_DEEP = {"PCM_32", "FLOAT", "DOUBLE"}  # deeper than FLAC holds: written as PCM_24
_PCM_BITS = {"PCM_16": 16, "PCM_24": 24, "PCM_32": 32}
_SAMPLE_BYTES = {"PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}
_FLAC_MAX_CHANNELS, _FLAC_MAX_RATE = 8, 655_350
_WAV_MAX_BYTES = 2**32 - 2**20  # RIFF sizes are 32-bit; past this WAV becomes RF64
_WRITE_SLICE = 1 << 18  # frames per write call: bounds the transposed copy


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
        commit: rename the file into place on a clean exit; with False the complete
            temporary file is left in :attr:`pending` for the caller to commit (with others,
            :func:`~pcsep_cli.io.atomic.commit_together`) or discard.

    Raises:
        AudioError: unsupported extension, bit depth, rate or channel count for the format.
        OutputExistsError: on entering, ``path`` exists and ``overwrite`` is false.
        PcsepError: on entering, the folder is missing or not writable.
    """

    def __init__(
        self,
        path: PathArg,
        sample_rate: int,
        channels: int,
        *,
        bits: str | int | None = None,
        input_subtype: str | None = None,
        overwrite: bool = False,
        frames_hint: int | None = None,
        commit: bool = True,
    ) -> None:
        self.path = Path(path)
        self.commit = commit
        self.pending: PendingFile | None = None
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
            if isinstance(err, SF_ERRORS):
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
        block = check_audio(block, "block", self.channels)
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
        except SF_ERRORS as err:
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
            except SF_ERRORS:
                pass  # the exception in flight is the one to report
            pending.discard()
            return
        try:
            file.close()  # writes FLAC's last frames and the WAV header: may fill the disk
        except SF_ERRORS as err:
            pending.discard()
            raise self._failure(err) from err
        except BaseException:
            pending.discard()
            raise
        if self.commit:
            pending.commit()
        else:
            self.pending = pending

    def _failure(self, err: BaseException) -> AudioError:
        return write_failure(err, self.path)


def write_failure(err: BaseException, path: Path) -> AudioError:
    """The one-line error for a failed soundfile write of ``path`` (disk full, permissions...).

    Args:
        err: what soundfile or the OS raised.
        path: the file being written (its final name).
    """
    # libsndfile reports every OS error as code 2 "System error."; the errno cffi saved
    # right after the failing call says which. The free-space test covers platforms
    # where that errno was overwritten.
    os_errno = None
    if isinstance(err, OSError):
        os_errno = err.errno
    elif getattr(err, "code", None) == 2:
        os_errno = getattr(getattr(sf, "_ffi", None), "errno", None) or -1
    if os_errno is not None:
        if os_errno in DISK_FULL_ERRNOS or _nearly_full(path.parent):
            os_errno = errno.ENOSPC
        if os_errno > 0:
            oserr = OSError(os_errno, os.strerror(os_errno))
            return output_error(oserr, path, AudioError)  # type: ignore[return-value]
    detail = getattr(err, "error_string", None) or str(err) or type(err).__name__
    return AudioError(
        f"cannot write ({detail})", path, hint="check the output folder and free space"
    )


_SFC_SET_ADD_PEAK_CHUNK = 0x1050  # libsndfile's sndfile.h


def _no_peak_chunk(f: sf.SoundFile) -> None:
    """Leave out the PEAK chunk of float WAVs: it stores the time of writing, so the same
    samples would give different bytes on every run (outputs must be bit-identical)."""
    if f.subtype in FLOAT_SUBTYPES and f.format in ("WAV", "RF64"):
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
    path: PathArg,
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
    data = check_audio(data, "data")
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
