"""MFWM update speed: seconds per update (world model + connector + aligner), frames/s, peak memory, per preset.

Synthetic batches (random uint8 frames, actions, unit-norm embeddings) of the preset's batch size and length;
the data-loading share is measured separately with a real :class:`~genrl.data.sampler.SequenceSampler` when
``--dataset`` (with embeddings of ``--embedder-id``) is given.

Usage::

    python benchmarks/bench_worldmodel.py --preset small --threads 2 --steps 10
    python benchmarks/bench_worldmodel.py --preset small --precision bf16      # compare autocast
    python benchmarks/bench_worldmodel.py --preset paper --device cuda          # on a GPU machine
    python benchmarks/bench_worldmodel.py --preset small --compile              # inductor-fused conv nets

Target (issue "MFWM"): small preset <= 0.45 s/update on 2 cores; data loading < 5 % of the step time.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch
import torch.nn.functional as F

from genrl.mfwm.model import MFWM
from genrl.utils.presets import names
from genrl.worldmodel.config import WorldModelConfig, preset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small", choices=names(WorldModelConfig))
    ap.add_argument("--precision", default=None, choices=("auto", "bf16", "fp32"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--action-dim", type=int, default=6)
    ap.add_argument("--embed-dim", type=int, default=256)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--compile", action="store_true",
                    help="torch.compile the encoder and decoder (WorldModel.compile_convnets)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    overrides = {"precision": args.precision} if args.precision else {}
    cfg = preset(args.preset, **overrides)
    dev = torch.device(args.device)
    model = MFWM(cfg, args.action_dim, args.embed_dim, 8).to(dev)
    opts = model.optimizers()
    if args.compile:
        model.wm.compile_convnets()
    B, T = cfg.batch_size, cfg.batch_length
    g = torch.Generator().manual_seed(0)
    batch = {"observation": torch.randint(0, 256, (B, T, 3, 64, 64), dtype=torch.uint8, generator=g).to(dev),
             "action": (torch.rand(B, T, args.action_dim, generator=g) * 2 - 1).to(dev),
             "is_first": torch.zeros(B, T, dtype=torch.bool).to(dev),
             "embedding": F.normalize(torch.randn(B, T, args.embed_dim, generator=g), dim=-1).to(dev)}
    batch["is_first"][:, 0] = True
    times = []
    for i in range(args.warmup + args.steps):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        model.train_step(batch, opts)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    med = float(np.median(times))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    params = sum(p.numel() for p in model.parameters())
    print(f"preset={args.preset} precision={cfg.precision} device={dev} threads={args.threads} batch={B}x{T} "
          f"params={params / 1e6:.2f}M compile={args.compile}")
    print(f"seconds/update: median {med:.3f}, min {min(times):.3f}; frames/s {B * T / med:.0f}; "
          f"peak RSS {peak:.0f} MiB" + (f"; peak CUDA {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"
                                        if dev.type == "cuda" else ""))


if __name__ == "__main__":
    main()
