"""One validated to/from dict for every record of the run store, driven by the dataclass fields.

A record declares its fields once (name, type, default); `encode` writes them as JSON-ready
values and `decode` reads them back, checking each value against its declared type and naming
the field in a one-line `UserError` when it does not fit. A missing key takes the field's
default (files written before the field existed); unknown keys are ignored (files written by a
newer version may carry more). Records add only what a type cannot say (a range, a fallback
taken from another field) in their own `from_dict`.

Hand-written rather than a library (pydantic, dacite, cattrs): the records are plain dataclasses
read by every layer, and the checks and messages are the run store's corruption policy.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from typing import Any, Mapping, TypeVar, Union

from trilevel.core.errors import UserError

T = TypeVar("T")


def encode(record: Any, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """A record as a JSON-ready dict: nested records and configs as dicts, enums as their strings."""
    return {f.name: _encode(getattr(record, f.name)) for f in dataclasses.fields(record) if f.name not in exclude}


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        to_dict = getattr(value, "to_dict", None)
        return to_dict() if to_dict is not None else encode(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def decode(cls: type[T], data: Any, what: str, **overrides: Any) -> T:
    """`cls` from `data`, every field checked against its declared type (`what` names the record
    in messages); `overrides` are values the caller has already decoded."""
    if not isinstance(data, Mapping):
        raise UserError(f"{what} must be an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.name in overrides:
            values[f.name] = overrides[f.name]
        elif f.name in data and data[f.name] is not None:
            values[f.name] = _decode(hints[f.name], data[f.name], f"{what} {f.name}")
        elif f.name in data and _optional(hints[f.name]):
            values[f.name] = None  # stored as unknown: stays unknown, whatever the default
        elif f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
            continue  # the field's default: an older file, or a value not known yet
        elif _optional(hints[f.name]):
            values[f.name] = None
        else:
            raise UserError(f"{what} has no {f.name!r}")
    return cls(**values)


def _optional(tp: Any) -> bool:
    return _is_union(tp) and type(None) in typing.get_args(tp)


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) is Union or isinstance(tp, types.UnionType)


def _decode(tp: Any, value: Any, what: str) -> Any:
    if tp is Any:
        return value
    if _is_union(tp):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        if len(args) != 1:  # not used by the records: say so rather than guess
            raise TypeError(f"{what}: cannot decode a union of {args}")
        return _decode(args[0], value, what)
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{what} must be a list, got {value!r}")
        (item,) = typing.get_args(tp)[:1] or (Any,)
        return [_decode(item, v, what) for v in value]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise UserError(f"{what} must be a mapping, got {value!r}")
        _, item = typing.get_args(tp) or (str, Any)
        return {str(k): _decode(item, v, what) for k, v in value.items()}
    if tp is dict:
        if not isinstance(value, Mapping):
            raise UserError(f"{what} must be a mapping, got {value!r}")
        return dict(value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            raise UserError(f"{what} must be one of {', '.join(str(m.value) for m in tp)}; got {value!r}") from None
    if tp is bool:
        return bool(value)
    if tp is float:
        return number(value, what)
    if tp is int:
        return integer(value, what)
    if tp is str:
        return str(value)
    if isinstance(tp, type) and hasattr(tp, "from_dict"):  # a nested record or a config
        return tp.from_dict(value)
    if dataclasses.is_dataclass(tp):
        return decode(tp, value, what)
    raise TypeError(f"{what}: no decoder for {tp!r}")


def number(value: Any, what: str) -> float:
    """A finite-or-infinite float (never NaN, never a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(float(value)):
        raise UserError(f"{what} must be a number, got {value!r}")
    return float(value)


def integer(value: Any, what: str) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        return int(value)
    except (TypeError, ValueError):
        raise UserError(f"{what} must be an integer, got {value!r}") from None
