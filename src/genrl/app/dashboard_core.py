"""The callbacks behind the dashboard (``genrl app``), without gradio: each takes the page's inputs and returns
plain values (file paths, table rows, Markdown) ending with a Markdown message for the page.

Bad input (no model, an empty or non-UTF-8 prompt, a file that is not a video, a folder that is not a run, ...)
never raises: the callback returns empty outputs and a message starting with :data:`ERROR_MARK`. Unexpected errors
are logged with their traceback to the terminal and shown in the page as one line.

Usage::

    dash = Dashboard(["runs/walker_mfwm", "runs/behaviors"])
    video, clips, message = dash.decode("runs/walker_mfwm", "lying on the back", None)
    rows, runs, message = dash.list_behaviors("runs/behaviors")
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from itertools import count
from pathlib import Path
from typing import Any, Callable

import numpy as np

from genrl.app.dashboard_jobs import BehaveJob
from genrl.app.dashboard_runs import ClipBank, decode_behavior_target, find_behavior_runs, read_behavior, run_kind
from genrl.behavior.config import BehaviorConfig
from genrl.utils.presets import names

log = logging.getLogger("genrl.app")
ERROR_MARK = "⚠️ **Error:**"
USER_ERRORS = (ValueError, KeyError, OSError)
VIDEO_SUFFIXES = (".mp4", ".gif", ".webm", ".avi", ".mov", ".mkv", ".m4v")
BEHAVIOR_COLUMNS = ["run", "task", "prompt", "start states", "updates", "normalized score"]
CURVES = [("train/reward_mean", "imagined reward"), ("eval/normalized_mean", "normalized score"),
          ("train/actor_loss", "actor loss")]


def error_message(err: BaseException | str) -> str:
    """The page's one-line Markdown message for an error (a ``KeyError`` shows its key's message)."""
    if isinstance(err, KeyError) and err.args:
        err = err.args[0]
    return f"{ERROR_MARK} {err}"


def guarded(n_outputs: int) -> Callable:
    """Decorator: the callback's exceptions become ``(None, ..., error message)`` (``n_outputs`` values; just the
    message when ``n_outputs`` is 1)."""
    def deco(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except USER_ERRORS as err:
                message = error_message(err)
            except Exception as err:  # noqa: BLE001 - the page must show a message, never a traceback
                log.exception("genrl app: %s failed", fn.__name__)
                message = error_message(f"unexpected {type(err).__name__}: {err} (traceback in the terminal)")
            return message if n_outputs == 1 else (*([None] * (n_outputs - 1)), message)
        return wrapper
    return deco


def clean_text(text: Any, what: str = "prompt") -> str:
    """``text`` as a stripped ``str``; bytes are decoded as UTF-8.

    Raises:
        ValueError: bytes that are not UTF-8, or a string that cannot be written as UTF-8 (lone surrogates).
    """
    if text is None:
        return ""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"the {what} is not valid UTF-8 text") from None
    text = str(text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"the {what} is not valid UTF-8 text") from None
    return text.strip()


def _upload_path(upload: Any) -> str | None:
    """The local path of a gradio upload (a path string, or an object with ``.name``/``.path``), or None."""
    if upload is None or upload == "":
        return None
    if isinstance(upload, (list, tuple)):
        return _upload_path(upload[0]) if upload else None
    return str(getattr(upload, "path", None) or getattr(upload, "name", None) or upload)


class Dashboard:
    """State and callbacks of the dashboard.

    Args:
        runs: the ``genrl app RUN ...`` arguments: pre-training run folders or shipped model names (offered as world
            models; the shipped models are always offered), behavior run folders or folders holding them (listed in
            the behaviors tab; the first is also the default results folder of the compare tab and receives new
            behaviors started from the page; default ``runs``).
        embedder: the prompt embedder, or a zero-argument callable building it on first use (default: the packaged
            MiniVLM). It must be the VLM the world model was trained with.
        dataset: dataset searched for the nearest clips (default: each model's pre-training dataset).
        behave_args: extra ``genrl behave`` arguments of jobs started from the page (e.g. ``--vlm ...``).
        cache_dir: where decoded videos and plots are written (default: a temporary folder removed at exit).

    Raises:
        FileNotFoundError: a run that is neither an existing folder nor a shipped model's name.
    """

    def __init__(self, runs: list[str] | tuple[str, ...] = (), embedder: Any = None, dataset: str | None = None,
                 behave_args: list[str] | tuple[str, ...] = (), cache_dir: str | os.PathLike | None = None):
        from genrl.mfwm.shipped import shipped_models

        self.models: list[str] = []
        folders: list[str] = []
        for run in runs:
            kind = run_kind(run)
            if kind == "missing":
                raise FileNotFoundError(f"{run}: not a folder nor a shipped model (`genrl models` lists them)")
            (self.models if kind in ("shipped", "pretrain") else folders).append(str(run))
        self.models += [m for m in shipped_models() if m not in self.models]
        self.behaviors_dir = folders[0] if folders else "runs"
        self.results_dir = self.behaviors_dir
        first = Path(self.behaviors_dir)
        self.new_runs_dir = first.parent if run_kind(first) == "behavior" else first
        self.dataset = dataset
        self.behave_args = list(behave_args)
        self._embedder = embedder
        self._models: dict[tuple, tuple] = {}
        self._banks: dict[str, ClipBank] = {}
        self._lock = threading.RLock()
        self._count = count()
        if cache_dir is None:
            cache_dir = tempfile.mkdtemp(prefix="genrl-app-")
            atexit.register(shutil.rmtree, cache_dir, True)
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.job = BehaveJob()

    # ------------------------------------------------------------------ shared pieces
    def _file(self, stem: str, suffix: str) -> Path:
        return self.cache_dir / f"{stem}_{next(self._count):05d}{suffix}"

    def load_model(self, run: str) -> tuple[Any, dict]:
        """The MFWM and config of a pre-training run or shipped model, cached (reloaded when its checkpoint changes).

        Raises:
            FileNotFoundError: not a run folder nor a shipped model, or no checkpoint. CheckpointError: damaged.
        """
        from genrl.mfwm.pretrain import load_pretrained
        from genrl.mfwm.shipped import resolve_run

        folder = resolve_run(run).resolve()
        state = folder / "checkpoint" / "state.json"
        key = (str(folder), state.stat().st_mtime_ns if state.is_file() else 0)
        with self._lock:
            if key not in self._models:
                if len(self._models) >= 2:
                    self._models.pop(next(iter(self._models)))
                self._models[key] = load_pretrained(folder)
            return self._models[key]

    def embedder(self):
        """The prompt embedder (built on first use)."""
        with self._lock:
            if self._embedder is None:
                from genrl.vlm.registry import make_embedder
                self._embedder = make_embedder("default")
            elif callable(self._embedder) and not hasattr(self._embedder, "embed_text"):
                self._embedder = self._embedder()
            return self._embedder

    def warm_up(self, model: str | None = None) -> None:
        """Load a world model (default: the first offered), the embedder and the model's nearest-clip bank now, so
        that the first decode in the page is quick; errors are left for the page to report."""
        model = model or (self.models[0] if self.models else None)
        try:
            if model is not None:
                _, cfg = self.load_model(model)
                dataset = self.dataset or (cfg.get("pretrain") or {}).get("dataset")
                if dataset and Path(dataset).is_dir():
                    self._bank(dataset)
            self.embedder()
        except Exception:  # noqa: BLE001 - reported by the callbacks when the page uses them
            log.debug("warm-up failed", exc_info=True)

    def _bank(self, dataset: str) -> ClipBank:
        with self._lock:
            key = str(Path(dataset).resolve())
            if key not in self._banks:
                self._banks[key] = ClipBank(dataset)
            return self._banks[key]

    # ------------------------------------------------------------------ prompt tab
    @guarded(3)
    def decode(self, model: str | None, prompt: Any, video: Any = None, horizon: int = 32, samples: int = 4,
               video_aligner: bool = False) -> tuple[str | None, str | None, str]:
        """Decode a text or video prompt with a world model and find the dataset clips nearest to it.

        Args:
            model: pre-training run folder or shipped model name. prompt: text (may be empty when a video is given).
            video: uploaded video file (path). horizon: decoded steps. samples: rollouts side by side.
            video_aligner: pass a video prompt's embedding through the aligner too (text always uses it).

        Returns:
            ``(decoded .mp4, nearest clips .mp4 or None, Markdown message)``; on bad input ``(None, None, error)``.
        """
        from genrl.mfwm.decode import decode_prompt, matching_embedder, prompt_embedding, write_decoded

        t0 = time.perf_counter()
        if not model or not str(model).strip():
            raise ValueError("pick a world model (a pre-training run or a shipped model) first")
        text = clean_text(prompt)
        path = _upload_path(video)
        if text and path:
            raise ValueError("give a text prompt or a video, not both: clear the text box or remove the video")
        if not text and not path:
            raise ValueError("type a text prompt or upload a video prompt")
        if path and Path(path).suffix.lower() not in VIDEO_SUFFIXES:
            raise ValueError(f"{Path(path).name} is not a video (expected one of {', '.join(VIDEO_SUFFIXES)})")
        horizon, samples = int(horizon), int(samples)
        if not 1 <= horizon <= 256 or not 1 <= samples <= 8:
            raise ValueError("horizon must be in 1..256 and samples in 1..8")
        net, cfg = self.load_model(str(model).strip())
        vlm = self.embedder()
        vlm = matching_embedder(cfg, vlm)
        with self._lock:
            emb, _ = prompt_embedding(vlm, text or None, path)
            use_aligner = bool(text) or bool(video_aligner)
            frames = decode_prompt(net, emb, horizon, use_aligner=use_aligner, samples=samples)
        decoded = write_decoded(frames, self._file("decoded", ".mp4"))
        what = f"*{text}*" if text else f"video {Path(path).name}"
        lines = [f"Decoded {what} with `{model}` (step {cfg['step']}, aligner {'on' if use_aligner else 'off'}) "
                 f"in {time.perf_counter() - t0:.1f} s."]
        clips_path, note = self._nearest(frames[0], cfg)
        return str(decoded), clips_path, "\n\n".join(lines + [note])

    def _nearest(self, frames: np.ndarray, cfg: dict) -> tuple[str | None, str]:
        """The nearest dataset clips of one decoded rollout as a video, and a line naming them."""
        from genrl.mfwm.decode import write_decoded

        dataset = self.dataset or (cfg.get("pretrain") or {}).get("dataset")
        if not dataset or not Path(dataset).is_dir():
            return None, (f"No nearest dataset clips: dataset {dataset} not found (start the app with "
                          "`--dataset DIR`).")
        try:
            clips = self._bank(dataset).nearest(frames, k=3)
        except USER_ERRORS as err:
            return None, f"No nearest dataset clips: {err}"
        if not clips:
            return None, f"No nearest dataset clips: every episode of {dataset} is shorter than the rollout."
        path = write_decoded(np.stack([c["frames"] for c in clips]), self._file("nearest", ".mp4"))
        names = "; ".join(f"`{c['episode']}` steps {c['start']}-{c['start'] + len(c['frames']) - 1} "
                          f"(MSE {c['mse']:.4f})" for c in clips)
        return str(path), f"Nearest clips of `{dataset}` to the first rollout (left to right): {names}."

    # ------------------------------------------------------------------ behaviors tab
    @guarded(3)
    def list_behaviors(self, folder: Any) -> tuple[list[list], list[str], str]:
        """The behavior runs under ``folder``: ``(table rows (BEHAVIOR_COLUMNS), run paths, message)``."""
        folder = clean_text(folder, "folder") or self.behaviors_dir
        runs = find_behavior_runs(folder)
        if not runs:
            raise ValueError(f"{folder} holds no behavior runs (folders with the config.json of `genrl behave`)")
        rows = []
        for run in runs:
            info = read_behavior(run)
            score = "-" if info["normalized"] is None else f"{info['normalized']:.3f}"
            rows.append([str(run.relative_to(folder)) if run != Path(folder) else run.name, info["task"],
                         info["prompt"], info["start_states"], f"{info['steps']}/{info['steps_total']}", score])
        return rows, [str(r) for r in runs], f"{len(runs)} behavior run{'s' * (len(runs) != 1)} under `{folder}`."

    @guarded(5)
    def show_behavior(self, run: Any) -> tuple[str, str | None, str | None, str | None, str]:
        """One behavior run: ``(Markdown summary, decoded target .mp4, rollout .mp4, learning curve .png, message)``.

        The decoded target is the target trajectory stored in the run's checkpoint; the rollout is its latest
        evaluation video; the curve plots its ``metrics.jsonl``.
        """
        from genrl.app.report import plot_curves
        from genrl.mfwm.decode import write_decoded

        run = clean_text(run, "run folder")
        if not run:
            raise ValueError("pick a behavior run")
        info = read_behavior(run)
        score = "not evaluated yet" if info["normalized"] is None else \
            f"**{info['normalized']:.3f}** (return {info['return']:.1f}, {info['episodes']} episode" \
            f"{'s' * (info['episodes'] != 1)})"
        summary = (f"### {info['name']}\n\n- task: `{info['task']}`\n- prompt: {info['prompt']}\n- start states: "
                   f"{info['start_states']}\n- reward: {info['reward']}\n- updates: {info['steps']}/"
                   f"{info['steps_total']}\n- normalized score: {score}\n- world model: `{info['config'].get('run')}`")
        notes = []
        target = None
        try:
            frames, note = decode_behavior_target(run, self.load_model, rows=2)
            target = str(write_decoded(frames, self._file("target", ".mp4")))
            notes += [note] if note else []
        except USER_ERRORS as err:
            notes.append(f"No decoded target: {err}")
        rollout = None
        if info["video"] is not None:
            rollout = str(self._file("rollout", ".mp4"))
            shutil.copyfile(info["video"], rollout)
        else:
            notes.append("No rollout video yet (written at each evaluation).")
        curve = plot_curves(info["metrics"], CURVES, self._file("curve", ".png"), info["name"])
        if curve is None:
            notes.append("No learning curve yet (metrics.jsonl is empty).")
        return summary, target, rollout, (str(curve) if curve else None), " ".join(notes) or "Loaded."

    def tasks_for(self, model: Any) -> list[str]:
        """Task ids of the world model's domain (empty when the model cannot be read)."""
        from genrl.envs.registry import list_tasks

        try:
            return list_tasks(self.load_model(str(model).strip())[1]["domain"])
        except (*USER_ERRORS, AttributeError):
            return []

    @guarded(1)
    def start_behave(self, model: Any, task: Any, prompt: Any = "", data_free: bool = False, preset: str = "tiny",
                     steps: Any = 500, eval_episodes: Any = 1, name: Any = "") -> str:
        """Start (or resume) ``genrl behave`` in the background; returns a message.

        The run goes to ``new_runs_dir/NAME`` (default name: the task, plus ``_free`` for data-free starts); an
        existing run of that name with the same settings resumes from its checkpoint.
        """
        from genrl.envs.registry import PROMPTS

        model, task = clean_text(model, "model"), clean_text(task, "task")
        if not model:
            raise ValueError("pick a world model first")
        tasks = self.tasks_for(model)
        if not tasks:
            self.load_model(model)  # raises the reason
        if task not in tasks:
            raise ValueError(f"pick a task of the model's domain ({', '.join(tasks)})")
        text = clean_text(prompt)
        if not text and task not in PROMPTS:
            raise ValueError(f"task {task} has no default prompt: type one")
        try:
            steps, eval_episodes = int(steps), int(eval_episodes)
        except (TypeError, ValueError):
            raise ValueError("updates and evaluation episodes must be whole numbers") from None
        if steps < 1 or eval_episodes < 0:
            raise ValueError("updates must be >= 1 and evaluation episodes >= 0")
        name = clean_text(name, "run name") or (task + ("_free" if data_free else ""))
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", name):
            raise ValueError(f"run name {name!r}: use letters, digits, '_', '-' and '.' only")
        out = Path(self.new_runs_dir) / name
        if preset not in names(BehaviorConfig):
            raise ValueError(f"preset must be one of {', '.join(names(BehaviorConfig))}, not {preset!r}")
        args = [model, "--task", task, "--out", str(out), "--preset", preset, "--steps", str(steps),
                "--eval-every", "0", "--eval-episodes", str(eval_episodes),
                "--save-every", str(max(1, min(500, steps // 4))), "--log-every", str(max(1, min(50, steps // 20)))]
        args += (["--prompt", text] if text else []) + (["--data-free"] if data_free else []) + self.behave_args
        return self.job.start(args, out) + " — progress below; list the runs again when it is done."

    def job_status(self) -> str:
        """Markdown progress of the background job."""
        return self.job.status_markdown()

    def stop_job(self) -> str:
        """Stop the background job; returns a message."""
        return self.job.stop()

    # ------------------------------------------------------------------ compare tab
    @guarded(2)
    def compare_table(self, folder: Any) -> tuple[str, str]:
        """``genrl compare FOLDER``: ``(Markdown table, message)``."""
        from genrl.evaluation.compare import compare

        folder = clean_text(folder, "folder") or self.results_dir
        markdown, _, rows = compare([folder])
        n = sum(r.kind == "task" for r in rows)
        return markdown, f"{n} task{'s' * (n != 1)} with results under `{folder}`."


__all__ = ["BEHAVIOR_COLUMNS", "Dashboard", "ERROR_MARK", "clean_text", "error_message", "guarded"]
