"""``genrl experts train TASK``: train a state-based SAC expert used to collect task data.

Usage::

    genrl experts train walker_walk --steps 150000 --seed 0 --out experts/walker_walk
"""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(subparsers) -> None:
    """Register ``genrl experts``."""
    p = subparsers.add_parser("experts", help="train state-based SAC experts for data collection")
    sub = p.add_subparsers(dest="experts_cmd", required=True)
    tr = sub.add_parser("train", help="train one task's expert; saves actor snapshots + card.json")
    tr.add_argument("task", help="task id, e.g. walker_walk")
    tr.add_argument("--steps", type=int, default=150_000, help="environment (agent) steps of SAC training")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--out", required=True, help="output folder for actor_*.safetensors and card.json")
    tr.add_argument("--threads", type=int, default=1, help="torch threads (1 lets two trainings share 2 cores)")
    tr.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    """Train and print the model card."""
    import torch

    from genrl.data.experts import train_expert

    torch.set_num_threads(args.threads)
    command = " ".join(["genrl"] + sys.argv[1:])
    card = train_expert(args.task, args.steps, args.out, seed=args.seed, command=command)
    print(json.dumps(card, indent=2))
    return 0
