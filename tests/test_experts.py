"""State-based SAC experts: the saved actor reloads into our ExpertPolicy and reproduces SB3's actions."""

import json

import numpy as np
import pytest
import torch

pytest.importorskip("stable_baselines3")

from genrl.data.experts import ExpertPolicy, StateTaskEnv, save_actor, train_expert  # noqa: E402


def test_actor_round_trip_matches_sb3(tmp_path):
    from stable_baselines3 import SAC

    env = StateTaskEnv("walker_stand", seed=0)
    model = SAC("MlpPolicy", env, seed=0, learning_starts=10, policy_kwargs={"net_arch": [32, 32]}, device="cpu")
    model.learn(total_timesteps=30)
    save_actor(model, tmp_path / "actor.safetensors")
    policy = ExpertPolicy.load(tmp_path / "actor.safetensors")
    states = np.random.default_rng(0).normal(size=(8, env.observation_space.shape[0])).astype(np.float32)
    expected, _ = model.predict(states, deterministic=True)
    np.testing.assert_allclose(policy.act(states), expected, atol=1e-5)
    assert policy.act(states[0]).shape == (6,)
    env.close()


def test_train_expert_writes_snapshots_and_card(tmp_path):
    card = train_expert("walker_stand", steps=40, out=tmp_path, seed=0, eval_episodes=1, log_every=20, train_freq=2)
    assert card["train_freq"] == 2 and card["upright_starts"] == 0.0
    assert sorted(p.name for p in tmp_path.glob("actor_*.safetensors")) == [
        "actor_025.safetensors", "actor_050.safetensors", "actor_100.safetensors"]
    assert (tmp_path / "card.json").is_file()
    snap = card["snapshots"]["100"]
    assert snap["mean_return"] > 0 and snap["normalized_score"] is not None
    rows = [json.loads(line) for line in (tmp_path / "progress.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [20, 40]
    assert rows[-1]["episodes"] == 0 and rows[-1]["train_return"] is None  # no 500-step episode ended yet


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        ExpertPolicy.load(tmp_path / "nope.safetensors")
    from safetensors.torch import save_file
    save_file({"x": torch.zeros(2)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(ValueError, match="not a SAC actor"):
        ExpertPolicy.load(tmp_path / "bad.safetensors")


def test_upright_starts_curriculum(tmp_path):
    """Quadruped's default start is a random orientation (often on its back); the training curriculum's upright
    start puts the torso's z-axis up, and a domain without an upright start refuses the option."""
    def torso_zz(env):
        return float(env.env.physics.data.ptr.body("torso").xmat[8])

    default = StateTaskEnv("quadruped_stand", seed=0)
    zz = []
    for ep in range(8):
        default.reset(seed=ep)
        zz.append(torso_zz(default))
    assert min(zz) < 0.5  # random orientations: some start tilted or upside down
    upright = StateTaskEnv("quadruped_stand", seed=0, upright_starts=1.0)
    for ep in range(4):
        state, _ = upright.reset(seed=ep)
        assert torso_zz(upright) > 0.999 and state.shape == default.observation_space.shape
    half = StateTaskEnv("quadruped_stand", seed=3, upright_starts=0.5)
    starts = []
    for _ in range(12):
        half.reset()
        starts.append(torso_zz(half) > 0.999)
    assert 0 < sum(starts) < 12
    with pytest.raises(ValueError, match="walker_stand has no upright start"):
        StateTaskEnv("walker_stand", upright_starts=0.5)
    with pytest.raises(ValueError, match="train_freq: expected >= 1"):
        train_expert("walker_stand", steps=10, out=tmp_path / "never", train_freq=0)
    assert not (tmp_path / "never").exists()
    with pytest.raises(ValueError, match="probability in"):
        StateTaskEnv("quadruped_stand", upright_starts=1.5)
    with pytest.raises(ValueError, match="start='sideways' is not available"):
        default.env.reset(options={"start": "sideways"})
