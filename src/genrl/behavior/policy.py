"""Behavior runs as policies: reload (:func:`load_policy`), evaluate in the real environment (:func:`eval_policy`,
``genrl eval``), and the helpers the trainer shares with them (official ``train.py`` ``Workspace.eval``).

A behavior run stores only the actor-critic; the world model is read from the pre-training run folder named in its
``config.json``, together with a fingerprint of the weights it was trained against (the pre-training checkpoint's
step and the sha256 of its ``mfwm.safetensors``). A pre-training run that was continued afterwards has other weights,
whose latent space the actor does not know: loading then fails with a clear message instead of acting on garbage.

Usage::

    policy, cfg = load_policy("runs/walker_stand")           # WorldModelPolicy, the run's config.json
    result = eval_policy("runs/walker_stand", episodes=10, video="stand.mp4")
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

from genrl.behavior.actor_critic import ActorCritic
from genrl.behavior.agent import WorldModelPolicy
from genrl.behavior.config import BehaviorConfig, from_dict
from genrl.behavior.oracle import OracleRewardHead
from genrl.behavior.reward import PromptTarget
from genrl.envs.registry import split_task
from genrl.envs.rollout import eval_seed, evaluate
from genrl.mfwm.model import MFWM
from genrl.mfwm.pretrain import CKPT as MFWM_CKPT
from genrl.mfwm.pretrain import load_pretrained
from genrl.mfwm.shipped import resolve_run
from genrl.utils.checkpoint import has_checkpoint, load_checkpoint
from genrl.utils.device import resolve_device
from genrl.utils.eval_metrics import eval_metrics
from genrl.utils.io import write_json, write_video
from genrl.utils.metrics import MetricsLogger
from genrl.worldmodel.model import WorldModel

CKPT = "checkpoint"
VIDEO_FPS = 25.0


def world_model_fingerprint(run: str | Path) -> dict:
    """``{"step": int, "sha256": str}`` of a pre-training run's current checkpoint (from its ``state.json``).

    Args:
        run: a pre-training run folder or a shipped model's name.

    Raises:
        FileNotFoundError: no such folder or shipped model, or no checkpoint in it.
    """
    ckpt = resolve_run(run) / MFWM_CKPT
    state_file = ckpt / "state.json"
    if not state_file.is_file():  # an interrupted save leaves the complete previous one at checkpoint.old
        state_file = ckpt.with_name(ckpt.name + ".old") / "state.json"
    if not state_file.is_file():
        raise FileNotFoundError(f"no checkpoint in {ckpt} (train one with `genrl pretrain`)")
    state = json.loads(state_file.read_text())
    return {"step": int(state["step"]), "sha256": state["files"]["mfwm.safetensors"]["sha256"]}


def new_target(cfg: BehaviorConfig, wm: WorldModel) -> PromptTarget:
    """An empty :class:`PromptTarget` of the right shape (filled by a checkpoint or :func:`build_target`)."""
    c = wm.cfg
    return PromptTarget(cfg.starts, cfg.horizon + 1, c.stoch, c.discrete, c.deter)


class BehaviorRun(NamedTuple):
    """A reloaded behavior run (:func:`load_behavior`).

    Attributes:
        model: the frozen pre-trained MFWM the behavior was trained on (eval mode, no gradients).
        actor_critic: the trained :class:`ActorCritic` (eval mode).
        config: the run's ``config.json`` (task, prompt, reward, behavior config, world-model fingerprint).
        target: the run's cached prompt target (:class:`PromptTarget`: ``starts x (horizon + 1)`` latent rows);
            what :class:`genrl.behavior.reward.LatentReward` scores imagined states against. Empty (zeros) for an
            oracle-reward run, which never builds one.
    """

    model: MFWM
    actor_critic: ActorCritic
    config: dict
    target: PromptTarget


def load_behavior(run_dir: str | Path, device: str | None = None) -> BehaviorRun:
    """The frozen MFWM, the trained actor-critic, the ``config.json`` and the prompt target of a behavior run.

    Raises:
        FileNotFoundError: ``run_dir`` has no ``config.json``/checkpoint, or its pre-training run is gone.
        ValueError: the pre-training run's weights changed since the behavior was trained.
        CheckpointError: damaged checkpoint.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file() or not has_checkpoint(run_dir / CKPT):
        raise FileNotFoundError(f"{run_dir} is not a behavior run (no config.json or checkpoint/; train one with "
                                "`genrl behave`)")
    cfg = json.loads((run_dir / "config.json").read_text())
    if cfg.get("kind") != "genrl-behavior":
        raise ValueError(f"{run_dir / 'config.json'} is not a behavior run's config (kind={cfg.get('kind')!r})")
    now = world_model_fingerprint(cfg["run"])
    if now != cfg["world_model"]:
        raise ValueError(f"the world model in {cfg['run']} changed since {run_dir} was trained (checkpoint step "
                         f"{cfg['world_model']['step']} -> {now['step']}); the policy only fits the weights it was "
                         "trained with: re-train the behavior or restore that checkpoint")
    model, _ = load_pretrained(cfg["run"])
    dev = resolve_device(device)
    model.to(dev).requires_grad_(False)
    bcfg = from_dict(cfg["behavior"])
    ac = ActorCritic(bcfg, model.wm.feat_dim, model.wm.action_dim).to(dev)
    modules = {"behavior": ac, "target": new_target(bcfg, model.wm).to(dev)}
    if cfg.get("reward") == "oracle":  # stored with the run; not needed to act
        modules["oracle"] = OracleRewardHead(model.wm.cfg.stoch, model.wm.cfg.discrete).to(dev)
    load_checkpoint(run_dir / CKPT, modules, {}, restore_global_rng=False)
    ac.eval()
    return BehaviorRun(model, ac, cfg, modules["target"])


