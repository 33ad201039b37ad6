"""What each output format holds and how it is encoded: :func:`encoding_for` decides, before
anything is written, and refuses what the format cannot hold (one :class:`AudioError` naming
it and the format that would do).

WAV and FLAC are lossless; MP3 (MPEG Layer III, LAME), Ogg Vorbis and Ogg Opus are lossy
codecs that libsndfile ≥ 1.1 encodes itself (no ffmpeg):

========  ==================  =====================================  ==========================
format    channels            sample rates                           settings
========  ==================  =====================================  ==========================
wav       any                 any                                    bits 16, 24, 32f
flac      1–8                 up to 655,350 Hz                       bits 16, 24
mp3       1–2                 8, 11.025, 12, 16, 22.05, 24, 32,      bitrate (constant), kbit/s
                              44.1, 48 kHz
ogg       1–255               up to 200 kHz (libvorbis' tables;      quality 0–10 (Vorbis)
(Vorbis)                      past them libsndfile crashes)
opus      1–255               8, 12, 16, 24, 48 kHz; other rates     bitrate, kbit/s
                              are resampled (soxr) to the lowest of
                              these at or above the input's (44.1 kHz
                              → 48 kHz), above 48 kHz to 48 kHz
========  ==================  =====================================  ==========================

Defaults: MP3 at the top bitrate of its MPEG version (320 kbit/s at 32–48 kHz), Opus at
64 kbit/s per channel, Vorbis at quality 6. Lossy codecs change the samples, so written stems
and residual no longer add up exactly to the mixture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pcsep_cli.errors import AudioError

__all__ = [
    "LOSSY_FORMATS",
    "WRITE_FORMATS",
    "Encoding",
    "bitrate_range",
    "encoding_for",
    "subtype_for",
]

# extension → (libsndfile container, the codec's subtype; None: chosen from bits / the input)
_CODECS: dict[str, tuple[str, str | None]] = {
    ".wav": ("WAV", None),
    ".flac": ("FLAC", None),
    ".mp3": ("MP3", "MPEG_LAYER_III"),
    ".ogg": ("OGG", "VORBIS"),
    ".opus": ("OGG", "OPUS"),
}
WRITE_FORMATS = tuple(ext[1:] for ext in _CODECS)
"""What ``--format`` takes: the output file's extension."""
LOSSY_FORMATS = ("mp3", "ogg", "opus")
_BITS = {"16": "PCM_16", "24": "PCM_24", "32f": "FLOAT"}
# Subtypes kept as they are when the input had them; lossy and 8-bit inputs become PCM_16.
_KEEP = {"WAV": {"PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"}, "FLAC": {"PCM_16", "PCM_24"}}
_DEEP = {"PCM_32", "FLOAT", "DOUBLE"}  # deeper than FLAC holds: written as PCM_24
_FLAC_MAX_CHANNELS, _FLAC_MAX_RATE = 8, 655_350
_OGG_MAX_CHANNELS = 255  # one byte in the Vorbis and Opus headers
_VORBIS_MAX_RATE = 200_000  # libvorbis has no setup for more; libsndfile then segfaults
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
# MP3 bitrates (kbit/s) by MPEG version, which the sample rate decides; the ranges are the ones
# libsndfile maps its compression level onto (MPEG-2.5 stops at 64 there).
_MP3_BITRATES = {
    (32000, 44100, 48000): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (16000, 22050, 24000): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (8000, 11025, 12000): (8, 16, 24, 32, 40, 48, 56, 64),
}
_MP3_RATES = tuple(sorted(r for rates in _MP3_BITRATES for r in rates))
_OPUS_KBPS_PER_CHANNEL = (6, 256)  # libsndfile's range for Opus
DEFAULT_OPUS_KBPS_PER_CHANNEL = 64
DEFAULT_VORBIS_QUALITY = 6.0


def bitrate_range(fmt: str) -> tuple[int, int] | None:
    """The bitrates (kbit/s, all channels) that ``fmt`` takes for some input: MP3 at any of
    its sample rates, Opus at any channel count; None for formats without a bitrate.

    A bitrate outside this range can be refused before the input is read; one inside may
    still not suit a given input (:func:`encoding_for` says which it takes).
    """
    if fmt == "mp3":
        every = [kbps for rates in _MP3_BITRATES.values() for kbps in rates]
        return min(every), max(every)
    if fmt == "opus":
        low, high = _OPUS_KBPS_PER_CHANNEL
        return low, high * _OGG_MAX_CHANNELS
    return None


