"""What the dashboard (``genrl app``) reads from disk, without gradio: run folders, behavior runs and nearest clips.

* :func:`run_kind` tells a pre-training run, a shipped model, a behavior run and a plain folder apart;
* :func:`find_behavior_runs` / :func:`read_behavior` list and summarise ``genrl behave`` run folders (prompt, steps,
  normalized score, latest rollout video);
* :func:`decode_behavior_target` decodes the target latent trajectory cached in a behavior checkpoint (exactly the
  target the actor learned against, no VLM needed);
* :class:`ClipBank` finds the dataset clips nearest (pixel MSE, 4x pooled frames) to a decoded rollout.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

BEHAVIOR_KIND = "genrl-behavior"
# folders never searched for behavior runs (they hold checkpoints, data or media, not runs)
_SKIP_DIRS = {"checkpoint", "checkpoint.old", "episodes", "embeddings", "videos", "evals", "snapshots", "reports",
              "eval", ".git", "__pycache__"}


def _read_config(folder: Path) -> dict | None:
    """``folder/config.json`` as a dict, or None when absent or unreadable."""
    try:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return cfg if isinstance(cfg, dict) else None


def run_kind(path: str | os.PathLike) -> str:
    """What ``path`` is: ``"shipped"`` (a shipped model's name), ``"pretrain"`` (a pre-training run folder),
    ``"behavior"`` (a ``genrl behave`` run folder), ``"folder"`` (any other folder) or ``"missing"``."""
    from genrl.mfwm.shipped import is_shipped_name

    if is_shipped_name(path):
        return "shipped"
    folder = Path(path)
    if not folder.is_dir():
        return "missing"
    cfg = _read_config(folder)
    if cfg is not None and cfg.get("kind") == BEHAVIOR_KIND:
        return "behavior"
    if cfg is not None and "pretrain" in cfg and "world_model" in cfg:
        return "pretrain"
    return "folder"


def find_behavior_runs(folder: str | os.PathLike, max_depth: int = 4) -> list[Path]:
    """Behavior run folders at or below ``folder`` (at most ``max_depth`` levels down), sorted by path.

    Raises:
        FileNotFoundError: ``folder`` is not an existing folder.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        here = Path(dirpath)
        depth = len(here.relative_to(root).parts)
        if run_kind(here) == "behavior":
            found.append(here)
            dirnames.clear()  # a run folder holds no other runs
            continue
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        if depth >= max_depth:
            dirnames.clear()
    return sorted(found)


def _steps_done(run: Path) -> int:
    """Updates of the run's latest checkpoint (0 when it has none yet)."""
    for name in ("checkpoint", "checkpoint.old"):
        try:
            return int(json.loads((run / name / "state.json").read_text())["step"])
        except (OSError, KeyError, ValueError, TypeError):
            continue
    return 0


def _latest(paths: list[Path]) -> Path | None:
    return sorted(paths)[-1] if paths else None


def read_behavior(run: str | os.PathLike) -> dict:
    """Summary of one behavior run folder.

    Returns:
        ``{"path", "name", "task", "prompt" (text, or the video prompt's file name), "start_states" ("offline" /
        "data-free"), "reward", "steps", "steps_total", "normalized" (mean normalized score of the final
        ``eval.json``, else of the latest ``evals/step_N.json``, else None), "return", "episodes", "eval_step",
        "video" (latest ``videos/eval_N.mp4`` or None), "metrics" (the ``metrics.jsonl`` rows)}``.

    Raises:
        ValueError: ``run`` is not a behavior run folder (no ``config.json`` of kind ``genrl-behavior``).
    """
    from genrl.app.report import _read_jsonl

    run = Path(run)
    cfg = _read_config(run) if run.is_dir() else None
    if cfg is None or cfg.get("kind") != BEHAVIOR_KIND:
        raise ValueError(f"{run} is not a behavior run (no config.json written by `genrl behave`)")
    final = run / "eval.json"
    ev_path = final if final.is_file() else _latest(list((run / "evals").glob("step_*.json")))
    ev: dict = {}
    if ev_path is not None:
        try:
            ev = json.loads(ev_path.read_text())
        except (OSError, json.JSONDecodeError):
            ev = {}
    prompt = cfg.get("prompt") or (f"video: {Path(cfg['video']).name}" if cfg.get("video") else "")
    return {"path": str(run), "name": run.name, "task": cfg.get("task", "?"), "prompt": prompt,
            "start_states": "data-free" if cfg.get("data_free") else "offline", "reward": cfg.get("reward", "genrl"),
            "steps": _steps_done(run), "steps_total": (cfg.get("behave") or {}).get("steps"),
            "normalized": ev.get("mean_normalized"), "return": ev.get("mean_return"),
            "episodes": ev.get("episodes"), "eval_step": ev.get("step", ev.get("steps")),
            "video": _latest(list((run / "videos").glob("eval_*.mp4"))), "metrics": _read_jsonl(run / "metrics.jsonl"),
            "config": cfg}


def decode_behavior_target(run: str | os.PathLike, load_model, rows: int = 4) -> tuple[np.ndarray, str]:
    """Decoded frames of the target latent trajectory cached in a behavior run's checkpoint.

    Args:
        run: behavior run folder (with a checkpoint).
        load_model: ``callable(pretrain run) -> (MFWM, config)``, e.g. a cached
            :func:`genrl.mfwm.pretrain.load_pretrained`.
        rows: target rows decoded (side by side).

    Returns:
        ``(frames uint8 [rows, H + 1, 64, 64, 3], note)``; the note is empty, or says that the world model changed
        since the behavior was trained (the target is then decoded with the current weights).

    Raises:
        ValueError: not a behavior run; FileNotFoundError: no checkpoint yet, or its pre-training run is gone;
        CheckpointError: damaged checkpoint.
    """
    from genrl.behavior.config import from_dict
    from genrl.behavior.policy import CKPT, new_target, world_model_fingerprint
    from genrl.utils.checkpoint import has_checkpoint, load_checkpoint

    run = Path(run)
    cfg = read_behavior(run)["config"]
    if not has_checkpoint(run / CKPT):
        raise FileNotFoundError(f"{run} has no checkpoint yet (its target is stored with the first save)")
    model, _ = load_model(cfg["run"])
    target = new_target(from_dict(cfg["behavior"]), model.wm)
    load_checkpoint(run / CKPT, {"target": target}, {}, strict=False, restore_global_rng=False)
    note = "" if world_model_fingerprint(cfg["run"]) == cfg.get("world_model") else \
        f"the world model in {cfg['run']} changed since this behavior was trained; decoded with its current weights"
    with torch.no_grad():
        frames = model.decode_states({"stoch": target.stoch[:rows].to(model.wm.device)}).cpu().numpy()
    return frames, note


def _pool(frames: np.ndarray, factor: int = 4) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` -> float32 ``[T, (H/f)*(W/f)*3]`` in [0, 1], mean-pooled ``factor`` x ``factor``."""
    t, h, w, c = frames.shape
    x = torch.from_numpy(np.ascontiguousarray(frames)).float().div_(255.0)
    x = x.reshape(t, h // factor, factor, w // factor, factor, c).mean(dim=(2, 4))
    return x.reshape(t, -1)


class ClipBank:
    """Episodes of a dataset, pooled 4x, searched for the clips nearest to a decoded rollout.

    Args:
        dataset: dataset folder (``genrl collect``). max_episodes: episodes kept (evenly spread over the sorted
            names; all when fewer).

    Raises:
        FileNotFoundError / DatasetError: no such dataset, or an empty one.
    """

    def __init__(self, dataset: str | os.PathLike, max_episodes: int = 40):
        from genrl.data.dataset import Dataset, DatasetError

        self.ds = Dataset(dataset)
        names = self.ds.names()
        if not names:
            raise DatasetError(f"dataset {dataset} has no episodes")
        idx = np.unique(np.linspace(0, len(names) - 1, min(max_episodes, len(names))).round().astype(int))
        self.names = [names[i] for i in idx]
        self.pooled = [_pool(self.ds.load(n, {"observation"})["observation"].transpose(0, 2, 3, 1))
                       for n in self.names]

    def nearest(self, frames: np.ndarray, k: int = 3) -> list[dict]:
        """The ``k`` nearest clips (at most one per episode) to ``frames`` uint8 ``[T, 64, 64, 3]``.

        Returns:
            Up to ``k`` dicts ``{"episode", "start", "mse", "frames" uint8 [T, 64, 64, 3]}``, nearest first
            (``mse``: per pooled pixel, [0, 1] units). Episodes shorter than ``T`` are skipped.
        """
        query = _pool(frames)
        horizon = len(query)
        q2 = float((query ** 2).sum())
        best = []
        for name, ep in zip(self.names, self.pooled):
            windows = len(ep) - horizon + 1
            if windows < 1:
                continue
            gram = query @ ep.T  # [T, T_ep]
            cross = sum(gram[t, t:t + windows] for t in range(horizon))
            e2 = torch.cat([torch.zeros(1), (ep ** 2).sum(1).cumsum(0)])
            dist = q2 + (e2[horizon:horizon + windows] - e2[:windows]) - 2 * cross
            start = int(dist.argmin())
            best.append((float(dist[start]) / query.numel(), name, start))
        out = []
        for mse, name, start in sorted(best)[:k]:
            obs = self.ds.load(name, {"observation"})["observation"][start:start + horizon]
            out.append({"episode": name, "start": start, "mse": max(mse, 0.0), "frames": obs.transpose(0, 2, 3, 1)})
        return out


__all__ = ["BEHAVIOR_KIND", "ClipBank", "decode_behavior_target", "find_behavior_runs", "read_behavior", "run_kind"]
