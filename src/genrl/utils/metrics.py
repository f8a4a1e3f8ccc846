"""Training metrics: a JSON-lines log plus TensorBoard, and running means (the NaN/Inf guard is in
:mod:`genrl.utils.guards`).

Usage::

    from genrl.utils.guards import guarded_step
    from genrl.utils.metrics import MeanTracker, MetricsLogger

    with MetricsLogger(out / "logs", resume_step=step) as logger:   # drops lines logged after the checkpoint
        means = MeanTracker()
        while step < total:
            losses = guarded_step(lambda: train_step(...), step, "world model", ckpt)  # {"loss": 0.3, "kl": 1.2}
            means.update(losses)
            step += 1
            if step % log_every == 0:
                logger.log(step, means.result(reset=True), prefix="train")
            if step % video_every == 0:
                logger.log_video(step, "eval/rollout", frames, fps=20)   # uint8 [T, H, W, 3]

``logdir/metrics.jsonl`` holds one JSON object per :meth:`MetricsLogger.log` call:
``{"step": 100, "time": 1712345678.9, "train/loss": 0.31, ...}`` (non-finite values are written as Python's
``NaN``/``Infinity``). TensorBoard is optional: if it cannot be imported, a warning is given once and only the
JSON lines (and image/GIF files) are written. Nothing here crashes a run because a logging backend is missing.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import re
import time
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from genrl.utils.io import atomic_path, write_video

__all__ = ["MetricsLogger", "Mean", "MeanTracker", "StepTimer"]

_WARNED: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def _to_float(value: Any, name: str) -> float:
    """A Python float from a number, a numpy scalar or a one-element tensor/array."""
    if hasattr(value, "detach"):  # torch tensor, without importing torch here
        value = value.detach().float().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"metric {name!r}: {type(value).__name__} is not a number") from exc
    if arr.size != 1:
        raise TypeError(f"metric {name!r}: expected a scalar, got an array of shape {arr.shape}")
    return float(arr.reshape(()))


def _moviepy_available() -> bool:
    """TensorBoard's ``add_video`` encodes with ``moviepy.editor`` (moviepy 1.x)."""
    try:
        importlib.import_module("moviepy.editor")
        return True
    except Exception:
        return False


