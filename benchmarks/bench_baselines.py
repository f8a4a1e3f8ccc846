"""Baseline update speed: seconds per gradient step of IQL / TD3+BC / TD3 (batch 256, 64x64, frame stack 3).

A synthetic in-RAM replay (random uint8 frames, 20 episodes of 101 entries) feeds real
:class:`~genrl.baselines.replay.FrameStackReplay` batches, so the sampling/stacking share is included and reported.

Usage::

    python benchmarks/bench_baselines.py --threads 2 --steps 10                 # small preset, all algorithms
    python benchmarks/bench_baselines.py --preset paper --steps 5
    python benchmarks/bench_baselines.py --preset paper --device cuda --steps 50  # on a GPU machine
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from genrl.baselines.algos import ALGOS, AgentConfig, BaselineAgent, make_config
from genrl.baselines.replay import FrameStackReplay, to_torch
from genrl.utils.presets import names


def synthetic_replay(episodes: int = 20, length: int = 101, action_dim: int = 6, seed: int = 0) -> FrameStackReplay:
    """Random frames/actions/rewards in the episode layout (uint8 [T, 3, 64, 64])."""
    rng = np.random.default_rng(seed)
    obs = [rng.integers(0, 256, (length, 3, 64, 64), dtype=np.uint8) for _ in range(episodes)]
    act = [rng.uniform(-1, 1, (length, action_dim)).astype(np.float32) for _ in range(episodes)]
    first = [np.arange(length) == 0 for _ in range(episodes)]
    term = [np.zeros(length, bool) for _ in range(episodes)]
    rew = [rng.normal(size=length).astype(np.float32) for _ in range(episodes)]
    return FrameStackReplay(obs, act, first, term, rew, frame_stack=3, seed=seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small", choices=names(AgentConfig))
    ap.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    replay = synthetic_replay()
    print("| algo | preset | device | threads | batch | s/step (median) | sample+copy s | params |")
    print("|---|---|---|---|---|---|---|---|")
    for algo in args.algos:
        torch.manual_seed(0)
        agent = BaselineAgent(make_config(algo, args.preset), replay.action_dim).to(dev)
        opts = agent.make_optimizers()
        times, data = [], []
        for step in range(args.warmup + args.steps):
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            batch = to_torch(replay.sample(args.batch_size), dev)
            t1 = time.perf_counter()
            agent.update(batch, opts, step)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            if step >= args.warmup:
                times.append(time.perf_counter() - t0)
                data.append(t1 - t0)
        params = sum(p.numel() for p in agent.parameters() if p.requires_grad)
        print(f"| {algo} | {args.preset} | {dev.type} | {args.threads} | {args.batch_size} | "
              f"{np.median(times):.3f} | {np.median(data):.3f} | {params / 1e6:.2f}M |", flush=True)


if __name__ == "__main__":
    main()
