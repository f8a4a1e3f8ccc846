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
from collections import defaultdict
from pathlib import Path

from genrl.evaluation.compare import find_eval_files, load_eval, mean_stderr


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


def collect(root: Path) -> list[dict]:
    """Every run under ``root``: ``{"run", "column", "task", "seed", "steps", "seconds", "normalized"}``, the column
    as ``genrl compare`` names it (``genrl``, ``genrl-data-free``, ``iql-video`` ...; read by its ``load_eval``)."""
    rows = []
    for f in find_eval_files([root]):
        res = load_eval(f)
        if res is None:                             # no score (mean_normalized null)
            continue
        run = f.parent
        seconds, steps = train_seconds(run / "metrics.jsonl")
        group = run.parent / "group.json"
        if group.exists():
            seconds /= len(json.loads(group.read_text())["members"])
        rows.append({"run": str(run), "column": res.column, "task": res.task, "seed": res.seed, "steps": steps,
                     "seconds": round(seconds, 1), "normalized": res.score})
    return rows


def summarize(rows: list[dict]) -> str:
    """Markdown table: one line per (column, task), mean over seeds."""
    cells = defaultdict(list)
    for r in rows:
        cells[(r["column"], r["task"])].append(r)
    out = ["| column | task | seeds | updates | training s per run | normalized (mean ± s.e. over seeds) |",
           "|---|---|---|---|---|---|"]
    for (col, task), rs in sorted(cells.items()):
        m, se = mean_stderr([r["normalized"] for r in rs])
        secs = sum(r["seconds"] for r in rs) / len(rs)
        steps = sorted({r["steps"] for r in rs})
        score = f"{m:.2f} (one seed)" if se is None else f"{m:.2f} ± {se:.2f}"
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
