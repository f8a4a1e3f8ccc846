"""Real-environment evaluation (genrl.envs.rollout) and the world-model pixel policy (genrl.behavior.agent)."""

import json

import numpy as np
import pytest
import torch

from genrl.behavior.agent import WorldModelPolicy
from genrl.envs import make, normalized_score
from genrl.envs.rollout import BatchPolicy, ConstantPolicy, EvalResult, RandomPolicy, evaluate
from genrl.worldmodel.config import preset
from genrl.worldmodel.model import WorldModel

TASK = "walker_stand"
A = 6  # walker action size


def test_evaluate_random_policy_shapes_scores_and_determinism():
    res = evaluate(RandomPolicy(A, seed=3), TASK, episodes=2, seed=5, video_episodes=2, max_steps=20)
    assert isinstance(res, EvalResult) and res.task == TASK and res.episodes == 2 and res.seed == 5
    assert len(res.returns) == 2 and all(np.isfinite(res.returns)) and res.steps == [20, 20]
    # frames: the reset frame + one frame per agent step, both episodes side by side.
    assert res.frames.shape == (21, 64, 128, 3) and res.frames.dtype == np.uint8
    assert not np.array_equal(res.frames[0], res.frames[-1])
    assert res.normalized == pytest.approx([normalized_score(TASK, r) for r in res.returns])
    assert res.mean_return == pytest.approx(np.mean(res.returns))
    assert res.mean_normalized == pytest.approx(np.mean(res.normalized))
    assert res.stderr_normalized == pytest.approx(np.std(res.normalized, ddof=1) / np.sqrt(2))
    d = res.to_dict()
    assert "frames" not in d and json.loads(json.dumps(d))["returns"] == res.returns and d["max_steps"] == 20
    again = evaluate(RandomPolicy(A, seed=3), TASK, episodes=2, seed=5, video_episodes=0, max_steps=20)
    assert again.returns == res.returns and again.frames is None
    other = evaluate(RandomPolicy(A, seed=3), TASK, episodes=1, seed=6, video_episodes=1, max_steps=20)
    assert other.returns[0] != res.returns[0] and other.frames.shape == (21, 64, 64, 3)


def test_constant_policy_matches_manual_rollout():
    action = np.linspace(-0.8, 0.8, A).astype(np.float32)
    assert isinstance(ConstantPolicy(action), BatchPolicy)
    res = evaluate(ConstantPolicy(action), TASK, episodes=1, seed=2, video_episodes=1, max_steps=15)
    env = make(TASK, seed=2)
    try:
        obs, _ = env.reset()
        frames, total = [obs["image"]], 0.0
        for _ in range(15):
            obs, reward, _, _, _ = env.step(action)
            frames.append(obs["image"])
            total += reward
    finally:
        env.close()
    assert res.returns[0] == pytest.approx(total, rel=1e-9, abs=1e-12)
    np.testing.assert_array_equal(res.frames, np.stack(frames))


class _BadPolicy:
    def reset(self, n):
        pass

    def act(self, images, is_first):
        return np.zeros((len(images), A + 1), dtype=np.float32)


def test_bad_policy_output_and_arguments_raise():
    with pytest.raises(ValueError, match=r"_BadPolicy.*walker_stand.*\(1, 7\)"):
        evaluate(_BadPolicy(), TASK, episodes=1, max_steps=2, video_episodes=0)
    with pytest.raises(ValueError, match="episodes"):
        evaluate(RandomPolicy(A), TASK, episodes=0)
    with pytest.raises(ValueError, match="video_episodes"):
        evaluate(RandomPolicy(A), TASK, episodes=1, video_episodes=2)


def _tiny_wm():
    torch.manual_seed(0)
    return WorldModel(preset("tiny"), action_dim=A).eval()


def test_world_model_policy_filters_like_observe():
    wm = _tiny_wm()
    B, T = 2, 7
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (B, T, 64, 64, 3), dtype=torch.uint8, generator=g)
    # actions[:, t] produced observation t; actions[:, 0] is ignored (is_first).
    actions = torch.rand(B, T, A, generator=g) * 2 - 1
    is_first = torch.zeros(B, T, dtype=torch.bool)
    is_first[:, 0] = True
    is_first[1, 4] = True  # episode 1 restarts mid-sequence
    batch = {"observation": images.permute(0, 1, 4, 2, 3), "action": actions, "is_first": is_first}
    post, _ = wm.observe(batch, sample=False)
    want = wm.rssm.get_feat(post).float()  # [B, T, feat]

    step = {"t": 0}

    def act_fn(feat):  # returns the action that will produce the next observation
        t = step["t"]
        return actions[:, t + 1] if t + 1 < T else torch.zeros(B, A)

    policy = WorldModelPolicy(wm, act_fn)
    assert isinstance(policy, BatchPolicy)
    for run in range(2):  # reset(n) restarts from scratch
        policy.reset(B)
        for t in range(T):
            step["t"] = t
            out = policy.act(images[:, t].numpy(), is_first[:, t].numpy())
            assert out.shape == (B, A) and out.dtype == np.float32
            torch.testing.assert_close(policy.last_feat, want[:, t], rtol=1e-5, atol=1e-5)


