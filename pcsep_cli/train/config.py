"""Training configuration: a JSON or TOML file read into frozen dataclasses.

Fields left out of the file take the defaults below; unknown fields are errors. Relative
``pool``, ``out_dir`` and ``init_from`` paths are taken from the current directory, like any
CLI path.
Named presets live in ``pcsep_cli/train/configs/<name>.json`` (:func:`preset_path`).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pcsep_cli.dataclass_json import build_dataclass, read_config_file
from pcsep_cli.errors import PcsepError
from pcsep_cli.nets.model import SeparatorConfig

CONFIG_DIR = Path(__file__).parent / "configs"
LOSSES = ("l1_ratio", "bce_binary")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "off", "bf16", "fp16")
# The parts of a SeparationNet a run may train alone (``train_only``).
PARTS = ("visual", "audio_encoder", "audio_decoder", "cond_trunk", "label_embedding", "spatial")


class TrainConfigError(PcsepError):
    """A training config file is missing or invalid."""


@dataclass(frozen=True)
class AugmentConfig:
    """Random changes to each performer's cloud, drawn anew at every step.

    Attributes:
        rotate_z: rotate about the vertical axis by a uniform angle (full turn).
        tilt_deg: tilt about a random horizontal axis by up to this many degrees.
        scale: uniform scale drawn from ``[1 - scale, 1 + scale]``.
        translate: shift by up to this many metres per axis (after centring).
        dropout: drop up to this fraction of the points.
        noise: Gaussian jitter, metres (standard deviation).
        partial_prob: probability of keeping only what a sensor on one side sees
            (the points facing a random horizontal direction, plus a random margin).
    """

    rotate_z: bool = True
    tilt_deg: float = 5.0
    scale: float = 0.1
    translate: float = 0.05
    dropout: float = 0.3
    noise: float = 0.005
    partial_prob: float = 0.3

    def __post_init__(self) -> None:
        for name in ("tilt_deg", "scale", "translate", "dropout", "noise", "partial_prob"):
            if getattr(self, name) < 0:
                raise ValueError(f"augment.{name} must be >= 0")
        if self.dropout >= 1 or self.scale >= 1 or self.partial_prob > 1:
            raise ValueError("augment.dropout and augment.scale must be < 1, partial_prob <= 1")


@dataclass(frozen=True)
class TrainConfig:
    """One training run.

    Attributes:
        model: the network to train (saved as the model's ``config.json``).
        pool: solo pool directory (``pcsep synth`` output, see ``pcsep_cli.synth.dataset``);
            may be empty when ``data`` is given.
        data: a dataset of one's own recordings in the real-capture layout
            (:mod:`pcsep_cli.train.capture`; ``train/``, optionally ``val/``), or a second
            ``pcsep synth`` dataset (e.g. other sound sources): mixtures are drawn from it with
            chance ``data_share``, from ``pool`` otherwise, so a fine-tuned model keeps the
            classes the user has no recordings of (or the sound ``pool`` taught it). Empty:
            ``pool`` only.
        data_share: the share of mixtures drawn from ``data`` (when both are given).
        out_dir: run directory: checkpoints, log, and the final model under ``model/``.
        seed: seeds the weights and every step's data (a step's batch depends only on
            ``(seed, step)``, so a resumed run sees the data an uninterrupted run would).
        steps: optimiser steps.
        batch_size: mixtures per step (the global batch: torchrun's processes share it).
        segment_seconds: length of the training excerpts.
        min_sources: fewest performers per mixture.
        max_sources: most performers per mixture.
        gain_db: each source's gain is drawn uniformly from ``[-gain_db, +gain_db]`` dB.
        eq_db: each source passes a random smooth equaliser first, a tilt of up to
            ±``eq_db`` dB plus three bumps (:func:`pcsep_cli.train.batch.random_eq`): timbres
            of other instruments, microphones and rooms. 0: none (no random draw either).
        coherent_prob: the share of mixtures made of one scene's performers at one moment (one
            piece: shared onsets and harmonies, as in the recordings pcsep separates) instead of
            unrelated excerpts; scenes of the pool and of ``data`` with two or more instruments
            serve. 0: never (no random draw either).
        same_class_prob: the share of unrelated-excerpt mixtures whose last performer is a
            second player of an instrument already in it (another recording of that class).
            When > 0, both players of such a pair are trained towards the class's whole part: a
            mono network cannot tell them apart, and a spatial head splits the part by where
            each stands. 0: never (no random draw either; targets as before).
        distractor_prob: chance that a mixture also gets a silent ``none`` performer (its
            target mask is zero; it trains the classifier to spot non-performers).
        lr: peak learning rate (Adam); cosine decay to ``lr_min`` after ``warmup_steps``.
        lr_min: final learning rate.
        warmup_steps: linear warm-up.
        weight_decay: AdamW decoupled weight decay.
        grad_clip: global gradient-norm clip (0: off).
        loss: ``"l1_ratio"`` (L1 between masked and true magnitudes) or ``"bce_binary"``
            (the paper: binary dominance masks, BCE weighted by the mixture's log-magnitude).
        cls_weight: weight of the instrument-classification loss.
        label_fraction: with ``model.conditioning="both"``, the share of separation steps
            conditioned on labels instead of clouds.
        visual_batch: with ``"both"``, clouds the visual encoder also sees at each labels step
            (for the classification and alignment losses; the U-Net is not run on them).
        none_share: the share of those clouds that are ``none`` distractors (0: ``none`` is
            drawn as one class among the others, 1 in 11).
        cloud_scenes: also load the pool's cloud scenes (``pcsep synth --cloud-scenes``):
            visual-only performers and distractors for those clouds.
        cloud_pool: with ``cloud_scenes``, another dataset whose cloud scenes are loaded too
            (e.g. whole-room scans from ``pcsep synth --clutter``); a path like ``pool``.
        init_from: a model directory whose weights start the run (fine-tuning); its model
            config must equal ``model`` but for the rate, the STFT's size, hop, window and warp
            (the network sees ``warp_bins`` rows at any rate; not for a spatial head or
            ``warp_bins`` 0) and ``none_below``. Empty: random weights. A resumed run ignores it.
        align_weight: with ``"both"``, weight of the mean squared distance between a cloud's
            embedding and its class's (detached) label embedding: it teaches the visual encoder
            to speak the language the U-Net learned from labels, at a fraction of the cost of
            cloud-conditioned separation steps.
        train_only: the parts of the network that learn (of ``visual``, ``audio_encoder``,
            ``audio_decoder``, ``cond_trunk``, ``label_embedding``, ``spatial``); the others
            keep ``init_from``'s weights and run as at inference (batch norm on its running
            statistics). Empty: all. ``["visual"]`` teaches the classifier new scenes without
            moving the separation the U-Net learned.
        val_every: steps between validation passes (and best-model updates).
        val_batches: batches in the (fixed) validation set.
        checkpoint_every: steps between checkpoints.
        keep_checkpoints: how many checkpoints to keep.
        threads: torch CPU threads per process (0: torch's default).
        device: ``"auto"`` (CUDA when there is a GPU, else the CPU), ``"cpu"``, ``"cuda"`` or
            ``"cuda:N"``; under torchrun each process takes the GPU of its ``LOCAL_RANK``.
        amp: mixed precision: ``"auto"`` (bf16 autocast on a CUDA GPU that has it, else fp16
            with gradient scaling; off on the CPU), ``"off"``, ``"bf16"`` or ``"fp16"`` (CUDA
            only). Weights, optimiser state and losses stay float32.
        augment: point-cloud augmentation.
    """

    model: SeparatorConfig = field(default_factory=SeparatorConfig)
    pool: str = "runs/pool"
    data: str = ""
    data_share: float = 0.5
    out_dir: str = "runs/train"
    seed: int = 0
    steps: int = 1000
    batch_size: int = 8
    segment_seconds: float = 1.5
    min_sources: int = 2
    max_sources: int = 4
    gain_db: float = 6.0
    eq_db: float = 0.0
    coherent_prob: float = 0.0
    same_class_prob: float = 0.0
    distractor_prob: float = 0.3
    lr: float = 1e-3
    lr_min: float = 1e-5
    warmup_steps: int = 100
    weight_decay: float = 1e-4
    grad_clip: float = 5.0
    loss: str = "l1_ratio"
    cls_weight: float = 0.2
    label_fraction: float = 0.5
    visual_batch: int = 0
    none_share: float = 0.0
    cloud_scenes: bool = False
    cloud_pool: str = ""
    init_from: str = ""
    align_weight: float = 0.0
    train_only: tuple[str, ...] = ()
    val_every: int = 200
    val_batches: int = 8
    checkpoint_every: int = 200
    keep_checkpoints: int = 2
    threads: int = 2
    device: str = "auto"
    amp: str = "auto"
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        positive = ("steps", "batch_size", "val_every", "val_batches", "checkpoint_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 1 <= self.min_sources <= self.max_sources:
            raise ValueError(
                f"need 1 <= min_sources <= max_sources, got {self.min_sources}, {self.max_sources}"
            )
        if self.max_sources > len(self.model.classes) - 1:
            raise ValueError("max_sources exceeds the number of instrument classes")
        if self.segment_seconds <= 0:
            raise ValueError(f"segment_seconds must be > 0, got {self.segment_seconds}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if not 0 <= self.eq_db <= 40:
            raise ValueError(f"eq_db must be in [0, 40], got {self.eq_db}")
        if self.visual_batch < 0 or self.align_weight < 0:
            raise ValueError("visual_batch and align_weight must be >= 0")
        if not 0 <= self.label_fraction <= 1:
            raise ValueError(f"label_fraction must be in [0, 1], got {self.label_fraction}")
        if not 0 <= self.none_share < 1:
            raise ValueError(f"none_share must be in [0, 1), got {self.none_share}")
        if not 0 <= self.data_share <= 1:
            raise ValueError(f"data_share must be in [0, 1], got {self.data_share}")
        unknown = [part for part in self.train_only if part not in PARTS]
        if unknown:
            raise ValueError(f"train_only: unknown part {unknown[0]!r} (parts: {', '.join(PARTS)})")
        if not self.pool and not self.data:
            raise ValueError("give a pool (synthetic) or data (your recordings), or both")
        if not 0 <= self.coherent_prob <= 1:
            raise ValueError(f"coherent_prob must be in [0, 1], got {self.coherent_prob}")
        if not 0 <= self.same_class_prob <= 1:
            raise ValueError(f"same_class_prob must be in [0, 1], got {self.same_class_prob}")
        if not 0 <= self.distractor_prob <= 1:
            raise ValueError(f"distractor_prob must be in [0, 1], got {self.distractor_prob}")
        if self.device not in DEVICES and not re.fullmatch(r"cuda:\d+", self.device):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.amp not in PRECISIONS:
            raise ValueError(f"amp must be one of {PRECISIONS}, got {self.amp!r}")
        if self.lr <= 0 or self.lr_min < 0 or self.keep_checkpoints < 1 or self.threads < 0:
            raise ValueError("lr must be > 0, lr_min >= 0, keep_checkpoints >= 1, threads >= 0")

    @property
    def segment_samples(self) -> int:
        """Samples per training excerpt at the model's rate."""
        return round(self.segment_seconds * self.model.sample_rate)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        data = dataclasses.asdict(self)
        data["model"] = self.model.to_dict()
        return json.loads(json.dumps(data))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | Path | None = None) -> TrainConfig:
        """Build from a dict; missing fields take defaults, unknown ones are errors.

        Raises:
            TrainConfigError: naming the bad field.
        """
        return build_dataclass(
            cls,
            data,
            source=source,
            error=TrainConfigError,
            hint="fix the training config (see pcsep_cli/train/configs/*.json)",
            allow_defaults=True,
        )

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def preset_path(name: str) -> Path:
    """Path of a bundled training config (``"tiny"``, ``"pcsep-base"``...)."""
    return CONFIG_DIR / f"{name}.json"


def load_train_config(path: str | Path, **overrides: Any) -> TrainConfig:
    """Read a JSON (``.json``) or TOML (``.toml``) training config, or a preset's name.

    Args:
        path: the file or preset.
        overrides: fields set over the file's (``init_from="pcsep-base"``, ``data=...``);
            None values are left out.

    A config without a ``model`` section that starts from ``init_from`` takes that model's
    own config (the ``finetune`` preset: ``pcsep train finetune --init-from pcsep-base
    --data DIR``).

    Raises:
        TrainConfigError: missing file, bad syntax, or an invalid field.
        ModelError: ``init_from`` cannot be loaded.
    """
    file = Path(path)
    if not file.exists() and preset_path(str(path)).is_file():
        file = preset_path(str(path))
    if not file.is_file():
        presets = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.json")))
        raise TrainConfigError(
            "training config not found", file, f"pass a .json/.toml file or a preset: {presets}"
        )
    data = read_config_file(file, TrainConfigError, "fix its syntax")
    data.update({k: v for k, v in overrides.items() if v is not None})
    if "model" not in data and data.get("init_from"):
        from pcsep_cli.hub.models import load_model

        data["model"] = load_model(str(data["init_from"])).config.to_dict()
    return TrainConfig.from_dict(data, file)
