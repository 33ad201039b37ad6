"""The :class:`Separator`: a loaded model and chunked inference, performers → conditions →
masks → stems + residual (:mod:`pcsep_cli.separate` shows the whole API).

- :meth:`Separator.condition` classifies each performer once (instrument + confidence; ``none``
  is detected and not separated) and runs the visual encoder and FiLM trunk once per performer.
- :meth:`Separator.stream` takes overlapping blocks (``block, overlap = block_sizes(sr, C, P)``,
  ``iter_blocks(path, block, overlap=overlap)``; 20 s chunks sharing 10% by default, shorter
  at high rates and channel counts so a block's arrays stay near 512 MB):
  per block the mono mixture is resampled to the model's rate, the audio encoder runs once and
  all performers' decoders run as one batch; masks are carried to the input's own rate and
  channels (:mod:`pcsep_cli.separate.masks`), normalised so ``Σ masks ≤ 1``, applied to every
  channel's STFT and inverted. The residual is the block minus the sum of its stems, so
  ``Σ stems + residual = mixture`` holds to float rounding. Blocks are cross-faded with
  ``sin²``/``cos²`` ramps that sum to one over the overlap, and only one block is held at a
  time: memory does not grow with duration.
- :meth:`Separator.separate` does both for a signal held in memory; files go through
  :func:`pcsep_cli.separate.output.run_job`, which drives a Separator from above.

Spatial models (``config.spatial.enabled``, pcsep-spatial) also hear where each performer
stands: given the microphones (``microphones=``, ``--mics``) and each performer's place (the
footprint's centre lifted by :func:`sound_point`, or ``sources=``), :meth:`condition` computes
steering vectors once; per block every channel (not the downmix) goes to the model's rate,
the mono network runs on their mean, and the spatial head
(:class:`~pcsep_cli.nets.spatial.SpatialFusion`) fuses its masks with each performer's beam
score. The first block also checks the channel order
(:func:`~pcsep_cli.nets.spatial.channel_order_check`). Without microphones (or positions) a
spatial model runs exactly the mono path and ``Conditions.spatial_note`` says so.

Label mode (``instruments=``, ``--instruments``; the paper's reference, needs a model built
with ``conditioning`` ``labels`` or ``both``): the net is conditioned on the labels alone. With a
cloud, the performers found in it (left to right) must match the labels one to one and only
give the stems their positions; without one, positions are None.

Progress: callables receive :class:`~pcsep_cli.progress.Progress` events (stage ``separate``,
unit ``s``: seconds of audio, from 0 when the first block begins). Threads: torch's own
default (one per core); a caller may set ``torch.set_num_threads`` before. A
:class:`Separator` holds no state between calls, so threads may share one.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from pcsep_cli.errors import ModelError, SceneError
from pcsep_cli.io.resample import resample
from pcsep_cli.nets.model import DEFAULT_VIEWS
from pcsep_cli.nets.spatial import channel_order_check, diffuse_coherence, steering
from pcsep_cli.nets.stft import istft, stft
from pcsep_cli.progress import Progress, ProgressFn
from pcsep_cli.scene import canonical, find_scene_performers
from pcsep_cli.separate.masks import RateMap, normalise
from pcsep_cli.separate.stream import array_blocks, overlap_add
from pcsep_cli.separate.types import (
    Conditions,
    Detection,
    Result,
    stem_names,
)

if TYPE_CHECKING:  # pragma: no cover
    from pcsep_cli.io.mics import Microphones
    from pcsep_cli.io.pointcloud import PointCloud
    from pcsep_cli.nets.model import SeparationNet
    from pcsep_cli.scene import Performer

__all__ = [
    "DEFAULT_OVERLAP",
    "DEFAULT_SEGMENT",
    "Separator",
    "resolve_device",
    "sound_point",
]

DEFAULT_SEGMENT = 20.0  # s: long enough for context, short enough for flat memory
DEFAULT_OVERLAP = 0.1  # crossfades of 2 s; work done twice: 11%
NONE = "none"
# Memory of one block (see ``_frame_bytes``): at 44.1 kHz stereo with a few performers the
# default 20 s fit; at 192 kHz x 8 channels blocks get shorter (4 s with 4 performers), so
# the peak follows the block, not rate x channels. Blocks never drop below MIN_SEGMENT.
_BLOCK_BUDGET = 512 << 20
_GROUP_BUDGET = 128 << 20  # bytes of spectra per group of channels in the iSTFT
MIN_SEGMENT = 2.0  # s: the network was trained on 1.5 s excerpts; shorter loses context


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` → CUDA, then MPS, then CPU; a named device must be available.

    Raises:
        ModelError: the device asked for is not available or not known.
    """
    name = str(device)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ModelError(f"unknown device {name!r}", hint="use auto, cpu, cuda or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelError("CUDA is not available on this machine", hint="use --device cpu")
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ModelError("MPS is not available on this machine", hint="use --device cpu")
    return dev


_GROUP_FACTOR = 3  # spectra alive per channel in the iSTFT: masked spectrum, frames, window


def sound_point(performer: Performer, share: float) -> np.ndarray:
    """Where a performer's sound is taken to come from: above the footprint's centre by
    ``share`` of the cluster's height (its 95th height percentile above the floor).

    Returns:
        float64 ``[3]`` in the cloud's coordinates.
    """
    local = performer.local_points()
    top = float(np.percentile(local[:, 2], 95)) if len(local) else 1.7
    up = np.asarray(performer.frame, dtype=np.float64)[2, :3]  # the floor frame's z, in cloud axes
    return np.asarray(performer.position, dtype=np.float64) + up * (share * max(top, 0.0))


def _frame_bytes(channels: int, stems: int) -> int:
    """Bytes one block holds per sample frame (measured shape, see the constants above):
    the block as read and transposed (8 C), the stems, residual and their sum (4 C (P + 2)),
    masks on the input's grid with their interpolation temporaries (~40 P: about two bins per
    frame, four float32 arrays), and one channel's spectra in the iSTFT (~(50 P + 16))."""
    return 8 * channels + 4 * channels * (stems + 2) + 40 * stems + 50 * stems + 16


class Separator:
    """A loaded model and the settings of chunked inference.

    Args:
        net: the separation network (eval mode), e.g. from :func:`pcsep_cli.hub.load_model`.
        device: where it runs (the net is moved there).
        segment: chunk length in seconds.
        overlap: fraction of a chunk shared with the next, in ``[0, 0.5]``.
        views: headings each performer's cloud is encoded from, averaged
            (:meth:`SeparationNet.encode_clouds`); 1 reads each cloud once.

    Raises:
        ValueError: ``segment`` not positive, ``overlap`` outside ``[0, 0.5]``, ``views < 1``.
    """

    def __init__(
        self,
        net: SeparationNet,
        *,
        device: str | torch.device = "cpu",
        segment: float = DEFAULT_SEGMENT,
        overlap: float = DEFAULT_OVERLAP,
        views: int = DEFAULT_VIEWS,
    ) -> None:
        if not segment > 0 or not math.isfinite(segment):
            raise ValueError(f"segment must be a positive number of seconds, got {segment}")
        if not 0 <= overlap <= 0.5:
            raise ValueError(f"overlap must be in [0, 0.5], got {overlap}")
        if views < 1:
            raise ValueError(f"views must be >= 1, got {views}")
        self.device = resolve_device(device)
        self.net = net.to(self.device).eval()
        self.segment, self.overlap, self.views = float(segment), float(overlap), int(views)

    @classmethod
    def from_pretrained(
        cls,
        ref: str | None = None,
        *,
        device: str | torch.device = "auto",
        offline: bool | None = None,
        segment: float = DEFAULT_SEGMENT,
        overlap: float = DEFAULT_OVERLAP,
        views: int = DEFAULT_VIEWS,
    ) -> Separator:
        """Load a model by reference (bundled name, directory, ``owner/name[@rev]``, None:
        the default; see :mod:`pcsep_cli.hub`).

        Raises:
            ModelError: the reference cannot be resolved, the checkpoint is refused, or the
                device is not available.
        """
        from pcsep_cli.hub.models import load_model

        dev = resolve_device(device)
        return cls(
            load_model(ref, device=dev, offline=offline),
            device=dev,
            segment=segment,
            overlap=overlap,
            views=views,
        )

    @property
    def sample_rate(self) -> int:
        """The model's rate (Hz)."""
        return int(self.net.config.sample_rate)

    @property
    def classes(self) -> tuple[str, ...]:
        """The model's classes, ``none`` last."""
        return tuple(self.net.config.classes)

    @property
    def uses_microphones(self) -> bool:
        """Whether the model reads microphone geometry; when not, ``--mics`` is recorded in
        the manifest but changes no stem."""
        return bool(self.net.accepts_microphones)

    def model_info(self) -> dict[str, Any]:
        """``{"id", "revision", "commit", "source", "path"}`` (ids None for unsaved nets)."""
        from pcsep_cli.hub.models import describe

        try:
            return describe(self.net)
        except ValueError:
            return {"id": None, "revision": None, "commit": None, "source": None, "path": None}

    def block_sizes(self, sample_rate: int, channels: int = 1, stems: int = 1) -> tuple[int, int]:
        """``(block, overlap)`` in samples at ``sample_rate``, for ``iter_blocks``.

        The block is ``segment`` seconds, shortened (to no less than ``MIN_SEGMENT``) when
        that many samples of ``channels`` channels and ``stems`` stems would hold more than
        ~512 MB of arrays: memory is bounded by the block, whatever the rate and channels.
        """
        block = max(2, round(self.segment * sample_rate))
        fit = _BLOCK_BUDGET // _frame_bytes(max(1, channels), max(1, stems))
        block = min(block, max(fit, round(MIN_SEGMENT * sample_rate)))
        return block, min(block // 2, round(self.overlap * block))

    # -- conditions -----------------------------------------------------------------------

    @torch.inference_mode()
    def condition(
        self,
        performers: Sequence[Performer] | None = None,
        instruments: Sequence[str] | None = None,
        *,
        microphones: Microphones | None = None,
        sources: np.ndarray | None = None,
    ) -> Conditions:
        """Classify and encode the performers once.

        Args:
            performers: left to right (:func:`find_scene_performers`); may be None in label
                mode (no positions then).
            instruments: label mode: one class per performer, left to right; the model must
                accept labels. None: classify each performer's cloud.
            microphones: the recording's geometry, one per channel (``--mics``); read by a
                model with a spatial head (:attr:`uses_microphones`), ignored otherwise.
            sources: float ``[P, 3]``, where each performer's sound comes from, one per
                performer (``none`` ones included), cloud frame in metres; None: taken from
                the performers' clusters (:func:`sound_point`).

        Raises:
            ModelError: the model cannot take this kind of condition, or an unknown class.
            SceneError: no performer, counts that disagree, or every cluster is ``none``.
        """
        net = self.net
        if instruments is not None:
            emb, conf = self._label_condition(list(instruments), performers)
            labels = list(instruments)
        else:
            if not net.accepts_clouds:
                raise ModelError(
                    "this model is conditioned on instrument labels only",
                    self.model_info()["path"],
                    "pass --instruments, e.g. --instruments violin,cello",
                )
            if not performers:
                raise SceneError("no performer to separate", hint="pass a cloud with performers")
            emb, labels, conf = self._classify(performers)
        keep = [i for i, lab in enumerate(labels) if lab != NONE]
        if not keep:
            raise SceneError(
                f"all {len(labels)} performers found look like no instrument (none)",
                hint="look with `pcsep inspect CLOUD --model REF`, or pass --instruments",
            )
        names = iter(stem_names([labels[i] for i in keep]))
        detections = []
        for i, lab in enumerate(labels):
            perf = performers[i] if performers is not None else None
            pos = None if perf is None else tuple(float(v) for v in perf.position)
            detections.append(
                Detection(
                    name=next(names) if lab != NONE else None,
                    instrument=lab,
                    confidence=conf[i],
                    position=pos,  # type: ignore[arg-type]
                    points=0 if perf is None else len(perf.points),
                )
            )
        film = net.cond_trunk(emb[torch.tensor(keep, device=emb.device)])
        groups = torch.tensor([self.classes.index(labels[i]) for i in keep], device=self.device)
        cond = Conditions(detections, film, groups)
        if net.spatial is not None:
            self._spatial_condition(cond, keep, performers, microphones, sources)
        return cond

    def _spatial_condition(
        self,
        cond: Conditions,
        keep: list[int],
        performers: Sequence[Performer] | None,
        microphones: Microphones | None,
        sources: np.ndarray | None,
    ) -> None:
        """Steering vectors of the kept performers, or the note that says why there are none."""
        spatial = self.net.config.spatial
        if microphones is None or len(microphones) < 2:
            cond.spatial_note = (
                "no microphone geometry (--mics): this spatial model ran on the mono path, "
                "as pcsep-base does"
                if microphones is None
                else "one microphone: this spatial model ran on the mono path"
            )
            return
        if sources is None and performers is None:
            cond.spatial_note = (
                "no performer positions (no cloud): this spatial model ran on the mono path"
            )
            return
        if sources is None:
            assert performers is not None
            sources = np.stack([sound_point(performers[i], spatial.source_height) for i in keep])
        else:
            sources = np.asarray(sources, dtype=np.float64)[keep]
        cfg = self.net.config
        freqs = cfg.stft.frequencies(cfg.sample_rate)
        cond.sources = sources
        cond.steer = steering(
            sources,
            microphones.positions,
            microphones.directions,
            microphones.coefficients,
            freqs,
            spatial.speed_of_sound,
        ).to(self.device)
        if spatial.covariance:  # only a model that fits covariances reads it
            cond.coherence = diffuse_coherence(
                microphones.positions, freqs, spatial.speed_of_sound
            ).to(self.device)

    @torch.inference_mode()
    def classify(self, performers: Sequence[Performer]) -> list[tuple[str, float]]:
        """``(instrument, confidence)`` of each performer from its cloud (``none`` included).

        Raises:
            ModelError: the model takes labels only.
        """
        if not self.net.accepts_clouds:
            raise ModelError(
                "this model is conditioned on instrument labels only: it cannot classify clouds",
                self.model_info()["path"],
                "use a model built with conditioning cloud or both",
            )
        if not performers:
            return []
        _, labels, conf = self._classify(performers)
        return list(zip(labels, conf, strict=True))

    def _classify(self, performers: Sequence[Performer]) -> tuple[Tensor, list[str], list[float]]:
        emb, logp = self.net.encode_clouds(self._clouds(performers), self.views)
        conf, idx = logp.exp().max(dim=1)
        # Below the model's calibrated confidence a cluster is `none` (seats, stands, walls).
        floor = self.net.config.none_below
        labels = [
            self.classes[int(i)] if c >= floor else NONE for i, c in zip(idx, conf, strict=True)
        ]
        return emb, labels, [float(c) for c in conf]

    def _label_condition(
        self, instruments: list[str], performers: Sequence[Performer] | None
    ) -> tuple[Tensor, list[float]]:
        classes = self.classes
        if not self.net.accepts_labels:
            raise ModelError(
                "this model is conditioned on point clouds only; --instruments needs a model "
                "built with conditioning labels or both",
                self.model_info()["path"],
                "drop --instruments",
            )
        bad = [i for i in instruments if i not in classes[:-1]]
        if bad or not instruments:
            raise ModelError(
                f"unknown instrument {bad[0] if bad else '(none given)'!r}",
                hint=f"this model knows {', '.join(classes[:-1])}",
            )
        if performers is not None and len(performers) != len(instruments):
            raise SceneError(
                f"{len(performers)} performers found in the cloud, {len(instruments)} "
                "instruments given",
                hint="give one instrument per performer, left to right, or leave out the cloud",
            )
        labels = torch.tensor([classes.index(i) for i in instruments], device=self.device)
        return self.net.label_embedding(labels), [1.0] * len(instruments)

    def _clouds(self, performers: Sequence[Performer]) -> list[np.ndarray]:
        vis = self.net.config.visual
        if vis.in_channels != 3:
            raise ModelError(
                f"visual.in_channels {vis.in_channels} is not supported for inference (3: xyz)",
                self.model_info()["path"],
            )
        # The training frame: levelled floor, footprint centred, lowest point at z = 0.
        return [canonical(p.local_points()) for p in performers]

    # -- audio ------------------------------------------------------------------------------

    def masks(self, mag: Tensor, film: Tensor) -> Tensor:
        """Masks of P performers for one mixture (the model's forward without its condition
        encoder, which :meth:`condition` ran once).

        Args:
            mag: ``(1, 1, F, T)`` mixture magnitudes on the model's linear grid.
            film: ``(P, cond_dim)`` from :meth:`condition`.

        Returns:
            ``(P, F, T)`` in [0, 1].
        """
        mix_index = torch.zeros(film.shape[0], dtype=torch.long, device=film.device)
        return torch.sigmoid(self.net.mask_logits(mag, film, mix_index))[:, 0]

    def spatial_masks(self, spec: Tensor, cond: Conditions) -> Tensor:
        """Masks of a model with a spatial head from the channels' spectra.

        Args:
            spec: complex ``(M, F, T)``, every channel on the model's linear grid.
            cond: from :meth:`condition`, with ``steer`` set.

        Returns:
            ``(P, F, T)`` in [0, 1].
        """
        assert self.net.spatial is not None and cond.steer is not None
        assert cond.groups is not None
        mono = spec.mean(dim=0).abs()
        mix_index = torch.zeros(cond.film.shape[0], dtype=torch.long, device=cond.film.device)
        logits = self.net.mask_logits(mono[None, None], cond.film, mix_index)[:, 0]
        return self.net.spatial_masks(
            spec, mono, logits, cond.steer, cond.groups, coherence=cond.coherence
        )

    def _model_masks(self, x: np.ndarray, rmap: RateMap, cond: Conditions) -> Tensor:
        """Masks on the model's grid for one block ``(C, n)`` at the input's rate."""
        cfg = self.net.config
        spatial = cond.steer is not None
        chans = x if spatial else x.mean(axis=0, keepdims=True)
        if rmap.sr_in != cfg.sample_rate:
            chans = resample(chans, rmap.sr_in, cfg.sample_rate)
        if chans.shape[1] < 2:
            chans = np.pad(chans, ((0, 0), (0, 2 - chans.shape[1])))
        spec = stft(torch.from_numpy(np.ascontiguousarray(chans)).to(self.device), cfg.stft)
        if not spatial:
            return self.masks(spec.abs()[None], cond.film)
        if cond.channel_check is None:
            freqs = cfg.stft.frequencies(cfg.sample_rate)
            cond.channel_check = channel_order_check(spec, cond.steer, freqs)
        return self.spatial_masks(spec, cond)

    @torch.inference_mode()
    def _chunk(self, x: np.ndarray, rmap: RateMap, cond: Conditions) -> np.ndarray:
        """One block ``(C, n)`` → ``(P + 1, C, n)``: stems, then the residual."""
        film = cond.film
        n = x.shape[1]
        m = normalise(rmap.carry(self._model_masks(x, rmap, cond), max(n, 2)))
        xin = x if n >= 2 else np.pad(x, ((0, 0), (0, 2 - n)))
        p, channels = film.shape[0], x.shape[0]
        out = np.empty((p + 1, channels, n), dtype=np.float32)
        # Channels in groups: few STFT/iSTFT calls, yet bounded memory for 8-channel input.
        group = max(1, min(channels, _GROUP_BUDGET // max(1, _GROUP_FACTOR * m.numel() * 8)))
        for c in range(0, channels, group):
            chans = torch.from_numpy(np.ascontiguousarray(xin[c : c + group])).to(self.device)
            spec = m[:, None] * stft(chans, rmap.stft_in)[None]  # (P, g, F, T)
            wav = istft(spec, rmap.stft_in, max(n, 2))[..., :n]
            del spec
            out[:p, c : c + group] = wav.float().cpu().numpy()
        np.subtract(x, out[:p].sum(axis=0), out=out[p])
        return out

    def stream(
        self,
        blocks: Iterable[np.ndarray],
        sample_rate: int,
        conditions: Conditions,
        *,
        total_frames: int | None = None,
        progress: ProgressFn | None = None,
    ) -> Iterator[np.ndarray]:
        """Separate overlapping blocks into consecutive, non-overlapping output blocks.

        Args:
            blocks: float32 ``(C, n)`` blocks of ``block_sizes(sample_rate, C, P)`` (P: the
                conditions' performers; each repeats
                the previous one's last ``overlap`` samples), e.g. from ``iter_blocks``.
            sample_rate: their rate (Hz).
            conditions: from :meth:`condition`.
            total_frames: the signal's length, for progress.
            progress: called before the first block and after each one, with the seconds of
                audio done (stage ``separate``, unit ``s``).

        Yields:
            float32 ``(P + 1, C, m)``: P stems then the residual; concatenated along the
            last axis they cover the signal once.
        """
        it = iter(blocks)
        first = next(it, None)
        if first is None:
            return
        stems = conditions.film.shape[0]
        size, overlap = self.block_sizes(sample_rate, first.shape[0], stems)
        if first.shape[-1] > size:
            raise ValueError(
                f"blocks of {first.shape[-1]} samples, expected at most {size}: cut them with "
                f"block_sizes({sample_rate}, {first.shape[0]}, {stems})"
            )
        rmap = RateMap(self.net.config.stft, self.sample_rate, int(sample_rate))

        def process(block: np.ndarray) -> np.ndarray:
            return self._chunk(block, rmap, conditions)

        total = None if total_frames is None else total_frames / sample_rate
        if progress is not None:
            progress(Progress("separate", 0.0, total, "s"))
        done = 0
        for ready in overlap_add(itertools.chain([first], it), overlap, process):
            done += ready.shape[-1]
            yield ready
            if progress is not None:
                progress(Progress("separate", done / sample_rate, total, "s"))

    def separate(
        self,
        audio: np.ndarray,
        sample_rate: int,
        clouds: PointCloud | Sequence[PointCloud] | None = None,
        *,
        performers: Sequence[Performer] | None = None,
        instruments: Sequence[str] | None = None,
        microphones: Microphones | None = None,
        sources: np.ndarray | None = None,
        progress: ProgressFn | None = None,
    ) -> Result:
        """Separate a signal held in memory.

        Args:
            audio: float ``(C, S)``, full scale ±1, any channel count.
            sample_rate: its rate (Hz), any.
            clouds: a whole scene, or one cloud per performer; optional in label mode.
            performers: already found (:func:`find_scene_performers`), instead of ``clouds``.
            instruments: label mode (see :meth:`condition`).
            microphones, sources: the recording's geometry and where the performers' sounds
                come from (see :meth:`condition`).
            progress: called after each chunk.

        Returns:
            :class:`Result`, with ``stems.sum(0) + residual == audio`` to float rounding.

        Raises:
            ValueError: ``audio`` is not ``(C, S)`` float with S >= 1.
            SceneError, ModelError: see :meth:`condition`.
        """
        audio = np.asarray(audio)
        if audio.ndim != 2 or audio.shape[0] < 1 or audio.shape[1] < 1 or audio.dtype.kind != "f":
            raise ValueError(f"audio must be float (channels, samples), got {audio.shape}")
        if clouds is not None and performers is not None:
            raise ValueError("pass clouds or performers, not both")
        if clouds is not None:
            seq = [clouds] if hasattr(clouds, "xyz") else list(clouds)  # type: ignore[arg-type]
            performers = find_scene_performers(seq)  # type: ignore[arg-type]
        cond = self.condition(performers, instruments, microphones=microphones, sources=sources)
        x = audio.astype(np.float32, copy=False)
        block, overlap = self.block_sizes(sample_rate, x.shape[0], cond.film.shape[0])
        parts = list(
            self.stream(
                array_blocks(x, block, overlap),
                sample_rate,
                cond,
                total_frames=x.shape[1],
                progress=progress,
            )
        )
        full = np.concatenate(parts, axis=-1)
        return Result(full[:-1], full[-1], int(sample_rate), cond.detections, cond)
