"""``--set FIELD=VALUE`` parsing shared by the training commands (pretrain, behave, baseline)."""

from __future__ import annotations

import json


def parse_overrides(items: list[str]) -> dict:
    """``["batch_size=8", "precision=fp32"]`` -> ``{"batch_size": 8, "precision": "fp32"}`` (values read as JSON
    when they parse, else kept as strings).

    Raises:
        ValueError: an item without ``=``.
    """
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set expects FIELD=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
