"""Data-parallel runs over N processes with PyTorch's own engine (``torch.distributed`` launched by ``torchrun``,
``DistributedDataParallel``): the process-group plumbing shared by ``genrl pretrain`` and ``genrl embed``.

A command runs in one of two ways:

* one process (no ``WORLD_SIZE`` in the environment, or ``WORLD_SIZE=1``): nothing here does anything, no process
  group is created, the single-process code path is unchanged;
* one of N processes started by ``torchrun`` (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``PORT``
  set by it): :func:`process_group` joins the group (NCCL on CUDA devices, gloo on CPU), rank 0 is the only writer.

``genrl pretrain --nproc N`` / ``genrl embed --nproc N`` on one machine re-run the same command under
``python -m torch.distributed.run --standalone --nproc-per-node N`` (:func:`relaunch`); several machines use
torchrun's rendezvous options directly (README, "Several processes, GPUs or machines").

Usage::

    with process_group(device) as dp:           # dp: DistInfo(rank, world_size, local_rank)
        seed = rank_seed(cfg.seed, dp.rank, step)        # per-rank stream
        metrics = mean_metrics(metrics)                  # same numbers on every rank
        if dp.is_main: write(...)

torch is imported on first use only: ``launched``/``relaunch`` (the ``--nproc`` launcher) stay light.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Mapping, Sequence, TypeVar

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["DistInfo", "env_info", "group_info", "launched", "process_group", "device_for_rank", "rank_seed", "shard",
           "mean_metrics", "sum_ints", "all_finite", "barrier", "relaunch", "torchrun_command",
           "without_option"]

T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in a run.

    Attributes:
        rank: global rank ``0 .. world_size - 1`` (0: the only writer).
        world_size: processes in the run (1: not distributed).
        local_rank: rank on this machine (selects the CUDA device).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: writes checkpoints, metrics, reports and shows the progress bar."""
        return self.rank == 0


def env_info() -> DistInfo:
    """The ranks ``torchrun`` put in the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``); defaults 0/1/0.

    Raises:
        ValueError: a rank outside ``[0, world_size)``.
    """
    info = DistInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                    int(os.environ.get("LOCAL_RANK", 0)))
    if info.world_size < 1 or not 0 <= info.rank < info.world_size:
        raise ValueError(f"bad torch.distributed environment: RANK={info.rank}, WORLD_SIZE={info.world_size}")
    return info


def launched() -> bool:
    """Whether this process was started by ``torchrun`` (so ``--nproc`` must not launch again)."""
    return "WORLD_SIZE" in os.environ and "LOCAL_RANK" in os.environ


def device_for_rank(device: torch.device, info: DistInfo) -> torch.device:
    """The device of this rank: ``cuda:LOCAL_RANK`` (made current) for a CUDA ``device`` in a multi-process run,
    else ``device`` as is.

    Raises:
        ValueError: fewer visible CUDA devices than processes on this machine.
    """
    import torch

    if device.type != "cuda" or not info.distributed:
        return device
    if info.local_rank >= torch.cuda.device_count():
        raise ValueError(f"local rank {info.local_rank} has no GPU: {torch.cuda.device_count()} visible; start at "
                         f"most that many processes per machine (--nproc / --nproc-per-node)")
    torch.cuda.set_device(info.local_rank)
    return torch.device("cuda", info.local_rank)


@contextlib.contextmanager
def process_group(device: torch.device | str = "cpu", backend: str | None = None) -> Iterator[DistInfo]:
    """Join the process group of a ``torchrun`` launch for the block; a no-op in a single process.

    Args:
        device: the device the run computes on: ``nccl`` for CUDA, else ``gloo`` (unless ``backend`` is given).
        backend: force a backend (``"gloo"`` for CPU-only collectives, e.g. embedding progress counts).

    Yields:
        this process's :class:`DistInfo`. The group is destroyed on exit (also on errors) when this call made it.
    """
    import torch
    import torch.distributed as dist

    info = env_info()
    made = False
    if info.distributed and not dist.is_initialized():
        dev = torch.device(device)
        backend = backend or ("nccl" if dev.type == "cuda" else "gloo")
        bound = {"device_id": dev} if backend == "nccl" and dev.index is not None else {}  # NCCL: this rank's GPU
        dist.init_process_group(backend, **bound)
        made = True
    try:
        yield info
    finally:
        if made and dist.is_initialized():
            dist.destroy_process_group()


