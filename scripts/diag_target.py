"""Diagnostic: what does a prompt's target mean in true-reward terms? (issue 15, section 3)

For a task's prompt, build the behavior target (as ``genrl behave`` does) and, on a subset of dataset episodes:
* for every target state, the nearest dataset state by the reward's score and that state's true task reward;
* the mean latent reward of dataset states, binned by their true task reward.

Usage: python scripts/diag_target.py walker --dataset runs/data/walker --task walker_stand [--every 5]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from genrl.behavior.config import behavior_preset
from genrl.behavior.oracle import posterior_steps
from genrl.behavior.reward import LatentReward, build_target, score_matrix
from genrl.data.dataset import Dataset
from genrl.envs.registry import PROMPTS
from genrl.mfwm.decode import prompt_embedding
from genrl.mfwm.pretrain import load_pretrained
from genrl.vlm.registry import make_embedder


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("run")
    p.add_argument("--dataset", required=True)
    p.add_argument("--task", default="walker_stand")
    p.add_argument("--prompt", default=None)
    p.add_argument("--video", default=None)
    p.add_argument("--every", type=int, default=5)
    p.add_argument("--score", default="max_cosine")
    p.add_argument("--rows", type=int, default=64)
    a = p.parse_args()
    torch.set_num_threads(1)
    model, mcfg = load_pretrained(a.run)
    model.eval().requires_grad_(False)
    emb_model = make_embedder("default")
    prompt = None if a.video else (a.prompt or PROMPTS[a.task])
    emb, _ = prompt_embedding(emb_model, prompt, a.video)
    bcfg = behavior_preset("small")
    target = build_target(model, emb, a.rows, bcfg.horizon, use_aligner=a.video is None)
    rew = LatentReward(model.wm, target, a.score, bcfg.align_b)
    ds = Dataset(a.dataset)
    names = ds.names()[:: a.every]
    z, r = posterior_steps(model, ds, names, a.task)
    dproj = rew.project(z.float())  # [N, P]
    tproj = rew.target_proj  # [M, L, P]
    M, L, P = tproj.shape
    # nearest dataset state of every target state
    sm = score_matrix(tproj.reshape(1, M * L, P), dproj[None], a.score)[0]  # [M*L, N]
    best = sm.argmax(-1)
    nn_r = r[best].reshape(M, L)
    print(f"prompt={prompt or a.video!r} dataset steps={len(r)} (true reward mean {r.mean():.3f})")
    print(f"nearest-dataset true reward of target states: mean {nn_r.mean():.3f}; per time step "
          + " ".join(f"{x:.2f}" for x in nn_r.mean(0).tolist()))
    row_means = nn_r.mean(1).numpy()
    print("per-row mean (sorted deciles):", np.round(np.quantile(row_means, np.linspace(0, 1, 11)), 2).tolist())
    print(f"best-score of target states to data: mean {sm.max(-1).values.mean():.3f}")
    # latent reward of dataset states vs target (mean over the target rows/time of the score with each state)
    per_state = sm.reshape(M, L, -1).mean((0, 1))  # [N]
    per_state_max = sm.max(0).values
    r = r / float(r.max())  # per-step reward summed over the action repeat: rescale to [0, 1]
    bins = [0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.01]
    for lo, hi in zip(bins[:-1], bins[1:]):
        m = (r >= lo) & (r < hi)
        if m.any():
            print(f"true reward [{lo:.1f},{hi:.1f}): n={int(m.sum()):6d} latent reward mean {per_state[m].mean():.3f} "
                  f"max-over-target {per_state_max[m].mean():.3f}")
    from genrl.utils.stats import spearman
    print("spearman(per-state latent reward, true):", round(spearman(per_state.double().numpy(),
                                                                      r.double().numpy()), 3))


if __name__ == "__main__":
    main()
