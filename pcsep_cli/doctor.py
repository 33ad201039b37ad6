"""What ``pcsep doctor`` reports: the facts about this installation a bug report needs.

:func:`diagnose` gathers them into one JSON-ready dict and never prints: versions (pcsep,
Python, the platform, torch, numpy, soundfile and its libsndfile, laspy and lazrs, the E57
reader, huggingface_hub, typer and rich), torch's devices and threads, where settings and
downloaded models live (and the environment variables that moved them), the default model and
whether it loads (offline, timed), and what this libsndfile can write (MP3, Ogg Vorbis and
Opus are tried with a tiny write in memory: a build without them lists the formats all the
same).

Nothing here contacts the network or writes a file. Each item is gathered on its own: one
that fails (a missing package, a broken settings file) is reported as such and the others
are still gathered. ``problems`` lists, one line each, what stops pcsep from working
(``fatal``: the default model does not load) or limits it (a format it cannot write).
"""

from __future__ import annotations

import io
import os
import platform
import sys
import time
from importlib import metadata
from typing import Any

__all__ = ["PACKAGES", "PROBED_FORMATS", "diagnose"]

PACKAGES: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),
    "numpy": ("numpy",),
    "soundfile": ("soundfile",),
    "laspy": ("laspy",),
    "lazrs": ("lazrs",),
    "e57": ("pye57", "e57"),
    "huggingface_hub": ("huggingface_hub",),
    "typer": ("typer",),
    "rich": ("rich",),
    "torchsparse": ("torchsparse",),
}
"""Report key → distribution names that provide it (the first installed is reported)."""

PROBED_FORMATS: dict[str, tuple[str, str, int]] = {
    "WAV": ("WAV", "PCM_16", 44100),
    "FLAC": ("FLAC", "PCM_16", 44100),
    "MP3": ("MP3", "MPEG_LAYER_III", 44100),
    "OGG-VORBIS": ("OGG", "VORBIS", 44100),
    "OPUS": ("OGG", "OPUS", 48000),
}
"""Output formats tried with a tiny write: name → (libsndfile format, subtype, rate)."""

_OPTIONAL = {"e57", "torchsparse"}  # absent is normal: no problem is reported


def diagnose(*, load_model: bool = True) -> dict[str, Any]:
    """Gather the facts about this installation.

    Args:
        load_model: load the default model (offline) and time it; off, only its reference
            and where it comes from are reported.

    Returns:
        ``{"pcsep", "python", "platform", "packages", "torch", "paths", "model", "audio",
        "problems", "seconds"}``: ``packages`` maps each of :data:`PACKAGES` to its version or
        None (not installed); ``torch`` holds devices and threads; ``model`` holds ``ref``,
        ``origin``, ``loaded`` (True, False, or None when not tried), ``seconds`` and
        ``error``; ``audio`` holds ``libsndfile``, ``formats`` (what libsndfile lists) and
        ``writable`` (each of :data:`PROBED_FORMATS`: True or False); ``problems`` is a list
        of ``{"item", "message", "fatal"}``.
    """
    start = time.perf_counter()
    problems: list[dict[str, Any]] = []
    report: dict[str, Any] = {
        "pcsep": _pcsep(),
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "platform": {
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
            "platform": platform.platform(),
        },
        "packages": _packages(problems),
        "torch": _torch(problems),
        "paths": _paths(problems),
        "audio": _audio(problems),
    }
    report["model"] = _model(load_model, problems)
    report["problems"] = problems
    report["seconds"] = round(time.perf_counter() - start, 3)
    return report


def _problem(problems: list[dict[str, Any]], item: str, message: str, fatal: bool = False) -> str:
    text = " ".join(message.split())  # one line, whatever the library said
    problems.append({"item": item, "message": text, "fatal": fatal})
    return text


def _pcsep() -> dict[str, Any]:
    import pcsep_cli

    return {"version": pcsep_cli.__version__, "path": os.path.dirname(pcsep_cli.__file__)}


def _packages(problems: list[dict[str, Any]]) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for key, dists in PACKAGES.items():
        found[key] = None
        for dist in dists:
            try:
                version = metadata.version(dist)
            except metadata.PackageNotFoundError:
                continue
            # Where several packages provide it, say which one is installed.
            found[key] = version if len(dists) == 1 else f"{dist} {version}"
            break
        if found[key] is None and key not in _OPTIONAL:
            _problem(problems, key, f"{key} is not installed: pip install {dists[0]}")
    return found