def test_world_model_policy_clips_and_validates():
    wm = _tiny_wm()
    policy = WorldModelPolicy(wm, lambda feat: 5.0 * torch.randn(feat.shape[0], A))
    imgs = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    with pytest.raises(RuntimeError, match="reset"):
        policy.act(imgs, np.ones(3, bool))
    policy.reset(3)
    for first in (True, False):
        out = policy.act(imgs, np.full(3, first))
        assert out.shape == (3, A) and np.all(np.abs(out) <= 1.0) and np.abs(out).max() == 1.0
    with pytest.raises(ValueError, match="uint8"):
        policy.act(imgs[:2], np.ones(2, bool))
    bad = WorldModelPolicy(wm, lambda feat: torch.zeros(feat.shape[0], A + 2))
    bad.reset(3)
    with pytest.raises(ValueError, match=r"act_fn.*\[N=3, A=6\]"):
        bad.act(imgs, np.ones(3, bool))


def test_evaluate_world_model_policy_end_to_end():
    wm = _tiny_wm()
    policy = WorldModelPolicy(wm, lambda feat: torch.tanh(feat[:, :A] * 3))
    res = evaluate(policy, TASK, episodes=2, seed=0, video_episodes=1, max_steps=5)
    assert len(res.returns) == 2 and res.frames.shape == (6, 64, 64, 3) and res.steps == [5, 5]


def test_uneven_episode_lengths_and_tasks_without_references(monkeypatch):
    import genrl.envs.rollout as rollout

    def short_make(task, seed=None):  # episode i lasts 3 + 2 * i agent steps
        env = make(task, seed=seed)
        env.episode_steps = 3 + 2 * seed
        return env

    monkeypatch.setattr(rollout, "make", short_make)
    action = np.full(A, 0.3, dtype=np.float32)
    res = evaluate(ConstantPolicy(action), TASK, episodes=2, seed=0, video_episodes=2)
    assert res.steps == [3, 5] and res.frames.shape == (6, 64, 128, 3)
    np.testing.assert_array_equal(res.frames[3:, :, :64], np.repeat(res.frames[3:4, :, :64], 3, axis=0))
    for i, n in enumerate((3, 5)):
        env = make(TASK, seed=i)
        env.reset()
        total = sum(env.step(action)[1] for _ in range(n))
        env.close()
        assert res.returns[i] == pytest.approx(total)
    monkeypatch.undo()
    res = evaluate(RandomPolicy(A), "walker_headstand", episodes=2, max_steps=3, video_episodes=0)
    assert res.normalized is None and res.mean_normalized is None and res.stderr_normalized is None
    assert json.loads(json.dumps(res.to_dict()))["normalized"] is None


def test_eval_seeds_of_training_seeds_are_disjoint():
    from genrl.envs.rollout import eval_seed

    episodes = {s: set(range(eval_seed(s), eval_seed(s) + 10)) for s in range(5)}
    assert all(episodes[a].isdisjoint(episodes[b]) for a in episodes for b in episodes if a < b)
    assert min(eval_seed(s) for s in range(5)) >= 10_000  # above the collection episodes' seeds (0, 1, ...)


# -- parallel evaluation (genrl.envs.vector) ----------------------------------------------------------------------

def _no_live_workers():
    import multiprocessing as mp

    return [p for p in mp.active_children() if p.name.startswith("genrl-eval")] == []


@pytest.mark.parametrize("task, action_dim", [(TASK, A), ("cheetah_run", 6)])
def test_parallel_evaluate_matches_in_process(task, action_dim):
    # 3 episodes on 2 workers: chunks of 2 and 1 environments.
    kw = dict(episodes=3, seed=7, video_episodes=2, max_steps=20)
    one = evaluate(RandomPolicy(action_dim, seed=4), task, workers=1, **kw)
    two = evaluate(RandomPolicy(action_dim, seed=4), task, workers=2, **kw)
    assert two.returns == one.returns and two.steps == one.steps == [20, 20, 20]
    assert two.normalized == one.normalized and two.mean_normalized == one.mean_normalized
    assert two.frames.shape == one.frames.shape == (21, 64, 128, 3) and two.frames.dtype == np.uint8
    np.testing.assert_array_equal(two.frames, one.frames)
    assert _no_live_workers()