def load_policy(run_dir: str | Path, device: str | None = None) -> tuple[WorldModelPolicy, dict]:
    """A behavior run as a pixel policy acting with the actor's mean (``tanh(mu)``), and the run's config.

    Raises: as :func:`load_behavior`.
    """
    model, ac, cfg, _ = load_behavior(run_dir, device)
    return WorldModelPolicy(model.wm, ac.actor.mode, device=model.wm.device), cfg


def _write_eval(result, out_json: Path, video: Path | None, extra: dict) -> dict:
    doc = {**extra, **result.to_dict()}
    if video is not None and result.frames is not None:
        doc["video"] = str(write_video(video, result.frames, fps=VIDEO_FPS))
    write_json(out_json, doc)
    return doc


def evaluate_and_log(model: MFWM, ac: ActorCritic, task: str, step: int, out: Path, logger: MetricsLogger,
                     episodes: int, seed: int, workers: int | str = 1) -> dict:
    """Training-time evaluation: ``episodes`` real episodes with the actor's mean (stepped by ``workers``
    processes, :func:`genrl.envs.rollout.evaluate`: 1, k or ``"auto"``; the same numbers either way); writes
    ``out/evals/step_<N>.json`` and ``out/videos/eval_<N>.mp4``, logs the evaluation numbers of every trainer
    (:func:`genrl.utils.eval_metrics.eval_metrics`: ``eval/return_mean``, ``eval/return_std``,
    ``eval/normalized_mean``, ``eval/normalized_stderr``, ``eval/seconds``) and the video. An evaluation whose JSON
    already exists (a resumed run) is read back instead of re-run."""
    path = out / "evals" / f"step_{step:07d}.json"
    if path.is_file():
        return json.loads(path.read_text())
    was_training = ac.training
    ac.eval()
    policy = WorldModelPolicy(model.wm, ac.actor.mode, device=model.wm.device)
    result = evaluate(policy, task, episodes=episodes, seed=eval_seed(seed), video_episodes=1, workers=workers)
    ac.train(was_training)
    doc = _write_eval(result, path, out / "videos" / f"eval_{step:07d}.mp4", {"step": step})
    logger.log(step, eval_metrics(result), prefix="eval")
    if result.frames is not None:
        logger.log_video(step, "eval/policy", result.frames, fps=VIDEO_FPS)
    return doc


def eval_policy(run_dir: str | Path, task: str | None = None, episodes: int = 10, seed: int = 0,
                video: str | Path | None = None, out: str | Path | None = None, device: str | None = None,
                progress: bool = False, posterior_sample: bool = False, workers: int | str = 1) -> dict:
    """Evaluate a behavior run in the real environment (``genrl eval``).

    Args:
        run_dir: behavior run folder. task: task id (default: the run's task; must be of the same domain).
        episodes: episodes (env seeds ``eval_seed(seed) + i``, :func:`genrl.envs.rollout.eval_seed`).
            video: write the first episode here (``.mp4``/``.gif``). out: JSON report path (default
            ``run_dir/eval_<task>_seed<seed>.json``, with ``_sample`` before ``.json`` for posterior samples).
        posterior_sample: filter the observations with posterior *samples* (the official evaluation) instead of
            modes (the default; :class:`genrl.behavior.agent.WorldModelPolicy`).
        workers: processes that step and render the episodes (:func:`genrl.envs.rollout.evaluate`): 1 (in this
            process), k, or ``"auto"`` (min(episodes, CPUs)); the results do not depend on it.

    Returns:
        The report: :class:`genrl.envs.rollout.EvalResult` fields (raw ``returns`` and ``normalized`` scores,
        means, ...) plus ``policy``, ``prompt``, ``train_step``, ``posterior_sample`` and ``json`` (the report's path).

    Raises:
        ValueError: a task of another domain than the policy's, bad ``episodes``; others as :func:`load_behavior`.
    """
    model, ac, cfg, _ = load_behavior(run_dir, device)
    task = task or cfg["task"]
    domain, _ = split_task(task)
    if domain != cfg["domain"]:
        raise ValueError(f"task {task!r} is a {domain} task but the policy in {run_dir} acts in the {cfg['domain']} "
                         "domain")
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    policy = WorldModelPolicy(model.wm, ac.actor.mode, device=model.wm.device, sample=posterior_sample)
    result = evaluate(policy, task, episodes=episodes, seed=eval_seed(seed), video_episodes=1 if video else 0,
                      progress=progress, workers=workers)
    suffix = "_sample" if posterior_sample else ""
    out_json = Path(out) if out else Path(run_dir) / f"eval_{task}_seed{seed}{suffix}.json"
    step = json.loads((Path(run_dir) / CKPT / "state.json").read_text())["step"] if (
        Path(run_dir) / CKPT / "state.json").is_file() else None
    doc = _write_eval(result, out_json, Path(video) if video else None,
                      {"policy": str(run_dir), "prompt": cfg.get("prompt") or cfg.get("video"), "train_step": step,
                       "posterior_sample": posterior_sample})
    doc["json"] = str(out_json)
    return doc


__all__ = ["CKPT", "world_model_fingerprint", "new_target", "BehaviorRun", "load_behavior", "load_policy",
           "evaluate_and_log", "eval_policy"]
