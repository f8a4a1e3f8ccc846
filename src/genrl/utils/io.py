"""Atomic file writes and video/GIF output.

Every file the project writes goes through a temporary file in the destination folder followed by
``os.replace``, so a crash or Ctrl-C never leaves a truncated file under the final name.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np


_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); on success rename it to ``path``.

    The temporary file is removed if the block raises. Parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".partial{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path``, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_video(path: str | os.PathLike, frames: Sequence[np.ndarray] | np.ndarray, fps: float = 20.0,
                scale: int = 1) -> Path:
    """Write RGB frames ``uint8 [T, H, W, 3]`` to an ``.mp4`` (H.264 via imageio-ffmpeg) or ``.gif``, atomically.

    Args:
        path: output file; the extension selects the format (``.mp4`` or ``.gif``).
        frames: sequence of ``uint8 [H, W, 3]`` frames.
        fps: frames per second.
        scale: integer nearest-neighbour upscaling factor (64x64 frames are tiny in a player).

    Raises:
        ValueError: no frames, wrong frame shape/dtype, or an unsupported extension.
    """
    import imageio.v2 as imageio

    path = Path(path)
    arr = np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8 or len(arr) == 0:
        raise ValueError(f"{path}: frames must be a non-empty uint8 array [T, H, W, 3], got {arr.dtype} {arr.shape}")
    if scale > 1:
        arr = arr.repeat(scale, axis=1).repeat(scale, axis=2)
    suffix = path.suffix.lower()
    with atomic_path(path) as tmp:
        if suffix == ".mp4":
            imageio.mimwrite(tmp, list(arr), fps=fps, macro_block_size=1, codec="libx264", quality=8)
        elif suffix == ".gif":
            imageio.mimwrite(tmp, list(arr), duration=1000.0 / fps, loop=0)
        else:
            raise ValueError(f"{path}: unsupported video extension {suffix!r}; use .mp4 or .gif")
    return path
