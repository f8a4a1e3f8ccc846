"""Scripted demonstrations of the Franka kitchen tasks: waypoints + damped-least-squares inverse kinematics.

Exploration data barely moves the kitchen objects, so the kitchen dataset also holds scripted attempts at the
paper's four kitchen tasks (``microwave``, ``light``, ``burner``, ``slide``; see :mod:`genrl.envs.kitchen`).

Controller (one call per agent step, from the observed ``state`` alone):

* The 59-d ``state`` holds the robot joint positions (``state[0:9]`` = ``qpos[0:9]``) and the object joint
  positions (``state[18:39]`` = ``qpos[9:30]``). They are written into a private ``mujoco.MjData`` of the
  kitchen model (the environment's own ``data`` is never touched); forward kinematics gives the pose of the
  robot's ``end_effector`` site (between the fingers) and of the task object's site (microwave handle, light
  switch lever, bottom burner knob, slide cabinet handle).
* Phases: ``ready`` (joint-space move to the task's posture, :attr:`TaskScript.posture`), ``pre`` (10 cm in
  front of the object; gripper open for a grasp, closed for a push), ``approach`` (at the handle / knob, or
  beside the handle on its pushing side; it moves in along the gripper axis only while within 1.5 cm of that
  line, and an approach that times out starts again from ``pre``, twice at most), ``grasp`` (close the
  fingers), ``manipulate`` (follow the object's
  own motion: the target is the object site placed, by forward kinematics, at an object joint value leading
  the current one by :attr:`TaskScript.lead`, so the hand pulls / pushes / turns along the object's arc),
  ``release`` (open), ``retreat`` (back off 12 cm along the gripper axis) and ``hold``. A phase ends when its
  target is reached (1.5 cm, 0.08 rad) or after its step budget (:data:`PHASE_STEPS`).
* Damped least squares on the 6x7 arm Jacobian of the site (``mujoco.mj_jacSite``: position and rotation rows):
  ``dq = J^T (J J^T + lambda^2 I)^-1 e`` with ``e`` the position error (m, at most 4 cm per step) and the
  rotation-vector error (rad, at most 0.15 per step), a null-space pull towards the task's posture, and joints
  about to leave their range locked. While grasping, an integral term overcomes the door's / knob's friction.
* The env's action is a joint *velocity*: its position target is ``q + 0.16 a`` (2 rad/s per unit action for
  0.08 s), so ``a = 0.9 dq / 0.16`` plus the gravity-compensating action ``tau_g / (kp 0.16)`` (``mj_rne``),
  clipped to ``[-1, 1]``; the two finger actions are +1 (open) or -1 (close).
* Gaussian noise (std ``noise``, default 0.1) is added to all 9 actions before clipping.

Sources (the ``source`` of a collection job, :mod:`genrl.data.collect`): ``scripted`` (full attempt),
``scripted-stop`` (the manipulation, at a quarter of the full attempt's pace, stops once the object has covered
(or, at its last step's pace, would within two steps cover) 20-50 % of the way from its start to the success
threshold; the task stays unsolved), ``scripted-miss`` (every target is shifted 8-12 cm towards the
robot and up to 4 cm sideways / vertically, so the whole motion is made in the air in front of the object).
Given a seed, everything is deterministic (measured success rates: ``benchmarks/kitchen_scripts.py``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from genrl.envs.rendering import ensure_headless_gl

ensure_headless_gl()  # before mujoco is imported: it fixes its OpenGL backend at import

import mujoco  # noqa: E402

from genrl.envs.kitchen import TASKS, task_distance  # noqa: E402

SOURCES = ("scripted", "scripted-stop", "scripted-miss")
SCRIPTED_NOISE = 0.1
STATE_DIM = 59
TARGET_LEAD = 0.16  # s: the env's position target is q + (2 rad/s * a) * 0.08 s = q + 0.16 a
GAIN = 0.9  # fraction of the wanted joint step commanded per agent step
DAMPING = 0.05  # DLS damping lambda
MAX_STEP_POS, MAX_STEP_ROT = 0.04, 0.15  # largest site motion asked per agent step (m, rad)
MAX_JOINT_STEP = 0.15  # rad per agent step in the joint-space move to the task's posture
NULL_GAIN = 0.05  # null-space pull towards the task's posture (fraction of the difference per step)
LIMIT_MARGIN = 0.1  # rad: joints are locked this close to their range limits
INTEGRAL_GAIN, MAX_INTEGRAL = 0.3, 0.1  # task-space integral action while in contact (-, m)
POS_TOL, ROT_TOL = 0.015, 0.08  # phase-reached tolerances (m, rad)
APPROACH_TOL = 0.015  # m: the approach advances towards the object only this close to the approach line
APPROACH_RETRIES = 2  # an approach that times out goes back to the pre pose this many times
STOP_FRACTION = (0.2, 0.5)  # scripted-stop: stop after this fraction of the way to the success threshold ...
STOP_LEAD = 0.25  # ... moving the object at this fraction of the full attempt's lead, so it stops in time
PHASE_STEPS = {"ready": 30, "pre": 40, "approach": 25, "grasp": 4, "manipulate": 60, "release": 3, "retreat": 15}

# Gripper pointing forward (+y, into the kitchen), fingers closing along world x, site x-axis up (the hand's
# orientation at the robot's start configuration). Columns: the site's x, y, z axes in world coordinates.
FORWARD = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])


@dataclasses.dataclass(frozen=True)
class TaskScript:
    """Geometry of one task's script (lengths in m, angles in rad).

    Attributes:
        site: object site the hand aims at (moves with the object joint).
        joint: qpos index of the driven object joint (the first of ``TASKS[task].indices``).
        final: value the manipulation drives that joint to (at or past the goal).
        lead: how far ahead of the joint's current value the commanded object pose is (and, for a miss, how far
            it advances per step).
        grasp: True: close the fingers on the handle / knob; False: push it with the closed fingers.
        posture: arm joint positions ``[7]`` of the ``ready`` phase and null-space reference: a solution of the
            ``pre`` pose found offline by multi-start DLS inverse kinematics (random seeds; the kept solution
            also solves the approach and the whole manipulation path by continuation, keeps >= 0.3 rad from the
            joint limits, and its straight joint-space path from the start configuration has no contact).
        depth: site offset along the gripper's pointing direction from the object site (negative: in front).
        standoff: push tasks: distance of the site behind the object site along the pushing direction.
        yaw: gripper yaw about world z (0: pointing +y).
        roll_with_joint: the gripper turns with the object joint about the knob axis (world -y).
    """

    site: str
    joint: int
    final: float
    lead: float
    grasp: bool
    posture: tuple[float, ...]
    depth: float = 0.0
    standoff: float = 0.0
    yaw: float = 0.0
    roll_with_joint: bool = False


SCRIPTS: dict[str, TaskScript] = {
    # Hinge on the left, the handle swings towards the robot. Gripper facing the door (yaw 0.3, the microwave's
    # own yaw) with the vertical handle between the fingers; the round handle turns in the grip as the door opens.
    "microwave": TaskScript("microhandle_site", 22, -0.8, 0.05, True, (1.05, 1.14, 0.19, -1.6, -2.32, 0.15, -0.41),
                            depth=-0.01, yaw=0.3),
    # Lever tip pushed from its right (+x) side to the left.
    "light": TaskScript("light_site", 17, -0.7, 0.15, False, (0.26, -0.24, 0.36, -2.31, -2.13, 0.83, -0.76),
                        depth=-0.03, standoff=0.05),
    # Knob bar (2.8 cm wide, vertical) grasped and turned with the hand about the knob axis.
    "burner": TaskScript("knob2_site", 11, -1.0, 0.2, True, (0.08, -0.3, 0.51, -2.46, -2.26, 0.82, -0.56),
                         depth=-0.04, roll_with_joint=True),
    # Handle pushed from its left (-x) side to the right.
    "slide": TaskScript("slide_site", 19, 0.4, 0.05, False, (0.09, -0.45, 0.16, -1.92, -1.16, 1.31, 1.22),
                        standoff=0.048),
}


def _rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rot_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rotation_error(current: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotation vector (axis * angle, rad, world frame, ``float64 [3]``) turning ``current`` into ``target``.

    Both are rotation matrices ``[3, 3]``; the angle is in ``[0, pi]`` (``mujoco.mju_quat2Vel`` of the relative
    rotation ``target current^T``).
    """
    quat, vel = np.zeros(4), np.zeros(3)
    mujoco.mju_mat2Quat(quat, (target @ current.T).ravel())
    mujoco.mju_quat2Vel(vel, quat, 1.0)
    return vel


