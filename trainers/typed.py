"""Frozen config dataclasses built from YAML/JSON mappings, validated by pydantic v2.

The rules (:data:`STRICT`): types are strict (an integer is an int, never a bool, a float or a
string; true/false are bools), numbers are finite, unknown keys are refused. Validation runs in
pydantic's JSON mode, so that YAML's lists fill the dataclasses' tuple fields. The dataclasses'
own ``__post_init__`` checks run as part of it. Every problem is one ``ValueError`` that names the
key in nasseg's words (``train.epochs: expected an integer, got float 1.5``): the translation of
pydantic's error types is the only hand-written part.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import typing
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

#: set as ``__pydantic_config__`` on every config dataclass that is read from a mapping
STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)

#: pydantic's error type -> what the key expected, in the words of nasseg's messages
_EXPECTED = {"int_type": "an integer", "int_from_float": "an integer", "float_type": "a number",
             "bool_type": "true or false", "string_type": "a string", "tuple_type": "a list", "list_type": "a list",
             "finite_number": "a finite number", "dataclass_type": "a mapping of keys", "dict_type": "a mapping of keys"}


@functools.cache
def _adapter(cls: type) -> TypeAdapter:
    return TypeAdapter(cls)


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _key(section: str, loc: tuple) -> str:
    key = section
    for part in loc:
        key = f"{key}[{part}]" if isinstance(part, int) else (f"{key}.{part}" if key else str(part))
    return key


def _fields_at(cls: type, loc: tuple) -> list[str]:
    """The field names of the dataclass that ``loc`` (a path of field names) leads into."""
    for part in loc:
        hint = typing.get_type_hints(cls).get(part)
        if hint is None or not dataclasses.is_dataclass(hint):
            return []
        cls = hint
    return sorted(f.name for f in dataclasses.fields(cls))


def _message(cls: type, section: str, error: dict) -> str:
    loc, kind, value = tuple(error["loc"]), error["type"], error.get("input")
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        where = _key(section, loc[:-1])
        return f"{where + ': ' if where else ''}unknown key(s) [{loc[-1]!r}]; known: {_fields_at(cls, loc[:-1])}"
    key = _key(section, loc)
    if kind == "value_error":  # a dataclass's own check; its message names its key already
        return str(error["msg"]).removeprefix("Value error, ")
    if kind == "finite_number":
        return f"{key}: expected a finite number, got {value!r}"
    if kind in _EXPECTED:
        return f"{key}: expected {_EXPECTED[kind]}, got {_describe(value)}"
    return f"{key}: {error['msg']}"


def from_mapping(cls: type, data: Any, section: str) -> Any:
    """``cls`` built from ``data`` (a mapping; None: every default); ``ValueError`` naming the key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"{section}: expected a mapping of keys, got {_describe(data)}")
    try:
        text = json.dumps(data, default=lambda o: f"<{type(o).__name__}>")  # YAML dates and the like
    except ValueError as exc:  # e.g. a mapping that contains itself (YAML anchors)
        raise ValueError(f"{section or 'config'}: not a plain mapping ({exc})") from None
    try:
        return _adapter(cls).validate_json(text)
    except ValidationError as exc:
        raise ValueError(_message(cls, section, exc.errors()[0])) from None
