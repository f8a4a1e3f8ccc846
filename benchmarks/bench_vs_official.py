"""Side by side: the official GenRL code's update steps against ours, at a matched config, on this machine.

The official code (mazpie/genrl at 4cd8394, MIT) is read from ``../shared/reference/official_code`` (or
``--official-code DIR``) and driven by ``benchmarks/official_driver.py`` as described in
``../shared/reference/official_throughput.md`` (config composed as its ``train.py``, ``hydra.utils.instantiate``,
stubs for ``cv2``/``wandb``/``torchvision``, precision 32, bf16 through a CPU bf16 replacement of
``torch.cuda.amp.autocast``, a fake text tower for ``video_text_reward``, ``requires_grad_(False)`` before the
actor-critic). When the folder is absent the script says so in one line and exits 0.

Rows (``--rows``, each in fp32 and, where the CPU has native bf16 (``avx512_bf16`` / ``amx_bf16``), bf16):

* ``wm``: world model + one connector(+aligner) step: official ``GenRLAgent.update_wm`` (WM step, then the detached
  connector step) against our ``MFWM.train_step`` with the reward head on (the official WM trains one);
* ``wm_iter`` (not in the default rows): one official ``train.py`` pretraining iteration, ``update_wm`` plus the
  extra ``wm.update_additional_detached_modules`` (so the connector gets 2 steps), against one ``MFWM.train_step``;
* ``ac256`` / ``ac512``: one actor-critic update from the posteriors of a 16x16 / 16x32 batch (256 / 512 starts),
  horizon 16, prompt reward max-cosine with alignment window 8 and the skipped first target state: official
  ``GenRLAgent.update_imag_behavior`` with ``video_text_reward`` against our ``ActorCritic.update`` with
  ``LatentReward(score="max_cosine")``. Start posteriors and (ours) the prompt target are computed before timing;
  the official target is computed and cached in its first (warm-up) step.

Matched small config (both sides built from :data:`SIZES`): CNN depth 16, deter/hidden 256, 32x32 latents, reward
head / actor / critic 4 x 256, batch 16 x 32, connector RSSM 256/256 (ours shares the world model's sizes), action
6, embedding 512, actor/critic Adam lr 3e-5, actor std floor 0.1. ``--tiny`` uses tiny sizes (smoke test).

Every measurement is a fresh process (the script re-invokes itself with ``--worker``) running ``--warmup`` then
``--steps`` timed steps, with ``torch.set_num_threads(--threads)``; official and ours alternate (the order flips
every repeat); each side's value is the median over ``--repeats`` of the per-process median s/step.

Usage::

    python benchmarks/bench_vs_official.py --threads 2 --repeats 3 --json-out vs_official.jsonl
    python benchmarks/bench_vs_official.py --rows wm wm_iter --precisions fp32
    python benchmarks/bench_vs_official.py --tiny --repeats 1 --threads 1        # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent

SIZES = {
    "small": dict(depth=16, deter=256, hidden=256, stoch=32, discrete=32, units=256, layers=4, batch=16, length=32,
                  horizon=16, emb=512, action=6, starts={"ac256": (16, 16), "ac512": (16, 32)}),
    "tiny": dict(depth=4, deter=32, hidden=32, stoch=4, discrete=4, units=32, layers=2, batch=4, length=16,
                 horizon=16, emb=16, action=3, starts={"ac256": (2, 16), "ac512": (4, 16)}),
}
ROWS = {
    "wm": "WM + 1 connector step (official update_wm vs ours MFWM.train_step, reward head on)",
    "wm_iter": "train.py iteration, 2 connector steps (update_wm + update_additional_detached_modules) vs one "
               "MFWM.train_step",
    "ac256": "actor-critic, 256 starts x horizon 16, max_cosine reward (update_imag_behavior vs ActorCritic.update)",
    "ac512": "actor-critic, 512 starts x horizon 16, max_cosine reward",
}
DEFAULT_ROWS = ("wm", "ac256", "ac512")
IMPLS = ("official", "ours")
RESULT_TAG = "RESULT "


def cpu_has_native_bf16() -> bool:
    """``avx512_bf16`` or ``amx_bf16`` in ``/proc/cpuinfo`` (False when it cannot be read)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


# ---------------------------------------------------------------------------------------------------------- worker


