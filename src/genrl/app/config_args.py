"""Command-line options generated from a config dataclass: one option per field, its ``--help`` the field's text in
the class docstring's ``Attributes:`` section (:func:`genrl.utils.fields.field_docs`), its default shown, its value
checked against the field's type (a wrong one is a one-line error, exit code 2).

Usage::

    from genrl.app.config_args import add_config_args, add_print_config, config_from_args
    add_config_args(p, BehaveConfig, positional=("run",), skip=("overrides",),
                    presets={"preset": BehaviorConfig}, exclusive=[("prompt", "video")])
    add_print_config(p)
    ...
    cfg = config_from_args(BehaveConfig, args, overrides=parse_overrides(args.set, BehaviorConfig))

Rules (from the annotations): ``bool`` -> a flag (``--data-free``; ``--x/--no-x`` when the default is True);
``tuple[T, ...]``/``list[T]`` -> any number of values; ``Literal[...]`` (``| None``) -> its values as choices; a
field named in ``presets`` -> the preset names of that config (:mod:`genrl.utils.presets`; a deprecated alias is
accepted with a warning and replaced by the new name); a field without a default -> a required option (or a
positional argument when listed in ``positional``). The option is ``--field-name`` unless ``flags`` renames it.
Every exposed field must have its text in the docstring (building the parser fails otherwise).
Only light imports here (no torch): ``genrl CMD --help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from genrl.utils.fields import coerce_overrides, coerce_value, field_docs, field_types, type_name
from genrl.utils.presets import deprecation_message, table

_FIELDS_DEST = "_config_fields"


def help_text(doc: str) -> str:
    """A docstring fragment as plain ``--help`` text: Sphinx roles and double backquotes dropped, ``%`` escaped."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", doc)
    text = text.replace("``", "")
    return text.replace("%", "%%")


