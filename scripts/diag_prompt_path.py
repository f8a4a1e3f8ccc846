"""Diagnostic: is a task's GenRL reward limited by the text -> aligner path or by the connector? (issue 18)

Ranks the same held-out dataset windows as ``genrl reward-check`` (Spearman with the true task reward) with the
GenRL reward of three targets built from one task: (1) the Table 3 text prompt through the aligner (what
``genrl behave`` uses), (2) the text embedding fed to the connector without the aligner, (3) a *video* prompt: the
mean VLM embedding of the task expert's best training episodes (``source == "expert"``, the 100 % snapshot, not
held out), connector without aligner (the paper's video-prompt path). (3) high and (1) low: the text-to-vision
mapping is the limit, not the world model or the connector.

Usage: python scripts/diag_prompt_path.py runs/stickman_mfwm --dataset runs/data/stickman \\
           --tasks stickman_stand stickman_walk stickman_run [--json-out diag.json]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from genrl.behavior.reward import LatentReward, build_target
from genrl.data.dataset import Dataset
from genrl.data.split import split_names
from genrl.envs.registry import PROMPTS
from genrl.evaluation.reward_check import genrl_window_signal, posterior_windows
from genrl.mfwm.decode import prompt_embedding
from genrl.mfwm.pretrain import load_pretrained
from genrl.utils.stats import spearman
from genrl.vlm.registry import make_embedder


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run")
    p.add_argument("--dataset", required=True)
    p.add_argument("--tasks", nargs="+", required=True)
    p.add_argument("--horizon", type=int, default=16)
    p.add_argument("--rows", type=int, default=16)
    p.add_argument("--json-out", default=None)
    args = p.parse_args()

    torch.set_grad_enabled(False)
    model, cfg = load_pretrained(args.run)
    embedder = make_embedder("default")
    ds = Dataset(args.dataset)
    train, held = split_names(ds.names(), cfg["pretrain"].get("holdout", 0.0))
    size = args.horizon + 1
    stoch, index = posterior_windows(model, ds, held, size)
    task_names = [str(t) for t in ds.load(held[0], {"task_names"})["task_names"]]
    true_steps = {n: ds.load(n, {"task_rewards", "task_names"})["task_rewards"] for n in held}
    out = {}
    print("| task | text + aligner | text, no aligner | expert video, no aligner | expert episodes |")
    print("|---|---|---|---|---|")
    for task in args.tasks:
        sub = task.split("_", 1)[1]
        col = task_names.index(sub)
        true = np.asarray([true_steps[n][s:s + size, col].mean() for n, s in index], np.float64)
        text, _ = prompt_embedding(embedder, PROMPTS[task])
        experts = [n for n in train if ds.meta(n).get("source") == "expert" and ds.meta(n).get("task") == sub
                   and ds.meta(n).get("snapshot") == 100]
        video = np.concatenate([ds.load_embedding(embedder.id, n)[8:] for n in experts]).mean(0)
        video = torch.as_tensor(video / np.linalg.norm(video), dtype=torch.float32)
        row = {}
        for key, emb, aligner in (("text_aligner", text, True), ("text_no_aligner", text, False),
                                  ("video_no_aligner", video, False)):
            target = build_target(model, emb, args.rows, args.horizon, use_aligner=aligner)
            row[key] = spearman(genrl_window_signal(model, LatentReward(model.wm, target), stoch), true)
        out[task] = {**row, "experts": len(experts), "windows": len(index)}
        print(f"| {task} | {row['text_aligner']:.2f} | {row['text_no_aligner']:.2f} | "
              f"{row['video_no_aligner']:.2f} | {len(experts)} |")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"run": args.run, "step": cfg["step"], "rows": out}, f, indent=1)


if __name__ == "__main__":
    main()
