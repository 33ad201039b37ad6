"""``pcsep doctor`` as users run it (the console script, in a process of its own): what it
reports is checked against the installed packages and libsndfile themselves."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest
import soundfile as sf
import torch

from pcsep_cli import __version__
from pcsep_cli.doctor import PACKAGES, PROBED_FORMATS

PCSEP = shutil.which("pcsep", path=str(Path(sys.executable).parent)) or "pcsep"
ROOT = Path(__file__).resolve().parents[1]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PCSEP_", "HF_"))}
    # This checkout's code, also where the environment's pcsep is installed from another one.
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env.update(PCSEP_CONFIG_DIR=str(tmp_path / "config"), HF_HOME=str(tmp_path / "hf"))
    env.update(COLUMNS="100", PYTHONPATH=path)
    env.update(extra)
    return env


def _doctor(tmp_path: Path, *args: str, **extra: str) -> tuple[subprocess.CompletedProcess, float]:
    start = time.perf_counter()
    proc = subprocess.run([PCSEP, "doctor", *args], env=_env(tmp_path, **extra),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    return proc, time.perf_counter() - start


def _installed(dists: tuple[str, ...]) -> str | None:
    for dist in dists:
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
        return version if len(dists) == 1 else f"{dist} {version}"
    return None


def _writes(fmt: str, subtype: str, rate: int) -> bool:
    """Whether this libsndfile writes the format: a real file, read back."""
    buffer = io.BytesIO()
    try:
        sf.write(buffer, [[0.0]] * 4800, rate, subtype=subtype, format=fmt)
        buffer.seek(0)
        return sf.info(buffer).frames > 0 or fmt == "MP3"  # MP3 headers hold no frame count
    except (sf.LibsndfileError, RuntimeError, TypeError):
        return False


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, float, Path]:
    tmp_path = tmp_path_factory.mktemp("doctor")
    proc, wall = _doctor(tmp_path, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), wall, tmp_path


def test_versions_are_those_installed(report: tuple[dict, float, Path]) -> None:
    data, _, _ = report
    assert data["pcsep"]["version"] == __version__
    assert data["python"]["version"] == ".".join(map(str, sys.version_info[:3]))
    assert data["python"]["executable"] == sys.executable
    assert set(data["packages"]) == set(PACKAGES)
    for key, dists in PACKAGES.items():
        assert data["packages"][key] == _installed(dists), key
    assert data["packages"]["torch"] == torch.__version__  # a required one is found


def test_devices_threads_and_folders(report: tuple[dict, float, Path]) -> None:
    data, _, tmp_path = report
    cuda = data["torch"]["cuda"]
    assert cuda["available"] == torch.cuda.is_available()
    assert len(cuda["devices"]) == (torch.cuda.device_count() if cuda["available"] else 0)
    assert data["torch"]["threads"] >= 1 and data["torch"]["cpus"] == os.cpu_count()
    paths = data["paths"]
    assert paths["config_dir"] == str(tmp_path / "config")
    assert paths["settings_file"] == str(tmp_path / "config" / "config.json")
    assert paths["settings_exist"] is False
    assert paths["hub_cache"] == str(tmp_path / "hf" / "hub")
    assert paths["environment"] == {
        "PCSEP_CONFIG_DIR": str(tmp_path / "config"),
        "HF_HOME": str(tmp_path / "hf"),
        **({"XDG_CACHE_HOME": os.environ["XDG_CACHE_HOME"]} if "XDG_CACHE_HOME" in os.environ
           else {}),
    }  # fmt: skip


def test_audio_formats_match_libsndfile(report: tuple[dict, float, Path]) -> None:
    data, _, _ = report
    audio = data["audio"]
    assert audio["libsndfile"] == sf.__libsndfile_version__
    assert audio["formats"] == sorted(sf.available_formats())
    assert audio["writable"] == {name: _writes(*spec) for name, spec in PROBED_FORMATS.items()}
    assert audio["writable"]["WAV"] and audio["writable"]["FLAC"]
    unwritable = [n for n, ok in audio["writable"].items() if not ok]
    said = [p["message"] for p in data["problems"] if p["item"] == "audio"]
    assert len(said) == len(unwritable)


def test_the_default_model_loads_offline_quickly(report: tuple[dict, float, Path]) -> None:
    data, wall, _ = report
    model = data["model"]
    assert (model["ref"], model["origin"], model["loaded"]) == ("pcsep-base", "builtin", True)
    assert model["source"] == "bundled" and model["sample_rate"] == 11025
    assert model["classes"][-1] == "none" and model["parameters"] > 100_000
    assert 0 < model["seconds"] < data["seconds"]
    assert not any(p["fatal"] for p in data["problems"])
    # Under 5 s; on a machine so loaded that importing torch alone takes longer, doctor may
    # add at most 2.5 s to that import (which it cannot do without).
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True, timeout=120)
    torch_import = time.perf_counter() - start
    assert wall < max(5.0, torch_import + 2.5), f"doctor {wall:.1f} s, torch {torch_import:.1f} s"


def test_the_readable_report(tmp_path: Path, report: tuple[dict, float, Path]) -> None:
    data, _, _ = report
    proc, _ = _doctor(tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = [line.rstrip() for line in proc.stdout.splitlines()]
    row = {line.split("  ", 1)[0]: line.split("  ", 1)[1].strip() for line in lines if "  " in line}
    assert row["pcsep"].startswith(f"{__version__} (")
    assert row["torch"] == torch.__version__
    assert row["soundfile"] == f"{sf.__version__} (libsndfile {sf.__libsndfile_version__})"
    e57 = data["packages"]["e57"]
    assert row["E57 reader"] == (e57 if e57 else "not installed (pye57)")
    sparse = data["packages"]["torchsparse"]
    assert row["torchsparse"] == (sparse if sparse else "not installed (optional)")
    assert row["default model"].startswith("pcsep-base (builtin): loads in ")
    assert "MP3 " in row["audio output"] and "OPUS " in row["audio output"]
    problems = [p["message"] for p in data["problems"]]
    assert lines[-1] == ("no problem found" if not problems else f"warning: {problems[-1]}")


def _named_rows(text: str) -> dict[str, str]:
    """``{name: value}`` of a readable report's rows (first lines; continuations left out)."""
    rows = [line.split("  ", 1) for line in text.splitlines() if line[:1].strip()]
    return {row[0]: row[1].strip() for row in rows if len(row) == 2}


