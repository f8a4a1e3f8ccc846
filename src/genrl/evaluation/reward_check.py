"""Does a reward signal rank real behavior the way the task's true reward does? ``genrl reward-check``.

A behavior can only be as good as the reward it optimizes. This check scores the *real* dataset trajectories with
each prompt-derived reward and compares the ranking with the simulator's task reward, which separates the
components when a behavior scores low (issue "behavior": "say what limits it with evidence"):

* ``genrl``: the GenRL reward of the task's prompt (:class:`genrl.behavior.reward.LatentReward`: the prompt's
  connector target, decoder first-layer projection, ``max_cosine`` or ``cosine`` score, best-matching temporal
  alignment over ``b`` steps) applied to the world model's posterior states of the real frames, exactly what the
  actor maximizes in imagination;
* ``vlm_video`` / ``vlm_image``: the baselines' rewards (paper section 4.1; :mod:`genrl.baselines.rewards`), the
  cosine of the prompt's text embedding with the stored clip / frame embeddings (``vlm_image`` only when the
  dataset holds image embeddings, written by a ``--reward image`` baseline run).

Each episode is cut into non-overlapping windows of ``horizon + 1`` steps (the length of one imagined trajectory);
every signal and the true reward are averaged over each window. Per task and signal:

* ``spearman``: rank correlation between the signal and the true reward over all windows (1: same order);
* ``top10``: ``(true(top 10 % by signal) - true(all)) / (true(top 10 % by true reward) - true(all))``, the mean true
  reward of the windows the signal ranks highest, on a scale where 0 is a random pick and 1 the best possible.

If the GenRL signal ranks real windows well but the behavior scores low, the limit is the optimization (budget,
imagination accuracy); if the VLM signal ranks well and the GenRL one does not, the limit is the world model,
connector or aligner; if neither does, the VLM.

Usage::

    genrl reward-check runs/walker_mfwm --dataset runs/data/walker --tasks walker_stand walker_walk --out rc.json
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from genrl.baselines.rewards import image_embedder_id, label_rewards
from genrl.behavior.reward import LatentReward, build_target
from genrl.behavior.starts import episode_posterior_modes
from genrl.data.dataset import Dataset, DatasetError
from genrl.data.split import split_names
from genrl.envs.registry import PROMPTS
from genrl.mfwm.decode import matching_embedder, prompt_embedding
from genrl.mfwm.model import MFWM
from genrl.mfwm.pretrain import load_pretrained
from genrl.utils.stats import spearman, top_fraction_score
from genrl.vlm.base import Embedder

SIGNALS = ("genrl", "vlm_video", "vlm_image")


@dataclass
class RewardCheckConfig:
    """Settings of :func:`reward_check`.

    Attributes:
        run: pre-training run folder (its latest checkpoint is used).
        dataset: dataset folder (default: the run's own).
        tasks: task ids such as ``"walker_stand"`` (default: every task of the domain that has a Table 3 prompt and a
            true reward stored in the episodes' ``task_rewards``).
        episodes: ``"heldout"`` (the episodes the run never trained on) or ``"all"``.
        horizon: imagination horizon ``H``; windows have ``H + 1`` steps (behavior default 16).
        score: ``"max_cosine"`` (default, as ``genrl behave``) or ``"cosine"``.
        align_b: alignment window ``b`` of the GenRL reward (behavior default 8).
        rows: target trajectories per prompt (each window uses row ``window % rows``, as imagined starts do).
        seed: seed of the target's sampled initial states.
    """

    run: str
    dataset: str | None = None
    tasks: tuple[str, ...] = ()
    episodes: str = "heldout"
    horizon: int = 16
    score: str = "max_cosine"
    align_b: int = 8
    rows: int = 16
    seed: int = 0


def windows(length: int, size: int) -> np.ndarray:
    """Start indices of the non-overlapping ``size``-step windows of an episode of ``length`` steps."""
    return np.arange(0, length - size + 1, size)


@torch.no_grad()
def posterior_windows(model: MFWM, ds: Dataset, names: Sequence[str], size: int) -> tuple[torch.Tensor, list]:
    """Posterior ``z`` (modes) of every ``size``-step window of the episodes.

    Returns:
        ``(stoch uint8 [W, size, S, D] one-hot, [(episode, start), ...])``; the world model filters each whole
        episode from its first frame, so a window's states carry the episode's history.

    Raises:
        DatasetError: no episode is long enough for one window.
    """
    out, index = [], []
    for name in names:
        stoch = episode_posterior_modes(model.wm, ds.load(name, {"observation", "action", "is_first"}))
        for s in windows(len(stoch), size):
            out.append(stoch[s:s + size])
            index.append((name, int(s)))
    if not out:
        raise DatasetError(f"{ds.root}: no episode of at least {size} steps among {len(names)} episodes")
    return torch.stack(out), index


@torch.no_grad()
def genrl_window_signal(model: MFWM, reward: LatentReward, stoch: torch.Tensor) -> np.ndarray:
    """Mean GenRL reward of each window ``stoch [W, L, S, D]`` (one-hot, any dtype) -> float64 ``[W]``; window ``w``
    is compared with target row ``w % rows`` with best-matching alignment, as imagined trajectories are."""
    chunk = reward.target_proj.shape[0] * 32  # a multiple of the rows keeps window w on row w % rows
    values = []
    for i in range(0, len(stoch), chunk):
        r, _ = reward(stoch[i:i + chunk].to(model.wm.device, torch.float32))
        values.append(r.mean(1).double().cpu().numpy())
    return np.concatenate(values)


def default_tasks(domain: str, task_names: Sequence[str]) -> list[str]:
    """Task ids of ``domain`` with a Table 3 prompt whose true reward the episodes store."""
    return [f"{domain}_{t}" for t in task_names if f"{domain}_{t}" in PROMPTS]


def reward_check(cfg: RewardCheckConfig, embedder: Embedder) -> dict:
    """Rank real dataset windows with each reward signal and compare with the true task reward (module docstring).

    Returns:
        ``{"run", "step", "dataset", "episodes", "windows", "window_steps", "score", "align_b",
        "tasks": {task: {"prompt", "true_mean", signal: {"spearman", "top10", "mean"} | None}}}``.

    Raises:
        FileNotFoundError: no checkpoint in ``cfg.run``. ValueError: ``embedder`` is not the run's VLM, an unknown
        task or ``episodes`` value, or a task of another domain. DatasetError: no held-out episodes, episodes
        without ``task_rewards``, or missing video embeddings.
    """
    if cfg.episodes not in ("heldout", "all"):
        raise ValueError(f"episodes must be 'heldout' or 'all', got {cfg.episodes!r}")
    model, mcfg = load_pretrained(cfg.run)
    embedder = matching_embedder(mcfg, embedder)
    ds = Dataset(cfg.dataset or mcfg["pretrain"]["dataset"])
    ds.require_domain(mcfg["domain"], "the world model was trained on")
    names = ds.names()
    if cfg.episodes == "heldout":
        _, names = split_names(names, mcfg["pretrain"].get("holdout", 0.0))
        if not names:
            raise DatasetError(f"{cfg.run} was trained on every episode of {ds.root}: use episodes='all'")
    first = ds.load(names[0], {"task_names"})
    if "task_names" not in first:
        raise DatasetError(f"{ds.episode_path(names[0])}: no task_rewards/task_names (not collected by genrl?)")
    task_names = [str(t) for t in first["task_names"]]
    tasks = list(cfg.tasks) or default_tasks(mcfg["domain"], task_names)
    for task in tasks:
        if task not in PROMPTS:
            raise ValueError(f"unknown task {task!r} (no Table 3 prompt); e.g. {sorted(PROMPTS)[:4]}")
        if not task.startswith(mcfg["domain"] + "_") or task.split("_", 1)[1] not in task_names:
            raise ValueError(f"task {task!r}: the episodes of {ds.root} store the true rewards of "
                             f"{mcfg['domain']}_{{{', '.join(task_names)}}} only")
    size = cfg.horizon + 1
    stoch, index = posterior_windows(model, ds, names, size)
    true_steps = {n: ds.load(n, {"task_rewards", "task_names"})["task_rewards"] for n in names}
    image_id = image_embedder_id(embedder)
    has_image = image_id != embedder.id and all(ds.has_embedding(image_id, n) for n in names)
    result: dict = {"run": str(cfg.run), "step": mcfg["step"], "dataset": str(ds.root), "episodes": len(names),
                    "windows": len(index), "window_steps": size, "score": cfg.score, "align_b": cfg.align_b,
                    "tasks": {}}
    for task in tasks:
        prompt = PROMPTS[task]
        col = task_names.index(task.split("_", 1)[1])
        true = np.asarray([true_steps[n][s:s + size, col].mean() for n, s in index], np.float64)
        emb, _ = prompt_embedding(embedder, prompt)
        target = build_target(model, emb, cfg.rows, cfg.horizon, use_aligner=True, seed=cfg.seed)
        signals = {"genrl": genrl_window_signal(model, LatentReward(model.wm, target, cfg.score, cfg.align_b), stoch)}
        text = emb[0].float().cpu().numpy()
        for key, emb_id in (("vlm_video", embedder.id), ("vlm_image", image_id if has_image else None)):
            if emb_id is None:
                signals[key] = None
                continue
            per_step = label_rewards(ds, emb_id, text, names)
            signals[key] = np.asarray([per_step[n][s:s + size].mean() for n, s in index], np.float64)
        row = {"prompt": prompt, "true_mean": float(true.mean())}
        for key in SIGNALS:
            sig = signals[key]
            row[key] = None if sig is None else {"spearman": spearman(sig, true), "top10": top_fraction_score(sig, true),
                                                 "mean": float(sig.mean())}
        result["tasks"][task] = row
    return result


def to_markdown(result: dict) -> str:
    """The check as a Markdown table: one row per task, Spearman and top-10 % score per signal."""
    head = "| task | prompt | " + " | ".join(f"{s} spearman | {s} top10" for s in SIGNALS) + " |"
    lines = [head, "|" + "---|" * (2 + 2 * len(SIGNALS))]
    for task, row in result["tasks"].items():
        cells = []
        for s in SIGNALS:
            cells += ["n/a", "n/a"] if row[s] is None else [f"{row[s]['spearman']:.2f}", f"{row[s]['top10']:.2f}"]
        lines.append(f"| {task} | {row['prompt']} | " + " | ".join(cells) + " |")
    lines.append(f"\n{result['windows']} windows of {result['window_steps']} steps from {result['episodes']} "
                 f"episodes of {result['dataset']}; world model step {result['step']}; GenRL score "
                 f"{result['score']}, alignment b = {result['align_b']}.")
    return "\n".join(lines) + "\n"


__all__ = ["SIGNALS", "RewardCheckConfig", "windows",
           "posterior_windows", "genrl_window_signal", "default_tasks", "reward_check", "to_markdown"]
