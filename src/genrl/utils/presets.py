"""One preset mechanism for every config dataclass: a preset is a named set of overrides on the dataclass's
defaults, registered once next to the dataclass.

Usage::

    from genrl.utils.presets import make, names, register
    PRESETS = register(WorldModelConfig, {"paper": {}, "small": {"cnn_depth": 16, ...}, "tiny": {...}},
                       what="world-model config")
    make(WorldModelConfig, "small", batch_size=8)     # or make("world-model config", "small", batch_size=8)
    names(WorldModelConfig)                           # ("paper", "small", "tiny"): the CLI's --preset choices

One vocabulary for every config (:data:`PRESET_NAMES`): ``paper`` (the paper's / official code's values), ``small``
(CPU-trainable), ``tiny`` (tests and smoke runs only); a config defines the ones it needs. A renamed preset stays
usable as a deprecated alias (``aliases={"cpu": "small"}``): it resolves to the new name with a
:class:`PresetDeprecationWarning`. Overrides are type-checked against the field annotations
(:func:`genrl.utils.fields.coerce_overrides`); every error is one line naming the known presets or fields.
Only light imports here: the CLI builds its ``--preset`` choices from this registry before any torch import.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from genrl.utils.fields import coerce_overrides

PRESET_NAMES = ("paper", "small", "tiny")


class PresetDeprecationWarning(FutureWarning):
    """A deprecated preset name was used (it still works: it resolves to its new name)."""


@dataclass(frozen=True)
class PresetTable:
    """The presets of one config dataclass.

    Attributes:
        cls: the config dataclass.
        what: what the config is, for messages (``"world-model config"``); also a registry key of :func:`make`.
        presets: preset name -> field overrides on the dataclass defaults (already type-checked).
        aliases: deprecated name -> preset name.
    """

    cls: type
    what: str
    presets: Mapping[str, Mapping[str, Any]]
    aliases: Mapping[str, str] = field(default_factory=dict)

    def names(self) -> tuple[str, ...]:
        """The preset names (aliases excluded), in registration order."""
        return tuple(self.presets)

    def resolve(self, name: str, warn: bool = True) -> str:
        """The preset a name stands for (an alias -> its new name, with a :class:`PresetDeprecationWarning`).

        Raises:
            ValueError: unknown name (one line listing the valid presets).
        """
        if name in self.presets:
            return name
        if name in self.aliases:
            new = self.aliases[name]
            if warn:
                warnings.warn(deprecation_message(self, name), PresetDeprecationWarning, stacklevel=3)
            return new
        raise ValueError(f"unknown {self.what} preset {name!r}; valid presets: {', '.join(self.presets)}")

    def overrides(self, name: str) -> dict[str, Any]:
        """The field overrides of preset ``name`` (or of the preset an alias stands for)."""
        return dict(self.presets[self.resolve(name)])

    def make(self, name: str, **overrides: Any) -> Any:
        """An instance of :attr:`cls`: the dataclass defaults, then preset ``name``, then ``overrides``.

        Raises:
            ValueError: unknown preset, unknown field or a value of the wrong type (one line each), or an invalid
                value (the dataclass's own check).
        """
        values = self.overrides(name)
        values.update(coerce_overrides(self.cls, overrides, self.what))
        return self.cls(**values)


_TABLES: dict[Any, PresetTable] = {}


def deprecation_message(table: PresetTable, alias: str) -> str:
    """The one-line message of a deprecated preset name."""
    return (f"{table.what} preset {alias!r} is deprecated, use {table.aliases[alias]!r} (the same values); "
            f"{alias!r} will be removed")


def register(cls: type, presets: Mapping[str, Mapping[str, Any]], what: str,
             aliases: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Register the presets of dataclass ``cls``; returns the (type-checked) preset table as a plain dict.

    Args:
        cls: the config dataclass. presets: name -> field overrides on its defaults; names from
            :data:`PRESET_NAMES`. what: what the config is (``"behavior config"``), for messages and lookups.
        aliases: deprecated name -> preset name.

    Raises:
        ValueError: a preset name outside :data:`PRESET_NAMES`, an alias of an unknown preset, or an override that
            is not a field of ``cls`` / has the wrong type (a bug in the table, raised at import).
    """
    if not dataclasses.is_dataclass(cls):
        raise ValueError(f"presets need a dataclass, got {cls!r}")
    bad = [n for n in presets if n not in PRESET_NAMES]
    if bad:
        raise ValueError(f"{what} preset names {bad} are not in the shared vocabulary {PRESET_NAMES}")
    aliases = dict(aliases or {})
    for alias, target in aliases.items():
        if target not in presets:
            raise ValueError(f"{what} preset alias {alias!r} names an unknown preset {target!r}")
    checked = {name: coerce_overrides(cls, values, f"{what} preset {name!r}") for name, values in presets.items()}
    table = PresetTable(cls, what, checked, aliases)
    _TABLES[cls] = table
    _TABLES[what] = table
    return {name: dict(values) for name, values in checked.items()}


def table(cls_or_name: Any) -> PresetTable:
    """The :class:`PresetTable` of a registered dataclass (or of its ``what`` name).

    Raises:
        ValueError: nothing registered under that key (the message lists what is).
    """
    try:
        return _TABLES[cls_or_name]
    except (KeyError, TypeError):
        known = sorted(k for k in _TABLES if isinstance(k, str))
        raise ValueError(f"no presets registered for {cls_or_name!r}; registered: {', '.join(known)}") from None


def make(cls_or_name: Any, preset: str, **overrides: Any) -> Any:
    """``cls(**{**preset overrides, **overrides})`` for a registered config class (or its ``what`` name).

    Raises:
        ValueError: see :meth:`PresetTable.make` and :func:`table`.
    """
    return table(cls_or_name).make(preset, **overrides)


def names(cls_or_name: Any) -> tuple[str, ...]:
    """The preset names of a registered config (aliases excluded): what ``--preset`` offers."""
    return table(cls_or_name).names()


def registered() -> dict[str, PresetTable]:
    """Every registered table by its ``what`` name (the configs whose modules have been imported)."""
    return {k: t for k, t in _TABLES.items() if isinstance(k, str)}


__all__ = ["PRESET_NAMES", "PresetDeprecationWarning", "PresetTable", "deprecation_message", "make", "names",
           "register", "registered", "table"]
