"""Walker domain: dm_control's planar walker with the standard and GenRL's custom tasks (official
``envs/custom_dmc_tasks/walker.py``).

The model is dm_control's ``walker.xml`` (identical to the official copy). Rewards are re-stated from the
official ``envs/custom_dmc_tasks/walker.py``; the standard ``stand``/``walk``/``run`` match dm_control's own (checked
by a test). The shared posture rewards are written once in :class:`PlanarRewards` and reused by the Stickman domain
with its constants.

Quantities (all in metres / radians / SI units, world frame unless said otherwise): ``z_*`` body-frame origin
heights (thigh = hip joint, leg = shin middle, foot = ankle), ``upright`` = torso ``zz`` rotation entry,
``vx`` = torso-subtree COM x-velocity (m/s), ``L_y`` = torso-subtree angular momentum about y.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from dm_control.suite import common
from dm_control.suite.utils import randomizers
from dm_control.mujoco import Physics

from genrl.envs.core import DomainSpec
from genrl.envs.rewards import above, below, linear_above, linear_below

SIDES = ("left", "right")


# Named access goes through the native MuJoCo bindings (``physics.data.ptr.body(name)``): dm_control's
# ``physics.named`` indexers cost ~15 us per lookup, and every step evaluates all tasks' rewards.
def _z(physics, body: str) -> float:
    return float(physics.data.ptr.body(body).xpos[2])


def _x(physics, body: str) -> float:
    return float(physics.data.ptr.body(body).xpos[0])


def zz(physics, body: str) -> float:
    """``zz`` entry of a body's rotation matrix (cosine between its z axis and the world z axis)."""
    return float(physics.data.ptr.body(body).xmat[8])


def upright(physics) -> float:
    """Torso ``zz`` rotation entry: 1 upright, -1 upside down, 0 horizontal."""
    return zz(physics, "torso")


def com_velocity(physics) -> np.ndarray:
    """Whole-body (torso subtree) COM linear velocity ``[3]`` in m/s, from the ``torso_subtreelinvel`` sensor."""
    return np.asarray(physics.data.ptr.sensor("torso_subtreelinvel").data, dtype=np.float64)


def angular_momentum_y(physics) -> float:
    """Torso-subtree angular momentum about the world y axis (positive = forward flip for these planar bodies)."""
    return float(physics.data.ptr.body("torso").subtree_angmom[1])


def mean_z(physics, part: str) -> float:
    """Mean height of the left and right ``part`` bodies (``thigh``, ``leg``, ``foot``, ``hand``...)."""
    return 0.5 * (_z(physics, f"left_{part}") + _z(physics, f"right_{part}"))


