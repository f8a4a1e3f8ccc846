"""Environment API for every DMC-physics task: construction, rendering, seeding, errors, posed-reward rankings."""

import gymnasium as gym
import numpy as np
import pytest

from genrl.envs import list_tasks, make, normalized_score, register_gymnasium
from genrl.envs import cheetah, quadruped
from genrl.envs.rendering import FastCamera, RenderSettings

DMC_DOMAINS = ("walker", "cheetah", "quadruped", "stickman")
DMC_TASKS = [t for d in DMC_DOMAINS for t in list_tasks(d)]


@pytest.mark.parametrize("task", DMC_TASKS)
def test_every_task_resets_steps_and_renders(task):
    env = make(task, seed=1)
    obs, info = env.reset()
    first = obs["image"]
    assert first.shape == (64, 64, 3) and first.dtype == np.uint8
    assert first.std() > 5, "blank frame"
    assert obs["state"].dtype == np.float32 and obs["state"].shape == env.observation_space["state"].shape
    assert set(info["rewards"]) == set(env.domain.tasks) and info["physics"]["torso_height"] > 0
    total = 0.0
    for _ in range(10):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        total += reward
        assert not terminated and not truncated and np.isfinite(reward)
    assert np.isfinite(total)
    assert info["rewards"][env.task] == pytest.approx(reward)
    assert np.abs(obs["image"].astype(int) - first.astype(int)).mean() > 0.5, "frame did not change as the body moved"
    env.close()


def test_episode_length_and_action_repeat():
    env = make("walker_stand", seed=0)
    env.reset()
    assert env.episode_steps == 500 and env.action_repeat == 2
    t0 = env.physics.data.time
    env.step(np.zeros(6))
    assert env.physics.data.time - t0 == pytest.approx(2 * 0.025)
    steps, truncated = 1, False
    while not truncated:
        _, _, terminated, truncated, _ = env.step(np.zeros(6))
        steps += 1
        assert not terminated
    assert steps == 500
    env.close()


@pytest.mark.parametrize("task", ["walker_walk", "cheetah_run", "quadruped_walk", "stickman_stand"])
def test_seeding(task):
    a, b, c = make(task, seed=3), make(task, seed=3), make(task, seed=4)
    oa, ob, oc = a.reset()[0], b.reset()[0], c.reset()[0]
    np.testing.assert_array_equal(oa["image"], ob["image"])
    np.testing.assert_array_equal(oa["state"], ob["state"])
    assert not np.allclose(oa["state"], oc["state"])
    # reset(seed=...) re-seeds: the same seed twice gives the same initial state
    np.testing.assert_array_equal(a.reset(seed=9)[0]["state"], c.reset(seed=9)[0]["state"])
    for e in (a, b, c):
        e.close()


def test_camera_returns_copies_not_a_shared_buffer():
    env = make("walker_walk", seed=0)
    first = env.reset()[0]["image"]
    kept = first.copy()
    for _ in range(5):
        env.step(np.ones(6))
    second = env.render()
    assert not np.array_equal(second, kept)
    np.testing.assert_array_equal(first, kept)  # rendering again did not overwrite the earlier frame
    env.close()


def test_fast_camera_refuses_existing_context():
    from genrl.envs.walker import DOMAIN
    p = DOMAIN.make_physics()
    p.render(8, 8)
    with pytest.raises(RuntimeError, match="GL context"):
        FastCamera(p, 0, RenderSettings())


def test_invalid_task_and_action_errors():
    with pytest.raises(ValueError, match="walker_walk") as err:
        make("walker_flyy")
    assert "valid walker tasks" in str(err.value)
    with pytest.raises(ValueError, match="valid tasks"):
        make("dragon_fly")
    env = make("walker_walk", seed=0)
    env.reset()
    with pytest.raises(ValueError, match=r"shape \(6,\)"):
        env.step(np.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.full(6, np.nan))
    env.close()


def test_gymnasium_registration():
    register_gymnasium()
    env = gym.make("genrl/walker_walk-v0")
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (64, 64, 3)
    env.close()


@pytest.mark.filterwarnings("ignore:.*Box observation space m")  # the state's unbounded Box
def test_gymnasium_render_mode_episode_length_and_checker():
    from gymnasium.utils.env_checker import check_env
    from gymnasium.wrappers import PassiveEnvChecker

    register_gymnasium()
    # the episode length after action repeat, where the env truncates itself
    assert gym.spec("genrl/walker_walk-v0").max_episode_steps == 500
    assert gym.spec("genrl/kitchen_light-v0").max_episode_steps == 140
    assert not gym.spec("genrl/walker_walk-v0").disable_env_checker
    env = gym.make("genrl/walker_walk-v0", render_mode="rgb_array")  # what RecordVideo needs
    assert env.render_mode == "rgb_array"
    wrapper, found = env, False
    while hasattr(wrapper, "env"):
        found |= isinstance(wrapper, PassiveEnvChecker)
        wrapper = wrapper.env
    assert found
    obs, _ = env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
    np.testing.assert_array_equal(frame, obs["image"])
    check_env(env.unwrapped)
    env.close()
    quiet = make("walker_walk", render_mode=None)
    assert quiet.render_mode is None
    quiet.close()
    with pytest.raises(ValueError, match="render_mode must be one of"):
        gym.make("genrl/walker_walk-v0", render_mode="human")


def test_normalized_score():
    assert normalized_score("walker_walk", 45) == pytest.approx(0.0)
    assert normalized_score("walker_walk", 960) == pytest.approx(1.0)
    assert normalized_score("kitchen_light", 1) == pytest.approx(1.0)
    with pytest.raises(KeyError, match="walker_walk"):
        normalized_score("walker_fly", 3)


