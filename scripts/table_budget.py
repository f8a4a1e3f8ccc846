"""Training wall-clock of every run of a Table 1 block, per column and task, beside its score.

Usage::

    python scripts/table_budget.py runs/table [--json-out docs/results/walker_table_22k.json]

Reads every ``eval.json`` under the folder (``genrl baseline`` and ``genrl behave`` runs, single or grouped) and
its sibling ``metrics.jsonl``. A run's training seconds are the time between its first and last training record,
less the evaluations logged between them, scaled to all its updates
(``(t_last - t_first - eval seconds) * steps / (step_last - step_first)``); a
member of a ``genrl behave`` group (a ``group.json`` in the folder above) is charged ``1 / K`` of the group's time,
which is what each of the K behaviors cost. Prints a markdown table (column, task, seeds, updates, training
seconds per run, normalized score mean ± standard error over seeds).
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path


def train_seconds(metrics: Path) -> tuple[float, int]:
    """``metrics.jsonl`` -> (training seconds scaled to all updates, last training step).

    Raises:
        ValueError: fewer than two training records (nothing to time).
    """
    recs, evals = [], []
    for line in metrics.read_text().splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        if any(k.startswith("train/") for k in r):
            recs.append((int(r["step"]), float(r["time"])))
        elif "eval/seconds" in r:
            evals.append((float(r["time"]), float(r["eval/seconds"])))
    if len(recs) < 2:
        raise ValueError(f"{metrics}: fewer than two training records; cannot time the run")
    (s0, t0), (s1, t1) = recs[0], recs[-1]
    evaluating = sum(sec for t, sec in evals if t0 < t <= t1)   # evaluations between the two records
    return (t1 - t0 - evaluating) * s1 / max(s1 - s0, 1), s1


def column(ev: dict) -> str:
    """eval.json -> its column name (``GenRL``, ``GenRL data-free``, ``IQL-video`` ...)."""
    method = ev.get("method", "genrl")
    if method.startswith("genrl"):                  # genrl, genrl-data-free
        return ("GenRL" + (" video prompt" if ev.get("video_prompt") else "")
                + (" data-free" if "data-free" in method else ""))
    names = {"iql": "IQL", "td3bc": "TD3+BC", "td3": "TD3"}
    return f"{names.get(method, method)}-{ev.get('reward')}"


def collect(root: Path) -> list[dict]:
    """Every run under ``root``: ``{"column", "task", "seed", "steps", "seconds", "normalized"}``."""
    rows = []
    for f in sorted(root.rglob("eval.json")):
        ev = json.loads(f.read_text())
        run = f.parent
        seconds, steps = train_seconds(run / "metrics.jsonl")
        group = run.parent / "group.json"
        if group.exists():
            seconds /= len(json.loads(group.read_text())["members"])
        col = column(ev)
        cfg = json.loads((run / "config.json").read_text()) if (run / "config.json").exists() else {}
        if cfg.get("data_free") and not col.endswith("data-free"):
            col += " data-free"
        rows.append({"run": str(run), "column": col, "task": ev["task"], "seed": ev.get("seed"), "steps": steps,
                     "seconds": round(seconds, 1), "normalized": ev["mean_normalized"]})
    return rows


def summarize(rows: list[dict]) -> str:
    """Markdown table: one line per (column, task), mean over seeds."""
    cells = defaultdict(list)
    for r in rows:
        cells[(r["column"], r["task"])].append(r)
    out = ["| column | task | seeds | updates | training s per run | normalized (mean ± s.e. over seeds) |",
           "|---|---|---|---|---|---|"]
    for (col, task), rs in sorted(cells.items()):
        xs = [r["normalized"] for r in rs]
        m = sum(xs) / len(xs)
        secs = sum(r["seconds"] for r in rs) / len(rs)
        steps = sorted({r["steps"] for r in rs})
        if len(xs) > 1:
            score = f"{m:.2f} ± {math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1) / len(xs)):.2f}"
        else:
            score = f"{m:.2f} (one seed)"
        out.append(f"| {col} | {task} | {len(rs)} | {'/'.join(map(str, steps))} | {secs:.0f} | {score} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root", type=Path, help="a folder of runs (e.g. the OUT of scripts/walker_table.sh)")
    ap.add_argument("--json-out", type=Path, default=None, help="write every run's row here")
    args = ap.parse_args()
    if not args.root.is_dir():
        raise SystemExit(f"{args.root}: no such folder of runs")
    rows = collect(args.root)
    if not rows:
        raise SystemExit(f"{args.root}: no eval.json under it")
    print(summarize(rows))
    if args.json_out:
        args.json_out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
