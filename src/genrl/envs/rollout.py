"""Batched evaluation of pixel policies in the real environments (official ``train.py`` ``Workspace.eval``; paper
section 4).

:func:`evaluate` builds ``episodes`` environments of one task (seeds ``seed, seed + 1, ...``, action repeat 2),
steps them in lockstep and asks the policy for all actions at once (one batched inference per agent step). The
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
    result = evaluate(RandomPolicy(action_dim=6, seed=0), "walker_walk", episodes=10, seed=0)
    print(result.mean_return, result.mean_normalized)
    json.dump(result.to_dict(), f)
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Protocol, runtime_checkable

import numpy as np

from genrl.envs.registry import make, reference_scores
from genrl.envs.scores import normalized_score


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


def evaluate(policy: BatchPolicy, task: str, episodes: int = 10, seed: int = 0, video_episodes: int = 1,
             progress: bool = False, max_steps: int | None = None) -> EvalResult:
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

    Returns:
        :class:`EvalResult`.

    Raises:
        ValueError: ``episodes < 1``, ``video_episodes`` outside ``[0, episodes]``, ``max_steps < 1``, an unknown
            task, or a policy output that is not a finite ``[N, A]`` array (the message names policy and task).
    """
    if episodes < 1:
        raise ValueError(f"evaluate({task}): episodes must be >= 1, got {episodes}")
    if not 0 <= video_episodes <= episodes:
        raise ValueError(f"evaluate({task}): video_episodes must be in [0, episodes={episodes}], got {video_episodes}")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"evaluate({task}): max_steps must be >= 1 or None, got {max_steps}")
    start = time.perf_counter()
    envs: list[Any] = []
    try:
        for i in range(episodes):
            envs.append(make(task, seed=seed + i))
        action_dim = int(envs[0].action_space.shape[0])
        # Episodes end on the env's terminated/truncated or at max_steps; ``limit`` only sizes the progress bar.
        limit = max(int(getattr(env, "episode_steps", 0)) for env in envs) or None
        if max_steps is not None:
            limit = max_steps if limit is None else min(limit, max_steps)
        images = np.stack([env.reset()[0]["image"] for env in envs])  # seeded by make()
        is_first = np.ones(episodes, dtype=bool)
        done = np.zeros(episodes, dtype=bool)
        returns = np.zeros(episodes, dtype=np.float64)
        lengths = np.zeros(episodes, dtype=np.int64)
        video = [images[:video_episodes].copy()] if video_episodes else []
        policy.reset(episodes)
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=limit, desc=f"eval {task}", unit="step")
        try:
            while not done.all():
                actions = _check_actions(policy.act(images, is_first), episodes, action_dim, policy, task)
                images = images.copy()
                for i, env in enumerate(envs):
                    if done[i]:
                        continue
                    obs, reward, terminated, truncated, _ = env.step(actions[i])
                    images[i] = obs["image"]
                    returns[i] += float(reward)
                    lengths[i] += 1
                    done[i] = bool(terminated or truncated) or (max_steps is not None and lengths[i] >= max_steps)
                is_first = np.zeros(episodes, dtype=bool)
                if video_episodes:
                    video.append(images[:video_episodes].copy())
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
    finally:
        for env in envs:
            env.close()

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


__all__ = ["BatchPolicy", "ConstantPolicy", "EVAL_SEED_BASE", "EvalResult", "RandomPolicy", "eval_seed", "evaluate"]
