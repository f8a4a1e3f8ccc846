"""Collect behavior runs' evaluations into one JSON (normalized mean and standard error per evaluation).

Usage::

    python scripts/collect_ab.py runs/ab/ms03_s0 runs/ab/ms03_s1 ... --out docs/results/walker_ab.json

Each run folder is a ``genrl behave --out`` folder; the JSON holds, per run, its task, prompt or video, start
kind, seed, the behavior-config overrides, and per evaluation step the 10 episodes' normalized scores with
their mean and standard error.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from genrl.evaluation.compare import mean_stderr


def run_summary(run: Path) -> dict:
    """One behavior run folder -> ``{"run" (parent/name), "task", "reward", "prompt", "video", "data_free", "seed",
    "overrides", "behavior", "evals"}``."""
    cfg = json.loads((run / "config.json").read_text())
    evals = {}
    for f in sorted((run / "evals").glob("step_*.json"), key=lambda f: int(f.stem.split("_")[1])):
        d = json.loads(f.read_text())
        xs = d["normalized"]
        mean, se = mean_stderr(xs)
        evals[int(f.stem.split("_")[1])] = {"mean_normalized": round(mean, 4), "stderr": round(se or 0.0, 4),
                                            "normalized": [round(x, 4) for x in xs]}
    b = cfg["behave"]
    return {"run": f"{run.parent.name}/{run.name}", "task": cfg["task"], "reward": cfg.get("reward", "genrl"),
            "prompt": cfg["prompt"], "video": Path(cfg["video"]).name if cfg.get("video") else None,
            "data_free": cfg["data_free"], "seed": b["seed"], "overrides": b["overrides"], "behavior": cfg["behavior"], "evals": evals}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    doc = [run_summary(Path(r)) for r in args.runs]
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    for r in doc:
        print(r["run"], r["task"], r["video"] or "", "data-free" if r["data_free"] else "offline", r["seed"],
              {k: f"{v['mean_normalized']:.2f}±{v['stderr']:.2f}" for k, v in r["evals"].items()})


if __name__ == "__main__":
    main()