def _arg_type(tp: Any):
    def convert(text: str) -> Any:
        try:
            return coerce_value(tp, text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    convert.__name__ = type_name(tp)
    return convert


def preset_option(cls: type) -> dict[str, Any]:
    """``add_argument`` keywords of an option taking a preset name of the registered config ``cls``: the choices as
    metavar, and a ``type`` that replaces a deprecated alias by its new name (with a warning on stderr) and refuses an
    unknown name with a one-line error listing the valid ones."""
    presets = table(cls)

    def convert(text: str) -> str:
        try:
            name = presets.resolve(text, warn=False)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        if name != text:
            print(f"warning: {deprecation_message(presets, text)}", file=sys.stderr)
        return name

    convert.__name__ = "preset"
    return {"type": convert, "metavar": "{" + ",".join(presets.names()) + "}"}


def _strip_none(tp: Any) -> tuple[Any, bool]:
    """``X | None`` -> ``(X, True)``; other annotations -> ``(tp, False)``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) < len(typing.get_args(tp)):
            return (args[0] if len(args) == 1 else typing.Union[tuple(args)]), True
    return tp, False


def _metavar(tp: Any) -> str | None:
    """``N|auto`` for ``int | Literal["auto"]``; None (argparse's default) otherwise."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        parts = []
        for arm in typing.get_args(tp):
            if typing.get_origin(arm) is typing.Literal:
                parts += [str(v) for v in typing.get_args(arm)]
            elif arm is not type(None):
                parts.append({int: "N", float: "X", str: "TEXT"}.get(arm, type_name(arm)))
        return "|".join(parts)
    return None


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _show_default(default: Any) -> str:
    if isinstance(default, (list, tuple)):
        return " ".join(str(v) for v in default) if default else "none"
    return str(default)


def add_config_args(parser: argparse.ArgumentParser, cls: type, *, positional: Iterable[str] = (),
                    skip: Iterable[str] = (), flags: Mapping[str, str] | None = None,
                    presets: Mapping[str, type] | None = None, exclusive: Iterable[Iterable[str]] = (),
                    converters: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """Add one option per field of the dataclass ``cls`` to ``parser``; returns the field names added.

    Args:
        positional: fields given as positional arguments (in this order). skip: fields not exposed (set by the
            command itself, e.g. ``overrides`` from ``--set``). flags: field -> option name (``"--embeddings"``).
        presets: field -> config class whose registered preset names the field takes.
        exclusive: groups of fields of which at most one may be given.
        converters: field -> argparse ``type`` callable replacing the one from the annotation (a stricter check).

    Raises:
        ValueError: an exposed field without text in the class docstring's ``Attributes:`` section (its ``--help``
            would be empty: a bug caught when the parser is built).
    """
    docs, types_, flags, presets = field_docs(cls), field_types(cls), dict(flags or {}), dict(presets or {})
    converters = dict(converters or {})
    positional, skip = list(positional), set(skip)
    groups = {}
    for names in exclusive:
        group = parser.add_mutually_exclusive_group()
        for name in names:
            groups[name] = group
    added = []
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    for name in positional + [n for n in by_name if n not in positional]:
        if name in skip:
            continue
        f, tp = by_name[name], types_[name]
        default = _default_of(f)
        if not docs.get(name):
            raise ValueError(f"{cls.__name__}.{name} has no text in the class docstring's Attributes section")
        text = help_text(docs[name])
        kwargs: dict[str, Any] = {}
        inner, _ = _strip_none(tp)
        origin = typing.get_origin(inner)
        if name in presets:
            kwargs.update(preset_option(presets[name]))
        elif inner is bool:
            kwargs["action"] = argparse.BooleanOptionalAction if default is True else "store_true"
        elif origin in (tuple, list):
            item = typing.get_args(inner)[0] if typing.get_args(inner) else str
            kwargs.update(nargs="+" if default is dataclasses.MISSING else "*", type=_arg_type(item))
            default = list(default) if default is not dataclasses.MISSING else default
        elif origin is typing.Literal:
            values = typing.get_args(inner)
            kwargs.update(choices=values, type=_arg_type(type(values[0])))
        elif inner is not str:
            kwargs["type"] = _arg_type(inner)
            if _metavar(inner):
                kwargs["metavar"] = _metavar(inner)
        if name in converters:
            kwargs["type"] = converters[name]
        if default is not dataclasses.MISSING and default is not None and default is not False:
            text += f" (default: {_show_default(default)})"
        if name in positional:
            parser.add_argument(name, help=text, **kwargs)
        else:
            flag = flags.get(name, "--" + name.replace("_", "-"))
            if default is dataclasses.MISSING:
                kwargs["required"] = True
            else:
                kwargs["default"] = default
            action = (groups.get(name) or parser).add_argument(flag, dest=name, **kwargs)
            action.help = text  # set after: some Pythons' BooleanOptionalAction append their own default
        added.append(name)
    parser.set_defaults(**{_FIELDS_DEST: tuple(added)})
    return tuple(added)


def config_from_args(cls: type, args: argparse.Namespace, **extra: Any) -> Any:
    """The ``cls`` instance from the parsed options :func:`add_config_args` added, plus ``extra`` fields.

    Raises:
        ValueError: a value that does not fit its field (one line), or the dataclass's own check.
    """
    values = {name: getattr(args, name) for name in getattr(args, _FIELDS_DEST)}
    values.update(extra)
    return cls(**coerce_overrides(cls, values, "options"))


def add_print_config(parser: argparse.ArgumentParser) -> None:
    """Add ``--print-config``: print the resolved config as JSON and exit 0 without running or writing anything."""
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved config as JSON (the defaults, then the preset and the --set "
                        "overrides where the command has them, then the options) and exit without training or "
                        "writing anything")


def print_config(doc: Mapping[str, Any]) -> int:
    """Print ``doc`` (dataclasses become dicts) as indented JSON on stdout; returns 0 (the exit code)."""
    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return plain(dataclasses.asdict(value))
        if isinstance(value, Mapping):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    print(json.dumps(plain(doc), indent=1))
    return 0


__all__ = ["add_config_args", "add_print_config", "config_from_args", "help_text", "preset_option", "print_config"]