def dls_step(jac: np.ndarray, error: np.ndarray, damping: float = DAMPING) -> tuple[np.ndarray, np.ndarray]:
    """Damped least squares: ``dq = J^T (J J^T + damping^2 I)^-1 error``.

    Args:
        jac: ``float64 [m, n]`` Jacobian (here 6 x 7: position rows in m/rad, rotation rows in rad/rad).
        error: ``float64 [m]`` task-space error.
        damping: lambda (units of the rows of ``jac``).

    Returns:
        ``(dq [n], pinv [n, m])``: the joint step and the damped pseudo-inverse (for a null-space projector).
    """
    pinv = jac.T @ np.linalg.inv(jac @ jac.T + damping ** 2 * np.eye(jac.shape[0]))
    return pinv @ error, pinv


class KitchenScriptedPolicy:
    """Scripted attempt at one kitchen task (see the module docstring).

    Args:
        model: the kitchen ``mujoco.MjModel`` (``KitchenEnv.model``); only read.
        task: ``microwave``, ``light``, ``burner`` or ``slide``.
        source: ``scripted`` (full attempt), ``scripted-stop`` (stops partway), ``scripted-miss`` (aims off).
        noise: standard deviation of the Gaussian action noise (action units; 0 for none).
        seed: seed of the noise and of the partial attempt's stop point / miss offset.

    Call ``policy(step, state)`` once per agent step with the observed state; it returns the ``float32 [9]``
    action in ``[-1, 1]`` (7 arm joint velocities, 2 finger velocities; see :mod:`genrl.envs.kitchen`).
    One policy object runs one episode.

    Attributes:
        phase: the current phase (one of ``phases``, which lists this task's phases in order).
        stop_fraction: ``scripted-stop``: fraction of the way to the success threshold at which it stops, else None.
        miss: ``scripted-miss``: world offset ``float64 [3]`` (m) added to every target, else zeros.
        lead: object-joint lead of the manipulation (``TaskScript.lead``; a quarter of it for ``scripted-stop``).

    Raises:
        ValueError: unknown task or source (the message lists the valid ones), negative ``noise``, or a model
            without the kitchen's sites.
    """

    def __init__(self, model: mujoco.MjModel, task: str, source: str = "scripted", noise: float = SCRIPTED_NOISE,
                 seed: int | None = 0):
        if task not in SCRIPTS:
            raise ValueError(f"unknown kitchen task {task!r} for a scripted policy; valid tasks: {', '.join(SCRIPTS)}")
        if source not in SOURCES:
            raise ValueError(f"unknown scripted source {source!r}; valid sources: {', '.join(SOURCES)}")
        if not noise >= 0:
            raise ValueError(f"noise must be >= 0 (action-noise standard deviation), got {noise}")
        self.model, self.task, self.source, self.noise = model, task, source, float(noise)
        self.script = SCRIPTS[task]
        self._data = mujoco.MjData(model)
        self._site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, "end_effector")
        self._object_site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, self.script.site)
        if self._site < 0 or self._object_site < 0:
            raise ValueError(f"model has no 'end_effector' or {self.script.site!r} site: not the kitchen model")
        self._jacp, self._jacr = np.zeros((3, model.nv)), np.zeros((3, model.nv))
        self._lo, self._hi = model.jnt_range[:7, 0].copy(), model.jnt_range[:7, 1].copy()
        self._kp, self._bias = model.actuator_gainprm[:7, 0].copy(), np.zeros(model.nv)
        self._posture = np.asarray(self.script.posture, dtype=np.float64)
        self.rng = np.random.default_rng(seed)
        self.stop_fraction = float(self.rng.uniform(*STOP_FRACTION)) if source == "scripted-stop" else None
        self.lead = self.script.lead * (STOP_LEAD if source == "scripted-stop" else 1.0)
        self.miss = np.zeros(3)
        if source == "scripted-miss":
            self.miss = np.array([self.rng.uniform(-0.04, 0.04), -self.rng.uniform(0.08, 0.12),
                                  self.rng.uniform(-0.04, 0.04)])
        self.phases = ["ready", "pre", "approach", "grasp", "manipulate", "release", "retreat", "hold"]
        if not self.script.grasp:
            self.phases = [p for p in self.phases if p not in ("grasp", "release")]
        self.phase, self._phase_step = "ready", 0
        self._start_distance: float | None = None
        self._q_start = 0.0  # object joint value at the first call
        self._retries = 0  # approaches started again from the pre pose
        self._progress = 0.0  # scripted-stop: fraction of the way to the success threshold at the last step
        self._q_cmd: float | None = None  # commanded object joint value (manipulate)
        self._e_int = np.zeros(3)
        self._retreat_from: np.ndarray | None = None

    # -- kinematics ---------------------------------------------------------------------------------------------
    def _load_state(self, state: np.ndarray) -> None:
        d = self._data
        d.qpos[0:9], d.qpos[9:30], d.qvel[:] = state[0:9], state[18:39], 0.0
        mujoco.mj_kinematics(self.model, d)
        mujoco.mj_comPos(self.model, d)

    def _gravity_action(self) -> np.ndarray:
        """Arm action ``[7]`` holding the arm against gravity: the position actuators' force ``kp (target - q)``
        with target ``q + 0.16 a`` must equal the gravity torque (``mj_rne`` at zero velocity)."""
        mujoco.mj_rne(self.model, self._data, 0, self._bias)
        return self._bias[:7] / (self._kp * TARGET_LEAD)

    def _joint_step(self, jac: np.ndarray, error: np.ndarray, q: np.ndarray) -> np.ndarray:
        """DLS joint step ``[7]`` plus a null-space pull to the posture; a joint that would come within
        ``LIMIT_MARGIN`` of its range is locked (its Jacobian column zeroed) and the step solved again."""
        free = np.ones(7, dtype=bool)
        for _ in range(7):
            j = jac * free
            dq, pinv = dls_step(j, error)
            dq = (dq + (np.eye(7) - pinv @ j) @ (NULL_GAIN * (self._posture - q))) * free
            nxt = q + dq
            bad = free & (((nxt < self._lo + LIMIT_MARGIN) & (dq < 0)) | ((nxt > self._hi - LIMIT_MARGIN) & (dq > 0)))
            if not bad.any():
                break
            free &= ~bad
        return dq * free

    def _object_pose(self, value: float) -> tuple[np.ndarray, np.ndarray]:
        """Object site position ``[3]`` and unit motion direction ``[3]`` (towards ``final``) at joint ``value``."""
        d, j = self._data, self.script.joint
        saved, points = d.qpos[j], []
        for v in (value, value + 1e-3 * (1.0 if self.script.final >= value else -1.0)):
            d.qpos[j] = v
            mujoco.mj_kinematics(self.model, d)
            points.append(d.site_xpos[self._object_site].copy())
        d.qpos[j] = saved
        mujoco.mj_kinematics(self.model, d)
        direction = points[1] - points[0]
        return points[0], direction / max(np.linalg.norm(direction), 1e-9)

    def _orientation(self, value: float) -> np.ndarray:
        """Target site rotation ``[3, 3]`` at object joint ``value``: of the two grips that differ by a half turn
        about the pointing axis (the two fingers are alike), the one nearer the current hand orientation."""
        s = self.script
        rot = _rot_y(-value) @ FORWARD if s.roll_with_joint else _rot_z(s.yaw) @ FORWARD
        flipped = rot * np.array([-1.0, -1.0, 1.0])
        current = self._data.site_xmat[self._site].reshape(3, 3)
        if np.linalg.norm(rotation_error(current, flipped)) < np.linalg.norm(rotation_error(current, rot)):
            return flipped
        return rot

    def _contact_target(self, value: float) -> tuple[np.ndarray, np.ndarray]:
        """Site target ``(position [3], rotation [3, 3])`` holding / pushing the object at joint ``value``."""
        s = self.script
        point, direction = self._object_pose(value)
        rot = self._orientation(value)
        return point + s.depth * rot[:, 2] - s.standoff * direction + self.miss, rot

    def _distance(self, state: np.ndarray) -> float:
        # object joint qpos[i] (i >= 9) is state[i + 9], so state[9:39] is indexed like qpos for the object joints
        return task_distance(self.task, state[9:39])

    # -- script ---------------------------------------------------------------------------------------------------
    def _target(self) -> tuple[np.ndarray, np.ndarray, bool, bool]:
        """``(position [3], rotation [3, 3], gripper closed, must be reached)`` of the current Cartesian phase."""
        s, q = self.script, float(self._data.qpos[self.script.joint])
        if self.phase in ("pre", "approach", "grasp"):  # at the object's start pose (never chase it)
            q = self._q_start
            pos, rot = self._contact_target(q)
            if self.phase == "pre":
                pos = pos - 0.10 * rot[:, 2]  # 10 cm in front (towards the robot)
                if not s.grasp:
                    pos = pos - 0.03 * self._object_pose(q)[1]  # and 3 cm further on the pushing side
            elif self.phase == "approach":  # guarded: move in along the gripper axis only while on its line
                gap = pos - self._data.site_xpos[self._site]
                depth = float(gap @ rot[:, 2])
                if depth > POS_TOL and np.linalg.norm(gap - depth * rot[:, 2]) > APPROACH_TOL:
                    return pos - depth * rot[:, 2], rot, not s.grasp, False
            return pos, rot, self.phase == "grasp" or not s.grasp, self.phase != "grasp"
        if self.phase == "manipulate":
            if self._q_cmd is None:
                self._q_cmd = q
            ahead = self._q_cmd + np.sign(s.final - self._q_cmd) * min(abs(s.final - self._q_cmd), self.lead)
            if not self.miss.any():  # a real attempt stays at most `lead` ahead of the object
                ahead = q + np.clip(ahead - q, -self.lead, self.lead)
            self._q_cmd = float(ahead)
            pos, rot = self._contact_target(self._q_cmd)
            return pos, rot, True, False
        if self._retreat_from is None:
            self._retreat_from = self._data.site_xpos[self._site].copy()
        rot = self._data.site_xmat[self._site].reshape(3, 3).copy()
        back = self._retreat_from - (0.12 if self.phase != "release" else 0.0) * rot[:, 2]
        return back, rot, not s.grasp, self.phase == "retreat"

    def _advance(self, state: np.ndarray, reached: bool) -> None:
        timed_out = self._phase_step >= PHASE_STEPS.get(self.phase, 10 ** 9)
        if self.phase == "approach" and timed_out and not reached and self._retries < APPROACH_RETRIES:
            self.phase, self._phase_step, self._retries = "pre", 0, self._retries + 1  # back off, try again
            return
        done = reached or timed_out
        if self.phase == "manipulate":
            q = float(state[self.script.joint + 9])
            done = done or abs(self.script.final - (self._q_cmd if self.miss.any() else q)) < 0.02
        if self.stop_fraction is not None and self.phase in ("approach", "grasp", "manipulate"):
            threshold = TASKS[self.task].threshold
            progress = (self._start_distance - self._distance(state)) / (self._start_distance - threshold)
            ahead = progress + 2.0 * max(progress - self._progress, 0.0)  # where two more steps would take it
            self._progress = progress
            if ahead >= self.stop_fraction:  # a partial attempt: let go and back off now
                self.phase, self._phase_step = ("release" if self.script.grasp else "retreat"), 0
                return
        if done and self.phase != "hold":
            self.phase, self._phase_step = self.phases[self.phases.index(self.phase) + 1], 0

    def __call__(self, step: int, state: np.ndarray) -> np.ndarray:
        """One action: ``state`` float ``[59]`` (the env's ``obs["state"]``) -> ``float32 [9]`` in ``[-1, 1]``.

        ``step`` (the agent step of the episode) is accepted for the collection interface; the script keeps
        its own phase clock.

        Raises:
            ValueError: ``state`` is not the kitchen's 59-d state vector.
        """
        state = np.asarray(state, dtype=np.float64)
        if state.shape != (STATE_DIM,):
            raise ValueError(f"state: expected the kitchen's {STATE_DIM}-d state vector, got shape {state.shape}")
        self._load_state(state)
        if self._start_distance is None:
            self._start_distance = self._distance(state)
            self._q_start = float(state[self.script.joint + 9])
        action = np.empty(9)
        if self.phase == "ready":
            dq = np.clip(self._posture - state[:7], -MAX_JOINT_STEP, MAX_JOINT_STEP)
            closed, reached = not self.script.grasp, bool(np.abs(self._posture - state[:7]).max() < 0.1)
        else:
            target, rot, closed, must_reach = self._target()
            e_pos = target - self._data.site_xpos[self._site]
            e_rot = rotation_error(self._data.site_xmat[self._site].reshape(3, 3), rot)
            reached = must_reach and np.linalg.norm(e_pos) < POS_TOL and np.linalg.norm(e_rot) < ROT_TOL
            # Integral action against the door's / knob's friction and damping while grasped (a push needs none:
            # it would only wind up and make the pushed object jump).
            if self.script.grasp and self.phase in ("grasp", "manipulate"):
                self._e_int = self._e_int + e_pos
                self._e_int *= min(1.0, MAX_INTEGRAL / max(np.linalg.norm(self._e_int), 1e-9))
                e_pos = e_pos + INTEGRAL_GAIN * self._e_int
            e_pos *= min(1.0, MAX_STEP_POS / max(np.linalg.norm(e_pos), 1e-9))
            e_rot *= min(1.0, MAX_STEP_ROT / max(np.linalg.norm(e_rot), 1e-9))
            mujoco.mj_jacSite(self.model, self._data, self._jacp, self._jacr, self._site)
            jac = np.vstack([self._jacp[:, :7], self._jacr[:, :7]])
            dq = self._joint_step(jac, np.concatenate([e_pos, e_rot]), state[:7])
        action[:7] = GAIN * dq / TARGET_LEAD + self._gravity_action()
        action[7:] = -1.0 if closed else 1.0
        if self.noise > 0:
            action += self.noise * self.rng.normal(size=9)
        self._phase_step += 1
        self._advance(state, reached)
        return np.clip(action, -1.0, 1.0).astype(np.float32)


