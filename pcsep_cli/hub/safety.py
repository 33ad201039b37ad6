"""Checks a checkpoint must pass before any of its tensors is read.

A model directory or Hub repository is untrusted input. These checks need neither torch nor
the safetensors library: they read the safetensors header themselves (8-byte little-endian
length, then JSON) so that a file claiming a 10^12-element tensor, overlapping or out-of-file
offsets, or names and shapes the config does not expect is refused before anything is
allocated. Pickle files (``.bin``, ``.pt``, ``.ckpt`` ...) are never loaded: a repository that
only has those gets a refusal that says how to convert it.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pcsep_cli.errors import ModelError
from pcsep_cli.nets.files import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE

#: What a Hub download fetches, and nothing else.
ALLOW_PATTERNS: tuple[str, ...] = (CONFIG_FILE, "*.safetensors", CARD_FILE)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".npy")

# Bytes per element of each safetensors dtype (the format's own list).
DTYPE_SIZES: dict[str, int] = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}
# The safetensors library refuses headers above 100 MB; so do we, before reading one.
MAX_HEADER_BYTES = 100_000_000
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_CONVERT_HINT = (
    "pcsep never loads pickle; ask the author for model.safetensors, or convert a file you "
    "trust with safetensors.torch.save_file(torch.load(f, weights_only=True), "
    "'model.safetensors')"
)


@dataclass(frozen=True)
class TensorInfo:
    """One entry of a safetensors header.

    Attributes:
        dtype: safetensors dtype name (``"F32"``, ``"BF16"`` ...).
        shape: tensor shape.
        begin: offset of the first byte in the data section.
        end: offset one past the last byte in the data section.
    """

    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


def read_safetensors_header(file: str | Path) -> dict[str, TensorInfo]:
    """Parse and check a safetensors header without reading any tensor data.

    Every tensor's byte range must equal ``prod(shape) * itemsize``, lie inside the file, and
    the ranges must tile the data section without gaps or overlaps.

    Args:
        file: a ``.safetensors`` file.

    Returns:
        Tensor name → :class:`TensorInfo` (``__metadata__`` left out).

    Raises:
        ModelError: naming the file and what is wrong with it.
    """
    path = Path(file)
    hint = "the file is damaged or not a safetensors file: download or save it again"
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            prefix = fh.read(8)
            if len(prefix) < 8:
                raise ModelError(f"file is {size} bytes, too short for a header", path, hint)
            length = int.from_bytes(prefix, "little")
            if length > MAX_HEADER_BYTES or length > size - 8:
                raise ModelError(
                    f"header claims {length} bytes but the file holds {size - 8} after the "
                    "length prefix",
                    path,
                    hint,
                )
            raw = fh.read(length)
    except OSError as err:
        raise ModelError(f"cannot read weights: {err.strerror or err}", path) from None
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as err:
        raise ModelError(f"header is not valid JSON ({err})", path, hint) from None
    except RecursionError:
        # A real header nests 3 deep; the C parser stops cleanly at the recursion limit.
        raise ModelError("header nests lists or objects too deeply", path, hint) from None
    if not isinstance(header, dict):
        raise ModelError("header is not a JSON object", path, hint)
    header.pop("__metadata__", None)
    tensors = {name: _tensor_info(name, entry, path) for name, entry in header.items()}
    _check_layout(tensors, size - 8 - length, path)
    return tensors


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} appears twice")
        out[key] = value
    return out


def _tensor_info(name: str, entry: Any, path: Path) -> TensorInfo:
    hint = "the file is damaged or was not written by safetensors: save it again"
    if not isinstance(entry, dict):
        raise ModelError(f"header entry {name!r} is not an object", path, hint)
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in DTYPE_SIZES:
        raise ModelError(f"tensor {name} has unknown dtype {dtype!r}", path, hint)
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise ModelError(f"tensor {name} has an invalid shape {shape!r}", path, hint)
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_is_count(o) for o in offsets)
        or offsets[0] > offsets[1]
    ):
        raise ModelError(f"tensor {name} has invalid data_offsets {offsets!r}", path, hint)
    # Python ints: a claimed 10^12-element shape cannot overflow this product.
    nbytes = math.prod(shape) * DTYPE_SIZES[dtype]
    if offsets[1] - offsets[0] != nbytes:
        raise ModelError(
            f"tensor {name} claims shape {shape} {dtype} ({nbytes} bytes) but spans "
            f"{offsets[1] - offsets[0]} bytes",
            path,
            hint,
        )
    return TensorInfo(dtype, tuple(shape), offsets[0], offsets[1])


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_layout(tensors: Mapping[str, TensorInfo], data_size: int, path: Path) -> None:
    hint = "the file is truncated or damaged: download or save it again"
    position = 0
    for name, info in sorted(tensors.items(), key=lambda item: (item[1].begin, item[1].end)):
        if info.begin != position:
            what = "overlaps the tensor before it" if info.begin < position else "leaves a gap"
            raise ModelError(f"tensor {name} {what} (offset {info.begin})", path, hint)
        position = info.end
    if position != data_size:
        raise ModelError(
            f"tensors need {position} bytes of data but the file holds {data_size}", path, hint
        )


def check_tensors(
    file: str | Path,
    header: Mapping[str, TensorInfo],
    expected: Mapping[str, tuple[str, tuple[int, ...]]],
) -> None:
    """Compare a header with the tensors a config implies: same names, dtypes and shapes.

    Args:
        file: the weights file (for messages).
        header: from :func:`read_safetensors_header`.
        expected: name → (safetensors dtype, shape), e.g. from the model built on ``meta``.

    Raises:
        ModelError: naming the first missing, unexpected or mismatched tensor.
    """
    hint = "config.json and model.safetensors do not belong together: download both again"
    missing = sorted(set(expected) - set(header))
    extra = sorted(set(header) - set(expected))
    if missing:
        raise ModelError(f"{len(missing)} tensors missing, e.g. {missing[0]}", file, hint)
    if extra:
        raise ModelError(f"{len(extra)} unexpected tensors, e.g. {extra[0]}", file, hint)
    for name, (dtype, shape) in expected.items():
        got = header[name]
        if got.dtype != dtype or got.shape != tuple(shape):
            raise ModelError(
                f"tensor {name} is {list(got.shape)} {got.dtype}, the config expects "
                f"{list(shape)} {dtype}",
                file,
                hint,
            )


def wanted_files(names: Iterable[str]) -> list[str]:
    """Repository files a download fetches (those matching :data:`ALLOW_PATTERNS`)."""
    return sorted(n for n in names if any(fnmatch.fnmatchcase(n, p) for p in ALLOW_PATTERNS))


def check_repo_files(names: Iterable[str], where: str) -> list[str]:
    """Refuse a repository whose file list is unsafe or holds no usable checkpoint.

    Args:
        names: every file path in the repository (``/``-separated).
        where: the repository, for messages (``owner/name@rev``).

    Returns:
        The file names to download: ``config.json``, ``*.safetensors``, ``README.md`` at the
        repository's top level.

    Raises:
        ModelError: a path with ``..``, a backslash or a leading ``/``; a file to download that
            sits in a sub-folder or has an odd name; pickle weights without safetensors; no
            config.json.
    """
    names = list(names)
    for name in names:
        parts = name.split("/")
        if "\\" in name or name.startswith("/") or ".." in parts or "" in parts:
            raise ModelError(
                f"repository file name {name!r} holds a path separator or '..'",
                where,
                "refusing to download it; the repository is broken or hostile",
            )
    wanted = wanted_files(names)
    for name in wanted:
        if not _SAFE_NAME.fullmatch(name):
            raise ModelError(
                f"repository file name {name!r} is not a plain top-level file name",
                where,
                "pcsep reads config.json and *.safetensors from the repository's top level",
            )
    check_weight_files(names, where)
    if CONFIG_FILE not in names:
        raise ModelError(
            "repository has no config.json",
            where,
            "a pcsep model holds config.json, model.safetensors and README.md",
        )
    return wanted


def check_weight_files(names: Iterable[str], where: str | Path) -> None:
    """Refuse pickle-only checkpoints and checkpoints without ``model.safetensors``.

    Args:
        names: file names in the repository or directory.
        where: repository or directory, for messages.

    Raises:
        ModelError: no ``model.safetensors``; says so plainly when only pickle files are there.
    """
    names = list(names)
    if WEIGHTS_FILE in names:
        return
    pickles = sorted(n for n in names if n.lower().endswith(PICKLE_SUFFIXES))
    if pickles:
        raise ModelError(
            f"holds only pickle weights ({', '.join(pickles[:3])}), no model.safetensors",
            where,
            _CONVERT_HINT,
        )
    raise ModelError(
        "has no model.safetensors",
        where,
        "a pcsep model holds config.json, model.safetensors and README.md",
    )


def check_model_dir(directory: str | Path) -> None:
    """Check a model directory's files before anything in it is parsed.

    Raises:
        ModelError: not a directory, no config.json, or no ``model.safetensors``.
    """
    path = Path(directory)
    if not path.is_dir():
        raise ModelError("model directory not found", path, "pass a directory or a model name")
    names = [p.name for p in path.iterdir()]
    check_weight_files(names, path)
    if CONFIG_FILE not in names:
        raise ModelError(
            "no config.json in the model directory",
            path,
            "a pcsep model holds config.json, model.safetensors and README.md",
        )
