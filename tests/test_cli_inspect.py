"""``pcsep inspect`` end to end: CliRunner on real files, and the installed console script."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from plyfile import PlyData, PlyElement
from typer.testing import CliRunner

from pcsep_cli import __version__
from pcsep_cli.cli import app

PCSEP = shutil.which("pcsep", path=str(Path(sys.executable).parent)) or "pcsep"
runner = CliRunner()


def _ply(path: Path, xyz: np.ndarray, rgb: np.ndarray | None = None) -> Path:
    fields = [("x", "f8"), ("y", "f8"), ("z", "f8")]
    if rgb is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    v = np.zeros(len(xyz), dtype=fields)
    v["x"], v["y"], v["z"] = xyz.T
    if rgb is not None:
        v["red"], v["green"], v["blue"] = rgb.T
    PlyData([PlyElement.describe(v, "vertex")]).write(str(path))
    return path


@pytest.fixture
def scene(tmp_path: Path) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(0)
    xyz = rng.uniform(0, 4, (500, 3)) + [512_000.0, 5_400_000.0, 100.0]
    xyz[17] = np.nan
    rgb = rng.integers(0, 256, (500, 3), dtype=np.uint8)
    return _ply(tmp_path / "scene.ply", xyz, rgb), xyz


def test_json_report(scene: tuple[Path, np.ndarray]) -> None:
    path, xyz = scene
    result = runner.invoke(app, ["inspect", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {"file", "format", "points", "bounds", "has_rgb", "warnings"}
    assert report["warnings"] == []  # a 4 m scene, georeferenced: metres it is
    assert report["file"] == str(path)
    assert report["format"] == "ply (binary_little_endian)"
    assert report["points"] == 499  # finite points only
    assert report["bounds"]["min"] == np.nanmin(xyz, axis=0).tolist()
    assert report["bounds"]["max"] == np.nanmax(xyz, axis=0).tolist()
    assert report["has_rgb"] is True
    assert result.stderr == ""


def test_json_units_and_no_colour(tmp_path: Path) -> None:
    path = _ply(tmp_path / "mm.ply", np.array([[0.0, 0, 0], [1500.0, 250, 3000]]))
    result = runner.invoke(app, ["inspect", str(path), "--units", "mm", "--json"])
    report = json.loads(result.stdout)
    assert report["bounds"]["max"] == [1.5, 0.25, 3.0]
    assert report["has_rgb"] is False


def test_human_report(scene: tuple[Path, np.ndarray]) -> None:
    path, _ = scene
    result = runner.invoke(app, ["inspect", str(path)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "ply (binary_little_endian)" in out
    assert "499" in out and "1 non-finite or missing points" in out
    assert "512000." in out and "5400000." in out
    assert "colour" in out and "yes" in out


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"pcsep {__version__}"


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


TRUNCATED_PLY = (
    b"ply\nformat binary_little_endian 1.0\nelement vertex 99\nproperty float x\n"
    b"property float y\nproperty float z\nend_header\n" + b"\0" * 24
)


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda d: d / "missing.ply", "no such file"),
        (lambda d: _write(d / "empty.ply", b""), "empty"),
        (lambda d: _write(d / "a.ply", b"RIFF\0\0\0\0WAVEfmt " + b"\0" * 64), "WAV audio"),
        (lambda d: _write(d / "t.ply", TRUNCATED_PLY), "truncated"),
        (lambda d: d, "is a folder"),
    ],
)
def test_errors_are_one_line_with_exit_1(tmp_path: Path, make, message: str) -> None:  # noqa: ANN001
    path = make(tmp_path)
    result = runner.invoke(app, ["inspect", str(path)])
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and str(path) in lines[0] and message in lines[0]
    assert "Traceback" not in result.output


def test_unknown_units_are_a_usage_error(scene: tuple[Path, np.ndarray]) -> None:
    """A bad --units is the command line's fault, not the cloud's: exit 2, the option named
    with the values it takes, and the file never read."""
    result = runner.invoke(app, ["inspect", str(scene[0]), "--units", "yards"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: pcsep inspect: Invalid value for '--units': 'yards' is not one of 'm', 'cm', "
        "'mm', 'ft' (see 'pcsep inspect --help')\n"
    )
    assert runner.invoke(app, ["inspect", str(scene[0]), "--units", "MM"]).exit_code == 0


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--debug", "inspect", str(tmp_path / "missing.ply")])
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "PointCloudError" in result.stderr
    assert "error: " in result.stderr


@pytest.mark.parametrize(
    "args", [["inspect"], ["inspect", "a.ply", "b.ply"], ["inspect", "a.ply", "--colour"]]
)
def test_usage_errors_exit_2_with_one_line(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stdout == ""
    # One line, like library errors: the command, what is wrong, where to read more.
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: pcsep inspect: ")
    assert "(see 'pcsep inspect --help')" in result.stderr


# --- the installed console script ----------------------------------------------------------


def _run(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:  # noqa: ANN003
    return subprocess.run([*args], capture_output=True, text=True, timeout=60, **kwargs)


def test_console_script_is_installed() -> None:
    assert Path(PCSEP).is_file(), "install with: .venv/bin/pip install -e . --no-deps"


def test_console_script_json_and_error(scene: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    path, _ = scene
    ok = _run(PCSEP, "inspect", str(path), "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["points"] == 499
    bad = _run(PCSEP, "inspect", str(tmp_path / "nope.las"))
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("error: ")
    assert "Traceback" not in bad.stderr
    usage = _run(PCSEP, "inspect")
    assert usage.returncode == 2
    assert usage.stderr.count("\n") == 1 and usage.stderr.startswith("error: pcsep inspect:")
    bare = _run(PCSEP)  # no command: the help, as before
    assert bare.returncode == 2 and "Usage" in bare.stdout + bare.stderr


def test_help_is_fast_and_does_not_import_torch() -> None:
    walls = []
    for _ in range(3):
        start = time.perf_counter()
        result = _run(PCSEP, "--help")
        walls.append(time.perf_counter() - start)
        assert result.returncode == 0 and "inspect" in result.stdout
    assert statistics.median(walls) < 0.5, f"pcsep --help took {walls} s"
    trace = _run(sys.executable, "-X", "importtime", "-m", "pcsep_cli.cli", "--help")
    assert trace.returncode == 0
    imported = {line.rsplit("|", 1)[-1].strip() for line in trace.stderr.splitlines()}
    assert "torch" not in imported and "laspy" not in imported
    assert "typer" in imported  # the trace itself worked


def test_inspect_does_not_import_torch(scene: tuple[Path, np.ndarray]) -> None:
    trace = _run(
        sys.executable,
        "-X",
        "importtime",
        "-m",
        "pcsep_cli.cli",
        "inspect",
        str(scene[0]),
        "--json",
    )
    assert trace.returncode == 0, trace.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in trace.stderr.splitlines()}
    assert "plyfile" in imported and "torch" not in imported


def test_unreadable_file(scene: tuple[Path, np.ndarray]) -> None:
    """Root reads any file, so as root the command runs with the effective uid of 'nobody'
    (the console script cannot: nobody may not enter /root, where the venv's python lives)."""
    folder = Path(tempfile.mkdtemp(prefix="pcsep-cli-perm-"))
    try:
        folder.chmod(0o755)
        target = folder / "scene.ply"
        shutil.copy(scene[0], target)
        target.chmod(0)
        # Warm-up as root: 'nobody' may not import modules from /root/.pyenv.
        runner.invoke(app, ["inspect", str(folder / "missing.ply")])
        if os.geteuid() == 0:
            os.seteuid(65534)
        try:
            result = runner.invoke(app, ["inspect", str(target)])
        finally:
            if os.getuid() == 0:
                os.seteuid(0)
        assert result.exit_code == 1, result.output
        assert "permission denied" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    finally:
        shutil.rmtree(folder)
