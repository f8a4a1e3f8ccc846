"""``genrl behave`` and ``genrl eval``: behavior learning from prompts in a pre-trained MFWM, and its evaluation.

Usage::

    genrl behave runs/walker_mfwm --task walker_stand --out runs/walker_stand               # Table 3 prompt
    genrl behave runs/walker_mfwm --task walker_walk --prompt "walk fast clean" --out runs/ww --score cosine
    genrl behave runs/walker_mfwm --task walker_walk --video guy_walking.gif --out runs/wv [--video-aligner]
    genrl behave runs/walker_mfwm --task walker_run --data-free --out runs/wr_free            # no dataset
    genrl behave walker --task walker_stand --out runs/stand     # the shipped walker MFWM (genrl models)
    genrl behave walker --task walker_stand --reward oracle --out runs/stand_oracle      # true-reward ceiling
    genrl behave walker --task walker_stand --out runs/stand --print-config   # the resolved config, nothing runs
    genrl behave walker --task walker_stand --task walker_lying_down --task walker_walk --out runs/group
        # K behaviors trained together in one process (genrl.behavior.train_group): runs/group/<task>/ each
    genrl eval runs/walker_stand --episodes 10 [--task walker_stand] [--video stand.mp4] [--seed 0] [--workers auto]

Re-running the same ``genrl behave`` command resumes from the run's checkpoint.
"""

from __future__ import annotations

import argparse
import json

from genrl.app.config_args import add_config_args, add_print_config, config_from_args, help_text, print_config
from genrl.app.overrides import add_set_arg, eval_workers_arg, parse_overrides
from genrl.app.vlm_cmd import _add_vlm_args, embedder_from_args
from genrl.behavior.config import BehaveConfig, BehaviorConfig, resolve_behavior
from genrl.utils.fields import field_docs


def add_parser(subparsers) -> None:
    """Register ``behave`` and ``eval``."""
    p = subparsers.add_parser("behave", help="learn a behavior from a text/video prompt in imagination (resumable)",
                              description="Learn a behavior from a prompt in a frozen pre-trained MFWM's imagination "
                              "and evaluate it in the real environment. Options are the fields of "
                              "genrl.behavior.config.BehaveConfig; re-run the same command to resume.")
    add_config_args(p, BehaveConfig, positional=("run",), skip=("overrides", "vlm", "vlm_path", "task", "prompt",
                                                               "video"),
                    presets={"preset": BehaviorConfig}, converters={"eval_workers": eval_workers_arg})
    # task/prompt/video are repeatable: several values train one behavior each in one process (a group)
    docs = field_docs(BehaveConfig)
    group = (" Repeat it to train one behavior per value in one process, batched (genrl.behavior.train_group): "
             "OUT/<task>/ each (a normal behavior run) and OUT/group.json.")
    p.add_argument("--task", action="append", required=True, help=help_text(docs["task"]) + group)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--prompt", action="append", default=None, help=help_text(docs["prompt"]) + " Repeatable.")
    src.add_argument("--video", action="append", default=None, help=help_text(docs["video"]) + " Repeatable.")
    add_set_arg(p, "behavior config", "actor_lr=1e-4 horizon=16")
    _add_vlm_args(p)
    add_print_config(p)
    p.set_defaults(func=cmd_behave)

    e = subparsers.add_parser("eval", help="evaluate a behavior run in the real environment (raw + normalized)")
    e.add_argument("policy", help="behavior run folder (genrl behave --out)")
    e.add_argument("--task", default=None, help="task id (default: the run's task)")
    e.add_argument("--episodes", type=int, default=10)
    e.add_argument("--seed", type=int, default=0, help="evaluation seed s: episode i uses env seed 10000 + 100 s + i "
                   "(as behave and baseline evaluations of training seed s)")
    e.add_argument("--video", default=None, help="write the first episode to this .mp4/.gif")
    e.add_argument("--out", default=None, help="JSON report (default: POLICY/eval_<task>_seed<seed>.json)")
    e.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda")
    e.add_argument("--posterior-sample", action="store_true", help="filter observations with posterior samples "
                   "(the official evaluation) instead of modes (default)")
    e.add_argument("--workers", type=eval_workers_arg, default=1, metavar="N|auto",
                   help="processes that step and render the episodes: 1 = in this process, k = k worker processes, "
                   "auto = min(episodes, CPUs); the scores do not depend on it (default: 1)")
    e.set_defaults(func=cmd_eval)


def _needs_embedder(out: str) -> bool:
    """Only a run without a checkpoint needs the VLM (the target is stored in the checkpoint)."""
    from pathlib import Path

    from genrl.utils.checkpoint import has_checkpoint

    return not has_checkpoint(Path(out) / "checkpoint")


def cmd_behave(args: argparse.Namespace) -> int:
    tasks, prompts, videos = args.task, args.prompt or [], args.video or []
    cfg = config_from_args(BehaveConfig, args, vlm=args.vlm, vlm_path=args.vlm_path, task=tasks[0],
                           prompt=(prompts or [None])[0], video=(videos or [None])[0],
                           overrides=parse_overrides(args.set, BehaviorConfig, "behavior config"))
    if len(tasks) > 1 or len(prompts) > 1 or len(videos) > 1:
        return _behave_group(args, cfg, tasks, prompts, videos)
    if args.print_config:
        return print_config({"behave": cfg, "behavior": resolve_behavior(cfg)})
    from genrl.behavior.train import behave

    embedder = embedder_from_args(args) if _needs_embedder(args.out) else None
    print(json.dumps(_summary(behave(cfg, embedder=embedder)), indent=1))
    return 0


def _summary(result: dict) -> dict:
    ev = result["eval"]
    summary = {"step": result["step"], "out": result["out"],
               "train": {k: round(v, 5) for k, v in result["train"].items()}}
    if ev is not None:
        summary["eval"] = {k: ev.get(k) for k in ("mean_return", "std_return", "mean_normalized", "returns",
                                                  "normalized", "episodes")}
    return summary


def _behave_group(args: argparse.Namespace, cfg: BehaveConfig, tasks: list[str], prompts: list[str],
                  videos: list[str]) -> int:
    """Several ``--task``/``--prompt``/``--video`` values: one behavior each, trained together in one process."""
    from genrl.behavior.train_group import group_configs, needs_embedder, train_behaviors

    try:
        cfgs = group_configs(cfg, tasks, prompts or None, videos or None)
    except ValueError as err:
        raise SystemExit(f"genrl behave: {err}") from None
    if args.print_config:
        return print_config({"members": [{"behave": c, "behavior": resolve_behavior(c)} for c in cfgs]})
    embedder = embedder_from_args(args) if needs_embedder(cfgs) else None
    result = train_behaviors(cfgs, args.out, embedder=embedder)
    print(json.dumps({"step": result["step"], "out": result["out"],
                      "members": [_summary(m) for m in result["members"]]}, indent=1))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from genrl.behavior.policy import eval_policy

    doc = eval_policy(args.policy, task=args.task, episodes=args.episodes, seed=args.seed, video=args.video,
                      out=args.out, device=args.device, progress=True, posterior_sample=args.posterior_sample,
                      workers=args.workers)
    print(json.dumps(doc, indent=1))
    return 0
