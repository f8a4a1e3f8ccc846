"""Data-parallel scaling of ``genrl pretrain``: seconds per update at the same global batch, 1 -> N processes.

Each setting is a real ``genrl pretrain ... --nproc N`` run (torchrun; gloo on CPU, NCCL with ``--device cuda``)
into a fresh temporary folder; the time per update is read back from its ``metrics.jsonl`` (the log lines after
the first ``--log-every`` updates, which hold process start-up and warm-up). On a CPU machine the cores are shared:
``--threads T`` in total, ``T // N`` torch threads per process.

Usage::

    python benchmarks/bench_distributed.py --dataset runs/data/walker --preset small --steps 30 --threads 2 --nproc 1 2
    python benchmarks/bench_distributed.py --dataset runs/data/walker --preset paper --device cuda --nproc 1 2 4 8

Prints a Markdown table (processes, threads each, s/update, sequences/s, speed-up over the first setting).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(args: argparse.Namespace, nproc: int, out: Path) -> dict:
    """One ``genrl pretrain`` run in ``nproc`` processes; its timing numbers."""
    threads = max(1, args.threads // nproc)
    cmd = [sys.executable, "-m", "genrl", "pretrain", args.dataset, "--out", str(out), "--vlm", args.vlm,
           "--preset", args.preset, "--steps", str(args.steps), "--log-every", str(args.log_every),
           "--save-every", str(args.steps), "--report-every", str(args.steps), "--device", args.device,
           "--threads", str(threads), "--nproc", str(nproc)]
    if args.vlm_path:
        cmd += ["--vlm-path", args.vlm_path]
    t0 = time.time()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.time() - t0
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    timed = [x["train/seconds_per_update"] for x in lines
             if "train/seconds_per_update" in x and x["step"] > args.log_every]
    if not timed:
        raise SystemExit(f"no timed log lines after step {args.log_every}: raise --steps")
    cfg = json.loads((out / "config.json").read_text())
    batch = cfg["world_model"]["batch_size"]
    seconds = sum(timed) / len(timed)
    return {"nproc": nproc, "threads": threads, "seconds": seconds, "sequences": batch / seconds, "wall": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True, help="dataset folder with embeddings of --vlm (genrl embed)")
    ap.add_argument("--vlm", default="default")
    ap.add_argument("--vlm-path", default=None)
    ap.add_argument("--preset", default="small")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2, help="torch threads in total, split over the processes")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--nproc", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_distributed_") as tmp:
        for n in args.nproc:
            rows.append(run(args, n, Path(tmp) / f"n{n}"))
            print(f"nproc {n}: {rows[-1]['seconds']:.3f} s/update ({rows[-1]['wall']:.0f} s wall)", file=sys.stderr)
    print("| processes | threads each | s/update | sequences/s | speed-up |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['nproc']} | {r['threads']} | {r['seconds']:.3f} | {r['sequences']:.1f} | "
              f"{rows[0]['seconds'] / r['seconds']:.2f}x |")


if __name__ == "__main__":
    main()
