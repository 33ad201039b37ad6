"""`pcsep models blend`: (1 - w)·base + w·tuned as a new model folder, written atomically."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from helpers.models import save_tiny, tiny_net
from safetensors.torch import load_file
from typer.testing import CliRunner

from pcsep_cli.cli import app
from pcsep_cli.errors import ModelError
from pcsep_cli.hub.blend import blend
from pcsep_cli.hub.models import load_model
from pcsep_cli.nets.model import SeparationNet

runner = CliRunner()


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    return save_tiny(tmp_path / "base", seed=1), save_tiny(tmp_path / "tuned", seed=2)


def test_blend_is_the_weighted_average_of_every_float_tensor(pair, tmp_path) -> None:
    base, tuned = pair
    result = blend(str(base), str(tuned), 0.25, tmp_path / "mix")
    a, b, m = _weights(base), _weights(tuned), _weights(result.out)
    assert set(m) == set(a)
    floats = [k for k in a if a[k].is_floating_point()]
    assert result.tensors == len(floats) and result.kept == len(a) - len(floats)
    for k in floats:
        torch.testing.assert_close(m[k], 0.75 * a[k] + 0.25 * b[k], rtol=1e-6, atol=1e-6)
        if not torch.equal(a[k], b[k]):
            assert not torch.equal(m[k], a[k]) and not torch.equal(m[k], b[k])
    for k in set(a) - set(floats):
        assert torch.equal(m[k], b[k])  # batch counters come from the tuned model
    assert (result.out / "config.json").read_text() == (tuned / "config.json").read_text()
    load_model(str(result.out))  # passes the same checks as any model
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".mix.blend-")]


def test_the_ends_of_the_line_are_the_two_models(pair, tmp_path) -> None:
    base, tuned = pair
    for w, same in ((0.0, base), (1.0, tuned)):
        out = blend(str(base), str(tuned), w, tmp_path / f"w{w}").out
        got, want = _weights(out), _weights(same)
        assert all(torch.equal(got[k], want[k]) for k in want)


def test_models_of_another_config_are_refused_before_writing(pair, tmp_path) -> None:
    base, _ = pair
    cfg = tiny_net().config
    other_cfg = dataclasses.replace(cfg, film=dataclasses.replace(cfg.film, hidden=24))
    other = SeparationNet(other_cfg).save_pretrained(tmp_path / "other")
    with pytest.raises(ModelError, match="another config"):
        blend(str(base), str(other), 0.5, tmp_path / "mix")
    assert not (tmp_path / "mix").exists()


def test_cli_blends_refuses_bad_weights_and_never_overwrites_silently(pair, tmp_path) -> None:
    base, tuned = pair
    out = tmp_path / "mix"
    ok = runner.invoke(app, ["models", "blend", str(base), str(tuned), "-w", "0.6", "-o", str(out)])
    assert ok.exit_code == 0, ok.output
    assert "0.4 ×" in ok.output and "0.6 ×" in ok.output
    before = (out / "model.safetensors").read_bytes()
    again = runner.invoke(
        app, ["models", "blend", str(base), str(tuned), "-w", "0.1", "-o", str(out)]
    )
    assert again.exit_code == 1 and "already holds a model" in again.output
    assert "--overwrite" in again.output
    assert (out / "model.safetensors").read_bytes() == before
    replaced = runner.invoke(
        app, ["models", "blend", str(base), str(tuned), "-w", "0.1", "-o", str(out), "--overwrite"]
    )
    assert replaced.exit_code == 0 and (out / "model.safetensors").read_bytes() != before
    for bad in ("1.5", "-0.1", "nan"):
        res = runner.invoke(
            app, ["models", "blend", str(base), str(tuned), "-w", bad, "-o", str(tmp_path / "b")]
        )
        assert res.exit_code == 2 and "--weight" in res.output, (bad, res.output)
        assert not (tmp_path / "b").exists()
    missing = runner.invoke(
        app, ["models", "blend", str(base), str(tmp_path / "nope"), "-w", "0.5", "-o", str(out)]
    )
    assert missing.exit_code == 1 and "Traceback" not in missing.output
