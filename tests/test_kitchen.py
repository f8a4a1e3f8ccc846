"""Tests of the Franka kitchen domain (``genrl.envs.kitchen``)."""

import numpy as np
import pytest

from genrl.envs.kitchen import DOMAIN, TASKS, KitchenEnv, patch_gymnasium_robotics

TASK_NAMES = ("microwave", "light", "burner", "slide")


@pytest.fixture(scope="module")
def env():
    e = DOMAIN.make_env("microwave", seed=0)
    yield e
    e.close()


def test_domain_attributes():
    assert DOMAIN.name == "kitchen"
    for t in TASK_NAMES:
        assert t in DOMAIN.tasks
    assert patch_gymnasium_robotics() in (True, False)  # idempotent: a second call is harmless
    assert patch_gymnasium_robotics() in (True, False)


@pytest.mark.parametrize("task", TASK_NAMES)
def test_reset_step_all_tasks(task):
    env = DOMAIN.make_env(task, seed=1)
    try:
        obs, info = env.reset()
        assert obs["image"].shape == (64, 64, 3) and obs["image"].dtype == np.uint8
        assert obs["image"].std() > 5  # not blank
        assert obs["state"].dtype == np.float32 and obs["state"].shape == env.observation_space["state"].shape
        assert env.action_space.shape == (9,)
        for _ in range(3):
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert obs["image"].shape == (64, 64, 3) and obs["image"].dtype == np.uint8
        assert reward in (0.0, 1.0) and not terminated and not truncated
        for t in TASK_NAMES:
            assert info["rewards"][t] in (0.0, 1.0)
            assert info["rewards"][f"{t}_dense"] <= 0.0
            assert isinstance(info["success"][t], bool)
        for key in ("microwave_angle", "light_switch", "bottom_burner_knob", "slide_cabinet", "ee_x", "ee_y", "ee_z",
                    "gripper_opening"):
            assert np.isfinite(info["physics"][key])
        assert info["task"] == f"kitchen_{task}"
        assert env.observation_space.contains(obs)
    finally:
        env.close()


def test_image_changes_when_arm_moves(env):
    obs0, info0 = env.reset(seed=3)
    action = np.zeros(9, dtype=np.float32)
    action[0], action[1], action[3] = 1.0, 1.0, 1.0
    for _ in range(8):
        obs, _, _, _, info = env.step(action)
    ee0 = np.array([info0["physics"][k] for k in ("ee_x", "ee_y", "ee_z")])
    ee1 = np.array([info["physics"][k] for k in ("ee_x", "ee_y", "ee_z")])
    assert np.linalg.norm(ee1 - ee0) > 0.05
    diff = np.abs(obs["image"].astype(int) - obs0["image"].astype(int))
    assert diff.mean() > 1.0


def test_seeding(env):
    a, _ = env.reset(seed=7)
    b, _ = env.reset(seed=7)
    np.testing.assert_array_equal(a["state"], b["state"])
    np.testing.assert_array_equal(a["image"], b["image"])
    c, _ = env.reset(seed=8)
    assert not np.array_equal(a["state"], c["state"])
    assert not np.allclose(a["state"][:7], c["state"][:7], atol=1e-3)  # different arm start, not just obs noise
    # same seed -> same trajectory
    env.reset(seed=7)
    s1 = [env.step(np.full(9, 0.3))[0]["state"] for _ in range(2)]
    env.reset(seed=7)
    s2 = [env.step(np.full(9, 0.3))[0]["state"] for _ in range(2)]
    np.testing.assert_array_equal(s1[-1], s2[-1])


def test_wrong_action_shape(env):
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"\(9,\)"):
        env.step(np.zeros(8))
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.full(9, np.nan))


def test_unknown_task():
    with pytest.raises(ValueError, match="microwave") as exc:
        DOMAIN.make_env("kettle_fly")
    for t in TASK_NAMES:
        assert t in str(exc.value)


def test_microwave_success_sparse_reward(env):
    obs, info = env.reset(seed=0)
    assert not any(info["success"].values())
    closed = obs["image"]
    goal = TASKS["microwave"].goal[0]
    assert goal == -0.75
    opened = env.set_object_state(microwave=goal)["image"]
    assert np.abs(opened.astype(int) - closed.astype(int)).mean() > 0.5  # the open door is visible
    zero = np.zeros(9)
    _, reward, terminated, truncated, info = env.step(zero)
    assert info["success"]["microwave"] and info["rewards"]["microwave"] == 1.0
    assert not info["success"]["light"] and info["rewards"]["light"] == 0.0
    assert info["rewards"]["microwave_dense"] > -TASKS["microwave"].threshold * 2
    assert reward == 1.0 and not terminated and not truncated
    _, reward2, _, _, info2 = env.step(zero)  # still open: success indicator stays, sparse reward capped at 1
    assert info2["rewards"]["microwave"] == 1.0 and reward2 == 0.0


def test_terminate_on_success_and_episode_length():
    env = KitchenEnv("slide", seed=0, terminate_on_success=True, episode_steps=3)
    try:
        env.reset()
        env.set_object_state(slide=0.37)
        _, reward, terminated, truncated, info = env.step(np.zeros(9))
        assert reward == 1.0 and terminated and info["success"]["slide"]
        env.reset()
        flags = [env.step(np.zeros(9))[3] for _ in range(3)]
        assert flags == [False, False, True]
    finally:
        env.close()


def test_episode_steps_default():
    assert DOMAIN.episode_steps == 140


def test_light_switch_visible(env):
    """Without shadows the lamp's spot light is emulated: switching the light on brightens the stove area."""
    obs, _ = env.reset(seed=0)
    on = env.set_object_state(light=TASKS["light"].goal)["image"]
    diff = on.astype(int) - obs["image"].astype(int)
    assert diff.mean() > 1.0 and (np.abs(diff).sum(-1) > 30).sum() > 50


def test_state_only_env():
    env = KitchenEnv("light", seed=0, render=None)
    try:
        obs, _ = env.reset(seed=4)
        assert set(obs) == {"state"} and set(env.observation_space.spaces) == {"state"}
        obs2, *_ = env.step(np.zeros(9))
        assert env.observation_space.contains(obs2)
        with pytest.raises(RuntimeError, match="render=None"):
            env.render()
        rendered = DOMAIN.make_env("light", seed=0)
        try:
            np.testing.assert_array_equal(rendered.reset(seed=4)[0]["state"], obs["state"])  # same physics
        finally:
            rendered.close()
    finally:
        env.close()
