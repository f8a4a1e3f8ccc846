"""Facts of a clip from the simulator's physics descriptors: the rule half of the captioner.

:func:`fact_keys` turns the ``info["physics"]`` descriptors of the ``k`` steps of one clip (each key -> array
``[k]``) into a list of fact keys such as ``"standing"``, ``"run_fast"`` or ``"microwave_done"``;
:mod:`genrl.vlm.captions` turns the keys into words. Postures use clip means, motions use mean velocities, short
events (a kick, a punch, a jump) use the clip maximum. Every domain always yields at least one posture-like and
one motion-like fact (a fallback is added when no rule fires).

Thresholds follow the task reward definitions of :mod:`genrl.envs` (units: m, m/s, rad, rad/s), set a little
inside the point where the reward is about one half so that a fact means "this task's reward is high here":

* walker / stickman (:class:`genrl.envs.walker.PlanarRewards`, stand height ``h`` = 1.2 / 1.15): standing =
  torso >= 0.85 h and upright >= 0.8; lying = torso <= 0.35 and |upright| <= 0.5 (reward: torso <= 0.1, margin
  0.15); legs up = lying and mean foot z >= 0.35; one foot = torso >= 0.9, one foot >= 0.4 (reward 0.5, margin
  0.25), the other <= 0.15; high kick = torso >= 0.9 and a foot reaching 0.8 h in the clip; arabesque = one foot
  and the raised foot >= 0.8 behind the standing one; kneeling (``sit_knees``) = torso 0.35..0.85 h, upright >=
  0.7, both shins <= 0.2, feet <= 0.2 and within 0.7 of the hips in x; lunge (``lunge_pose``) = torso >= 0.55, one
  shin <= 0.2, the other >= 0.25; headstand (``upside_down``: feet >= 1.1, thighs >= 1.0; a walker resting on its
  torso reaches only ~0.6 with its hips) = upright <= -0.5, feet >= 0.9, thighs >= 0.5, no fast spin; flipping
  (``flip``: ``U`` times angular momentum ``L_y`` >= 16, margin 8) = mean |L_y| >= 8, a net torso rotation >=
  1.5 rad over the clip in the same direction, inverted (upright <= -0.3) with the feet >= 0.9 in some frame
  (falling onto the head is not a flip), forward when ``L_y > 0``; walking (walk 1 m/s) = |vx| 0.25..2 (fast >=
  1), running (run 8 m/s) >= 2 (fast >= 5); stickman hands up (mean hand z >= 1.75, margin 0.875) = >= 1.55; punching
  (|hand vx| >= 5, margin 2.5) = a hand reaching |vx| >= 4 and 2.5 m/s faster than the body, torso >= 0.7 h.
  Orientation: the root pitch ``torso_pitch`` turns the head forward (+x) when positive, so a body lying with
  ``sin(pitch) > 0`` is face down and with ``sin(pitch) < 0`` on its back.
* cheetah (:mod:`genrl.envs.cheetah`): standing (``standing``: higher foot >= 1, lower <= 0.15) = higher foot >=
  0.8 and lower <= 0.25, "like a human" when the front foot is the high one; lying (``lying_down``: torso <= 0.15,
  feet sum >= 0.45) = torso <= 0.3; flipping (``flip``: ``L_y`` >= 5, margin 5) = mean |L_y| >= 4 and a net
  rotation >= 0.5 rad over the clip (0.14 s) in the same direction; running (``run``: 10 m/s) = vx >= 2 (fast >= 6).
* quadruped (:mod:`genrl.envs.quadruped`): standing = upright (zz) >= 0.7 (``stand`` = (1 + zz) / 2); upside down
  = zz <= -0.5; lying (``lie_down``: torso <= 0.2, margin 0.3) = torso <= 0.3; two legs (lowest two toes <= 0.2,
  highest two >= 0.8, margin 0.4) = <= 0.25 and >= 0.6; jumping (``jump``: COM height >= 1) = COM >= 0.8, COM
  z-velocity >= 1 or all toes >= 0.15; walking (walk 0.5 m/s) = forward velocity 0.1..1.5 (fast >= 0.5),
  running (run 5 m/s) >= 1.5 (fast >= 3.5).
* kitchen (:mod:`genrl.envs.kitchen`): an object is opened / switched on when its joints are within the GenRL
  success threshold of the goal (``TASKS``) in at least half of the clip's frames; "partly" when it moved >= 30 %
  of the way from its rest value (``KITCHEN_REST``, the base env's fixed initial object state); moving when the
  goal distance changed by >= 0.05 over the clip. Other objects: top burner knob <= -0.4, hinge doors beyond
  +-0.3 rad, kettle moved >= 5 cm. Arm: end-effector displacement over the clip (>= 4 cm moving, < 1 cm still),
  gripper opening >= 0.06 m open, <= 0.02 m closed.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from genrl.envs.kitchen import TASKS as KITCHEN_TASKS

DOMAINS = ("walker", "cheetah", "quadruped", "stickman", "kitchen")
STAND_HEIGHT = {"walker": 1.2, "stickman": 1.15}  # PlanarRewards.stand_height (= kick height) of each body
SIDES = ("left", "right")

# Descriptor columns of each kitchen task's joints, in the order of ``KITCHEN_TASKS[task].indices``.
KITCHEN_JOINTS = {"microwave": ("microwave_angle",), "light": ("light_switch", "light_joint"),
                  "burner": ("bottom_burner_knob", "bottom_burner"), "slide": ("slide_cabinet",)}
# Object state right after ``KitchenEnv.reset`` (gymnasium-robotics' fixed init_qpos; objects are not randomized).
KITCHEN_REST = {"microwave_angle": 0.0, "light_switch": 0.0, "light_joint": 0.0, "bottom_burner_knob": 0.0,
                "bottom_burner": 0.0, "top_burner_knob": 0.0, "slide_cabinet": 0.0, "left_hinge_cabinet": 0.0,
                "right_hinge_cabinet": 0.0, "kettle_x": -0.269, "kettle_y": 0.350, "kettle_z": 1.619}

POSTURES = frozenset({
    "standing", "crouching", "kneeling", "lunge", "sitting", "lying", "legs_up", "upside_down", "headstand",
    "one_foot", "arabesque", "lean_forward", "lean_back", "on_ground", "four_legs", "hind_legs", "front_leg",
    "nose_up", "nose_down", "crouch_low", "on_side", "tilted", "two_legs"})


class Clip:
    """Read access to one clip's descriptors: ``clip("torso_height")`` -> float64 ``[k]``.

    Raises:
        ValueError: empty dict, arrays of different lengths or not 1-D, or (on access) a missing descriptor;
            the message names the domain and the descriptors present.
    """

    def __init__(self, domain: str, physics: Mapping[str, np.ndarray]):
        self.domain = domain
        self.data = {str(k): np.atleast_1d(np.asarray(v, dtype=np.float64)) for k, v in physics.items()}
        lengths = {v.shape for v in self.data.values()}
        if not self.data or len(lengths) != 1 or len(next(iter(lengths))) != 1 or not next(iter(lengths))[0]:
            raise ValueError(f"{domain}: physics must map names to 1-D arrays of one common length k >= 1, "
                             f"got shapes {sorted(lengths)}")

    def __call__(self, name: str) -> np.ndarray:
        if name not in self.data:
            raise ValueError(f"{self.domain} clip lacks the physics descriptor {name!r}; "
                             f"has {sorted(self.data)}")
        return self.data[name]

    def mean(self, name: str) -> float:
        return float(self(name).mean())

    def delta(self, name: str) -> float:
        """Last minus first value over the clip."""
        v = self(name)
        return float(v[-1] - v[0])


def _motion(keys: list[str], speed: float, walk: tuple[float, float, float], run: tuple[float, float]) -> None:
    """Append walking/running facts for a signed speed: ``walk = (min, fast, max)``, ``run = (min, fast)``."""
    s, back = abs(speed), speed < 0
    if s >= run[1]:
        keys.append("run_back" if back else "run_fast")
    elif s >= run[0]:
        keys.append("run_back" if back else "run")
    elif s >= walk[0]:
        if back:
            keys.append("walk_back")
        else:
            keys.append("walk_fast" if s >= walk[1] else ("walk_slow" if s < 0.7 * walk[1] else "walk"))


def _ensure(keys: list[str], posture_fallback: str, motion_fallback: str, motions: set[str]) -> list[str]:
    if not POSTURES.intersection(keys):
        keys.insert(0, posture_fallback)
    if not motions.intersection(keys):
        keys.append(motion_fallback)
    return keys


MOTIONS = {"still", "walk", "walk_slow", "walk_fast", "walk_back", "run", "run_fast", "run_back", "move_fwd",
           "move_back", "flip_fwd", "flip_back", "jumping", "falling", "getting_up", "rolling", "fidget",
           "sideways", "arm_up", "arm_down", "arm_moving", "arm_slow"}


def planar_facts(c: Clip, stand_height: float, stickman: bool) -> list[str]:
    """Facts of a walker (``stickman=False``) or stickman clip; see the module docstring for the thresholds."""
    h = stand_height
    th, up, sin_p = c("torso_height"), c("torso_upright"), np.sin(c("torso_pitch"))
    t, u = float(th.mean()), float(up.mean())
    feet = np.stack([c(f"{s}_foot_z") for s in SIDES])                      # [2, k]
    hi, lo = feet.max(0), feet.min(0)
    legs = np.stack([c(f"{s}_leg_z") for s in SIDES])
    thighs = np.stack([c(f"{s}_thigh_z") for s in SIDES])
    vx, vz, rate, ly = c.mean("com_vx"), c.mean("com_vz"), c.mean("pitch_rate"), c.mean("angmom_y")
    keys: list[str] = []
    # -- posture
    if u <= -0.5 or (u <= -0.3 and t > 0.35):
        keys.append("upside_down")
        if u <= -0.5 and feet.mean() >= 0.9 and thighs.mean() >= 0.5 and abs(rate) < 2.5:
            keys.append("headstand")
    lying = t <= 0.35 and abs(u) <= 0.5
    if lying:
        keys.append("lying")
        if abs(sin_p.mean()) >= 0.7:
            keys.append("on_front" if sin_p.mean() > 0 else "on_back")
        if feet.mean() >= 0.35:
            keys.append("legs_up")
    if t >= 0.85 * h and u >= 0.8:
        keys.append("standing")
    upper = t >= 0.9 and u >= 0.5
    if upper and hi.mean() >= 0.4 and lo.mean() <= 0.15 and abs(vx) < 1.0:
        keys.append("one_foot")
        high_side = feet.argmax(0)                                           # per frame: 0 left, 1 right
        xs = np.stack([c(f"{s}_foot_x_rel") for s in SIDES])
        x_hi = np.take_along_axis(xs, high_side[None], 0)[0]
        x_lo = np.take_along_axis(xs, 1 - high_side[None], 0)[0]
        if hi.mean() >= 0.8 and (x_hi < x_lo - 0.2).mean() >= 0.5:
            keys.append("arabesque")
    if upper and hi.max() >= 0.8 * h and lo.min() <= 0.2:
        keys.append("high_kick")
    feet_under = all(np.abs(c(f"{s}_foot_x_rel") - c(f"{s}_thigh_x_rel")).mean() <= 0.7 for s in SIDES)
    if 0.35 <= t < 0.85 * h and u >= 0.7 and legs.max(0).mean() <= 0.2 and feet.mean() <= 0.2 and feet_under:
        keys.append("kneeling")
    elif t >= 0.55 and u >= 0.7 and legs.min(0).mean() <= 0.2 and legs.max(0).mean() >= 0.25:
        keys.append("lunge")
    elif 0.25 <= t <= 0.6 and u >= 0.5 and thighs.mean() <= 0.3:
        keys.append("sitting")
    elif u >= 0.5 and 0.55 * h <= t < 0.85 * h:
        keys.append("crouching")
    if -0.3 < u < 0.8 and t > 0.35:
        keys.append("lean_forward" if sin_p.mean() > 0 else "lean_back")
    if stickman:
        hands = np.stack([c(f"{s}_hand_z") for s in SIDES])
        if hands.mean() >= 1.55:
            keys.append("hands_up")
        elif hands.max(0).mean() >= 1.55:
            keys.append("one_hand_up")
        hvx = np.stack([c(f"{s}_hand_vx") for s in SIDES])
        rel = np.abs(hvx - c("com_vx")[None])
        if np.abs(hvx).max() >= 4.0 and rel.max() >= 2.5 and t >= 0.7 * h:
            keys.append("punch")
    # -- motion
    turn = c.delta("torso_pitch")                                           # net rotation over the clip (rad)
    flipping = (abs(turn) >= 1.5 and abs(ly) >= 8.0 and np.sign(ly) == np.sign(turn) and up.min() <= -0.3
                and feet.mean(0).max() >= 0.9)
    if flipping:  # clip-mean postures are meaningless over a rotation: keep only "upside down"
        keys = [k for k in keys if k not in ("lean_forward", "lean_back", "crouching", "standing", "lying",
                                             "on_back", "on_front", "sitting")]
        keys.append("flip_fwd" if ly > 0 else "flip_back")
    on_feet = u >= 0.5 and t >= 0.55 * h
    airborne = (lo >= 0.15).mean() >= 0.5 and abs(vx) < 2.0
    if on_feet and t >= 0.6 * h and (c("com_vz").max() >= 1.0 or airborne):
        keys.append("jumping")
    if vz <= -0.7 and t >= 0.35 and not flipping:
        keys.append("falling")
    if th[-1] - th[0] >= 0.2 and up[-1] >= 0.3 and th[0] < 0.75 * h:
        keys.append("getting_up")
    if on_feet and not flipping:
        _motion(keys, vx, walk=(0.25, 1.0, 2.0), run=(2.0, 5.0))
    elif not flipping and abs(vx) >= 0.5:
        keys.append("move_fwd" if vx > 0 else "move_back")
    zs = np.stack([c(n) for n in c.data if n.endswith("_z")] + [th])
    if abs(vx) < 0.2 and abs(vz) < 0.2 and abs(rate) < 0.5 and np.ptp(zs, axis=1).max() <= 0.08:
        keys.append("still")
    fallback = "upside_down" if flipping else ("on_ground" if t < 0.5 * h else "crouching")
    return _ensure(keys, fallback, "fidget", MOTIONS)


def cheetah_facts(c: Clip) -> list[str]:
    """Facts of a cheetah clip (see the module docstring)."""
    t, u = c.mean("torso_height"), c.mean("torso_upright")
    sin_p = float(np.sin(c("torso_pitch")).mean())
    b, f = c("bfoot_z"), c("ffoot_z")
    hi, lo = np.maximum(b, f), np.minimum(b, f)
    vx, rate, ly = c.mean("com_vx"), c.mean("pitch_rate"), c.mean("angmom_y")
    keys: list[str] = []
    if u <= -0.5:
        keys.append("upside_down")
        if t <= 0.35:
            keys.append("on_back")
    if t <= 0.3:
        keys.append("lying")
        if u <= -0.5 and (b + f).mean() >= 0.45:
            keys.append("legs_up")
    if hi.mean() >= 0.8 and lo.mean() <= 0.25:
        keys.append("hind_legs" if f.mean() > b.mean() else "front_leg")
    elif -0.5 < u < 0.7:
        keys.append("nose_up" if sin_p < 0 else "nose_down")
    if u >= 0.7:
        keys.append("four_legs" if t >= 0.4 else "crouch_low")
    turn = c.delta("torso_pitch")
    flipping = abs(ly) >= 4.0 and abs(turn) >= 0.5 and np.sign(ly) == np.sign(turn)
    if flipping:
        keys.append("flip_fwd" if ly > 0 else "flip_back")
    if c("com_vz").max() >= 1.0 or (lo.mean() >= 0.3 and t >= 0.7):
        keys.append("jumping")
    if u >= 0.3 and not flipping:
        _motion(keys, vx, walk=(0.2, 1.0, 2.0), run=(2.0, 6.0))
    elif not flipping and abs(vx) >= 0.5:
        keys.append("move_fwd" if vx > 0 else "move_back")
    if abs(vx) < 0.2 and abs(rate) < 0.5 and abs(c.mean("com_vz")) < 0.2:
        keys.append("still")
    return _ensure(keys, "crouch_low", "fidget", MOTIONS)


def quadruped_facts(c: Clip) -> list[str]:
    """Facts of a quadruped ("spider") clip (see the module docstring)."""
    t, u, up = c.mean("torso_height"), c.mean("torso_upright"), c("torso_upright")
    toes = np.sort(np.stack([c(n) for n in ("toe_front_left_z", "toe_back_left_z", "toe_back_right_z",
                                            "toe_front_right_z")]), axis=0)  # [4, k], ascending per frame
    v, w = c.mean("forward_velocity"), c.mean("angular_speed")
    sp = float(np.hypot(c.mean("com_vx"), c.mean("com_vy")))
    keys: list[str] = []
    if u <= -0.5:
        keys += ["upside_down", "on_back"] if t <= 0.6 else ["upside_down"]
    elif u < 0.5:
        keys.append("on_side")
    elif u < 0.7:
        keys.append("tilted")
    if t <= 0.3:
        keys.append("lying")
    elif u >= 0.7:
        keys.append("standing")
    if toes[:2].mean() <= 0.25 and toes[2:].mean() >= 0.6:
        keys.append("two_legs")
    if u >= 0.3 and (c.mean("com_height") >= 0.8 or c("com_vz").max() >= 1.0 or (toes[0] >= 0.15).mean() >= 0.5):
        keys.append("jumping")
    rolling = w >= 4.0 and (up.min() < 0.5 or np.ptp(up) >= 0.5)
    if rolling:
        keys.append("rolling")
    elif u >= 0.5:
        _motion(keys, v, walk=(0.1, 0.5, 1.5), run=(1.5, 3.5))
        if sp >= 0.3 and abs(v) < 0.3 * sp:
            keys.append("sideways")
    elif sp >= 0.3:
        keys.append("move_fwd")
    if abs(v) < 0.1 and sp < 0.1 and w < 0.5 and abs(c.mean("com_vz")) < 0.1:
        keys.append("still")
    return _ensure(keys, "tilted", "fidget", MOTIONS)


def kitchen_facts(c: Clip) -> list[str]:
    """Facts of a kitchen clip: objects opened/switched on/moving, arm motion, gripper (module docstring)."""
    keys: list[str] = []
    for task, names in KITCHEN_JOINTS.items():
        spec = KITCHEN_TASKS[task]
        q = np.stack([c(n) for n in names], axis=1)                               # [k, J]
        goal = np.asarray(spec.goal)
        dist = np.linalg.norm(q - goal, axis=1)
        rest = np.linalg.norm(np.array([KITCHEN_REST[n] for n in names]) - goal)
        if (dist < spec.threshold).mean() >= 0.5:
            keys.append(f"{task}_done")
        elif dist.mean() <= 0.7 * rest:
            keys.append(f"{task}_partly")
        if dist[0] - dist[-1] >= 0.05:
            keys.append(f"{task}_progress")
        elif dist[-1] - dist[0] >= 0.05:
            keys.append(f"{task}_undo")
    if c.mean("top_burner_knob") <= -0.4:
        keys.append("top_burner_on")
    if c.mean("left_hinge_cabinet") <= -0.3 or c.mean("right_hinge_cabinet") >= 0.3:
        keys.append("hinge_open")
    kettle = np.stack([c(f"kettle_{a}") for a in "xyz"], axis=1)
    rest = np.array([KITCHEN_REST[f"kettle_{a}"] for a in "xyz"])
    if np.linalg.norm(kettle - rest, axis=1).mean() >= 0.05:
        keys.append("kettle_lifted" if kettle[:, 2].mean() - rest[2] >= 0.05 else "kettle_moved")
    if not keys:
        keys.append("nothing_changed")
    ee = np.stack([c(f"ee_{a}") for a in "xyz"], axis=1)
    d = ee[-1] - ee[0]
    dist = float(np.linalg.norm(d))
    if dist >= 0.04:
        vertical = abs(d[2]) >= np.linalg.norm(d[:2])
        keys.append(("arm_up" if d[2] > 0 else "arm_down") if vertical else "arm_moving")
    elif dist >= 0.01:
        keys.append("arm_slow")
    else:
        keys.append("still")
    g = c.mean("gripper_opening")
    if g >= 0.06:
        keys.append("gripper_open")
    elif g <= 0.02:
        keys.append("gripper_closed")
    return keys


_RULES: dict[str, Callable[[Clip], list[str]]] = {
    "walker": lambda c: planar_facts(c, STAND_HEIGHT["walker"], stickman=False),
    "stickman": lambda c: planar_facts(c, STAND_HEIGHT["stickman"], stickman=True),
    "cheetah": cheetah_facts,
    "quadruped": quadruped_facts,
    "kitchen": kitchen_facts,
}


def check_domain(domain: str) -> None:
    """Raise ``ValueError`` naming the valid domains if ``domain`` is not one of :data:`DOMAINS`."""
    if domain not in _RULES:
        raise ValueError(f"unknown domain {domain!r}; valid domains: {', '.join(DOMAINS)}")


def fact_keys(domain: str, physics: Mapping[str, np.ndarray]) -> list[str]:
    """Fact keys true for one clip, without duplicates, in rule order (postures, limbs, then motion).

    Args:
        domain: ``walker``, ``cheetah``, ``quadruped``, ``stickman`` or ``kitchen``.
        physics: descriptor name -> array ``[k]`` over the clip's frames (scalars count as k = 1); the names of
            the domain's ``info["physics"]`` (extra names are ignored).

    Raises:
        ValueError: unknown domain (lists the valid ones), a missing descriptor, or malformed arrays.
    """
    check_domain(domain)
    keys = _RULES[domain](Clip(domain, physics))
    return list(dict.fromkeys(keys))
