"""One Gymnasium environment class for every dm_control-physics domain (walker, cheetah, quadruped, stickman).

A domain is described by a :class:`DomainSpec` (physics factory, camera, timing, initial-state sampler,
proprioceptive state, physics descriptors and the reward function of each task); :class:`DMCEnv` turns a
(domain, task) pair into a ``gymnasium.Env`` with GenRL's conventions (official ``envs/main.py`` ``make``):

* observation ``{"image": uint8 [64, 64, 3], "state": float32 [D]}``;
* continuous actions in ``[-1, 1]^A`` (affinely mapped to the actuators' ``ctrlrange``; values outside are
  clipped, as in the official wrapper);
* action repeat 2 (rewards summed over the repeats), 500 agent steps per episode (``truncated=True`` at the end,
  ``terminated`` is always False);
* ``info["physics"]``: named float descriptors of the body (torso height/orientation, velocities, limb
  positions...) after the step; ``info["rewards"]``: the reward of *every* task of the domain for this step
  (summed over the repeats), so datasets can be scored for any task later.

Usage::

    from genrl.envs import make
    env = make("walker_walk", seed=0)
    obs, info = env.reset()
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import gymnasium as gym
import numpy as np

from genrl.envs.rendering import FastCamera, RenderSettings, ensure_headless_gl

RewardFn = Callable[[Any], float]


@dataclasses.dataclass(frozen=True)
class DomainSpec:
    """Static description of a dm_control-physics embodiment and its tasks.

    Attributes:
        name: domain name, e.g. ``"walker"`` (task ids are ``f"{name}_{task}"``).
        make_physics: returns a fresh ``dm_control.mujoco.Physics`` (one per environment instance).
        camera: camera index or name used for pixels (official ``envs/main.py`` ``make``: 0, quadruped 2).
        control_timestep: seconds of simulated time per control step (before action repeat).
        initialize: ``(physics, np.random.RandomState) -> None``; samples the initial state inside
            ``physics.reset_context()``.
        state: ``physics -> float array [D]``, the proprioceptive state observation.
        descriptors: ``physics -> dict[str, float]``, named physical quantities for ``info["physics"]``.
        tasks: task name -> reward function ``physics -> float`` evaluated after each control step.
        episode_steps: agent steps per episode (after action repeat); 500 for every DMC domain.
        settle: ``(physics) -> None`` run once after ``initialize`` outside the reset context (e.g. cheetah's
            200 settling steps); may be None.
        upright_initialize: like ``initialize`` but with the body upright (a start-state curriculum for training
            experts, ``reset(options={"start": "upright"})``); None where ``initialize`` needs no such variant.
    """

    name: str
    make_physics: Callable[[], Any]
    camera: int | str
    control_timestep: float
    initialize: Callable[[Any, np.random.RandomState], None]
    state: Callable[[Any], np.ndarray]
    descriptors: Callable[[Any], dict[str, float]]
    tasks: Mapping[str, RewardFn]
    episode_steps: int = 500
    settle: Callable[[Any], None] | None = None
    upright_initialize: Callable[[Any, np.random.RandomState], None] | None = None

    def make_env(self, task: str, seed: int | None = None, render: RenderSettings | None = RenderSettings(),
                 action_repeat: int = 2) -> "DMCEnv":
        """Build the Gymnasium environment for ``task`` (a task name of this domain, without the prefix)."""
        return DMCEnv(self, task, seed=seed, render=render, action_repeat=action_repeat)


def validate_action(action: Any, space: gym.spaces.Box, task_id: str) -> np.ndarray:
    """Check an action's shape and values, clip it to the action space and return it as float64.

    Raises:
        ValueError: wrong shape, or NaN/Inf values (the message names the task and the expected shape).
    """
    a = np.asarray(action, dtype=np.float64)
    if a.shape != space.shape:
        raise ValueError(f"{task_id}: action must have shape {space.shape} (values in [-1, 1]), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{task_id}: action contains NaN or Inf: {a}")
    return np.clip(a, space.low, space.high)


class DMCEnv(gym.Env):
    """GenRL's pixel environment over a dm_control physics (see module docstring for the conventions).

    Args:
        domain: the :class:`DomainSpec`.
        task: task name within the domain (e.g. ``"walk"``).
        seed: seed of the initial-state sampler; ``reset(seed=...)`` re-seeds it.
        render: :class:`RenderSettings` (image size, shadow map, MSAA), or ``None`` for a state-only environment
            (no OpenGL context, no ``"image"`` key; used to train state-based experts fast).
        action_repeat: control steps per agent step (GenRL: 2).

    Raises:
        ValueError: unknown task (the message lists the valid ones).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, domain: DomainSpec, task: str, seed: int | None = None,
                 render: RenderSettings | None = RenderSettings(), action_repeat: int = 2):
        if task not in domain.tasks:
            raise ValueError(f"unknown {domain.name} task {task!r}; valid tasks: {', '.join(sorted(domain.tasks))}")
        if action_repeat < 1:
            raise ValueError(f"action_repeat must be >= 1, got {action_repeat}")
        ensure_headless_gl()
        self.domain, self.task = domain, task
        self.task_id = f"{domain.name}_{task}"
        self.render_mode = "rgb_array"
        self.action_repeat = action_repeat
        self.episode_steps = domain.episode_steps
        self.physics = domain.make_physics()
        self._n_sub_steps = max(1, int(round(domain.control_timestep / self.physics.model.opt.timestep)))
        self._camera = FastCamera(self.physics, domain.camera, render) if render is not None else None
        lo, hi = self.physics.model.actuator_ctrlrange.T.copy()
        limited = self.physics.model.actuator_ctrllimited.astype(bool)
        self._ctrl_lo, self._ctrl_hi = np.where(limited, lo, -1.0), np.where(limited, hi, 1.0)
        n_act = self.physics.model.nu
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(n_act,), dtype=np.float32)
        state_dim = int(np.asarray(domain.state(self.physics)).size)
        spaces = {"state": gym.spaces.Box(-np.inf, np.inf, shape=(state_dim,), dtype=np.float32)}
        if render is not None:
            spaces["image"] = gym.spaces.Box(0, 255, shape=(render.size, render.size, 3), dtype=np.uint8)
        self.observation_space = gym.spaces.Dict(spaces)
        self._random = np.random.RandomState(seed)
        if seed is not None:
            self.action_space.seed(seed)
        self._steps = 0
        self._last_image: np.ndarray | None = None

    # -- helpers -------------------------------------------------------------------------------------------------
    def _observation(self) -> dict[str, np.ndarray]:
        obs = {"state": np.asarray(self.domain.state(self.physics), dtype=np.float32).ravel()}
        if self._camera is not None:
            self._last_image = obs["image"] = self._camera.render()
        return obs

    def _info(self, rewards: dict[str, float]) -> dict[str, Any]:
        return {"physics": {k: float(v) for k, v in self.domain.descriptors(self.physics).items()},
                "rewards": rewards, "task": self.task_id}

    def all_rewards(self) -> dict[str, float]:
        """Reward of every task of the domain for the current physics state (one control step's worth)."""
        return {name: float(fn(self.physics)) for name, fn in self.domain.tasks.items()}

    # -- gymnasium API -------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start an episode. Returns ``(observation, info)``; ``info["rewards"]`` are all 0 at reset.

        ``options={"start": "upright"}`` starts with the body upright (the domain's ``upright_initialize``, a
        curriculum for expert training; evaluation always uses the default ``initialize``).

        Raises:
            ValueError: an unknown ``options["start"]``, or ``"upright"`` on a domain without that start.
        """
        super().reset(seed=seed)
        if seed is not None:
            self._random = np.random.RandomState(seed)
            self.action_space.seed(seed)
        start = (options or {}).get("start", "default")
        if start == "default":
            initialize = self.domain.initialize
        elif start == "upright" and self.domain.upright_initialize is not None:
            initialize = self.domain.upright_initialize
        else:
            raise ValueError(f"{self.task_id}: reset option start={start!r} is not available; expected 'default'"
                             + (" or 'upright'" if self.domain.upright_initialize is not None else ""))
        with self.physics.reset_context():
            initialize(self.physics, self._random)
        if self.domain.settle is not None:
            self.domain.settle(self.physics)
        self._steps = 0
        return self._observation(), self._info({name: 0.0 for name in self.domain.tasks})

    def step(self, action):
        """Apply ``action`` for ``action_repeat`` control steps.

        Args:
            action: float array ``[A]`` in ``[-1, 1]`` (clipped).

        Returns:
            ``(observation, reward, terminated, truncated, info)``; ``reward`` is the selected task's reward
            summed over the repeats.

        Raises:
            ValueError: wrong action shape or non-finite values.
        """
        a = validate_action(action, self.action_space, self.task_id)
        ctrl = self._ctrl_lo + (a + 1.0) * 0.5 * (self._ctrl_hi - self._ctrl_lo)
        rewards = {name: 0.0 for name in self.domain.tasks}
        for _ in range(self.action_repeat):
            self.physics.set_control(ctrl)
            self.physics.step(self._n_sub_steps)
            for name, r in self.all_rewards().items():
                rewards[name] += r
        self._steps += 1
        truncated = self._steps >= self.episode_steps
        return self._observation(), rewards[self.task], False, truncated, self._info(rewards)

    def render(self) -> np.ndarray:
        """The last observed frame, ``uint8 [size, size, 3]`` (a copy).

        Raises:
            RuntimeError: the environment was built without rendering (``render=None``).
        """
        if self._camera is None:
            raise RuntimeError(f"{self.task_id}: built with render=None (state-only); nothing to render")
        if self._last_image is None:
            return self._camera.render()
        return self._last_image.copy()

    def close(self) -> None:
        """Release the renderer and physics."""
        if getattr(self, "_camera", None) is not None:
            self._camera.close()
            self._camera = None
        if getattr(self, "physics", None) is not None:
            self.physics.free()
            self.physics = None