@dataclasses.dataclass(frozen=True)
class PlanarRewards:
    """Posture and locomotion rewards shared by the walker and the stickman (official
    ``envs/custom_dmc_tasks/walker.py`` and ``stickman.py``).

    Attributes:
        stand_height: torso height for standing (walker 1.2, stickman 1.15); margin is half of it.
        kick_height: raised-foot height of ``high_kick`` (walker 1.2, stickman 1.15).
    """

    stand_height: float = 1.2
    kick_height: float = 1.2

    def stand(self, physics) -> float:
        """``S = (3 G(z_torso >= h, h/2) + (1 + upright)/2) / 4``."""
        standing = above(_z(physics, "torso"), self.stand_height, self.stand_height / 2)
        return (3.0 * standing + (1.0 + upright(physics)) / 2.0) / 4.0

    def move(self, physics, speed: float) -> float:
        """``S (5 L(vx >= s, s/2, 0.5) + 1) / 6`` for ``speed > 0``; backwards motion for ``speed < 0``."""
        vx = com_velocity(physics)[0]
        if speed >= 0:
            moving = linear_above(vx, speed, speed / 2, 0.5)
        else:
            moving = linear_below(vx, speed, -speed / 2, 0.5)
        return self.stand(physics) * (5.0 * moving + 1.0) / 6.0

    def lying_down(self, physics) -> float:
        """Torso, thighs, shins and feet on the floor and the torso horizontal."""
        return (3.0 * below(_z(physics, "torso"), 0.1, 0.15) + (1.0 - abs(upright(physics)))
                + below(mean_z(physics, "thigh"), 0.1, 0.15) + below(mean_z(physics, "foot"), 0.1, 0.15)
                + below(mean_z(physics, "leg"), 0.1, 0.15)) / 7.0

    def legs_up(self, physics) -> float:
        """Lying on the back with the feet raised."""
        lying = (3.0 * below(_z(physics, "torso"), 0.1, 0.15) + (1.0 - abs(upright(physics)))) / 4.0
        return lying * above(mean_z(physics, "foot"), 0.35, 0.175)

    def _feet(self, physics) -> tuple[float, float]:
        zs = [_z(physics, f"{s}_foot") for s in SIDES]
        return max(zs), min(zs)

    def one_foot(self, physics) -> float:
        """Torso up, one foot raised >= 0.5 m, the other on the floor."""
        high, low = self._feet(physics)
        return (above(_z(physics, "torso"), 1.0, 0.5) * above(high, 0.5, 0.25) * below(low, 0.1, 0.15))

    def high_kick(self, physics) -> float:
        """Torso up and one foot kicked up to ``kick_height``."""
        high, low = self._feet(physics)
        kick = (3.0 * above(high, self.kick_height, self.kick_height / 2) + below(low, 0.1, 0.15)) / 4.0
        return above(_z(physics, "torso"), 1.0, 0.5) * kick

    def arabesque(self, physics) -> float:
        """Standing on one foot with the other raised to torso height behind the body."""
        (hz, hs), (lz, ls) = sorted(((_z(physics, f"{s}_foot"), s) for s in SIDES), reverse=True)
        behind = 0.1 if _x(physics, f"{hs}_foot") > _x(physics, f"{ls}_foot") else 1.0
        return (above(_z(physics, "torso"), 1.0, 0.5) * (below(lz, 0.1, 0.15) + 2.0 * above(hz, 1.0, 0.5)) / 3.0
                * behind)

    def lunge_pose(self, physics) -> float:
        """Lunge: torso up at ~0.75 m, one shin on the floor and horizontal, the other shin vertical."""
        torso = (3.0 * above(_z(physics, "torso"), 0.75, 0.375) + (1.0 + upright(physics)) / 2.0) / 4.0
        (hz, hs), (lz, ls) = sorted(((_z(physics, f"{s}_leg"), s) for s in SIDES), reverse=True)
        legs = (below(lz, 0.1, 0.15) + above(hz, 0.25, 0.125) + (1.0 - abs(zz(physics, f"{hs}_thigh")))
                + (1.0 - abs(zz(physics, f"{ls}_leg")))) / 4.0
        return torso * legs

    def sit_knees(self, physics) -> float:
        """Kneeling on the shins, torso upright at ~0.55 m, feet under the hips."""
        torso_up = (3.0 * above(_z(physics, "torso"), 0.55, 0.275) + (1.0 + upright(physics)) / 2.0) / 4.0
        legs = (3.0 * below(mean_z(physics, "leg"), 0.15, 0.225) + below(mean_z(physics, "foot"), 0.1, 0.15)) / 4.0
        dists = [max(0.1, abs(_x(physics, f"{s}_foot") - _x(physics, f"{s}_thigh"))) - 0.1 for s in SIDES]
        return torso_up * legs * float(np.exp(-sum(dists) / 2.0))

    def upside_down(self, physics) -> float:
        """``U``: feet and thighs high (body inverted), the posture term of flips and headstand."""
        return (3.0 * above(mean_z(physics, "foot"), 1.1, 0.55) + 2.0 * above(mean_z(physics, "thigh"), 1.0, 0.5)) / 5.0

    def flip(self, physics, spin: float) -> float:
        """``U (5 L(+-L_y >= |spin|, |spin|/2, 0.5) + 1) / 6``; ``spin > 0`` forward, ``< 0`` backward."""
        ly = angular_momentum_y(physics)
        rot = linear_above(ly, spin, spin / 2, 0.5) if spin > 0 else linear_below(ly, spin, -spin / 2, 0.5)
        return self.upside_down(physics) * (5.0 * rot + 1.0) / 6.0

    def flipping(self, physics) -> float:
        """Flips in either direction: ``max(flip(+16), flip(-16))`` (the paper counts both directions)."""
        return max(self.flip(physics, 16.0), self.flip(physics, -16.0))