def test_the_readme_example_is_a_real_report(tmp_path: Path) -> None:
    """The README's example showed pye57, a required dependency, as not installed."""
    block = re.search(r"```\n\$ pcsep doctor\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block is not None
    shown = _named_rows(block.group(1))
    proc, _ = _doctor(tmp_path)
    real = _named_rows(proc.stdout)
    assert list(shown) == [name for name in real if not name.startswith("$")]
    required = ("torch", "numpy", "soundfile", "laspy", "E57 reader", "huggingface_hub")
    for name in (*required, "typer / rich"):
        assert "not installed" not in shown[name], name
    assert shown["E57 reader"].split()[0] == real["E57 reader"].split()[0] == "pye57"
    assert shown["torchsparse"] == "not installed (optional)"  # optional: the usual case


def test_long_paths_are_whole_and_lines_unpadded_at_80_columns(tmp_path: Path) -> None:
    """Piped at 80 columns with a long HF_HOME: every path is printed whole, on a line of its
    own where it does not fit beside its name (rich's table cut them with an ellipsis), and no
    line is padded with spaces to the width."""
    home = tmp_path / "a_very_long_cache_directory_name_for_testing" / "hugging_face_home_here"
    proc, _ = _doctor(tmp_path, HF_HOME=str(home), COLUMNS="80")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "\u2026" not in proc.stdout
    assert [line for line in lines if line != line.rstrip()] == []
    words = [line.split() for line in lines]
    assert ["model", "cache"] in words and ["$HF_HOME"] in words  # the path did not fit
    assert [str(home / "hub")] in words and [str(home)] in words  # whole, on the next line
    config = str(tmp_path / "config" / "config.json")
    assert any(config in w for w in words)
    # Only a line that is one path may run past the width (the terminal folds it, whole).
    assert [line for line in lines if len(line) > 80 and len(line.split()) > 1] == []
    row = {w[0]: w for w in words if w}
    assert row["default"][1:3] == ["model", "pcsep-base"]


def test_a_default_model_that_does_not_load_fails(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    (broken / "model.safetensors").write_bytes(b"\0" * 16)
    proc, _ = _doctor(tmp_path, "--json", PCSEP_MODEL=str(broken))
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["model"]["ref"] == str(broken) and data["model"]["origin"] == "env"
    assert data["model"]["loaded"] is False
    [fatal] = [p for p in data["problems"] if p["fatal"]]
    assert fatal["message"].startswith(f"the default model {broken} does not load: ")
    assert "config.json" in fatal["message"] and "\n" not in fatal["message"]
    # Everything else is still reported.
    assert data["audio"]["libsndfile"] == sf.__libsndfile_version__
    text, _ = _doctor(tmp_path, PCSEP_MODEL=str(broken))
    assert text.returncode == 1
    assert f"error: {fatal['message']}" in " ".join(text.stdout.split())


def test_a_broken_settings_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.json").write_text("[1, 2")
    proc, _ = _doctor(tmp_path, "--json")
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["paths"]["settings_exist"] is True and data["model"]["loaded"] is False
    [fatal] = [p for p in data["problems"] if p["fatal"]]
    assert "settings are not valid JSON" in fatal["message"]
