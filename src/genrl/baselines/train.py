"""Training loop of the VLM-reward baselines: ``genrl baseline --algo iql --reward video --task walker_walk ...``.

Paper section 4.1 / appendix D: each (algorithm, reward kind, task) is trained from scratch on the whole dataset of
the task's domain, its steps relabelled with the prompt's VLM reward (:mod:`genrl.baselines.rewards`), and
evaluated in the real environment with the deterministic actor. The paper trains 500k gradient steps (batch 256)
on a GPU (~7 h on a V100) and evaluates 20 episodes; the CPU default here is 20k steps of the ``small`` preset
(~1 s per step on 2 busy cores, i.e. ~6 h; see ``benchmarks/bench_baselines.py``).

Outputs in ``out`` (the conventions of ``genrl pretrain``):

* ``config.json`` — the run: algorithm, reward kind, task, prompt, VLM ids, reward statistics, agent and training
  settings. Re-running with other essential settings into the same folder is refused.
* ``checkpoint/`` — safetensors weights + optimizers + RNG + step (every ``save_every`` updates, atomically);
  re-running the same command resumes from it. A NaN/Inf loss stops the run and keeps the last good checkpoint.
* ``metrics.jsonl`` + TensorBoard events: ``train/*`` losses every ``log_every`` updates, ``eval/*`` scores every
  ``eval_every`` updates and at the end (the names of every trainer, :mod:`genrl.utils.eval_metrics`).
* ``eval.json`` — the final :class:`~genrl.envs.rollout.EvalResult` (``to_dict()``) plus ``method`` (the
  algorithm), ``algo``, ``reward``, ``task``, ``prompt``, ``seed``, ``step``, ``embedder_id``: the schema read by
  :mod:`genrl.evaluation.compare`; ``eval.mp4`` — the first evaluation episode.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from genrl.baselines.algos import BaselineAgent, PixelPolicy
from genrl.baselines.config import BaselineConfig, make_config  # BaselineConfig: torch-free, read by the CLI
from genrl.baselines.replay import FrameStackReplay, to_torch
from genrl.baselines.rewards import check_kind, normalize_rewards, vlm_rewards
from genrl.data.dataset import Dataset, check_domain
from genrl.envs.registry import PROMPTS, split_task
from genrl.envs.rollout import EvalResult, eval_seed, evaluate, resolve_workers
from genrl.utils.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from genrl.utils.device import resolve_device
from genrl.utils.eval_metrics import eval_metrics
from genrl.utils.io import write_json, write_video
from genrl.utils.runtime import Hook, LoopConfig, Runtime
from genrl.vlm.base import Embedder

CKPT = "checkpoint"
EVAL_FILE = "eval.json"
VIDEO_FILE = "eval.mp4"


_ESSENTIAL = ("algo", "reward", "task", "prompt", "domain", "action_dim", "embedder_id", "reward_embedder_id",
              "agent", "reward_norm", "batch_size", "seed")


def load_agent(run_dir: str | Path) -> tuple[BaselineAgent, dict]:
    """The agent of a run's latest checkpoint (weights only, eval mode) and the run's ``config.json``.

    Raises:
        FileNotFoundError: no checkpoint. CheckpointError: corrupt or mismatching files.
    """
    run_dir = Path(run_dir)
    if not has_checkpoint(run_dir / CKPT):
        raise FileNotFoundError(f"no checkpoint in {run_dir / CKPT} (train one with `genrl baseline`)")
    cfg = json.loads((run_dir / "config.json").read_text())
    agent = BaselineAgent(make_config(cfg["algo"], "paper", **{k: v for k, v in cfg["agent"].items()
                                                              if k != "algo"}),
                          cfg["action_dim"], cfg["image_size"])
    load_checkpoint(run_dir / CKPT, {"agent": agent}, {}, restore_global_rng=False)
    return agent.eval(), cfg


def run_eval(agent: BaselineAgent, cfg: BaselineConfig, device: torch.device, video: bool) -> EvalResult:
    """Evaluate the deterministic actor on ``cfg.task`` (``cfg.eval_episodes`` episodes, seeds per ``cfg.seed``,
    stepped by ``cfg.eval_workers`` processes)."""
    return evaluate(PixelPolicy(agent, device), cfg.task, episodes=cfg.eval_episodes,
                    seed=eval_seed(cfg.seed), video_episodes=1 if video else 0,
                    max_steps=cfg.eval_max_steps, workers=cfg.eval_workers)


def prepare(cfg: BaselineConfig, embedder: Embedder, progress: bool = True) -> tuple[Dataset, dict, dict]:
    """Check the task/dataset, label rewards and build the run config.

    Returns:
        ``(dataset, {name: float32 [T]} rewards (normalized as cfg.reward_norm), run config dict)``.

    Raises:
        ValueError: unknown task/algo/kind/preset or a prompt the VLM refuses. DatasetError: dataset of another
            domain, missing video embeddings (run ``genrl embed``).
    """
    check_kind(cfg.reward)
    resolve_workers(cfg.eval_workers, max(1, cfg.eval_episodes))  # a bad value fails now, not after training
    domain, _ = split_task(cfg.task)
    ds = Dataset(cfg.dataset)
    check_domain(ds.domain, domain, f"dataset {ds.root}", against=f"task {cfg.task} is in")
    prompt = cfg.prompt if cfg.prompt is not None else PROMPTS.get(cfg.task)
    if not prompt:
        raise ValueError(f"task {cfg.task!r} has no default prompt; pass --prompt")
    agent_cfg = make_config(cfg.algo, cfg.preset, **cfg.overrides)
    raw, info = vlm_rewards(ds, embedder, prompt, cfg.reward, progress=progress, embedding_id=cfg.embedding_id)
    rewards, stats = normalize_rewards(raw, cfg.reward_norm)
    run_cfg = {"method": cfg.algo, "algo": cfg.algo, "reward": cfg.reward, "task": cfg.task, "prompt": prompt,
               "domain": ds.domain, "action_dim": ds.action_dim, "image_size": ds.image_size,
               "embedder_id": info["embedder_id"], "reward_embedder_id": info["reward_embedder_id"],
               "n_frames": info["n_frames"], "reward_norm": cfg.reward_norm, "reward_stats": stats,
               "batch_size": cfg.batch_size, "seed": cfg.seed, "agent": asdict(agent_cfg),
               "train": {**asdict(cfg), "prompt": prompt}}
    run_cfg["agent"]["encoder_strides"] = list(agent_cfg.encoder_strides)
    return ds, rewards, run_cfg


def train_baseline(cfg: BaselineConfig, embedder: Embedder, progress: bool = True) -> dict:
    """Train (or resume) a baseline, evaluate it, and return the contents of ``out/eval.json``.

    A finished run (checkpoint at ``cfg.steps`` and an ``eval.json`` of that step) is not re-evaluated: its
    ``eval.json`` is returned.

    Raises:
        see :func:`prepare`; ResumeMismatchError (a ``ValueError``): ``out`` holds a run with other essential
        settings; FloatingPointError: non-finite loss (the last good checkpoint is kept); CheckpointError: a damaged
        checkpoint; KeyboardInterrupt: re-raised after saving the updates done since the last checkpoint.
    """
    rt = Runtime(cfg.out, threads=cfg.threads, checkpoint=CKPT)
    out = rt.out
    device = resolve_device(cfg.device)
    ds, rewards, run_cfg = prepare(cfg, embedder, progress)
    rt.check_resume(run_cfg, _ESSENTIAL)
    rt.write_config(run_cfg)
    rt.seed(cfg.seed)
    agent_cfg = make_config(cfg.algo, cfg.preset, **cfg.overrides)
    agent = BaselineAgent(agent_cfg, ds.action_dim, ds.image_size).to(device)
    opts = agent.make_optimizers()
    rng = np.random.default_rng(cfg.seed)  # the replay's sampling generator, checkpointed
    step = 0
    if rt.has_checkpoint():
        step = int(load_checkpoint(rt.ckpt, {"agent": agent}, opts, rng=rng)["step"])
    if step >= cfg.steps and (out / EVAL_FILE).is_file():
        done = json.loads((out / EVAL_FILE).read_text())
        if done.get("step") == step:
            return done
    replay = FrameStackReplay.from_dataset(ds, rewards, agent_cfg.frame_stack, seed=cfg.seed, progress=progress)
    replay.rng = rng
    final: list[EvalResult] = []

    def save(at: int) -> None:
        save_checkpoint(rt.ckpt, {"agent": agent}, opts, at, run_cfg, rng=replay.rng)

    def evaluate_now(at: int, video: bool) -> EvalResult:
        result = run_eval(agent, cfg, device, video=video)
        rt.logger.log(at, eval_metrics(result), prefix="eval")
        return result

    agent.train()
    loop = LoopConfig(steps=cfg.steps, log_every=cfg.log_every, save_every=cfg.save_every,
                      what=f"baseline {cfg.algo}", desc=f"{cfg.algo}-{cfg.reward}", progress=progress)
    rt.run(loop, lambda at, batch: agent.update(batch, opts, at),
           data=lambda at: to_torch(replay.sample(cfg.batch_size), device), save=save, start=step,
           postfix=lambda last: {"critic": f"{last['critic_loss']:.3g}", "q": f"{last['q_mean']:.3g}"},
           after_save=[Hook(lambda at: evaluate_now(at, video=False), every=cfg.eval_every, final=False)],
           finish=lambda at: final.append(evaluate_now(at, video=True)))  # the final evaluation, with a video
    result = final[0]
    if result.frames is not None:
        write_video(out / VIDEO_FILE, result.frames, fps=20, scale=2)
    record = {**result.to_dict(), "method": cfg.algo, "algo": cfg.algo, "reward": cfg.reward, "task": cfg.task,
              "prompt": run_cfg["prompt"], "seed": cfg.seed, "step": rt.step, "embedder_id": run_cfg["embedder_id"],
              "reward_embedder_id": run_cfg["reward_embedder_id"], "dataset": str(ds.root)}
    write_json(out / EVAL_FILE, record)
    return record


__all__ = ["BaselineConfig", "train_baseline", "prepare", "load_agent", "run_eval", "EVAL_FILE", "VIDEO_FILE"]
