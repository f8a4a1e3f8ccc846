"""Quadruped domain: dm_control's quadruped ("ant") with GenRL's tasks (official
``envs/custom_dmc_tasks/quadruped.py``).

Model: ``dm_control.suite.quadruped.make_model`` without terrain, walls, ball or rangefinders, with one floor size
(100 m, enough for 20 s of running at 5 m/s) for every task so that all tasks share the same images. Control
timestep 0.02 s, 1000 control steps -> 500 agent steps, camera 2 (the ``y`` side camera tracking the body).
Initial state: random orientation, lowered to the first non-contacting height (dm_control).

Rewards (``upright = (1 + zz_torso) / 2``, ``v`` = torso-frame forward velocity from the velocimeter):

* ``stand``: ``upright``; ``walk``/``run``: ``upright * L(v >= s, s, 0.5)`` with s = 0.5 / 5;
* ``jump``: ``upright * L(z_com >= 1, 1, 0.5)`` (torso-subtree COM height);
* ``lie_down``: ``G(z_torso <= 0.2, 0.3)``;
* ``two_legs``: toe heights sorted; ``G(mean of 2 lowest <= 0.2, 0.3) * G(mean of 2 highest >= 0.8, 0.4)`` -- the
  official code computed the second margin as ``0.8 // 2 = 0`` (a hard step); we use the intended 0.4.
"""

from __future__ import annotations

import mujoco
import numpy as np
from dm_control.suite import common
from dm_control.suite import quadruped as dmc_quadruped

from genrl.envs.core import DomainSpec
from genrl.envs.rewards import above, below, linear_above

TOES = ("toe_front_left", "toe_back_left", "toe_back_right", "toe_front_right")
FLOOR_SIZE = 100


def _make_physics():
    # The floor plane's third size is only its rendering subdivision: 1 m instead of 0.5 m draws 4x fewer quads
    # per render pass on the 200 m x 200 m floor (~40% faster software rendering, identical-looking frames).
    xml = dmc_quadruped.make_model(floor_size=FLOOR_SIZE).decode()
    old = f'size="{FLOOR_SIZE} {FLOOR_SIZE} .5"'
    if old not in xml:
        raise RuntimeError("dm_control quadruped model changed: expected the floor plane size " + old)
    return dmc_quadruped.Physics.from_xml_string(xml.replace(old, f'size="{FLOOR_SIZE} {FLOOR_SIZE} 1"'),
                                                 common.ASSETS)


def initialize(physics, random: np.random.RandomState) -> None:
    """Random body orientation at the lowest height without contacts (dm_control's ``Move`` task)."""
    orientation = random.randn(4)
    orientation /= np.linalg.norm(orientation)
    dmc_quadruped._find_non_contacting_height(physics, orientation)  # pylint: disable=protected-access


def upright_initialize(physics, random: np.random.RandomState) -> None:
    """Upright body with a random heading (yaw only) at the lowest non-contacting height: the start-state
    curriculum of expert training (``reset(options={"start": "upright"})``), which spares SAC from having to learn
    to turn over before it can learn to walk. Not used for evaluation."""
    yaw = random.uniform(-np.pi, np.pi)
    dmc_quadruped._find_non_contacting_height(  # pylint: disable=protected-access
        physics, np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]))


def _upright(physics) -> float:
    return (1.0 + float(physics.data.ptr.body("torso").xmat[8])) / 2.0


def _forward_velocity(physics) -> float:
    return float(physics.data.ptr.sensor("velocimeter").data[0])


def _toe_heights(physics) -> np.ndarray:
    data = physics.data.ptr
    return np.sort([data.body(t).xpos[2] for t in TOES])


def _com_height(physics) -> float:
    return float(physics.data.ptr.body("torso").subtree_com[2])


def stand(physics) -> float:
    return _upright(physics)


def walk(physics) -> float:
    return _upright(physics) * linear_above(_forward_velocity(physics), 0.5, 0.5, 0.5)


def run(physics) -> float:
    return _upright(physics) * linear_above(_forward_velocity(physics), 5.0, 5.0, 0.5)


def jump(physics) -> float:
    return _upright(physics) * linear_above(_com_height(physics), 1.0, 1.0, 0.5)


def lie_down(physics) -> float:
    return below(float(physics.data.ptr.body("torso").xpos[2]), 0.2, 0.3)


def two_legs(physics) -> float:
    toes = _toe_heights(physics)
    return below(float(toes[:2].mean()), 0.2, 0.3) * above(float(toes[2:].mean()), 0.8, 0.4)


def descriptors(physics) -> dict[str, float]:
    """``torso_height``, ``torso_upright`` (zz), ``com_height``, ``forward_velocity`` (torso frame, m/s),
    ``com_vx``/``com_vy``/``com_vz`` (world, m/s), ``angular_speed`` (rad/s), and each toe's height (m)."""
    data = physics.data.ptr
    mujoco.mj_subtreeVel(physics.model.ptr, data)  # subtree velocities are only computed for sensors that need them
    lin = np.asarray(data.body("torso").subtree_linvel)
    gyro = np.asarray(data.sensor("imu_gyro").data)
    out = {"torso_height": float(data.body("torso").xpos[2]), "torso_upright": float(data.body("torso").xmat[8]),
           "com_height": _com_height(physics), "forward_velocity": _forward_velocity(physics),
           "com_vx": float(lin[0]), "com_vy": float(lin[1]), "com_vz": float(lin[2]),
           "angular_speed": float(np.linalg.norm(gyro))}
    for toe in TOES:
        out[f"{toe}_z"] = float(data.body(toe).xpos[2])
    return out


def state(physics) -> np.ndarray:
    """dm_control quadruped observation: egocentric joint state, torso velocity, upright, IMU, toe force/torque."""
    return np.concatenate([physics.egocentric_state(), physics.torso_velocity(), [physics.torso_upright()],
                           physics.imu(), physics.force_torque()]).astype(np.float32)


DOMAIN = DomainSpec(
    name="quadruped",
    make_physics=_make_physics,
    camera=2,
    control_timestep=0.02,
    initialize=initialize,
    upright_initialize=upright_initialize,
    state=state,
    descriptors=descriptors,
    tasks={"stand": stand, "walk": walk, "run": run, "jump": jump, "lie_down": lie_down, "two_legs": two_legs},
)
