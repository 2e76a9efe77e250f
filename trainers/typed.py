"""Build frozen config dataclasses from YAML/JSON mappings, checking every key's type.

YAML gives strings, floats, ``.inf``, booleans and lists where ints are meant; a config that
type-checks here runs. Every problem is one ``ValueError`` naming the key (``train.epochs: ...``).
Hand-written because the rules are few and ours (ints are ints and never bools, floats are
finite, lists become tuples); a schema library would add a dependency for a few dozen lines.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def check_value(key: str, value: Any, hint: Any) -> Any:
    """``value`` if it has type ``hint`` (lists become tuples, ints may stand for floats)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return check_value(key, value, inner[0]) if len(inner) == 1 else value
    if dataclasses.is_dataclass(hint):
        return from_mapping(hint, value, key)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{key}: expected a list, got {_describe(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(check_value(f"{key}[{i}]", v, args[0]) for i, v in enumerate(value))
        if len(value) != len(args):
            raise ValueError(f"{key}: expected a list of {len(args)} values, got {list(value)}")
        return tuple(check_value(f"{key}[{i}]", v, a) for i, (v, a) in enumerate(zip(value, args)))
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{key}: expected true or false, got {_describe(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{key}: expected an integer, got {_describe(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{key}: expected a number, got {_describe(value)}")
        if not math.isfinite(value):
            raise ValueError(f"{key}: expected a finite number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"{key}: expected a string, got {_describe(value)}")
        return value
    return value  # other annotations (Any): checked by the dataclass itself


def from_mapping(cls: type, data: Any, section: str) -> Any:
    """``cls(**data)`` after checking that ``data`` is a mapping of known keys with the right types."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"{section}: expected a mapping of keys, got {_describe(data)}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{section}: unknown key(s) {unknown}; known: {sorted(known)}")
    return cls(**{k: check_value(f"{section}.{k}", v, hints[k]) for k, v in data.items()})
