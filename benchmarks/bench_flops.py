"""FLOP utilisation of our world-model update: counted FLOPs per step against the machine's measured GEMM peak.

Issue 16 target: the world-model step at >= 50 % of the machine's measured matmul throughput.

* FLOPs of one :meth:`genrl.mfwm.model.MFWM.train_step` (world-model forward + backward, then the connector +
  aligner forward + backward; the optimizer steps add no counted FLOPs) with ``torch.utils.flop_counter``'s
  ``FlopCounterMode``: matrix products (``mm``, ``addmm``, ``bmm``, ``baddbmm``) count ``2 M N K``, convolutions
  (forward and each backward output: ``grad_input``, ``grad_weight``) ``2 x output elements x C_in k_h k_w`` (per
  group); element-wise ops, norms, reductions and sampling are not counted. The count does not depend on precision.
* GEMM peak: the best GFLOP/s of square ``torch.mm`` products (``--gemm-sizes``, default 1024 2048 4096) in fp32 and
  bf16 (bf16 tensors, no autocast) with ``torch.set_num_threads(--threads)``.
* The step time: median of ``--steps`` timed steps after ``--warmup``, synthetic batch of the preset's size
  (random uint8 frames, actions, unit-norm embeddings), as ``benchmarks/bench_worldmodel.py``.

Prints a table and one JSON line per GEMM measurement and per precision (``--json-out FILE`` writes them too).
bf16 is measured by default only where the CPU has native bf16 (``avx512_bf16`` / ``amx_bf16``).

Usage::

    python benchmarks/bench_flops.py --preset small --threads 2
    python benchmarks/bench_flops.py --tiny --threads 1 --steps 1 --warmup 1      # smoke run

The FLOP-count helpers (:func:`count_flops`, :func:`train_step_flops`, :func:`gemm_gflops`) are tested by
``tests/test_flops.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode


@dataclass
class FlopCount:
    """Counted FLOPs: ``total``; ``by_op`` (aten op name -> FLOPs); ``phases`` (name -> FLOPs) where measured."""

    total: int
    by_op: dict[str, int] = field(default_factory=dict)
    phases: dict[str, int] = field(default_factory=dict)


def count_flops(fn: Callable[[], object]) -> FlopCount:
    """FLOPs of everything ``fn()`` runs (forward and, if it calls ``backward``/``autograd.grad``, backward)."""
    with FlopCounterMode(display=False, depth=None) as fc:
        fn()
    glob = fc.get_flop_counts().get("Global", {})
    return FlopCount(total=int(fc.get_total_flops()), by_op={str(k): int(v) for k, v in glob.items()})


def train_step_flops(model, batch: dict[str, torch.Tensor], opts: dict) -> FlopCount:
    """FLOPs of one ``model.train_step(batch, opts)`` (it really steps the optimizers), split into the world-model
    part (forward + backward up to the call of ``connector_loss``) and the connector + aligner part."""
    mark: dict[str, int] = {}
    real = model.connector_loss
    holder: list[FlopCounterMode] = []

    def connector_loss(*args, **kwargs):
        mark.setdefault("wm", int(holder[0].get_total_flops()))
        return real(*args, **kwargs)

    model.connector_loss = connector_loss  # an instance attribute shadows the method for this call only
    try:
        with FlopCounterMode(display=False, depth=None) as fc:
            holder.append(fc)
            model.train_step(batch, opts)
    finally:
        del model.connector_loss
    total = int(fc.get_total_flops())
    glob = fc.get_flop_counts().get("Global", {})
    phases = {"world_model": mark.get("wm", total), "connector_aligner": total - mark.get("wm", total)}
    return FlopCount(total=total, by_op={str(k): int(v) for k, v in glob.items()}, phases=phases)


def synthetic_batch(cfg, action_dim: int, embed_dim: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A ``[B, T]`` training batch of the config's size (reward zeros included when the config has a reward head)."""
    B, T = cfg.batch_size, cfg.batch_length
    g = torch.Generator().manual_seed(seed)
    is_first = torch.zeros(B, T, dtype=torch.bool)
    is_first[:, 0] = True
    batch = {"observation": torch.randint(0, 256, (B, T, 3, 64, 64), dtype=torch.uint8, generator=g),
             "action": torch.rand(B, T, action_dim, generator=g) * 2 - 1, "is_first": is_first,
             "embedding": F.normalize(torch.randn(B, T, embed_dim, generator=g), dim=-1)}
    if cfg.reward_head:
        batch["reward"] = torch.zeros(B, T, 1)
    return batch


