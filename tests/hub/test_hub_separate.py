"""`pcsep separate --model DIR` and `--model owner/name@rev` give identical stems."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
from helpers.audio import output_file
from typer.testing import CliRunner

from pcsep_cli.cli import app

runner = CliRunner()


def _separate(mix: Path, out: Path, model: str) -> dict:
    result = runner.invoke(
        app,
        ["separate", str(mix), "--instruments", "violin,cello", "--model", model,
         "-o", str(out), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # progress lines go to stderr


def test_directory_and_hub_revision_give_identical_stems(hub, make_model, as_files, tmp_path):
    directory = make_model(seed=3)
    sha = hub.commit("me/tiny", as_files(directory), branch="main")
    mix = tmp_path / "mix.wav"
    audio = 0.3 * np.random.default_rng(0).standard_normal((22050, 2))
    sf.write(mix, audio.astype(np.float32), 44100, subtype="FLOAT")

    local = _separate(mix, tmp_path / "local", str(directory))
    by_commit = _separate(mix, tmp_path / "commit", f"me/tiny@{sha}")
    by_branch = _separate(mix, tmp_path / "branch", "me/tiny@main")

    for manifest in (by_commit, by_branch):
        assert [s["name"] for s in manifest["stems"]] == [s["name"] for s in local["stems"]]
        for mine, theirs in zip(local["stems"], manifest["stems"], strict=True):
            assert output_file(local, mine).read_bytes() == (
                output_file(manifest, theirs).read_bytes()
            )
        assert manifest["model"]["commit"] == sha
        assert manifest["model"]["source"] == "hub"
    assert by_branch["model"]["revision"] == "main"
    assert local["model"]["source"] == "local"
    stems = [sf.read(output_file(local, s))[0] for s in local["stems"]]
    assert not np.allclose(stems[0], stems[1])  # the two stems are not one copied signal
