"""Checkpoint checks that run before any tensor is read: header, layout, names, pickle."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from pcsep_cli.errors import ModelError
from pcsep_cli.hub.safety import (
    TensorInfo,
    check_model_dir,
    check_repo_files,
    check_tensors,
    read_safetensors_header,
)


def raw_safetensors(path: Path, header: dict, data: bytes) -> Path:
    """Write a safetensors file byte by byte (to claim what the library would never write)."""
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + data)
    return path


def test_header_of_a_file_written_by_safetensors(tmp_path: Path) -> None:
    file = tmp_path / "model.safetensors"
    save_file(
        {"a.weight": np.zeros((3, 4), np.float32), "b": np.ones(5, np.int64)},
        str(file),
        metadata={"format": "pt"},
    )

    header = read_safetensors_header(file)

    a, b = header["a.weight"], header["b"]
    assert set(header) == {"a.weight", "b"}
    assert a == TensorInfo("F32", (3, 4), a.begin, a.begin + 48)
    assert b == TensorInfo("I64", (5,), b.begin, b.begin + 40)
    assert sorted([(a.begin, a.end), (b.begin, b.end)])[0][0] == 0


def test_a_trillion_element_claim_is_refused_before_allocation(tmp_path: Path) -> None:
    file = raw_safetensors(
        tmp_path / "model.safetensors",
        {"w": {"dtype": "F32", "shape": [1_000_000, 1_000_000], "data_offsets": [0, 16]}},
        b"\0" * 16,
    )
    start = time.perf_counter()

    with pytest.raises(ModelError) as err:
        read_safetensors_header(file)

    assert time.perf_counter() - start < 1.0
    text = str(err.value)
    assert str(file) in text
    assert "claims shape [1000000, 1000000] F32 (4000000000000 bytes) but spans 16" in text


def test_consistent_but_huge_claim_is_refused_by_file_size(tmp_path: Path) -> None:
    nbytes = 4 * 10**12
    file = raw_safetensors(
        tmp_path / "model.safetensors",
        {"w": {"dtype": "F32", "shape": [10**6, 10**6], "data_offsets": [0, nbytes]}},
        b"\0" * 16,
    )

    with pytest.raises(ModelError, match=f"need {nbytes} bytes of data but the file holds 16"):
        read_safetensors_header(file)


@pytest.mark.parametrize(
    ("header", "data", "message"),
    [
        (
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
            },
            b"\0" * 12,
            "overlaps",
        ),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}, b"\0" * 16, "gap"),
        ({"a": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8, "dtype 'Q4'"),
        ({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\0" * 8, "shape"),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, b"\0" * 8, "offsets"),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4, "holds 4"),
        ({"a": [1, 2]}, b"", "not an object"),
    ],
)
def test_malformed_headers_are_refused(
    tmp_path: Path, header: dict, data: bytes, message: str
) -> None:
    file = raw_safetensors(tmp_path / "model.safetensors", header, data)
    with pytest.raises(ModelError, match=message):
        read_safetensors_header(file)


def test_header_length_beyond_the_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    file = tmp_path / "model.safetensors"
    file.write_bytes(struct.pack("<Q", 2**62) + b"{}")

    with pytest.raises(ModelError, match=r"header claims 4611686018427387904 bytes"):
        read_safetensors_header(file)


def test_short_or_non_json_files_are_refused(tmp_path: Path) -> None:
    short = tmp_path / "short.safetensors"
    short.write_bytes(b"\1\2")
    pickle = tmp_path / "pickle.safetensors"
    pickle.write_bytes(struct.pack("<Q", 4) + b"\x80\x04K\x01")
    duplicate = tmp_path / "dup.safetensors"
    blob = b'{"a": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}, "a": {}}'
    duplicate.write_bytes(struct.pack("<Q", len(blob)) + blob)

    with pytest.raises(ModelError, match="too short"):
        read_safetensors_header(short)
    with pytest.raises(ModelError, match="not valid JSON"):
        read_safetensors_header(pickle)
    with pytest.raises(ModelError, match="appears twice"):
        read_safetensors_header(duplicate)


def test_tensors_are_compared_with_what_the_config_expects(tmp_path: Path) -> None:
    file = tmp_path / "model.safetensors"
    save_file({"w": np.zeros((3, 4), np.float32), "b": np.zeros(4, np.float32)}, str(file))
    header = read_safetensors_header(file)
    good = {"w": ("F32", (3, 4)), "b": ("F32", (4,))}

    check_tensors(file, header, good)
    with pytest.raises(ModelError, match=r"tensor w is \[3, 4\] F32, the config expects \[3, 5\]"):
        check_tensors(file, header, {**good, "w": ("F32", (3, 5))})
    with pytest.raises(ModelError, match=r"tensor b is \[4\] F32, the config expects \[4\] BF16"):
        check_tensors(file, header, {**good, "b": ("BF16", (4,))})
    with pytest.raises(ModelError, match="1 tensors missing, e.g. extra.bias"):
        check_tensors(file, header, {**good, "extra.bias": ("F32", (1,))})
    with pytest.raises(ModelError, match="1 unexpected tensors, e.g. b"):
        check_tensors(file, header, {"w": ("F32", (3, 4))})


def test_repo_file_lists(tmp_path: Path) -> None:
    names = ["config.json", "model.safetensors", "README.md", ".gitattributes", "onnx/m.onnx"]

    assert check_repo_files(names, "me/m@main") == ["README.md", "config.json", "model.safetensors"]
    with pytest.raises(ModelError, match="holds only pickle weights"):
        check_repo_files(["config.json", "model.ckpt", "weights.pt"], "me/m@main")
    with pytest.raises(ModelError, match="has no model.safetensors"):
        check_repo_files(["config.json", "README.md"], "me/m@main")
    with pytest.raises(ModelError, match="not a plain top-level file name"):
        check_repo_files([*names, "-x[1].safetensors"], "me/m@main")
    with pytest.raises(ModelError, match="'/abs.safetensors' holds a path separator"):
        check_repo_files([*names, "/abs.safetensors"], "me/m@main")


def test_model_directory_with_only_pickle_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.pt").write_bytes(b"\x80\x04")

    with pytest.raises(ModelError) as err:
        check_model_dir(tmp_path)

    assert "holds only pickle weights (model.pt)" in str(err.value)
    assert str(tmp_path) in str(err.value)
    with pytest.raises(ModelError, match="model directory not found"):
        check_model_dir(tmp_path / "nope")
