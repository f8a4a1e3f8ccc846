"""Stickman domain: model structure, env API and reward rankings on posed physics (reference 8.4)."""

import numpy as np
import pytest

from genrl.envs import make
from genrl.envs import stickman

# qpos order: rootz, rootx, rooty, right_hip, right_knee, right_ankle, left_hip, left_knee, left_ankle,
# left_shoulder, left_elbow, right_shoulder, right_elbow. Hinges rotate about -y: positive = limb forward (+x).


@pytest.fixture(scope="module")
def env():
    e = make("stickman_stand", seed=0)
    yield e
    e.close()


def _pose(env, qvel=None, **joints):
    """Set joint angles (others 0; root z is an offset from the torso's 1.25 m) and optional velocities."""
    p = env.physics
    with p.reset_context():
        p.data.qpos[:] = 0.0
        p.data.qvel[:] = 0.0
        for name, value in joints.items():
            p.data.ptr.joint(name).qpos[0] = value
        for name, value in (qvel or {}).items():
            p.data.ptr.joint(name).qvel[0] = value
    return env.all_rewards()


UPRIGHT = {}
LYING = {"rootz": -1.18, "rooty": np.pi / 2}          # torso horizontal, ~7 cm above the floor
INVERTED = {"rootz": -0.65, "rooty": np.pi}           # upside down, head near the floor


def test_model_structure():
    physics = stickman.DOMAIN.make_physics()
    m = physics.model
    assert m.nu == 10 and m.njnt == 13 and m.nbody - 1 == 15
    assert m.opt.timestep == pytest.approx(0.0025)
    actuators = [m.id2name(i, "actuator") for i in range(m.nu)]
    assert actuators == ["right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
                         "left_shoulder", "left_elbow", "right_shoulder", "right_elbow"]
    np.testing.assert_allclose(m.actuator_gear[:, 0], [100, 50, 20, 100, 50, 20, 100, 50, 100, 50])
    assert m.id2name(0, "camera") == "side"
    physics.free()


def test_tasks_present():
    required = {"stand", "walk", "run", "flipping", "one_foot", "high_kick", "lying_down", "legs_up", "sit_knees",
                "lunge_pose", "headstand", "boxing", "hands_up"}
    assert required <= set(stickman.DOMAIN.tasks)


def test_env_reset_step_render(env):
    obs, info = env.reset(seed=0)
    img = obs["image"]
    assert img.dtype == np.uint8 and img.shape == (64, 64, 3)
    assert img.std() > 10
    orange = (img[..., 0] > 150) & (img[..., 0] > img[..., 2] + 50)   # the body's "self" material
    assert orange.sum() > 20
    assert obs["state"].shape == env.observation_space["state"].shape
    assert env.action_space.shape == (10,)
    for _ in range(10):
        obs2, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert not terminated and not truncated
    assert np.isfinite(reward) and set(info["rewards"]) == set(stickman.DOMAIN.tasks)
    assert {"head_z", "left_hand_vx", "right_hand_vx", "left_hand_z", "torso_height"} <= set(info["physics"])
    assert np.abs(obs2["image"].astype(int) - img.astype(int)).mean() > 1.0


def test_stand_vs_lying(env):
    up, lying = _pose(env, **UPRIGHT), _pose(env, **LYING)
    assert up["stand"] == pytest.approx(1.0)
    assert up["stand"] > up["lying_down"]
    assert lying["lying_down"] > lying["stand"]
    assert lying["lying_down"] > 0.9


def test_stand_has_no_velocity_indicator(env):
    # The official stand multiplies by I[vx >= 0] (listed bug); ours is the plain stand reward.
    r = _pose(env, qvel={"rootx": -1.0})
    assert r["stand"] == pytest.approx(1.0)


def test_hands_up(env):
    down = _pose(env)["hands_up"]
    raised = _pose(env, left_shoulder=np.radians(100), right_shoulder=np.radians(100), left_elbow=1.2,
                   right_elbow=1.2)
    assert env.physics.data.ptr.body("left_hand").xpos[2] > env.physics.data.ptr.body("head").xpos[2]
    assert raised["hands_up"] > 0.95 > down + 0.5


def test_headstand_inverted(env):
    up, inv = _pose(env, **UPRIGHT), _pose(env, **INVERTED)
    assert inv["headstand"] > 0.8 > up["headstand"]
    assert inv["flipping"] > up["flipping"]


def test_boxing_hand_velocity(env):
    still = _pose(env)["boxing"]
    punch = _pose(env, qvel={"right_shoulder": 15.0})
    assert abs(env.physics.data.ptr.body("right_hand").subtree_linvel[0]) > 5.0
    assert punch["boxing"] > 0.9 and still == pytest.approx(0.0)


def test_hand_velocity_valid_after_step(env):
    """subtree_linvel read by boxing is up to date after a normal env step (finite-difference check)."""
    import mujoco

    env.reset(seed=1)
    for _ in range(5):
        env.step(env.action_space.sample())
    m, d = env.physics.model.ptr, env.physics.data.ptr
    v = d.body("left_hand").subtree_linvel.copy()
    x0 = d.body("left_hand").xipos.copy()
    qpos = d.qpos.copy()
    eps = 1e-6
    mujoco.mj_integratePos(m, d.qpos, d.qvel, eps)
    mujoco.mj_kinematics(m, d)
    fd = (d.body("left_hand").xipos - x0) / eps
    d.qpos[:] = qpos
    env.physics.forward()
    np.testing.assert_allclose(v, fd, atol=1e-3 * max(1.0, np.abs(fd).max()))
