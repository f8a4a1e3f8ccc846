"""Behavior learning in imagination: reward, alignment, actor-critic pieces, start states, training runs, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genrl.app.cli import main
from genrl.behavior.actor_critic import Actor, ActorCritic, Critic, ReturnNormalizer, lambda_returns
from genrl.behavior.config import behavior_preset
from genrl.behavior.policy import load_behavior
from genrl.behavior.reward import LatentReward, PromptTarget, aligned_indices, best_offsets, build_target, score_pairs
from genrl.behavior.starts import data_free_starts, offline_starts
from genrl.behavior.train import BehaveConfig, behave, load_policy
from genrl.mfwm.model import MFWM
from genrl.utils.eval_metrics import EVAL_METRICS
from genrl.utils.runtime import ResumeMismatchError
from genrl.worldmodel.config import preset
from genrl.worldmodel.dists import symlog, twohot, twohot_bins


def _model(seed: int = 0) -> MFWM:
    torch.manual_seed(seed)
    return MFWM(preset("tiny"), action_dim=6, embed_dim=16, n_frames=4).eval().requires_grad_(False)


def _target(model: MFWM, rows: int = 8, horizon: int = 16):
    emb = F.normalize(torch.randn(1, 16), dim=-1)
    return build_target(model, emb, rows, horizon)


def _cfg(root, out, **kw) -> BehaveConfig:
    base = dict(run=str(root / "mfwm"), out=str(out), task="walker_stand", preset="tiny", steps=4, eval_every=0,
                eval_episodes=0, log_every=1, save_every=2, seed=0, vlm="minivlm", vlm_path=str(root / "vlm"),
                device="cpu")
    base.update(kw)
    return BehaveConfig(**base)


def _lines(path):
    return [json.loads(x) for x in (path / "metrics.jsonl").read_text().splitlines()]


# ------------------------------------------------------------------------------------------------ reward
@pytest.mark.parametrize("score", ["cosine", "max_cosine"])
def test_reward_is_maximal_at_the_target(score):
    model = _model()
    target = _target(model)
    fn = LatentReward(model.wm, target, score=score, align_b=8)
    reward, offsets = fn(target.stoch)
    assert torch.allclose(reward, torch.ones_like(reward), atol=1e-5)
    assert (offsets == 0).all()
    other = F.one_hot(torch.randint(0, 4, target.stoch.shape[:-1]), 4).float()  # random latents
    worse, _ = fn(other)
    assert worse.shape == reward.shape and (worse <= 1 + 1e-6).all() and worse.mean() < 0.99


def test_scores_cosine_vs_max_cosine():
    u = torch.tensor([[1.0, 2.0, 3.0]])
    assert score_pairs(u, 2 * u, "cosine").item() == pytest.approx(1.0)
    assert score_pairs(u, 2 * u, "max_cosine").item() == pytest.approx(0.5)  # norm ratio penalty
    assert score_pairs(u, -u, "max_cosine").item() == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="unknown score"):
        score_pairs(u, u, "l2")


@pytest.mark.parametrize("shift", [0, 3, 9])  # 9 = T - b, the last valid offset (skipped by the official loop)
def test_alignment_finds_a_known_shift(shift):
    torch.manual_seed(shift)
    N, T, P, b = 3, 17, 32, 8
    target = torch.randn(N, T, P)
    agent = torch.randn(N, T, P)
    agent[:, shift:] = target[:, :T - shift]  # the agent reaches the target sequence `shift` steps late
    for kind in ("cosine", "max_cosine"):
        k = best_offsets(agent, target, b, kind)
        assert k.tolist() == [shift] * N
    idx = aligned_indices(k, T, T)
    assert idx[0].tolist() == [max(0, t - shift) for t in range(T)]
    k1 = best_offsets(agent, target, 1, "cosine")  # b = 1: where the initial target state is matched best
    assert k1.tolist() == [shift] * N


def test_alignment_switches_off_at_the_horizon():
    model = _model()
    target = PromptTarget(8, 17, 4, 4, 32)
    torch.manual_seed(1)
    target.stoch.copy_(F.one_hot(torch.randint(0, 4, (8, 17, 4)), 4).float())  # distinct states over time
    shifted = torch.cat([target.stoch[:, :1].expand(-1, 4, -1, -1), target.stoch[:, :-4]], 1)
    aligned, k = LatentReward(model.wm, target, "cosine", align_b=8)(shifted)
    assert (k == 4).all() and aligned[:, 4:].mean() > 0.999
    plain, k0 = LatentReward(model.wm, target, "cosine", align_b=16)(shifted)  # b = horizon: no alignment
    assert (k0 == 0).all() and plain[:, 4:].mean() < aligned[:, 4:].mean()


# ------------------------------------------------------------------------------------------------ actor-critic
def test_twohot_round_trip_through_the_critic_value():
    critic = Critic(feat_dim=5, layers=1, units=8)
    bins = twohot_bins(255)
    feat = torch.randn(2, 5)
    for x in (0.0, 0.37, -3.2, 150.0, -1234.5):
        weights = twohot(symlog(torch.tensor(x)), bins)
        assert weights.sum().item() == pytest.approx(1.0) and (weights > 0).sum() <= 2
        with torch.no_grad():
            critic.net[-1].bias.copy_(torch.log(weights.clamp_min(1e-30)))
        assert torch.allclose(critic.mean(feat), torch.full((2,), x), rtol=1e-4, atol=1e-4)
        assert critic.loss(feat, torch.full((2,), x)).max().item() < 1.0  # its own value is the likeliest


def test_lambda_returns_hand_computed():
    # R_2 = v_2 = 30; R_1 = 2 + 0.5 * (0.5 * 30 + 0.5 * 30) = 17; R_0 = 1 + 0.5 * (0.5 * 20 + 0.5 * 17) = 10.25
    r = torch.tensor([[1.0, 2.0, 3.0]])
    v = torch.tensor([[10.0, 20.0, 30.0]])
    assert lambda_returns(r, v, gamma=0.5, lam=0.5).tolist() == [[10.25, 17.0]]
    # gamma 1, lambda 0 (one-step TD): R_i = r_i + v_{i+1} -> [3, 3, 1]
    r, v = torch.tensor([[0.0, 1.0, 0.0, 2.0]]), torch.tensor([[4.0, 3.0, 2.0, 1.0]])
    assert lambda_returns(r, v, gamma=1.0, lam=0.0).tolist() == [[3.0, 3.0, 1.0]]
    # gamma 1, lambda 1 (Monte Carlo bootstrapped by v_3 = 1): R_2 = 0 + 1, R_1 = 1 + 1, R_0 = 0 + 2
    assert lambda_returns(r, v, gamma=1.0, lam=1.0).tolist() == [[2.0, 2.0, 1.0]]


def test_return_normalizer_percentiles_and_ema():
    norm = ReturnNormalizer(0.05, 0.95, alpha=0.01, min_scale=1.0)
    returns = torch.arange(101, dtype=torch.float32)  # 5 % / 95 % percentiles: 5 and 95
    offset, scale = norm.update(returns)
    assert offset.item() == pytest.approx(0.05) and norm.high_ema.item() == pytest.approx(0.95)
    assert scale.item() == 1.0  # 0.9 < 1: floored
    for _ in range(499):
        offset, scale = norm.update(returns)
    assert offset.item() == pytest.approx(5 * (1 - 0.99 ** 500), rel=1e-4)
    assert scale.item() == pytest.approx(90 * (1 - 0.99 ** 500), rel=1e-4)
    assert "low_ema" in norm.state_dict() and "high_ema" in norm.state_dict()


def test_actor_samples_are_bounded_and_the_mean_is_deterministic():
    torch.manual_seed(0)
    actor = Actor(feat_dim=8, action_dim=3, layers=2, units=16)
    with torch.no_grad():
        actor.std_out.bias.fill_(10.0)  # sigma -> 1: many raw samples fall outside [-1, 1]
    feat = torch.randn(512, 8)
    action, ent = actor.sample(feat)
    assert action.shape == (512, 3) and ent.shape == (512,)
    assert action.min() >= -1 and action.max() <= 1 and (action.abs() == 1).any()
    mean, std = actor(feat)
    assert torch.equal(actor.mode(feat), actor.mode(feat)) and mean.abs().max() < 1
    assert std.min() >= 0.1 - 1e-6 and std.max() <= 1.0 + 1e-6
    action.sum().backward()  # straight-through clipping keeps a gradient
    assert actor.mean_out.weight.grad.abs().sum() > 0


def test_gradients_reach_the_actor_through_the_dynamics_only():
    model = _model()
    model.requires_grad_(True)  # even trainable, the world model must get no gradient and no update
    cfg = behavior_preset("tiny")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ac = ActorCritic(cfg, model.wm.feat_dim, 6)
    opts = ac.optimizers()
    actor0 = [p.clone() for p in ac.actor.parameters()]
    reward_fn = LatentReward(model.wm, _target(model, cfg.starts), cfg.score, cfg.align_b)
    start = data_free_starts(model, cfg.starts, None)
    metrics = ac.update(model.wm, reward_fn, start, opts)
    assert metrics["actor_grad_norm"] > 0 and metrics["critic_grad_norm"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(actor0, ac.actor.parameters()))
    assert all(p.grad is None for p in model.parameters())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(not p.requires_grad for p in ac.slow_critic.parameters())
    assert int(ac.updates) == 1


def test_data_free_starts_shapes_and_no_dataset(monkeypatch):
    import genrl.data.dataset as dataset_mod
    import genrl.data.sampler as sampler_mod

    def refuse(*args, **kwargs):
        raise AssertionError("a data-free run opened a dataset")

    monkeypatch.setattr(dataset_mod.Dataset, "__init__", refuse)
    monkeypatch.setattr(sampler_mod.SequenceSampler, "__init__", refuse)
    model = _model()
    cfg = model.wm.cfg
    policy = lambda feat: torch.zeros(feat.shape[0], 6)  # noqa: E731
    for n, warmup in ((10, 5), (7, 0)):
        s = data_free_starts(model, n, policy, warmup_steps=warmup)
        assert s["deter"].shape == (n, cfg.deter) and s["stoch"].shape == (n, cfg.stoch, cfg.discrete)
        assert s["logit"].shape == (n, cfg.stoch, cfg.discrete)
        assert torch.allclose(s["stoch"], s["stoch"].round(), atol=1e-6)  # one-hot
        assert torch.allclose(s["stoch"].sum(-1), torch.ones(n, cfg.stoch))
        assert all(torch.isfinite(v).all() for v in s.values())
    assert (s["deter"] == 0).all() and not (data_free_starts(model, 4, None)["deter"] == 0).all()


def test_offline_starts_flatten_the_batch():
    model = _model()
    batch = {"observation": torch.randint(0, 256, (2, 5, 3, 64, 64), dtype=torch.uint8),
             "action": torch.rand(2, 5, 6) * 2 - 1, "is_first": torch.zeros(2, 5, dtype=torch.bool)}
    s = offline_starts(model.wm, batch)
    assert s["deter"].shape == (10, model.wm.cfg.deter) and not s["stoch"].requires_grad


# ------------------------------------------------------------------------------------------------ runs
def test_behave_raises_its_reward_and_writes_outputs(tiny_run, tmp_path):
    root, vlm = tiny_run
    out = tmp_path / "stand"
    # learning rates raised from 3e-5 so that 200 updates show progress (the critic slower than the actor)
    result = behave(_cfg(root, out, steps=200, log_every=20, save_every=100, eval_episodes=1,
                         overrides={"actor_lr": 3e-3, "critic_lr": 3e-4}), progress=False, embedder=vlm)
    assert result["step"] == 200
    rewards = [x["train/reward_imagined_mean"] for x in _lines(out) if "train/reward_imagined_mean" in x]
    assert len(rewards) == 10 and np.mean(rewards[-2:]) > np.mean(rewards[:2]) + 0.006, rewards
    for name in ("behavior.safetensors", "target.safetensors", "actor.optim.safetensors", "state.json"):
        assert (out / "checkpoint" / name).is_file()
    ev = json.loads((out / "evals" / "step_0000200.json").read_text())
    assert ev["episodes"] == 1 and len(ev["returns"]) == 1 and ev["normalized"] is not None
    assert (out / "videos" / "eval_0000200.mp4").is_file()
    # the final evaluation in the schema of `genrl compare` (training seed, method column)
    from genrl.evaluation.compare import load_eval

    final = load_eval(out / "eval.json")
    assert final.task == "walker_stand" and final.column == "genrl" and final.seed == 0
    assert final.score == ev["mean_normalized"]
    # the evaluation metric names of every trainer (genrl baseline logs the same: tests/test_baselines.py)
    assert {k for x in _lines(out) for k in x if k.startswith("eval/")} == {f"eval/{k}" for k in EVAL_METRICS}
    assert len(list(out.glob("events.out.tfevents.*"))) == 1  # one TensorBoard writer per run
    policy, cfg = load_policy(out)
    assert cfg["task"] == "walker_stand" and cfg["prompt"] == "standing up straight"
    policy.reset(2)
    action = policy.act(np.zeros((2, 64, 64, 3), np.uint8), np.ones(2, bool))
    assert action.shape == (2, 6) and np.abs(action).max() <= 1


def test_resume_continues_exactly(tiny_run, tmp_path, crash_after_save):
    import genrl.behavior.train as train_mod

    root, vlm = tiny_run
    behave(_cfg(root, tmp_path / "a"), progress=False, embedder=vlm)
    with crash_after_save(train_mod, 2):
        behave(_cfg(root, tmp_path / "b"), progress=False, embedder=vlm)
    result = behave(_cfg(root, tmp_path / "b"), progress=False, embedder=None)  # resume needs no VLM
    assert result["step"] == 4
    _, ac_a, _, target_a = load_behavior(tmp_path / "a")
    _, ac_b, _, target_b = load_behavior(tmp_path / "b")
    for (name, x), y in zip(ac_a.state_dict().items(), ac_b.state_dict().values()):
        assert torch.equal(x, y), name
    # the prompt target comes back with the run: one-hot stoch rows (each sums to 1 per latent), the same in both
    assert torch.allclose(target_a.stoch.sum(-1), torch.ones(target_a.stoch.shape[:-1]))
    assert torch.equal(target_a.stoch, target_b.stoch) and torch.equal(target_a.deter, target_b.deter)
    steps = [x["step"] for x in _lines(tmp_path / "b") if "train/reward_mean" in x]
    assert steps == [1, 2, 3, 4]
    with pytest.raises(ResumeMismatchError, match=r"behavior\.score='max_cosine' \(this run: 'cosine'\)"):
        # other settings in the same folder are refused
        behave(_cfg(root, tmp_path / "b", score="cosine"), progress=False)


def test_nan_reward_stops_behavior_learning_and_keeps_the_last_good_checkpoint(tiny_run, tmp_path, monkeypatch):
    root, vlm = tiny_run
    real, calls = ActorCritic.update, []

    def nan_at_the_fourth_update(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 4:
            out["reward_mean"] = float("nan")
        return out

    monkeypatch.setattr(ActorCritic, "update", nan_at_the_fourth_update)
    with pytest.raises(FloatingPointError, match=r"behavior: non-finite metric\(s\) reward_mean=nan at step 3; "
                                                 r"stopping, the last good checkpoint in .*checkpoint is kept"):
        behave(_cfg(root, tmp_path / "n", steps=6), progress=False, embedder=vlm)
    assert json.loads((tmp_path / "n" / "checkpoint" / "state.json").read_text())["step"] == 2
    assert not (tmp_path / "n" / "eval.json").exists()


def test_data_free_run_never_opens_a_dataset(tiny_run, tmp_path, monkeypatch):
    import genrl.behavior.train as train_mod

    def refuse(*args, **kwargs):
        raise AssertionError("a data-free run opened a dataset")

    monkeypatch.setattr(train_mod, "Dataset", refuse)
    monkeypatch.setattr(train_mod.SequenceSampler, "from_dataset", refuse)
    root, vlm = tiny_run
    result = behave(_cfg(root, tmp_path / "free", data_free=True, steps=2), progress=False, embedder=vlm)
    assert result["step"] == 2 and np.isfinite(result["train"]["reward_mean"])


def test_wrong_domain_and_bad_inputs_are_refused(tiny_run, tmp_path):
    root, vlm = tiny_run
    with pytest.raises(ValueError, match="cheetah task but the world model .* walker"):
        behave(_cfg(root, tmp_path / "x", task="cheetah_run"), progress=False, embedder=vlm)
    with pytest.raises(FileNotFoundError, match="nothing: not a pre-training run folder nor a shipped model"):
        behave(_cfg(root, tmp_path / "x", run=str(tmp_path / "nothing")), progress=False, embedder=vlm)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        behave(_cfg(root, tmp_path / "x", run=str(tmp_path / "empty")), progress=False, embedder=vlm)
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        behave(_cfg(root, tmp_path / "x", video=str(tmp_path / "missing.mp4")), progress=False, embedder=vlm)
    with pytest.raises(ValueError, match="unknown behavior config fields"):
        behave(_cfg(root, tmp_path / "x", overrides={"actor_lrr": 1.0}), progress=False, embedder=vlm)


def test_cli_behave_and_eval(tiny_run, tmp_path, capsys):
    root, _ = tiny_run
    out = tmp_path / "cli"
    common = ["--vlm", "minivlm", "--vlm-path", str(root / "vlm")]
    code = main(["behave", str(root / "mfwm"), "--task", "walker_walk", "--prompt", "walking", "--preset", "tiny",
                 "--out", str(out), "--steps", "2", "--eval-episodes", "0", "--score", "cosine", "--align-b", "1",
                 "--threads", "1", *common])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["step"] == 2 and "reward_mean" in summary["train"]
    assert json.loads((out / "config.json").read_text())["behavior"]["score"] == "cosine"
    video = tmp_path / "ep.mp4"
    assert main(["eval", str(out), "--episodes", "1", "--video", str(video), "--seed", "3"]) == 0
    report = json.loads(capsys.readouterr().out)
    # evaluation seed 3 -> env seeds 10300 + i (disjoint from other seeds' and from the collected episodes)
    assert report["task"] == "walker_walk" and report["seed"] == 10300 and len(report["normalized"]) == 1
    assert video.is_file() and (out / "eval_walker_walk_seed3.json").is_file()
    assert not report["posterior_sample"]
    assert main(["eval", str(out), "--episodes", "1", "--seed", "3", "--posterior-sample"]) == 0
    sampled = json.loads(capsys.readouterr().out)
    assert sampled["posterior_sample"] and (out / "eval_walker_walk_seed3_sample.json").is_file()
    assert main(["eval", str(out), "--task", "cheetah_run", "--episodes", "1"]) == 2
    assert "cheetah" in capsys.readouterr().err
    assert main(["behave", str(root / "mfwm"), "--task", "cheetah_run", "--out", str(tmp_path / "y"),
                 "--preset", "tiny", *common]) == 2
    assert "error:" in capsys.readouterr().err


def test_eval_workers_reach_the_evaluation(tiny_run, tmp_path, monkeypatch):
    """``eval_workers`` (``--eval-workers``) and ``genrl eval --workers`` are passed to ``evaluate`` (the spy runs the
    episodes in-process and capped, so the test stays fast; that workers change no number is
    tests/test_rollout.py's)."""
    import genrl.behavior.policy as policy_module

    real, seen = policy_module.evaluate, []

    def spy(*args, workers=1, **kw):
        seen.append(workers)
        return real(*args, **{**kw, "max_steps": 3}, workers=1)

    monkeypatch.setattr(policy_module, "evaluate", spy)
    root, _ = tiny_run
    out = tmp_path / "run"
    behave(_cfg(root, out, steps=2, eval_episodes=1, eval_workers="auto"), progress=False)
    assert seen == ["auto"]
    main(["eval", str(out), "--episodes", "1", "--workers", "2"])
    assert seen == ["auto", 2]
    with pytest.raises(ValueError, match="workers must be an int >= 1"):  # refused before any training
        behave(_cfg(root, tmp_path / "bad", eval_episodes=1, eval_workers=0), progress=False)
    assert not (tmp_path / "bad").exists()
