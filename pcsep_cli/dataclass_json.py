"""JSON objects to frozen dataclasses, refusing anything unexpected (model and training configs).

Every field must be known, present (or defaulted where allowed) and of its declared type
(int, float, str, bool, tuples of those, or nested dataclasses); the error names the dotted
field, the file and how to fix it.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

from pcsep_cli.errors import ModelError, PcsepError

__all__ = ["MODEL_CONFIG_HINT", "build_dataclass"]

MODEL_CONFIG_HINT = "re-save the model with this pcsep version or fix config.json"


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