def test_resolve_workers():
    import os

    from genrl.envs.rollout import resolve_workers

    cpus = len(os.sched_getaffinity(0))
    assert resolve_workers(1, 10) == 1 and resolve_workers(4, 3) == 3 and resolve_workers(np.int64(2), 10) == 2
    assert resolve_workers(None, 10) == resolve_workers("auto", 10) == min(10, cpus)
    assert resolve_workers("auto", 1) == 1
    for bad in (0, -1, True, "all", 2.0):
        with pytest.raises(ValueError, match="workers"):
            resolve_workers(bad, 10)
    with pytest.raises(ValueError, match="unknown task"):
        evaluate(RandomPolicy(A), "walker_nope", episodes=2, workers=2)


def test_env_pool_masked_steps_and_worker_error():
    from genrl.envs.vector import EnvPool, WorkerError

    rng = np.random.default_rng(0)
    actions = [rng.uniform(-1, 1, (3, A)).astype(np.float32) for _ in range(3)]
    masks = [np.ones(3, bool), np.ones(3, bool), np.array([True, False, True])]
    with EnvPool(TASK, seeds=[3, 4, 5], workers=2) as pool:
        assert pool.chunks == [[0, 1], [2]] and pool.action_dim == A and pool.episode_steps == [500] * 3
        got = [pool.step(a, m) for a, m in zip(actions, masks)]
        assert got[2][0].shape == (2, 64, 64, 3) and got[2][1].dtype == np.float64 and got[2][2].dtype == bool
        bad = np.zeros((3, A), np.float32)
        bad[2, 0] = np.nan  # only episode 2 (worker 1) fails
        with pytest.raises(WorkerError, match=r"^evaluate\(walker_stand\): episode 2 \(seed 5\) failed in worker 1: "
                                              r"ValueError: walker_stand: action contains NaN") as err:
            pool.step(bad, np.ones(3, bool))
        assert "\n" not in str(err.value) and "validate_action" in err.value.remote_traceback
        assert (err.value.task, err.value.episode, err.value.seed) == (TASK, 2, 5)
        initial = pool.reset_images
    assert all(p.exitcode is not None for p in pool._procs) and _no_live_workers()
    envs = [make(TASK, seed=s) for s in (3, 4, 5)]
    try:
        np.testing.assert_array_equal(initial, np.stack([env.reset()[0]["image"] for env in envs]))
        for (images, rewards, ended), a, m in zip(got, actions, masks):
            want = [envs[i].step(a[i]) for i in np.flatnonzero(m)]
            np.testing.assert_array_equal(images, np.stack([w[0]["image"] for w in want]))
            assert rewards.tolist() == [float(w[1]) for w in want] and not ended.any()
    finally:
        for env in envs:
            env.close()


def test_parallel_evaluate_worker_failures_and_interrupt(monkeypatch):
    import multiprocessing as mp
    import os
    import signal

    from genrl.envs.vector import WorkerError

    class _KillWorker(RandomPolicy):  # kills the second worker at the third step
        steps = 0

        def act(self, images, is_first):
            self.steps += 1
            if self.steps == 3:
                os.kill(sorted(p.pid for p in mp.active_children() if p.name.startswith("genrl-eval"))[-1],
                        signal.SIGKILL)
            return super().act(images, is_first)

    with pytest.raises(WorkerError, match=r"evaluate\(walker_stand\): worker 1 .*episodes 2-3.* exit code -9"):
        evaluate(_KillWorker(A), TASK, episodes=4, max_steps=10, video_episodes=0, workers=2)
    assert _no_live_workers()

    class _Interrupt(RandomPolicy):
        def act(self, images, is_first):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate(_Interrupt(A), TASK, episodes=2, max_steps=10, video_episodes=0, workers=2)
    assert _no_live_workers()

    monkeypatch.setenv("MUJOCO_GL", "no-such-backend")  # the spawned workers cannot build an environment
    with pytest.raises(WorkerError, match=r"^evaluate\(walker_stand\): episode 0 \(seed 5\) failed in worker 0: "):
        evaluate(RandomPolicy(A), TASK, episodes=2, seed=5, max_steps=2, workers=2)
    assert _no_live_workers()
