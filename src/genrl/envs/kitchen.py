"""Franka kitchen domain (official ``envs/kitchen_extra.py``, ``envs/main.py`` ``KitchenWrapper``) on gymnasium-robotics
``FrankaKitchen-v1``.

Tasks (GenRL's single-task kitchen variants): ``microwave`` (open the microwave door), ``light`` (turn the light
switch on), ``burner`` (turn the *bottom* burner knob), ``slide`` (open the slide cabinet). A task is solved
when the object's joint positions are within the official GenRL threshold of the goal (``TASKS`` below; these
thresholds differ from gymnasium-robotics' uniform 0.3).

Conventions (see ``core.py``; differences are listed):

* observation ``{"image": uint8 [64, 64, 3], "state": float32 [59]}`` (``{"state": ...}`` only for a state-only
  env built with ``render=None``: no renderer, no OpenGL context; steps about twice as fast); ``state`` is
  gymnasium-robotics' ``observation`` vector (9 robot joint positions, 9 robot joint velocities, 21 object
  qpos, 20 object qvel, with the base env's small uniform observation noise). The image comes from a fixed free
  camera at the official pose (distance 2.2, look-at (-0.2, 0.5, 2.0), azimuth 70, elevation -35), rendered once
  per agent step (never inside the base env: it is built with ``render_mode=None``).
* action: 9-d in ``[-1, 1]`` (validated / clipped with :func:`genrl.envs.core.validate_action`). In the base env
  an action is a *joint velocity* command: ``a * 2`` rad/s for the 7 arm joints and ``a * 2`` m/s for the two
  fingers, turned into a position target ``last_observed_qpos + velocity * 0.08 s`` (clipped to the joint
  limits) for the model's position actuators. ``last_observed_qpos`` includes the observation noise (as in D4RL).
* action repeat 2 (each repeat is one base-env step = 40 physics steps of 2 ms); **140 agent steps** per episode
  (``truncated=True`` at the end), as in the official ``TimeLimit(280 // 2)``.
* reward returned by :meth:`KitchenEnv.step`: **sparse success**, 1.0 at the first agent step at which the
  selected task is solved and 0.0 otherwise, so the episode return is 1 if the task was ever solved and 0
  otherwise (the official ``eval_mode`` scoring). ``terminated`` is always False unless the env was built with
  ``terminate_on_success=True`` (the official evaluation mode), in which case the episode ends at that first
  success.
* ``info["rewards"]``: for each of the 4 tasks, ``task`` = per-step success indicator (1.0 if the task is solved
  at any of the repeats of this step, else 0.0; not capped over the episode and not summed over the repeats so
  it stays 0/1) and ``f"{task}_dense"`` = minus the distance of the object to its goal, summed over the repeats
  (the official training reward, ``dense=True``, before the "completed elements are removed" bookkeeping).
  ``info["success"]``: task -> bool (solved now); ``info["solved"]``: task -> bool (solved at some step of this
  episode). ``info["physics"]``: object joint positions, end-effector xyz, gripper opening (see
  :meth:`KitchenEnv.physics_descriptors`).
* seeding: the base env starts from a fixed configuration (only its *observation* noise is random), so to make
  different seeds give different initial states we add uniform noise of +-``init_qpos_noise`` rad (default
  0.01) to the 7 arm joints at reset (objects untouched; set it to 0 for the exact gymnasium-robotics start).
  Same seed -> identical observations.

Rendering speed (software OpenGL, 64x64; measured with ``benchmarks``-style step+render loops, see the
``KitchenRenderOptions`` docstring): out of the box the kitchen renders at < 2 frames/s because of 4
shadow-casting lights (one extra scene pass each) with a 4096 shadow map, 8x MSAA, 140k-triangle robot meshes
and finely tessellated primitives. We render a *render-only copy* of the model (the physics model is never
modified) with decimated visual meshes, coarser primitive tessellation, no shadows, no reflections and no
MSAA; the overhead lamp's "light on" patch, which the original shows through a shadow, is emulated by dimming
the spot light with the light joint (see :class:`KitchenRenderer`).

mujoco >= 3.x fix: gymnasium-robotics 1.4.2's ``mujoco_utils.get_joint_qpos`` (and friends) compare
``model.jnt_type[i]`` (a numpy int) with ``mujoco.mjtJoint`` members, which is False with recent mujoco
bindings, so ``FrankaKitchen-v1`` fails with an ``AssertionError`` on construction. :func:`patch_gymnasium_robotics`
replaces those four module functions by equivalents that convert the joint type with ``int()``. It patches only
when the bug is present, only once (idempotent), and ``robot_get_obs`` picks the fixed versions up because it
looks them up as module globals at call time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
from typing import Any

import gymnasium as gym
import numpy as np

from genrl.envs.core import validate_action
from genrl.envs.kitchen_render import KitchenRenderOptions, KitchenRenderer
from genrl.envs.rendering import RenderSettings, ensure_headless_gl

EPISODE_STEPS = 140  # agent steps (280 base-env steps with action repeat 2)


@dataclasses.dataclass(frozen=True)
class KitchenTask:
    """One single-object task: ``qpos[indices]`` must be within ``threshold`` (L2) of ``goal``."""

    element: str  # gymnasium-robotics element name
    indices: tuple[int, ...]  # qpos indices of the object joints
    goal: tuple[float, ...]
    threshold: float


# Goals (gymnasium-robotics OBS_ELEMENT_GOALS == relay-policy-learning) and GenRL's thresholds (official
# ``envs/kitchen_extra.py``).
TASKS: dict[str, KitchenTask] = {
    "microwave": KitchenTask("microwave", (22,), (-0.75,), 0.25),
    "light": KitchenTask("light switch", (17, 18), (-0.69, -0.05), 0.5),
    "burner": KitchenTask("bottom burner", (11, 12), (-0.88, -0.01), 0.5),
    "slide": KitchenTask("slide cabinet", (19,), (0.37,), 0.2),
}

# ---------------------------------------------------------------------------------------------------------------
# gymnasium-robotics / mujoco 3.x compatibility
# ---------------------------------------------------------------------------------------------------------------
def task_distance(task: str, qpos: np.ndarray) -> float:
    """L2 distance (joint units: rad / m) of ``task``'s object joints to their goal.

    Args:
        task: a key of :data:`TASKS`.
        qpos: the kitchen model's ``qpos`` (``float [30]``: 9 robot joints, then the object joints).
    """
    t = TASKS[task]
    return float(np.linalg.norm(np.asarray(qpos)[list(t.indices)] - np.asarray(t.goal)))


def _import_mujoco_utils():
    # gymnasium_robotics prints a note about Adroit rewards on import; keep our output clean.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        import gymnasium_robotics.utils.mujoco_utils as mu
    return mu


def patch_gymnasium_robotics() -> bool:
    """Fix ``gymnasium_robotics.utils.mujoco_utils`` joint accessors for mujoco 3.x bindings (idempotent).

    The original functions do ``joint_type = model.jnt_type[joint_id]`` and then
    ``assert joint_type in (mjtJoint.mjJNT_HINGE, mjtJoint.mjJNT_SLIDE)``; with mujoco 3.17 a numpy ``int32``
    never equals a ``mjtJoint`` member, so the assertion fails. The replacements below are the same functions
    with ``int(model.jnt_type[joint_id])``. Nothing is changed if the comparison already works (a fixed
    gymnasium-robotics / mujoco) or if the patch was applied before.

    Returns:
        True if the module now carries the patch, False if it was not needed.
    """
    import mujoco

    mu = _import_mujoco_utils()
    if getattr(mu, "_genrl_jnt_type_patch", False):
        return True
    if mujoco.mjtJoint.mjJNT_HINGE == np.int32(int(mujoco.mjtJoint.mjJNT_HINGE)):
        return False  # bindings compare fine: nothing to fix

    def _span(model, name: str, velocity: bool) -> tuple[int, int]:
        joint_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
        assert joint_id != -1, f"Joint with name '{name}' is not part of the model!"
        joint_type = int(model.jnt_type[joint_id])
        if joint_type == int(mujoco.mjtJoint.mjJNT_FREE):
            ndim = 6 if velocity else 7
        elif joint_type == int(mujoco.mjtJoint.mjJNT_BALL):
            ndim = 3 if velocity else 4
        else:
            assert joint_type in (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))
            ndim = 1
        start = int(model.jnt_dofadr[joint_id] if velocity else model.jnt_qposadr[joint_id])
        return start, start + ndim

    def get_joint_qpos(model, data, name):
        """Return the joint's qpos (gymnasium-robotics function, patched by genrl for mujoco 3.x)."""
        start, end = _span(model, name, velocity=False)
        return data.qpos[start:end].copy()

    def get_joint_qvel(model, data, name):
        """Return the joint's qvel (gymnasium-robotics function, patched by genrl for mujoco 3.x)."""
        start, end = _span(model, name, velocity=True)
        return data.qvel[start:end].copy()

    def set_joint_qpos(model, data, name, value):
        """Set the joint's qpos (gymnasium-robotics function, patched by genrl for mujoco 3.x)."""
        start, end = _span(model, name, velocity=False)
        value = np.array(value)
        if end - start > 1:
            assert value.shape == (end - start,), f"Value has incorrect shape {name}: {value}"
        data.qpos[start:end] = value

    def set_joint_qvel(model, data, name, value):
        """Set the joint's qvel (gymnasium-robotics function, patched by genrl for mujoco 3.x)."""
        start, end = _span(model, name, velocity=True)
        value = np.array(value)
        if end - start > 1:
            assert value.shape == (end - start,), f"Value has incorrect shape {name}: {value}"
        data.qvel[start:end] = value

    mu.get_joint_qpos, mu.get_joint_qvel = get_joint_qpos, get_joint_qvel
    mu.set_joint_qpos, mu.set_joint_qvel = set_joint_qpos, set_joint_qvel
    mu._genrl_jnt_type_patch = True
    return True


