"""The run skeleton shared by every trainer (``genrl pretrain``, ``behave``, ``baseline``, ``vlm train``), in the
spirit of danijar/dreamerv3's ``embodied`` run loop: the trainer supplies callbacks (one update, its batch, a save,
reports and evaluations), :class:`Runtime` owns everything around them.

What the runtime does, in the order a trainer calls it:

1. ``Runtime(out, threads=...)``: torch CPU threads; the run folder ``out`` and its ``out/checkpoint``.
2. :meth:`Runtime.check_resume`: a run folder that already holds a run with other essential settings is refused
   with :class:`ResumeMismatchError` (one line naming the folder and every differing field).
3. :meth:`Runtime.write_config`: ``out/config.json``, atomically (it also goes to TensorBoard once, as text).
4. :meth:`Runtime.seed`: ``torch.manual_seed``.
5. The trainer builds its model and loads ``rt.ckpt`` when :meth:`Runtime.has_checkpoint` (its step: ``start``).
6. :meth:`Runtime.run`: the loop from ``start`` to ``steps`` with a tqdm bar, a
   :class:`~genrl.utils.metrics.MetricsLogger` (``out/metrics.jsonl`` + TensorBoard, truncated after ``start``), a
   :class:`~genrl.utils.metrics.StepTimer`, the NaN/Inf guard (:func:`~genrl.utils.guards.guarded_step`: the run
   stops before anything is saved over the last good checkpoint) and the cadence: per update, in this order, the
   log line (every ``log_every`` updates and at the last), the ``before_save`` hooks, the checkpoint (every
   ``save_every`` updates and at the last), the ``after_save`` hooks. Then the bar is closed and ``finish(step)``
   runs with the logger still open. Bar and logger are closed on every exit path; a ``KeyboardInterrupt`` first
   saves the updates done since the last checkpoint (unless it struck during a save) and is then re-raised.
   ``SIGTERM`` (``kill``, a batch scheduler's preemption; a background job of a non-interactive shell ignores
   Ctrl-C's SIGINT) is turned into the same ``KeyboardInterrupt`` while the loop runs in the main thread.

Usage::

    rt = Runtime(cfg.out, threads=cfg.threads)
    rt.check_resume(run_cfg, keys=("domain", "world_model"))
    rt.write_config(run_cfg)
    rt.seed(cfg.seed)
    start = int(load_checkpoint(rt.ckpt, modules, opts, rng=rng)["step"]) if rt.has_checkpoint() else 0
    last = rt.run(LoopConfig(steps=cfg.steps, log_every=25, save_every=500, what="pretrain", desc="pretrain"),
                  update=lambda step, batch: model.train_step(batch, opts), data=lambda step: sampler.sample(),
                  save=lambda step: save_checkpoint(rt.ckpt, modules, opts, step, run_cfg, rng=rng), start=start,
                  before_save=[Hook(report, every=cfg.report_every)], after_save=[Hook(evaluate, every=1000)])

Several processes (``torchrun``, :mod:`genrl.utils.distributed`): every rank builds a ``Runtime`` and runs the
same loop (the updates' collectives keep them in step); only the one made with ``writer=True`` (rank 0) writes the
config, the log, the checkpoints and runs the hooks and the bar; the others only update.

Exactness: a run resumed from a periodic checkpoint continues exactly as an uninterrupted one (the hooks that draw
random numbers run before the save). A checkpoint saved on ``KeyboardInterrupt`` keeps the finished updates, but the
interrupted update had already drawn its batch, so a run resumed from it is valid and not bit-identical.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
from tqdm import tqdm

from genrl.utils.checkpoint import has_checkpoint
from genrl.utils.guards import guarded_step
from genrl.utils.io import write_json
from genrl.utils.metrics import MetricsLogger, StepTimer

__all__ = ["ResumeMismatchError", "config_differences", "set_threads", "Hook", "LoopConfig", "Runtime"]

CONFIG_FILE = "config.json"
_UNSET = "<unset>"


class ResumeMismatchError(ValueError):
    """A run folder already holds a run with other essential settings (resuming it would mix two runs)."""


def set_threads(threads: int | None) -> None:
    """``torch.set_num_threads(threads)``; None or 0 keeps torch's default."""
    if threads:
        torch.set_num_threads(int(threads))


