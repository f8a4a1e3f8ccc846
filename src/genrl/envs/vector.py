"""Environments of one task stepped in worker processes, for :func:`genrl.envs.rollout.evaluate`.

:class:`EnvPool` splits ``N`` episodes (seeds ``seeds[i]``) into ``workers`` contiguous chunks; each worker process
builds its chunk's environments with :func:`genrl.envs.registry.make`, resets them and then, per lockstep agent
step, steps only the environments the parent marks as still running (10 episodes on 2 workers: 2 processes with 5
environments each). The policy stays in the parent; only actions go out and images, rewards and end flags come back
(over one pipe per worker; ``info`` dicts are dropped).

Why not ``gymnasium.vector.AsyncVectorEnv``: it hosts one environment per process, cannot leave a finished
episode un-stepped (it auto-resets), and ships every step's ``info`` dict. Why ``spawn``: a ``fork`` after the
parent has rendered through EGL (llvmpipe) or run a multi-threaded torch op deadlocks the child (checked on this
machine with mujoco 3.17 / torch 2.13: the forked child never returns its first frame; with ``spawn`` it does, in
~3 s), and ``evaluate`` is called from training processes that have done both. The cost is the workers' start-up
(imports and environment creation, a few seconds per :class:`EnvPool`).

Workers ignore SIGINT (the parent decides when to stop), limit torch/OpenMP to one thread, and exit when the parent
closes the pool or disappears (their pipe reaches EOF). A worker exception is sent back and re-raised in the parent
as :class:`WorkerError`, whose one-line message names the task, the episode and its seed.

Usage::

    with EnvPool("walker_walk", seeds=range(10), workers=2) as pool:
        images = pool.reset_images                       # uint8 [10, 64, 64, 3]
        images, rewards, ended = pool.step(actions, active)
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import sys
import threading
import traceback
from typing import Any, Sequence

import numpy as np

START_METHOD = "spawn"
_POLL_S = 0.2     # how often a waiting parent checks that its workers are alive
_CLOSE_S = 5.0    # how long a worker may take to close its environments before it is terminated
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class WorkerError(RuntimeError):
    """An environment failed (or its worker process died) in an :class:`EnvPool` worker.

    Attributes:
        task: task id. episode: index of the failing episode (``None`` when a worker died without a word).
        seed: its environment seed (or None). remote_traceback: the worker's formatted traceback ("" if none; also
            attached as a note, so it is printed below the parent's traceback).
    """

    def __init__(self, message: str, task: str, episode: int | None, seed: int | None, remote_traceback: str = ""):
        super().__init__(message)
        self.task, self.episode, self.seed, self.remote_traceback = task, episode, seed, remote_traceback
        if remote_traceback:
            self.add_note(f"worker traceback:\n{remote_traceback.rstrip()}")


@contextlib.contextmanager
def _sigint_ignored():
    """Ignore SIGINT while workers are started, so they inherit SIG_IGN from birth (a Ctrl-C during their imports
    would otherwise kill them with a traceback); only possible from the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _limit_threads() -> None:
    for var in _THREAD_VARS:
        os.environ[var] = "1"
    if "torch" in sys.modules:  # imported by the parent's __main__ (re-run as __mp_main__ under spawn)
        sys.modules["torch"].set_num_threads(1)