# -- posed rewards ---------------------------------------------------------------------------------------------
def _pose(env, qpos=None, qvel=None, floor=None):
    """Set named joint positions/velocities (others 0) and return every task's reward.

    ``floor``: if given, shift the root so that the lowest of these bodies sits at 5 cm.
    """
    p = env.physics
    with p.reset_context():  # zero state (mj_resetData), then forward kinematics on exit
        p.data.qpos[:] = 0.0
        if env.domain.name == "quadruped":
            p.data.qpos[3] = 1.0  # identity quaternion
        for name, value in (qpos or {}).items():
            p.data.ptr.joint(name).qpos[:] = value
    if floor is not None:
        low = min(p.data.ptr.body(b).xpos[2] for b in floor)
        p.data.ptr.joint("rootz").qpos[0] += 0.05 - low
    for name, value in (qvel or {}).items():
        p.data.ptr.joint(name).qvel[:] = value
    p.forward()
    return env.all_rewards()


WALKER_UPRIGHT = {}
WALKER_LYING = {"rootz": -1.22, "rooty": np.pi / 2}
WALKER_ONE_FOOT = {"right_hip": np.pi / 2}
WALKER_INVERTED = {"rootz": -0.2, "rooty": np.pi}


@pytest.fixture(scope="module")
def walker():
    env = make("walker_stand", seed=0)
    yield env
    env.close()


def test_walker_stand_vs_lying(walker):
    up = _pose(walker, WALKER_UPRIGHT)
    lying = _pose(walker, WALKER_LYING)
    assert up["stand"] > 0.9 and up["stand"] > up["lying_down"]
    assert lying["lying_down"] > 0.8 and lying["lying_down"] > lying["stand"]


def test_walker_one_foot_and_high_kick(walker):
    one = _pose(walker, WALKER_ONE_FOOT)
    up = _pose(walker, WALKER_UPRIGHT)
    assert one["one_foot"] > 0.8 and up["one_foot"] < 0.1
    assert one["high_kick"] > up["high_kick"]


def test_walker_flipping_rewards_both_directions(walker):
    still = _pose(walker, WALKER_INVERTED)
    fwd = _pose(walker, WALKER_INVERTED, qvel={"rooty": 30.0})
    bwd = _pose(walker, WALKER_INVERTED, qvel={"rooty": -30.0})
    assert fwd["flipping"] > still["flipping"] + 0.3 and bwd["flipping"] > still["flipping"] + 0.3
    assert fwd["flip"] > fwd["backflip"] and bwd["backflip"] > bwd["flip"]
    assert still["headstand"] > _pose(walker, WALKER_UPRIGHT)["headstand"]


def test_walker_standard_tasks_match_dm_control(walker):
    from dm_control import suite

    rng = np.random.default_rng(0)
    walker.reset(seed=5)
    envs = {t: suite.load("walker", t, task_kwargs={"random": 0}) for t in ("stand", "walk", "run")}
    for _ in range(25):
        walker.step(rng.uniform(-1, 1, 6))
        for name, dm_env in envs.items():
            dm_env.physics.data.qpos[:] = walker.physics.data.qpos
            dm_env.physics.data.qvel[:] = walker.physics.data.qvel
            dm_env.physics.forward()
            expected = dm_env.task.get_reward(dm_env.physics)
            assert walker.domain.tasks[name](walker.physics) == pytest.approx(expected, abs=1e-9)


def test_cheetah_standing_lying_and_flips():
    env = make("cheetah_standing", seed=0)
    feet = ("bfoot", "ffoot", "bthigh", "fthigh", "torso")
    flat = _pose(env, {}, floor=feet)
    hind = _pose(env, {"rooty": -np.pi / 2}, floor=feet)
    back = _pose(env, {"rooty": np.pi}, floor=feet)
    assert hind["standing"] > 0.8 and hind["standing"] > flat["standing"] + 0.5
    assert back["lying_down"] > flat["lying_down"] and back["lying_down"] > 0.7
    spin_f = _pose(env, {}, qvel={"rooty": 40.0})
    spin_b = _pose(env, {}, qvel={"rooty": -40.0})
    assert spin_f["flipping"] > 0.5 and spin_b["flipping"] > 0.5, "flipping must reward both directions"
    assert spin_f["flip"] > spin_f["flip_backward"] and spin_b["flip_backward"] > spin_b["flip"]
    env.close()


def test_quadruped_stand_lie_down_and_two_legs_margin(monkeypatch):
    env = make("quadruped_stand", seed=0)
    up = _pose(env, {"root": [0, 0, 0.6, 1, 0, 0, 0]})
    flipped = _pose(env, {"root": [0, 0, 0.6, 0, 1, 0, 0]})  # upside down
    low = _pose(env, {"root": [0, 0, 0.1, 1, 0, 0, 0]})
    assert up["stand"] > 0.99 and flipped["stand"] < 0.01
    assert low["lie_down"] > 0.99 and up["lie_down"] < low["lie_down"]
    # two_legs has a real margin: toes half-way up give a partial reward (the official floor-division made it 0)
    monkeypatch.setattr(quadruped, "_toe_heights", lambda p: np.array([0.05, 0.05, 0.6, 0.6]))
    partial = quadruped.two_legs(env.physics)
    monkeypatch.setattr(quadruped, "_toe_heights", lambda p: np.array([0.05, 0.05, 0.9, 0.9]))
    full = quadruped.two_legs(env.physics)
    assert 0.1 < partial < full == pytest.approx(1.0)
    env.close()


def test_cheetah_floor_is_enlarged():
    p = cheetah.DOMAIN.make_physics()
    assert p.named.model.geom_size["ground", 0] == pytest.approx(200)