def _jsonable(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists, ...), so that a config compares with its file."""
    return json.loads(json.dumps(value, default=str))


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value) if value is not _UNSET else _UNSET
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _diff(path: str, old: Any, new: Any, out: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(new) + [k for k in old if k not in new]:
            _diff(f"{path}.{key}", old.get(key, _UNSET), new.get(key, _UNSET), out)
    elif old != new:
        out.append(f"{path}={_short(old)} (this run: {_short(new)})")


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any], keys: Iterable[str]) -> list[str]:
    """The fields of ``keys`` on which two run configs differ, as ``"key.sub=old (this run: new)"`` strings.

    Dict values are compared field by field (dotted paths name the differing fields); both sides are compared as
    they read back from JSON; a key missing on one side reads ``<unset>``. Long values are shortened.
    """
    old, new = _jsonable(dict(old)), _jsonable({k: new.get(k) for k in keys})
    out: list[str] = []
    for key in keys:
        _diff(key, old.get(key, _UNSET), new[key], out)
    return out


@dataclass(frozen=True)
class Hook:
    """A callback of the training loop, called as ``fn(step)`` (``step``: updates done) when it is due.

    Attributes:
        fn: the callback; its return value is ignored.
        every: period in updates (0: none).
        at: further update counts at which it is due.
        final: after the last update (``step == steps``): True: always due; None: as ``every``/``at`` say; False:
            never due (e.g. a periodic evaluation that the trainer's own final evaluation replaces).
        resume: when the run resumes from its checkpoint at a step where the hook is due, call it once before the
            first update (the checkpoint of that step was saved, the hook may not have run before the run stopped).
        enabled: False: never called.
    """

    fn: Callable[[int], Any]
    every: int = 0
    at: tuple[int, ...] = ()
    final: bool | None = True
    resume: bool = False
    enabled: bool = True

    def due(self, step: int, steps: int) -> bool:
        """Whether the hook runs after update ``step`` of ``steps`` (never at step 0)."""
        if not self.enabled or step <= 0:
            return False
        if step == steps and self.final is not None:
            return self.final
        return (self.every > 0 and step % self.every == 0) or step in self.at


@dataclass
class LoopConfig:
    """Cadence and display of one :meth:`Runtime.run`.

    Attributes:
        steps: total updates; the loop runs until the update count reaches it.
        log_every: updates between log lines (also after the last update); 0: only after the last.
        save_every: updates between checkpoints (also after the last update); 0: only after the last.
        what: what is trained, named in the NaN/Inf message (e.g. ``"pretrain"``, ``"behavior"``).
        desc: the progress bar's label. unit: its unit. progress: show the bar.
        log: keep a :class:`~genrl.utils.metrics.MetricsLogger` in the run folder (``metrics.jsonl`` +
            TensorBoard); the log lines hold the :class:`~genrl.utils.metrics.StepTimer` means, prefix ``train``.
        data_key: name of the batch-loading share in the logged timing numbers.
        save_on_interrupt: on ``KeyboardInterrupt``, save the updates done since the last checkpoint (unless the
            interrupt struck during a save) before re-raising.
    """

    steps: int
    log_every: int
    save_every: int
    what: str
    desc: str
    unit: str = "upd"
    progress: bool = True
    log: bool = True
    data_key: str = "data_fraction"
    save_on_interrupt: bool = True


@contextlib.contextmanager
def sigterm_as_interrupt():
    """While inside, ``SIGTERM`` raises ``KeyboardInterrupt`` in the main thread (so a ``kill``ed or preempted run
    saves as on Ctrl-C); the previous handler is restored on exit. A no-op outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum} (SIGTERM)")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Runtime:
    """One training run in the folder ``out``: threads, config, resume check, seeding and the loop.

    Args:
        out: the run folder (created when the config is written or the logger opens).
        threads: torch CPU threads (None: torch's default), set right away.
        checkpoint: name of the checkpoint folder inside ``out``.
        writer: False for the ranks other than 0 of a multi-process run: no ``config.json``, logger, bar, hooks or
            saves (``save`` and the hooks are never called; ``finish`` is).

    Attributes (for the trainer's callbacks): ``out``, ``ckpt`` (``out/checkpoint``), ``config`` (as written),
    ``step`` (updates done), ``metrics`` (the last update's metrics), ``last`` (the last logged metrics),
    ``logger`` / ``bar`` (open during :meth:`run`; ``logger`` is None without ``LoopConfig.log``).
    """

    def __init__(self, out: str | Path, threads: int | None = None, checkpoint: str = "checkpoint",
                 writer: bool = True):
        set_threads(threads)
        self.writer = bool(writer)
        self.out = Path(out)
        self.ckpt = self.out / checkpoint
        self.config: dict | None = None
        self.step = 0
        self.metrics: dict = {}
        self.last: dict = {}
        self.logger: MetricsLogger | None = None
        self.bar: tqdm | None = None
        self._saved = 0
        self._saving = False

    # ---------------------------------------------------------------------------------------------- before the loop

    def has_checkpoint(self) -> bool:
        """Whether ``out/checkpoint`` holds a complete checkpoint (the run resumes)."""
        return has_checkpoint(self.ckpt)

    def stored_config(self) -> dict | None:
        """``out/config.json`` of a run already in the folder, or None."""
        path = self.out / CONFIG_FILE
        return json.loads(path.read_text()) if path.is_file() else None

    def check_resume(self, config: Mapping[str, Any], keys: Sequence[str], stored: Mapping[str, Any] | None = None,
                     hint: str = "the same settings") -> None:
        """Refuse to continue a run with other essential settings.

        Args:
            config: this run's config. keys: its fields that must not change on resume.
            stored: the config of the run in the folder (default: ``out/config.json``; nothing to check if absent).
            hint: what resumes instead, for the message (``"use another --out, or {hint} to resume"``).

        Raises:
            ResumeMismatchError: one line, ``"{out} holds a run with other settings: key=old (this run: new), ...;
                use another --out, or {hint} to resume"``.
        """
        stored = self.stored_config() if stored is None else stored
        if stored is None:
            return
        diffs = config_differences(stored, config, keys)
        if diffs:
            more = f" and {len(diffs) - 6} more" if len(diffs) > 6 else ""
            raise ResumeMismatchError(f"{self.out} holds a run with other settings: {', '.join(diffs[:6])}{more}; "
                                      f"use another --out, or {hint} to resume")

    def write_config(self, config: Mapping[str, Any]) -> None:
        """Write ``out/config.json`` (atomic; not on a non-writer); :meth:`run` also writes it to TensorBoard once,
        on a fresh run."""
        self.config = dict(config)
        if self.writer:
            write_json(self.out / CONFIG_FILE, self.config)

    @staticmethod
    def seed(seed: int) -> None:
        """Seed torch's global generator (numpy generators are the trainers' own, checkpointed with the run)."""
        torch.manual_seed(seed)

    # ---------------------------------------------------------------------------------------------- the loop

    def _save(self, save: Callable[[int], Any], step: int) -> None:
        if not self.writer:
            self._saved = step
            return
        self._saving = True
        save(step)
        self._saving = False
        self._saved = step

    def run(self, cfg: LoopConfig, update: Callable[[int, Any], Mapping[str, Any]], *, save: Callable[[int], Any],
            start: int = 0, data: Callable[[int], Any] | None = None,
            postfix: Callable[[dict], Mapping[str, str]] | None = None, before_save: Sequence[Hook] = (),
            after_save: Sequence[Hook] = (), finish: Callable[[int], Any] | None = None) -> dict:
        """Train from update ``start`` to ``cfg.steps``; returns the last logged metrics (``{}`` if none).

        Args:
            cfg: cadence and display.
            update: one update, ``update(step, batch) -> metrics`` (``step``: updates done before it; ``batch``:
                what ``data(step)`` returned, None without ``data``). It may raise ``FloatingPointError`` on a
                non-finite loss, before changing any parameter; non-finite metrics stop the run too.
            save: writes the checkpoint of ``save(step)`` updates (into :attr:`ckpt`).
            start: updates already done (from the checkpoint, or an ``--init`` model).
            data: loads the batch of an update (timed apart from it: the ``data_key`` share of the log lines).
            postfix: the bar's postfix from a log line's metrics, e.g. ``lambda m: {"loss": f"{m['loss']:.3f}"}``.
            before_save / after_save: hooks run, in order, after the log line and before / after the checkpoint
                of each update.
            finish: called once after the last update (also when ``start >= steps``), the bar closed and the logger
                still open (e.g. a final evaluation that logs its numbers).

        Raises:
            FloatingPointError: non-finite loss or metric (:func:`~genrl.utils.guards.guarded_step`; nothing is
                saved, the last good checkpoint is kept). KeyboardInterrupt: re-raised after the interrupt save.
            Whatever the callbacks raise. Bar and logger are closed in every case.
        """
        self.step = self._saved = int(start)
        self.metrics, self.last, self.logger, self.bar = {}, {}, None, None
        steps = cfg.steps
        log = Hook(lambda s: None, every=cfg.log_every)
        checkpoint = Hook(lambda s: None, every=cfg.save_every)
        timer = StepTimer()
        fresh = not self.has_checkpoint()
        if not self.writer:
            before_save, after_save = (), ()
        signals = contextlib.ExitStack()
        try:
            signals.enter_context(sigterm_as_interrupt())
            if cfg.log and self.writer:
                self.logger = MetricsLogger(self.out, resume_step=self.step)  # drops lines logged after `start`
                if fresh and self.config is not None:
                    self.logger.log_config(self.config, self.step)
            self.bar = tqdm(total=steps, initial=self.step, desc=cfg.desc, unit=cfg.unit,
                            disable=not (cfg.progress and self.writer))
            for hook in (*before_save, *after_save):
                if hook.resume and not fresh and hook.due(self.step, steps):
                    hook.fn(self.step)
            while self.step < steps:
                step = self.step
                t0 = time.perf_counter()
                batch = data(step) if data is not None else None
                t1 = time.perf_counter()
                metrics = guarded_step(lambda: update(step, batch), step, cfg.what, self.ckpt)
                self.step = step = step + 1
                self.metrics = dict(metrics)
                timer.add(t1 - t0, time.perf_counter() - t0, metrics)
                self.bar.update(1)
                if log.due(step, steps):
                    self.last = timer.result(cfg.data_key)
                    if self.logger is not None:
                        self.logger.log(step, self.last)
                    if postfix is not None:
                        self.bar.set_postfix(**postfix(self.last))
                for hook in before_save:
                    if hook.due(step, steps):
                        hook.fn(step)
                if checkpoint.due(step, steps):
                    self._save(save, step)
                for hook in after_save:
                    if hook.due(step, steps):
                        hook.fn(step)
            self.bar.close()
            if finish is not None:
                finish(self.step)
        except KeyboardInterrupt:
            if cfg.save_on_interrupt and not self._saving and self.step > self._saved:
                self._save(save, self.step)
                if cfg.progress and self.writer:
                    print(f"\ninterrupted: saved the checkpoint of step {self.step} in {self.ckpt}", file=sys.stderr)
            raise
        finally:
            signals.close()
            self._saving = False
            if self.bar is not None:
                self.bar.close()
            if self.logger is not None:
                self.logger.close()
        return self.last
