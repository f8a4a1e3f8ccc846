"""Cheetah domain: dm_control's half-cheetah with GenRL's custom tasks (official ``envs/custom_dmc_tasks/cheetah.py``).

Model: dm_control's ``cheetah.xml`` with the floor enlarged to 200 m x 0.8 m (as the official custom tasks), so a
fast runner never leaves it in a 10 s episode. Physics timestep 0.01 s, 1 physics step per control step,
1000 control steps -> 500 agent steps. Initial state: random joint angles within limits, then 200 settling steps.

Rewards (``vx`` torso-subtree COM x-velocity, ``L_y`` torso-subtree angular momentum about y, ``z_*`` body heights):

* ``run``: ``L(vx >= 10, 10, 0)`` (dm_control);
* ``flipping``: ``max(L(L_y >= 5, 5, 0), L(-L_y >= 5, 5, 0))`` -- flips in *both* directions (the official code's
  boolean sign bug made it forward-only; fixed here);
* ``flip`` / ``flip_backward``: one direction each; ``run_backward``: ``L(-vx >= 10, 10, 0)``;
* ``standing``: ``G(max(z_bfoot, z_ffoot) >= 1, 0.5) * G(min(z_bfoot, z_ffoot) <= 0.15, 0.225)`` (on its hind or
  front legs);
* ``lying_down``: ``(G(z_torso <= 0.15, 0.225) + G(z_bfoot + z_ffoot >= 0.45, 0.225)) / 2`` (on its back, feet up).
"""

from __future__ import annotations

import numpy as np
from dm_control.mujoco import Physics
from dm_control.suite import common

from genrl.envs.core import DomainSpec
from genrl.envs.rewards import above, below, linear_above
from genrl.envs.walker import _z, angular_momentum_y, com_velocity, upright

FLOOR = 'size="200 .8 .5"'


def _make_physics():
    xml = common.read_model("cheetah.xml").decode()
    old = 'pos="98 0 0" size="100 .8 .5"'
    if old not in xml:
        raise RuntimeError("dm_control cheetah.xml changed: cannot enlarge its floor (expected the 100 m ground)")
    xml = xml.replace(old, 'pos="198 0 0" ' + FLOOR)
    return Physics.from_xml_string(xml, common.ASSETS)


def initialize(physics, random: np.random.RandomState) -> None:
    """Random angles for the limited joints (dm_control's cheetah initialisation)."""
    model = physics.model
    limited = model.jnt_limited == 1
    lo, hi = model.jnt_range[limited].T
    physics.data.qpos[limited] = random.uniform(lo, hi)


def settle(physics) -> None:
    """200 passive physics steps so the body rests on the floor; the clock is then reset to 0."""
    physics.step(200)
    physics.data.time = 0.0


def _vx(physics) -> float:
    return float(com_velocity(physics)[0])


def _feet(physics) -> tuple[float, float]:
    return _z(physics, "bfoot"), _z(physics, "ffoot")


def run(physics) -> float:
    return linear_above(_vx(physics), 10.0, 10.0, 0.0)


def run_backward(physics) -> float:
    return linear_above(-_vx(physics), 10.0, 10.0, 0.0)


def flip(physics) -> float:
    return linear_above(angular_momentum_y(physics), 5.0, 5.0, 0.0)


def flip_backward(physics) -> float:
    return linear_above(-angular_momentum_y(physics), 5.0, 5.0, 0.0)


def flipping(physics) -> float:
    return max(flip(physics), flip_backward(physics))


def standing(physics) -> float:
    b, f = _feet(physics)
    return above(max(b, f), 1.0, 0.5) * below(min(b, f), 0.15, 0.225)


def lying_down(physics) -> float:
    b, f = _feet(physics)
    return (below(_z(physics, "torso"), 0.15, 0.225) + above(b + f, 0.45, 0.225)) / 2.0


def descriptors(physics) -> dict[str, float]:
    """``torso_height``, ``torso_upright``, ``torso_pitch`` (rad), ``com_vx``/``com_vz`` (m/s), ``pitch_rate``,
    ``angmom_y``, and the heights / x offsets from the torso of the back and front feet (m)."""
    data = physics.data.ptr
    vel = com_velocity(physics)
    tx = float(data.body("torso").xpos[0])
    out = {"torso_height": _z(physics, "torso"), "torso_upright": upright(physics),
           "torso_pitch": float(data.joint("rooty").qpos[0]), "com_vx": float(vel[0]), "com_vz": float(vel[2]),
           "pitch_rate": float(data.joint("rooty").qvel[0]), "angmom_y": angular_momentum_y(physics)}
    for foot in ("bfoot", "ffoot", "bthigh", "fthigh"):
        out[f"{foot}_z"] = _z(physics, foot)
        out[f"{foot}_x_rel"] = float(data.body(foot).xpos[0]) - tx
    return out


def state(physics) -> np.ndarray:
    """dm_control cheetah observation: joint positions without the horizontal root position, and velocities."""
    return np.concatenate([physics.data.qpos[1:], physics.data.qvel]).astype(np.float32)


DOMAIN = DomainSpec(
    name="cheetah",
    make_physics=_make_physics,
    camera=0,
    control_timestep=0.01,
    initialize=initialize,
    settle=settle,
    state=state,
    descriptors=descriptors,
    tasks={"run": run, "run_backward": run_backward, "flipping": flipping, "flip": flip,
           "flip_backward": flip_backward, "standing": standing, "lying_down": lying_down},
)
