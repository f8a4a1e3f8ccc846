"""``genrl reward-check``: how well each prompt reward (GenRL's latent reward, the baselines' VLM rewards) ranks
real dataset trajectories against the task's true reward (:mod:`genrl.evaluation.reward_check`).

Usage::

    genrl reward-check runs/walker_mfwm --dataset runs/data/walker --episodes all --out runs/reward_check.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from genrl.app.vlm_cmd import _add_vlm_args, embedder_from_args


def add_parser(subparsers) -> None:
    """Register ``reward-check``."""
    p = subparsers.add_parser(
        "reward-check", help="rank real dataset windows by each prompt reward vs the true task reward",
        description="Cut the dataset's episodes into windows of H + 1 steps and score each with the GenRL reward "
        "of the task's Table 3 prompt (posterior states vs the connector target) and with the VLM rewards of the "
        "baselines; print the Spearman correlation with the true task reward and the top-10 %% score per task. "
        "Writes JSON (--out) and Markdown beside it.")
    p.add_argument("run", help="pre-training run folder or shipped model name (genrl models)")
    p.add_argument("--dataset", default=None, help="dataset folder (default: the run's)")
    p.add_argument("--tasks", nargs="*", default=[], help="task ids (default: every task with a prompt)")
    p.add_argument("--episodes", default="heldout", choices=("heldout", "all"),
                   help="held-out episodes only (default) or all (the world model trained on them)")
    p.add_argument("--score", default="max_cosine", choices=("max_cosine", "cosine"), help="GenRL per-state score")
    p.add_argument("--align-b", type=int, default=8, help="GenRL alignment window b")
    p.add_argument("--horizon", type=int, default=16, help="imagination horizon H (windows of H + 1 steps)")
    p.add_argument("--out", default=None, help="JSON path (Markdown is written beside it, .md)")
    _add_vlm_args(p)
    p.set_defaults(func=cmd_reward_check)


def cmd_reward_check(args: argparse.Namespace) -> int:
    from genrl.evaluation.reward_check import RewardCheckConfig, reward_check, to_markdown
    from genrl.utils.io import write_json, write_text

    cfg = RewardCheckConfig(run=args.run, dataset=args.dataset, tasks=tuple(args.tasks), episodes=args.episodes,
                            horizon=args.horizon, score=args.score, align_b=args.align_b)
    result = reward_check(cfg, embedder_from_args(args))
    markdown = to_markdown(result)
    print(markdown, end="")
    if args.out:
        write_json(args.out, result)
        write_text(Path(args.out).with_suffix(".md"), markdown)
    print(json.dumps({"tasks": len(result["tasks"]), "windows": result["windows"], "out": args.out}))
    return 0
