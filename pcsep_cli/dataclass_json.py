"""JSON objects to frozen dataclasses, refusing anything unexpected (model and training configs).

Every field must be known, present (or defaulted where allowed) and of its declared type
(int, float, str, bool, tuples of those, or nested dataclasses); the error names the dotted
field, the file and how to fix it.

Config files are untrusted (a model's ``config.json`` comes from the Hub), so
:func:`read_config_file` reads at most :data:`MAX_CONFIG_BYTES` and refuses nesting deeper than
:data:`MAX_CONFIG_DEPTH` before the parser, which recurses once per level, sees it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import stat
import typing
from pathlib import Path
from typing import Any

from pcsep_cli.errors import ModelError, PcsepError

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_CONFIG_DEPTH",
    "MODEL_CONFIG_HINT",
    "build_dataclass",
    "nesting_depth",
    "parse_config_text",
    "read_config_file",
]

MODEL_CONFIG_HINT = "re-save the model with this pcsep version or fix config.json"
MAX_CONFIG_BYTES = 1_000_000
"""Largest config file read: real ones are 1-3 kB."""
MAX_CONFIG_DEPTH = 32
"""Deepest nesting of objects and lists in a config: real ones reach 3."""

# What brackets inside do not nest: JSON strings; TOML strings (multi-line first) and comments.
_JSON_OPAQUE = re.compile(r'"(?:[^"\\]|\\.)*"')
_TOML_OPAQUE = re.compile(
    r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|#[^\n]*'
)
_BRACKET_RUNS = re.compile(r"[\[{]+|[\]}]+")


def nesting_depth(text: str, toml: bool = False, limit: int = MAX_CONFIG_DEPTH) -> int:
    """How deep brackets nest in JSON (or TOML) text, outside strings and comments.

    Counting stops once past ``limit``: the answer is then ``limit + 1`` or more. Malformed
    text gets a number too (an unclosed ``[[[[`` counts as deep: the parser would recurse into
    it before finding the error).
    """
    opaque = _TOML_OPAQUE if toml else _JSON_OPAQUE
    depth = deepest = 0
    for run in _BRACKET_RUNS.finditer(opaque.sub("", text)):
        step = len(run.group())
        # Clamped at 0: a parser stops at the first unmatched closer anyway.
        depth = depth + step if run.group()[0] in "[{" else max(0, depth - step)
        deepest = max(deepest, depth)
        if deepest > limit:
            break
    return deepest


def _value_depth(value: Any) -> int:
    """Nesting of parsed JSON/TOML values, without recursion (TOML's dotted keys ``a.b.c``
    nest tables without brackets)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_config_text(
    text: str, toml: bool = False, max_depth: int = MAX_CONFIG_DEPTH, **json_kwargs: Any
) -> Any:
    """``json.loads`` (or ``tomllib.loads``) that refuses nesting deeper than ``max_depth``
    before parsing, so no input reaches the parsers' recursion limit.

    Args:
        text: the file's text.
        toml: parse TOML instead of JSON.
        max_depth: deepest nesting of objects/tables and lists allowed.
        json_kwargs: passed to ``json.loads`` (e.g. ``object_pairs_hook``).

    Raises:
        ValueError: a syntax error, or nesting past ``max_depth``.
        ModuleNotFoundError: TOML on Python 3.10 without ``tomli``.
    """
    too_deep = f"objects and lists nest more than {max_depth} levels deep"
    if nesting_depth(text, toml, max_depth) > max_depth:
        raise ValueError(too_deep)
    try:
        if toml:
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib  # type: ignore[no-redef]
            data = tomllib.loads(text)
        else:
            data = json.loads(text, **json_kwargs)
    except RecursionError:  # a TOML string form the scan above misread; never expected
        raise ValueError(too_deep) from None
    if _value_depth(data) > max_depth:
        raise ValueError(too_deep)
    return data


def read_config_file(
    path: str | Path,
    error: type[PcsepError] = ModelError,
    hint: str = MODEL_CONFIG_HINT,
    max_bytes: int = MAX_CONFIG_BYTES,
    max_depth: int = MAX_CONFIG_DEPTH,
) -> Any:
    """Read a JSON config (TOML when the name ends in ``.toml``) within size and depth caps.

    Args:
        path: the file.
        error: error class raised.
        hint: how to fix a syntax error, appended to its message.
        max_bytes: largest file read; a bigger one is refused without reading it.
        max_depth: deepest nesting allowed (see :func:`parse_config_text`).

    Returns:
        The parsed value (not checked further: see :func:`build_dataclass`).

    Raises:
        error: unreadable, not a regular file (a FIFO, a device, a folder), too big, not
            UTF-8, bad syntax or nested too deeply.
    """
    file = Path(path)
    try:
        # One byte past the cap: a file that grows stops there too.
        raw = _read_regular(file, max_bytes + 1)
    except OSError as err:
        raise error(f"cannot read config: {err.strerror or err}", file, hint) from None
    if raw is None:
        raise error("is not a regular file", file, "a config is a JSON or TOML file; replace it")
    if len(raw) > max_bytes:
        raise error(
            f"config is larger than {max_bytes:,} bytes (real ones are a few kB)",
            file,
            "this is not a pcsep config; replace the file",
        )
    try:
        return parse_config_text(raw.decode("utf-8"), file.suffix == ".toml", max_depth)
    except (UnicodeDecodeError, ValueError) as err:
        # json.JSONDecodeError and tomllib.TOMLDecodeError are ValueErrors.
        raise error(f"cannot read config: {err}", file, hint) from None
    except ModuleNotFoundError:
        raise error(
            "reading TOML needs Python 3.11 or the tomli package", file, "use a .json config"
        ) from None


def _read_regular(file: Path, limit: int) -> bytes | None:
    """At most ``limit`` bytes of ``file``; ``None`` when it is not a regular file (a FIFO, a
    device such as ``/dev/zero``, a folder), which is never read from."""
    # Non-blocking: opening a FIFO would otherwise wait for a writer, forever.
    fd = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(limit)
    finally:
        os.close(fd)


def build_dataclass(
    cls: type,
    data: Any,
    prefix: str = "",
    source: str | Path | None = None,
    error: type[PcsepError] = ModelError,
    hint: str = MODEL_CONFIG_HINT,
    allow_defaults: bool = False,
) -> Any:
    """Build a (nested) frozen dataclass from JSON data, refusing anything unexpected.

    Args:
        cls: the dataclass; fields typed int, float, str, bool, tuple[...] or dataclasses.
        data: the JSON object.
        prefix: dotted path of ``data`` inside the file, for messages.
        source: file the data came from, for messages.
        error: error class raised.
        hint: how to fix, appended to messages.
        allow_defaults: fields left out take their defaults (hand-written training configs);
            otherwise a missing field is an error (a saved model config holds every field).

    Raises:
        error: naming the unknown, missing or ill-typed field.
    """
    where = prefix.rstrip(".") or "config"
    if not isinstance(data, dict):
        raise error(f"{where} must be a JSON object, got {type(data).__name__}", source, hint)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    extra = sorted(set(data) - names)
    if extra:
        raise error(f"unknown config field {prefix}{extra[0]}", source, hint)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        name = prefix + f.name
        if f.name not in data:
            has_default = (
                f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            )
            if allow_defaults and has_default:
                continue
            raise error(f"config field {name} is missing", source, hint)
        value, typ = data[f.name], hints[f.name]
        if dataclasses.is_dataclass(typ):
            kwargs[f.name] = build_dataclass(
                typ, value, name + ".", source, error, hint, allow_defaults
            )
            continue
        kwargs[f.name] = _check_type(value, typ, name, source, error, hint)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as err:
        raise error(f"invalid config: {err}", source, hint) from None


def _check_type(
    value: Any, typ: Any, name: str, source: str | Path | None, error: type, hint: str
) -> Any:
    origin = typing.get_origin(typ)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise error(f"config field {name} must be a list", source, hint)
        inner = typing.get_args(typ)[0]
        return tuple(_check_type(v, inner, f"{name}[]", source, error, hint) for v in value)
    ok = {
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
        bool: lambda v: isinstance(v, bool),
    }.get(typ)
    if ok is not None and not ok(value):
        raise error(f"config field {name} must be {typ.__name__}, got {value!r}", source, hint)
    return float(value) if typ is float else value
