"""The user's persisted settings: today only the default model (``pcsep models use REF``).

Stored as JSON in ``config.json`` under the platform's config directory
(``platformdirs.user_config_dir("pcsep")``: ``~/.config/pcsep`` on Linux,
``~/Library/Application Support/pcsep`` on macOS, ``%APPDATA%\\pcsep`` on Windows).
``PCSEP_CONFIG_DIR`` points elsewhere (tests, shared machines). The file is replaced
atomically, so an interrupted write never leaves it half-written.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pcsep_cli.errors import PcsepError

SETTINGS_FILE = "config.json"
BUILTIN_DEFAULT_MODEL = "pcsep-base"


def config_dir() -> Path:
    """pcsep's config directory: ``PCSEP_CONFIG_DIR`` or the platform's user config dir."""
    explicit = os.environ.get("PCSEP_CONFIG_DIR")
    if explicit:
        return Path(explicit).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("pcsep", appauthor=False))


def settings_path() -> Path:
    """The settings file."""
    return config_dir() / SETTINGS_FILE


def read_settings() -> dict[str, Any]:
    """The saved settings, ``{}`` when there are none.

    Raises:
        PcsepError: the file exists but is not a JSON object.
    """
    path = settings_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise PcsepError(f"cannot read settings: {err.strerror or err}", path) from None
    try:
        data = json.loads(text)
    except ValueError as err:
        raise PcsepError(
            f"settings are not valid JSON ({err})",
            path,
            "fix or delete the file, then run `pcsep models use REF` again",
        ) from None
    if not isinstance(data, dict):
        raise PcsepError("settings must be a JSON object", path, "delete the file")
    return data


def write_settings(settings: dict[str, Any]) -> Path:
    """Replace the settings file atomically.

    Returns:
        The file written.
    """
    path = settings_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(settings, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, path)
    except OSError as err:
        raise PcsepError(
            f"cannot write settings: {err.strerror or err}",
            path,
            "set PCSEP_CONFIG_DIR to a writable directory",
        ) from None
    return path


def saved_default_model() -> str | None:
    """The model saved by ``pcsep models use``, or ``None``."""
    value = read_settings().get("model")
    return value if isinstance(value, str) and value else None


def save_default_model(ref: str) -> Path:
    """Persist ``ref`` as the default model.

    Returns:
        The settings file.
    """
    settings = read_settings()
    settings["model"] = ref
    return write_settings(settings)


def default_model() -> tuple[str, str]:
    """The model used when none is given, and where that choice comes from.

    Order: ``PCSEP_MODEL`` environment variable, then the saved setting, then
    ``pcsep-base``.

    Returns:
        (reference, origin) with origin one of ``"env"``, ``"config"``, ``"builtin"``.
    """
    env = os.environ.get("PCSEP_MODEL", "").strip()
    if env:
        return env, "env"
    saved = saved_default_model()
    if saved:
        return saved, "config"
    return BUILTIN_DEFAULT_MODEL, "builtin"
