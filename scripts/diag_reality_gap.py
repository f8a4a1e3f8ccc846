"""Diagnostic: does a behavior do in the real environment what it does in the world model's imagination?
(issue 15, section 3)

Runs a behavior's actor (mean action, acting from pixels through the posterior as ``genrl eval`` does) in the real
environment, and at every ``--every``-th real step imagines ``--horizon`` steps ahead from the current posterior
state with the same actor. Per episode it prints the true per-step task reward the real environment gave, the
oracle head's reading of the real posterior states, and the oracle head's reading of the imagined states (what the
model predicted would happen). Imagined >> real means the actor exploits the model (its actions stand up in the
model, not in physics); imagined ~ real and both low means the behavior really fails.

Usage: python scripts/diag_reality_gap.py runs/stand --dataset runs/data/walker [--episodes 3]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from genrl.behavior.actor_critic import imagine
from genrl.behavior.config import from_dict
from genrl.behavior.reward import LatentReward
from genrl.behavior.policy import load_behavior
from genrl.data.dataset import Dataset
from genrl.envs.registry import make
from genrl.envs.rollout import eval_seed
from genrl.behavior.agent import WorldModelPolicy

from diag_imagination import cached_oracle  # scripts/ is on sys.path when this script runs


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("runs", nargs="+")
    p.add_argument("--dataset", required=True)
    p.add_argument("--episodes", type=int, default=3)
    p.add_argument("--every", type=int, default=20)
    p.add_argument("--horizon", type=int, default=32)
    p.add_argument("--steps", type=int, default=200)
    a = p.parse_args()
    torch.manual_seed(0)
    for run in a.runs:
        model, ac, cfg, target = load_behavior(run, "cpu")
        wm, task = model.wm, cfg["task"]
        oracle = cached_oracle(model, cfg["run"], Dataset(a.dataset), task)
        bcfg = from_dict(cfg["behavior"])  # the run's own cached prompt target, for the GenRL reward columns
        genrl = LatentReward(wm, target, bcfg.score, bcfg.align_b) if cfg.get("reward") == "genrl" else None
        rows = []
        for ep in range(a.episodes):
            env = make(task, seed=eval_seed(0) + ep)
            obs, _ = env.reset(seed=eval_seed(0) + ep)
            pol = WorldModelPolicy(wm, ac.actor.mode)
            pol.reset(1)
            first = True
            real_r, real_o, imag_o, real_z, imag_g = [], [], {}, [], {}
            for t in range(a.steps):
                action = pol.act(obs["image"][None], np.array([first]))
                first = False
                real_o.append(float(oracle(pol.state["stoch"][:, None])[0]))
                real_z.append(pol.state["stoch"])
                if t % a.every == 0:
                    with torch.no_grad():
                        st, _, _, _ = imagine(wm, lambda f: (ac.actor.mode(f), torch.zeros(len(f))), pol.state,
                                              a.horizon)
                        imag_o[t] = oracle(st["stoch"])[0][0].numpy()
                        if genrl is not None:
                            imag_g[t] = float(genrl(st["stoch"])[0][0, 1:].mean())
                obs, r, term, trunc, _ = env.step(action[0])
                real_r.append(float(r))
                if term or trunc:
                    break
            env.close()
            real_o_arr = np.array(real_o)
            gaps = [(float(imag_o[t][1:].mean()), float(real_o_arr[t + 1:t + 1 + a.horizon].mean()),
                     float(np.mean(real_r[t:t + a.horizon]))) for t in imag_o if t + a.horizon < len(real_o)]
            g = np.array(gaps)
            if genrl is not None:  # GenRL reward: imagined from t vs the real posterior states t .. t + H
                zs = torch.stack(real_z, 1)
                gg = [(imag_g[t], float(genrl(zs[:, t:t + a.horizon + 1])[0][0, 1:].mean())) for t in imag_o
                      if t + a.horizon < len(real_o)]
                g = np.concatenate([g, np.array(gg)], 1)
            rows.append(g.mean(0))
            print(f"{Path(run).name} ep {ep}: true reward/step {np.mean(real_r):.2f}; over the next {a.horizon} steps: "
                  f"imagined oracle {g[:, 0].mean():.2f}, real-posterior oracle {g[:, 1].mean():.2f}, "
                  f"true {g[:, 2].mean():.2f}"
                  + (f"; GenRL reward imagined {g[:, 3].mean():.3f}, real {g[:, 4].mean():.3f}" if genrl else "")
                  + "  (oracle imagined/real per start: "
                  + " ".join(f"{x:.1f}/{y:.1f}" for x, y, _ in gaps) + ")")
        m = np.mean(rows, 0)
        print(f"== {Path(run).name}: imagined oracle {m[0]:.2f}, real-posterior oracle {m[1]:.2f}, true {m[2]:.2f}"
              + (f"; GenRL reward imagined {m[3]:.3f}, real {m[4]:.3f}" if genrl else ""))


if __name__ == "__main__":
    main()
