"""Where the time of one world-model + connector update goes, fp32 against bf16: a per-op CPU profile.

Issue 16 asks why bf16 autocast gains little on CPUs with native bf16 (GEMM peak 2.1x fp32's, the step 1.1-1.2x).
This runs :meth:`genrl.mfwm.model.MFWM.train_step` on a synthetic batch of the preset's size (as
``benchmarks/bench_flops.py``) under ``torch.profiler`` for each precision and prints, per precision, the self CPU
time per op category (convolution forward / backward, matrix products, norms, element-wise, dtype casts,
distributions and the rest) and the top ops, side by side, with the bf16/fp32 ratio of each. The findings
(convolutions are ~45 % of the step, and oneDNN's bf16 convolution backward is no faster than fp32 at these
channel counts on AVX512-BF16 without AMX) are in ``benchmarks/RESULTS.md``.

Usage::

    python benchmarks/profile_step.py --preset small --threads 2 --steps 3
    python benchmarks/profile_step.py --tiny --threads 1 --steps 1          # smoke run
    ONEDNN_VERBOSE=1 python benchmarks/profile_step.py --steps 1 --precisions bf16 2>&1 | grep exec | head
        # which oneDNN kernels (avx512_core_bf16 / amx / gemm:jit / ref) the convolutions run

Prints a table and one JSON line per precision (``--json-out FILE`` writes them too).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_flops import synthetic_batch  # noqa: E402  (benchmarks/ is not a package)

# op-name fragments -> category (first match wins; names are aten ops as the profiler reports them)
CATEGORIES = (
    ("conv backward", ("convolution_backward", "mkldnn_convolution_backward")),
    ("conv forward", ("convolution", "conv2d", "conv_transpose")),
    ("matmul", ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul", "aten::linear")),
    ("norm", ("layer_norm", "group_norm", "native_layer_norm", "batch_norm")),
    ("cast / copy", ("aten::to", "aten::_to_copy", "aten::copy_", "aten::clone", "aten::contiguous")),
    ("distributions", ("softmax", "log_softmax", "logsumexp", "cumsum", "searchsorted", "gather", "one_hot",
                       "scatter", "argmax", "multinomial", "uniform", "normal")),
    ("optimizer", ("_foreach", "addcdiv", "addcmul", "lerp", "sqrt")),
    ("element-wise", ("aten::add", "aten::sub", "aten::mul", "aten::div", "aten::silu", "aten::sigmoid",
                      "aten::tanh", "aten::exp", "aten::log", "aten::neg", "aten::pow", "aten::where",
                      "aten::clamp", "aten::abs", "aten::sum", "aten::mean", "aten::fill_", "aten::zero_",
                      "aten::threshold", "_backward")),
)


def category(name: str) -> str:
    """The category of an aten op name (``"other"`` when none matches)."""
    for cat, keys in CATEGORIES:
        if any(k in name for k in keys):
            return cat
    return "other"


def profile_steps(model, batches, opts, steps: int) -> tuple[float, dict[str, float], dict[str, float]]:
    """Profile ``steps`` train steps: (wall seconds per step, self CPU seconds per category, per op), per step."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for i in range(steps):
            model.train_step(batches[i % 2], opts)
        wall = (time.perf_counter() - t0) / steps
    per_op: dict[str, float] = defaultdict(float)
    for ev in prof.key_averages():
        per_op[ev.key] += ev.self_cpu_time_total / 1e6 / steps
    per_cat: dict[str, float] = defaultdict(float)
    for name, sec in per_op.items():
        per_cat[category(name)] += sec
    return wall, dict(per_cat), dict(per_op)


def main(argv: list[str] | None = None) -> int:
    from genrl.mfwm.model import MFWM
    from genrl.utils.presets import names
    from genrl.worldmodel.config import WorldModelConfig, preset

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small", choices=names(WorldModelConfig))
    ap.add_argument("--tiny", action="store_true", help="tiny preset (a smoke run)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3, help="profiled steps per precision (after 2 warm-up steps)")
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=("fp32", "bf16"))
    ap.add_argument("--top", type=int, default=15, help="ops listed per precision")
    ap.add_argument("--action-dim", type=int, default=6)
    ap.add_argument("--embed-dim", type=int, default=256)
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    name = "tiny" if args.tiny else args.preset

    results = {}
    for prec in args.precisions:
        cfg = preset(name, precision=prec)
        torch.manual_seed(0)
        model = MFWM(cfg, args.action_dim, args.embed_dim, 8)
        opts = model.optimizers()
        batches = [synthetic_batch(cfg, args.action_dim, args.embed_dim, seed=k) for k in range(2)]
        for i in range(2):
            model.train_step(batches[i % 2], opts)
        wall, cats, ops = profile_steps(model, batches, opts, args.steps)
        results[prec] = {"wall_s": wall, "categories": cats, "ops": ops}
        print(f"{prec}: {wall:.3f} s/step (profiled, {args.steps} steps)", file=sys.stderr, flush=True)

    precs = list(results)
    cats = sorted({c for r in results.values() for c in r["categories"]},
                  key=lambda c: -results[precs[0]]["categories"].get(c, 0.0))
    print(f"\nself CPU seconds per step by category, preset {name}, {args.threads} thread(s) "
          "(profiler overhead included; compare columns, not with bench_flops)")
    print(f"{'category':16s} " + " ".join(f"{p:>9s}" for p in precs) + ("   bf16/fp32" if len(precs) == 2 else ""))
    for c in cats + ["wall"]:
        vals = ([results[p]["wall_s"] for p in precs] if c == "wall"
                else [results[p]["categories"].get(c, 0.0) for p in precs])
        ratio = f"   {vals[1] / vals[0]:9.2f}" if len(vals) == 2 and vals[0] > 0 else ""
        print(f"{c:16s} " + " ".join(f"{v:9.4f}" for v in vals) + ratio)
    for p in precs:
        print(f"\ntop {args.top} ops, {p} (self CPU s/step)")
        for op, sec in sorted(results[p]["ops"].items(), key=lambda kv: -kv[1])[:args.top]:
            other = "" if len(precs) < 2 else "  (" + ", ".join(
                f"{q} {results[q]['ops'].get(op, 0.0):.4f}" for q in precs if q != p) + ")"
            print(f"  {op:42s} {sec:8.4f}{other}")
    lines = [{"kind": "profile", "preset": name, "precision": p, "threads": args.threads, "steps": args.steps,
              "wall_s": round(r["wall_s"], 4), "categories": {k: round(v, 5) for k, v in r["categories"].items()},
              "top_ops": dict(sorted(((k, round(v, 5)) for k, v in r["ops"].items()), key=lambda kv: -kv[1])[:40])}
             for p, r in results.items()]
    for ln in lines:
        print(json.dumps(ln))
    if args.json_out:
        with open(args.json_out, "a") as f:
            for ln in lines:
                f.write(json.dumps(ln) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
