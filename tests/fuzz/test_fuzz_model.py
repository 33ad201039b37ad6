"""Fuzz the model loader's checks: a tiny model folder with a mutated ``config.json`` or
``model.safetensors`` header must verify and load, or raise ModelError (see README.md)."""

from __future__ import annotations

import json
import shutil
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fuzz_mutations import (
    REGRESSIONS,
    SHARE,
    apply,
    bounded,
    fuzz_settings,
    mutations,
    run_fuzz,
    save_regression,
)
from helpers.models import save_tiny
from hypothesis import given
from hypothesis import strategies as st

from pcsep_cli.errors import ModelError
from pcsep_cli.hub.models import ResolvedModel, load_resolved, verify


@pytest.fixture(scope="module")
def model_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_tiny(Path(tmp) / "tiny", sample_rate=8000)
        # The first load imports torch's modules (seconds): keep it out of the 5 s limit.
        load_resolved(ResolvedModel(folder, "tiny", None, None, None, "local"))
        yield folder


def check_model(folder: Path, config: bytes, weights: bytes, name: str) -> None:
    """Verify (and, when it passes, load) a model folder holding these two files."""
    (folder / "config.json").write_bytes(config)
    (folder / "model.safetensors").write_bytes(weights)
    resolved = ResolvedModel(folder, str(folder), None, None, None, "local")
    try:
        with bounded(f"loading a model with a mutated {name}"):
            verify(resolved)
            load_resolved(resolved)
    except ModelError as err:
        assert str(err) and "\n" not in str(err)
    except BaseException as err:
        kept = save_regression(name, config if name == "config.json" else weights)
        raise AssertionError(f"{type(err).__name__}: {err} (kept as {kept.name})") from err


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.sampled_from([0, -1, 1, 10**9, 2**31])
    | st.floats()
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path in a JSON object (list items by index)."""
    found = [prefix] if prefix else []
    if isinstance(obj, dict):
        items = list(obj.items())
    elif isinstance(obj, list):
        items = list(enumerate(obj))
    else:
        items = []
    for key, value in items:
        found += _paths(value, (*prefix, key))
    return found


def _replace(obj: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    copy = dict(obj) if isinstance(obj, dict) else list(obj)
    copy[path[0]] = _replace(obj[path[0]], path[1:], value)
    return copy


def test_mutated_config_values_verify_or_raise_model_error(model_dir: Path) -> None:
    config = json.loads((model_dir / "config.json").read_text())
    weights = (model_dir / "model.safetensors").read_bytes()
    paths = _paths(config)

    with tempfile.TemporaryDirectory() as tmp:

        @fuzz_settings()
        @given(st.lists(st.tuples(st.sampled_from(paths), _json_values), min_size=1, max_size=3))
        def fuzz(edits: list[tuple[tuple, Any]]) -> None:
            mutated = config
            for path, value in edits:
                try:
                    mutated = _replace(mutated, path, value)
                except (KeyError, IndexError, TypeError):
                    continue  # an earlier edit removed this path
            text = json.dumps(mutated).encode()
            check_model(Path(tmp), text, weights, "config.json")

        run_fuzz(fuzz, share=SHARE)


def test_mutated_config_bytes_and_weight_headers_verify_or_raise_model_error(
    model_dir: Path,
) -> None:
    config = (model_dir / "config.json").read_bytes()
    weights = (model_dir / "model.safetensors").read_bytes()
    (header_len,) = struct.unpack_from("<Q", weights)
    head, body = weights[: 8 + header_len], weights[8 + header_len :]

    with tempfile.TemporaryDirectory() as tmp:

        @fuzz_settings()
        @given(st.booleans(), mutations)
        def fuzz(in_config: bool, ops: list[tuple]) -> None:
            if in_config:
                check_model(Path(tmp), apply(config, ops, head), weights, "config.json")
            else:
                # The header is what the checks read; mutated data would only change values.
                mutated = apply(head, ops, config) + body
                check_model(Path(tmp), config, mutated, "model.safetensors")

        run_fuzz(fuzz, share=SHARE)


def test_model_folder_left_intact(model_dir: Path, tmp_path: Path) -> None:
    """The harness itself: the unmutated files verify and load."""
    shutil.copytree(model_dir, tmp_path / "m")
    resolved = ResolvedModel(tmp_path / "m", "m", None, None, None, "local")
    assert verify(resolved).sample_rate == 8000
    assert load_resolved(resolved).config.sample_rate == 8000


@pytest.mark.parametrize("kept", sorted(p.name for p in REGRESSIONS.glob("*.json")))
def test_kept_configs_are_refused_quickly(kept: str, model_dir: Path, tmp_path: Path) -> None:
    """config-visual-blocks-5e6.json: 5 million residual blocks once hung the loader."""
    weights = (model_dir / "model.safetensors").read_bytes()
    with pytest.raises(ModelError, match="invalid config"):
        with bounded(kept):
            verify_folder = tmp_path / "m"
            verify_folder.mkdir()
            (verify_folder / "config.json").write_bytes((REGRESSIONS / kept).read_bytes())
            (verify_folder / "model.safetensors").write_bytes(weights)
            verify(ResolvedModel(verify_folder, kept, None, None, None, "local"))
