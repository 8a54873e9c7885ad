"""Generic dict <-> frozen dataclass conversion for the snapshot and command schemas.

Unknown keys are ignored (a newer writer may add fields); missing keys take defaults;
a wrong type raises ``SchemaError`` naming the path, so a reader never renders garbage.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from functools import cache
from typing import Any, TypeVar, Union

T = TypeVar("T")


class SchemaError(ValueError):
    pass


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def to_plain(obj: Any) -> Any:
    """Dataclasses to dicts, tuples to lists, recursively (field names cached per class; a list
    of plain values is copied in one step: a snapshot or history is mostly such lists)."""
    kind = type(obj)
    if kind in _PLAIN or obj is None:
        return obj
    names = _field_names(kind)  # type: ignore[arg-type]
    if names is not None:
        return {name: to_plain(getattr(obj, name)) for name in names}
    if isinstance(obj, (list, tuple)):
        if all(type(v) in _PLAIN or v is None for v in obj):
            return list(obj)
        return [to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    return obj


def to_plain_dict(obj: Any) -> dict[str, Any]:
    """``to_plain`` of a dataclass instance: its fields as a dict."""
    out = to_plain(obj)
    if not isinstance(out, dict):
        raise TypeError(f"{type(obj).__name__} is not a dataclass")
    return out


_PLAIN = frozenset({str, int, float, bool})


@cache
def _field_names(kind: type) -> tuple[str, ...] | None:
    if not dataclasses.is_dataclass(kind):
        return None
    return tuple(f.name for f in dataclasses.fields(kind))


def from_plain(cls: type[T], data: Any, path: str = "$") -> T:
    try:
        return _converter(cls)(data)  # type: ignore[no-any-return,arg-type]
    except _Bad as bad:
        raise SchemaError(f"{path}{''.join(reversed(bad.where))}: {bad.what}") from None


class _Bad(Exception):
    """A conversion failure on its way up: each level adds its step (``.field``, ``[3]``) to
    ``where``, so the path string is built once, on failure, not for every value converted."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.where: list[str] = []

    def at(self, step: str) -> _Bad:
        self.where.append(step)
        return self


Converter = typing.Callable[[Any], Any]


@cache
def _converter(tp: Any) -> Converter:
    """One converter per type, built once (a snapshot has thousands of values of a few types)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return _identity
    if origin in (Union, types.UnionType):
        return _union(tp)
    if dataclasses.is_dataclass(tp):
        return _dataclass(tp)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return _sequence(_converter(args[0]), tuple)
        return _fixed_tuple(tuple(_converter(a) for a in args))
    if origin is list:
        (arg,) = typing.get_args(tp)
        return _sequence(_converter(arg), list, lists_only=True)
    if origin is dict:
        _, varg = typing.get_args(tp)
        return _mapping(_converter(varg))
    if tp in _PRIMITIVES:
        return _PRIMITIVES[tp]
    if isinstance(tp, type) and issubclass(tp, str):  # StrEnum
        return _str_enum(tp)

    def unsupported(value: Any) -> Any:
        raise _Bad(f"unsupported schema type {tp!r}")

    return unsupported


def _identity(value: Any) -> Any:
    return value


def _union(tp: Any) -> Converter:
    args = typing.get_args(tp)
    optional = type(None) in args
    convs = [_converter(a) for a in args if a is not type(None)]

    def conv(value: Any) -> Any:
        if value is None and optional:
            return None
        first: _Bad | None = None
        for c in convs:
            try:
                return c(value)
            except _Bad as bad:
                first = first or bad
        raise first or _Bad(f"unexpected {value!r}")

    return conv


def _dataclass(tp: Any) -> Converter:
    hints = _hints(tp)
    fields = [(f.name, _converter(hints[f.name]),
               f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
              for f in dataclasses.fields(tp)]

    def conv(value: Any) -> Any:
        if not isinstance(value, dict):
            raise _Bad(f"expected an object for {tp.__name__}, got {type(value).__name__}")
        kwargs = {}
        for name, c, required in fields:
            if name in value:
                try:
                    kwargs[name] = c(value[name])
                except _Bad as bad:
                    raise bad.at(f".{name}") from None
            elif required:
                raise _Bad(f"missing field {name!r}")
        return tp(**kwargs)

    return conv


def _sequence(item: Converter, kind: type, lists_only: bool = False) -> Converter:
    fast = _FAST.get(item)

    def conv(value: Any) -> Any:
        if not isinstance(value, list if lists_only else (list, tuple)):
            raise _Bad(f"expected a list, got {type(value).__name__}")
        if fast is not None and all(fast(v) for v in value):  # a run of plain numbers or strings
            return kind(float(v) for v in value) if item is _float else kind(value)
        out = []
        for i, v in enumerate(value):
            try:
                out.append(item(v))
            except _Bad as bad:
                raise bad.at(f"[{i}]") from None
        return kind(out)

    return conv


def _fixed_tuple(items: tuple[Converter, ...]) -> Converter:
    def conv(value: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            raise _Bad(f"expected a list, got {type(value).__name__}")
        out = []
        for i, (c, v) in enumerate(zip(items, value)):
            try:
                out.append(c(v))
            except _Bad as bad:
                raise bad.at(f"[{i}]") from None
        return tuple(out)

    return conv


def _mapping(item: Converter) -> Converter:
    def conv(value: Any) -> Any:
        if not isinstance(value, dict):
            raise _Bad(f"expected an object, got {type(value).__name__}")
        out = {}
        for k, v in value.items():
            try:
                out[str(k)] = item(v)
            except _Bad as bad:
                raise bad.at(f".{k}") from None
        return out

    return conv


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Bad(f"expected a number, got {value!r}")
    return float(value)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(f"expected an integer, got {value!r}")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Bad(f"expected true/false, got {value!r}")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise _Bad(f"expected a string, got {value!r}")
    return value


def _str_enum(tp: type) -> Converter:
    def conv(value: Any) -> Any:
        try:
            return tp(value)
        except ValueError:
            raise _Bad(f"{value!r} is not a valid {tp.__name__}") from None

    return conv


_PRIMITIVES: dict[Any, Converter] = {float: _float, int: _int, bool: _bool, str: _str}
_FAST: dict[Converter, typing.Callable[[Any], bool]] = {
    _float: lambda v: type(v) is float or type(v) is int,
    _str: lambda v: type(v) is str,
}
