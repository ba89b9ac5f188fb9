"""Parsed JSON as typed dataclasses and back: the checking that gen.json's schema (gen.runtime.manifest)
and each family's `sampling` section (gen.runtime.families) are read through.

A value of the wrong type or a missing key is refused with the key's dotted name
(`components.unet.files.fp32.bytes`), not met later as a KeyError.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from typing import Any, Union

from gen.errors import GenError


def to_json(obj):
    """A dataclass tree as JSON-ready dicts; optional fields left at None are omitted, so sections a
    bundle does not have (text, external_data) do not appear at all. Plain dicts are kept as they are."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not (getattr(obj, f.name) is None and f.default is None)}
    if isinstance(obj, dict):
        return {k: to_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_json(v) for v in obj]
    return obj


def parse(cls, data, where: str):
    """`data` (parsed JSON) as an instance of dataclass or type `cls`, or a GenError naming the key."""
    return _parse(cls, data, where)


def _parse(tp, value, where: str):
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin is Union:
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _parse(option, value, where)
            except GenError as e:
                errors.append(e)
        raise errors[0]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise GenError(f"{where or 'manifest'} must be an object, got {_kind(value)}")
        hints = typing.get_type_hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            key = f"{where}.{f.name}" if where else f.name
            if f.name not in value:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise GenError(f"lacks {key!r}")
                continue
            kwargs[f.name] = _parse(hints[f.name], value[f.name], key)
        return tp(**kwargs)
    if origin is list:
        if not isinstance(value, list):
            raise GenError(f"{where} must be a list, got {_kind(value)}")
        (item,) = typing.get_args(tp)
        return [_parse(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise GenError(f"{where} must be an object, got {_kind(value)}")
        _, item = typing.get_args(tp)
        return {str(k): _parse(item, v, f"{where}.{k}") for k, v in value.items()}
    return check_scalar(tp, value, where)


def check_scalar(tp, value, where: str):
    """int, float, str or bool, strictly: a bool is not an int here, an int is a float, floats are finite."""
    ok = {int: lambda v: isinstance(v, int) and not isinstance(v, bool),
          float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
          str: lambda v: isinstance(v, str), bool: lambda v: isinstance(v, bool),
          dict: lambda v: isinstance(v, dict), list: lambda v: isinstance(v, list)}.get(tp)
    if ok is None:
        raise TypeError(f"manifest schema: unsupported type {tp!r} at {where}")
    if not ok(value):
        raise GenError(f"{where} must be {_NAMES[tp]}, got {_kind(value)} {json.dumps(value)[:40]}")
    return float(value) if tp is float else value


_NAMES = {int: "an integer", float: "a finite number", str: "a string", bool: "true or false",
          dict: "an object", list: "a list"}


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), type(value).__name__)
