"""Write the model card of a pre-training run for ``genrl models export --card`` (JSON + Markdown).

Collects what a user needs to trust a shipped MFWM: the data and the command that made it, its update count and
training wall-clock (summed from ``metrics.jsonl``: seconds per update x updates per logged interval, so pauses and
restarts do not count), the machine's precision, held-out metrics (``genrl pretrain-eval``'s ``heldout.json``) and
behavior scores (a ``walker_curve.py`` JSON, rows of this run's step).

Usage::

    python scripts/make_card.py runs/walker_mfwm --dataset runs/data/walker --heldout runs/eval/heldout.json \\
        --curve docs/results/walker_curve.json --out runs/card
    genrl models export runs/walker_mfwm --name walker --card runs/card.json --readme runs/card.md
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path


def train_seconds(metrics: Path, start: int = 0, stop: int | None = None) -> float:
    """Training wall-clock from ``metrics.jsonl``: sum of ``seconds_per_update`` x updates in each interval.

    ``start``: the update count the run began at (a run started with ``genrl pretrain --init`` continues the
    count of the weights it started from; its first interval begins there, not at 0). ``stop``: the last update
    counted (a snapshot's step; rows after it are the run's later training)."""
    total, last = 0.0, start
    for line in metrics.read_text().splitlines():
        row = json.loads(line)
        if stop is not None and row["step"] > stop:
            break
        if "train/seconds_per_update" in row:
            total += row["train/seconds_per_update"] * (row["step"] - last)
            last = row["step"]
    return total


def _score_row(row: dict) -> dict:
    """A ``walker_curve.py`` row as is; a ``pretrain_curve.py`` row (``start``, ``budget``) in the same keys."""
    if "budget" not in row:
        return row
    return {"pretrain_step": row["pretrain_step"], "task": row["task"], "reward": "genrl",
            "data_free": row["start"] == "data-free", "behavior_updates": row["budget"], "mean": row["mean"],
            "se": row["se"], "seeds": len(row["seeds"])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run")
    p.add_argument("--dataset", required=True)
    p.add_argument("--heldout", default=None, help="heldout.json of genrl pretrain-eval")
    p.add_argument("--curve", default=None, help="walker_curve.py JSON with behavior scores")
    p.add_argument("--dataset-command", default="genrl collect walker --out runs/data/walker --frames 100000 "
                   "--workers 2 && genrl embed runs/data/walker --vlm default")
    p.add_argument("--out", required=True, help="writes OUT.json and OUT.md")
    p.add_argument("--start-step", type=int, default=0, help="update count the run started at (--init runs)")
    p.add_argument("--prior-hours", type=float, default=0.0, help="training hours of the --init weights (their "
                   "card's train_hours), added to this run's")
    p.add_argument("--metrics", default=None, help="the run's metrics.jsonl (default: RUN/metrics.jsonl; a "
                   "snapshot folder has none: pass its run's)")
    p.add_argument("--command", default=None, help="the pre-training command(s) that made the weights (default: a "
                   "single `genrl pretrain` run of the run's config)")
    args = p.parse_args()

    from genrl.data.dataset import Dataset
    from genrl.envs.registry import PROMPTS
    from genrl.mfwm.pretrain import load_pretrained

    _, cfg = load_pretrained(args.run)
    ds = Dataset(args.dataset)
    manifest = json.loads((Path(args.dataset) / "manifest.json").read_text())
    sources: dict[str, int] = {}  # episodes per subset (paper Table 4 style: "walker expl", "walker run", ...)
    for info in manifest["episodes"].values():
        sources[info.get("subset", "?")] = sources.get(info.get("subset", "?"), 0) + 1
    seconds = train_seconds(Path(args.metrics or Path(args.run) / "metrics.jsonl"), args.start_step, cfg["step"])
    pre = cfg["pretrain"]
    card = {
        "domain": cfg["domain"], "preset": pre["preset"], "embedder_id": cfg["embedder_id"],
        "data": {"episodes": len(ds.names()), "frames": ds.frames(), "sources": sources,
                 "holdout": pre["holdout"], "command": args.dataset_command},
        "command": args.command or f"genrl pretrain {args.dataset} --out {args.run} --preset {pre['preset']} "
                                   f"--steps {cfg['step']}",
        "updates": cfg["step"], "train_hours": round(args.prior_hours + seconds / 3600, 2),
        "machine": f"{platform.machine()} {platform.processor() or ''} (2 CPU cores)".strip(),
        "precision": "auto (bf16 autocast where the CPU has native bf16, else fp32)",
    }
    if args.heldout:
        held = json.loads(Path(args.heldout).read_text())
        card["heldout"] = {k: round(v, 5) for k, v in held["world_model"].items()}
    if args.curve:
        rows = [_score_row(r) for r in json.loads(Path(args.curve).read_text())["rows"]]
        card["scores"] = [r for r in rows if r["pretrain_step"] == cfg["step"]]
    Path(f"{args.out}.json").write_text(json.dumps(card, indent=1))
    lines = [f"# Shipped MFWM: {cfg['domain']} ({pre['preset']} preset)", "",
             f"- **Updates:** {cfg['step']} ({card['train_hours']} h of training on {card['machine']}; "
             f"{card['precision']})",
             f"- **Data:** {len(ds.names())} episodes, {ds.frames()} frames of `{args.dataset}` ("
             + ", ".join(f"{k}: {v}" for k, v in sources.items())
             + f"); {pre['holdout']:.0%} held out by name. Made by `{args.dataset_command}`.",
             f"- **VLM:** `{cfg['embedder_id']}` (the default MiniVLM); prompts must be embedded by the same model.",
             f"- **Command:** `{card['command']}` (weights exported in float16 by `genrl models export`)."]
    if "heldout" in card:
        h = card["heldout"]
        lines.append(f"- **Held-out (MSE per pixel):** reconstruction {h['recon_mse']:.4f}, 16-step open loop "
                     f"{h['openloop_mse']:.4f} (repeat-last-frame baseline {h['repeat_last_mse']:.4f}), connector "
                     f"{h['connector_mse']:.4f}.")
    if card.get("scores"):
        lines += ["", "| task | reward | start | behavior updates | normalized score (mean ± s.e.) | seeds |",
                  "|---|---|---|---|---|---|"]
        for r in card["scores"]:
            se = "" if r["se"] is None else f" ± {r['se']:.2f}"
            lines.append(f"| {r['task']} | {r['reward']} | {'data-free' if r['data_free'] else 'offline'} | "
                         f"{r['behavior_updates']} | {r['mean']:.2f}{se} | {r['seeds']} |")
    d = cfg["domain"]
    task = next(t for t in PROMPTS if t.startswith(d + "_"))
    lines += ["", f"Use it by name: `genrl behave {d} --task {task} --dataset runs/data/{d} --out runs/{task}`, "
              f"`genrl decode {d} --prompt \"{PROMPTS[task]}\" --out x.gif`; continue training with "
              f"`genrl pretrain runs/data/{d} --out runs/more --init {d} --steps N`."]
    Path(f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print(json.dumps(card, indent=1))


if __name__ == "__main__":
    main()