def _official_step(spec: dict):
    """``(step_fn, info)`` for the official side of ``spec``."""
    import torch
    import torch.nn.functional as F

    import official_driver as od

    root = od.official_root(spec["official_code"])
    s = SIZES[spec["size"]]
    if spec["precision"] == "bf16":
        od.patch_bf16_autocast()
    row = spec["row"]
    if row in ("wm", "wm_iter"):
        agent = od.build_agent(root, s, s["length"], imag_reward=False)
        data = [od.random_batch(s["batch"], s["length"], s["emb"], s["action"], seed=k) for k in range(2)]
        counter = [0]

        def step():
            i = counter[0]
            counter[0] += 1
            _, outputs, metrics = agent.update_wm(data[i % 2], i)
            if row == "wm_iter":  # train.py with train_world_model and train_connector: a second connector step
                agent.wm.update_additional_detached_modules(data[i % 2], outputs, metrics)

        params = sum(p.numel() for p in agent.wm.parameters())  # the connector is a submodule of agent.wm
        return step, {"params": params, "batch": [s["batch"], s["length"]]}
    B, T = s["starts"][row]
    agent = od.build_agent(root, s, T, imag_reward=True)
    g = torch.Generator().manual_seed(1)
    agent.wm.viclip_model = od.FakeText(F.normalize(torch.randn(1, s["emb"], generator=g), dim=-1))
    agent.requires_grad_(False)  # the state train.py reaches (reference section 2, item 6)
    data = od.random_batch(B, T, s["emb"], s["action"], seed=0)
    post = od.posterior_starts(agent, data)
    outputs = {"post": post, "is_terminal": data["is_terminal"]}

    def step():
        _, mets = agent.update_imag_behavior(outputs=outputs, metrics={})
        if "imag_actor_loss" not in mets:
            raise RuntimeError(f"the official imag actor-critic did not run (metrics: {sorted(mets)})")

    bh = agent._imag_behavior
    params = sum(p.numel() for p in bh.actor.parameters()) + sum(p.numel() for p in bh.critic.parameters())
    return step, {"params": params, "starts": B * T}


def _ours_step(spec: dict):
    """``(step_fn, info)`` for our side of ``spec``."""
    import torch
    import torch.nn.functional as F

    from genrl.mfwm.model import MFWM
    from genrl.worldmodel.config import preset

    s = SIZES[spec["size"]]
    row = spec["row"]
    wm_cfg = preset("small", cnn_depth=s["depth"], deter=s["deter"], hidden=s["hidden"], stoch=s["stoch"],
                    discrete=s["discrete"], reward_head=True, reward_layers=s["layers"], reward_units=s["units"],
                    batch_size=s["batch"], batch_length=s["length"], precision=spec["precision"])
    torch.manual_seed(0)
    model = MFWM(wm_cfg, s["action"], s["emb"], 8)
    if row in ("wm", "wm_iter"):
        opts = model.optimizers()
        batches = []
        for k in range(2):
            g = torch.Generator().manual_seed(k)
            B, T = s["batch"], s["length"]
            is_first = torch.zeros(B, T, dtype=torch.bool)
            is_first[:, 0] = True
            batches.append({"observation": torch.randint(0, 256, (B, T, 3, 64, 64), dtype=torch.uint8, generator=g),
                            "action": torch.rand(B, T, s["action"], generator=g) * 2 - 1, "is_first": is_first,
                            "reward": torch.zeros(B, T, 1),  # the official WM trains a reward head: ours too here
                            "embedding": F.normalize(torch.randn(B, T, s["emb"], generator=g), dim=-1)})
        counter = [0]

        def step():
            counter[0] += 1
            model.train_step(batches[counter[0] % 2], opts)

        return step, {"params": sum(p.numel() for p in model.parameters()), "batch": [s["batch"], s["length"]]}
    from genrl.behavior.actor_critic import ActorCritic
    from genrl.behavior.config import behavior_preset
    from genrl.behavior.reward import LatentReward, build_target
    from genrl.behavior.starts import offline_starts

    model.eval().requires_grad_(False)
    wm = model.wm
    B, T = s["starts"][row]
    bcfg = behavior_preset("small", actor_layers=s["layers"], actor_units=s["units"], critic_layers=s["layers"],
                           critic_units=s["units"], batch_size=B, batch_length=T, horizon=s["horizon"],
                           actor_lr=3e-5, critic_lr=3e-5, actor_min_std=0.1, score="max_cosine", align_b=8,
                           skip_first_target=True)
    ac = ActorCritic(bcfg, wm.feat_dim, s["action"])
    opts = ac.optimizers()
    g = torch.Generator().manual_seed(1)
    emb = F.normalize(torch.randn(1, s["emb"], generator=g), dim=-1)
    reward_fn = LatentReward(wm, build_target(model, emb, B * T, bcfg.horizon, use_aligner=True, skip_first=True),
                             "max_cosine", bcfg.align_b)
    is_first = torch.zeros(B, T, dtype=torch.bool)
    is_first[:, 0] = True
    batch = {"observation": torch.randint(0, 256, (B, T, 3, 64, 64), dtype=torch.uint8, generator=g),
             "action": torch.rand(B, T, s["action"], generator=g) * 2 - 1, "is_first": is_first}
    start = offline_starts(wm, batch)

    def step():
        ac.update(wm, reward_fn, start, opts)

    params = sum(p.numel() for p in ac.actor.parameters()) + sum(p.numel() for p in ac.critic.parameters())
    return step, {"params": params, "starts": B * T}


