"""Config files within caps: a model's config.json and training configs (JSON, TOML) are read
only up to 1 MB and refused past 32 levels of nesting, before the parser recurses into them."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from pcsep_cli.dataclass_json import (
    MAX_CONFIG_BYTES,
    MAX_CONFIG_DEPTH,
    nesting_depth,
    parse_config_text,
)
from pcsep_cli.errors import ModelError
from pcsep_cli.hub.models import load_model
from pcsep_cli.hub.safety import read_safetensors_header
from pcsep_cli.nets.model import load_config
from pcsep_cli.train.config import CONFIG_DIR, TrainConfigError, load_train_config

ROOT = Path(__file__).resolve().parents[1]
DEEP = 200_000


def _one_line(err: pytest.ExceptionInfo, path: Path) -> str:
    text = str(err.value)
    assert text.startswith(f"{path}: ") and "\n" not in text
    return text


@pytest.fixture
def garbage_weights_model(model: Path, tmp_path: Path) -> Path:
    """A copy of the tiny model whose weights are garbage: a config refused must be refused
    before the weights are looked at."""
    folder = shutil.copytree(model, tmp_path / "m")
    (folder / "model.safetensors").write_bytes(b"\xff" * 64)
    return folder


def test_real_configs_are_far_inside_the_caps() -> None:
    files = [*CONFIG_DIR.glob("*.json"), *(ROOT / "models").glob("*/config.json")]
    assert len(files) >= 7
    for file in files:
        text = file.read_text()
        assert len(text.encode()) < MAX_CONFIG_BYTES / 100
        assert nesting_depth(text) <= 4 < MAX_CONFIG_DEPTH


def test_nesting_depth_skips_brackets_in_strings_and_comments() -> None:
    assert nesting_depth('{"a": [1, {"b": "[[[[{{{"}], "c": "\\"[["}') == 3
    assert nesting_depth("[]" * 1000) == 1
    assert nesting_depth("[" * DEEP) > MAX_CONFIG_DEPTH
    assert nesting_depth("]]]][[") == 2  # a parser stops at the first stray closer
    toml = "a = '[[[['  # [[[[\nb = \"\"\"\n[[[[\n\"\"\"\nc = [[1], [2]]\n[t.u]\nd = '''[['''\n"
    assert nesting_depth(toml, toml=True) == 2
    assert parse_config_text(toml, toml=True)["c"] == [[1], [2]]


@pytest.mark.parametrize(
    "text",
    ["[" * DEEP + "]" * DEEP, '{"a":' * DEEP + "1" + "}" * DEEP, "[" * DEEP, "[" * 33 + "]" * 33],
)
def test_deep_json_is_refused_before_parsing(text: str) -> None:
    with pytest.raises(ValueError, match="nest more than 32 levels deep"):
        parse_config_text(text)


def test_json_at_the_depth_cap_parses() -> None:
    assert parse_config_text("[" * 32 + "]" * 32) == eval("[" * 32 + "]" * 32)  # noqa: S307


def test_model_config_nested_200000_deep_is_refused_in_one_line(
    garbage_weights_model: Path,
) -> None:
    config = garbage_weights_model / "config.json"
    config.write_text("[" * DEEP + "]" * DEEP)  # 400 kB: inside the size cap

    with pytest.raises(ModelError, match="nest more than 32 levels deep") as err:
        load_model(str(garbage_weights_model))
    _one_line(err, config)


def test_model_config_padded_past_the_size_cap_is_refused_unread(
    garbage_weights_model: Path,
) -> None:
    config = garbage_weights_model / "config.json"
    valid = config.read_bytes()
    with config.open("r+b") as fh:  # a sparse 200 MB file: valid JSON after the padding
        fh.seek(200_000_000)
        fh.write(valid)

    with pytest.raises(ModelError, match="larger than 1,000,000 bytes") as err:
        load_config(garbage_weights_model)
    _one_line(err, config)


def test_model_config_just_under_the_size_cap_loads(model: Path, tmp_path: Path) -> None:
    folder = shutil.copytree(model, tmp_path / "m")
    valid = (folder / "config.json").read_bytes()
    (folder / "config.json").write_bytes(b" " * (MAX_CONFIG_BYTES - len(valid)) + valid)

    assert load_config(folder) == load_config(model)


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_model_config_that_is_not_a_regular_file_is_named_so(
    garbage_weights_model: Path, kind: str
) -> None:
    """A FIFO would block the read forever and /dev/zero never ends: neither is opened for
    reading, and neither is reported as a missing config."""
    config = garbage_weights_model / "config.json"
    config.unlink()
    if kind == "fifo":
        os.mkfifo(config)
    elif kind == "device":
        config.symlink_to("/dev/zero")
    else:
        config.mkdir()

    with pytest.raises(ModelError, match="is not a regular file") as err:
        load_model(str(garbage_weights_model))
    _one_line(err, config)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deep.json", '{"model":' * DEEP + "{}" + "}" * DEEP),
        ("deep.toml", "steps = " + "[" * DEEP + "]" * DEEP + "\n"),
        ("inline.toml", "augment = " + "{a = " * 40 + "1" + "}" * 40 + "\n"),
        ("dotted.toml", ".".join(["a"] * 40) + " = 1\n"),  # nests tables with no brackets
        ("big.json", " " * (MAX_CONFIG_BYTES + 1) + "{}"),
        ("big.toml", "#" * (MAX_CONFIG_BYTES + 1) + "\n"),
    ],
)
def test_hostile_training_configs_are_refused_in_one_line(
    tmp_path: Path, name: str, text: str
) -> None:
    path = tmp_path / name
    path.write_text(text)

    with pytest.raises(TrainConfigError, match="nest more than 32 levels|larger than") as err:
        load_train_config(path)
    _one_line(err, path)


def test_toml_training_config_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('steps = 7  # [[[[\nout_dir = "runs/[x]"\n[model.stft]\nn_fft = 512\n')

    cfg = load_train_config(path)

    assert (cfg.steps, cfg.out_dir, cfg.model.stft.n_fft) == (7, "runs/[x]", 512)
    assert load_train_config("tiny") == load_train_config(CONFIG_DIR / "tiny.json")


def test_deeply_nested_safetensors_header_is_a_model_error(tmp_path: Path) -> None:
    header = ("[" * DEEP + "]" * DEEP).encode()
    path = tmp_path / "model.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header)

    with pytest.raises(ModelError, match="too deeply") as err:
        read_safetensors_header(path)
    _one_line(err, path)


def test_json_loads_of_this_file_is_unchanged() -> None:
    # The helper is json.loads underneath: same values, object_pairs_hook passed through.
    text = json.dumps({"a": [1, 2.5, None, True, "x"], "b": {"c": []}})
    assert parse_config_text(text) == json.loads(text)
    pairs = parse_config_text('{"a": 1, "a": 2}', object_pairs_hook=list)
    assert pairs == [("a", 1), ("a", 2)]
