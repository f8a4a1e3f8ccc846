"""``genrl collect DOMAIN --out DIR --frames N [--workers K]``: build or complete an offline dataset.

Usage::

    genrl collect walker --out data/walker --frames 100000 --workers 2
"""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> None:
    """Register ``genrl collect``."""
    p = subparsers.add_parser("collect", help="collect an offline dataset (exploration + task experts)")
    p.add_argument("domain", help="walker | cheetah | quadruped | stickman | kitchen")
    p.add_argument("--out", required=True, help="dataset folder (created, or completed if it exists)")
    p.add_argument("--frames", type=int, default=100_000, help="minimum number of frames (episode entries)")
    p.add_argument("--workers", type=int, default=1, help="parallel rendering processes")
    p.add_argument("--seed", type=int, default=0, help="plan seed (episode i uses seed*1000003 + i)")
    p.add_argument("--expl-fraction", type=float, default=0.5,
                   help="fraction of exploration episodes when task experts exist (default 0.5)")
    p.add_argument("--experts", default=None, help="folder of expert weights (default: the packaged ones)")
    p.set_defaults(func=cmd_collect)


def cmd_collect(args: argparse.Namespace) -> int:
    """Run the collection and print its summary as JSON."""
    from genrl.data.collect import collect

    summary = collect(args.domain, args.out, args.frames, workers=args.workers, seed=args.seed,
                      expl_fraction=args.expl_fraction, experts_dir=args.experts)
    print(json.dumps(summary, indent=2))
    return 0
