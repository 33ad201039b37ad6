"""Training (mix-and-separate from a synthetic solo pool) and evaluation of separation models.

Entry points: :func:`pcsep_cli.train.loop.train` (``pcsep train CONFIG``) and
:func:`pcsep_cli.train.evaluate.evaluate` (``pcsep evaluate MODEL DATASET``). Importing this
package does not import torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["evaluate", "train"]


def __getattr__(name: str) -> Any:
    if name == "train":
        from pcsep_cli.train.loop import train

        return train
    if name == "evaluate":
        from pcsep_cli.train.evaluate import evaluate

        return evaluate
    raise AttributeError(f"module 'pcsep_cli.train' has no attribute {name!r}")
