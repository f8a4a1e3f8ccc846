"""State-based task experts for data collection: train with Stable-Baselines3 SAC, run with our small actor.

GenRL's datasets mix exploration data with the replay data of agents that learned a few tasks (paper Table 4).
Pixel DreamerV3 agents are far too slow on a 2-core CPU, so experts are trained on the proprioceptive ``state``
(with the same action repeat as the pixel environment) by SB3's SAC. Only the actor is kept: its weights are
saved as safetensors at several points of training (e.g. 25/50/100 %) so that collected episodes span learning
progress like the paper's agent replay buffers, with a JSON model card (command, steps, seed, returns,
normalized score).

Training needs ``stable-baselines3`` (extra ``genrl[experts]``); running a saved expert needs only torch.

Usage::

    genrl experts train walker_walk --steps 150000 --seed 0 --out experts/walker_walk
    policy = ExpertPolicy.load("experts/walker_walk/actor_100.safetensors")
    action = policy.act(obs["state"])              # float32 [A] in [-1, 1]
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from genrl.envs import make, normalized_score, SCORES
from genrl.utils.io import atomic_path, write_json

HIDDEN = (256, 256)
# Committed expert weights shipped with the package: expert_weights/<task_id>/actor_<pct>.safetensors + card.json
EXPERTS_DIR = Path(__file__).parent / "expert_weights"


class StateTaskEnv(gym.Env):
    """A task's environment without rendering: observation = the ``state`` vector, reward = the task's reward.

    Args:
        task: task id, e.g. ``"walker_walk"`` (DMC domains only).
        seed: initial-state seed (also seeds the choice of upright starts).
        upright_starts: probability that an episode starts with the body upright (the domain's
            ``upright_initialize``; a training curriculum, e.g. quadruped, whose default start is a random
            orientation); 0 = always the default start.

    Raises:
        ValueError: ``upright_starts`` outside [0, 1], or > 0 on a domain without an upright start.
    """

    metadata = {"render_modes": []}

    def __init__(self, task: str, seed: int | None = None, upright_starts: float = 0.0):
        if not 0.0 <= upright_starts <= 1.0:
            raise ValueError(f"upright_starts: expected a probability in [0, 1], got {upright_starts}")
        self.env = make(task, seed=seed, render=None)
        if upright_starts > 0 and getattr(getattr(self.env, "domain", None), "upright_initialize", None) is None:
            self.env.close()
            raise ValueError(f"upright_starts: {task} has no upright start (only domains with a random-orientation "
                             "start, e.g. quadruped, define one); use 0")
        self.upright_starts = upright_starts
        self._starts = np.random.default_rng(seed)
        self.observation_space = self.env.observation_space["state"]
        self.action_space = self.env.action_space

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self._starts = np.random.default_rng(seed)
        if self.upright_starts > 0 and self._starts.random() < self.upright_starts:
            options = {**(options or {}), "start": "upright"}
        obs, info = self.env.reset(seed=seed, options=options)
        return obs["state"], info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs["state"], reward, terminated, truncated, info

    def close(self):
        self.env.close()


class ExpertPolicy(nn.Module):
    """SAC actor (deterministic mean): ``tanh(mu(MLP(state)))``, the architecture of SB3's default SAC actor.

    Args:
        state_dim: size of the proprioceptive state ``D``.
        action_dim: action size ``A``.
        hidden: hidden layer sizes (ReLU).
    """

    def __init__(self, state_dim: int, action_dim: int, hidden: Sequence[int] = HIDDEN):
        super().__init__()
        layers, last = [], state_dim
        for h in hidden:
            layers += [nn.Linear(last, h), nn.ReLU()]
            last = h
        self.latent_pi = nn.Sequential(*layers)
        self.mu = nn.Linear(last, action_dim)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        """``float32 [N, D] -> float32 [N, A]`` deterministic actions in ``[-1, 1]``."""
        return torch.tanh(self.mu(self.latent_pi(state)))

    @torch.no_grad()
    def act(self, state: np.ndarray) -> np.ndarray:
        """One state ``[D]`` (or a batch ``[N, D]``) to action(s) in ``[-1, 1]`` as float32 numpy."""
        x = torch.as_tensor(np.asarray(state, dtype=np.float32))
        out = self(x[None] if x.ndim == 1 else x)
        return (out[0] if x.ndim == 1 else out).numpy()

    @classmethod
    def load(cls, path: str | Path) -> "ExpertPolicy":
        """Load actor weights saved by :func:`train_expert`.

        Raises:
            FileNotFoundError: missing file (the message names it).
            ValueError: the file does not hold a SAC actor (names the missing tensors).
        """
        from safetensors.torch import load_file

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"expert weights not found: {path}")
        state = load_file(str(path))
        needed = {"latent_pi.0.weight", "mu.weight", "mu.bias"}
        if not needed <= set(state):
            raise ValueError(f"{path}: not a SAC actor checkpoint; missing tensors {sorted(needed - set(state))}")
        linears = sorted(int(k.split(".")[1]) for k in state if k.startswith("latent_pi.") and k.endswith(".weight"))
        hidden = [state[f"latent_pi.{i}.weight"].shape[0] for i in linears]
        policy = cls(state["latent_pi.0.weight"].shape[1], state["mu.weight"].shape[0], hidden)
        policy.load_state_dict(state)
        return policy.eval()


def save_actor(model, path: Path) -> None:
    """Save the SB3 SAC actor's ``latent_pi`` and ``mu`` weights (no optimizer, no log-std head) atomically."""
    from safetensors.torch import save_file

    actor = model.policy.actor
    tensors = {f"latent_pi.{k}": v.detach().cpu().contiguous() for k, v in actor.latent_pi.state_dict().items()}
    tensors.update({f"mu.{k}": v.detach().cpu().contiguous() for k, v in actor.mu.state_dict().items()})
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))