def _codec(ext: str) -> tuple[str, str | None]:
    key = ext.lower() if ext.startswith(".") else f".{ext.lower()}"
    if key not in _CODECS:
        raise AudioError(
            f"cannot write '{ext}' files", hint="use " + ", ".join(f".{f}" for f in WRITE_FORMATS)
        )
    return _CODECS[key]


def subtype_for(bits: str | int | None, ext: str, input_subtype: str | None = None) -> str:
    """Choose the sample encoding of an output file.

    With ``bits`` given: ``"16"`` → PCM_16, ``"24"`` → PCM_24, ``"32f"`` → FLOAT (WAV only).
    Without: the input's subtype where the output format holds it (WAV: PCM 16/24/32, FLOAT,
    DOUBLE; FLAC: PCM 16/24), PCM_24 for deeper inputs to FLAC, PCM_16 for everything else
    (lossy codecs, 8-bit, unknown input). Lossy formats have their codec's subtype
    (MPEG_LAYER_III, VORBIS, OPUS) and take no ``bits``.

    Args:
        bits: ``"16"``, ``"24"``, ``"32f"`` (or 16, 24), or None to follow the input.
        ext: the output's extension: ``".wav"``, ``".flac"``, ``".mp3"``, ``".ogg"``, ``".opus"``.
        input_subtype: :attr:`AudioInfo.subtype` of the input, if known.

    Returns:
        A libsndfile subtype name.

    Raises:
        AudioError: unknown extension or bit depth, 32-bit float asked of FLAC, or a bit
            depth asked of a lossy format.
    """
    fmt, codec = _codec(ext)
    if codec is not None:
        if bits is not None:
            name = ext.lower().lstrip(".")
            raise AudioError(
                f"{name} is lossy and has no bit depth (--bits applies to wav and flac)",
                hint="leave out --bits" + ("" if name == "ogg" else ", or set --bitrate"),
            )
        return codec
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


@dataclass(frozen=True)
class Encoding:
    """How an output file is encoded (:func:`encoding_for`).

    Attributes:
        format: libsndfile's container: ``"WAV"``, ``"FLAC"``, ``"MP3"`` or ``"OGG"``
            (:class:`AudioWriter` makes a WAV past 4 GiB an RF64).
        subtype: libsndfile's sample encoding (``"PCM_24"``, ``"MPEG_LAYER_III"``, ``"OPUS"`` …).
        sample_rate: the file's rate (Hz): the input's, but for Opus from a rate it cannot hold.
        bitrate: kbit/s of the whole file (all channels) for MP3 (constant) and Opus (target).
        quality: Vorbis quality, 0 (smallest) to 10 (best).
    """

    format: str
    subtype: str
    sample_rate: int
    bitrate: int | None = None
    quality: float | None = None

    @property
    def lossy(self) -> bool:
        """Whether the codec changes the samples (MP3, Vorbis, Opus)."""
        return self.format in ("MP3", "OGG")

    def soundfile_settings(self, channels: int) -> dict[str, Any]:
        """``compression_level`` and ``bitrate_mode`` for :class:`soundfile.SoundFile`.

        libsndfile maps a compression level in [0, 1] linearly onto each codec's range
        (MP3: onto the MPEG version's bitrates, truncated; Opus: onto 6–256 kbit/s per channel;
        Vorbis: onto quality 1–0): the level here gives back exactly the bitrate or quality
        asked for.
        """
        if self.subtype == "MPEG_LAYER_III" and self.bitrate is not None:
            top, bottom = next(
                (max(b), min(b)) for rates, b in _MP3_BITRATES.items() if self.sample_rate in rates
            )
            level = (top - self.bitrate - 0.5) / (top - bottom)  # +0.5: survive the truncation
            return {"compression_level": min(1.0, max(0.0, level)), "bitrate_mode": "CONSTANT"}
        if self.subtype == "OPUS" and self.bitrate is not None:
            low, high = (k * 1000 for k in _OPUS_KBPS_PER_CHANNEL)
            per_channel = self.bitrate * 1000 // channels
            level = 1.0 - (per_channel - low + 0.5) / (high - low)
            return {"compression_level": min(1.0, max(0.0, level))}
        if self.subtype == "VORBIS" and self.quality is not None:
            return {"compression_level": 1.0 - self.quality / 10.0}
        return {}


