"""Environment throughput: agent steps (= rendered 64x64 frames) per second per process, per domain.

Each agent step is 2 control steps (action repeat) + all tasks' rewards + descriptors + one 64x64 frame, i.e.
exactly what data collection does. Prints one line per (domain, render settings) and a summary table.

Usage::

    MUJOCO_GL=egl python benchmarks/bench_render.py                       # our default settings, all domains
    MUJOCO_GL=egl python benchmarks/bench_render.py --compare             # + dm_control defaults (2048 shadow, MSAA 4)
    MUJOCO_GL=egl python benchmarks/bench_render.py --domains walker --steps 2000 --reps 3

Targets (issue "Package foundation..."): >= 90 frames/s per process for walker/cheetah/quadruped/stickman and
>= 20 frames/s for kitchen, on the 2-core CPU machine.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

from genrl.envs import RenderSettings, make  # noqa: E402

TASKS = {"walker": "walker_walk", "cheetah": "cheetah_run", "quadruped": "quadruped_walk",
         "stickman": "stickman_walk", "kitchen": "kitchen_microwave"}
PRESETS = {
    "default": RenderSettings(),
    "dm_control": RenderSettings(shadowsize=2048, msaa_samples=4),
}


def measure(task: str, settings: RenderSettings, steps: int, reps: int) -> dict:
    """Frames/s (min, median over ``reps``) of random-action stepping with rendering, plus render-only frames/s."""
    env = make(task, seed=0, render=settings)
    rng = np.random.default_rng(0)
    env.reset()
    for _ in range(20):  # warm-up (GL context, shader compilation)
        env.step(rng.uniform(-1, 1, env.action_space.shape))
    rates = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(steps):
            _, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, env.action_space.shape))
            if terminated or truncated:
                env.reset()
        rates.append(steps / (time.perf_counter() - t0))
    # pylint: disable=protected-access
    render = env._camera.render if hasattr(env, "_camera") else lambda: env._renderer.render(env.data)
    t0 = time.perf_counter()
    for _ in range(100):
        render()
    render_only = 100 / (time.perf_counter() - t0)
    env.close()
    rates.sort()
    return {"min": rates[0], "median": rates[len(rates) // 2], "render_only": render_only}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domains", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--steps", type=int, default=600, help="agent steps per repetition")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--compare", action="store_true", help="also measure dm_control's default render settings")
    args = parser.parse_args()
    presets = ["default", "dm_control"] if args.compare else ["default"]
    rows = []
    for domain in args.domains:
        for preset in presets:
            steps = args.steps if domain != "kitchen" else max(50, args.steps // 4)
            res = measure(TASKS[domain], PRESETS[preset], steps, args.reps)
            rows.append((domain, preset, res))
            print(f"{domain:10s} {preset:10s} frames/s min {res['min']:6.1f} median {res['median']:6.1f} "
                  f"(render only {res['render_only']:6.1f})", flush=True)
    print(f"\nMUJOCO_GL={os.environ['MUJOCO_GL']}, {os.cpu_count()} CPUs, settings default={PRESETS['default']}")
    print("| domain | settings | frames/s (median) | render-only frames/s |\n|---|---|---|---|")
    for domain, preset, res in rows:
        print(f"| {domain} | {preset} | {res['median']:.1f} | {res['render_only']:.1f} |")


if __name__ == "__main__":
    main()
