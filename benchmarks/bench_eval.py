"""Real-environment evaluation wall clock: ``genrl.envs.rollout.evaluate`` in-process vs in worker processes.

Times ``--episodes`` episodes (default 10) of ``--task`` (default ``walker_stand``, full 500-step episodes) with
``workers=1`` (every environment stepped and rendered in this process) and ``workers=--workers`` (default 2,
:class:`genrl.envs.vector.EnvPool`), alternating the two ``--reps`` times so that a change in machine load hits both.
The policy is free (``ConstantPolicy`` zeros, or ``--policy random``), so the numbers are the environment side of
an evaluation: physics + 64x64 rendering + for the workers their start-up and the pipes. Checks that both modes
give the same returns. Prints one line per run, the ratio of the medians (in-process / workers: > 1 means the
workers are faster) and a final JSON line.

Usage::

    MUJOCO_GL=egl python benchmarks/bench_eval.py                        # 10 x 500 steps, 1 vs 2 workers, 2 reps
    MUJOCO_GL=egl python benchmarks/bench_eval.py --max-steps 20 --reps 1   # smoke run
    MUJOCO_GL=egl python benchmarks/bench_eval.py --workers 4 --policy random --task cheetah_run

Run it on an otherwise idle machine: with W workers the evaluation uses W cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("MUJOCO_GL", "egl")

from genrl.envs import make  # noqa: E402
from genrl.envs.rollout import ConstantPolicy, RandomPolicy, evaluate, resolve_workers  # noqa: E402


def _policy(kind: str, action_dim: int):
    return RandomPolicy(action_dim, seed=0) if kind == "random" else ConstantPolicy([0.0] * action_dim)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="walker_stand")
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--max-steps", type=int, default=None, help="cap per episode (default: full episodes)")
    ap.add_argument("--workers", default="2", help="worker processes of the parallel mode (an int or 'auto')")
    ap.add_argument("--reps", type=int, default=2, help="alternating (in-process, workers) pairs")
    ap.add_argument("--policy", choices=("constant", "random"), default="constant")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    workers = resolve_workers("auto" if args.workers == "auto" else int(args.workers), args.episodes)
    if workers < 2:
        raise SystemExit(f"--workers {args.workers} with --episodes {args.episodes} gives 1 worker: nothing to compare")
    env = make(args.task, seed=0)
    action_dim = int(env.action_space.shape[0])
    env.close()

    times: dict[int, list[float]] = {1: [], workers: []}
    returns: dict[int, list[float]] = {}
    for rep in range(args.reps):
        for w in (1, workers):
            t0 = time.perf_counter()
            res = evaluate(_policy(args.policy, action_dim), args.task, episodes=args.episodes, seed=args.seed,
                           video_episodes=0, max_steps=args.max_steps, workers=w)
            dt = time.perf_counter() - t0
            times[w].append(dt)
            returns.setdefault(w, res.returns)
            steps = sum(res.steps)
            print(f"rep {rep} workers={w}: {dt:7.2f} s  ({steps} agent steps, {steps / dt:6.1f} steps/s, "
                  f"mean return {res.mean_return:.3f})", flush=True)
    same = returns[1] == returns[workers]
    t1, tw = statistics.median(times[1]), statistics.median(times[workers])
    print(f"median: in-process {t1:.2f} s, {workers} workers {tw:.2f} s -> speed-up x{t1 / tw:.2f}; "
          f"identical returns: {same}")
    print(json.dumps({"bench": "eval", "task": args.task, "episodes": args.episodes, "max_steps": args.max_steps,
                      "policy": args.policy, "workers": workers, "reps": args.reps, "cpus": os.cpu_count(),
                      "seconds_in_process": [round(t, 3) for t in times[1]],
                      "seconds_workers": [round(t, 3) for t in times[workers]],
                      "speedup": round(t1 / tw, 3), "identical_returns": same}))
    if not same:
        raise SystemExit("returns differ between workers=1 and workers>1")


if __name__ == "__main__":
    main()
