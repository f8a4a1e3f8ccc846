"""Batched evaluation of pixel policies in the real environments (official ``train.py`` ``Workspace.eval``; paper
section 4).

:func:`evaluate` builds ``episodes`` environments of one task (seeds ``seed, seed + 1, ...``, action repeat 2),
steps them in lockstep and asks the policy for all actions at once (one batched inference per agent step). With
``workers > 1`` the environments are built, stepped and rendered in that many worker processes
(:class:`genrl.envs.vector.EnvPool`, several environments each) while the policy stays batched in this process;
the returns, lengths and frames are identical to the in-process path (``workers=1``) for the same seeds. The
episode return is the sum of the environment's step reward (DMC: ~1000 max over 500 agent steps; kitchen: 0/1
sparse success over 140 agent steps) and is min-max normalised with the paper's random/expert references
(:func:`genrl.envs.scores.normalized_score`) when the task has them.

Policies implement :class:`BatchPolicy`: ``reset(n)`` then ``act(images, is_first)`` once per step, where
``images`` is uint8 ``[N, 64, 64, 3]`` (the current observation of every environment) and ``is_first`` is True on
the reset frame. Environments whose episode ended early keep receiving their last image and their actions are
ignored.

This module only imports from ``genrl.envs`` (the top of the pipeline); the world-model policy lives in
``genrl.behavior.agent``.

Usage::

    from genrl.envs.rollout import RandomPolicy, evaluate
    result = evaluate(RandomPolicy(action_dim=6, seed=0), "walker_walk", episodes=10, seed=0, workers="auto")
    print(result.mean_return, result.mean_normalized)
    json.dump(result.to_dict(), f)
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Protocol, runtime_checkable

import numpy as np

from genrl.envs.registry import make, reference_scores, split_task
from genrl.envs.scores import normalized_score
from genrl.envs.vector import EnvPool, WorkerError


@runtime_checkable
class BatchPolicy(Protocol):
    """A policy acting on a batch of ``N`` environments from pixels."""

    def reset(self, n: int) -> None:
        """Start ``n`` new episodes (clear recurrent state / frame stacks)."""
        ...

    def act(self, images: np.ndarray, is_first: np.ndarray) -> np.ndarray:
        """Actions for the current observations.

        Args:
            images: uint8 ``[N, 64, 64, 3]``, the current observation of each environment.
            is_first: bool ``[N]``, True on the reset frame of an episode.

        Returns:
            float32 ``[N, A]`` in ``[-1, 1]``.
        """
        ...


class RandomPolicy:
    """Uniform actions in ``[-1, 1]^A`` from a seeded ``numpy`` generator (``reset`` does not re-seed).

    Args:
        action_dim: ``A``.
        seed: generator seed.
    """

    def __init__(self, action_dim: int, seed: int = 0):
        if action_dim < 1:
            raise ValueError(f"RandomPolicy: action_dim must be >= 1, got {action_dim}")
        self.action_dim = int(action_dim)
        self.rng = np.random.default_rng(seed)

    def reset(self, n: int) -> None:
        pass

    def act(self, images: np.ndarray, is_first: np.ndarray) -> np.ndarray:
        return self.rng.uniform(-1.0, 1.0, size=(len(images), self.action_dim)).astype(np.float32)


class ConstantPolicy:
    """Always the same action ``float32 [A]`` (clipped to ``[-1, 1]``) for every environment."""

    def __init__(self, action: Any):
        a = np.asarray(action, dtype=np.float32)
        if a.ndim != 1 or not np.all(np.isfinite(a)):
            raise ValueError(f"ConstantPolicy: action must be a finite 1-D array [A], got shape {a.shape}: {a}")
        self.action = np.clip(a, -1.0, 1.0)

    def reset(self, n: int) -> None:
        pass

    def act(self, images: np.ndarray, is_first: np.ndarray) -> np.ndarray:
        return np.repeat(self.action[None], len(images), axis=0)


EVAL_SEED_BASE = 10_000


def eval_seed(seed: int) -> int:
    """Environment seed of the first evaluation episode of training seed ``seed``: ``10000 + 100 seed``.

    Episode ``i`` uses ``eval_seed(seed) + i``, so the evaluations of seeds 0, 1, ... are disjoint for up to 100
    episodes each, and none starts from the initial state of a collected episode (collection seeds are
    ``seed * 1000003 + i`` with small ``i``). Shared by ``genrl behave``, ``genrl eval`` and ``genrl baseline`` so
    methods trained with the same seed are scored on the same episodes.
    """
    return EVAL_SEED_BASE + 100 * int(seed)


@dataclasses.dataclass
class EvalResult:
    """Outcome of :func:`evaluate`.

    Attributes:
        task: task id.
        episodes: number of episodes ``N``.
        seed: seed of the first environment (episode ``i`` uses ``seed + i``).
        returns: ``N`` undiscounted episode returns (sum of the task's step rewards).
        normalized: ``(return - random) / (expert - random)`` per episode, or None (task without references).
        mean_return, std_return: mean and population standard deviation of ``returns``.
        mean_normalized: mean of ``normalized`` (or None).
        stderr_normalized: standard error ``std(ddof=1) / sqrt(N)`` of ``normalized`` (0.0 for one episode; None
            without references).
        frames: uint8 ``[T + 1, H, W * video_episodes, 3]``: the reset frame and then the observation after each of
            the ``T`` lockstep agent steps, the first ``video_episodes`` episodes side by side (a finished episode
            repeats its last frame); None when ``video_episodes == 0``.
        steps: ``N`` episode lengths in agent steps.
        max_steps: the episode cap used (None: the task's full episodes). Scores under a cap are not comparable
            with the paper's.
        seconds: wall-clock duration of the evaluation.
    """

    task: str
    episodes: int
    seed: int
    returns: list[float]
    normalized: list[float] | None
    mean_return: float
    std_return: float
    mean_normalized: float | None
    stderr_normalized: float | None
    frames: np.ndarray | None
    seconds: float
    steps: list[int] = dataclasses.field(default_factory=list)
    max_steps: int | None = None

    def to_dict(self) -> dict:
        """JSON-able dict of every field except ``frames``."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "frames"}


def _check_actions(actions: Any, n: int, action_dim: int, policy: Any, task: str) -> np.ndarray:
    a = np.asarray(actions, dtype=np.float32)
    name = type(policy).__name__
    if a.shape != (n, action_dim):
        raise ValueError(f"policy {name} on {task}: act() must return float32 [N={n}, A={action_dim}], "
                         f"got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"policy {name} on {task}: act() returned NaN or Inf actions")
    return a


def resolve_workers(workers: int | str | None, episodes: int) -> int:
    """Number of evaluation processes: ``None``/``"auto"`` -> ``min(episodes, usable CPUs)``; an int is clipped to
    ``episodes``.

    Raises:
        ValueError: an int below 1, a bool, or another string.
    """
    if workers is None or workers == "auto":
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return max(1, min(episodes, cpus))
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, None or 'auto', got {workers!r}")
    return max(1, min(episodes, int(workers)))


class _LocalEnvs:
    """The in-process counterpart of :class:`genrl.envs.vector.EnvPool` (same attributes and ``step``)."""

    def __init__(self, task: str, seeds: list[int]):
        self.envs: list[Any] = []
        try:
            for s in seeds:
                self.envs.append(make(task, seed=s))
            self.action_dim = int(self.envs[0].action_space.shape[0])
            self.episode_steps = [int(getattr(env, "episode_steps", 0)) for env in self.envs]
            self.reset_images = np.stack([env.reset()[0]["image"] for env in self.envs])  # seeded by make()
        except BaseException:
            self.close()
            raise

    def step(self, actions: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        images, rewards, ended = [], [], []
        for i in np.flatnonzero(active):
            obs, reward, terminated, truncated, _ = self.envs[i].step(actions[i])
            images.append(obs["image"])
            rewards.append(float(reward))
            ended.append(bool(terminated or truncated))
        return np.stack(images), np.asarray(rewards, dtype=np.float64), np.asarray(ended, dtype=bool)

    def close(self) -> None:
        for env in self.envs:
            env.close()

    def __enter__(self) -> "_LocalEnvs":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def evaluate(policy: BatchPolicy, task: str, episodes: int = 10, seed: int = 0, video_episodes: int = 1,
             progress: bool = False, max_steps: int | None = None, workers: int | str | None = 1) -> EvalResult:
    """Run ``episodes`` episodes of ``task`` in lockstep with one batched policy call per agent step.

    Args:
        policy: a :class:`BatchPolicy`; ``reset(episodes)`` is called first.
        task: task id, e.g. ``"walker_walk"`` (see :func:`genrl.envs.registry.list_tasks`).
        episodes: number of episodes ``N`` (one environment each, seeds ``seed + i``).
        seed: seed of the first environment.
        video_episodes: how many of the first episodes to record side by side in ``frames`` (0: no video).
        progress: show a tqdm bar over agent steps.
        max_steps: cap on the agent steps per episode, for quick tests; the returns are then NOT comparable with
            the paper's scores (DMC episodes have 500 agent steps, kitchen 140).
        workers: processes that build, step and render the environments (:func:`resolve_workers`): ``1`` (the
            default) steps them one after another in this process; ``k > 1`` (clipped to ``episodes``) splits the
            episodes into ``k`` contiguous chunks, one ``spawn``-ed worker process each (:mod:`genrl.envs.vector`);
            ``None`` or ``"auto"``: ``min(episodes, usable CPUs)``. The policy always runs here, batched over all
            episodes; results do not depend on ``workers``. Worker start-up costs a few seconds per call.

    Returns:
        :class:`EvalResult`.

    Raises:
        ValueError: ``episodes < 1``, ``video_episodes`` outside ``[0, episodes]``, ``max_steps < 1``, bad
            ``workers``, an unknown task, or a policy output that is not a finite ``[N, A]`` array (the message
            names policy and task).
        genrl.envs.vector.WorkerError: (``workers > 1``) an environment raised in a worker or a worker died; the
            one-line message names the task, the episode and its seed (the worker's traceback is attached as a
            note). The workers are shut down on any error or KeyboardInterrupt.
    """
    if episodes < 1:
        raise ValueError(f"evaluate({task}): episodes must be >= 1, got {episodes}")
    if not 0 <= video_episodes <= episodes:
        raise ValueError(f"evaluate({task}): video_episodes must be in [0, episodes={episodes}], got {video_episodes}")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"evaluate({task}): max_steps must be >= 1 or None, got {max_steps}")
    n_workers = resolve_workers(workers, episodes)
    if n_workers > 1:
        split_task(task)  # an unknown task raises ValueError here, as in-process
    start = time.perf_counter()
    seeds = [seed + i for i in range(episodes)]
    with (_LocalEnvs(task, seeds) if n_workers == 1 else EnvPool(task, seeds, n_workers)) as envs:
        action_dim = envs.action_dim
        # Episodes end on the env's terminated/truncated or at max_steps; ``limit`` only sizes the progress bar.
        limit = max(envs.episode_steps) or None
        if max_steps is not None:
            limit = max_steps if limit is None else min(limit, max_steps)
        images = envs.reset_images
        is_first = np.ones(episodes, dtype=bool)
        done = np.zeros(episodes, dtype=bool)
        returns = np.zeros(episodes, dtype=np.float64)
        lengths = np.zeros(episodes, dtype=np.int64)
        video = [images[:video_episodes].copy()] if video_episodes else []
        policy.reset(episodes)
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=limit, desc=f"eval {task}" + (f" ({n_workers} workers)" if n_workers > 1 else ""),
                       unit="step")
        try:
            while not done.all():
                actions = _check_actions(policy.act(images, is_first), episodes, action_dim, policy, task)
                running = np.flatnonzero(~done)
                new_images, rewards, ended = envs.step(actions, ~done)
                images = images.copy()  # finished episodes keep their last image
                images[running] = new_images
                returns[running] += rewards
                lengths[running] += 1
                done[running] = ended | ((lengths[running] >= max_steps) if max_steps is not None else False)
                is_first = np.zeros(episodes, dtype=bool)
                if video_episodes:
                    video.append(images[:video_episodes].copy())
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()

    frames = None
    if video_episodes:
        v = np.stack(video)  # [T + 1, V, H, W, 3]
        frames = np.concatenate(list(v.transpose(1, 0, 2, 3, 4)), axis=2)  # [T + 1, H, V * W, 3]
    rets = [float(r) for r in returns]
    norm = [normalized_score(task, r) for r in rets] if reference_scores(task) is not None else None
    return EvalResult(
        task=task, episodes=episodes, seed=seed, returns=rets, normalized=norm,
        mean_return=float(np.mean(rets)), std_return=float(np.std(rets)),
        mean_normalized=None if norm is None else float(np.mean(norm)),
        stderr_normalized=None if norm is None else (
            float(np.std(norm, ddof=1) / np.sqrt(len(norm))) if len(norm) > 1 else 0.0),
        frames=frames, seconds=time.perf_counter() - start, steps=[int(x) for x in lengths], max_steps=max_steps,
    )


__all__ = ["BatchPolicy", "ConstantPolicy", "EVAL_SEED_BASE", "EvalResult", "RandomPolicy", "WorkerError", "eval_seed",
           "evaluate", "resolve_workers"]
