"""Stable train / held-out split of a dataset's episodes by name.

The same rule is used by the MiniVLM (``genrl vlm train``) and by MFWM pre-training (``genrl pretrain``), so a
model's held-out metrics are computed on episodes it never saw.
"""

from __future__ import annotations

import zlib
from typing import Iterable


def is_heldout(episode_name: str, fraction: float = 0.1) -> bool:
    """Whether episode ``episode_name`` belongs to the held-out share ``fraction`` (CRC32 of the name, per mille).

    Raises:
        ValueError: ``fraction`` outside ``[0, 1]``.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"held-out fraction must be in [0, 1], got {fraction}")
    return (zlib.crc32(episode_name.encode()) % 1000) < int(round(fraction * 1000))


def split_names(names: Iterable[str], fraction: float) -> tuple[list[str], list[str]]:
    """``(train, heldout)`` lists of episode names (input order kept) under :func:`is_heldout`."""
    train, heldout = [], []
    for n in names:
        (heldout if is_heldout(n, fraction) else train).append(n)
    return train, heldout