def evaluate(policy: ExpertPolicy, task: str, episodes: int = 5, seed: int = 1000) -> list[float]:
    """Episode returns of the deterministic policy on the state-only environment."""
    env = StateTaskEnv(task, seed=seed)
    returns = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        done, ret = False, 0.0
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy.act(obs))
            ret += reward
            done = terminated or truncated
        returns.append(ret)
    env.close()
    return returns


def train_expert(task: str, steps: int, out: str | Path, seed: int = 0,
                 fractions: Sequence[float] = (0.25, 0.5, 1.0), eval_episodes: int = 5,
                 command: str = "", log_every: int = 10_000, upright_starts: float = 0.0,
                 train_freq: int = 1) -> dict:
    """Train a SAC expert on ``task``'s state and save actor snapshots + a model card in ``out``.

    Files: ``actor_{pct}.safetensors`` for each fraction of ``steps`` and ``card.json`` (task, command, steps,
    seed, wall-clock, evaluation returns and normalized score of every snapshot).

    ``command`` is recorded in the card (the CLI passes the exact command line). Every ``log_every`` steps (0:
    never) one line goes to stdout and to ``progress.jsonl`` (step, seconds, steps/s, the mean return and
    normalized score of the last <= 100 training episodes, which include SAC's exploration noise).
    ``upright_starts`` (see :class:`StateTaskEnv`) only changes the training episodes' start states; snapshots are
    evaluated from the task's default start. ``train_freq``: environment steps per gradient step (SB3's default 1;
    2 halves the updates per step, as DrQ-v2's ``update_every_steps=2``, and nearly doubles steps/s on a CPU).

    Raises:
        ValueError: ``train_freq`` < 1.
        ImportError: stable-baselines3 is not installed (``pip install -c constraints.txt stable-baselines3``).
    """
    try:
        from stable_baselines3 import SAC
        from stable_baselines3.common.callbacks import BaseCallback
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("training experts needs stable-baselines3: "
                          "pip install -c constraints.txt stable-baselines3") from err

    if train_freq < 1:
        raise ValueError(f"train_freq: expected >= 1 environment steps per gradient step, got {train_freq}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    marks = {max(1, int(round(f * steps))): int(round(f * 100)) for f in fractions}

    progress = out / "progress.jsonl"
    progress.unlink(missing_ok=True)

    class Snapshots(BaseCallback):
        def _on_step(self) -> bool:
            pct = marks.get(self.num_timesteps)
            if pct is not None:
                save_actor(self.model, out / f"actor_{pct:03d}.safetensors")
            if log_every and self.num_timesteps % log_every == 0:
                _log_progress(progress, self.num_timesteps, steps, time.time() - t0, task,
                              [ep["r"] for ep in self.model.ep_info_buffer])
            return True

    env = StateTaskEnv(task, seed=seed, upright_starts=upright_starts)
    model = SAC("MlpPolicy", env, seed=seed, learning_starts=min(5000, steps // 10), verbose=0, train_freq=train_freq,
                policy_kwargs={"net_arch": list(HIDDEN)}, device="cpu")
    t0 = time.time()
    model.learn(total_timesteps=steps, callback=Snapshots(), progress_bar=False)
    wall = time.time() - t0
    card = {"task": task, "algorithm": "SAC (stable-baselines3, default hyper-parameters, net_arch 256x256)",
            "observation": "proprioceptive state", "action_repeat": 2, "steps": steps, "seed": seed,
            "upright_starts": upright_starts, "train_freq": train_freq, "train_seconds": round(wall, 1),
            "command": command,
            "snapshots": {}}
    for pct in sorted(marks.values()):
        path = out / f"actor_{pct:03d}.safetensors"
        returns = evaluate(ExpertPolicy.load(path), task, eval_episodes)
        mean = float(np.mean(returns))
        card["snapshots"][f"{pct:03d}"] = {
            "file": path.name, "eval_returns": [round(r, 1) for r in returns], "mean_return": round(mean, 1),
            "normalized_score": round(normalized_score(task, mean), 3) if task in SCORES else None}
    write_json(out / "card.json", card)
    env.close()
    return card


def _log_progress(path: Path, step: int, steps: int, seconds: float, task: str, returns: list[float]) -> None:
    """Append one progress row of :func:`train_expert` to ``path`` (JSON line) and print it."""
    mean = float(np.mean(returns)) if returns else float("nan")
    row = {"step": step, "seconds": round(seconds, 1), "steps_per_s": round(step / max(seconds, 1e-9), 1),
           "train_return": round(mean, 1) if returns else None, "episodes": len(returns)}
    if task in SCORES and returns:
        row["train_normalized"] = round(normalized_score(task, mean), 3)
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
    print(f"[{task}] step {step}/{steps}  {row['steps_per_s']:.0f} steps/s  train return {mean:.1f}"
          f" ({row.get('train_normalized', float('nan')):.2f} normalized, last {len(returns)} episodes)", flush=True)


def find_experts(domain: str, experts_dir: str | Path | None = None) -> dict[str, dict[int, Path]]:
    """Expert snapshots of a domain: ``{task_id: {percent: actor file}}``.

    Looks in ``experts_dir`` (default: the weights shipped in the package, :data:`EXPERTS_DIR`) for folders
    named ``<domain>_<task>`` holding ``actor_<pct>.safetensors`` files. Returns ``{}`` when there are none.
    """
    root = Path(experts_dir) if experts_dir is not None else EXPERTS_DIR
    found: dict[str, dict[int, Path]] = {}
    if not root.is_dir():
        return found
    for folder in sorted(root.glob(f"{domain}_*")):
        snaps = {int(p.stem.split("_")[1]): p for p in folder.glob("actor_*.safetensors")}
        if snaps:
            found[folder.name] = snaps
    return found


def load_card(path: str | Path) -> dict:
    """Read an expert's ``card.json``."""
    return json.loads(Path(path).read_text())
