"""Success rate of the scripted kitchen demonstrations (:mod:`genrl.data.kitchen_scripts`), per task and noise.

Runs full scripted attempts (source ``scripted``) on the state-only kitchen env (``render=None``; the policy
only reads the state, so the result is the same as with rendering) for ``--seeds`` seeds (env reset seed =
policy seed = 0..N-1), without action noise and with the collection's noise (std 0.1). An episode succeeds if
the task is solved at some step of its 140 (the env's sparse-success scoring; ``terminate_on_success`` ends it
there to save time). Also checks that partial attempts (``scripted-stop``, ``scripted-miss``, with noise) leave
the task unsolved over ``--partial-seeds`` seeds. Prints one line per episode and a summary table.

Usage::

    MUJOCO_GL=egl python benchmarks/kitchen_scripts.py                          # 20 seeds, all four tasks
    MUJOCO_GL=egl python benchmarks/kitchen_scripts.py --tasks microwave --seeds 5 --partial-seeds 0

Target (issue 18): >= 90 % success of the full attempts on each task, with and without noise.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")

from genrl.data.kitchen_scripts import SCRIPTED_NOISE, SCRIPTS, scripted_episode  # noqa: E402
from genrl.envs.kitchen import KitchenEnv  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(SCRIPTS), choices=list(SCRIPTS))
    parser.add_argument("--seeds", type=int, default=20, help="seeds of the full attempts (0..N-1)")
    parser.add_argument("--partial-seeds", type=int, default=3, help="seeds of each partial source (0 skips)")
    args = parser.parse_args()
    rows = []
    for task in args.tasks:
        env = KitchenEnv(task, render=None)
        runs = [("scripted", 0.0, args.seeds), ("scripted", SCRIPTED_NOISE, args.seeds),
                ("scripted-stop", SCRIPTED_NOISE, args.partial_seeds),
                ("scripted-miss", SCRIPTED_NOISE, args.partial_seeds)]
        for source, noise, n in runs:
            if n <= 0:
                continue
            t0, results = time.time(), []
            for seed in range(n):
                r = scripted_episode(env, source, noise, seed, stop_at_success=source == "scripted")
                results.append(r)
                print(f"{task:9s} {source:13s} noise {noise:.1f} seed {seed:2d}: solved={r['solved']!s:5s} "
                      f"step={r['step']} final distance {r['distance']:.3f}", flush=True)
            solved = [r for r in results if r["solved"]]
            steps = sorted(r["step"] for r in solved)
            rows.append((task, source, noise, len(solved), n, steps[len(steps) // 2] if steps else None,
                         (time.time() - t0) / n))
        env.close()
    print("\n| task | source | noise | solved | success | median first-success step | s/episode |")
    print("|---|---|---|---|---|---|---|")
    for task, source, noise, k, n, median, sec in rows:
        print(f"| {task} | {source} | {noise:.1f} | {k}/{n} | {100 * k / n:.0f} % | {median} | {sec:.1f} |")


if __name__ == "__main__":
    main()