def _safe_name(tag: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", tag).strip("_") or "tag"


class MetricsLogger:
    """Append scalar metrics to ``logdir/metrics.jsonl`` and TensorBoard; images and videos to TensorBoard.

    Args:
        logdir: folder for ``metrics.jsonl``, the TensorBoard event files, and fallback image/GIF files.
        use_tensorboard: also write TensorBoard events (skipped with a one-time warning if tensorboard is not
            installed).
        flush_every: flush the JSON-lines file and TensorBoard every this many :meth:`log` calls.
        resume_step: if given, :meth:`truncate_after` is called with it (resuming from a checkpoint at that step).
    """

    FILENAME = "metrics.jsonl"

    def __init__(self, logdir: str | os.PathLike, use_tensorboard: bool = True, flush_every: int = 1,
                 resume_step: int | None = None):
        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.path = self.logdir / self.FILENAME
        self.flush_every = max(1, int(flush_every))
        self.use_tensorboard = use_tensorboard
        self._writer = None
        self._file = None
        self._pending = 0
        self._closed = False
        self._video_to_tb: bool | None = None
        self._drop_partial_last_line()
        self._file = open(self.path, "a", encoding="utf-8")
        if resume_step is not None:
            self.truncate_after(resume_step)
        elif use_tensorboard:
            self._writer = self._open_writer(None)

    # ---------------------------------------------------------------------------------------------------------
    # backends

    def _open_writer(self, purge_step: int | None):
        if not self.use_tensorboard:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except Exception as exc:  # ImportError when tensorboard is missing; anything else is a broken install
            _warn_once("tensorboard", f"TensorBoard is unavailable ({exc}); metrics go to {self.FILENAME} only")
            self.use_tensorboard = False
            return None
        return SummaryWriter(log_dir=str(self.logdir), purge_step=purge_step)

    def _drop_partial_last_line(self) -> None:
        """A crash mid-write can leave an unterminated last line; cut it so the next line starts cleanly."""
        if not self.path.is_file():
            return
        size = self.path.stat().st_size
        if size == 0:
            return
        with open(self.path, "rb+") as f:
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return
            pos = size
            while pos > 0:
                start = max(0, pos - 65536)
                f.seek(start)
                chunk = f.read(pos - start)
                nl = chunk.rfind(b"\n")
                if nl >= 0:
                    f.truncate(start + nl + 1)
                    return
                pos = start
            f.truncate(0)

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"MetricsLogger for {self.logdir} is closed")

    # ---------------------------------------------------------------------------------------------------------
    # public API

    def log(self, step: int, metrics: Mapping[str, Any], prefix: str = "train") -> dict:
        """Append one line ``{"step", "time", "<prefix>/<key>": value, ...}`` and write the scalars to TensorBoard.

        Values may be Python numbers, numpy scalars or one-element tensors. Returns the record written.

        Raises:
            TypeError: a value is not a scalar number. ValueError: the logger is closed.
        """
        self._check_open()
        step = int(step)
        record: dict[str, Any] = {"step": step, "time": round(time.time(), 3)}
        for key, value in metrics.items():
            name = f"{prefix}/{key}" if prefix else str(key)
            record[name] = _to_float(value, name)
        self._file.write(json.dumps(record) + "\n")
        if self._writer is not None:
            for name, value in record.items():
                if name not in ("step", "time"):
                    self._writer.add_scalar(name, value, step)
        self._pending += 1
        if self._pending >= self.flush_every:
            self.flush()
        return record

    def log_image(self, step: int, tag: str, image: np.ndarray) -> None:
        """Write an RGB image ``uint8 [H, W, 3]`` to TensorBoard (or to ``logdir/images/<tag>_<step>.png``
        without TensorBoard). Backend failures are warned about, never raised.

        Raises:
            ValueError: ``image`` is not ``uint8 [H, W, 3]``.
        """
        self._check_open()
        img = np.asarray(image)
        if img.ndim != 3 or img.shape[-1] != 3 or img.dtype != np.uint8:
            raise ValueError(f"log_image {tag!r}: expected uint8 [H, W, 3], got {img.dtype} {img.shape}")
        try:
            if self._writer is not None:
                self._writer.add_image(tag, img, int(step), dataformats="HWC")
                return
            import imageio.v2 as imageio

            path = self.logdir / "images" / f"{_safe_name(tag)}_{int(step):08d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                imageio.imwrite(tmp, img, format="png")
        except Exception as exc:
            _warn_once(f"image:{type(exc).__name__}", f"log_image {tag!r} failed ({exc!r}); continuing")

    def log_video(self, step: int, tag: str, frames: np.ndarray, fps: float = 20.0) -> Path | None:
        """Write RGB frames ``uint8 [T, H, W, 3]`` to TensorBoard (needs moviepy 1.x); otherwise as a GIF
        ``logdir/videos/<tag>_<step>.gif`` (nothing to TensorBoard). Returns the GIF path when one is written.
        Backend failures are warned about, never raised.

        Raises:
            ValueError: ``frames`` is not ``uint8 [T, H, W, 3]`` with ``T >= 1``.
        """
        self._check_open()
        arr = np.asarray(frames)
        if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8 or len(arr) == 0:
            raise ValueError(f"log_video {tag!r}: expected non-empty uint8 [T, H, W, 3], got {arr.dtype} {arr.shape}")
        if self._writer is not None:
            if self._video_to_tb is None:
                self._video_to_tb = _moviepy_available()
                if not self._video_to_tb:
                    _warn_once("moviepy", "TensorBoard videos need moviepy 1.x (not installed); videos are "
                                          f"written as GIFs under {self.logdir / 'videos'}")
            if self._video_to_tb:
                try:
                    # add_video wants [N, T, C, H, W]
                    self._writer.add_video(tag, arr.transpose(0, 3, 1, 2)[None], int(step), fps=fps)
                    return None
                except Exception as exc:
                    _warn_once(f"video:{type(exc).__name__}", f"TensorBoard add_video failed ({exc!r}); "
                                                              "writing GIFs instead")
                    self._video_to_tb = False
        try:
            path = self.logdir / "videos" / f"{_safe_name(tag)}_{int(step):08d}.gif"
            return write_video(path, arr, fps=fps)
        except Exception as exc:
            _warn_once(f"gif:{type(exc).__name__}", f"log_video {tag!r}: writing a GIF failed ({exc!r}); continuing")
            return None

    def log_config(self, config: Mapping[str, Any], step: int = 0, tag: str = "config") -> None:
        """Write a run's configuration to TensorBoard as text (its indented JSON, shown as a code block; the Text
        tab). Call once per run (the trainers do on a fresh run). Nothing goes to ``metrics.jsonl``; without
        TensorBoard nothing is written; backend failures are warned about, never raised.

        Raises:
            ValueError: the logger is closed.
        """
        self._check_open()
        if self._writer is None:
            return
        try:
            text = json.dumps(config, indent=2, default=str)
            self._writer.add_text(tag, "\n".join("    " + line for line in text.splitlines()), int(step))
        except Exception as exc:
            _warn_once(f"text:{type(exc).__name__}", f"log_config {tag!r} failed ({exc!r}); continuing")

    def truncate_after(self, step: int) -> int:
        """Drop logged lines with ``step > step`` (resuming from a checkpoint at ``step``); returns how many.

        The file is rewritten atomically; unreadable lines are dropped too. TensorBoard is told to discard its
        events after ``step`` (a new event file with ``purge_step = step + 1``).
        """
        self._check_open()
        step = int(step)
        self._file.close()
        kept, dropped = [], 0
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                if not line.strip():
                    continue
                try:
                    rec_step = json.loads(line)["step"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    dropped += 1
                    continue
                if rec_step > step:
                    dropped += 1
                else:
                    kept.append(line)
        if dropped:
            with atomic_path(self.path) as tmp:
                tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        self._file = open(self.path, "a", encoding="utf-8")
        if self.use_tensorboard:
            if self._writer is not None:
                self._writer.close()
            self._writer = self._open_writer(step + 1)
        return dropped

    def flush(self) -> None:
        """Flush the JSON-lines file and TensorBoard."""
        if self._file is not None and not self._file.closed:
            self._file.flush()
        if self._writer is not None:
            self._writer.flush()
        self._pending = 0

    def close(self) -> None:
        """Flush and close everything (idempotent)."""
        if self._closed:
            return
        self.flush()
        if self._file is not None:
            self._file.close()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._closed = True

    def __enter__(self) -> "MetricsLogger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Mean:
    """Running mean of a float: ``update(value, count=1)``, ``result()``, ``reset()``."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total = 0.0
        self.count = 0.0

    def update(self, value: Any, count: float = 1.0) -> None:
        """Add ``value`` with weight ``count`` (e.g. the batch size). Non-finite values make the mean non-finite."""
        self.total += _to_float(value, "value") * count
        self.count += count

    def result(self) -> float:
        """The mean so far (``nan`` before any update)."""
        return self.total / self.count if self.count else math.nan


class MeanTracker:
    """Running means of several named metrics, e.g. accumulated over the steps between two log lines."""

    def __init__(self) -> None:
        self._means: dict[str, Mean] = {}

    def update(self, metrics: Mapping[str, Any], count: float = 1.0) -> None:
        """Add one value per metric (metrics may differ between calls; each has its own count)."""
        for key, value in metrics.items():
            self._means.setdefault(key, Mean()).update(_to_float(value, key), count)

    def result(self, reset: bool = False) -> dict[str, float]:
        """``{name: mean}`` of the metrics seen since the last reset; ``reset=True`` then clears them."""
        out = {k: m.result() for k, m in self._means.items()}
        if reset:
            self.reset()
        return out

    def reset(self) -> None:
        self._means.clear()

    def __len__(self) -> int:
        return len(self._means)


class StepTimer:
    """The log interval of a training loop: running means of the update metrics, seconds per update and the share
    spent loading the batch (the first interval after a resume, and the last, can hold fewer updates than
    ``log_every``).

    Usage::

        timer.add(data_seconds, total_seconds, metrics)   # once per update
        logger.log(step, timer.result())                  # every log_every updates: means + timing, then restart
    """

    def __init__(self) -> None:
        self.means = MeanTracker()
        self.reset()

    def reset(self) -> None:
        self.data = self.total = 0.0
        self.count = 0
        self.means.reset()

    def add(self, data_seconds: float, total_seconds: float, metrics: Mapping[str, Any] | None = None) -> None:
        """One update: ``data_seconds`` of it loading the batch, ``total_seconds`` in all, and its ``metrics``."""
        self.data += data_seconds
        self.total += total_seconds
        self.count += 1
        if metrics:
            self.means.update(metrics)

    def result(self, data_key: str = "data_fraction") -> dict[str, float]:
        """``{metric: mean, ..., "seconds_per_update": ..., data_key: data share}`` of the interval, then starts a
        new interval."""
        out = self.means.result()
        out.update({"seconds_per_update": self.total / max(self.count, 1),
                    data_key: self.data / self.total if self.total else 0.0})
        self.reset()
        return out