def group_info() -> DistInfo:
    """Rank and size of the initialized default process group (``DistInfo(0, 1, 0)`` without one)."""
    if not _active():
        return DistInfo()
    import torch.distributed as dist

    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def _active() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank_seed(seed: int, rank: int, step: int, stream: int = 0) -> int:
    """A 63-bit seed for ``(seed, stream, rank, step)`` (numpy ``SeedSequence``): independent streams per rank,
    reproducible from the run's seed and the update at which the stream (re)starts."""
    state = np.random.SeedSequence([int(seed) & (2**63 - 1), int(stream), int(rank), int(step)])
    return int(state.generate_state(1, np.uint64)[0] >> np.uint64(1))


def shard(items: Sequence[T], rank: int, world_size: int) -> list[T]:
    """Rank ``rank``'s share of ``items``: ``items[rank::world_size]`` (the shares of all ranks partition
    ``items``: every item in exactly one share, sizes differing by at most one)."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} of {world_size} processes")
    return list(items[rank::world_size])


def mean_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """Average float metrics over the ranks (one ``all_reduce``); returns them unchanged in a single process.

    Every rank must pass the same keys (the metrics of the same update). Averages of per-rank batch means are the
    mean over the whole batch when every rank has the same batch size; gradient norms after DDP are already equal.
    """
    if not _active():
        return dict(metrics)
    import torch
    import torch.distributed as dist

    keys = sorted(metrics)
    dev = _comm_device()
    values = torch.tensor([float(metrics[k]) for k in keys], dtype=torch.float64, device=dev)
    dist.all_reduce(values)
    return dict(zip(keys, (values / dist.get_world_size()).tolist()))


def sum_ints(values: Sequence[int]) -> list[int]:
    """Element-wise sum of integer counts over the ranks (unchanged in a single process)."""
    if not _active():
        return [int(v) for v in values]
    import torch
    import torch.distributed as dist

    t = torch.tensor([int(v) for v in values], dtype=torch.int64, device=_comm_device())
    dist.all_reduce(t)
    return [int(v) for v in t.tolist()]


def all_finite(value: torch.Tensor) -> bool:
    """Whether a scalar is finite on *every* rank (one ``all_reduce``), so that all ranks stop together on a NaN."""
    import torch
    import torch.distributed as dist

    if not _active():
        return bool(torch.isfinite(value))
    flag = torch.tensor([0.0 if bool(torch.isfinite(value.detach())) else 1.0], device=_comm_device())
    dist.all_reduce(flag)
    return float(flag) == 0.0


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if _active():
        import torch.distributed as dist

        dist.barrier()


def _comm_device() -> torch.device:
    """Where collective tensors live: the current CUDA device for NCCL, the CPU otherwise."""
    import torch
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def torchrun_command(nproc: int, argv: Sequence[str]) -> list[str]:
    """``python -m torch.distributed.run --standalone --nproc-per-node N -m genrl ARGV`` (one machine)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={int(nproc)}",
            "-m", "genrl", *argv]


def without_option(argv: Sequence[str], flag: str = "--nproc") -> list[str]:
    """``argv`` without ``flag VALUE`` / ``flag=VALUE`` (torchrun's parser refuses ``--nproc`` anywhere on its
    command line: an ambiguous abbreviation of its ``--nproc-per-node``)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == flag:
            skip = True
        elif not arg.startswith(flag + "="):
            out.append(arg)
    return out


def relaunch(nproc: int, argv: Sequence[str]) -> int:
    """Run ``genrl ARGV`` (without its ``--nproc``) in ``nproc`` processes on this machine under torchrun; returns
    its exit code.

    Each process sees ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` (so :func:`launched` is True there and the command
    runs instead of launching again); ``OMP_NUM_THREADS`` defaults to 1 per process (torchrun's rule).

    Raises:
        ValueError: ``nproc < 1``.
    """
    if nproc < 1:
        raise ValueError(f"--nproc must be >= 1, got {nproc}")
    proc = subprocess.Popen(torchrun_command(nproc, without_option(argv)))
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:  # torchrun got the same Ctrl-C: its workers stop (rank 0 saves); wait for them
            continue
