"""VLM-reward baselines: rewards, frame-stack replay, IQL / TD3+BC / TD3 updates, training + resume, compare, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from genrl.app.cli import main
from genrl.baselines.algos import BaselineAgent, PixelPolicy, make_config
from genrl.baselines.replay import FrameStackReplay, to_torch
from genrl.baselines.rewards import image_embedder_id, label_rewards, prompt_embedding, vlm_rewards
from genrl.baselines.train import BaselineConfig, load_agent, train_baseline
from genrl.data.dataset import Dataset, DatasetError
from genrl.evaluation.compare import compare, mean_stderr
from genrl.evaluation.paper_results import TABLE1, TABLE5, TABLE5_OVERALL
from genrl.utils.eval_metrics import EVAL_METRICS
from genrl.utils.runtime import ResumeMismatchError
from genrl.vlm.base import sliding_clips
from genrl.vlm.config import minivlm_preset
from genrl.vlm.embed import embed_dataset
from genrl.vlm.minivlm import MiniVLM, MiniVLMEmbedder, save_minivlm

TINY_VLM = minivlm_preset("tiny")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny networks run fastest on one thread (and the test machine's cores are shared); restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_episode(length, action_dim, image=64, seed=0, actions=None):
    rng = np.random.default_rng(seed)
    flags = np.zeros(length, bool)
    first, last = flags.copy(), flags.copy()
    first[0], last[-1] = True, True
    action = rng.uniform(-1, 1, (length, action_dim)).astype(np.float32) if actions is None else actions
    action[0] = 0
    return {"observation": rng.integers(0, 256, (length, 3, image, image), dtype=np.uint8), "action": action,
            "reward": np.zeros((length, 1), np.float32), "discount": np.ones((length, 1), np.float32),
            "is_first": first, "is_last": last, "is_terminal": flags.copy()}


@pytest.fixture(scope="module")
def walker(tmp_path_factory):
    """A 3-episode walker dataset of random 64x64 frames, embedded with a tiny random MiniVLM (k = 4)."""
    root = tmp_path_factory.mktemp("baselines")
    ds = Dataset.create(root / "walker", "walker", action_dim=6)
    for i in range(3):
        ds.add(f"ep{i}", make_episode(16, 6, seed=i), {"source": "random"})
    torch.manual_seed(0)
    save_minivlm(MiniVLM(TINY_VLM), root / "vlm", half=False)
    vlm = MiniVLMEmbedder(root / "vlm")
    embed_dataset(ds, vlm, progress=False)
    return root, ds, vlm


def test_rewards_are_the_cosines_of_prompt_and_frames(walker):
    _, ds, vlm = walker
    text = vlm.embed_text(["walk fast clean"])[0]
    frames = ds.load("ep1")["observation"].transpose(0, 2, 3, 1)
    steps = [0, 2, 9, 15]
    video, info = vlm_rewards(ds, vlm, "walk fast clean", "video", progress=False)
    direct = vlm.embed_video(sliding_clips(frames, 4, np.array(steps))) @ text  # clips ending at each step
    np.testing.assert_allclose(video["ep1"][steps], direct.numpy(), atol=3e-3)
    image, info = vlm_rewards(ds, vlm, "walk fast clean", "image", progress=False)
    assert info["reward_embedder_id"] == image_embedder_id(vlm) == f"{vlm.id}-image"
    assert ds.embedding_coverage(f"{vlm.id}-image") == (3, 3)  # cached for the next prompt / algorithm
    static = np.repeat(frames[steps][:, None], 4, axis=1)  # the frame as a still clip of k frames
    np.testing.assert_allclose(image["ep1"][steps], (vlm.embed_video(static) @ text).numpy(), atol=3e-3)
    assert not np.allclose(image["ep1"], video["ep1"], atol=1e-3)
    again = label_rewards(ds, f"{vlm.id}-image", prompt_embedding(vlm, "walk fast clean"))
    np.testing.assert_array_equal(again["ep0"], image["ep0"])
    stored, info = vlm_rewards(ds, vlm, "walk fast clean", "image", progress=False, embedding_id=vlm.id)
    assert info["reward_embedder_id"] == vlm.id and np.array_equal(stored["ep2"], video["ep2"])  # --embeddings ID


def test_video_reward_without_embeddings_says_run_genrl_embed(walker, tmp_path):
    _, ds, vlm = walker
    other = Dataset.create(tmp_path / "w", "walker", action_dim=6)
    other.add("ep0", make_episode(8, 6))
    with pytest.raises(DatasetError, match="genrl embed"):
        vlm_rewards(other, vlm, "walk", "video", progress=False)


def test_replay_stacks_never_cross_episode_starts():
    lengths = [4, 5]
    obs = [np.full((n, 3, 2, 2), 0, np.uint8) + np.arange(n, dtype=np.uint8)[:, None, None, None] + 10 * e
           for e, n in enumerate(lengths)]
    acts = [np.arange(n, dtype=np.float32)[:, None] + 100 * e for e, n in enumerate(lengths)]
    first = [np.eye(1, n, 0, dtype=bool)[0] for n in lengths]
    first[1][3] = True  # a second segment inside episode 1 (entries 3-4)
    term = [np.zeros(n, bool) for n in lengths]
    term[0][3] = True
    rew = [np.arange(n, dtype=np.float32) + 0.5 for n in lengths]
    rb = FrameStackReplay(obs, acts, first, term, rew, names=["a", "b"], frame_stack=3)
    # transitions from: a0 a1 a2 | b0 b1 (b2 -> b3 crosses the is_first) | b3
    assert rb.sources.tolist() == [0, 1, 2, 4, 5, 7]
    b = rb.batch(np.arange(len(rb)))
    firsts = b["obs"][:, ::3, 0, 0]  # frame values of the 3 stacked frames (channel 0 of each)
    assert firsts.tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 2], [10, 10, 10], [10, 10, 11], [13, 13, 13]]
    assert b["next_obs"][:, ::3, 0, 0].tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 3], [10, 10, 11], [10, 11, 12],
                                                   [13, 13, 14]]
    assert b["action"][:, 0].tolist() == [1, 2, 3, 101, 102, 104]  # the action that led to the next entry
    assert b["reward"].tolist() == [1.5, 2.5, 3.5, 1.5, 2.5, 4.5]
    assert b["done"].tolist() == [0, 0, 1, 0, 0, 0]
    assert b["obs"].shape == (6, 9, 2, 2) and b["obs"].dtype == np.uint8


def _synthetic_replay(n_eps=6, length=40, seed=0, target=(0.6, -0.6), constant=False):
    """2-d actions, 16x16 random (or constant) frames, half the actions near ``target``; reward 1 for arriving via
    an action within 0.25 of ``target``. With constant frames the critic must read the action (with random
    frames every state is unique and a small critic can memorize the reward from the image alone)."""
    rng = np.random.default_rng(seed)
    obs, acts, first, term, rews = [], [], [], [], []
    for e in range(n_eps):
        ep = make_episode(length, 2, image=16, seed=100 + e)
        if constant:
            ep["observation"][:] = 128
        near = rng.random(length) < 0.5
        ep["action"][near] = np.clip(np.asarray(target) + rng.normal(0, 0.05, (near.sum(), 2)), -1, 1)
        r = (np.linalg.norm(ep["action"] - np.asarray(target), axis=1) < 0.25).astype(np.float32)
        obs.append(ep["observation"]), acts.append(ep["action"]), first.append(ep["is_first"])
        term.append(ep["is_terminal"]), rews.append(r)
    return FrameStackReplay(obs, acts, first, term, rews, frame_stack=3, seed=seed)


def _train(algo, replay, steps, **over):
    torch.manual_seed(0)
    agent = BaselineAgent(make_config(algo, "tiny", encoder_strides=(2, 2), **over), replay.action_dim, image_size=16)
    opts = agent.make_optimizers()
    history = []
    for step in range(steps):
        history.append(agent.update(to_torch(replay.sample(64)), opts, step))
    return agent, history


@pytest.mark.parametrize("algo", ["iql", "td3bc", "td3"])
def test_losses_fall(algo):
    replay = _synthetic_replay()
    _, hist = _train(algo, replay, 120, gamma=0.5)
    crit = [h["critic_loss"] for h in hist]
    assert np.mean(crit[-20:]) < 0.5 * np.mean(crit[:10]), crit[::10]
    # IQL's expectile value loss falls; TD3+BC's actor loss (normalized Q + BC) too. (IQL's weighted NLL is not
    # comparable over training: its weights exp(3 A) grow as the critic learns.)
    key = {"iql": "value_loss", "td3bc": "actor_loss"}.get(algo)
    if key:
        vals = [h[key] for h in hist if key in h]
        assert np.mean(vals[-10:]) < np.mean(vals[:5]), vals[::5]


@pytest.mark.parametrize("algo", ["iql", "td3bc"])
def test_learns_to_prefer_the_rewarded_action(algo):
    target = np.array([0.6, -0.6])
    replay = _synthetic_replay(target=tuple(target), constant=True)
    agent, _ = _train(algo, replay, 250, gamma=0.5, lr=3e-3)
    batch = replay.sample(128)
    action = agent.act(torch.from_numpy(batch["obs"])).numpy()
    data_mean = replay.action[replay.sources + 1].mean(0)  # behaviour cloning would land near here
    dist = np.linalg.norm(action - target, axis=1).mean()
    assert dist < 0.2 and dist < 0.5 * np.linalg.norm(data_mean - target), (action.mean(0), data_mean)


def test_pixel_policy_keeps_a_frame_stack_per_env():
    agent = BaselineAgent(make_config("td3", "tiny"), 2, image_size=32)
    policy = PixelPolicy(agent)
    policy.reset(2)
    imgs = np.random.default_rng(0).integers(0, 256, (3, 2, 32, 32, 3), dtype=np.uint8)
    a = policy.act(imgs[0], np.array([True, True]))
    assert a.shape == (2, 2) and a.dtype == np.float32 and np.all(np.abs(a) <= 1)
    policy.act(imgs[1], np.array([False, True]))
    s = policy.stack.transpose(0, 1, 3, 4, 2)  # [N, S, H, W, 3]
    assert np.array_equal(s[0, 0], imgs[0, 0]) and np.array_equal(s[0, 2], imgs[1, 0])
    assert all(np.array_equal(s[1, i], imgs[1, 1]) for i in range(3))  # refilled on is_first


def _cfg(root, out, steps, **kw):
    kw = {"algo": "td3bc", "reward": "video", **kw}
    return BaselineConfig(task="walker_walk", dataset=str(root / "walker"), out=str(out), steps=steps,
                          batch_size=8, save_every=3, log_every=1, eval_every=0, eval_episodes=1,
                          eval_max_steps=2, preset="tiny", **kw)


def test_training_resumes_exactly_and_writes_eval(walker, tmp_path, crash_after_save):
    root, _, vlm = walker
    rec = train_baseline(_cfg(root, tmp_path / "a", 6), vlm, progress=False)
    assert rec["step"] == 6 and rec["method"] == "td3bc" and rec["reward"] == "video" and rec["seed"] == 0
    assert rec["task"] == "walker_walk" and rec["prompt"] == "walk fast clean" and rec["max_steps"] == 2
    assert np.isfinite(rec["mean_normalized"]) and (tmp_path / "a" / "eval.mp4").is_file()

    import genrl.baselines.train as tr

    with crash_after_save(tr, 3):
        train_baseline(_cfg(root, tmp_path / "b", 6), vlm, progress=False)
    assert json.loads((tmp_path / "b" / "checkpoint" / "state.json").read_text())["step"] == 3
    train_baseline(_cfg(root, tmp_path / "b", 6), vlm, progress=False)
    a, _ = load_agent(tmp_path / "a")
    b, cfg = load_agent(tmp_path / "b")
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name
    lines = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if "train/critic_loss" in x] == [1, 2, 3, 4, 5, 6]
    # the evaluation metric names of every trainer (genrl behave logs the same: tests/test_behavior.py)
    assert {k for x in lines for k in x if k.startswith("eval/")} == {f"eval/{k}" for k in EVAL_METRICS}
    with pytest.raises(ResumeMismatchError, match="algo='td3bc' \\(this run: 'iql'\\)"):
        train_baseline(_cfg(root, tmp_path / "b", 6, algo="iql"), vlm, progress=False)
    assert train_baseline(_cfg(root, tmp_path / "a", 6), vlm, progress=False) == rec  # finished: nothing re-run


def test_eval_workers_reach_run_eval(walker, tmp_path, monkeypatch):
    """``eval_workers`` (``--eval-workers``) is passed to ``evaluate`` (the spy steps in-process: fast)."""
    import genrl.baselines.train as tr

    real, seen = tr.evaluate, []

    def spy(*args, workers=1, **kw):
        seen.append(workers)
        return real(*args, **kw, workers=1)

    monkeypatch.setattr(tr, "evaluate", spy)
    root, _, vlm = walker
    train_baseline(_cfg(root, tmp_path / "a", 2, eval_workers=2), vlm, progress=False)
    assert seen == [2]
    with pytest.raises(ValueError, match="workers must be an int >= 1"):  # refused before any training
        train_baseline(_cfg(root, tmp_path / "b", 2, eval_workers="many"), vlm, progress=False)
    assert not (tmp_path / "b" / "checkpoint").exists()


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(walker, tmp_path, monkeypatch):
    root, _, vlm = walker
    real = BaselineAgent.update

    def nan_at_step_4(self, batch, opts, step):
        out = real(self, batch, opts, step)
        if step == 4:
            out["critic_loss"] = float("nan")
        return out

    monkeypatch.setattr(BaselineAgent, "update", nan_at_step_4)
    with pytest.raises(FloatingPointError, match="last good checkpoint"):
        train_baseline(_cfg(root, tmp_path / "n", 6), vlm, progress=False)
    assert json.loads((tmp_path / "n" / "checkpoint" / "state.json").read_text())["step"] == 3
    assert not (tmp_path / "n" / "eval.json").exists()


def _fake(path, task, method, reward, seed, score, **extra):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"task": task, "method": method, "reward": reward, "seed": seed,
                                "mean_normalized": score, **extra}))


def test_compare_table_mean_stderr_and_paper_numbers(tmp_path):
    for s, v in enumerate([0.2, 0.4, 0.6]):
        _fake(tmp_path / f"iqlv{s}" / "eval.json", "walker_walk", "iql", "video", s, v)
    _fake(tmp_path / "iqlv_run" / "eval.json", "walker_run", "iql", "video", 0, 0.1)
    _fake(tmp_path / "g" / "eval.json", "walker_walk", "genrl", None, 0, 0.9)
    _fake(tmp_path / "g1" / "eval.json", "walker_walk", "genrl", None, 1, 0.8)
    _fake(tmp_path / "x.json", "walker_walk", "td3", "image", 0, 0.5, max_steps=3)
    markdown, table_csv, rows = compare([tmp_path, tmp_path / "x.json"])
    walk = next(r for r in rows if r.name == "walker_walk")
    assert walk.cells["iql-video"].mean == pytest.approx(0.4)
    assert walk.cells["iql-video"].stderr == pytest.approx(0.2 / np.sqrt(3))  # std(ddof=1) = 0.2
    assert walk.cells["genrl"].stderr == pytest.approx(0.05)
    assert "0.40 ± 0.12 [0.43 ± 0.04]" in markdown and "0.85 ± 0.05 [0.95 ± 0.03]" in markdown
    assert "0.50 (n=1)†" in markdown and "capped" in markdown
    dom = next(r for r in rows if r.kind == "domain" and r.name == "walker")
    assert dom.cells["iql-video"].mean == pytest.approx(0.25)  # mean of the task means 0.4 and 0.1
    assert dom.paper["iql-video"][0] == pytest.approx((0.43 + 0.26) / 2)
    assert "row_kind,domain,name,column" in table_csv.splitlines()[0]
    assert mean_stderr([1.0]) == (1.0, None)
    _fake(tmp_path / "dup" / "eval.json", "walker_walk", "iql", "video", 0, 0.3)
    with pytest.raises(ValueError, match="two results"):
        compare([tmp_path])


def test_paper_tables_are_consistent():
    for domain, row in TABLE1.items():
        tasks = list(TABLE5) if domain == "overall" else [t for t in TABLE5 if t.startswith(domain)]
        for col, value in row.items():
            assert abs(np.mean([TABLE5[t][col][0] for t in tasks]) - value) < 0.011, (domain, col)
    assert set(TABLE5_OVERALL) == set(TABLE1["walker"])


def test_cli_baseline_and_compare(walker, tmp_path, capsys):
    root, ds, vlm = walker
    out = tmp_path / "run"
    args = ["baseline", "--algo", "iql", "--reward", "image", "--task", "walker_stand", "--dataset",
            str(root / "walker"), "--out", str(out), "--vlm-path", str(root / "vlm"), "--steps", "2",
            "--batch-size", "4", "--eval-episodes", "1", "--eval-max-steps", "2", "--preset", "tiny", "--quiet",
            "--set", "hidden_dim=16"]
    assert main(args) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["method"] == "iql" and printed["reward"] == "image" and printed["step"] == 2
    assert json.loads((out / "config.json").read_text())["prompt"] == "standing up straight"
    assert main(["compare", str(tmp_path), "--out", str(tmp_path / "table.md")]) == 0
    assert "walker_stand" in (tmp_path / "table.md").read_text() and (tmp_path / "table.csv").is_file()
    assert main(["baseline", *args[1:5], "--task", "cheetah_run", *args[7:]]) == 2  # wrong domain: user error
