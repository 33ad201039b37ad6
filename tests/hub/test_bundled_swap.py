"""The two checkpoints that ship in the package, swapped for real on the shipped example.

``models use pcsep-small`` makes the next ``pcsep separate`` (no ``--model``) use the small
model: its manifest names it, its stems differ from pcsep-base's, and both sets still add
up to the mixture with the residual.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers.audio import output_file
from typer.testing import CliRunner

from pcsep_cli.cli import app
from pcsep_cli.hub.models import bundled_models_dir

runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parents[2] / "pcsep_cli" / "examples" / "quartet"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PCSEP_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("PCSEP_MODEL", raising=False)
    monkeypatch.delenv("PCSEP_BUNDLED_DIR", raising=False)
    return tmp_path


def _separate(out: Path, *extra: str) -> dict:
    args = ["separate", str(EXAMPLE / "mixture.flac"), str(EXAMPLE / "scene.ply")]
    result = runner.invoke(app, [*args, "-o", str(out), "--json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # progress lines go to stderr


def _stems(manifest: dict) -> list[np.ndarray]:
    return [sf.read(output_file(manifest, s), always_2d=True)[0] for s in manifest["stems"]]


def test_both_bundled_models_ship_and_swap(env: Path) -> None:
    bundled = bundled_models_dir()
    assert bundled is not None
    for name in ("pcsep-base", "pcsep-small"):
        for file in ("config.json", "model.safetensors", "README.md"):
            assert (bundled / name / file).is_file(), f"{name}/{file}"

    listed = runner.invoke(app, ["models", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert {"pcsep-base", "pcsep-small"} <= {m["ref"] for m in json.loads(listed.output)["models"]}

    base = _separate(env / "base")
    assert base["model"]["id"] == "pcsep-base"
    used = runner.invoke(app, ["models", "use", "pcsep-small"])
    assert used.exit_code == 0, used.output
    small = _separate(env / "small")
    assert small["model"]["id"] == "pcsep-small"

    mix, _ = sf.read(EXAMPLE / "mixture.flac", always_2d=True)
    for manifest in (base, small):
        residual, _ = sf.read(output_file(manifest, manifest["residual"]), always_2d=True)
        total = sum(_stems(manifest)) + residual
        assert np.abs(total - mix).max() <= 1e-4

    # Same performers found (the scene step does not depend on the model), other weights.
    def seen(m: dict) -> list:
        return sorted(d["position"] for d in m["stems"] + m["ignored"])

    assert seen(base) == seen(small)
    a, b = _stems(base), _stems(small)
    same = len(a) == len(b) and all(np.allclose(x, y, atol=1e-3) for x, y in zip(a, b, strict=True))
    assert not same
