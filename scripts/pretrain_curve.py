"""Compute-quality curve over pre-training updates from behavior-run summaries (``scripts/collect_ab.py`` JSONs).

Each ``--point STEP=FILE`` is one MFWM snapshot (``STEP`` pre-training updates) and the ``collect_ab.py`` JSON of
the behavior runs trained on it; ``--heldout STEP=FILE`` adds that snapshot's ``genrl pretrain-eval``
``heldout.json``. Per snapshot, task, start kind (offline / data-free; text prompts only) and behavior budget:
mean ± standard error over the training seeds of each seed's 10-episode normalized mean. Writes ``OUT.md`` (tables),
``OUT.json`` (the same numbers) and ``OUT.png`` (score vs pre-training updates, one line per task at ``--budget``).

Usage::

    python scripts/pretrain_curve.py --point 10000=docs/results/walker_ab_20261202.json \\
        --point 18000=docs/results/walker_ab_18k.json --heldout 18000=runs/peval/0018000/heldout.json \\
        --out docs/results/walker_pretrain_curve
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from genrl.evaluation.compare import mean_stderr


def _pair(text: str) -> tuple[int, Path]:
    step, _, path = text.partition("=")
    if not step.isdigit() or not path:
        raise argparse.ArgumentTypeError(f"expected STEP=FILE, got {text!r}")
    return int(step), Path(path)


def cells(points: list[tuple[int, Path]]) -> list[dict]:
    """Rows ``{pretrain_step, task, start, budget, mean, se, seeds, per_seed}`` (text prompts only)."""
    groups: dict[tuple, dict[int, float]] = {}
    for step, path in points:
        for run in json.loads(path.read_text()):
            if run.get("video"):
                continue
            start = "data-free" if run["data_free"] else "offline"
            for budget, ev in run["evals"].items():
                groups.setdefault((step, run["task"], start, int(budget)), {})[run["seed"]] = ev["mean_normalized"]
    rows = []
    for (step, task, start, budget), by_seed in sorted(groups.items()):
        m, se = mean_stderr(list(by_seed.values()))
        rows.append({"pretrain_step": step, "task": task, "start": start, "budget": budget, "mean": round(m, 4),
                     "se": None if se is None else round(se, 4), "seeds": sorted(by_seed),
                     "per_seed": {str(s): v for s, v in sorted(by_seed.items())}})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--point", type=_pair, action="append", required=True, help="STEP=collect_ab JSON")
    ap.add_argument("--heldout", type=_pair, action="append", default=[], help="STEP=heldout.json")
    ap.add_argument("--budget", type=int, default=1000, help="behavior updates plotted")
    ap.add_argument("--out", required=True, help="writes OUT.md, OUT.json, OUT.png")
    args = ap.parse_args()
    rows = cells(args.point)
    held = {s: json.loads(p.read_text())["world_model"] for s, p in args.heldout}
    lines = ["| pre-training updates | recon MSE | 16-step open-loop MSE | repeat-last MSE | connector MSE |",
             "|---|---|---|---|---|"]
    for s, h in sorted(held.items()):
        lines.append(f"| {s} | {h['recon_mse']:.4f} | {h['openloop_mse']:.4f} | {h['repeat_last_mse']:.4f} | "
                     f"{h['connector_mse']:.4f} |")
    lines += ["", "| pre-training updates | task | start | behavior updates | normalized (mean ± s.e. over seeds) | "
              "per seed |", "|---|---|---|---|---|---|"]
    for r in rows:
        se = "" if r["se"] is None else f" ± {r['se']:.2f}"
        per = ", ".join(f"s{k}: {v:.2f}" for k, v in r["per_seed"].items())
        lines.append(f"| {r['pretrain_step']} | {r['task']} | {r['start']} | {r['budget']} | {r['mean']:.2f}{se} | "
                     f"{per} |")
    out = Path(args.out)
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps({"rows": rows, "heldout": {str(k): v for k, v in held.items()},
                                                    "points": {str(s): str(p) for s, p in args.point}}, indent=1))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    series: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if r["budget"] == args.budget:
            series.setdefault((r["task"], r["start"]), []).append(r)
    for (task, start), rs in sorted(series.items()):
        xs = [r["pretrain_step"] for r in rs]
        ax.errorbar(xs, [r["mean"] for r in rs], yerr=[r["se"] or 0.0 for r in rs], marker="o", capsize=3,
                    label=f"{task.split('_', 1)[1]} ({start})", linestyle="-" if start == "offline" else "--")
    ax.set_xlabel("MFWM pre-training updates")
    ax.set_ylabel(f"normalized score after {args.budget} behavior updates")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=120)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