WALKER = PlanarRewards(stand_height=1.2, kick_height=1.2)


def planar_descriptors(physics, limbs: tuple[str, ...] = ("thigh", "leg", "foot")) -> dict[str, float]:
    """Named physical state of a planar body (walker, stickman) for ``info["physics"]``.

    Keys: ``torso_height`` (m), ``torso_upright`` (torso zz), ``torso_pitch`` (rad, root hinge angle),
    ``com_vx``/``com_vz`` (m/s), ``pitch_rate`` (rad/s), ``angmom_y``, and for each side and limb
    ``{side}_{limb}_z`` / ``{side}_{limb}_x_rel`` (height, and x relative to the torso, in m).
    """
    vel = com_velocity(physics)
    out = {
        "torso_height": _z(physics, "torso"),
        "torso_upright": upright(physics),
        "torso_pitch": float(physics.data.ptr.joint("rooty").qpos[0]),
        "com_vx": float(vel[0]),
        "com_vz": float(vel[2]),
        "pitch_rate": float(physics.data.ptr.joint("rooty").qvel[0]),
        "angmom_y": angular_momentum_y(physics),
    }
    tx = _x(physics, "torso")
    for side in SIDES:
        for limb in limbs:
            out[f"{side}_{limb}_z"] = _z(physics, f"{side}_{limb}")
            out[f"{side}_{limb}_x_rel"] = _x(physics, f"{side}_{limb}") - tx
    return out


def planar_state(physics) -> np.ndarray:
    """dm_control walker observation: body orientations (xx, xz of each body), torso height, joint velocities."""
    return np.concatenate([physics.named.data.xmat[1:, ["xx", "xz"]].ravel(), [_z(physics, "torso")],
                           physics.data.qvel]).astype(np.float32)


def randomize_joints(physics, random: np.random.RandomState) -> None:
    """Random joint angles within limits (and random root rotation), as dm_control's walker."""
    randomizers.randomize_limited_and_rotational_joints(physics, random)


def planar_tasks(r: PlanarRewards, walk_speed: float = 1.0, run_speed: float = 8.0) -> dict:
    """The task -> reward-function table shared by planar bodies."""
    return {
        "stand": r.stand,
        "walk": lambda p: r.move(p, walk_speed),
        "run": lambda p: r.move(p, run_speed),
        "walk_backwards": lambda p: r.move(p, -walk_speed),
        "run_backwards": lambda p: r.move(p, -run_speed),
        "flipping": r.flipping,
        "flip": lambda p: r.flip(p, 16.0),
        "backflip": lambda p: r.flip(p, -16.0),
        "headstand": r.upside_down,
        "one_foot": r.one_foot,
        "high_kick": r.high_kick,
        "arabesque": r.arabesque,
        "lying_down": r.lying_down,
        "legs_up": r.legs_up,
        "sit_knees": r.sit_knees,
        "lunge_pose": r.lunge_pose,
    }


def _make_physics():
    # The floor plane's third size is only its rendering subdivision (MuJoCo docs); 0.2 -> 0.5 m draws 6x fewer
    # quads in each shadow/reflection/main pass (~30% faster software rendering, identical-looking frames).
    xml = common.read_model("walker.xml").decode()
    old = 'size="250 .8 .2"'
    if old not in xml:
        raise RuntimeError("dm_control walker.xml changed: expected its floor plane size 250 .8 .2")
    return Physics.from_xml_string(xml.replace(old, 'size="250 .8 .5"'), common.ASSETS)


DOMAIN = DomainSpec(
    name="walker",
    make_physics=_make_physics,
    camera=0,
    control_timestep=0.025,
    initialize=randomize_joints,
    state=planar_state,
    descriptors=planar_descriptors,
    tasks=planar_tasks(WALKER),
)
