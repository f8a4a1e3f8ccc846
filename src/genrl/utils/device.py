"""Device selection shared by the training commands (``--device auto|cpu|cuda``)."""

from __future__ import annotations

import torch


def resolve_device(name: str | None = "auto") -> torch.device:
    """``"auto"``/None -> CUDA if available else CPU; otherwise ``torch.device(name)``.

    Raises:
        ValueError: ``"cuda"`` asked for on a machine without CUDA, or an unknown device string.
    """
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"unknown device {name!r} (use auto, cpu or cuda)") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for but CUDA is not available; use --device cpu")
    return dev
