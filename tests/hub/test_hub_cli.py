"""``pcsep models …`` through CliRunner and as a subprocess, against the local Hub."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pcsep_cli.cli import app
from pcsep_cli.hub.download import repo_cache_dir

runner = CliRunner()


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output + result.stderr
    return result.stdout


def _fails(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_download_list_use_remove_round_trip(hub, make_model, as_files, isolated_env: Path) -> None:
    shutil.copytree(make_model("pcsep-small", seed=3), isolated_env / "bundled" / "pcsep-small")
    files = as_files(make_model())
    old = hub.commit("me/tiny", files, tags=("v1",))
    new = hub.commit("me/tiny", {**files, "README.md": b"# newer\n"})

    got = json.loads(_ok(["models", "download", "me/tiny@v1", "--json"]))
    assert (got["id"], got["revision"], got["commit"]) == ("me/tiny", "v1", old)
    _ok(["models", "download", "me/tiny"])

    listing = json.loads(_ok(["models", "list", "--json"]))
    assert (listing["default"], listing["default_origin"]) == ("pcsep-base", "builtin")
    by_ref = {m["ref"]: m for m in listing["models"]}
    assert by_ref["pcsep-small"]["source"] == "bundled"
    assert by_ref["pcsep-small"]["size_bytes"] > 1000
    tiny = by_ref["me/tiny"]
    assert tiny["source"] == "hub" and tiny["default"] is False
    revisions = {r["commit"]: r for r in tiny["revisions"]}
    assert set(revisions) == {old, new}
    assert revisions[old]["refs"] == ["v1"] and revisions[new]["refs"] == ["main"]
    assert all(r["complete"] for r in revisions.values())
    assert tiny["size_bytes"] >= len(files["model.safetensors"])
    if by_ref["pcsep-base"]["source"] != "bundled":  # no real pcsep-base in this checkout
        assert by_ref["pcsep-base"]["available"] is False

    assert "default model: me/tiny@v1" in _ok(["models", "use", "me/tiny@v1"])
    listing = json.loads(_ok(["models", "list", "--json"]))
    assert listing["default"] == "me/tiny@v1" and listing["default_origin"] == "config"
    assert [m["ref"] for m in listing["models"] if m["default"]] == ["me/tiny"]
    human = _ok(["models", "list"])
    assert "me/tiny" in human and "default: me/tiny@v1 (from config)" in human

    removed = json.loads(_ok(["models", "remove", f"me/tiny@{new}", "--json"]))
    assert removed["freed_bytes"] > 0 and removed["was_default"] is False
    assert not (repo_cache_dir("me/tiny") / "snapshots" / new).exists()
    assert (repo_cache_dir("me/tiny") / "snapshots" / old).is_dir()
    result = runner.invoke(app, ["models", "remove", "me/tiny"])
    assert result.exit_code == 0 and "it was the default model" in result.stderr
    assert not repo_cache_dir("me/tiny").exists()


def test_list_prints_a_long_cache_path_whole_at_80_columns(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table's title broke the cache path mid-name to the table's width (and padded the
    title's lines with spaces)."""
    home = isolated_env / "a_very_long_cache_directory_name_for_testing" / "hugging_face_home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "80")
    lines = _ok(["models", "list"]).splitlines()
    assert f"Hub cache: {home / 'hub'}" in lines
    assert [line for line in lines if line != line.rstrip()] == []
    assert "default: pcsep-base (from builtin)" in lines


def test_info_reports_config_classes_rate_and_card_table(hub, make_model, as_files) -> None:
    directory = make_model()
    sha = hub.commit("me/tiny", as_files(directory))

    info = json.loads(_ok(["models", "info", "me/tiny", "--json"]))

    config = json.loads((directory / "config.json").read_text())
    assert info["commit"] == sha and info["source"] == "hub"
    assert info["classes"] == config["classes"]
    assert info["sample_rate"] == config["sample_rate"]
    assert info["config"] == config
    assert info["evaluation"] == {
        "columns": ["instrument", "SDR", "SIR"],
        "rows": [["violin", "5.1", "9.0"], ["overall", "4.0", "8.0"]],
    }
    from pcsep_cli.hub.models import load_model

    net = load_model("me/tiny")
    assert info["parameters"] == net.num_parameters()
    assert info["tensors"] == len(net.state_dict())
    human = _ok(["models", "info", str(directory)])
    assert "evaluation" in human and "violin" in human and "Hz" in human
    assert info["microphones"] is False and "ignored (mono downmix)" in human


