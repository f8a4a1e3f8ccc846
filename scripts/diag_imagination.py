"""Diagnostic: does the GenRL reward rise in imagination when the actions are good? (issue 15, section 3)

From the same offline start states, imagine ``H`` steps under several action sources and report, per imagined
step, the GenRL latent reward of the task's prompt and the oracle reward (a head fitted to the true reward):

* ``zero`` / ``random``: zero actions, uniform random actions;
* ``expert``: open loop, the dataset's own next actions of windows from the task's expert episodes (the actions
  that really made the robot do the task), starting from those windows' posterior states;
* ``data``: the same windows' posterior ``z`` themselves (no imagination), against the target with alignment;
* any behavior runs given with ``--runs`` (their actor's mean, closed loop in imagination).

If ``expert`` gets a clearly higher GenRL reward than ``random``, the reward's optimum in imagination is the task
and the actor-critic's optimisation is the limit; if not, the target (or the imagined latents) is.

Usage: python scripts/diag_imagination.py walker --dataset runs/data/walker --task walker_stand [--runs B1 B2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from genrl.behavior.actor_critic import imagine
from genrl.behavior.config import behavior_preset
from genrl.behavior.oracle import OracleReward, OracleRewardHead, fit_oracle
from genrl.behavior.policy import load_behavior, world_model_fingerprint
from genrl.behavior.reward import LatentReward, build_target
from genrl.data.dataset import Dataset
from genrl.data.sampler import SequenceSampler
from genrl.envs.registry import PROMPTS, split_task
from genrl.mfwm.decode import prompt_embedding
from genrl.mfwm.model import MFWM
from genrl.mfwm.pretrain import load_pretrained
from genrl.vlm.registry import make_embedder


def expert_windows(ds: Dataset, task: str, n: int, length: int, seed: int) -> dict[str, torch.Tensor]:
    """``n`` windows of ``length + 1`` steps from the 100 % expert episodes of ``task`` (uint8 frames)."""
    _, name = split_task(task)
    eps = [k for k in ds.names() if (v := ds.meta(k)).get("source") == "expert" and v.get("task") == name
           and v.get("snapshot") == 100]
    if not eps:
        raise SystemExit(f"no 100 % expert episodes of {task} in {ds.root}")
    rng = np.random.default_rng(seed)
    obs, act, first = [], [], []
    for i in range(n):
        ep = ds.load(eps[i % len(eps)], {"observation", "action", "is_first"})
        t0 = int(rng.integers(20, len(ep["action"]) - length - 1))
        sl = slice(t0, t0 + length + 1)
        obs.append(ep["observation"][sl]), act.append(ep["action"][sl]), first.append(ep["is_first"][sl])
    return {"observation": torch.from_numpy(np.stack(obs)), "action": torch.from_numpy(np.stack(act)).float(),
            "is_first": torch.from_numpy(np.stack(first))}


def cached_oracle(model: MFWM, run: str, ds: Dataset, task: str, seed: int = 0) -> OracleReward:
    """The oracle reward of ``task`` fitted on ``model`` (:func:`fit_oracle`), cached under ``runs/`` by the
    world model's checkpoint sha256, the task and the seed (the fit takes minutes)."""
    sha = world_model_fingerprint(run)["sha256"][:12]
    cache = Path(f"runs/diag_oracle_{sha}_{task}_{seed}.safetensors")
    head = OracleRewardHead(model.wm.cfg.stoch, model.wm.cfg.discrete)
    if cache.is_file():
        head.load_state_dict(load_file(str(cache)))
    else:
        head, rep = fit_oracle(model, ds, task, seed=seed)
        print(f"oracle fit: check spearman {rep['check_spearman']:.3f}")
        cache.parent.mkdir(parents=True, exist_ok=True)
        save_file(head.state_dict(), str(cache))
    return OracleReward(head)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("run")
    p.add_argument("--dataset", required=True)
    p.add_argument("--task", default="walker_stand")
    p.add_argument("--runs", nargs="*", default=[])
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--score", default="max_cosine")
    p.add_argument("--align-b", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--imagine", type=int, default=None, help="imagined steps (default: the horizon, 16)")
    p.add_argument("--fallen", action="store_true", help="dataset starts: keep those the oracle scores < 0.5")
    p.add_argument("--starts", choices=("expert", "dataset"), default="expert",
                   help="expert: windows of the task's 100 %% expert episodes; dataset: random dataset windows "
                        "(as behave samples them; no 'expert' row)")
    a = p.parse_args()
    torch.manual_seed(a.seed)
    model, _ = load_pretrained(a.run)
    model.eval().requires_grad_(False)
    wm = model.wm
    bcfg = behavior_preset("small")
    H = bcfg.horizon
    emb, _ = prompt_embedding(make_embedder("default"), PROMPTS[a.task], None)
    target = build_target(model, emb, bcfg.starts, H, True, seed=a.seed)
    genrl = LatentReward(wm, target, a.score, a.align_b)
    ds = Dataset(a.dataset)
    oracle = cached_oracle(model, a.run, ds, a.task, a.seed)
    if a.starts == "expert":
        win = expert_windows(ds, a.task, a.n, H, a.seed)
    else:
        sampler = SequenceSampler.from_dataset(ds, a.n, H + 1, seed=a.seed, keys=("observation", "action", "is_first"))
        win = {k: torch.as_tensor(v) for k, v in sampler.sample().items()}
    post, _ = wm.observe(win, sample=True)
    # start = the window's first posterior state; expert actions = the window's next actions
    start = {k: v[:, 0] for k, v in post.items()}
    if a.fallen:
        keep = oracle(post["stoch"][:, :1])[0][:, 0] < 0.5
        print(f"fallen starts: {int(keep.sum())} of {len(keep)}")
        post = {k: v[keep] for k, v in post.items()}
        start = {k: v[keep] for k, v in start.items()}
        win = {k: v[keep] for k, v in win.items()}
    acts = win["action"][:, 1:]  # action t+1 produced observation t+1
    steps = a.imagine or H
    if steps != H:  # longer imaginations: no data actions beyond the window
        acts = torch.zeros(len(acts), steps, acts.shape[-1])

    def report(label: str, stoch: torch.Tensor) -> None:
        stride = max(1, stoch.shape[1] // 5)
        g, off = genrl(stoch)
        o, _ = oracle(stoch)
        print(f"{label:>14}: genrl {g[:, 1:].mean():.3f} (per step {' '.join(f'{x:.2f}' for x in g.mean(0)[::stride])})"
              f"  oracle {o[:, 1:].mean():.3f} (per step {' '.join(f'{x:.2f}' for x in o.mean(0)[::stride])})"
              f"  offset {off.float().mean():.1f}")

    report("data (post)", post["stoch"])
    def open_loop(actions: torch.Tensor):
        it = iter(range(actions.shape[1]))
        return lambda feat: (actions[:, next(it)], torch.zeros(len(feat)))

    with torch.no_grad():
        sources = [("expert", acts)] if a.starts == "expert" else [("data actions", acts)]
        for label, actions in sources + [("zero", torch.zeros_like(acts)), ("random", torch.rand_like(acts) * 2 - 1)]:
            states, _, _, _ = imagine(wm, open_loop(actions), start, steps)
            report(label, states["stoch"])
        for run in a.runs:
            _, ac, _, _ = load_behavior(run, "cpu")
            states, _, _, _ = imagine(wm, lambda f: (ac.actor.mode(f), torch.zeros(len(f))), start, steps)
            report(run.rstrip("/").split("/")[-1][:14], states["stoch"])


if __name__ == "__main__":
    main()
