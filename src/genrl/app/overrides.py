"""``--set FIELD=VALUE`` parsing shared by the training commands (pretrain, behave, baseline), and the
``--eval-workers``/``--workers`` value."""

from __future__ import annotations

import argparse
import json
from typing import Literal

from genrl.utils.fields import coerce_overrides, coerce_value, field_types


def add_set_arg(parser: argparse.ArgumentParser, what: str, example: str) -> None:
    """Add ``--set FIELD=VALUE ...``: overrides of the ``what`` config fields on top of the preset."""
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                        help=f"{what} overrides on top of the preset, e.g. --set {example} (values checked against "
                        "the field types; --print-config shows the result)")


def eval_workers_arg(text: str) -> int | str:
    """An evaluation workers value from the command line: an int >= 1 or ``auto``."""
    try:
        value = coerce_value(int | Literal["auto"], text)
    except ValueError:
        value = 0
    if value != "auto" and value < 1:
        raise argparse.ArgumentTypeError(f"expects an int >= 1 or 'auto', got {text!r}")
    return value


def parse_overrides(items: list[str], schema: type | None = None, what: str = "config") -> dict:
    """``["batch_size=8", "precision=fp32"]`` -> ``{"batch_size": 8, "precision": "fp32"}`` (values read as JSON
    when they parse, else kept as strings).

    With ``schema`` (the config dataclass), every value is checked against its field's type and converted
    (:func:`genrl.utils.fields.coerce_overrides`): ``str`` fields keep the text as typed, ``--set gamma=abc`` or
    ``--set horizon=16.5`` (an int field) is refused. ``what`` names the config in the messages.

    Raises:
        ValueError: an item without ``=``; with ``schema``: an unknown field or a value of the wrong type (one line
            naming the field, the expected type and the value).
    """
    types_ = field_types(schema) if schema is not None else {}
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set expects FIELD=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        if types_.get(key) is str:
            out[key] = value
            continue
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return coerce_overrides(schema, out, what) if schema is not None else out
