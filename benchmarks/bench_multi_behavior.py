"""K behaviors per process (issue 16): one batched update of K behaviors vs one single-behavior update.

A randomly initialised MFWM of the world-model preset and K behaviors of the behavior preset, each with its own
random unit prompt embedding (no dataset, no VLM). It reports median wall-clock and process CPU seconds of

* ``single``: one :meth:`ActorCritic.update` from ``N`` starts (``--starts``, horizon 16);
* ``batched``: one :meth:`MultiActorCritic.update` of ``K`` behaviors (``--k``, default 4) from the same ``N``
  shared starts (an imagination batch of ``K*N``), per-behavior generators;
* ``starts``: the offline start states of an update (posterior of a synthetic ``[N/16, 16]`` window batch, as
  ``genrl behave`` computes them), paid once per update by both;

and the ratios ``batched / single`` (the update alone, and with the starts added to both: the cost of one
``genrl behave`` step of K behaviors vs one). Target: ``K = 4`` in <= 2x the time of one. ``--variants`` also
times the actor part of a K-behavior imagination (forward + backward over the horizon) three ways: ``K`` separate
actor calls (what :mod:`genrl.behavior.multi` does), stacked weights through ``torch.func.vmap`` +
``functional_call``, and stacked weights through ``torch.baddbmm``. glibc ``malloc`` is told to keep freed memory
(:func:`genrl.behavior.multi.keep_freed_memory`) unless ``--no-keep-memory``.

Usage::

    python benchmarks/bench_multi_behavior.py --threads 2 --steps 8 --variants     # small presets, K = 4
    python benchmarks/bench_multi_behavior.py --preset tiny --wm-preset tiny --starts 32 --steps 2  # smoke

The last line printed is a JSON object of all the numbers.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np
import torch
import torch.nn.functional as F

from genrl.behavior.actor_critic import ActorCritic
from genrl.behavior.config import behavior_preset
from genrl.behavior.multi import MultiActorCritic, behavior_generators, keep_freed_memory
from genrl.behavior.reward import LatentReward, build_target
from genrl.behavior.starts import data_free_starts, offline_starts
from genrl.mfwm.model import MFWM
from genrl.worldmodel.config import preset


def _timed(fn, repeats: int, warmup: int, dev: torch.device) -> tuple[float, float]:
    """Median wall-clock and median process CPU seconds of ``repeats`` calls after ``warmup``."""
    wall, cpu = [], []
    for i in range(warmup + repeats):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return float(np.median(wall)), float(np.median(cpu))


def _actor_variants(actors: list, feat: torch.Tensor, horizon: int, repeats: int, warmup: int,
                    dev: torch.device) -> dict[str, tuple[float, float]]:
    """Actor forward (mean and std) + backward over ``horizon`` steps of ``feat [K, N, F]``, three ways."""
    from torch.func import functional_call, vmap

    K, N, _ = feat.shape
    params = [p for a in actors for p in a.parameters()]
    names = [n for n, _ in actors[0].named_parameters()]
    feats = [feat + 0.01 * i for i in range(horizon)]

    def separate(f):
        return torch.cat([torch.cat(actors[k](f[k]), -1)[None] for k in range(K)])

    def vmapped(f, stacked):
        return vmap(lambda p, x: torch.cat(functional_call(actors[0], p, (x,)), -1))(stacked, f)

    def bmm(f, st):
        x = f
        for i in range(0, len(actors[0].net), 3):  # Linear, LayerNorm, SiLU blocks
            x = torch.baddbmm(st[f"net.{i}.bias"][:, None], x, st[f"net.{i}.weight"].transpose(1, 2))
            x = F.silu(F.layer_norm(x, x.shape[-1:]) * st[f"net.{i + 1}.weight"][:, None]
                       + st[f"net.{i + 1}.bias"][:, None])
        a = actors[0]
        mean = torch.tanh(torch.baddbmm(st["mean_out.bias"][:, None], x, st["mean_out.weight"].transpose(1, 2)))
        raw = torch.baddbmm(st["std_out.bias"][:, None], x, st["std_out.weight"].transpose(1, 2))
        return torch.cat([mean, (a.max_std - a.min_std) * torch.sigmoid(raw + 2.0) + a.min_std], -1)

    def stack():
        return {n: torch.stack([dict(a.named_parameters())[n] for a in actors]) for n in names}

    calls = {"separate": lambda: [separate(f) for f in feats],
             "vmap": lambda: (lambda st: [vmapped(f, st) for f in feats])(stack()),
             "bmm": lambda: (lambda st: [bmm(f, st) for f in feats])(stack())}
    ref = calls["separate"]()
    out = {}
    for name, call in calls.items():
        diff = max((a - b).abs().max().item() for a, b in zip(call(), ref))
        assert diff < 1e-4, f"variant {name} differs from separate calls by {diff}"
        out[name] = _timed(lambda: torch.autograd.grad(sum(o.square().sum() for o in call()), params), repeats,
                           warmup, dev)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small", choices=("paper", "small", "tiny"), help="behavior preset")
    ap.add_argument("--wm-preset", default="small", choices=("paper", "small", "tiny"), help="world-model preset")
    ap.add_argument("--k", type=int, default=4, help="behaviors of the batched update")
    ap.add_argument("--starts", type=int, default=256, help="start states per update N (multiple of 16)")
    ap.add_argument("--horizon", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=8, help="timed repeats of each measurement")
    ap.add_argument("--warmup", type=int, default=3, help="untimed calls first (the heap settles in ~3)")
    ap.add_argument("--variants", action="store_true", help="also time separate vs stacked actor calls")
    ap.add_argument("--no-keep-memory", action="store_true",
                    help="leave glibc malloc's defaults (large blocks mmap-ed and page-faulted in every update)")
    ap.add_argument("--action-dim", type=int, default=6)
    ap.add_argument("--embed-dim", type=int, default=256)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    kept = False if args.no_keep_memory else keep_freed_memory()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    model = MFWM(preset(args.wm_preset), args.action_dim, args.embed_dim, 8).to(dev).eval().requires_grad_(False)
    wm = model.wm
    B, T = max(1, args.starts // 16), min(16, args.starts)
    bcfg = behavior_preset(args.preset, horizon=args.horizon, batch_size=B, batch_length=T)
    n = bcfg.starts
    print(f"behavior preset={args.preset} world model={args.wm_preset} device={dev} threads={args.threads} "
          f"K={args.k} starts={n} ({B}x{T}) horizon={args.horizon} feat_dim={wm.feat_dim} keep_freed_memory={kept}")
    fns = [LatentReward(wm, build_target(model, F.normalize(torch.randn(1, args.embed_dim), dim=-1), n, bcfg.horizon,
                                         seed=k), bcfg.score, bcfg.align_b) for k in range(args.k)]
    start = data_free_starts(model, n, None)
    single = ActorCritic(bcfg, wm.feat_dim, args.action_dim).to(dev)
    single_opts = single.optimizers()
    multi = MultiActorCritic.create(bcfg, wm.feat_dim, args.action_dim, args.k).to(dev)
    opts = multi.optimizers()
    gens = behavior_generators(range(args.k), dev)
    t_single = _timed(lambda: single.update(wm, fns[0], start, single_opts), args.steps, args.warmup, dev)
    t_multi = _timed(lambda: multi.update(wm, fns, start, opts, gens), args.steps, args.warmup, dev)
    batch = {"observation": torch.randint(0, 256, (B, T, 3, 64, 64), dtype=torch.uint8, device=dev),
             "action": torch.rand(B, T, args.action_dim, device=dev) * 2 - 1,
             "is_first": torch.zeros(B, T, dtype=torch.bool, device=dev)}
    t_starts = _timed(lambda: offline_starts(wm, batch), args.steps, 1, dev)
    res = {"preset": args.preset, "wm_preset": args.wm_preset, "device": str(dev), "threads": args.threads,
           "k": args.k, "starts": n, "horizon": args.horizon, "keep_freed_memory": kept,
           "single_s": t_single[0], "single_cpu_s": t_single[1], "batched_s": t_multi[0], "batched_cpu_s": t_multi[1],
           "starts_s": t_starts[0], "starts_cpu_s": t_starts[1],
           "ratio": t_multi[0] / t_single[0], "ratio_cpu": t_multi[1] / t_single[1],
           "ratio_with_starts": (t_multi[0] + t_starts[0]) / (t_single[0] + t_starts[0]),
           "ratio_with_starts_cpu": (t_multi[1] + t_starts[1]) / (t_single[1] + t_starts[1])}
    print(f"single update {t_single[0]:.3f} s (CPU {t_single[1]:.3f} s) | batched K={args.k} {t_multi[0]:.3f} s "
          f"(CPU {t_multi[1]:.3f} s) | offline starts {t_starts[0]:.3f} s (CPU {t_starts[1]:.3f} s)")
    print(f"ratio batched/single: {res['ratio']:.2f} (CPU {res['ratio_cpu']:.2f}); with the starts: "
          f"{res['ratio_with_starts']:.2f} (CPU {res['ratio_with_starts_cpu']:.2f}); target <= 2")
    if args.variants:
        feat = torch.randn(args.k, n, wm.feat_dim, device=dev)
        actors = [b.actor for b in multi.behaviors]
        variants = _actor_variants(actors, feat, bcfg.horizon, args.steps, args.warmup, dev)
        res["actor_variants_s"] = {k: v[0] for k, v in variants.items()}
        res["actor_variants_cpu_s"] = {k: v[1] for k, v in variants.items()}
        print("actor forward+backward over the horizon, K behaviors: " + ", ".join(
            f"{k} {v[0]:.3f} s (CPU {v[1]:.3f} s)" for k, v in variants.items()))
    res["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(res))


if __name__ == "__main__":
    main()
