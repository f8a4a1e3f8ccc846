"""Default-VLM (MiniVLM) embedding speed on the CPU: frames/s of ``genrl embed`` and prompts/s of the text tower.

Embeds the first ``--episodes`` episodes of a dataset in memory (nothing is written), with ``--threads`` torch
threads, then 256 prompts.

Usage::

    python benchmarks/bench_vlm.py runs/data/walker --episodes 4 --threads 2
"""

from __future__ import annotations

import argparse
import time

import torch

from genrl.data.dataset import Dataset
from genrl.vlm.embed import embed_episode
from genrl.vlm.registry import make_embedder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset")
    ap.add_argument("--episodes", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--vlm", default="default")
    ap.add_argument("--vlm-path", default=None)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    vlm = make_embedder(args.vlm, args.vlm_path, batch_size=args.batch_size)
    ds = Dataset(args.dataset)
    names = ds.names()[:args.episodes]
    episodes = [ds.load(n, keys=set())["observation"] for n in names]
    embed_episode(episodes[0][:16], vlm)  # warm-up
    t0 = time.perf_counter()
    frames = sum(len(embed_episode(obs, vlm)) for obs in episodes)
    video_s = time.perf_counter() - t0
    prompts = [f"a walker moving at speed {i}" for i in range(256)]
    vlm.embed_text(prompts[:8])  # loads the text tower
    t0 = time.perf_counter()
    vlm.embed_text(prompts)
    text_s = time.perf_counter() - t0
    print(f"{vlm.id}: k={vlm.n_frames} dim={vlm.dim} threads={args.threads} batch={args.batch_size}")
    print(f"video: {frames} frames (clips of the k frames ending at each step) in {video_s:.1f} s = "
          f"{frames / video_s:.1f} frames/s")
    print(f"text: {len(prompts)} prompts in {text_s:.2f} s = {len(prompts) / text_s:.0f} prompts/s")


if __name__ == "__main__":
    main()
