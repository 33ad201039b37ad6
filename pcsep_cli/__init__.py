"""pcsep: separate a music recording into one stem per instrument seen in a 3D point cloud.

The public API is imported lazily so ``import pcsep_cli`` (and ``pcsep --help``) stays fast:
torch is only loaded when a model is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "Separator",
    "load_model",
    "read_cloud",
    "read_audio",
    "read_mics",
    "PcsepError",
    "PointCloudError",
    "AudioError",
    "ModelError",
    "MicrophoneError",
]

_LAZY = {
    "Separator": ("pcsep_cli.separate.separator", "Separator"),
    "load_model": ("pcsep_cli.hub.models", "load_model"),
    "read_cloud": ("pcsep_cli.io.pointcloud", "read_cloud"),
    "read_audio": ("pcsep_cli.io.audio", "read_audio"),
    "read_mics": ("pcsep_cli.io.mics", "read_mics"),
    "PcsepError": ("pcsep_cli.errors", "PcsepError"),
    "PointCloudError": ("pcsep_cli.errors", "PointCloudError"),
    "AudioError": ("pcsep_cli.errors", "AudioError"),
    "ModelError": ("pcsep_cli.errors", "ModelError"),
    "MicrophoneError": ("pcsep_cli.errors", "MicrophoneError"),
}

if TYPE_CHECKING:  # pragma: no cover
    from pcsep_cli.errors import (
        AudioError,
        MicrophoneError,
        ModelError,
        PcsepError,
        PointCloudError,
    )
    from pcsep_cli.io.audio import read_audio
    from pcsep_cli.io.mics import read_mics
    from pcsep_cli.io.pointcloud import read_cloud


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'pcsep_cli' has no attribute {name!r}") from None
    import importlib

    return getattr(importlib.import_module(module_name), attr)
