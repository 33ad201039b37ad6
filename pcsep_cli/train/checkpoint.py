"""Training checkpoints: weights and optimiser moments in safetensors, the rest in JSON.

``<out>/checkpoints/step_000200/`` holds the model directory files (``config.json``,
``model.safetensors``), ``optimizer.safetensors`` (Adam moments, flattened by parameter index)
and ``state.json`` (step, optimiser hyper-parameters, best validation loss, the training
config). Nothing is pickled. A checkpoint folder is written under a temporary name and renamed,
so a run stopped mid-save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from pcsep_cli.errors import ModelError
from pcsep_cli.nets.model import SeparationNet, save_tensors

OPTIM_NAME = "optimizer.safetensors"
STATE_NAME = "state.json"
PREFIX = "step_"


def checkpoint_dir(out_dir: Path) -> Path:
    """Folder holding a run's checkpoints."""
    return out_dir / "checkpoints"


def save_checkpoint(
    out_dir: Path,
    step: int,
    model: SeparationNet,
    optimizer: torch.optim.Optimizer,
    state: dict[str, Any],
    keep: int,
) -> Path:
    """Write ``step_<step>/`` and keep only the ``keep`` newest checkpoints.

    Returns:
        The checkpoint folder.
    """
    root = checkpoint_dir(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{PREFIX}{step:07d}"
    tmp = root / f".tmp_{PREFIX}{step:07d}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    opt_state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for idx, slots in opt_state["state"].items():
        for key, value in slots.items():
            tensors[f"{idx}.{key}"] = torch.as_tensor(value).detach().contiguous().cpu()
    save_tensors(tensors, tmp / OPTIM_NAME)
    meta = dict(state, step=step, param_groups=opt_state["param_groups"])
    (tmp / STATE_NAME).write_text(json.dumps(meta, indent=2) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in list_checkpoints(out_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(out_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = checkpoint_dir(out_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob(f"{PREFIX}*") if (p / STATE_NAME).is_file())


def load_checkpoint(
    folder: Path, model: SeparationNet, optimizer: torch.optim.Optimizer
) -> dict[str, Any]:
    """Restore weights and optimiser state in place.

    Returns:
        The saved ``state.json`` dict (``step``, ``best_val`` ...).

    Raises:
        ModelError: files missing or not matching the model.
    """
    from safetensors.torch import load_file

    try:
        meta = json.loads((folder / STATE_NAME).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ModelError(f"cannot read checkpoint state: {err}", folder) from None
    model.read_weights(folder)
    tensors = load_file(str(folder / OPTIM_NAME))
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    try:
        optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    except (ValueError, KeyError) as err:
        raise ModelError(
            f"optimizer state does not match the model: {err}",
            folder,
            "the run's config changed since this checkpoint; use a new out_dir",
        ) from None
    return meta
