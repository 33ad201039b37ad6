"""The file names of a model directory, spelled once (no torch here: the Hub's safety checks
read them before anything is loaded)."""

from __future__ import annotations

CONFIG_FILE = "config.json"
"""Every constructor argument of the network (:class:`~pcsep_cli.nets.model.SeparatorConfig`)."""
WEIGHTS_FILE = "model.safetensors"
"""The ``state_dict``; pickle is never read."""
CARD_FILE = "README.md"
"""The model card: data, training command, evaluation table."""
