"""``genrl demo``: the whole pipeline end to end (see :mod:`genrl.app.demo`).

Usage::

    genrl demo                                  # walker, small preset, runs/demo, on the shipped walker MFWM
    genrl demo --from-scratch                   # the full pipeline: collect, embed, pre-train, then behaviors
    genrl demo --preset tiny --out runs/tiny    # minutes; the CI smoke test
"""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> None:
    """Register ``demo``."""
    p = subparsers.add_parser("demo", help="run the whole GenRL pipeline (collect, embed, pretrain, decode, behave, "
                              "evaluate) and write OUT/report.html; re-running resumes")
    p.add_argument("--domain", default="walker", help="embodiment (default walker)")
    p.add_argument("--preset", default="small", choices=("small", "tiny"))
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--from-scratch", action="store_true", help="collect, embed and pre-train a new MFWM instead "
                   "of starting from the shipped one (the default when the package ships one for the domain)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from genrl.app.demo import run_demo

    state = run_demo(args.domain, args.preset, args.out, from_scratch=args.from_scratch)
    runs = state["stages"].get("behave", {}).get("runs", {})
    summary = {name: {"normalized": (r.get("eval") or {}).get("mean_normalized"),
                      "return": (r.get("eval") or {}).get("mean_return")} for name, r in runs.items()}
    timings = {k: round(v.get("seconds", 0.0) / 60, 1) for k, v in state["stages"].items()}
    print(json.dumps({"scores": summary, "minutes": timings, "report": f"{args.out}/report.html"}, indent=1))
    return 0
