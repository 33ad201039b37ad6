"""Writing audio files with soundfile: WAV (PCM 16/24/32, float), FLAC (16/24), and the lossy
MP3, Ogg Vorbis and Ogg Opus that libsndfile ≥ 1.1 encodes itself (what each holds:
:mod:`pcsep_cli.io.encoding`).

Files are always written through a temporary file renamed into place
(:mod:`pcsep_cli.io.atomic`); :class:`AudioWriter` streams block by block, :func:`write_audio`
writes a whole signal. Samples are rounded to the nearest PCM step (never truncated) and float
WAVs carry no PEAK chunk, so the same samples always give the same bytes. The format is always
given to libsndfile explicitly: the temporary name is not what chooses it.

MP3 files carry LAME's info tag (encoder delay and padding), so libsndfile decodes them to the
length written. Opus from a rate it cannot hold is resampled as it streams; the file records
the rate it came from in its header (``input_samplerate``, as ``opusenc`` does).
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
from pcsep_cli.io.encoding import Encoding, encoding_for, subtype_for
from pcsep_cli.io.resample import StreamResampler

__all__ = ["AudioWriter", "Encoding", "encoding_for", "subtype_for", "write_audio"]

_PCM_BITS = {"PCM_16": 16, "PCM_24": 24, "PCM_32": 32}
_SAMPLE_BYTES = {"PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}
_WAV_MAX_BYTES = 2**32 - 2**20  # RIFF sizes are 32-bit; past this WAV becomes RF64
_WRITE_SLICE = 1 << 18  # frames per write call: bounds the transposed copy
_SFC_SET_ORIGINAL_SAMPLERATE = 0x1500  # libsndfile's sndfile.h (Opus)


class AudioWriter:
    """Write an audio file block by block; it appears under its name only when complete.

    Samples go to a temporary file beside ``path``; a clean exit from the ``with`` block
    renames it into place, an exception (``KeyboardInterrupt`` included) removes it. Samples
    are rounded to the nearest step in integer formats, and clipped beyond ±1 (never wrapped).
    The format is set explicitly (:func:`encoding_for`), never guessed from the temporary
    name. Opus from a rate it cannot hold is resampled as it streams (:attr:`encoding` gives
    the file's rate); blocks are always given at ``sample_rate``.

    Example:
        >>> with AudioWriter(out, 44100, 2, input_subtype=info.subtype) as w:  # doctest: +SKIP
        ...     for block in blocks:
        ...         w.write(block)

    Args:
        path: the output file; its extension (``.wav``, ``.flac``, ``.mp3``, ``.ogg``,
            ``.opus``) chooses the format.
        sample_rate: Hz of the blocks, a positive whole number.
        channels: channel count of every block.
        bits: ``"16"``, ``"24"``, ``"32f"`` or None (see :func:`subtype_for`); WAV and FLAC.
        input_subtype: the input's subtype, kept by default where possible.
        overwrite: replace an existing file.
        frames_hint: expected length; a WAV that will pass 4 GiB is written as RF64.
        commit: rename the file into place on a clean exit; with False the complete
            temporary file is left in :attr:`pending` for the caller to commit (with others,
            :func:`~pcsep_cli.io.atomic.commit_together`) or discard.
        bitrate: kbit/s of MP3 and Opus (see :func:`encoding_for`).
        quality: Vorbis quality, 0–10.

    Raises:
        AudioError: unsupported extension, bit depth, rate, channel count, bitrate or quality
            for the format.
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
        bitrate: int | None = None,
        quality: float | None = None,
    ) -> None:
        self.path = Path(path)
        self.commit = commit
        self.pending: PendingFile | None = None
        try:
            subtype_for(bits, self.path.suffix, input_subtype)  # the extension and bits first
        except AudioError as err:
            raise AudioError(err.message, self.path, hint=err.hint) from None
        if not _whole_positive(sample_rate):
            raise AudioError(
                f"sample rate must be a positive whole number of Hz, got {sample_rate}", self.path
            )
        if not _whole_positive(channels):
            raise ValueError(f"channels must be >= 1, got {channels}")
        self.sample_rate, self.channels = int(sample_rate), int(channels)
        try:
            self.encoding = encoding_for(
                self.path.suffix,
                self.sample_rate,
                self.channels,
                bits=bits,
                input_subtype=input_subtype,
                bitrate=bitrate,
                quality=quality,
            )
        except AudioError as err:
            raise AudioError(err.message, self.path, hint=err.hint) from None
        self.subtype = self.encoding.subtype
        fmt = self.encoding.format
        size = (frames_hint or 0) * self.channels * _SAMPLE_BYTES.get(self.subtype, 4)
        self.format = "RF64" if fmt == "WAV" and size > _WAV_MAX_BYTES else fmt
        self.overwrite = overwrite
        self.frames_written = 0
        self._pending: PendingFile | None = None
        self._file: sf.SoundFile | None = None
        self._resampler: StreamResampler | None = None

    def __enter__(self) -> AudioWriter:
        self._pending = PendingFile(self.path, overwrite=self.overwrite)
        enc = self.encoding
        try:
            self._file = sf.SoundFile(
                self._pending.tmp,
                "w",
                enc.sample_rate,
                self.channels,
                self.subtype,
                format=self.format,
                **enc.soundfile_settings(self.channels),
            )
            _no_peak_chunk(self._file)
            if enc.sample_rate != self.sample_rate:
                _original_rate(self._file, self.sample_rate)
                self._resampler = StreamResampler(
                    self.sample_rate, enc.sample_rate, self.channels, dtype=np.float32
                )
        except BaseException as err:
            if self._file is not None:
                self._file.close()
                self._file = None
            self._pending.discard()
            if isinstance(err, SF_ERRORS):
                raise self._failure(err) from err
            raise
        return self

    def write(self, block: np.ndarray) -> None:
        """Append ``block``, a float ``(channels, n)`` array at ``sample_rate``.

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
        n = block.shape[1]
        if self._resampler is not None:
            block = self._resampler.process(block)
        self._put(self._file, block)
        self.frames_written += n

    def _put(self, file: sf.SoundFile, block: np.ndarray) -> None:
        bits = _PCM_BITS.get(self.subtype)
        try:
            for i in range(0, block.shape[1], _WRITE_SLICE):
                frames = block[:, i : i + _WRITE_SLICE].T  # soundfile's (frames, channels)
                file.write(frames if bits is None else _quantise(frames, bits))
        except SF_ERRORS as err:
            raise self._failure(err) from err

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        file, pending, resampler = self._file, self._pending, self._resampler
        self._file = self._pending = self._resampler = None
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
            if resampler is not None:  # the resampling filter's tail
                self._put(file, resampler.process(np.zeros((self.channels, 0), np.float32), True))
            # Writes FLAC's and the codecs' last frames, the WAV header, MP3's info tag: may
            # fill the disk.
            file.close()
        except SF_ERRORS as err:
            pending.discard()
            raise self._failure(err) from err
        except BaseException:
            try:
                file.close()
            except SF_ERRORS:
                pass
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


def _original_rate(f: sf.SoundFile, rate: int) -> None:
    """Record the rate an Opus file was resampled from (its header's ``input_samplerate``):
    ``opusdec`` gives that rate back; libsndfile decodes at the Opus rate at or above it."""
    value = sf._ffi.new("int*", int(rate))
    sf._snd.sf_command(f._file, _SFC_SET_ORIGINAL_SAMPLERATE, value, sf._ffi.sizeof("int"))


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
    bitrate: int | None = None,
    quality: float | None = None,
) -> None:
    """Write a whole signal to ``path`` atomically (see :class:`AudioWriter`).

    Args:
        path: ``.wav``, ``.flac``, ``.mp3``, ``.ogg`` or ``.opus`` file to produce.
        data: float ``(channels, samples)``, full scale ±1 (clipped in integer formats).
        sample_rate: Hz.
        bits: ``"16"``, ``"24"``, ``"32f"`` or None (see :func:`subtype_for`).
        input_subtype: the input's subtype, kept by default where possible.
        overwrite: replace an existing file.
        bitrate: kbit/s of MP3 and Opus; quality: of Vorbis (see :func:`encoding_for`).

    Raises:
        ValueError: ``data`` is not a float ``(channels, samples)`` array.
        AudioError: unsupported format/bits/rate/channels/bitrate, NaN samples, disk full,
            write failure.
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
        bitrate=bitrate,
        quality=quality,
    ) as writer:
        writer.write(data)
