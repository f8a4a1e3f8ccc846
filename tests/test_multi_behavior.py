"""K behaviors per process (:mod:`genrl.behavior.multi`): one batched update equals K single updates."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from genrl.behavior.actor_critic import ActorCritic
from genrl.behavior.config import behavior_preset
from genrl.behavior.multi import (BehaviorNoise, MultiActorCritic, behavior_generators, img_step, multi_reward)
from genrl.behavior.reward import LatentReward, build_target
from genrl.behavior.starts import data_free_starts
from genrl.mfwm.model import MFWM
from genrl.worldmodel.config import preset

K = 3
SEEDS = [11, 22, 33]


def _model() -> MFWM:
    torch.manual_seed(0)
    return MFWM(preset("tiny"), action_dim=6, embed_dim=16, n_frames=4).eval().requires_grad_(False)


def _cfg(**kw):
    # learning rates large enough that a step is visible; an entropy bonus and slow-critic copies every 2 updates
    # so that every branch of the update runs
    return behavior_preset("tiny", actor_lr=1e-2, critic_lr=1e-2, actor_entropy=1e-3, slow_critic_every=2, **kw)


def _rewards(model: MFWM, cfg, rows=(8, 32, 5)) -> list[LatentReward]:
    torch.manual_seed(1)
    out = []
    for m in rows:  # different prompts, and target row counts that do and do not divide the starts
        emb = F.normalize(torch.randn(1, 16), dim=-1)
        out.append(LatentReward(model.wm, build_target(model, emb, m, cfg.horizon), cfg.score, cfg.align_b))
    return out


def _behaviors(model: MFWM, cfg) -> list[ActorCritic]:
    torch.manual_seed(2)
    return [ActorCritic(cfg, model.wm.feat_dim, model.wm.action_dim) for _ in range(K)]


def _close_metrics(got: dict, want: dict, what: str) -> None:
    assert list(got) == list(want)  # the same keys in the same order
    for key in want:
        if key != "seconds":
            assert got[key] == pytest.approx(want[key], rel=1e-5, abs=1e-6), f"{what}: {key}"


def _close_states(got: torch.nn.Module, want: torch.nn.Module, what: str) -> None:
    want_sd = want.state_dict()
    for key, value in got.state_dict().items():
        torch.testing.assert_close(value, want_sd[key], atol=1e-5, rtol=1e-5, msg=lambda m: f"{what} {key}: {m}")


def test_img_step_with_a_generator_equals_the_rssm_on_the_same_seed():
    model = _model()
    rssm, n = model.wm.rssm, 10
    torch.manual_seed(3)
    state = {"deter": torch.randn(n, rssm.deter), "stoch": F.one_hot(torch.randint(0, 4, (n, 4)), 4).float()}
    action = torch.rand(n, 6) * 2 - 1
    torch.manual_seed(7)
    want = rssm.img_step(state, action, sample=True)
    got = img_step(rssm, state, action, BehaviorNoise(1, n, behavior_generators([7])))
    for key in want:
        assert torch.equal(got[key], want[key]), key


def test_batched_rewards_equal_each_behaviors_own_reward():
    model = _model()
    cfg = _cfg()
    fns = _rewards(model, cfg)
    n = cfg.starts
    torch.manual_seed(4)
    stoch = F.one_hot(torch.randint(0, 4, (K * n, cfg.horizon + 1, 4)), 4).float()
    reward, offsets = multi_reward(fns, stoch, n)
    for k, fn in enumerate(fns):
        r, o = fn(stoch[k * n:(k + 1) * n])
        torch.testing.assert_close(reward[k * n:(k + 1) * n], r, atol=1e-6, rtol=1e-6)
        assert torch.equal(offsets[k * n:(k + 1) * n], o)
    assert offsets.float().std() > 0  # alignment really ran


@pytest.mark.parametrize("shared", [True, False])
def test_batched_updates_equal_single_updates_with_the_same_noise(shared):
    model = _model()
    cfg = _cfg()
    fns = _rewards(model, cfg)
    singles = _behaviors(model, cfg)
    multi = MultiActorCritic(copy.deepcopy(singles), names=["stand", "lie", "walk"])
    single_opts = [b.optimizers() for b in singles]
    opts = multi.optimizers()
    gens = behavior_generators(SEEDS)
    rng = []
    for s in SEEDS:
        torch.manual_seed(s)
        rng.append(torch.get_rng_state())
    for step in range(3):
        torch.manual_seed(100 + step)
        if shared:
            start = data_free_starts(model, cfg.starts, None)
            starts = [start] * K
        else:
            starts = [data_free_starts(model, cfg.starts, None) for _ in range(K)]
            start = starts
        want = []
        for k, b in enumerate(singles):
            torch.set_rng_state(rng[k])
            want.append(b.update(model.wm, fns[k], starts[k], single_opts[k]))
            rng[k] = torch.get_rng_state()
        got = multi.update(model.wm, fns, start, opts, gens)
        assert len(got) == K
        for k in range(K):
            _close_metrics(got[k], want[k], f"update {step} behavior {k}")
            _close_states(multi.behaviors[k], singles[k], f"update {step} behavior {k}")
            assert int(multi.behaviors[k].updates) == step + 1
    moved = [(a - b).abs().max().item() for a, b in zip(multi.behaviors[0].actor.parameters(),
                                                         multi.behaviors[1].actor.parameters())]
    assert max(moved) > 1e-3  # the behaviors learn different things
    first = _behaviors(model, cfg)[0]  # the same initialisation as behavior 0 before the updates
    assert max((a - b).abs().max().item() for a, b in zip(first.actor.parameters(),
                                                          multi.behaviors[0].actor.parameters())) > 1e-3


def test_a_nan_in_one_behavior_names_it_and_changes_nothing():
    model = _model()
    cfg = _cfg()
    fns = _rewards(model, cfg)
    good = fns[1]
    fns[1] = lambda stoch: (good(stoch)[0] * float("nan"), good(stoch)[1])
    multi = MultiActorCritic(_behaviors(model, cfg), names=["stand", "lie", "walk"])
    opts = multi.optimizers()
    before = copy.deepcopy(multi.state_dict())
    start = data_free_starts(model, cfg.starts, None)
    with pytest.raises(FloatingPointError, match="behavior lie: actor loss is nan"):
        multi.update(model.wm, fns, start, opts, behavior_generators(SEEDS))
    for key, value in multi.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(not o.state for d in opts for o in d.values())
    assert all(p.grad is None for p in multi.parameters())


def test_global_rng_path_is_reproducible_and_leaves_the_world_model_alone():
    model = _model()
    model.requires_grad_(True)  # even trainable, the world model gets no gradient
    wm_before = copy.deepcopy(model.state_dict())
    cfg = _cfg()
    fns = _rewards(model, cfg)
    start = data_free_starts(model, cfg.starts, None)
    runs = []
    for _ in range(2):
        multi = MultiActorCritic(_behaviors(model, cfg))
        torch.manual_seed(5)
        runs.append((multi.update(model.wm, fns, start, multi.optimizers()), multi))
    for k in range(K):
        _close_metrics(runs[0][0][k], runs[1][0][k], f"behavior {k}")
        assert runs[0][0][k]["actor_grad_norm"] > 0 and runs[0][0][k]["critic_grad_norm"] > 0
    _close_states(runs[0][1], runs[1][1], "rerun")
    assert all(p.grad is None for p in model.parameters())
    for key, value in model.state_dict().items():
        assert torch.equal(value, wm_before[key]), key


def test_bad_inputs_are_refused():
    model = _model()
    cfg = _cfg()
    behaviors = _behaviors(model, cfg)
    other = ActorCritic(behavior_preset("tiny"), model.wm.feat_dim, model.wm.action_dim)
    with pytest.raises(ValueError, match="another config"):
        MultiActorCritic([behaviors[0], other])
    with pytest.raises(ValueError, match="at least one"):
        MultiActorCritic([])
    multi = MultiActorCritic(behaviors)
    start = data_free_starts(model, cfg.starts, None)
    fns = _rewards(model, cfg)
    with pytest.raises(ValueError, match="3 reward functions"):
        multi.update(model.wm, fns[:2], start, multi.optimizers())
    with pytest.raises(ValueError, match="one generator per behavior"):
        multi.update(model.wm, fns, start, multi.optimizers(), behavior_generators([1]))
    with pytest.raises(ValueError, match="per-behavior start states"):
        multi.update(model.wm, fns, [start, start], multi.optimizers())


def test_keep_freed_memory_runs_in_a_fresh_process():
    code = "from genrl.behavior.multi import keep_freed_memory; print(keep_freed_memory())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() in ("True", "False")
