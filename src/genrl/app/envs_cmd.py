"""``genrl envs ...``: list tasks and record random-policy videos.

Usage::

    genrl envs list [--domain walker]
    genrl envs video walker_walk --out walker_walk.mp4 [--seed 0] [--steps 500] [--scale 4]
"""

from __future__ import annotations

import argparse

import numpy as np


def add_parser(subparsers) -> None:
    """Register the ``envs`` subcommand and its sub-subcommands."""
    p = subparsers.add_parser("envs", help="list tasks, record random-policy videos")
    sub = p.add_subparsers(dest="envs_cmd", required=True)
    ls = sub.add_parser("list", help="list every task with its prompt and reference scores")
    ls.add_argument("--domain", default=None, help="only this domain (walker, cheetah, quadruped, stickman, kitchen)")
    ls.set_defaults(func=cmd_list)
    vid = sub.add_parser("video", help="record one random-policy episode of a task to .mp4/.gif")
    vid.add_argument("task", help="task id, e.g. walker_walk (see `genrl envs list`)")
    vid.add_argument("--out", required=True, help="output file (.mp4 or .gif)")
    vid.add_argument("--seed", type=int, default=0, help="environment and policy seed (default 0)")
    vid.add_argument("--steps", type=int, default=None, help="agent steps (default: a full episode)")
    vid.add_argument("--scale", type=int, default=4, help="nearest-neighbour upscaling of the 64x64 frames")
    vid.add_argument("--fps", type=float, default=20.0, help="video frame rate")
    vid.set_defaults(func=cmd_video)


def cmd_list(args: argparse.Namespace) -> int:
    """Print ``task  random  expert  prompt`` for every task."""
    from genrl.envs import PROMPTS, SCORES, list_tasks

    tasks = list_tasks(args.domain)
    print(f"{'task':28s} {'random':>7s} {'expert':>7s}  prompt")
    for task in tasks:
        lo, hi = SCORES.get(task, (float("nan"), float("nan")))
        print(f"{task:28s} {lo:7g} {hi:7g}  {PROMPTS.get(task, '')}")
    return 0


def cmd_video(args: argparse.Namespace) -> int:
    """Run a uniform-random policy for one episode and write its frames to ``--out``."""
    from tqdm import tqdm

    from genrl.envs import SCORES, make, normalized_score
    from genrl.utils.io import write_video

    env = make(args.task, seed=args.seed)
    obs, _ = env.reset(seed=args.seed)
    frames, ret = [obs["image"]], 0.0
    steps = args.steps or env.episode_steps
    for _ in tqdm(range(steps), desc=f"{args.task} (random policy)", unit="step"):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        frames.append(obs["image"])
        ret += reward
        if terminated or truncated:
            break
    env.close()
    path = write_video(args.out, np.stack(frames), fps=args.fps, scale=args.scale)
    norm = f", normalized score {normalized_score(args.task, ret):.3f}" if args.task in SCORES else ""
    print(f"wrote {path} ({len(frames)} frames); return {ret:.1f}{norm}")
    return 0