def _torch(problems: list[dict[str, Any]]) -> dict[str, Any]:
    info: dict[str, Any] = {"cuda": None, "mps": None, "threads": None, "cpus": os.cpu_count()}
    try:
        import torch
    except Exception as err:  # noqa: BLE001 - a broken install is what doctor is for
        info["error"] = _problem(problems, "torch", f"cannot import torch: {err}", fatal=True)
        return info
    info["threads"] = torch.get_num_threads()
    info["interop_threads"] = torch.get_num_interop_threads()
    cuda: dict[str, Any] = {"available": False, "version": torch.version.cuda, "devices": []}
    try:
        cuda["available"] = bool(torch.cuda.is_available())
        if cuda["available"]:
            cuda["devices"] = [
                torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
            ]
    except Exception as err:  # noqa: BLE001 - a driver that fails to answer
        cuda["error"] = _problem(problems, "cuda", f"CUDA does not answer: {err}")
    info["cuda"] = cuda
    mps = getattr(torch.backends, "mps", None)
    info["mps"] = {
        "available": bool(mps is not None and mps.is_available()),
        "built": bool(mps is not None and mps.is_built()),
    }
    return info


def _paths(problems: list[dict[str, Any]]) -> dict[str, Any]:
    from pcsep_cli.hub.download import hub_cache_dir
    from pcsep_cli.hub.models import bundled_models_dirs
    from pcsep_cli.hub.userconfig import config_dir, settings_path

    names = ("PCSEP_MODEL", "PCSEP_CONFIG_DIR", "PCSEP_BUNDLED_DIR", "HF_HOME", "HF_HUB_CACHE")
    names += ("HF_ENDPOINT", "HF_HUB_OFFLINE", "XDG_CACHE_HOME")
    settings = settings_path()
    return {
        "config_dir": str(config_dir()),
        "settings_file": str(settings),
        "settings_exist": settings.is_file(),
        "hub_cache": str(hub_cache_dir()),
        "bundled_models": [str(p) for p in bundled_models_dirs()],
        # Only the variables that move pcsep's files; never a token.
        "environment": {n: os.environ[n] for n in names if n in os.environ},
    }


def _audio(problems: list[dict[str, Any]]) -> dict[str, Any]:
    info: dict[str, Any] = {"libsndfile": None, "formats": [], "writable": {}}
    try:
        import numpy as np
        import soundfile as sf
    except Exception as err:  # noqa: BLE001
        info["error"] = _problem(
            problems, "soundfile", f"cannot import soundfile: {err}", fatal=True
        )
        return info
    info["libsndfile"] = sf.__libsndfile_version__
    info["formats"] = sorted(sf.available_formats())
    silence = np.zeros((4800, 1), dtype=np.float32)
    for name, (fmt, subtype, rate) in PROBED_FORMATS.items():
        try:
            buffer = io.BytesIO()
            with sf.SoundFile(buffer, "w", rate, 1, subtype, format=fmt) as f:
                f.write(silence)
            info["writable"][name] = buffer.tell() > 0
        except Exception:  # noqa: BLE001 - libsndfile built without that codec
            info["writable"][name] = False
        if not info["writable"][name]:
            _problem(
                problems,
                "audio",
                f"libsndfile {sf.__libsndfile_version__} cannot write {name}: "
                "pip install --force-reinstall soundfile (its wheels bundle a libsndfile "
                "with MP3, Vorbis and Opus; a system libsndfile may lack them)",
            )
    return info


def _model(load: bool, problems: list[dict[str, Any]]) -> dict[str, Any]:
    info: dict[str, Any] = {"ref": None, "origin": None, "loaded": None, "seconds": None}
    try:
        from pcsep_cli.hub.userconfig import default_model

        info["ref"], info["origin"] = default_model()
    except Exception as err:  # noqa: BLE001 - a broken settings file
        info["loaded"] = False
        info["error"] = _problem(problems, "model", str(err), fatal=True)
        return info
    if not load:
        return info
    began = time.perf_counter()
    try:
        from pcsep_cli.hub.models import describe, load_model

        net = load_model(info["ref"], offline=True)
    except Exception as err:  # noqa: BLE001 - what separate would meet, in one line
        info["loaded"] = False
        info["error"] = _problem(
            problems, "model", f"the default model {info['ref']} does not load: {err}", True
        )
        return info
    finally:
        info["seconds"] = round(time.perf_counter() - began, 3)
    config = net.config
    info.update(
        loaded=True,
        **{k: v for k, v in describe(net).items() if k != "id"},
        sample_rate=config.sample_rate,
        classes=list(config.classes),
        conditioning=config.conditioning,
        parameters=sum(p.numel() for p in net.parameters()),
    )
    return info
