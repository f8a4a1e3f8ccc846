"""Behavior-learning speed: actor-critic update time (s/update) and imagination throughput (imagined states/s).

A randomly initialised MFWM of the world-model preset (no dataset, no VLM: a random unit prompt embedding) and the
behavior preset's actor-critic. For each start count (default 256 and 512; horizon 16) it reports:

* ``update``: one :meth:`ActorCritic.update` (imagination with gradients + reward + alignment + actor and critic
  steps), median wall-clock seconds and process CPU seconds (all threads; on a machine shared with other jobs the
  CPU time of a ``--threads 1`` run is the better estimate of the unloaded single-core time);
* ``imagine``: a no-grad policy rollout, imagined states per second (``starts * horizon / time``);
* ``offline starts``: world-model posterior of a ``[B, T]`` batch of random frames (the offline per-update data
  cost; ``B * T`` = the start count);
* ``data-free starts``: synthetic start states (connector samples + 5 warm-up steps).

Usage::

    python benchmarks/bench_behavior.py --threads 2                    # small presets, 256 and 512 starts
    python benchmarks/bench_behavior.py --preset paper --wm-preset paper --device cuda --starts 1024

Target (issue "behavior"): small preset <= ~0.4 s/update on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from genrl.behavior.actor_critic import ActorCritic, imagine
from genrl.behavior.config import BehaviorConfig, behavior_preset
from genrl.behavior.reward import LatentReward, build_target
from genrl.behavior.starts import data_free_starts, offline_starts
from genrl.mfwm.model import MFWM
from genrl.utils.presets import names
from genrl.worldmodel.config import WorldModelConfig, preset


def _timed(fn, repeats: int, warmup: int, dev: torch.device, cpu: list[float] | None = None) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls after ``warmup``; process CPU seconds appended to ``cpu``."""
    times = []
    for i in range(warmup + repeats):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
            if cpu is not None:
                cpu.append(time.process_time() - c0)
    return times


def _batch_shape(starts: int, length: int) -> tuple[int, int]:
    return max(1, starts // length), length


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small", choices=names(BehaviorConfig), help="behavior preset")
    ap.add_argument("--wm-preset", default="small", choices=names(WorldModelConfig), help="world-model preset")
    ap.add_argument("--starts", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--horizon", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--action-dim", type=int, default=6)
    ap.add_argument("--embed-dim", type=int, default=256)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    wm_cfg = preset(args.wm_preset)
    model = MFWM(wm_cfg, args.action_dim, args.embed_dim, 8).to(dev).eval().requires_grad_(False)
    wm = model.wm
    emb = F.normalize(torch.randn(1, args.embed_dim), dim=-1)
    print(f"behavior preset={args.preset} world model={args.wm_preset} device={dev} threads={args.threads} "
          f"horizon={args.horizon} feat_dim={wm.feat_dim}")
    for n in args.starts:
        B, T = _batch_shape(n, 16)
        bcfg = behavior_preset(args.preset, horizon=args.horizon, batch_size=B, batch_length=T)
        ac = ActorCritic(bcfg, wm.feat_dim, args.action_dim).to(dev)
        opts = ac.optimizers()
        reward_fn = LatentReward(wm, build_target(model, emb, bcfg.starts, bcfg.horizon), bcfg.score, bcfg.align_b)
        start = data_free_starts(model, bcfg.starts, lambda f: ac.actor.sample(f)[0])
        cpu: list[float] = []
        upd = _timed(lambda: ac.update(wm, reward_fn, start, opts), args.steps, args.warmup, dev, cpu)

        def rollout():
            with torch.no_grad():
                imagine(wm, ac.actor.sample, start, bcfg.horizon)

        img = _timed(rollout, args.steps, args.warmup, dev)
        batch = {"observation": torch.randint(0, 256, (B, T, 3, 64, 64), dtype=torch.uint8),
                 "action": torch.rand(B, T, args.action_dim) * 2 - 1, "is_first": torch.zeros(B, T, dtype=torch.bool)}
        off = _timed(lambda: offline_starts(wm, batch), max(2, args.steps // 2), 1, dev)
        free = _timed(lambda: data_free_starts(model, bcfg.starts, lambda f: ac.actor.sample(f)[0]),
                      max(2, args.steps // 2), 1, dev)
        params = sum(p.numel() for p in ac.actor.parameters()) + sum(p.numel() for p in ac.critic.parameters())
        rate = bcfg.starts * bcfg.horizon / np.median(img)
        print(f"starts={bcfg.starts:5d} ({B}x{T}) actor+critic params={params / 1e6:.2f}M | update: median "
              f"{np.median(upd):.3f} s (min {min(upd):.3f}; CPU time {np.median(cpu):.3f} s) | imagine: {rate:,.0f}"
              f" states/s | offline starts: {np.median(off):.3f} s | data-free starts: {np.median(free):.3f} s")


if __name__ == "__main__":
    main()
