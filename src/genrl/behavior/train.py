"""Behavior learning in imagination: ``genrl behave RUN --task walker_stand`` (paper 3.2, 4.1, 4.2;
official ``train.py`` ``Workspace.train``, ``agent/dreamer.py`` ``ActorCritic``, ``tools/genrl_utils.py`` rewards).

A pre-trained MFWM (``genrl pretrain``) is loaded and frozen; the prompt (default: the task's Table 3 prompt, or a
video) is turned into a target latent sequence once; an actor-critic is trained in imagination from dataset
posterior states (offline) or synthetic states (``data_free``) to maximise the GenRL reward; every ``eval_every``
updates and at the end the actor's mean acts in the real environment from pixels through the world model. Outputs
in ``out``:

* ``config.json``: the run (MFWM run folder and its weights' fingerprint, task, prompt, behavior config...).
* ``checkpoint/``: actor, critic, slow critic, return normaliser, cached target, optimizers, RNG, step (every
  ``save_every`` updates, atomically); re-running the same command resumes from it.
* ``metrics.jsonl`` + TensorBoard (``train/...`` every ``log_every`` updates, ``eval/...``); a progress bar.
* ``evals/step_<N>.json`` (:class:`genrl.envs.rollout.EvalResult` as JSON) and ``videos/eval_<N>.mp4``.

The run skeleton (resume check, bar, logger, NaN/Inf guard, cadence) is :class:`genrl.utils.runtime.Runtime`: a
NaN/Inf loss stops training with a message and the last good checkpoint is kept; Ctrl-C saves a checkpoint of the
updates done and stops. Policies are reloaded with
:func:`genrl.behavior.policy.load_policy` (``genrl eval``).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

# BehaveConfig lives in the torch-free config module (the CLI builds `genrl behave`'s options from it)
from genrl.behavior.actor_critic import ActorCritic
from genrl.behavior.config import REWARDS, BehaveConfig, resolve_behavior, to_dict
from genrl.behavior.policy import (CKPT, evaluate_and_log, load_policy, new_target,
                                   world_model_fingerprint)
from genrl.behavior.oracle import OracleReward, OracleRewardHead, fit_oracle
from genrl.behavior.reward import LatentReward, build_target
from genrl.behavior.starts import data_free_starts, offline_starts
from genrl.data.dataset import Dataset
from genrl.data.sampler import SequenceSampler
from genrl.envs.registry import PROMPTS, split_task
from genrl.envs.rollout import resolve_workers
from genrl.mfwm.pretrain import load_pretrained
from genrl.mfwm.shipped import is_shipped_name
from genrl.utils.checkpoint import load_checkpoint, save_checkpoint
from genrl.utils.device import resolve_device
from genrl.utils.io import write_json
from genrl.utils.runtime import Hook, LoopConfig, Runtime

# config.json keys that must not change when a run is resumed
RESUME_KEYS = ("task", "run", "world_model", "prompt", "video", "use_aligner", "data_free", "dataset", "behavior",
               "reward")


def _check(cfg: BehaveConfig) -> None:
    if cfg.prompt is not None and cfg.video is not None:
        raise ValueError("give either a text prompt (prompt) or a video prompt (video), not both")
    if cfg.prompt is not None and not cfg.prompt.strip():
        raise ValueError("prompt is empty")
    if cfg.video is not None and not Path(cfg.video).is_file():
        raise FileNotFoundError(f"video prompt {cfg.video} not found")
    if cfg.reward not in REWARDS:
        raise ValueError(f"reward must be one of {REWARDS}, got {cfg.reward!r}")
    if cfg.data_free and cfg.dataset is not None and cfg.reward != "oracle":
        raise ValueError("data_free runs use no dataset; drop dataset (--dataset) or data_free (--data-free)")
    for name in ("steps", "eval_every", "eval_episodes"):
        if getattr(cfg, name) < 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(cfg, name)}")
    for name in ("log_every", "save_every"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(cfg, name)}")
    resolve_workers(cfg.eval_workers, max(1, cfg.eval_episodes))  # a bad value fails now, not after training


def run_reference(run: str) -> str:
    """How a behavior run names its pre-training run: a shipped model by name, a folder by absolute path."""
    return str(run) if is_shipped_name(run) else str(Path(run).resolve())


def _run_config(cfg: BehaveConfig, mcfg: dict, bcfg, prompt: str | None, dataset: str | None) -> dict:
    return {"kind": "genrl-behavior", "task": cfg.task, "domain": mcfg["domain"], "action_dim": mcfg["action_dim"],
            "run": run_reference(cfg.run), "world_model": world_model_fingerprint(cfg.run),
            "embedder_id": mcfg["embedder_id"], "prompt": prompt,
            "video": str(Path(cfg.video).resolve()) if cfg.video else None,
            "use_aligner": cfg.video is None or cfg.video_aligner, "data_free": cfg.data_free,
            "dataset": str(Path(dataset).resolve()) if dataset else None, "reward": cfg.reward,
            "behavior": to_dict(bcfg),
            "behave": asdict(cfg)}


def _prompt_embedding(cfg: BehaveConfig, mcfg: dict, prompt: str | None, embedder) -> torch.Tensor:
    from genrl.mfwm.decode import matching_embedder, prompt_embedding

    if embedder is None:
        from genrl.vlm.registry import make_embedder
        embedder = make_embedder(cfg.vlm, cfg.vlm_path)
    embedder = matching_embedder(mcfg, embedder)
    emb, _ = prompt_embedding(embedder, prompt, cfg.video)
    return emb


def _drop_evals_after(out: Path, step: int) -> None:
    """Delete evaluation files of steps after ``step`` (left by a run that crashed after its last checkpoint)."""
    for folder, pattern in (("evals", "step_*.json"), ("videos", "eval_*.mp4")):
        for path in (out / folder).glob(pattern):
            digits = path.stem.rsplit("_", 1)[-1]
            if digits.isdigit() and int(digits) > step:
                path.unlink()


def behave(cfg: BehaveConfig, progress: bool = True, embedder=None) -> dict:
    """Train (or resume) a behavior from a prompt in the MFWM's imagination.

    Args:
        cfg: the run settings.
        progress: show a tqdm bar.
        embedder: an already built prompt embedder (default: ``make_embedder(cfg.vlm, cfg.vlm_path)``, built only
            when the target is not in the checkpoint yet).

    Returns:
        ``{"step": int, "out": str, "train": last logged train metrics, "eval": last evaluation dict or None}``.

    Raises:
        ValueError: unknown task, a task of another domain than the MFWM's, no default prompt for the task, bad
            settings, an embedder other than the MFWM's or a dataset of another domain.
        ResumeMismatchError (a ``ValueError``): ``out`` holds a run with other settings (or trained on another
            version of the world model).
        FileNotFoundError: no MFWM checkpoint in ``run``, missing video or dataset.
        FloatingPointError: non-finite loss or metric (the last good checkpoint is kept).
        KeyboardInterrupt: re-raised after saving the updates done since the last checkpoint.
    """
    _check(cfg)
    rt = Runtime(cfg.out, threads=cfg.threads, checkpoint=CKPT)
    out = rt.out
    domain, _ = split_task(cfg.task)
    model, mcfg = load_pretrained(cfg.run)
    if domain != mcfg["domain"]:
        raise ValueError(f"task {cfg.task!r} is a {domain} task but the world model in {cfg.run} was pre-trained on "
                         f"{mcfg['domain']} data; pick a {mcfg['domain']} task or another pre-training run")
    prompt = cfg.prompt
    if prompt is None and cfg.video is None:
        if cfg.task not in PROMPTS:
            raise ValueError(f"task {cfg.task!r} has no default prompt; give one with --prompt or --video")
        prompt = PROMPTS[cfg.task]
    bcfg = resolve_behavior(cfg)
    dev = resolve_device(cfg.device)
    model.to(dev).eval().requires_grad_(False)
    wm = model.wm
    needs_data = not cfg.data_free or cfg.reward == "oracle"
    dataset = (cfg.dataset or mcfg.get("pretrain", {}).get("dataset")) if needs_data else None
    if needs_data and not dataset:
        raise ValueError(f"{cfg.run}/config.json names no dataset; give one (--dataset) or use --data-free")
    if needs_data and not Path(dataset).is_dir():
        hint = (f"; the shipped model {cfg.run!r} was trained on `{mcfg['dataset_command']}`"
                if is_shipped_name(cfg.run) and mcfg.get("dataset_command") else "")
        raise FileNotFoundError(f"dataset {dataset} not found (give one with --dataset"
                                f"{'' if cfg.reward == 'oracle' else ', or use --data-free'}){hint}")
    run_cfg = _run_config(cfg, mcfg, bcfg, prompt, dataset)
    rt.check_resume(run_cfg, RESUME_KEYS, hint="the same settings (and world model)")
    sampler = None
    ds = None
    if dataset is not None:
        ds = Dataset(dataset)
        ds.require_domain(mcfg["domain"])
    if not cfg.data_free:
        sampler = SequenceSampler.from_dataset(ds, bcfg.batch_size, bcfg.batch_length, seed=cfg.seed,
                                               keys=("observation", "action", "is_first"))
    rt.write_config(run_cfg)
    rt.seed(cfg.seed)
    ac = ActorCritic(bcfg, wm.feat_dim, wm.action_dim).to(dev)
    opts = ac.optimizers()
    rng = sampler.rng if sampler is not None else None
    step = 0
    modules: dict[str, torch.nn.Module] = {}
    if rt.has_checkpoint():  # the cached target (and oracle head) come back with the checkpoint
        modules["target"] = new_target(bcfg, wm).to(dev)
        if cfg.reward == "oracle":
            modules["oracle"] = OracleRewardHead(wm.cfg.stoch, wm.cfg.discrete).to(dev)
        state = load_checkpoint(rt.ckpt, {"behavior": ac, **modules}, opts, rng=rng)
        step = int(state["step"])
    else:
        emb = _prompt_embedding(cfg, mcfg, prompt, embedder)
        modules["target"] = build_target(model, emb, bcfg.starts, bcfg.horizon, run_cfg["use_aligner"],
                                         bcfg.skip_first_target, seed=cfg.seed)
        if cfg.reward == "oracle":
            modules["oracle"], report = fit_oracle(model, ds, cfg.task, seed=cfg.seed)
            write_json(out / "oracle.json", report)
    if cfg.reward == "oracle":
        reward_fn = OracleReward(modules["oracle"])
    else:
        reward_fn = LatentReward(wm, modules["target"], bcfg.score, bcfg.align_b)
    policy_sample = lambda feat: ac.actor.sample(feat)[0]  # noqa: E731
    _drop_evals_after(out, step)
    evals: list[dict] = []

    def starts(at: int) -> dict:
        if sampler is not None:
            return offline_starts(wm, sampler.sample())
        return data_free_starts(model, bcfg.starts, policy_sample, bcfg.warmup_steps, bcfg.connector_fraction,
                                bcfg.random_action_fraction)

    def update(at: int, start: dict) -> dict:
        metrics = ac.update(wm, reward_fn, start, opts)
        metrics.pop("seconds")
        return metrics

    def save(at: int) -> None:
        save_checkpoint(rt.ckpt, {"behavior": ac, **modules}, opts, at, run_cfg, rng=rng)

    def evaluate(at: int) -> None:  # a resumed run reads an evaluation that already ran back from its JSON
        evals.append(evaluate_and_log(model, ac, cfg.task, at, out, rt.logger, cfg.eval_episodes, cfg.seed,
                                      workers=cfg.eval_workers))

    def postfix(last: dict) -> dict:
        return {"reward": f"{last['reward_mean']:.3f}", "actor": f"{last['actor_loss']:.3f}",
                "critic": f"{last['critic_loss']:.2f}"}

    loop = LoopConfig(steps=cfg.steps, log_every=cfg.log_every, save_every=cfg.save_every, what="behavior",
                      desc=f"behave {cfg.task}", progress=progress, data_key="starts_fraction")
    last = rt.run(loop, update, data=starts, save=save, start=step, postfix=postfix,
                  after_save=[Hook(evaluate, every=cfg.eval_every, resume=True, enabled=cfg.eval_episodes > 0)])
    last_eval = evals[-1] if evals else None
    if last_eval is not None and rt.step == cfg.steps:
        write_final_eval(out, last_eval, cfg, prompt)
    return {"step": rt.step, "out": str(out), "train": last, "eval": last_eval}


def write_final_eval(out: Path, result: dict, cfg: BehaveConfig, prompt: str | None) -> Path:
    """``out/eval.json``: the final evaluation in the schema of ``genrl compare`` (:mod:`genrl.evaluation.compare`):
    the :class:`~genrl.envs.rollout.EvalResult` fields plus ``method`` (``"genrl"`` for offline start states,
    ``"genrl-data-free"`` for data-free ones; ``"oracle"`` / ``"oracle-data-free"`` with the oracle reward),
    ``seed`` (the *training* seed; the evaluation environments' seed is ``eval_seed``), ``prompt`` and ``steps``."""
    doc = {**result, "eval_seed": result.get("seed"), "seed": cfg.seed, "task": cfg.task,
           "method": cfg.reward + ("-data-free" if cfg.data_free else ""), "reward": None, "prompt": prompt,
           "video_prompt": cfg.video, "steps": cfg.steps}
    write_json(out / "eval.json", doc)
    return out / "eval.json"


__all__ = ["BehaveConfig", "behave", "write_final_eval", "load_policy", "RESUME_KEYS"]
