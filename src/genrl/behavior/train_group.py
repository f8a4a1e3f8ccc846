"""K behaviors per process: ``genrl behave RUN --task walker_stand --task walker_walk --out OUT`` (issue 16).

The pre-trained MFWM is loaded and frozen once; one actor-critic per prompt is trained in its imagination with
:class:`genrl.behavior.multi.MultiActorCritic` (one batched update of all ``K`` behaviors per step: shared start
states, one world-model transition per imagined step over ``K*N`` rows, batched latent rewards). Each member is an
ordinary behavior run folder holding exactly what :func:`genrl.behavior.train.behave` writes for its settings
(``config.json``, ``checkpoint/``, ``metrics.jsonl`` + TensorBoard, ``evals/``, ``videos/``, ``eval.json``,
``oracle.json``), so ``genrl eval``, ``genrl compare`` and the dashboard read it as a single run; the group adds
``OUT/group.json`` and a two-phase save that keeps every member at the same step (:mod:`genrl.behavior.group`).

Randomness (member ``k`` of seed ``s_k``):

* member ``k``'s actor-critic is initialised as a single run of seed ``s_k`` initialises it; its target (and
  oracle) are built with ``s_k``;
* member 0 draws from the global torch RNG; member ``k >= 1`` from its own ``torch.Generator`` (on the device),
  which starts from the global state a single run of ``s_k`` has after that initialisation: its imagination noise,
  data-free start states and evaluation; it is the torch RNG stored in the member's checkpoint;
* offline start states (dataset windows and posterior samples) are computed once per update and shared: those of
  member 0 (sampler seed ``s_0``, the global RNG).

So member 0 of any group is ``genrl behave`` with its settings (a one-member group is a single run, up to the
floating-point order of the batched update: ``tests/test_train_group.py``), and with data-free starts (nothing
shared) every member is. With offline starts members ``k >= 1`` learn from member 0's start states; their own
draws never depend on which other members run with them.

The members must share the MFWM run, the behavior preset and overrides (and ``score``/``align_b``), the start
source (``data_free``; the dataset of offline starts), device, threads, VLM and cadence (``steps``, ``eval_every``,
``eval_episodes``, ``log_every``, ``save_every``); task, prompt or video, ``video_aligner``, reward, seed and
run folder are per member. One :class:`~genrl.utils.runtime.Runtime` runs the loop (bar, the NaN/Inf guard
naming the member, save on Ctrl-C, a single run's cadence); every member gets its own ``train/...`` log lines
(a single run's keys; the timing numbers are the group update's), evaluations and final ``eval.json``.
Speed: :mod:`genrl.behavior.multi` (on CPU a ``K``-behavior update costs about ``K`` single ones).

Usage::

    cfgs = group_configs(BehaveConfig(run="walker", out="runs/walker4", task="walker_stand"),
                         tasks=["walker_stand", "walker_walk", "walker_run", "walker_lying_down"])
    result = train_behaviors(cfgs, "runs/walker4")   # runs/walker4/{group.json, walker_stand/, ...}
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import torch

from genrl.behavior.actor_critic import ActorCritic
from genrl.behavior.config import behavior_preset
from genrl.behavior.group import GROUP_FILE, GroupCheckpoint
from genrl.behavior.multi import MultiActorCritic, keep_freed_memory
from genrl.behavior.oracle import OracleReward, OracleRewardHead, fit_oracle
from genrl.behavior.policy import CKPT, evaluate_and_log, new_target
from genrl.behavior.reward import LatentReward, build_target
from genrl.behavior.starts import data_free_starts, offline_starts
from genrl.behavior.train import (RESUME_KEYS, BehaveConfig, _check, _drop_evals_after, _prompt_embedding,
                                  _run_config, run_reference, write_final_eval)
from genrl.data.dataset import Dataset
from genrl.data.sampler import SequenceSampler
from genrl.envs.registry import PROMPTS, split_task
from genrl.mfwm.pretrain import load_pretrained
from genrl.mfwm.shipped import is_shipped_name
from genrl.utils.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from genrl.utils.device import resolve_device
from genrl.utils.io import write_json
from genrl.utils.metrics import MetricsLogger
from genrl.utils.runtime import Hook, LoopConfig, Runtime

# BehaveConfig fields every member of a group must share (plus the dataset of offline starts)
SHARED = ("run", "preset", "overrides", "score", "align_b", "data_free", "steps", "eval_every", "eval_episodes",
          "log_every", "save_every", "threads", "vlm", "vlm_path", "device")


def default_generator(device: torch.device) -> torch.Generator:
    """The global torch generator of ``device`` (``torch.default_generator`` on CPU)."""
    if device.type == "cuda":
        torch.cuda.init()
        return torch.cuda.default_generators[device.index if device.index is not None else torch.cuda.current_device()]
    return torch.default_generator


@contextlib.contextmanager
def drawing_from(gen: torch.Generator):
    """Within the block, code that uses the global RNG of ``gen``'s device draws from ``gen`` (its state is swapped
    in, then back out: ``gen`` advances, the global state is left as it was). A no-op for the global generator."""
    default = default_generator(gen.device)
    if gen is default:
        yield
        return
    saved = default.get_state()
    default.set_state(gen.get_state())
    try:
        yield
    finally:
        gen.set_state(default.get_state())
        default.set_state(saved)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40] or "prompt"


def group_configs(base: BehaveConfig, tasks: Sequence[str], prompts: Sequence[str] | None = None,
                  videos: Sequence[str] | None = None, seeds: Sequence[int] | None = None) -> list[BehaveConfig]:
    """The member configs of ``genrl behave`` with several ``--task`` and/or ``--prompt`` (or ``--video``) values.

    Member ``i`` gets ``tasks[i]``, ``prompts[i]`` / ``videos[i]`` (none: the task's Table 3 prompt) and
    ``seeds[i]`` (default: ``base.seed`` for every member, as ``K`` separate runs of the same ``--seed``); a list of
    one value is used for every member. Everything else is ``base``'s, and the run folder is ``base.out/<name>``:
    the task, or ``<task>-<prompt>`` (a slug) where several members share a task, ``-<i>`` added where still equal.

    Raises:
        ValueError: no task, prompts and videos both given, or lists of other lengths than 1 and ``K``.
    """
    if not tasks:
        raise ValueError("a group needs at least one task")
    if prompts and videos:
        raise ValueError("give either text prompts or video prompts, not both")
    lists = {"tasks": list(tasks), "prompts": list(prompts or [None]), "videos": list(videos or [None]),
             "seeds": list(seeds or [base.seed])}
    k = max(len(v) for v in lists.values())
    for key, values in lists.items():
        if len(values) not in (1, k):
            raise ValueError(f"got {len(values)} {key} for {k} behaviors; give one or {k}")
        lists[key] = values * k if len(values) == 1 else values
    names = []
    for task, prompt, video in zip(lists["tasks"], lists["prompts"], lists["videos"]):
        label = prompt if prompt is not None else Path(video).stem if video else "default"
        names.append(task if lists["tasks"].count(task) == 1 else f"{task}-{_slug(label)}")
    names = [n if names.count(n) == 1 else f"{n}-{i}" for i, n in enumerate(names)]
    return [replace(base, out=str(Path(base.out) / n), task=t, prompt=p, video=v, seed=int(s))
            for n, t, p, v, s in zip(names, lists["tasks"], lists["prompts"], lists["videos"], lists["seeds"])]


def needs_embedder(cfgs: Sequence[BehaveConfig]) -> bool:
    """Whether a group has a member without a checkpoint (its target needs the prompt embedder)."""
    return any(not has_checkpoint(Path(c.out) / CKPT) for c in cfgs)


def _check_group(cfgs: Sequence[BehaveConfig], out: str | Path) -> None:
    if not cfgs:
        raise ValueError("a group needs at least one behavior config")
    for cfg in cfgs:
        _check(cfg)
    names = list(SHARED) + ([] if cfgs[0].data_free else ["dataset"])
    for name in names:
        values = [getattr(c, name) for c in cfgs]
        if name == "run":
            values = [run_reference(v) for v in values]
        if name == "dataset":
            values = [str(Path(v).resolve()) if v else None for v in values]
        for cfg, value in zip(cfgs, values):
            if value != values[0]:
                raise ValueError(f"the behaviors of one group must share {name} ({cfgs[0].out}: {values[0]!r}, "
                                 f"{cfg.out}: {value!r}); train them in separate groups")
    group, outs = Path(out).resolve(), [Path(c.out).resolve() for c in cfgs]
    for i, a in enumerate(outs):
        if group.is_relative_to(a):
            raise ValueError(f"the group folder {group} cannot be (inside) the run folder of a member ({a})")
        for b in outs[i + 1:]:
            if a.is_relative_to(b) or b.is_relative_to(a):
                raise ValueError(f"two members of the group share a run folder ({a}, {b}); give each its own")


def _names(cfgs: Sequence[BehaveConfig]) -> list[str]:
    """Member labels (metric keys, messages): the run folders' names, ``#i`` added where two are equal."""
    names = [Path(c.out).name for c in cfgs]
    return [n if names.count(n) == 1 else f"{n}#{i}" for i, n in enumerate(names)]


def _prompt(cfg: BehaveConfig) -> str | None:
    if cfg.prompt is None and cfg.video is None:
        if cfg.task not in PROMPTS:
            raise ValueError(f"task {cfg.task!r} has no default prompt; give one with --prompt or --video")
        return PROMPTS[cfg.task]
    return cfg.prompt


def _dataset(cfg: BehaveConfig, mcfg: dict) -> str | None:
    """The dataset a member opens (offline starts, oracle fit), as :func:`~genrl.behavior.train.behave` picks it."""
    if cfg.data_free and cfg.reward != "oracle":
        return None
    dataset = cfg.dataset or mcfg.get("pretrain", {}).get("dataset")
    if not dataset:
        raise ValueError(f"{cfg.run}/config.json names no dataset; give one (--dataset) or use --data-free")
    if not Path(dataset).is_dir():
        hint = (f"; the shipped model {cfg.run!r} was trained on `{mcfg['dataset_command']}`"
                if is_shipped_name(cfg.run) and mcfg.get("dataset_command") else "")
        raise FileNotFoundError(f"dataset {dataset} not found (give one with --dataset"
                                f"{'' if cfg.reward == 'oracle' else ', or use --data-free'}){hint}")
    return dataset


@dataclass
class _Member:
    cfg: BehaveConfig
    name: str
    rt: Runtime  # the member's folder: resume check, config.json, checkpoint path
    prompt: str | None
    dataset: str | None
    run_cfg: dict = field(default_factory=dict)
    modules: dict = field(default_factory=dict)  # target (+ oracle), saved beside the actor-critic
    reward_fn: Callable | None = None
    logger: MetricsLogger | None = None
    last: dict = field(default_factory=dict)  # the last logged train metrics
    evals: list = field(default_factory=list)


class _GroupRuntime(Runtime):
    """The group's loop: no config, logger or checkpoint of its own; it resumes when its members do."""

    resumed = False

    def has_checkpoint(self) -> bool:
        return self.resumed


def train_behaviors(cfgs: Sequence[BehaveConfig], out: str | Path, progress: bool = True, embedder=None) -> dict:
    """Train (or resume) ``K`` behaviors at once on one frozen MFWM, one run folder each (``cfgs[i].out``).

    Args:
        cfgs: the members' settings (e.g. from :func:`group_configs`); see the module docstring for the shared ones.
        out: the group folder (``group.json``); it must not be (inside) a member's folder.
        progress: show one tqdm bar for the group.
        embedder: an already built prompt embedder (default: built once from ``vlm`` / ``vlm_path`` when a member
            has no checkpoint yet).

    Returns:
        ``{"step": int, "out": str, "members": [{"step", "out", "train", "eval"} per member]}`` (each member's
        dict as :func:`~genrl.behavior.train.behave` returns it).

    Raises:
        ValueError: as :func:`~genrl.behavior.train.behave`, and members that do not share the shared settings,
            share a run folder or contain the group folder.
        ResumeMismatchError (a ``ValueError``): a member folder holds a run with other settings, ``out`` a group of
            other members, or a member folder a checkpoint of a run outside the group.
        CheckpointError: the members' checkpoints are not at the group's step (a member trained on its own).
        FileNotFoundError: no MFWM checkpoint in ``run``, missing video or dataset.
        FloatingPointError: non-finite loss or metric, naming the member (the last good checkpoints are kept).
        KeyboardInterrupt: re-raised after saving every member at the step reached.
    """
    cfgs = list(cfgs)
    _check_group(cfgs, out)
    base, K = cfgs[0], len(cfgs)
    grt = _GroupRuntime(out, threads=base.threads)
    inside = all(Path(c.out).resolve().parent == grt.out.resolve() for c in cfgs)
    grt.ckpt = grt.out / "*" / CKPT if inside else grt.out / GROUP_FILE  # named in the NaN/Inf message
    model, mcfg = load_pretrained(base.run)
    members = []
    for cfg, name in zip(cfgs, _names(cfgs)):
        domain, _ = split_task(cfg.task)
        if domain != mcfg["domain"]:
            raise ValueError(f"task {cfg.task!r} is a {domain} task but the world model in {cfg.run} was pre-trained "
                             f"on {mcfg['domain']} data; pick a {mcfg['domain']} task or another pre-training run")
        members.append(_Member(cfg, name, Runtime(cfg.out, checkpoint=CKPT), _prompt(cfg), _dataset(cfg, mcfg)))
    extra = {k: v for k, v in (("score", base.score), ("align_b", base.align_b)) if v is not None}
    bcfg = behavior_preset(base.preset, **{**base.overrides, **extra})
    dev = resolve_device(base.device)
    model.to(dev).eval().requires_grad_(False)
    wm = model.wm
    for m in members:
        m.run_cfg = _run_config(m.cfg, mcfg, bcfg, m.prompt, m.dataset)
        m.rt.check_resume(m.run_cfg, RESUME_KEYS, hint="the same settings (and world model)")
    group = GroupCheckpoint(out, [c.out for c in cfgs], ckpt=CKPT, info={
        "names": [m.name for m in members], "tasks": [c.task for c in cfgs], "prompts": [m.prompt for m in members],
        "videos": [c.video for c in cfgs], "seeds": [c.seed for c in cfgs]})
    group.check_resume()
    step = group.recover()
    grt.resumed = step > 0
    datasets = {d: Dataset(d) for d in dict.fromkeys(m.dataset for m in members) if d is not None}
    for ds in datasets.values():
        ds.require_domain(mcfg["domain"])
    sampler = None
    if not base.data_free:
        sampler = SequenceSampler.from_dataset(datasets[members[0].dataset], bcfg.batch_size, bcfg.batch_length,
                                               seed=base.seed, keys=("observation", "action", "is_first"))
    rng = sampler.rng if sampler is not None else None
    for m in members:
        m.rt.write_config(m.run_cfg)
    group.start(step)
    if K > 1 and dev.type == "cpu":
        keep_freed_memory()
    # members K-1 .. 1 first, member 0 last: the global RNG then continues exactly as in member 0's single run
    acs: list[ActorCritic | None] = [None] * K
    gens: list[torch.Generator | None] = [None] * K
    for i in reversed(range(K)):
        Runtime.seed(cfgs[i].seed)
        acs[i] = ActorCritic(bcfg, wm.feat_dim, wm.action_dim).to(dev)
        gens[i] = default_generator(dev)
        if i > 0:
            state = gens[i].get_state()
            gens[i] = torch.Generator(device=dev)
            gens[i].set_state(state)
    multi = MultiActorCritic(acs, [m.name for m in members])
    opts = multi.optimizers()
    for i in reversed(range(K)):
        m = members[i]
        with drawing_from(gens[i]):
            if step:  # the cached targets (and oracle heads) come back with the checkpoints
                m.modules["target"] = new_target(bcfg, wm).to(dev)
                if m.cfg.reward == "oracle":
                    m.modules["oracle"] = OracleRewardHead(wm.cfg.stoch, wm.cfg.discrete).to(dev)
                load_checkpoint(m.rt.ckpt, {"behavior": acs[i], **m.modules}, opts[i], rng=rng if i == 0 else None)
            else:
                if embedder is None:
                    from genrl.vlm.registry import make_embedder
                    embedder = make_embedder(base.vlm, base.vlm_path)
                emb = _prompt_embedding(m.cfg, mcfg, m.prompt, embedder)
                m.modules["target"] = build_target(model, emb, bcfg.starts, bcfg.horizon, m.run_cfg["use_aligner"],
                                                   bcfg.skip_first_target, seed=m.cfg.seed)
                if m.cfg.reward == "oracle":
                    m.modules["oracle"], report = fit_oracle(model, datasets[m.dataset], m.cfg.task, seed=m.cfg.seed)
                    write_json(m.rt.out / "oracle.json", report)
        if m.cfg.reward == "oracle":
            m.reward_fn = OracleReward(m.modules["oracle"])
        else:
            m.reward_fn = LatentReward(wm, m.modules["target"], bcfg.score, bcfg.align_b)
        _drop_evals_after(m.rt.out, step)
    fns = [m.reward_fn for m in members]

    def starts(at: int):
        if sampler is not None:  # shared by every member
            return offline_starts(wm, sampler.sample())
        out = []
        for ac, gen in zip(acs, gens):  # each warmed up by its own actor, from its own generator
            with drawing_from(gen):
                out.append(data_free_starts(model, bcfg.starts, lambda feat, ac=ac: ac.actor.sample(feat)[0],
                                            bcfg.warmup_steps, bcfg.connector_fraction, bcfg.random_action_fraction))
        return out

    def update(at: int, start) -> dict:
        flat = {}
        for m, metrics in zip(members, multi.update(wm, fns, start, opts, gens)):
            metrics.pop("seconds")
            flat.update({f"{m.name}/{k}": v for k, v in metrics.items()})
        return flat

    def log(at: int) -> None:  # right after the group's log line: split it into the members' lines
        shared = {k: v for k, v in grt.last.items() if "/" not in k}  # seconds_per_update, starts_fraction
        for m in members:
            prefix = m.name + "/"
            m.last = {**{k[len(prefix):]: v for k, v in grt.last.items() if k.startswith(prefix)}, **shared}
            m.logger.log(at, m.last)

    def save(at: int) -> None:  # phase 1 of the group's two-phase save, then the commit
        for i, m in enumerate(members):
            with drawing_from(gens[i]):
                save_checkpoint(group.staging(i), {"behavior": acs[i], **m.modules}, opts[i], at, m.run_cfg, rng=rng)
        group.commit(at)

    def evaluate(at: int) -> None:  # a resumed run reads an evaluation that already ran back from its JSON
        for i, m in enumerate(members):
            with drawing_from(gens[i]):
                m.evals.append(evaluate_and_log(model, acs[i], m.cfg.task, at, m.rt.out, m.logger,
                                                m.cfg.eval_episodes, m.cfg.seed, workers=m.cfg.eval_workers))

    def postfix(last: dict) -> dict:
        def mean(key: str) -> float:
            return sum(last[f"{m.name}/{key}"] for m in members) / K

        return {"reward": f"{mean('reward_mean'):.3f}", "actor": f"{mean('actor_loss'):.3f}",
                "critic": f"{mean('critic_loss'):.2f}"}

    loop = LoopConfig(steps=base.steps, log_every=base.log_every, save_every=base.save_every, what="behavior",
                      desc=f"behave {base.task}" if K == 1 else f"behave {K} behaviors", progress=progress, log=False,
                      data_key="starts_fraction")
    with contextlib.ExitStack() as stack:
        for m in members:
            m.logger = stack.enter_context(MetricsLogger(m.rt.out, resume_step=step))  # drops lines after `step`
            if not step:
                m.logger.log_config(m.run_cfg, step)
        grt.run(loop, update, data=starts, save=save, start=step, postfix=postfix,
                before_save=[Hook(log, every=base.log_every)],
                after_save=[Hook(evaluate, every=base.eval_every, resume=True, enabled=base.eval_episodes > 0)])
    results = []
    for m in members:
        last_eval = m.evals[-1] if m.evals else None
        if last_eval is not None and grt.step == base.steps:
            write_final_eval(m.rt.out, last_eval, m.cfg, m.prompt)
        results.append({"step": grt.step, "out": str(m.rt.out), "train": m.last, "eval": last_eval})
    return {"step": grt.step, "out": str(grt.out), "members": results}


__all__ = ["SHARED", "train_behaviors", "group_configs", "needs_embedder", "default_generator", "drawing_from"]