def _make_base_env(tasks: list[str]):
    patch_gymnasium_robotics()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        from gymnasium_robotics.envs.franka_kitchen.kitchen_env import KitchenEnv as BaseKitchenEnv
    # Built directly (no gym.make wrappers: no TimeLimit / order enforcing / checker); render_mode=None so the
    # base env never renders during step().
    return BaseKitchenEnv(tasks_to_complete=tasks, terminate_on_tasks_completed=False,
                          remove_task_when_completed=False, render_mode=None)


class KitchenEnv(gym.Env):
    """GenRL's Franka kitchen task (see the module docstring for the conventions).

    Args:
        task: ``microwave``, ``light``, ``burner`` or ``slide``.
        seed: seed of the initial-state noise and of the base env's observation noise; ``reset(seed=...)``
            re-seeds. Same seed -> identical observations.
        render: :class:`RenderSettings`, or ``None`` for a state-only environment (no renderer and no
            ``"image"`` key; used by the scripted-policy tests and benchmark).
        action_repeat: base-env steps per agent step (GenRL: 2).
        terminate_on_success: official evaluation mode: ``terminated=True`` at the first success of ``task``.
        episode_steps: agent steps per episode (GenRL: 140).
        init_qpos_noise: uniform noise amplitude (rad) added to the 7 arm joints at reset (0: fixed start).
        render_options: :class:`KitchenRenderOptions`.

    Raises:
        ValueError: unknown task (the message lists the valid ones) or ``action_repeat < 1``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 6}

    def __init__(self, task: str, seed: int | None = None, render: RenderSettings | None = RenderSettings(),
                 action_repeat: int = 2, terminate_on_success: bool = False, episode_steps: int = EPISODE_STEPS,
                 init_qpos_noise: float = 0.01, render_options: KitchenRenderOptions = KitchenRenderOptions()):
        if task not in TASKS:
            raise ValueError(f"unknown kitchen task {task!r}; valid tasks: {', '.join(TASKS)}")
        if action_repeat < 1:
            raise ValueError(f"action_repeat must be >= 1, got {action_repeat}")
        ensure_headless_gl()
        self.task = task
        self.task_id = f"kitchen_{task}"
        self.render_mode = "rgb_array"
        self.action_repeat = action_repeat
        self.episode_steps = episode_steps
        self.terminate_on_success = terminate_on_success
        self.init_qpos_noise = float(init_qpos_noise)
        self._base = _make_base_env([t.element for t in TASKS.values()])
        self.model, self.data = self._base.model, self._base.data
        self._init_qpos = np.array(self._base.robot_env.init_qpos, dtype=np.float64).copy()
        self._renderer = KitchenRenderer(self.model, render, render_options) if render is not None else None
        self._ee_site = self._base.robot_env.model_names.site_name2id["end_effector"]
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(9,), dtype=np.float32)
        state_dim = int(self._base.observation_space["observation"].shape[0])
        spaces = {"state": gym.spaces.Box(-np.inf, np.inf, shape=(state_dim,), dtype=np.float32)}
        if render is not None:
            spaces = {"image": gym.spaces.Box(0, 255, shape=(render.size, render.size, 3), dtype=np.uint8), **spaces}
        self.observation_space = gym.spaces.Dict(spaces)
        self._rng = np.random.default_rng(seed)
        if seed is not None:
            self.action_space.seed(seed)
        self._steps = 0
        self._solved = {name: False for name in TASKS}
        self._last_image: np.ndarray | None = None
        self._last_state: np.ndarray | None = None

    # -- task logic ----------------------------------------------------------------------------------------------
    def distances(self) -> dict[str, float]:
        """L2 distance of each task's object joints to their goal, for the current physics state."""
        return {name: task_distance(name, self.data.qpos) for name in TASKS}

    def successes(self) -> dict[str, bool]:
        """Whether each task is solved in the current physics state (distance < GenRL threshold)."""
        return {name: d < TASKS[name].threshold for name, d in self.distances().items()}

    def all_rewards(self) -> dict[str, float]:
        """Success indicator (``task``) and dense reward (``task_dense`` = -distance) of every task, now."""
        out: dict[str, float] = {}
        for name, d in self.distances().items():
            out[name] = float(d < TASKS[name].threshold)
            out[f"{name}_dense"] = -d
        return out

    def physics_descriptors(self) -> dict[str, float]:
        """Named physical quantities: object joint positions, end-effector position, gripper opening."""
        q = self.data.qpos
        ee = self.data.site_xpos[self._ee_site]
        return {
            "microwave_angle": float(q[22]),
            "light_switch": float(q[17]), "light_joint": float(q[18]),
            "bottom_burner_knob": float(q[11]), "bottom_burner": float(q[12]),
            "top_burner_knob": float(q[15]),
            "slide_cabinet": float(q[19]),
            "left_hinge_cabinet": float(q[20]), "right_hinge_cabinet": float(q[21]),
            "kettle_x": float(q[23]), "kettle_y": float(q[24]), "kettle_z": float(q[25]),
            "ee_x": float(ee[0]), "ee_y": float(ee[1]), "ee_z": float(ee[2]),
            "gripper_opening": float(q[7] + q[8]),
        }

    def set_object_state(self, **qpos: float | tuple[float, ...]) -> dict[str, np.ndarray]:
        """Set task objects' joint positions directly (tests / scripted starts), e.g. ``microwave=-0.75``.

        Keys are task names (``microwave``, ``light``, ``burner``, ``slide``); values are the object's qpos
        (scalar or as many values as ``TASKS[name].indices``). Velocities of those joints are zeroed and the
        kinematics recomputed. Returns the new observation (the episode's success bookkeeping is unchanged;
        the next :meth:`step` scores the new state).

        Raises:
            ValueError: unknown task name or wrong number of values.
        """
        import mujoco

        for name, value in qpos.items():
            if name not in TASKS:
                raise ValueError(f"unknown kitchen object {name!r}; valid: {', '.join(TASKS)}")
            idx = list(TASKS[name].indices)
            v = np.atleast_1d(np.asarray(value, dtype=np.float64))
            if v.shape != (len(idx),):
                raise ValueError(f"{name}: expected {len(idx)} value(s) for qpos {idx}, got shape {v.shape}")
            self.data.qpos[idx] = v
            dofs = [int(self.model.jnt_dofadr[j]) for j in range(self.model.njnt)
                    if int(self.model.jnt_qposadr[j]) in idx]
            self.data.qvel[dofs] = 0.0
        mujoco.mj_forward(self.model, self.data)
        robot_obs = self._base.robot_env._get_obs()
        return self._observation(self._base._get_obs(robot_obs)["observation"])

    # -- helpers -------------------------------------------------------------------------------------------------
    def _observation(self, state: np.ndarray) -> dict[str, np.ndarray]:
        self._last_state = np.asarray(state, dtype=np.float32).copy()
        if self._renderer is None:
            return {"state": self._last_state.copy()}
        self._last_image = self._renderer.render(self.data)
        return {"image": self._last_image, "state": self._last_state.copy()}

    def _info(self, rewards: dict[str, float]) -> dict[str, Any]:
        success = {name: bool(rewards[name] > 0) for name in TASKS}
        return {"physics": self.physics_descriptors(), "rewards": rewards, "success": success,
                "solved": dict(self._solved), "task": self.task_id}

    # -- gymnasium API -------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start an episode. Returns ``(observation, info)``; ``info["rewards"]`` describe the start state."""
        super().reset(seed=seed)
        if seed is not None:
            self._rng = np.random.default_rng(seed)
            self.action_space.seed(seed)
        qpos0 = self._init_qpos.copy()
        if self.init_qpos_noise > 0:
            qpos0[:7] += self._rng.uniform(-self.init_qpos_noise, self.init_qpos_noise, size=7)
        self._base.robot_env.init_qpos = qpos0
        obs, _ = self._base.reset(seed=int(self._rng.integers(2**31 - 1)))
        self._steps = 0
        self._solved = {name: False for name in TASKS}
        rewards = self.all_rewards()
        return self._observation(obs["observation"]), self._info(rewards)

    def step(self, action):
        """Apply ``action`` for ``action_repeat`` base-env steps.

        Returns:
            ``(observation, reward, terminated, truncated, info)``; ``reward`` is 1.0 at the first step of the
            episode at which the task is solved, else 0.0.

        Raises:
            ValueError: wrong action shape (names the expected shape ``(9,)``) or non-finite values.
        """
        a = validate_action(action, self.action_space, self.task_id)
        rewards = {k: 0.0 for name in TASKS for k in (name, f"{name}_dense")}
        obs = None
        for _ in range(self.action_repeat):
            obs, _, _, _, _ = self._base.step(a)
            for k, v in self.all_rewards().items():
                if k in TASKS:
                    rewards[k] = max(rewards[k], v)  # success indicator: solved at any repeat
                else:
                    rewards[k] += v  # dense reward: summed over the repeats
        self._steps += 1
        newly = rewards[self.task] > 0 and not self._solved[self.task]
        for name in TASKS:
            self._solved[name] = self._solved[name] or rewards[name] > 0
        reward = 1.0 if newly else 0.0
        terminated = bool(self.terminate_on_success and self._solved[self.task])
        truncated = self._steps >= self.episode_steps
        return self._observation(obs["observation"]), reward, terminated, truncated, self._info(rewards)

    def render(self) -> np.ndarray:
        """The last observed frame, ``uint8 [size, size, 3]`` (a copy).

        Raises:
            RuntimeError: the environment was built without rendering (``render=None``).
        """
        if self._renderer is None:
            raise RuntimeError(f"{self.task_id}: built with render=None (state-only); nothing to render")
        if self._last_image is None:
            return self._renderer.render(self.data)
        return self._last_image.copy()

    def close(self) -> None:
        """Release the renderer and the base env."""
        if getattr(self, "_renderer", None) is not None:
            self._renderer.close()
            self._renderer = None
        if getattr(self, "_base", None) is not None:
            self._base.close()
            self._base = None


@dataclasses.dataclass(frozen=True)
class KitchenDomain:
    """The kitchen domain for the registry: ``name``, ``tasks`` and :meth:`make_env`."""

    name: str = "kitchen"
    tasks: dict = dataclasses.field(default_factory=lambda: dict(TASKS))
    episode_steps: int = EPISODE_STEPS

    def make_env(self, task: str, seed: int | None = None, render: RenderSettings | None = RenderSettings(),
                 action_repeat: int = 2, **kwargs: Any) -> KitchenEnv:
        """Build :class:`KitchenEnv` for ``task`` (extra keyword arguments go to its constructor)."""
        return KitchenEnv(task, seed=seed, render=render, action_repeat=action_repeat, **kwargs)


DOMAIN = KitchenDomain()
