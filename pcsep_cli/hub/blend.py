"""``pcsep models blend``: average the weights of a model and its fine-tuned copy.

Fine-tuning on a group's own recordings moves a model towards their sound and away from what
it knew: on pcsep's synthetic test split a fine-tuned model loses some of its score. Weight-space
ensembling ("WiSE-FT", Wortsman et al., CVPR 2022) takes the point ``(1 - w)·base + w·tuned`` on
the line between the two: both models start from the same weights, so their average is a good
model too, and it keeps most of the new gain while giving back most of the loss. ``w`` is chosen
on validation data of both kinds (never on a test split); ``w = 1`` is the fine-tuned model.

Every floating tensor is blended, batch-norm running statistics too; integer buffers (batch
counters) are taken from the fine-tuned model. The two models must have the same config
(architecture, classes, rate). The result is written as a new model folder, atomically: a
folder holding a model is never overwritten unless asked, and a failure leaves nothing behind.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pcsep_cli.errors import ModelError
from pcsep_cli.nets.files import CONFIG_FILE, WEIGHTS_FILE


@dataclass(frozen=True)
class BlendResult:
    """What :func:`blend` wrote.

    Attributes:
        out: the new model folder.
        weight: the fine-tuned model's share ``w``.
        tensors: tensors blended (floating point).
        kept: integer tensors copied from the fine-tuned model.
    """

    out: Path
    weight: float
    tensors: int
    kept: int


def blend(base: str, tuned: str, weight: float, out: str | Path, *, overwrite: bool = False):
    """Write ``(1 - weight)·base + weight·tuned`` as a model folder ``out``.

    Args:
        base: the model fine-tuning started from (any model reference).
        tuned: the fine-tuned model (any model reference).
        weight: share of ``tuned``, in ``[0, 1]``.
        out: folder to write (``config.json`` and ``model.safetensors``).
        overwrite: replace a model already in ``out``.

    Returns:
        A :class:`BlendResult`.

    Raises:
        ValueError: ``weight`` is not a number in ``[0, 1]``.
        ModelError: either model fails its checks, the configs differ, or ``out`` holds a
            model (or a file) and ``overwrite`` is off.
    """
    import torch

    from pcsep_cli.hub.models import load_model

    if not isinstance(weight, int | float) or not math.isfinite(weight) or not 0 <= weight <= 1:
        raise ValueError(f"--weight must be a number from 0 to 1, got {weight!r}")
    out = Path(out)
    check_out(out, overwrite)
    first, second = load_model(base), load_model(tuned)
    if first.config.to_dict() != second.config.to_dict():
        raise ModelError(
            f"{tuned} has another config than {base} (architecture, classes or rate)",
            hint="blend a fine-tuned model with the model it was fine-tuned from",
        )
    a, b = first.state_dict(), second.state_dict()
    mixed, blended, kept = {}, 0, 0
    with torch.no_grad():
        for name, tensor in b.items():
            if tensor.is_floating_point():
                mixed[name] = torch.lerp(a[name].float(), tensor.float(), float(weight)).to(
                    tensor.dtype
                )
                blended += 1
            else:
                mixed[name] = tensor.clone()
                kept += 1
    second.load_state_dict(mixed, strict=True)
    write_model_folder(second, out)
    return BlendResult(out, float(weight), blended, kept)


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse an ``out`` that is a file, or holds a model while ``overwrite`` is off."""
    if out.exists() and not out.is_dir():
        raise ModelError("is a file, not a model folder", out, "choose a folder for -o")
    if (out / WEIGHTS_FILE).exists() and not overwrite:
        raise ModelError(
            "already holds a model", out, "choose another -o, or pass --overwrite to replace it"
        )


def write_model_folder(net, out: Path) -> None:  # noqa: ANN001 (a SeparationNet)
    """Save ``net`` into ``out`` (config and weights) through a staging folder beside it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.write-", dir=out.parent))
    try:
        net.save_pretrained(staging)
        out.mkdir(exist_ok=True)
        # Weights, then config: a crash between the two leaves a folder whose config and
        # tensors disagree, which verification refuses, never one that loads other weights.
        for name in (WEIGHTS_FILE, CONFIG_FILE):
            (staging / name).replace(out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