def test_info_says_whether_a_model_reads_microphones(tmp_path: Path) -> None:
    from helpers.models import spatial_tiny

    directory = spatial_tiny().save_pretrained(tmp_path / "spatial")
    assert json.loads(_ok(["models", "info", str(directory), "--json"]))["microphones"] is True
    assert "read (spatial head)" in _ok(["models", "info", str(directory)])


def test_use_checks_the_model_and_pcsep_model_overrides(
    make_model, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = make_model()
    line = _fails(["models", "use", str(isolated_env / "missing")])
    assert "model directory not found" in line
    assert not (isolated_env / "config" / "config.json").exists()

    monkeypatch.setenv("PCSEP_MODEL", "me/other")
    result = runner.invoke(app, ["models", "use", str(good)])
    assert result.exit_code == 0
    assert "PCSEP_MODEL=me/other is set and overrides it" in result.stderr
    saved = json.loads((isolated_env / "config" / "config.json").read_text())
    assert saved == {"model": str(good)}
    listing = json.loads(_ok(["models", "list", "--json"]))
    assert (listing["default"], listing["default_origin"]) == ("me/other", "env")


def test_errors_are_one_line_with_exit_1(hub, make_model, as_files) -> None:
    pickled = as_files(make_model())
    pickled["pytorch_model.bin"] = pickled.pop("model.safetensors")
    hub.commit("me/pickled", pickled)

    assert "no such model repository" in _fails(["models", "download", "me/nope"])
    assert "holds only pickle weights" in _fails(["models", "info", "me/pickled"])
    assert "not in the cache" in _fails(["models", "remove", "me/nope"])
    assert "unknown model 'pcsep-nope'" in _fails(["models", "info", "pcsep-nope"])
    assert "offline mode is on" in _fails(["models", "info", "me/pickled", "--offline"])


def test_remove_refuses_bundled_and_local(make_model, isolated_env: Path) -> None:
    shutil.copytree(make_model(), isolated_env / "bundled" / "pcsep-small")

    assert "bundled models ship with pcsep" in _fails(["models", "remove", "pcsep-small"])
    assert "not your directories" in _fails(["models", "remove", str(make_model("x"))])


def _pcsep(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pcsep_cli.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_offline_flag_in_a_fresh_process_reads_only_the_cache(
    hub, make_model, as_files, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha = hub.commit("me/tiny", as_files(make_model()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["HF_HOME"] = str(isolated_env / "hf2")  # honoured from the environment at start

    download = _pcsep(["models", "download", "me/tiny", "--json"], env)
    assert download.returncode == 0, download.stderr
    assert json.loads(download.stdout)["commit"] == sha
    assert (isolated_env / "hf2" / "hub" / "models--me--tiny" / "snapshots" / sha).is_dir()
    before = len(hub.requests)

    offline = _pcsep(["models", "info", "me/tiny", "--offline", "--json"], env)
    assert offline.returncode == 0, offline.stderr
    assert json.loads(offline.stdout)["commit"] == sha
    monkeypatch.setenv("HF_HOME", env["HF_HOME"])
    assert "not in the cache" in _fails(["models", "info", "me/other", "--offline"])
    assert len(hub.requests) == before


def test_help_and_list_do_not_import_huggingface_hub_or_torch() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from pcsep_cli.cli import app\n"
        "r = CliRunner().invoke(app, ['models', 'list', '--json'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print('torch' in sys.modules, 'huggingface_hub' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["False", "False"]
