"""Type-checking config overrides against a dataclass's field annotations.

Usage::

    from genrl.utils.fields import coerce_overrides
    coerce_overrides(BehaviorConfig, {"gamma": 1, "horizon": "16"}, "behavior config")  # {"gamma": 1.0, "horizon": 16}

Rules: ``bool`` fields accept ``True``/``False`` and ``true``/``false``/``1``/``0``; ``int`` fields accept integers and
floats without a fraction (``16.0``), never ``16.5`` nor a bool; ``float`` fields accept ints (converted);
``str`` fields accept strings; ``tuple[int, ...]`` / ``list[int]`` accept sequences whose items pass; ``X | None``
accepts ``None``; ``Literal[...]`` its values. Annotations that are none of these (``Any``...) are not checked.
The field types come from :func:`typing.get_type_hints`, so ``from __future__ import annotations`` is fine.
:func:`field_docs` reads each field's text from the class docstring's ``Attributes:`` section (the CLI's
``--help``). Only light imports here: the CLI uses it before any torch import.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
from collections.abc import Mapping
from typing import Any

_BOOL_WORDS = {"true": True, "false": False, "1": True, "0": False}


class _Mismatch(Exception):
    """A value that does not fit a type (internal; turned into a ValueError naming the field)."""


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(arm) for arm in typing.get_args(tp))
    if origin is typing.Literal:
        return " | ".join(repr(v) for v in typing.get_args(tp))
    if tp is type(None):
        return "None"
    return tp.__name__ if isinstance(tp, type) else str(tp).replace("typing.", "")


def _coerce(tp: Any, value: Any) -> Any:
    """``value`` converted to ``tp`` or :class:`_Mismatch`."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or tp is object:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arm in args:
            if arm is type(None):
                continue
            try:
                return _coerce(arm, value)
            except _Mismatch:
                pass
        raise _Mismatch
    if origin is typing.Literal:
        if value in args:
            return value
        raise _Mismatch
    if origin in (tuple, list):
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise _Mismatch
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if args and len(args) != len(value):
                raise _Mismatch
            items = [_coerce(a, v) for a, v in zip(args, value)] if args else list(value)
        else:
            items = [_coerce(args[0], v) for v in value] if args else list(value)
        return origin(items)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, str)) and str(value).strip().lower() in _BOOL_WORDS:
            return _BOOL_WORDS[str(value).strip().lower()]
        raise _Mismatch
    if tp is int:
        if isinstance(value, bool):
            raise _Mismatch
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                try:
                    value = float(value)
                except ValueError:
                    raise _Mismatch from None
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _Mismatch
    if tp is float:
        if isinstance(value, bool):
            raise _Mismatch
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise _Mismatch from None
        raise _Mismatch
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise _Mismatch
    return value


def type_name(tp: Any) -> str:
    """A readable name of a type annotation: ``int``, ``int | None``, ``'genrl' | 'oracle'`` (a ``Literal``),
    ``int | 'auto'``."""
    return _type_name(tp)


def coerce_value(tp: Any, value: Any) -> Any:
    """``value`` converted to the annotation ``tp`` by the rules above.

    Raises:
        ValueError: the value does not fit (``"expects int, got '1.5'"``).
    """
    try:
        return _coerce(tp, value)
    except _Mismatch:
        raise ValueError(f"expects {_type_name(tp)}, got {value!r}") from None


_ENTRY = re.compile(r"^(\w+(?:\s*/\s*\w+)*):\s*(.*)$")


def field_docs(cls: type) -> dict[str, str]:
    """``{field name: text}`` from the ``Attributes:`` section of the class docstring.

    An entry is ``name: text`` at the section's indentation, continued on more indented lines; ``a / b: text``
    documents both fields. The section ends at the first line indented less (or at another ``Section:``).
    """
    doc = inspect.cleandoc(cls.__doc__ or "")
    lines = doc.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Attributes:")
    except StopIteration:
        return {}
    out: dict[str, str] = {}
    base: int | None = None
    current: list[str] = []
    for line in lines[start + 1:]:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if base is None:
            base = indent
        if indent < base:
            break
        match = _ENTRY.match(line.strip()) if indent == base else None
        if match:
            current = [match.group(2)]
            for name in re.split(r"\s*/\s*", match.group(1)):
                out[name] = current  # shared list: continuation lines reach every name of the entry
        elif indent > base and current:
            current.append(line.strip())
        else:
            break
    return {name: " ".join(parts).strip() for name, parts in out.items()}


def field_types(cls: type) -> dict[str, Any]:
    """``{field name: resolved type}`` of the dataclass ``cls`` (string annotations resolved)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}


def coerce_overrides(cls: type, values: Mapping[str, Any], what: str = "config") -> dict[str, Any]:
    """``values`` checked against the field types of the dataclass ``cls`` and converted (``"16"`` -> 16 for an int
    field, ``1`` -> 1.0 for a float field, ``"true"`` -> True for a bool field).

    Args:
        cls: the config dataclass. values: field name -> value (Python values, or strings from the command line).
        what: what the config is, for the messages (``"behavior config"``).

    Raises:
        ValueError: a name that is not a field (the message lists the valid ones), or a value that does not fit
            the field's type (one line naming the field, the expected type and the value).
    """
    types_ = field_types(cls)
    unknown = sorted(set(values) - set(types_))
    if unknown:
        raise ValueError(f"unknown {what} fields {unknown}; valid fields: {sorted(types_)}")
    out = {}
    for name, value in values.items():
        try:
            out[name] = _coerce(types_[name], value)
        except _Mismatch:
            raise ValueError(f"{what} field {name!r} expects {_type_name(types_[name])}, got {value!r}") from None
    return out


__all__ = ["coerce_overrides", "coerce_value", "field_docs", "field_types", "type_name"]
