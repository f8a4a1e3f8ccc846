"""``genrl behave`` and ``genrl eval``: behavior learning from prompts in a pre-trained MFWM, and its evaluation.

Usage::

    genrl behave runs/walker_mfwm --task walker_stand --out runs/walker_stand               # Table 3 prompt
    genrl behave runs/walker_mfwm --task walker_walk --prompt "walk fast clean" --out runs/ww --score cosine
    genrl behave runs/walker_mfwm --task walker_walk --video guy_walking.gif --out runs/wv [--video-aligner]
    genrl behave runs/walker_mfwm --task walker_run --data-free --out runs/wr_free            # no dataset
    genrl behave walker --task walker_stand --out runs/stand     # the shipped walker MFWM (genrl models)
    genrl behave walker --task walker_stand --reward oracle --out runs/stand_oracle      # true-reward ceiling
    genrl eval runs/walker_stand --episodes 10 [--task walker_stand] [--video stand.mp4] [--seed 0]

Re-running the same ``genrl behave`` command resumes from the run's checkpoint.
"""

from __future__ import annotations

import argparse
import json

from genrl.app.overrides import parse_overrides
from genrl.app.vlm_cmd import _add_vlm_args, embedder_from_args


def add_parser(subparsers) -> None:
    """Register ``behave`` and ``eval``."""
    p = subparsers.add_parser("behave", help="learn a behavior from a text/video prompt in imagination (resumable)")
    p.add_argument("run", help="pre-training run folder (genrl pretrain --out) or shipped model name (genrl models)")
    p.add_argument("--task", required=True, help="task id; its domain must be the world model's (e.g. walker_stand)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--prompt", default=None, help="text prompt (default: the task's Table 3 prompt)")
    src.add_argument("--video", default=None, help="video prompt file (mp4/gif) instead of text")
    p.add_argument("--video-aligner", action="store_true",
                   help="pass the video embedding through the aligner (official behaviour; text always uses it)")
    p.add_argument("--data-free", action="store_true", help="synthetic start states; no dataset is opened for starts")
    p.add_argument("--dataset", default=None, help="dataset of the start states and of the oracle's fit (default: "
                   "the pre-training one)")
    p.add_argument("--reward", default="genrl", choices=("genrl", "oracle"),
                   help="genrl: the prompt's latent target (default); oracle: a head fitted to the dataset's true "
                   "task reward on the frozen latents (the ceiling of the same actor-critic and budget)")
    p.add_argument("--out", required=True, help="run folder (checkpoint/, metrics.jsonl, TensorBoard, evals/, videos/)")
    p.add_argument("--preset", default="small", choices=("paper", "small", "tiny"))
    p.add_argument("--steps", type=int, default=10000, help="actor-critic updates")
    p.add_argument("--eval-every", type=int, default=2500, help="real-env evaluation period in updates (0: at the end)")
    p.add_argument("--eval-episodes", type=int, default=10, help="episodes per evaluation (0: never evaluate)")
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--save-every", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--score", default=None, choices=("max_cosine", "cosine"),
                   help="per-state reward (default max_cosine, the official code's; cosine is the paper's eq. 2)")
    p.add_argument("--align-b", type=int, default=None,
                   help="temporal alignment window b (default 8; 1 = initial state only; >= horizon = no alignment)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                   help="behavior config overrides, e.g. --set actor_lr=1e-4 horizon=16")
    _add_vlm_args(p)
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
    e.set_defaults(func=cmd_eval)


def _needs_embedder(out: str) -> bool:
    """Only a run without a checkpoint needs the VLM (the target is stored in the checkpoint)."""
    from pathlib import Path

    from genrl.utils.checkpoint import has_checkpoint

    return not has_checkpoint(Path(out) / "checkpoint")


def cmd_behave(args: argparse.Namespace) -> int:
    from genrl.behavior.config import BehaviorConfig
    from genrl.behavior.train import BehaveConfig, behave

    overrides = parse_overrides(args.set, BehaviorConfig, "behavior config")
    cfg = BehaveConfig(run=args.run, out=args.out, task=args.task, prompt=args.prompt, video=args.video,
                       video_aligner=args.video_aligner, data_free=args.data_free, dataset=args.dataset,
                       preset=args.preset, overrides=overrides, steps=args.steps,
                       eval_every=args.eval_every, eval_episodes=args.eval_episodes, log_every=args.log_every,
                       save_every=args.save_every, seed=args.seed, score=args.score, align_b=args.align_b,
                       threads=args.threads, vlm=args.vlm, vlm_path=args.vlm_path, device=args.device,
                       reward=args.reward)
    embedder = embedder_from_args(args) if _needs_embedder(args.out) else None
    result = behave(cfg, embedder=embedder)
    ev = result["eval"]
    summary = {"step": result["step"], "out": result["out"],
               "train": {k: round(v, 5) for k, v in result["train"].items()}}
    if ev is not None:
        summary["eval"] = {k: ev.get(k) for k in ("mean_return", "std_return", "mean_normalized", "returns",
                                                  "normalized", "episodes")}
    print(json.dumps(summary, indent=1))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from genrl.behavior.policy import eval_policy

    doc = eval_policy(args.policy, task=args.task, episodes=args.episodes, seed=args.seed, video=args.video,
                      out=args.out, device=args.device, progress=True, posterior_sample=args.posterior_sample)
    print(json.dumps(doc, indent=1))
    return 0
