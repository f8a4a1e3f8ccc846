"""The compute-quality curve of GenRL on walker: behavior scores per pre-training snapshot, beside the oracle ceiling.

For every pre-training run/snapshot given (``genrl pretrain --snapshot-at``), and every task x reward x seed:
``genrl behave SNAPSHOT --task T --reward genrl|oracle --seed S --steps N --eval-every E`` (offline starts, the
Table 3 prompt, 10 evaluation episodes at each of the budgets ``E, 2E, ..., N``; training seeds use disjoint
evaluation episodes, :func:`genrl.envs.rollout.eval_seed`). Per snapshot also the held-out reconstruction and
16-step open-loop MSE (``genrl pretrain-eval``) and the ``genrl reward-check`` Spearman of each task on the
held-out episodes. Runs go to ``--work`` (resumable: finished runs are read back, never re-run); the table, JSON
and PNG to ``--out``.

Usage::

    python scripts/walker_curve.py runs/walker_mfwm/snapshots/step_0002000 runs/walker_mfwm \\
        --dataset runs/data/walker --tasks walker_stand walker_lying_down walker_walk --seeds 0 1 \\
        --steps 2000 --eval-every 500 --rewards genrl oracle --parallel 2 --work runs/curve \\
        --out docs/results/walker_curve
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from genrl.evaluation.compare import mean_stderr

GENRL = [sys.executable, "-m", "genrl.app.cli"]


def run_dir(work: Path, snap: str, task: str, reward: str, seed: int, data_free: bool) -> Path:
    """Folder of one behavior run of the curve."""
    start = "data_free" if data_free else "offline"
    return work / Path(snap).name / f"{task}-{reward}-{start}-seed{seed}"


def behave(args, snap: str, task: str, reward: str, seed: int, data_free: bool) -> dict:
    """Run (or resume, or read back) one behavior; returns its evaluations by budget and wall-clock."""
    out = run_dir(Path(args.work), snap, task, reward, seed, data_free)
    done = out / "eval.json"
    if not done.is_file():
        cmd = [*GENRL, "behave", snap, "--task", task, "--reward", reward, "--seed", str(seed),
               "--steps", str(args.steps), "--eval-every", str(args.eval_every), "--eval-episodes",
               str(args.episodes), "--preset", "small", "--threads", str(args.threads), "--out", str(out)]
        cmd += ["--data-free"] if data_free else []
        cmd += ["--dataset", args.dataset] if (not data_free or reward == "oracle") else []
        out.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        with open(out / "log.txt", "a") as log:
            log.write(" ".join(cmd) + "\n")
            log.flush()
            subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT,
                           env={**os.environ, "TQDM_DISABLE": "1"})
        (out / "wallclock.json").write_text(json.dumps({"seconds": time.time() - t0, "cmd": cmd}))
    evals = {}
    for path in sorted((out / "evals").glob("step_*.json")):
        doc = json.loads(path.read_text())
        evals[int(doc["step"])] = {"mean": doc["mean_normalized"], "normalized": doc["normalized"],
                                   "seconds": doc.get("seconds")}
    wall = json.loads((out / "wallclock.json").read_text())["seconds"] if (out / "wallclock.json").is_file() else None
    metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if '"train/' in x]
    return {"snapshot": snap, "task": task, "reward": reward, "seed": seed, "data_free": data_free,
            "evals": evals, "wallclock_s": wall,
            "train_seconds_per_update": metrics[-1].get("train/seconds_per_update") if metrics else None}


def snapshot_metrics(args, snap: str) -> dict:
    """Held-out MSEs and reward-check Spearman of one snapshot (cached in the work folder)."""
    from genrl.evaluation.reward_check import RewardCheckConfig, reward_check
    from genrl.mfwm.evaluate import evaluate_pretrained
    from genrl.mfwm.pretrain import load_pretrained
    from genrl.vlm.registry import make_embedder

    cache = Path(args.work) / Path(snap).name / "snapshot.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    _, cfg = load_pretrained(snap)
    if args.skip_snapshot_metrics:  # not cached: a later run without the flag measures them
        return {"snapshot": snap, "step": cfg["step"]}
    vlm = make_embedder("default")
    held = evaluate_pretrained(snap, vlm, out=cache.parent / "pretrain_eval", dataset=args.dataset)
    rc = reward_check(RewardCheckConfig(run=snap, dataset=args.dataset, tasks=tuple(args.tasks)), vlm)
    doc = {"snapshot": snap, "step": cfg["step"], "recon_mse": held["world_model"]["recon_mse"],
           "openloop_mse": held["world_model"]["openloop_mse"],
           "repeat_last_mse": held["world_model"]["repeat_last_mse"],
           "reward_check_spearman": {t: rc["tasks"][t]["genrl"]["spearman"] for t in args.tasks}}
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(doc, indent=1))
    return doc


def summarize(snaps: list[dict], runs: list[dict], budgets: list[int]) -> list[dict]:
    """One row per snapshot x task x reward x start x budget: mean ± s.e. over seeds of the normalized score."""
    rows = []
    for s in snaps:
        for key in sorted({(r["task"], r["reward"], r["data_free"]) for r in runs}):
            group = [r for r in runs
                     if r["snapshot"] == s["snapshot"] and (r["task"], r["reward"], r["data_free"]) == key]
            for b in budgets:
                vals = [r["evals"][b]["mean"] for r in group if b in r["evals"]]
                if not vals:
                    continue
                m, se = mean_stderr(vals)
                se = se or 0.0  # one seed: no error bar
                rows.append({"pretrain_step": s["step"], "task": key[0], "reward": key[1], "data_free": key[2],
                             "behavior_updates": b, "mean": m, "se": se, "seeds": len(vals),
                             "wallclock_min": [round(r["wallclock_s"] / 60, 1) for r in group if r["wallclock_s"]]})
    return rows


def write_outputs(out: Path, snaps: list[dict], runs: list[dict], rows: list[dict], budgets: list[int]) -> None:
    """``OUT.json`` (everything), ``OUT.md`` (tables), ``OUT.png`` (score vs pre-training updates)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{out}.json").write_text(json.dumps({"snapshots": snaps, "rows": rows, "runs": runs,
                                               "command": " ".join(sys.argv)}, indent=1))
    lines = ["| pre-training updates | recon MSE | 16-step open-loop MSE | repeat-last MSE | reward-check Spearman |",
             "|---|---|---|---|---|"]
    for s in snaps:
        if "recon_mse" not in s:
            continue
        sp = ", ".join(f"{t.split('_', 1)[1]} {v:.2f}" for t, v in s["reward_check_spearman"].items())
        lines.append(f"| {s['step']} | {s['recon_mse']:.4f} | {s['openloop_mse']:.4f} | {s['repeat_last_mse']:.4f} "
                     f"| {sp} |")
    lines += ["", "| pre-training updates | task | start | behavior updates | GenRL | oracle |",
              "|---|---|---|---|---|---|"]
    for s in snaps:
        for task, df in sorted({(r["task"], r["data_free"]) for r in rows}):
            for b in budgets:
                cell = {}
                for r in rows:
                    at = (r["pretrain_step"], r["task"], r["data_free"], r["behavior_updates"])
                    if at == (s["step"], task, df, b):
                        cell[r["reward"]] = f"{r['mean']:.2f} ± {r['se']:.2f} ({r['seeds']} seeds)"
                if cell:
                    lines.append(f"| {s['step']} | {task} | {'data-free' if df else 'offline'} | {b} | "
                                 f"{cell.get('genrl', '')} | {cell.get('oracle', '')} |")
    Path(f"{out}.md").write_text("\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(budgets), figsize=(5 * len(budgets), 3.6), squeeze=False)
    for ax, b in zip(axes[0], budgets):
        for task, df in sorted({(r["task"], r["data_free"]) for r in rows}):
            for reward, style in (("genrl", "-o"), ("oracle", "--s")):
                pts = sorted((r["pretrain_step"], r["mean"], r["se"]) for r in rows if r["task"] == task and
                             r["data_free"] == df and r["reward"] == reward and r["behavior_updates"] == b)
                if pts:
                    xs, ms, ses = zip(*pts)
                    label = f"{task.split('_', 1)[1]}{' data-free' if df else ''} {reward}"
                    ax.errorbar(xs, ms, yerr=ses, fmt=style, capsize=3, label=label)
        ax.set(title=f"{b} behavior updates", xlabel="MFWM pre-training updates", ylabel="normalized score",
               ylim=(-0.1, 1.05))
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(f"{out}.png", dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("snapshots", nargs="+", help="pre-training runs / snapshots (or shipped model names)")
    p.add_argument("--dataset", required=True)
    p.add_argument("--tasks", nargs="+", default=["walker_stand", "walker_lying_down", "walker_walk"])
    p.add_argument("--rewards", nargs="+", default=["genrl", "oracle"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--data-free", action="store_true", help="also data-free starts (GenRL reward only)")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--threads", type=int, default=1, help="torch threads per behavior run")
    p.add_argument("--parallel", type=int, default=2, help="behavior runs at once")
    p.add_argument("--work", default="runs/curve")
    p.add_argument("--out", default="docs/results/walker_curve")
    p.add_argument("--skip-snapshot-metrics", action="store_true", help="no held-out MSEs / reward-check")
    p.add_argument("--summarize-only", action="store_true", help="start no run: tabulate the finished ones")
    args = p.parse_args()
    jobs = [(s, t, r, seed, False) for s in args.snapshots for t in args.tasks for r in args.rewards
            for seed in args.seeds]
    jobs += [(s, t, "genrl", seed, True) for s in args.snapshots for t in args.tasks for seed in args.seeds
             if args.data_free]
    if args.summarize_only:  # only the finished runs of the grid
        jobs = [j for j in jobs if (run_dir(Path(args.work), *j) / "eval.json").is_file()]
    with ThreadPoolExecutor(args.parallel) as pool:
        runs = list(pool.map(lambda j: behave(args, *j), jobs))
    snaps = [snapshot_metrics(args, s) for s in args.snapshots]
    budgets = list(range(args.eval_every, args.steps + 1, args.eval_every)) if args.eval_every else [args.steps]
    rows = summarize(snaps, runs, budgets)
    write_outputs(Path(args.out), snaps, runs, rows, budgets)
    print(Path(f"{args.out}.md").read_text())


if __name__ == "__main__":
    main()
