"""``genrl experts train TASK``: train a state-based SAC expert used to collect task data.

Usage::

    genrl experts train walker_walk --steps 150000 --seed 0 --out experts/walker_walk
    genrl experts train walker_walk --out experts/walker_walk --print-config      # the settings, nothing runs
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass

from genrl.app.config_args import add_config_args, add_print_config, config_from_args, print_config


@dataclass
class ExpertTrainConfig:
    """Settings of ``genrl experts train`` (:func:`genrl.data.experts.train_expert`); each field's text below is its
    ``--help``.

    Attributes:
        task: task id, e.g. ``walker_walk``.
        out: output folder for actor_*.safetensors and card.json.
        steps: environment (agent) steps of SAC training.
        seed: RNG seed of SAC and of the training environment.
        threads: torch threads (1 lets two trainings share 2 cores).
        fractions: fractions of ``steps`` after which an actor snapshot is saved (and evaluated).
        eval_episodes: evaluation episodes per snapshot.
        log_every: steps between progress lines (stdout and out/progress.jsonl: steps/s, mean training-episode
            return); 0 for none.
        upright_starts: probability that a training episode starts upright (quadruped: its default start is a
            random orientation); snapshots are evaluated from the default start; 0 = off.
        train_freq: environment steps per SAC gradient step (1: SB3's default; 2: half the updates, ~1.8x the
            steps/s on a CPU, as DrQ-v2's update every 2 steps).
    """

    task: str
    out: str
    steps: int = 150_000
    seed: int = 0
    threads: int = 1
    fractions: tuple[float, ...] = (0.25, 0.5, 1.0)
    eval_episodes: int = 5
    log_every: int = 10_000
    upright_starts: float = 0.0
    train_freq: int = 1


def add_parser(subparsers) -> None:
    """Register ``genrl experts``."""
    p = subparsers.add_parser("experts", help="train state-based SAC experts for data collection")
    sub = p.add_subparsers(dest="experts_cmd", required=True)
    tr = sub.add_parser("train", help="train one task's expert; saves actor snapshots + card.json",
                        description="Train a SAC expert on a task's state (needs stable-baselines3). Options are the "
                        "fields of genrl.app.experts_cmd.ExpertTrainConfig.")
    add_config_args(tr, ExpertTrainConfig, positional=("task",))
    add_print_config(tr)
    tr.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    """Train and print the model card (or, with ``--print-config``, the settings)."""
    cfg = config_from_args(ExpertTrainConfig, args)
    if args.print_config:
        return print_config({"experts_train": cfg})
    import torch

    from genrl.data.experts import train_expert

    torch.set_num_threads(cfg.threads)
    command = " ".join(["genrl"] + sys.argv[1:])
    card = train_expert(cfg.task, cfg.steps, cfg.out, seed=cfg.seed, fractions=cfg.fractions,
                        eval_episodes=cfg.eval_episodes, command=command, log_every=cfg.log_every,
                        upright_starts=cfg.upright_starts, train_freq=cfg.train_freq)
    print(json.dumps(card, indent=2))
    return 0
