"""Which MFWM update path is fastest on this machine: fp32 / bf16 autocast, eager / compiled conv nets, interleaved.

On a shared VM, timings of separate processes drift by 20-30 % from minute to minute (steal time), which is
larger than the differences measured here. This builds one MFWM per variant in one process and runs their
updates round-robin (variant A step, variant B step, ...), so every variant sees the same machine state; it
prints each variant's median and its ratio to fp32 eager (table + one JSON line). Variants: ``fp32``, ``bf16``
(autocast), and with ``--compile`` also ``fp32+compile`` and ``bf16+compile``
(:meth:`genrl.worldmodel.model.WorldModel.compile_convnets`; compiling takes ~30 s per variant, excluded).

Usage::

    python benchmarks/bench_precision.py --preset small --threads 2 --rounds 8 --compile
    python benchmarks/bench_precision.py --preset tiny --threads 1 --rounds 2            # smoke run
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from genrl.mfwm.model import MFWM
from genrl.utils.presets import names
from genrl.worldmodel.config import WorldModelConfig, cpu_has_native_bf16, preset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_flops import synthetic_batch  # noqa: E402  (benchmarks/ is not a package)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small", choices=names(WorldModelConfig))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=8, help="timed updates per variant (interleaved)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed updates per variant (compilation happens here)")
    ap.add_argument("--compile", action="store_true", help="also time the compiled-conv-net variants")
    ap.add_argument("--action-dim", type=int, default=6)
    ap.add_argument("--embed-dim", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    variants = [("fp32", False), ("bf16", False)] + ([("fp32", True), ("bf16", True)] if args.compile else [])
    models, batch = {}, None
    for precision, compiled in variants:
        torch.manual_seed(0)
        cfg = preset(args.preset, precision=precision)
        model = MFWM(cfg, args.action_dim, args.embed_dim, 8)
        if compiled:
            model.wm.compile_convnets()
        batch = batch or synthetic_batch(cfg, args.action_dim, args.embed_dim)
        models[precision + ("+compile" if compiled else "")] = (model, model.optimizers())
    for name, (model, opts) in models.items():
        t0 = time.perf_counter()
        for _ in range(args.warmup):
            model.train_step(batch, opts)
        print(f"warm-up {name}: {time.perf_counter() - t0:.1f} s", flush=True)
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, (model, opts) in models.items():
            t0 = time.perf_counter()
            model.train_step(batch, opts)
            times[name].append(time.perf_counter() - t0)
    base = float(np.median(times["fp32"]))
    print(f"preset={args.preset} threads={args.threads} rounds={args.rounds} native_bf16={cpu_has_native_bf16()} "
          f"cpu={platform.processor() or platform.machine()}")
    print("| variant | s/update (median) | min | vs fp32 eager |\n|---|---|---|---|")
    result = {}
    for name, ts in times.items():
        med = float(np.median(ts))
        result[name] = {"median_s": round(med, 4), "min_s": round(min(ts), 4), "speedup": round(base / med, 3)}
        print(f"| {name} | {med:.3f} | {min(ts):.3f} | {base / med:.2f}x |")
    print(json.dumps({"kind": "precision", "preset": args.preset, "threads": args.threads, "rounds": args.rounds,
                      "native_bf16": cpu_has_native_bf16(), "variants": result}))


if __name__ == "__main__":
    main()