def gemm_gflops(n: int, dtype: torch.dtype, min_time: float = 0.5, min_reps: int = 3, seed: int = 0) -> float:
    """Best GFLOP/s of ``torch.mm`` on two ``n x n`` matrices of ``dtype`` (``2 n^3`` FLOPs per product), over
    at least ``min_reps`` products and ``min_time`` seconds after one warm-up product."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, n, generator=g).to(dtype)
    b = torch.randn(n, n, generator=g).to(dtype)
    out = torch.empty(n, n, dtype=dtype)
    torch.mm(a, b, out=out)
    best, reps, t_all = float("inf"), 0, time.perf_counter()
    while reps < min_reps or time.perf_counter() - t_all < min_time:
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
        reps += 1
    return 2.0 * n ** 3 / best / 1e9


def cpu_has_native_bf16() -> bool:
    """``avx512_bf16`` or ``amx_bf16`` in ``/proc/cpuinfo`` (False when it cannot be read)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def main(argv: list[str] | None = None) -> int:
    from genrl.mfwm.model import MFWM
    from genrl.utils.presets import names
    from genrl.worldmodel.config import WorldModelConfig, preset

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small", choices=names(WorldModelConfig))
    ap.add_argument("--tiny", action="store_true", help="tiny preset and small GEMMs (a smoke run)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--precisions", nargs="+", default=None, choices=("fp32", "bf16"),
                    help="default: fp32, plus bf16 when the CPU has native bf16")
    ap.add_argument("--gemm-sizes", type=int, nargs="+", default=None, help="default 1024 2048 4096 (--tiny: 128 256)")
    ap.add_argument("--gemm-time", type=float, default=1.0, help="seconds per GEMM size and dtype")
    ap.add_argument("--action-dim", type=int, default=6)
    ap.add_argument("--embed-dim", type=int, default=256)
    ap.add_argument("--reward-head", action="store_true", help="train the reward head too (the official WM does)")
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    name = "tiny" if args.tiny else args.preset
    sizes = args.gemm_sizes or ([128, 256] if args.tiny else [1024, 2048, 4096])
    native = cpu_has_native_bf16()
    precisions = args.precisions or (["fp32", "bf16"] if native else ["fp32"])
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    lines: list[dict] = []

    peaks: dict[str, float] = {}
    for prec in precisions:
        for n in sizes:
            gf = gemm_gflops(n, dtypes[prec], min_time=args.gemm_time if not args.tiny else 0.05)
            peaks[prec] = max(peaks.get(prec, 0.0), gf)
            lines.append({"kind": "gemm", "precision": prec, "n": n, "gflops": round(gf, 2), "threads": args.threads})
            print(f"GEMM {prec} {n}x{n}x{n}: {gf:8.1f} GFLOP/s", file=sys.stderr, flush=True)

    rows = []
    for prec in precisions:
        cfg = preset(name, precision=prec, reward_head=args.reward_head)
        torch.manual_seed(0)
        model = MFWM(cfg, args.action_dim, args.embed_dim, 8)
        opts = model.optimizers()
        batches = [synthetic_batch(cfg, args.action_dim, args.embed_dim, seed=k) for k in range(2)]
        count = train_step_flops(model, batches[0], opts)  # doubles as the first warm-up step
        times = []
        for i in range(args.warmup + args.steps):
            t0 = time.perf_counter()
            model.train_step(batches[i % 2], opts)
            if i >= args.warmup:
                times.append(time.perf_counter() - t0)
        med = float(np.median(times))
        achieved = count.total / med / 1e9
        ratio = achieved / peaks[prec]
        row = {"kind": "step", "preset": name, "precision": prec, "threads": args.threads,
               "batch": [cfg.batch_size, cfg.batch_length], "reward_head": cfg.reward_head,
               "flops_per_step": count.total, "flops_by_op": count.by_op, "flops_by_phase": count.phases,
               "median_s": round(med, 4), "min_s": round(min(times), 4), "achieved_gflops": round(achieved, 2),
               "peak_gflops": round(peaks[prec], 2), "peak_gemm_sizes": sizes, "ratio": round(ratio, 4),
               "target_ratio": 0.5, "target_met": ratio >= 0.5, "steps": args.steps, "warmup": args.warmup}
        rows.append(row)
        lines.append(row)

    print(f"\nworld-model + connector update (MFWM.train_step), preset {name}, {args.threads} thread(s), "
          f"median of {args.steps} steps")
    header = (f"{'prec':5s} {'GFLOP/step':>11s} {'(wm / conn)':>15s} {'s/step':>8s} {'achieved GFLOP/s':>17s} "
              f"{'GEMM peak GFLOP/s':>18s} {'ratio':>7s}")
    print(header)
    print("-" * len(header))
    for r in rows:
        ph = r["flops_by_phase"]
        split = f"{ph['world_model'] / 1e9:.2f} / {ph['connector_aligner'] / 1e9:.2f}"
        print(f"{r['precision']:5s} {r['flops_per_step'] / 1e9:11.2f} {split:>15s} {r['median_s']:8.3f} "
              f"{r['achieved_gflops']:17.1f} {r['peak_gflops']:18.1f} {r['ratio']:7.1%}")
    print("GEMM: " + "; ".join(f"{ln['precision']} n={ln['n']} {ln['gflops']:.1f}" for ln in lines
                               if ln["kind"] == "gemm") + " GFLOP/s  (target: ratio >= 50 %)\n")
    for ln in lines:
        print(json.dumps(ln))
    if args.json_out:
        Path(args.json_out).write_text("".join(json.dumps(ln) + "\n" for ln in lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