def scripted_episode(env, source: str, noise: float, seed: int, steps: int | None = None,
                     stop_at_success: bool = False) -> dict:
    """One scripted attempt on a kitchen env, for checks and benchmarks (collection goes through ``run_job``).

    Args:
        env: a :class:`genrl.envs.kitchen.KitchenEnv` (``render=None`` is enough: the policy reads the state).
        source: ``scripted``, ``scripted-stop`` or ``scripted-miss`` (:data:`SOURCES`).
        noise: std of the Gaussian action noise; seed: env reset seed and policy seed.
        steps: stop after this many steps (None: the env's episode length).
        stop_at_success: end the episode at the first success (``env.terminate_on_success``).
    Returns:
        ``{"solved": bool, "step": first success step or None, "actions": (T, 9) float32,
        "start_distance": float, "distance": float}`` (the task's distance to its goal before and after).
    """
    env.terminate_on_success = stop_at_success
    obs, _ = env.reset(seed=seed)
    start = env.distances()[env.task]
    policy = KitchenScriptedPolicy(env.model, env.task, source, noise, seed)
    first, actions = None, []
    for step in range(steps or env.episode_steps):
        actions.append(policy(step, obs["state"]))
        obs, reward, terminated, truncated, _ = env.step(actions[-1])
        first = step if reward > 0 and first is None else first
        if terminated or truncated:
            break
    return {"solved": first is not None, "step": first, "actions": np.asarray(actions, dtype=np.float32),
            "start_distance": start, "distance": env.distances()[env.task]}
