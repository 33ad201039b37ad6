"""Models by reference: bundled names, local folders and Hub ids, checked before they load.

:func:`load_model` is the one front door (``Separator.from_pretrained`` calls it): a reference
is resolved, every file and tensor header checked, and only then are weights read.

Modules, from the bottom up (each imports only those above it):

- :mod:`~pcsep_cli.hub.safety`: file names, allowed files, the safetensors header and config
  checks (never pickle).
- :mod:`~pcsep_cli.hub.userconfig`: the user's settings file (``pcsep models use``) and the
  default model.
- :mod:`~pcsep_cli.hub.download`: ``huggingface_hub`` downloads into its standard cache,
  offline mode, errors in one line.
- :mod:`~pcsep_cli.hub.models`: references parsed and resolved, verified, loaded, described.
- :mod:`~pcsep_cli.hub.catalog`: what ``pcsep models list | info | remove`` show and do.
- :mod:`~pcsep_cli.hub.card`: model cards: the Hub's metadata merged into a folder's card,
  figures from ``pcsep evaluate``.
- :mod:`~pcsep_cli.hub.publish`: ``pcsep models push``: a folder checked like a download,
  then one commit through ``huggingface_hub``'s upload API.
"""

from __future__ import annotations

from pcsep_cli.hub.models import (
    ModelRef,
    ResolvedModel,
    bundled_models,
    bundled_models_dir,
    describe,
    load_model,
    parse_ref,
    resolve,
    verify,
)

__all__ = [
    "ModelRef",
    "ResolvedModel",
    "bundled_models",
    "bundled_models_dir",
    "describe",
    "load_model",
    "parse_ref",
    "resolve",
    "verify",
]