def run_worker(spec: dict) -> None:
    """Build one side, time ``warmup + steps`` calls, print one ``RESULT {json}`` line."""
    import numpy as np
    import torch

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    torch.set_num_threads(spec["threads"])
    torch.set_num_interop_threads(spec["threads"])
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    t_build = time.perf_counter()
    step, info = (_official_step if spec["impl"] == "official" else _ours_step)(spec)
    t_build = time.perf_counter() - t_build
    times = []
    for i in range(spec["warmup"] + spec["steps"]):
        t0 = time.perf_counter()
        step()
        dt = time.perf_counter() - t0
        if i >= spec["warmup"]:
            times.append(dt)
    out = {**spec, **info, "median_s": float(np.median(times)), "min_s": float(min(times)),
           "times_s": [round(t, 4) for t in times], "build_s": round(t_build, 2),
           "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
           "torch": torch.__version__}
    print(RESULT_TAG + json.dumps(out), flush=True)


# ---------------------------------------------------------------------------------------------------------- parent


def _spawn(spec: dict, timeout: float) -> dict:
    """Run one worker process; its result dict, or ``{"error": ...}``."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(spec["threads"])
    src = HERE.parent / "src"
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(src), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()
    return {"error": f"exit code {proc.returncode}: " + (tail[-1] if tail else "no output"),
            "stderr_tail": "\n".join(tail[-15:])}


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--rows", nargs="+", default=list(DEFAULT_ROWS), choices=sorted(ROWS),
                    help=f"rows to measure (default: {' '.join(DEFAULT_ROWS)})")
    ap.add_argument("--precisions", nargs="+", default=None, choices=("fp32", "bf16"),
                    help="default: fp32, plus bf16 when the CPU has native bf16 (avx512_bf16 / amx_bf16)")
    ap.add_argument("--repeats", type=int, default=3, help="fresh processes per side and row")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=8, help="timed steps per process")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes (a smoke run)")
    ap.add_argument("--official-code", default=None,
                    help="the official code folder (default ../shared/reference/official_code)")
    ap.add_argument("--json-out", default=None, help="also write the JSON lines (one per row) to this file")
    ap.add_argument("--worker-timeout", type=float, default=1800.0, help="seconds per worker process")
    args = ap.parse_args(argv)
    if args.warmup < 1 or args.steps < 1 or args.repeats < 1 or args.threads < 1:
        ap.error("--warmup, --steps, --repeats and --threads must be >= 1 (the official prompt target is built and "
                 "cached in its first actor-critic step, which must be a warm-up step)")
    if args.worker is not None:
        run_worker(json.loads(args.worker))
        return 0

    sys.path.insert(0, str(HERE))
    import official_driver as od

    root = od.official_root(args.official_code)
    if root is None:
        print(f"bench_vs_official: official GenRL code not found at {args.official_code or od.OFFICIAL} "
              "(needs agent/genrl.py); nothing measured.")
        return 0
    missing = od.missing_dependencies()
    if missing:
        print(f"bench_vs_official: the official code needs {', '.join(missing)} (pip install -e .[test]); "
              "nothing measured.")
        return 0
    native = cpu_has_native_bf16()
    precisions = args.precisions or (["fp32", "bf16"] if native else ["fp32"])
    if "bf16" in precisions and not native:
        print("note: this CPU has no native bf16 (avx512_bf16 / amx_bf16): bf16 rows run emulated", file=sys.stderr)
    size = "tiny" if args.tiny else "small"
    cells = [(row, prec) for row in args.rows for prec in precisions]
    runs: dict[tuple[str, str, str], list[dict]] = {}
    errors: dict[tuple[str, str, str], list[str]] = {}
    total, done, t_start = len(cells) * len(IMPLS) * args.repeats, 0, time.perf_counter()
    for rep in range(args.repeats):
        for row, prec in cells:
            order = IMPLS if rep % 2 == 0 else IMPLS[::-1]
            for impl in order:
                spec = {"impl": impl, "row": row, "precision": prec, "size": size, "threads": args.threads,
                        "warmup": args.warmup, "steps": args.steps, "official_code": str(root), "repeat": rep}
                res = _spawn(spec, args.worker_timeout)
                done += 1
                key = (row, prec, impl)
                if "error" in res:
                    errors.setdefault(key, []).append(res["error"])
                    msg = f"ERROR {res['error']}"
                    if res.get("stderr_tail"):
                        msg += "\n" + res["stderr_tail"]
                else:
                    runs.setdefault(key, []).append(res)
                    msg = f"median {res['median_s']:.3f} s/step (min {res['min_s']:.3f}, RSS {res['peak_rss_mib']} MiB)"
                print(f"[{done}/{total} {time.perf_counter() - t_start:6.0f} s] repeat {rep} {row:7s} {prec} "
                      f"{impl:8s}: {msg}", file=sys.stderr, flush=True)

    lines = []
    header = f"{'row':8s} {'prec':5s} {'official s':>11s} {'ours s':>9s} {'ratio':>7s}  what"
    print(f"\nofficial GenRL vs genrl, {size} config, {args.threads} thread(s), median of {args.repeats} "
          f"process(es) x {args.steps} timed steps (after {args.warmup} warm-up), ratio = official / ours")
    print(header)
    print("-" * len(header))
    for row, prec in cells:
        med = {impl: _median([r["median_s"] for r in runs.get((row, prec, impl), [])]) for impl in IMPLS}
        ratio = med["official"] / med["ours"] if med["official"] and med["ours"] else None
        fmt = lambda v: f"{v:.3f}" if v is not None else "-"  # noqa: E731
        print(f"{row:8s} {prec:5s} {fmt(med['official']):>11s} {fmt(med['ours']):>9s} "
              f"{(f'{ratio:.2f}' if ratio else '-'):>7s}  {ROWS[row]}")
        first = {impl: (runs.get((row, prec, impl)) or [{}])[0] for impl in IMPLS}
        lines.append({"row": row, "precision": prec, "size": size, "threads": args.threads,
                      "official_s": med["official"], "ours_s": med["ours"],
                      "ratio": round(ratio, 4) if ratio else None,
                      "official_runs_s": [r["median_s"] for r in runs.get((row, prec, "official"), [])],
                      "ours_runs_s": [r["median_s"] for r in runs.get((row, prec, "ours"), [])],
                      "official_params": first["official"].get("params"), "ours_params": first["ours"].get("params"),
                      "official_peak_rss_mib": max((r["peak_rss_mib"] for r in runs.get((row, prec, "official"), [])),
                                                   default=None),
                      "ours_peak_rss_mib": max((r["peak_rss_mib"] for r in runs.get((row, prec, "ours"), [])),
                                               default=None),
                      "starts": first["ours"].get("starts", first["official"].get("starts")),
                      "warmup": args.warmup, "steps": args.steps, "repeats": args.repeats, "what": ROWS[row],
                      "errors": {impl: errors[(row, prec, impl)] for impl in IMPLS if (row, prec, impl) in errors}})
    print()
    for line in lines:
        print(json.dumps(line))
    if args.json_out:
        Path(args.json_out).write_text("".join(json.dumps(line) + "\n" for line in lines))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
