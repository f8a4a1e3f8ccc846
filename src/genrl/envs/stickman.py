"""Stickman domain: GenRL's planar humanoid (walker legs, short torso, neck/head, two 2-link arms; official
``envs/custom_dmc_tasks/stickman.py``).

The model ``assets/stickman.xml`` is our own MJCF written from a description of the official ``stickman.xml`` (15
bodies, 13 joints, 10 motors, camera 0 = ``side`` tracking the COM). The posture/locomotion rewards are the walker's
(:class:`genrl.envs.walker.PlanarRewards`) with stand height 1.15 and kick height 1.15; stickman adds
``hands_up`` and ``boxing``.

Deliberate difference from the official code: the official ``stand`` multiplies ``S`` by ``(5 I[vx >= 0] + 1)/6``
(a "move" term with speed 0 and hence margin 0, an official bug); here ``stand`` is the plain
standing reward ``S`` (as in dm_control's walker).
"""

from __future__ import annotations

from importlib import resources

from dm_control.mujoco import Physics
from dm_control.suite import common

from genrl.envs.core import DomainSpec
from genrl.envs.rewards import above, linear_above
from genrl.envs.walker import (SIDES, PlanarRewards, mean_z, planar_descriptors, planar_state, planar_tasks,
                               randomize_joints, _z)

STAND_HEIGHT = 1.15
HANDS_UP_HEIGHT = 1.75
PUNCH_SPEED = 5.0

STICKMAN = PlanarRewards(stand_height=STAND_HEIGHT, kick_height=STAND_HEIGHT)


def hand_vx(physics, side: str) -> float:
    """x-velocity (m/s, world frame) of the ``{side}_hand`` subtree COM.

    ``subtree_linvel`` is filled by ``mj_subtreeVel``, which MuJoCo runs in the velocity-sensor stage because the
    model has a ``subtreelinvel`` sensor; it is therefore valid after ``physics.step`` and ``physics.forward``.
    """
    return float(physics.data.ptr.body(f"{side}_hand").subtree_linvel[0])


def hands_up(physics) -> float:
    """``S * G(mean hand z >= 1.75, 0.875)``."""
    return STICKMAN.stand(physics) * above(mean_z(physics, "hand"), HANDS_UP_HEIGHT, HANDS_UP_HEIGHT / 2)


def boxing(physics) -> float:
    """``S * L(max(|vx_left_hand|, |vx_right_hand|) >= 5, 2.5, 0.5)``."""
    punch = max(abs(hand_vx(physics, s)) for s in SIDES)
    return STICKMAN.stand(physics) * linear_above(punch, PUNCH_SPEED, PUNCH_SPEED / 2, 0.5)


def stickman_tasks() -> dict:
    """Task name -> reward function: the planar table (walk 1 m/s, run 8 m/s) plus ``hands_up`` and ``boxing``."""
    tasks = planar_tasks(STICKMAN, walk_speed=1.0, run_speed=8.0)
    tasks["hands_up"] = hands_up
    tasks["boxing"] = boxing
    return tasks


def stickman_descriptors(physics) -> dict[str, float]:
    """:func:`planar_descriptors` over thigh/leg/foot/hand, plus ``head_z`` and ``{side}_hand_vx``."""
    out = planar_descriptors(physics, limbs=("thigh", "leg", "foot", "hand"))
    out["head_z"] = _z(physics, "head")
    for side in SIDES:
        out[f"{side}_hand_vx"] = hand_vx(physics, side)
    return out


def model_xml() -> str:
    """The stickman MJCF text (packaged with genrl)."""
    return resources.files("genrl.envs").joinpath("assets", "stickman.xml").read_text()


def _make_physics():
    return Physics.from_xml_string(model_xml(), common.ASSETS)


DOMAIN = DomainSpec(
    name="stickman",
    make_physics=_make_physics,
    camera=0,
    control_timestep=0.025,
    initialize=randomize_joints,
    state=planar_state,
    descriptors=stickman_descriptors,
    tasks=stickman_tasks(),
)
