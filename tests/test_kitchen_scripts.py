"""Scripted kitchen demonstrations (``genrl.data.kitchen_scripts``) and their place in the kitchen collection plan."""

from collections import Counter

import mujoco
import numpy as np
import pytest

from genrl.data.collect import SCRIPTED_CYCLE, plan, run_job
from genrl.data.episode import load_episode
from genrl.data.kitchen_scripts import SCRIPTS, SOURCES, KitchenScriptedPolicy, scripted_episode
from genrl.envs.kitchen import TASKS, KitchenEnv

TASK_NAMES = ("microwave", "light", "burner", "slide")


@pytest.fixture(scope="module")
def envs():
    """One state-only env per task (no renderer: the scripts only read the state)."""
    made = {task: KitchenEnv(task, render=None) for task in TASK_NAMES}
    yield made
    for env in made.values():
        env.close()


def _episode(env, source, seed, noise=0.1, steps=None, stop_at_success=False):
    """(solved at some step, first success step, actions, start distance, end distance) of a scripted attempt."""
    r = scripted_episode(env, source, noise, seed, steps=steps, stop_at_success=stop_at_success)
    return r["solved"], r["step"], r["actions"], r["start_distance"], r["distance"]


@pytest.mark.parametrize("task", TASK_NAMES)
def test_full_attempt_solves_the_task(envs, task):
    solved, first, actions, _, _ = _episode(envs[task], "scripted", seed=0, stop_at_success=True)
    assert solved, f"{task}: the full scripted attempt did not solve the task within the episode"
    assert first < envs[task].episode_steps
    assert actions.dtype == np.float32 and actions.shape[1] == 9 and np.all(np.abs(actions) <= 1)


@pytest.mark.parametrize("task", ["light", "burner"])  # the two fastest-moving objects
def test_stopped_attempt_moves_the_object_but_does_not_solve(envs, task):
    solved, _, _, start, end = _episode(envs[task], "scripted-stop", seed=3, steps=90)
    assert not solved
    assert end < start - 0.02  # partway: the object did move towards its goal


@pytest.mark.parametrize("task", ["microwave", "slide"])
def test_missed_attempt_leaves_the_object(envs, task):
    solved, _, _, start, end = _episode(envs[task], "scripted-miss", seed=1, steps=90)
    assert not solved and abs(end - start) < 0.05


def test_deterministic_given_a_seed(envs):
    env = envs["slide"]
    _, _, a, _, _ = _episode(env, "scripted", seed=5, steps=12)
    _, _, b, _, _ = _episode(env, "scripted", seed=5, steps=12)
    _, _, c, _, _ = _episode(env, "scripted", seed=6, steps=12)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    stop1, stop2 = (KitchenScriptedPolicy(env.model, "slide", "scripted-stop", seed=9) for _ in range(2))
    assert stop1.stop_fraction == stop2.stop_fraction
    miss1, miss2 = (KitchenScriptedPolicy(env.model, "slide", "scripted-miss", seed=9) for _ in range(2))
    np.testing.assert_array_equal(miss1.miss, miss2.miss)
    assert 0.08 <= -miss1.miss[1] <= 0.12


def test_postures_reach_the_pre_grasp_pose(envs):
    """Each task's stored posture puts the hand near its first Cartesian target (kinematics only, no physics)."""
    for task in TASK_NAMES:
        env = envs[task]
        obs, _ = env.reset(seed=0)
        policy = KitchenScriptedPolicy(env.model, task, "scripted", 0.0, 0)
        state = obs["state"].astype(np.float64)
        state[:7] = SCRIPTS[task].posture
        policy._load_state(state)
        policy.phase = "pre"
        target, _, _, _ = policy._target()
        assert np.linalg.norm(target - policy._data.site_xpos[policy._site]) < 0.02, task


def test_bad_arguments_give_one_line_errors(envs):
    model = envs["light"].model
    with pytest.raises(ValueError, match="unknown kitchen task 'kettle'") as err:
        KitchenScriptedPolicy(model, "kettle")
    assert "\n" not in str(err.value) and all(t in str(err.value) for t in TASK_NAMES)
    with pytest.raises(ValueError, match="scripted-stop"):
        KitchenScriptedPolicy(model, "light", source="scripted-late")
    with pytest.raises(ValueError, match="noise"):
        KitchenScriptedPolicy(model, "light", noise=-0.1)
    with pytest.raises(ValueError, match="59-d state"):
        KitchenScriptedPolicy(model, "light")(0, np.zeros(9))
    with pytest.raises(ValueError, match="end_effector"):
        KitchenScriptedPolicy(mujoco.MjModel.from_xml_string("<mujoco><worldbody/></mujoco>"), "light")


def test_kitchen_plan_proportions_and_names():
    jobs = plan("kitchen", 320)
    assert plan("kitchen", 100) == jobs[:100]  # grows at the end only
    sources = Counter(j.source for j in jobs)
    assert sources["random"] + sources["smooth"] == 160  # 50 % exploration
    scripted = [j for j in jobs if j.source in SOURCES]
    assert len(scripted) == 160
    per_task = Counter(j.task for j in scripted)
    assert per_task == {t: 40 for t in TASK_NAMES}  # 12.5 % of the episodes per task
    for task in TASK_NAMES:
        kinds = Counter(j.source for j in scripted if j.task == task)
        assert kinds == {"scripted": 30, "scripted-stop": 5, "scripted-miss": 5}  # 25 % partial
    assert SCRIPTED_CYCLE.count("scripted") == 6 and len(SCRIPTED_CYCLE) == 8
    job = next(j for j in jobs if j.source == "scripted-stop")
    assert job.name == f"{job.index:06d}-scripted-stop-kitchen_{job.task}"
    meta = job.meta()
    assert meta["source"] == "scripted-stop" and meta["subset"] == f"kitchen {job.task}" and meta["task"] == job.task
    assert "stops partway" in meta["policy"] and meta["noise"] == 0.1
    expl = next(j for j in jobs if j.source == "random")
    assert expl.meta()["subset"] == "kitchen expl" and expl.name == f"{expl.index:06d}-random"
    assert len({j.name for j in jobs}) == len(jobs) and set(TASKS) == set(TASK_NAMES)


def test_scripted_job_writes_a_rendered_episode(tmp_path):
    job = next(j for j in plan("kitchen", 16) if j.source == "scripted" and j.task == "slide")
    name, meta, length = run_job(job, str(tmp_path))
    assert name == f"{job.index:06d}-scripted-kitchen_slide" and meta["source"] == "scripted"
    ep = load_episode(tmp_path / f"{name}.npz")
    assert length == 141 and ep["observation"].shape == (141, 3, 64, 64)
    assert ep["reward"].sum() == 1.0  # solved (sparse success reward)
    assert np.all(np.abs(ep["action"]) <= 1) and not ep["action"][0].any()