def _worker(conn: Any, task: str, episodes: list[tuple[int, int]]) -> None:
    """Worker process: build, reset and step the environments of ``episodes`` (``(index, seed)`` pairs)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _limit_threads()
    envs: list[Any] = []
    current = episodes[0]
    try:
        from genrl.envs.registry import make

        for current in episodes:
            envs.append(make(task, seed=current[1]))
        images = []
        for current, env in zip(episodes, envs):
            images.append(env.reset()[0]["image"])  # seeded by make()
        conn.send(("ok", {"action_dim": int(envs[0].action_space.shape[0]), "images": np.stack(images),
                          "episode_steps": [int(getattr(env, "episode_steps", 0)) for env in envs]}))
        while True:
            msg = conn.recv()
            if msg[0] == "close":
                break
            _, active, actions = msg  # local indices [M], float32 [M, A]
            images = np.empty((len(active),) + envs[0].observation_space["image"].shape, dtype=np.uint8)
            rewards = np.zeros(len(active), dtype=np.float64)
            ended = np.zeros(len(active), dtype=bool)
            for k, (j, action) in enumerate(zip(active, actions)):
                current = episodes[j]
                obs, reward, terminated, truncated, _ = envs[j].step(action)
                images[k] = obs["image"]
                rewards[k] = float(reward)
                ended[k] = bool(terminated or truncated)
            conn.send(("ok", (images, rewards, ended)))
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass  # the parent is gone
    except BaseException as e:  # pylint: disable=broad-except
        first = (str(e).strip().splitlines() or [""])[0]
        try:
            conn.send(("error", current[0], current[1], f"{type(e).__name__}: {first}", traceback.format_exc()))
        except (OSError, ValueError):
            pass
    finally:
        for env in envs:
            try:
                env.close()
            except Exception:  # pylint: disable=broad-except
                pass
        conn.close()


class EnvPool:
    """``N`` environments of one task in ``workers`` processes, stepped in lockstep with a per-environment mask.

    Starts the workers, builds and resets every environment (``reset_images``) before returning. Always
    :meth:`close` it (or use it as a context manager).

    Args:
        task: task id (checked by the caller; an unknown task fails in the workers).
        seeds: environment seeds, one per episode (``N = len(seeds)``).
        workers: number of processes, ``1 <= workers``; clipped to ``N``. Episodes are split into contiguous
            chunks of sizes differing by at most one (10 on 3 workers: 4, 3, 3).

    Attributes:
        n: ``N``. action_dim: ``A``. episode_steps: ``N`` ints, each environment's ``episode_steps`` (0 if none).
        reset_images: uint8 ``[N, H, W, 3]``, the reset observations.
        chunks: per worker, the episode indices it hosts.

    Raises:
        ValueError: no seeds or ``workers < 1``.
        WorkerError: an environment failed to build or reset (the message names task, episode and seed), or a
            worker died.
    """

    def __init__(self, task: str, seeds: Sequence[int], workers: int):
        seeds = [int(s) for s in seeds]
        if not seeds:
            raise ValueError(f"EnvPool({task}): needs at least one seed")
        if workers < 1:
            raise ValueError(f"EnvPool({task}): workers must be >= 1, got {workers}")
        self.task, self.seeds, self.n = task, seeds, len(seeds)
        self.chunks = [list(map(int, c)) for c in np.array_split(np.arange(self.n), min(workers, self.n))]
        self._procs: list[Any] = []
        self._conns: list[Any] = []
        self._closed = False
        ctx = mp.get_context(START_METHOD)
        try:
            for chunk in self.chunks:
                parent_conn, child_conn = ctx.Pipe()
                proc = ctx.Process(target=_worker, args=(child_conn, task, [(i, seeds[i]) for i in chunk]),
                                   name=f"genrl-eval-{task}-{chunk[0]}", daemon=True)
                with _sigint_ignored():
                    proc.start()
                self._procs.append(proc)
                self._conns.append(parent_conn)
                child_conn.close()
            first = [self._recv(w) for w in range(len(self.chunks))]
        except BaseException:
            self.close()
            raise
        self.action_dim = first[0]["action_dim"]
        self.reset_images = np.concatenate([f["images"] for f in first])
        self.episode_steps = [s for f in first for s in f["episode_steps"]]

    def _recv(self, w: int) -> Any:
        """The next message of worker ``w``; raises :class:`WorkerError` for an error report or a dead worker."""
        conn, proc = self._conns[w], self._procs[w]
        msg = None
        while msg is None:
            if conn.poll(_POLL_S):
                try:
                    msg = conn.recv()
                except (EOFError, OSError):  # the worker's end closed: it died (or is exiting)
                    proc.join(_CLOSE_S)
                    break
            elif not proc.is_alive() and not conn.poll(0):
                break
        if msg is None:
            chunk = self.chunks[w]
            raise WorkerError(f"evaluate({self.task}): worker {w} (pid {proc.pid}, episodes {chunk[0]}-{chunk[-1]}) "
                              f"died with exit code {proc.exitcode}", self.task, None, None)
        if msg[0] == "error":
            _, episode, seed, what, tb = msg
            raise WorkerError(f"evaluate({self.task}): episode {episode} (seed {seed}) failed in worker {w}: {what}",
                              self.task, episode, seed, tb)
        return msg[1]

    def step(self, actions: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Step the environments with ``active[i]`` True; the others are left untouched.

        Args:
            actions: float32 ``[N, A]`` (rows of inactive environments are ignored).
            active: bool ``[N]``.

        Returns:
            ``(images, rewards, ended)`` for the ``M = active.sum()`` active environments, in index order: uint8
            ``[M, H, W, 3]``, float64 ``[M]`` (the step reward), bool ``[M]`` (``terminated or truncated``).

        Raises:
            RuntimeError: the pool is closed. WorkerError: an environment raised (e.g. a malformed action) or a
                worker died; the message names the task, episode and seed.
        """
        if self._closed:
            raise RuntimeError(f"EnvPool({self.task}): step() after close()")
        actions, active = np.asarray(actions, dtype=np.float32), np.asarray(active, dtype=bool)
        busy = []
        for w, chunk in enumerate(self.chunks):
            local = [k for k, i in enumerate(chunk) if active[i]]
            if local:
                self._conns[w].send(("step", local, actions[[chunk[k] for k in local]]))
                busy.append(w)
        parts = [self._recv(w) for w in busy]  # the workers step in parallel; collect in index order
        if not parts:
            return (np.zeros((0,) + self.reset_images.shape[1:], np.uint8), np.zeros(0), np.zeros(0, bool))
        return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))  # type: ignore[return-value]

    def close(self) -> None:
        """Stop every worker (ask, wait up to 5 s, then terminate / kill) and close the pipes. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for conn in self._conns:
            try:
                while conn.poll(0):  # drain unread replies so no worker blocks on a full pipe
                    conn.recv()
                conn.send(("close",))
            except (OSError, EOFError, ValueError):
                pass
        for proc in self._procs:
            proc.join(_CLOSE_S)
            if proc.is_alive():
                proc.terminate()
                proc.join(1.0)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for conn in self._conns:
            conn.close()

    def __enter__(self) -> "EnvPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            try:
                self.close()
            except Exception:  # pylint: disable=broad-except  (interpreter shutdown)
                pass


__all__ = ["EnvPool", "START_METHOD", "WorkerError"]
