"""The separation network: config, forward, and the model directory format.

A model directory holds ``config.json`` (:meth:`SeparatorConfig.to_dict`) and
``model.safetensors`` (the ``state_dict``). Loading is strict: unknown or missing config
fields, and missing, extra or mis-shaped tensors, raise :class:`~pcsep_cli.errors.ModelError`.
Pickle is never read.

The forward pass maps tensors to tensors. Chunking, the iSTFT and the residual live in
``pcsep_cli.separate``; :mod:`pcsep_cli.nets.stft` holds the transforms both sides share.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pcsep_cli.classes import CLASS_NAME, INSTRUMENTS, NONE
from pcsep_cli.dataclass_json import MODEL_CONFIG_HINT, build_dataclass, read_config_file
from pcsep_cli.errors import ModelError
from pcsep_cli.nets.audio import AudioDecoder, AudioEncoder, AudioNetConfig
from pcsep_cli.nets.files import CONFIG_FILE, WEIGHTS_FILE
from pcsep_cli.nets.film import CondTrunk, FiLMConfig
from pcsep_cli.nets.spatial import SpatialConfig, SpatialFusion, class_shares, spatial_inputs
from pcsep_cli.nets.stft import LogFrequencyWarp, StftConfig
from pcsep_cli.nets.visual import VisualConfig, VisualEncoder

CONFIG_VERSION = 1
DEFAULT_CLASSES = (*INSTRUMENTS, NONE)
CONDITIONINGS = ("cloud", "labels", "both")
DEFAULT_VIEWS = 4
"""Headings a cloud is encoded from at inference (:meth:`SeparationNet.encode_clouds`)."""
# Far past any useful model, cheap to build: a config beyond them is corrupt.
MAX_STAGES, MAX_BLOCKS, MAX_WIDTH, MAX_FFT = 8, 64, 4096, 16384


@dataclass(frozen=True)
class SeparatorConfig:
    """Everything needed to rebuild a :class:`SeparationNet`; saved as ``config.json``.

    Attributes:
        version: config format version.
        classes: instrument classes; the last one is ``"none"`` (detected, never separated).
        sample_rate: rate the network runs at, Hz.
        stft: STFT and frequency warp of the network's input.
        audio: U-Net size.
        visual: point-cloud encoder (unused with ``conditioning="labels"`` but kept, so a
            config always has the same fields).
        film: conditioning layers.
        conditioning: ``"cloud"`` (the sparse encoder reads each performer's points),
            ``"labels"`` (a learned embedding per class: the paper's reference model), or
            ``"both"`` (one network that takes either; training alternates between them, so
            the label-conditioned reference and ``--instruments`` share the U-Net).
        spatial: the spatial head (:mod:`pcsep_cli.nets.spatial`); disabled in mono models,
            whose ``config.json`` leaves it out.
        none_below: a cluster whose most likely class has a lower probability is called
            ``none`` (never a stem): calibrated on whole-room validation scans by
            :mod:`pcsep_cli.train.calibrate`. 0 (left out of ``config.json``): off.

    The voxel size clouds are cut into is ``visual.voxel_size``.
    """

    version: int = CONFIG_VERSION
    classes: tuple[str, ...] = DEFAULT_CLASSES
    sample_rate: int = 11025
    stft: StftConfig = field(default_factory=StftConfig)
    audio: AudioNetConfig = field(default_factory=AudioNetConfig)
    visual: VisualConfig = field(default_factory=VisualConfig)
    film: FiLMConfig = field(default_factory=FiLMConfig)
    conditioning: str = "both"
    spatial: SpatialConfig = field(default_factory=SpatialConfig)
    none_below: float = 0.0

    def __post_init__(self) -> None:
        if self.version != CONFIG_VERSION:
            raise ValueError(f"version {self.version} is not supported (this pcsep reads 1)")
        if not 0.0 <= self.none_below < 1.0:
            raise ValueError(f"none_below must be in [0, 1), got {self.none_below}")
        self._check_classes()
        if self.sample_rate < 1000:
            raise ValueError(f"sample_rate must be >= 1000 Hz, got {self.sample_rate}")
        if self.conditioning not in CONDITIONINGS:
            raise ValueError(
                f"conditioning must be one of {CONDITIONINGS}, got {self.conditioning!r}"
            )
        if self.stft.net_bins % 2**self.audio.levels:
            raise ValueError(
                f"stft.warp_bins ({self.stft.net_bins}) must be a multiple of "
                f"2**audio.levels ({2**self.audio.levels})"
            )
        self._check_sizes()
        if self.visual.num_classes != len(self.classes):
            raise ValueError(
                f"visual.num_classes ({self.visual.num_classes}) must equal len(classes) "
                f"({len(self.classes)})"
            )

    def _check_classes(self) -> None:
        # Class names name output files and are printed: a hostile config must not smuggle
        # in "../../x" or terminal escapes. Names are quoted with repr, cut short.
        if len(self.classes) < 2 or self.classes[-1] != NONE:
            last = str(self.classes[-1])[:40] if self.classes else ""
            raise ValueError(
                f"classes must hold >= 2 names ending with 'none', got {len(self.classes)} "
                f"ending with {last!r}"
            )
        seen: set[str] = set()
        for i, name in enumerate(self.classes):
            if not isinstance(name, str) or not CLASS_NAME.fullmatch(name):
                raise ValueError(
                    f"classes[{i}] {str(name)[:40]!r} is not a class name (1-32 characters: "
                    "a-z, 0-9 and _, starting with a letter)"
                )
            if name in seen:
                raise ValueError(f"classes[{i}] {name!r} appears twice")
            seen.add(name)

    def _check_sizes(self) -> None:
        # Past these, building the net (to compare its shapes with the weights) allocates
        # tens of GB or builds millions of layers. Corrupt configs found by fuzzing: blocks
        # [0, 5320619] hung the loader; n_fft, warp_bins or a width of 2**32 made torch
        # allocate 34-550 GB.
        if self.stft.n_fft > MAX_FFT or self.stft.net_bins > self.stft.n_fft // 2 + 1:
            raise ValueError(
                f"stft.n_fft must be <= {MAX_FFT} and warp_bins <= n_fft/2 + 1, got "
                f"n_fft {self.stft.n_fft}, warp_bins {self.stft.warp_bins}"
            )
        sizes = {
            "visual.widths": max(self.visual.widths),
            "visual.stem_channels": self.visual.stem_channels,
            "visual.in_channels": self.visual.in_channels,
            "visual.embed_dim": self.visual.embed_dim,
            "audio.max_channels": self.audio.max_channels,
            "audio.base_channels": self.audio.base_channels,
            "film.cond_dim": self.film.cond_dim,
            "film.hidden": self.film.hidden,
        }
        for name, value in sizes.items():
            if value > MAX_WIDTH:
                raise ValueError(f"{name} must be <= {MAX_WIDTH}, got {value}")
        if len(self.visual.widths) > MAX_STAGES or max(self.visual.blocks) > MAX_BLOCKS:
            raise ValueError(
                f"visual must have at most {MAX_STAGES} stages of at most {MAX_BLOCKS} blocks, "
                f"got widths {list(self.visual.widths)} and blocks {list(self.visual.blocks)}"
            )

    @property
    def num_classes(self) -> int:
        """Number of classes, ``none`` included."""
        return len(self.classes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists); a mono model's has no ``spatial``, and one
        whose warp reads points (every model before full band) no ``stft.warp``: their files
        stay as they were."""
        data = _jsonable(dataclasses.asdict(self))
        if not self.spatial.enabled:
            del data["spatial"]
        else:  # a head of the bins' own scores, or without covariance shares, writes as before
            for key in ("notes", "covariance"):
                if not getattr(self.spatial, key):
                    del data["spatial"][key]
        if self.stft.warp == "point":
            del data["stft"]["warp"]
        if not self.none_below:
            del data["none_below"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | Path | None = None) -> SeparatorConfig:
        """Rebuild a config, refusing unknown, missing or ill-typed fields.

        Args:
            data: as written by :meth:`to_dict`.
            source: file the dict came from, for error messages.

        Raises:
            ModelError: naming the bad field.
        """
        if isinstance(data, dict) and "spatial" not in data:  # a mono model's config
            data = {**data, "spatial": _jsonable(dataclasses.asdict(SpatialConfig()))}
        spatial = data.get("spatial") if isinstance(data, dict) else None
        if isinstance(spatial, dict):  # a bins'-own-scores head's, or one without covariance
            data = {**data, "spatial": {"notes": 0, "covariance": 0, **spatial}}
        stft = data.get("stft") if isinstance(data, dict) else None
        if isinstance(stft, dict) and "warp" not in stft:  # a point-warp model's config
            data = {**data, "stft": {**stft, "warp": "point"}}
        if isinstance(data, dict) and "none_below" not in data:  # an uncalibrated model's
            data = {**data, "none_below": 0.0}
        return build_dataclass(cls, data, "", source)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj


class SeparatorOutput(NamedTuple):
    """What :meth:`SeparationNet.forward` returns.

    Attributes:
        masks: ``(P, 1, F, T)`` in [0, 1] on the linear STFT grid.
        mask_logits: ``(P, 1, F, T)`` pre-sigmoid masks on the linear grid.
        class_logits: ``(P, num_classes)``; when conditioned on labels, a one-hot of the
            given labels scaled to large logits.
        embedding: ``(P, D)`` performer embeddings (visual or label) before the FiLM trunk.
    """

    masks: Tensor
    mask_logits: Tensor
    class_logits: Tensor
    embedding: Tensor


class SeparationNet(nn.Module):
    """Point-cloud (or label) conditioned spectrogram-mask U-Net.

    Args:
        config: the whole model description; it is also what ``config.json`` holds.
    """

    def __init__(self, config: SeparatorConfig) -> None:
        super().__init__()
        self.config = config
        self.warp = LogFrequencyWarp(config.stft)
        self.audio_encoder = AudioEncoder(config.audio)
        self.audio_decoder = AudioDecoder(config.audio, config.film.cond_dim)
        self.visual: nn.Module | None = None
        self.label_embedding: nn.Module | None = None
        dim = config.film.cond_dim
        if config.conditioning in ("cloud", "both"):
            self.visual = VisualEncoder(config.visual)
            dim = visual_embed_dim(config.visual)
        if config.conditioning in ("labels", "both"):
            # Same size as the visual embedding so both go through one trunk.
            # The weight is made here and initialised only off the meta device: meta-device
            # normal_ imports torch._dynamo (~0.9 s) during hub.expected_tensors.
            weight = torch.empty(config.num_classes, dim)
            if weight.device.type != "meta":
                nn.init.normal_(weight)
            self.label_embedding = nn.Embedding(config.num_classes, dim, _weight=weight)
        self.cond_trunk = CondTrunk(dim, config.film)
        self.spatial: SpatialFusion | None = None
        if config.spatial.enabled:
            self.spatial = SpatialFusion(config.spatial, config.stft.bins)

    @property
    def accepts_clouds(self) -> bool:
        """Whether ``forward`` takes a ``SparseTensor`` of performers' clouds."""
        return self.visual is not None

    @property
    def accepts_labels(self) -> bool:
        """Whether ``forward`` takes instrument labels (the ``--instruments`` mode)."""
        return self.label_embedding is not None

    @property
    def accepts_microphones(self) -> bool:
        """Whether the net reads microphone geometry (``--mics``): a spatial head
        (:mod:`pcsep_cli.nets.spatial`) fuses where each performer stands with its mask."""
        return self.spatial is not None

    def encode_condition(self, cond: Any) -> tuple[Tensor, Tensor]:
        """Performer conditions → (embedding ``(P, D)``, class logits ``(P, classes)``).

        The embedding is the visual encoder's or the label's, before the FiLM trunk; both
        live in one space of size D.

        Args:
            cond: ``SparseTensor`` with one batch entry per performer, or labels ``(P,)`` long.

        Raises:
            ValueError: a kind of condition this model was not built for, or bad labels.
        """
        if not isinstance(cond, Tensor):
            if self.visual is None:
                raise ValueError("this model is conditioned on labels: pass labels (P,) long")
            return self.visual(cond)
        if self.label_embedding is None:
            raise ValueError("this model is conditioned on clouds: pass a SparseTensor")
        if cond.dim() != 1 or cond.dtype != torch.long:
            raise ValueError(f"labels must be (P,) long, got {tuple(cond.shape)} {cond.dtype}")
        if cond.numel() and (cond.min() < 0 or cond.max() >= self.config.num_classes):
            raise ValueError(f"labels must be in [0, {self.config.num_classes}), got {cond}")
        emb = self.label_embedding(cond)
        logits = F.one_hot(cond, self.config.num_classes).to(emb.dtype) * 20.0 - 10.0
        return emb, logits

    def encode_clouds(self, clouds: Sequence[Any], views: int = 1) -> tuple[Tensor, Tensor]:
        """Embeddings and class log-probabilities of canonical clouds, over ``views`` headings.

        Each cloud is turned about the vertical axis by ``k / views`` of a full turn
        (k = 0 .. views-1) and encoded (the encoder centres every cloud on its mean point, so
        where the axis stands does not matter); embeddings are averaged and log-probabilities
        too (a geometric mean of the probabilities). Training turns every cloud by a random
        angle, so no heading is special and the average is steadier than any one of them.

        Args:
            clouds: P ``(N_i, 3)`` arrays or tensors, metres, in the canonical frame
                (:func:`pcsep_cli.scene.canonical`).
            views: headings (1: the cloud as it is).

        Returns:
            ``(embedding (P, D), log-probabilities (P, classes))`` on the model's device.

        Raises:
            ValueError: a model without a visual encoder, or ``views < 1``.
        """
        from pcsep_cli.nets.visual import cloud_to_sparse

        if self.visual is None:
            raise ValueError("this model is conditioned on labels: it has no cloud encoder")
        if views < 1:
            raise ValueError(f"views must be >= 1, got {views}")
        device = next(self.parameters()).device
        pts = [torch.as_tensor(c, dtype=torch.float64) for c in clouds]
        embs, logps = [], []
        for k in range(views):
            c, s = math.cos(2 * math.pi * k / views), math.sin(2 * math.pi * k / views)
            turn = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
            sparse = cloud_to_sparse([p @ turn.T for p in pts], self.config.visual.voxel_size)
            emb, logits = self.visual(sparse.to(device))
            embs.append(emb)
            logps.append(F.log_softmax(logits.float(), dim=1))
        return torch.stack(embs).mean(0), torch.stack(logps).mean(0)

    def net_input(self, mag: Tensor) -> Tensor:
        """Linear magnitudes ``(B, 1, F_lin, T)`` → normalised log-magnitudes on the net grid.

        Each mixture is divided by its mean magnitude, so the output does not depend on the
        recording's level.
        """
        x = self.warp.to_net(mag)
        x = x / (x.mean(dim=(1, 2, 3), keepdim=True) + 1e-8)
        return torch.log(x + 1e-3)

    def forward(self, mag: Tensor, cond: Any, mix_index: Tensor) -> SeparatorOutput:
        """Predict one mask per performer.

        Args:
            mag: mixture magnitudes ``(B, 1, F, T)`` on the linear grid, ``F = stft.bins``,
                any T >= 1 (padded inside to a multiple of ``2**audio.levels``).
            cond: ``SparseTensor(coords [N,4], feats [N,C])`` whose batch column indexes the
                P performers (``"cloud"`` / ``"both"``), or labels ``(P,)`` long
                (``"labels"`` / ``"both"``).
            mix_index: ``(P,)`` long: the mixture each performer plays in.

        Returns:
            :class:`SeparatorOutput` with masks ``(P, 1, F, T)``.
        """
        bins = self.config.stft.bins
        if mag.dim() != 4 or mag.shape[1] != 1 or mag.shape[2] != bins:
            raise ValueError(f"mag must be (B, 1, {bins}, T), got {tuple(mag.shape)}")
        if mix_index.dim() != 1 or mix_index.dtype != torch.long:
            raise ValueError(f"mix_index must be (P,) long, got {tuple(mix_index.shape)}")
        if mix_index.numel() and (mix_index.min() < 0 or mix_index.max() >= mag.shape[0]):
            raise ValueError(f"mix_index must lie in [0, {mag.shape[0]}), got {mix_index}")
        emb, logits = self.encode_condition(cond)
        if emb.shape[0] != mix_index.shape[0]:
            raise ValueError(
                f"{emb.shape[0]} performer conditions for {mix_index.shape[0]} mix_index entries"
            )
        mask_logits = self.mask_logits(mag, self.cond_trunk(emb), mix_index)
        return SeparatorOutput(torch.sigmoid(mask_logits), mask_logits, logits, emb)

    def spatial_masks(
        self,
        spec: Tensor,
        mono: Tensor,
        logits: Tensor,
        steer: Tensor,
        groups: Tensor,
        factors: tuple[Tensor, Tensor] | None = None,
        coherence: Tensor | None = None,
    ) -> Tensor:
        """Masks of a spatial model from every channel's spectrum (separation and training).

        Args:
            spec: complex ``(M, F, T)``, the channels on the model's linear grid.
            mono: ``(F, T)``, ``spec.mean(dim=0).abs()`` (the caller's mono network read it).
            logits: ``(P, F, T)`` the mono network's mask logits of the channels' mean.
            steer: complex ``(P, M, F)``, :func:`~pcsep_cli.nets.spatial.steering`.
            groups: ``(P,)`` long, each performer's class.
            factors: the block's note model (:func:`~pcsep_cli.nets.spatial.note_factors`),
                when already computed; a head with notes computes it otherwise.
            coherence: ``(F, M, M)`` the microphones' diffuse-field coherence
                (:func:`~pcsep_cli.nets.spatial.diffuse_coherence`): with ``spatial.covariance``
                set, players of one class are split by
                :func:`~pcsep_cli.nets.spatial.class_shares`; None (training the head): by the
                head's shares.

        Returns:
            ``(P, F, T)`` masks in [0, 1].
        """
        if self.spatial is None:
            raise ValueError("this model has no spatial head")
        scores, notes = spatial_inputs(spec, mono, steer, self.config.spatial, factors)
        logmag = torch.log(mono / (mono.mean() + 1e-8) + 1e-3)
        shares = None
        iterations = self.config.spatial.covariance
        if iterations and coherence is not None and len(torch.unique(groups)) < len(groups):
            masks = torch.sigmoid(logits.clamp(-12.0, 12.0))
            shares = class_shares(spec, masks, steer, groups, coherence, iterations)
        return self.spatial(logits, scores, groups, logmag, notes, shares)

    def mask_logits(self, mag: Tensor, film: Tensor, mix_index: Tensor) -> Tensor:
        """The audio path of :meth:`forward`, for conditions already through the trunk.

        Args:
            mag: mixture magnitudes ``(B, 1, F, T)`` on the linear grid.
            film: ``(P, cond_dim)``, :attr:`cond_trunk` of the performers' embeddings.
            mix_index: ``(P,)`` long: the mixture each performer plays in.

        Returns:
            Mask logits ``(P, 1, F, T)`` on the linear grid.
        """
        frames = mag.shape[-1]
        x = self.net_input(mag)
        pad = (-frames) % 2**self.config.audio.levels
        if pad:
            x = F.pad(x, (0, pad), value=float(torch.log(torch.tensor(1e-3))))
        feats = self.audio_encoder(x)
        net_logits = self.audio_decoder(feats, film, mix_index)[..., :frames]
        return self.warp.to_linear(net_logits)

    def num_parameters(self) -> int:
        """Learned parameters."""
        return sum(p.numel() for p in self.parameters())

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``directory`` (created).

        Returns:
            The directory.
        """
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        tmp = out / (WEIGHTS_FILE + ".tmp")
        save_tensors(state, tmp, metadata={"format": "pt", "pcsep_config_version": "1"})
        tmp.replace(out / WEIGHTS_FILE)
        cfg_tmp = out / (CONFIG_FILE + ".tmp")
        cfg_tmp.write_text(json.dumps(self.config.to_dict(), indent=2) + "\n")
        cfg_tmp.replace(out / CONFIG_FILE)
        return out

    def read_weights(self, directory: str | Path) -> SeparationNet:
        """Fill this model from ``<directory>/model.safetensors``, strictly (every tensor's
        name, shape and dtype must match; see the module docstring). Load models with
        :func:`pcsep_cli.hub.load_model`, which checks the whole directory first.

        Returns:
            The model itself.

        Raises:
            ModelError: the file is missing or unreadable, or its tensors do not match.
        """
        self.load_state_dict(load_weights(Path(directory) / WEIGHTS_FILE, self.state_dict()))
        return self


def visual_embed_dim(cfg: VisualConfig) -> int:
    """Size of the embedding :class:`VisualEncoder` returns."""
    return int(cfg.embed_dim)


def load_config(directory: str | Path) -> SeparatorConfig:
    """Read and validate ``<directory>/config.json``.

    Raises:
        ModelError: missing, unreadable or invalid config.
    """
    file = Path(directory) / CONFIG_FILE
    if not os.path.lexists(file):  # anything else there is refused by read_config_file
        raise ModelError(
            "no config.json here",
            directory,
            "a model directory holds config.json and "
            "model.safetensors; pass a directory written by save_pretrained",
        )
    return SeparatorConfig.from_dict(read_config_file(file, ModelError, MODEL_CONFIG_HINT), file)


def save_tensors(
    tensors: dict[str, Tensor], file: str | Path, metadata: dict[str, str] | None = None
) -> None:
    """Write ``tensors`` as a safetensors file whose mode follows the umask, as every other
    file pcsep writes does (``safetensors.torch.save_file`` makes it 0600, so a model trained,
    blended or calibrated on a shared machine could not be read by the rest of the group)."""
    from safetensors.torch import save

    data = save(tensors, metadata=metadata)
    with open(file, "wb") as fh:
        fh.write(data)


def load_weights(file: str | Path, expected: dict[str, Tensor]) -> dict[str, Tensor]:
    """Read a safetensors file and check it against ``expected`` names, shapes and dtypes.

    Raises:
        ModelError: naming the first missing, extra or mismatched tensor.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    file = Path(file)
    if not file.is_file():
        raise ModelError(
            "weights file is missing", file, "copy model.safetensors beside config.json"
        )
    try:
        state = load_file(str(file))
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelError(f"cannot read weights: {err}", file, "re-download the model") from None
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    hint = "config.json and model.safetensors do not belong together"
    if missing:
        raise ModelError(f"{len(missing)} tensors missing, e.g. {missing[0]}", file, hint)
    if extra:
        raise ModelError(f"{len(extra)} unexpected tensors, e.g. {extra[0]}", file, hint)
    for name, ref in expected.items():
        got = state[name]
        if got.shape != ref.shape or got.dtype != ref.dtype:
            raise ModelError(
                f"tensor {name} is {tuple(got.shape)} {got.dtype}, config expects "
                f"{tuple(ref.shape)} {ref.dtype}",
                file,
                hint,
            )
    return state