def encoding_for(
    ext: str,
    sample_rate: int,
    channels: int,
    *,
    bits: str | int | None = None,
    input_subtype: str | None = None,
    bitrate: int | None = None,
    quality: float | None = None,
) -> Encoding:
    """How to write ``channels`` channels at ``sample_rate`` Hz as an ``ext`` file.

    See the module's table for what each format holds. Lossy formats take no ``bits``;
    ``bitrate`` (kbit/s, all channels together) is for MP3 (default 320, or the top of the
    MPEG version's range) and Opus (default 64 per channel); ``quality`` (0–10) for Vorbis
    (default 6).

    Raises:
        AudioError: an unknown extension, or something the format cannot hold: the channel
            count, the rate, the bit depth, a bitrate or quality it does not take (the message
            says what it holds, the hint which format would do).
    """
    fmt, codec = _codec(ext)
    subtype = subtype_for(bits, ext, input_subtype)
    name = ext.lower().lstrip(".")
    if codec is None:
        if bitrate is not None or quality is not None:
            option = "--bitrate" if bitrate is not None else "--quality"
            raise AudioError(
                f"{name} is lossless: {option} applies to lossy formats",
                hint=f"leave out {option}, or use --format mp3, ogg or opus",
            )
        if fmt == "FLAC":
            _check_flac(sample_rate, channels)
        return Encoding(fmt, subtype, sample_rate)
    if codec == "MPEG_LAYER_III":
        return _mp3(sample_rate, channels, bitrate, quality)
    if channels > _OGG_MAX_CHANNELS:
        raise AudioError(
            f"{name} holds at most {_OGG_MAX_CHANNELS} channels, this audio has {channels}",
            hint="use --format wav",
        )
    if codec == "VORBIS":
        if bitrate is not None:
            raise AudioError(
                "Vorbis is encoded by quality, not bitrate",
                hint="use --quality 0..10 with ogg, or --format mp3 or opus with --bitrate",
            )
        if sample_rate > _VORBIS_MAX_RATE:
            raise AudioError(
                f"Vorbis holds at most {_VORBIS_MAX_RATE} Hz, this audio is {sample_rate} Hz",
                hint="use --format opus (resampled to 48 kHz), flac or wav",
            )
        q = DEFAULT_VORBIS_QUALITY if quality is None else float(quality)
        if not 0.0 <= q <= 10.0:
            raise AudioError(f"Vorbis quality must be 0 to 10, got {q:g}", hint="set --quality")
        return Encoding(fmt, codec, sample_rate, quality=q)
    return _opus(sample_rate, channels, bitrate, quality)


def _check_flac(sample_rate: int, channels: int) -> None:
    if channels > _FLAC_MAX_CHANNELS:
        raise AudioError(
            f"FLAC holds at most 8 channels, this audio has {channels}", hint="use --format wav"
        )
    if sample_rate > _FLAC_MAX_RATE:
        raise AudioError(
            f"FLAC holds at most {_FLAC_MAX_RATE} Hz, got {sample_rate}", hint="use --format wav"
        )


def _mp3(sample_rate: int, channels: int, bitrate: int | None, quality: float | None) -> Encoding:
    if channels > 2:
        raise AudioError(
            f"MP3 holds 1 or 2 channels, this audio has {channels}",
            hint="use --format ogg or opus (up to 255 channels), flac or wav",
        )
    if sample_rate not in _MP3_RATES:
        raise AudioError(
            f"MP3 holds {', '.join(f'{r:g}' for r in _MP3_RATES)} Hz; this audio is "
            f"{sample_rate} Hz",
            hint="use --format opus (resampled), ogg or flac",
        )
    if quality is not None:
        raise AudioError(
            "MP3 is written at a constant bitrate: --quality is for ogg", hint="use --bitrate"
        )
    allowed = next(b for rates, b in _MP3_BITRATES.items() if sample_rate in rates)
    kbps = max(allowed) if bitrate is None else int(bitrate)
    if kbps not in allowed:
        raise AudioError(
            f"MP3 at {sample_rate} Hz takes a bitrate of {', '.join(map(str, allowed))} kbit/s, "
            f"not {bitrate}",
            hint="choose one of these for --bitrate",
        )
    return Encoding("MP3", "MPEG_LAYER_III", sample_rate, bitrate=kbps)


def _opus(sample_rate: int, channels: int, bitrate: int | None, quality: float | None) -> Encoding:
    if quality is not None:
        raise AudioError("Opus is encoded by bitrate: --quality is for ogg", hint="use --bitrate")
    low, high = _OPUS_KBPS_PER_CHANNEL
    kbps = DEFAULT_OPUS_KBPS_PER_CHANNEL * channels if bitrate is None else int(bitrate)
    if not low * channels <= kbps <= high * channels:
        raise AudioError(
            f"Opus takes {low} to {high} kbit/s per channel: {low * channels} to "
            f"{high * channels} for {channels} channel(s), not {bitrate}",
            hint="choose a --bitrate in that range",
        )
    rate = next((r for r in _OPUS_RATES if r >= sample_rate), _OPUS_RATES[-1])
    return Encoding("OGG", "OPUS", rate, bitrate=kbps)
