"""Score against behavior updates (the behavior-budget curve) from a ``scripts/collect_ab.py`` JSON.

Runs are grouped by task, reward (``genrl`` / ``oracle``), start kind and config overrides (everything but the
seed); each group's curve is the mean over its seeds of the per-seed normalized score (10 episodes each) at every
evaluated budget, with the standard error over the seeds (none for one seed). Writes ``OUT.md`` (a table) and
``OUT.png`` (one panel per task).

Usage::

    python scripts/collect_ab.py runs/walk4k/s0 runs/walk4k/s1 runs/oracle4k/s0 --out docs/results/walker_ab.json
    python scripts/budget_curve.py docs/results/walker_ab.json --out docs/results/walker_budget_curve
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from genrl.evaluation.compare import mean_stderr


def group_key(run: dict) -> tuple[str, str, bool, str]:
    """``(task, reward, data_free, overrides)`` of one collected run: the curve it belongs to."""
    overrides = " ".join(f"{k}={v}" for k, v in sorted((run.get("overrides") or {}).items()))
    return run["task"], run.get("reward", "genrl"), bool(run["data_free"]), overrides


def curves(runs: list[dict]) -> dict[tuple, list[tuple[int, float, float | None, int]]]:
    """``{group: [(behavior updates, mean, stderr or None, seeds), ...]}`` sorted by updates."""
    per: dict[tuple, dict[int, list[float]]] = {}
    for run in runs:
        for step, ev in run["evals"].items():
            per.setdefault(group_key(run), {}).setdefault(int(step), []).append(ev["mean_normalized"])
    return {g: [(s, *mean_stderr(v), len(v)) for s, v in sorted(steps.items())] for g, steps in per.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("json", nargs="+", help="collect_ab.py outputs")
    ap.add_argument("--out", required=True, help="output prefix (OUT.md, OUT.png)")
    args = ap.parse_args()
    runs = [r for f in args.json for r in json.loads(Path(f).read_text())]
    if not runs:
        raise SystemExit(f"{args.json}: no runs")
    cs = curves(runs)
    lines = ["| task | reward | start | overrides | behavior updates | normalized (mean ± s.e. over seeds) | seeds |",
             "|---|---|---|---|---|---|---|"]
    for (task, reward, df, ov), pts in sorted(cs.items()):
        for step, m, se, n in pts:
            lines.append(f"| {task} | {reward} | {'data-free' if df else 'offline'} | {ov or '-'} | {step} | "
                         f"{m:.2f}{f' ± {se:.2f}' if se is not None else ''} | {n} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{out}.md").write_text("\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({g[0] for g in cs})
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for (t, reward, df, ov), pts in sorted(cs.items()):
            if t != task:
                continue
            xs, ms, ses, _ = zip(*pts)
            label = f"{reward}{' data-free' if df else ''}{f' {ov}' if ov else ''} ({max(p[3] for p in pts)} seeds)"
            ax.errorbar(xs, ms, yerr=[s or 0.0 for s in ses], fmt="--s" if reward == "oracle" else "-o",
                        capsize=3, label=label)
        ax.set(title=task, xlabel="behavior updates", ylabel="normalized score", ylim=(-0.05, 1.0))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(f"{out}.png", dpi=110)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
