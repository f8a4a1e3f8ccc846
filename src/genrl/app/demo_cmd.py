"""``genrl demo``: the whole pipeline end to end (see :mod:`genrl.app.demo`).

Usage::

    genrl demo                                  # walker, small preset, runs/demo, on the shipped walker MFWM
    genrl demo --from-scratch                   # the full pipeline: collect, embed, pre-train, then behaviors
    genrl demo --preset tiny --out runs/tiny    # minutes; the CI smoke test
    genrl demo --print-config                   # what would run (path, sizes, behaviors), nothing is written
"""

from __future__ import annotations

import argparse
import json

from genrl.app.config_args import add_config_args, add_print_config, config_from_args, print_config
from genrl.app.demo import DemoConfig, DemoPreset, demo_settings, run_demo


def add_parser(subparsers) -> None:
    """Register ``demo``."""
    p = subparsers.add_parser("demo", help="run the whole GenRL pipeline (collect, embed, pretrain, decode, behave, "
                              "evaluate) and write OUT/report.html; re-running resumes",
                              description="The whole pipeline end to end (genrl.app.demo). Options are the fields "
                              "of genrl.app.demo.DemoConfig; the preset's sizes: --print-config.")
    add_config_args(p, DemoConfig, presets={"preset": DemoPreset})
    add_print_config(p)
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    cfg = config_from_args(DemoConfig, args)
    if args.print_config:
        _, _, settings = demo_settings(cfg)
        return print_config({"demo": cfg, "settings": settings})
    state = run_demo(cfg.domain, cfg.preset, cfg.out, from_scratch=cfg.from_scratch)
    runs = state["stages"].get("behave", {}).get("runs", {})
    summary = {name: {"normalized": (r.get("eval") or {}).get("mean_normalized"),
                      "return": (r.get("eval") or {}).get("mean_return")} for name, r in runs.items()}
    timings = {k: round(v.get("seconds", 0.0) / 60, 1) for k, v in state["stages"].items()}
    print(json.dumps({"scores": summary, "minutes": timings, "report": f"{args.out}/report.html"}, indent=1))
    return 0
