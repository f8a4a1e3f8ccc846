"""Oracle reward: a head fitted to the dataset's true task reward on the frozen MFWM's latents (an upper bound).

GenRL's reward compares imagined latents with a prompt's target (:mod:`genrl.behavior.reward`). To tell whether a
behavior is limited by that target or by the imagination and the budget, the same actor-critic, start states and
budget are run with this reward instead: an MLP ``r(z)`` trained by regression on the dataset's per-step true
reward of the task (``task_rewards``, stored by ``genrl collect``), fed the posterior ``z`` (modes, one-hot) of the
same world model. GenRL far below the oracle: the prompt target is the limit; both low: the imagination or the
budget. (Like the GenRL reward it reads ``z`` only, so the two differ only in where the reward comes from.)

Usage::

    head, report = fit_oracle(model, Dataset("runs/data/walker"), "walker_stand", seed=0)
    reward_fn = OracleReward(head)                   # drop-in for LatentReward in ActorCritic.update
    genrl behave walker --task walker_stand --reward oracle --out runs/stand_oracle
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from genrl.behavior.starts import episode_posterior_modes
from genrl.data.dataset import Dataset, DatasetError
from genrl.envs.registry import split_task
from genrl.mfwm.model import MFWM
from genrl.utils.stats import spearman


class OracleRewardHead(nn.Module):
    """MLP (Linear + LayerNorm + SiLU hidden layers) from flat one-hot ``z`` to the per-step task reward.

    Args:
        stoch, discrete: latent shape ``S x D`` of the world model. units, layers: hidden sizes.

    Call: ``head(stoch [..., S, D]) -> float32 [...]`` (predicted reward of the task, in the dataset's units: the
    sum of the action-repeat rewards of one agent step).
    """

    def __init__(self, stoch: int, discrete: int, units: int = 256, layers: int = 2):
        super().__init__()
        dims, mods = stoch * discrete, []
        for _ in range(layers):
            mods += [nn.Linear(dims, units), nn.LayerNorm(units), nn.SiLU()]
            dims = units
        self.net = nn.Sequential(*mods, nn.Linear(dims, 1))
        self.register_buffer("shape", torch.tensor([stoch, discrete]))

    def forward(self, stoch: torch.Tensor) -> torch.Tensor:
        return self.net(stoch.flatten(-2).float()).squeeze(-1)


class OracleReward:
    """Reward function with :class:`genrl.behavior.reward.LatentReward`'s call signature.

    Call: ``reward, offsets = fn(stoch [N, T, S, D])`` -> float32 ``[N, T]`` (differentiable in ``stoch``), int64
    zeros ``[N]`` (no temporal alignment).
    """

    def __init__(self, head: OracleRewardHead):
        self.head = head.eval().requires_grad_(False)

    def __call__(self, stoch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(stoch), torch.zeros(stoch.shape[0], dtype=torch.long, device=stoch.device)


@torch.no_grad()
def posterior_steps(model: MFWM, ds: Dataset, names: Sequence[str], task: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior ``z`` modes of every step of the episodes and the task's true reward there.

    Returns:
        ``(stoch uint8 [N, S, D] one-hot, reward float32 [N])`` over all steps of ``names``.

    Raises:
        DatasetError: an episode without ``task_rewards`` of the task.
    """
    _, name = split_task(task)
    zs, rs = [], []
    for ep_name in names:
        ep = ds.load(ep_name, {"observation", "action", "is_first", "task_rewards", "task_names"})
        if "task_names" not in ep or name not in [str(t) for t in ep["task_names"]]:
            raise DatasetError(f"{ds.episode_path(ep_name)}: no true reward of {task} (task_rewards/task_names, "
                               "written by `genrl collect`)")
        col = [str(t) for t in ep["task_names"]].index(name)
        zs.append(episode_posterior_modes(model.wm, ep))
        rs.append(torch.from_numpy(np.asarray(ep["task_rewards"][:, col], np.float32)))
    return torch.cat(zs), torch.cat(rs)


def fit_head(z: torch.Tensor, r: torch.Tensor, z_check: torch.Tensor, r_check: torch.Tensor, steps: int = 2000,
             batch_size: int = 1024, lr: float = 1e-3, units: int = 256, seed: int = 0,
             device: torch.device | str = "cpu") -> tuple[OracleRewardHead, dict]:
    """Regress an :class:`OracleRewardHead` on ``(z uint8/float [N, S, D] one-hot, r float32 [N])`` (Adam, MSE of
    the reward standardized by its std) and check it on ``(z_check, r_check)``.

    Returns:
        ``(head in eval mode without gradients, {"steps", "fit_steps", "check_steps", "fit_mse", "check_mse",
        "fit_spearman", "check_spearman", "reward_mean", "reward_std"})`` (Spearman correlations of the predicted
        and true per-step rewards).
    """
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    head = OracleRewardHead(z.shape[1], z.shape[2], units).to(device)
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    std = float(r.std().clamp_min(1e-6))
    for _ in range(steps):
        idx = torch.randint(0, len(z), (batch_size,), generator=gen)
        loss = ((head(z[idx].to(device)) - r[idx].to(device)) / std).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    head.eval().requires_grad_(False)

    def predict(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([head(x[i:i + 4096].to(device)).cpu() for i in range(0, len(x), 4096)])

    pred, fit_pred = predict(z_check), predict(z)
    report = {"steps": steps, "fit_steps": len(z), "check_steps": len(z_check),
              "fit_mse": float((fit_pred - r).square().mean()),
              "check_mse": float((pred - r_check).square().mean()),
              "fit_spearman": spearman(fit_pred.double().numpy(), r.double().numpy()),
              "check_spearman": spearman(pred.double().numpy(), r_check.double().numpy()),
              "reward_mean": float(r.mean()), "reward_std": std}
    return head, report


def fit_oracle(model: MFWM, ds: Dataset, task: str, steps: int = 2000, batch_size: int = 1024, lr: float = 1e-3,
               units: int = 256, seed: int = 0, heldout: float = 0.1) -> tuple[OracleRewardHead, dict]:
    """Fit an :class:`OracleRewardHead` to the dataset's true reward of ``task`` on ``model``'s posterior modes.

    The last ``max(1, round(heldout * n))`` of the ``n`` episodes (in name order) are kept out of the fit to check
    it (:func:`fit_head`'s report, plus ``"task"``).

    Raises:
        DatasetError: fewer than 2 episodes, or no true reward of the task.
    """
    names = ds.names()
    if len(names) < 2:
        raise DatasetError(f"{ds.root}: need at least 2 episodes to fit and check the oracle reward, got {len(names)}")
    n_check = min(len(names) - 1, max(1, round(heldout * len(names))))
    z, r = posterior_steps(model, ds, names[:-n_check], task)
    zc, rc = posterior_steps(model, ds, names[-n_check:], task)
    head, report = fit_head(z, r, zc, rc, steps, batch_size, lr, units, seed, model.wm.device)
    return head, {"task": task, **report}


__all__ = ["OracleRewardHead", "OracleReward", "posterior_steps", "fit_head", "fit_oracle"]
