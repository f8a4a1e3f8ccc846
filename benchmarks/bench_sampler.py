"""Sequence sampler speed and memory: ms per batch for 16x32 and 48x48 windows, store size, resident memory.

Synthetic episodes (random-looking uint8 frames ``[3, 64, 64]``, 6-d actions, rewards, flags and per-step 512-d
float16 embeddings like ``clip_video``) are generated one at a time and copied into the sampler's store, so the
benchmark never holds the episodes and the store at once. Timings: ``sample()`` alone (the gather into uint8/float
tensors), and separately the conversion of the observations to float ``[-0.5, 0.5]`` as the model does it.

Usage::

    python benchmarks/bench_sampler.py                                  # 100k frames (200 x 501) in RAM
    python benchmarks/bench_sampler.py --frames 1000000 --memmap-dir /tmp/replay   # 1M frames, memory-mapped
    python benchmarks/bench_sampler.py --frames 1000000                 # 1M frames in RAM (needs ~14 GB)

Target (issue "sequence sampler"): < 10 ms per 16x32 batch; 1M frames within 24 GiB.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from genrl.data.sampler import SequenceSampler


def synthetic_episodes(num: int, length: int, action_dim: int, emb_dim: int, seed: int = 0):
    """Yield ``(episode, embedding)`` pairs; frames are a random base clip shifted per episode (cheap to make)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (length, 3, 64, 64), dtype=np.uint8)
    emb = rng.standard_normal((length, emb_dim)).astype(np.float16)
    first = np.arange(length) == 0
    for e in range(num):
        yield {
            "observation": base + np.uint8(e % 256),
            "action": rng.uniform(-1, 1, (length, action_dim)).astype(np.float32),
            "reward": rng.uniform(0, 1, (length, 1)).astype(np.float32),
            "is_first": first,
            "is_terminal": np.zeros(length, bool),
        }, emb


def rss() -> dict[str, float]:
    """Current resident memory in GB from /proc (total, anonymous, file-backed) and the peak (ru_maxrss)."""
    out = {"peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon", "RssFile"):
                out[name] = int(value.split()[0]) / 2**20
    except OSError:
        pass
    return out


def timeit(fn, repeats: int, warmup: int = 3) -> tuple[float, float]:
    """(min, median) milliseconds of ``fn()`` over ``repeats`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3, float(np.median(times)) * 1e3


def to_float(obs: torch.Tensor) -> torch.Tensor:
    """uint8 frames -> float32 in [-0.5, 0.5], as the world model does."""
    return obs.to(torch.float32).div_(255.0).sub_(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=100_000, help="total steps (rounded up to whole episodes)")
    parser.add_argument("--episode-length", type=int, default=501)
    parser.add_argument("--action-dim", type=int, default=6)
    parser.add_argument("--emb-dim", type=int, default=512, help="per-step embedding size (0: none)")
    parser.add_argument("--memmap-dir", type=Path, default=None, help="memory-map the store there")
    parser.add_argument("--memmap", action="store_true", help="memory-map into a temporary directory (deleted)")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--batches", default="16x32,48x48")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    num = -(-args.frames // args.episode_length)
    memmap_dir, cleanup = args.memmap_dir, None
    if args.memmap and memmap_dir is None:
        memmap_dir = cleanup = Path(tempfile.mkdtemp(prefix="genrl_replay_"))
    gen = synthetic_episodes(num, args.episode_length, args.action_dim, max(args.emb_dim, 1))
    pending: list[np.ndarray] = []                  # the sampler reads episode i, then embedding i
    episodes = (_keep_second(pair, pending) for pair in gen)
    embeddings = (pending.pop() for _ in range(num)) if args.emb_dim else None

    start = time.perf_counter()
    base = SequenceSampler(episodes, batch_size=1, length=1, seed=0, embeddings=embeddings,
                           memmap_dir=memmap_dir, lengths=[args.episode_length] * num)
    build_s = time.perf_counter() - start
    where = f"memmap {memmap_dir}" if memmap_dir is not None else "RAM"
    print(f"store: {base.num_frames:,} frames, {base.num_episodes} episodes, {base.nbytes / 2**30:.2f} GiB in "
          f"{where}, built in {build_s:.1f} s; torch threads {torch.get_num_threads()}")

    rows = []
    for spec in args.batches.split(","):
        b, l = (int(x) for x in spec.split("x"))
        sampler = base.view(batch_size=b, length=l, seed=0)
        sample_ms = timeit(sampler.sample, args.repeats)
        obs = sampler.sample()["observation"]
        convert_ms = timeit(lambda: to_float(obs), args.repeats)
        both_ms = timeit(lambda: to_float(sampler.sample()["observation"]), args.repeats)
        rows.append((f"{b}x{l}", sample_ms, convert_ms, both_ms, obs.nbytes / 2**20))
        print(f"{b}x{l}: sample {sample_ms[0]:.2f}/{sample_ms[1]:.2f} ms, to float {convert_ms[0]:.2f}/"
              f"{convert_ms[1]:.2f} ms, both {both_ms[0]:.2f}/{both_ms[1]:.2f} ms (min/median of {args.repeats})")
    mem = rss()

    print()
    print("| batch (BxL) | sample ms (min / median) | uint8->float ms (min / median) | sample+float ms | obs MiB |")
    print("|---|---|---|---|---|")
    for name, s, c, t, mib in rows:
        print(f"| {name} | {s[0]:.2f} / {s[1]:.2f} | {c[0]:.2f} / {c[1]:.2f} | {t[0]:.2f} / {t[1]:.2f} | {mib:.0f} |")
    print()
    nan = float("nan")
    print(f"frames {base.num_frames:,}; store {base.nbytes / 2**30:.2f} GiB ({where}); RSS now "
          f"{mem.get('VmRSS', nan):.2f} GiB (anon {mem.get('RssAnon', nan):.2f}, file-backed "
          f"{mem.get('RssFile', nan):.2f}); peak RSS {mem['peak']:.2f} GiB")
    if cleanup is not None:
        del base, sampler
        shutil.rmtree(cleanup, ignore_errors=True)


def _keep_second(pair, pending: list):
    """Return the episode of ``pair`` and park its embedding for the embeddings iterator."""
    pending.append(pair[1])
    return pair[0]


if __name__ == "__main__":
    main()
