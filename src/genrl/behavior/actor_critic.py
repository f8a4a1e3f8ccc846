"""Actor-critic trained in imagination by dynamics backpropagation (paper section 3.2, appendix B; official
``agent/dreamer.py`` ``ActorCritic``).

DreamerV3 (v1, January 2023) style, as in the official GenRL code:

* :class:`Actor`: MLP -> independent ``Normal(tanh(mu), sigma)``, ``sigma = (max - min) sigmoid(raw + 2) + min`` in
  ``[0.1, 1]``; reparameterised samples, clipped to ``[-1, 1]`` with a straight-through gradient (the world model
  was trained on actions in that range; the gradient is the unclipped sample's). Evaluation action = ``tanh(mu)``.
* :class:`Critic`: MLP -> 255 twohot logits over symlog bins in ``[-20, 20]``, zero-initialised output layer; a
  slow (target) critic, hard-copied at the first update and every ``slow_critic_every`` updates, provides the
  values of the lambda-returns. The copy is taken *before* updates 0, 100, ... (the official
  ``ActorCritic.update_slow_target`` copies *after* them: a one-update shift, deliberate, see the README).
* :func:`lambda_returns`: ``R_i = r_i + gamma [(1 - lambda) v_{i+1} + lambda R_{i+1}]``, ``R_H = v_H`` (official
  ``agent/dreamer_utils.py`` ``lambda_return``; ``r_i`` is the reward of imagined state ``i``, so ``v_i`` estimates
  the return *including* ``r_i``).
* :class:`ReturnNormalizer`: EMA (``alpha = 0.01``, starting at 0, no bias correction) of the 5 % / 95 % return
  percentiles; ``R~ = (R - P5) / max(1, P95 - P5)``.
* Actor loss ``-mean_{i=1..H-1} R~_i`` (minus ``actor_entropy`` x entropy), gradients through the rewards, the
  frozen world model's transitions and the frozen slow critic; critic loss ``-mean_{i=0..H-1} log p(sg(R_i) |
  sg(feat_i))`` on the un-normalised returns. Weights are all 1 (no continuation head, constant discount).
* Optimisers (:func:`make_adam`): Adam lr 3e-5, eps 1e-5, clip 100, decoupled weight decay 1e-6.

Only the actor's and the critic's parameters are ever given gradients (``torch.autograd.grad`` with explicit
inputs), so nothing accumulates into the world model even if its parameters still require gradients.
"""

from __future__ import annotations

import copy
import time
from typing import Callable, Sequence

import torch
import torch.nn as nn

from genrl.behavior.config import BehaviorConfig
from genrl.worldmodel.dists import twohot_bins, twohot_loss, twohot_mean
from genrl.worldmodel.model import WorldModel, clip_and_step
from genrl.worldmodel.nets import mlp
from genrl.worldmodel.rssm import State


class Actor(nn.Module):
    """Bounded-normal policy ``pi(a | feat)``.

    Args:
        feat_dim: world-model feature size ``S*D + deter``. action_dim: ``A``.
        layers, units: MLP size. min_std, max_std: bounds of ``sigma``.

    ``forward(feat [..., F]) -> (mean [..., A] in (-1, 1), std [..., A] in [min_std, max_std])``, float32.
    """

    def __init__(self, feat_dim: int, action_dim: int, layers: int, units: int, min_std: float = 0.1,
                 max_std: float = 1.0):
        super().__init__()
        self.min_std, self.max_std = float(min_std), float(max_std)
        self.net = mlp(feat_dim, units, layers)
        self.mean_out = nn.Linear(units, action_dim)
        self.std_out = nn.Linear(units, action_dim)

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.net(feat)
        mean = torch.tanh(self.mean_out(x).float())
        std = (self.max_std - self.min_std) * torch.sigmoid(self.std_out(x).float() + 2.0) + self.min_std
        return mean, std

    def mode(self, feat: torch.Tensor) -> torch.Tensor:
        """Deterministic action ``tanh(mu)`` float32 ``[..., A]`` (used for evaluation)."""
        return self(feat)[0]

    def sample(self, feat: torch.Tensor, noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised sample clipped to ``[-1, 1]`` (straight-through) and the Normal's entropy.

        Args:
            noise: standard-normal draws float32 ``[..., A]`` (default: ``torch.randn_like`` on the global RNG;
                :mod:`genrl.behavior.multi` passes per-behavior draws).

        Returns:
            ``(action float32 [..., A] in [-1, 1], entropy float32 [...] summed over action dims, in nats)``.
        """
        mean, std = self(feat)
        raw = mean + std * (torch.randn_like(mean) if noise is None else noise)
        action = raw + (raw.clamp(-1.0, 1.0) - raw).detach()
        entropy = torch.distributions.Normal(mean, std).entropy().sum(-1)
        return action, entropy


class Critic(nn.Module):
    """Twohot value head ``v(feat)`` (zero-initialised output layer: initial prediction 0).

    Args:
        feat_dim: input size. layers, units: MLP size. bins, low, high: twohot bins in symlog space.

    Buffers: ``bins`` float32 ``[bins]`` (non-persistent; rebuilt from the config).
    """

    def __init__(self, feat_dim: int, layers: int, units: int, bins: int = 255, low: float = -20.0,
                 high: float = 20.0):
        super().__init__()
        self.net = mlp(feat_dim, units, layers, out=bins)
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        self.register_buffer("bins", twohot_bins(bins, low, high), persistent=False)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        """Logits float32 ``[..., bins]``."""
        return self.net(feat).float()

    def mean(self, feat: torch.Tensor) -> torch.Tensor:
        """Expected value float32 ``[...]``: ``symexp(sum_i softmax_i * bin_i)``."""
        return twohot_mean(self(feat), self.bins)

    def loss(self, feat: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Twohot negative log-likelihood of raw targets ``[...]``, float32 ``[...]``."""
        return twohot_loss(self(feat), target, self.bins)


def lambda_returns(reward: torch.Tensor, value: torch.Tensor, gamma: float, lam: float) -> torch.Tensor:
    """Lambda-returns of trajectories (paper appendix B; official ``agent/dreamer_utils.py`` ``lambda_return``).

    ``R_{T-1} = v_{T-1}``; ``R_i = r_i + gamma [(1 - lam) v_{i+1} + lam R_{i+1}]`` for ``i = T-2 .. 0``.

    Args:
        reward: float ``[N, T]``, reward of each state (the last one is not used: ``v_{T-1}`` bootstraps it).
        value: float ``[N, T]``, value of each state.

    Returns:
        float32 ``[N, T - 1]`` returns of states ``0 .. T-2``.
    """
    T = reward.shape[1]
    ret = value[:, -1].float()
    out = []
    for i in reversed(range(T - 1)):
        ret = reward[:, i] + gamma * ((1.0 - lam) * value[:, i + 1] + lam * ret)
        out.append(ret)
    return torch.stack(out[::-1], 1).float()


class ReturnNormalizer(nn.Module):
    """EMA of return percentiles (DreamerV3 v1 "reward EMA"; official ``agent/dreamer_utils.py`` ``RewardEMA``).

    Args:
        low, high: percentiles as fractions (0.05, 0.95). alpha: EMA rate (0.01). min_scale: scale floor (1).

    Buffers (persistent, checkpointed): ``low_ema``, ``high_ema`` float32 scalars, starting at 0.
    """

    def __init__(self, low: float = 0.05, high: float = 0.95, alpha: float = 0.01, min_scale: float = 1.0):
        super().__init__()
        self.q = (float(low), float(high))
        self.alpha, self.min_scale = float(alpha), float(min_scale)
        self.register_buffer("low_ema", torch.zeros(()))
        self.register_buffer("high_ema", torch.zeros(()))

    @torch.no_grad()
    def update(self, returns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fold the percentiles of ``returns [...]`` (all entries) into the EMA.

        Returns:
            ``(offset, scale)`` float32 scalars: ``P_low`` and ``max(min_scale, P_high - P_low)``.
        """
        low, high = self.propose(returns)
        self.low_ema.copy_(low)
        self.high_ema.copy_(high)
        return self.stats()

    @torch.no_grad()
    def propose(self, returns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The EMA values :meth:`update` would store for ``returns [...]``, float32 scalars ``(low, high)``, without
        storing them (:mod:`genrl.behavior.multi` commits them only once every behavior's loss is finite)."""
        q = torch.quantile(returns.detach().float().flatten(), torch.tensor(self.q, device=returns.device))
        return (self.low_ema.mul(1.0 - self.alpha).add(self.alpha * q[0]),
                self.high_ema.mul(1.0 - self.alpha).add(self.alpha * q[1]))

    def stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Current ``(offset, scale)`` without updating."""
        return self.low_ema.clone(), (self.high_ema - self.low_ema).clamp_min(self.min_scale)


def make_adam(module: nn.Module, lr: float, eps: float, weight_decay: float) -> torch.optim.AdamW:
    """Adam with decoupled decay ``theta <- (1 - weight_decay) theta`` per step on weight matrices only (the
    semantics of :func:`genrl.worldmodel.model.make_optimizer`).

    Raises:
        ValueError: ``lr <= 0`` or no trainable parameter.
    """
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise ValueError("make_adam got no trainable parameters")
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay / lr},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, eps=eps, betas=(0.9, 0.999))


def imagine(wm: WorldModel, policy: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]], start: State,
            horizon: int) -> tuple[State, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Roll the policy out in the world model's prior (official ``agent/dreamer.py`` ``WorldModel.imagine``).

    Step 0 is the (detached) start state; for ``i = 1 .. H``: ``a_i ~ pi(. | sg(feat_{i-1}))``,
    ``s_i = img_step(s_{i-1}, a_i)`` with sampled (straight-through) ``z``.

    Args:
        wm: the world model (frozen). policy: ``feat [N, F] -> (action [N, A], entropy [N])``.
        start: states ``[N, ...]``. horizon: ``H``.

    Returns:
        ``(states [N, H+1, ...], feat float32 [N, H+1, F], action float32 [N, H, A], entropy float32 [N, H])``.
    """
    state = {k: v.detach() for k, v in start.items()}
    states, feats, actions, ents = [state], [wm.rssm.get_feat(state)], [], []
    with wm.autocast():
        for _ in range(horizon):
            action, ent = policy(feats[-1].detach())
            state = wm.rssm.img_step(state, action, sample=True)
            states.append(state)
            feats.append(wm.rssm.get_feat(state))
            actions.append(action.float())
            ents.append(ent.float())
    stacked = {k: torch.stack([s[k] for s in states], 1) for k in ("deter", "stoch")}
    return stacked, torch.stack(feats, 1).float(), torch.stack(actions, 1), torch.stack(ents, 1)


def _own_step(loss: torch.Tensor, module: nn.Module, opt: torch.optim.Optimizer, max_norm: float) -> float:
    """Gradient of ``loss`` with respect to ``module``'s own parameters only (``torch.autograd.grad``: nothing
    accumulates in the frozen world model), then clip and step; returns the pre-clip gradient norm."""
    params = [p for p in module.parameters() if p.requires_grad]
    return _apply_grads(params, torch.autograd.grad(loss, params), opt, max_norm)


def _apply_grads(params: list[torch.Tensor], grads: Sequence[torch.Tensor], opt: torch.optim.Optimizer,
                 max_norm: float) -> float:
    """Install ``grads`` as ``params``' gradients, clip their global norm to ``max_norm`` and step ``opt``; returns
    the pre-clip norm (:func:`genrl.worldmodel.model.clip_and_step`)."""
    opt.zero_grad(set_to_none=True)
    for p, g in zip(params, grads):
        p.grad = g
    return clip_and_step(opt, params, max_norm)


class ActorCritic(nn.Module):
    """Actor, critic, slow critic and return normaliser, with one update in imagination (:meth:`update`).

    Args:
        cfg: behavior settings. feat_dim: world-model feature size. action_dim: ``A``.

    Buffers: ``updates`` int64 scalar (updates done; drives the slow-critic copies and survives checkpoints).
    """

    def __init__(self, cfg: BehaviorConfig, feat_dim: int, action_dim: int):
        super().__init__()
        self.cfg = cfg
        self.actor = Actor(feat_dim, action_dim, cfg.actor_layers, cfg.actor_units, cfg.actor_min_std,
                           cfg.actor_max_std)
        self.critic = Critic(feat_dim, cfg.critic_layers, cfg.critic_units, cfg.critic_bins, cfg.critic_low,
                             cfg.critic_high)
        self.slow_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.retnorm = ReturnNormalizer(cfg.return_low, cfg.return_high, cfg.return_ema, cfg.return_min_scale)
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """``{"actor": ..., "critic": ...}`` (:func:`make_adam` with the config's settings)."""
        c = self.cfg
        return {"actor": make_adam(self.actor, c.actor_lr, c.adam_eps, c.weight_decay),
                "critic": make_adam(self.critic, c.critic_lr, c.adam_eps, c.weight_decay)}

    @torch.no_grad()
    def act(self, feat: torch.Tensor, sample: bool = False) -> torch.Tensor:
        """Action float32 ``[..., A]`` in ``[-1, 1]``: ``tanh(mu)`` (``sample=False``) or a clipped sample."""
        return self.actor.sample(feat)[0] if sample else self.actor.mode(feat)

    def _sync_slow_critic(self) -> None:
        if int(self.updates) % self.cfg.slow_critic_every == 0:
            self.slow_critic.load_state_dict(self.critic.state_dict())

    def update(self, wm: WorldModel, reward_fn: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
               start: State, opts: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        """One actor update then one critic update from ``start`` states ``[N, ...]`` (official
        ``ActorCritic.update`` order).

        Args:
            wm: the frozen world model. reward_fn: imagined ``stoch [N, T, S, D]`` -> ``(reward [N, T], offsets
                [N])`` (e.g. :class:`genrl.behavior.reward.LatentReward`). opts: from :meth:`optimizers`.

        Returns:
            float metrics: ``reward_mean/std`` (all ``H+1`` states), ``reward_imagined_mean`` (states ``1..H``),
            ``align_offset_mean``, ``return_mean``, ``value_mean`` (slow critic), ``normed_return_mean/std``,
            ``return_low/high`` (EMA percentiles), ``return_scale``, ``actor_loss``, ``actor_entropy``,
            ``actor_std`` (mean sigma over the first 64 trajectories), ``action_abs``, ``actor_grad_norm``,
            ``critic_loss``, ``critic_mean``, ``critic_grad_norm``, ``seconds`` (wall time of the update).

        Raises:
            FloatingPointError: a non-finite loss, before any parameter changes.
        """
        t0 = time.perf_counter()
        c = self.cfg
        self._sync_slow_critic()
        states, feat, action, ent = imagine(wm, self.actor.sample, start, c.horizon)
        reward, offsets = reward_fn(states["stoch"])  # [N, H+1]
        value = self.slow_critic.mean(feat)  # [N, H+1], gradients reach feat
        ret = lambda_returns(reward, value, c.gamma, c.lam)  # [N, H]
        offset, scale = self.retnorm.update(ret)
        normed = (ret - offset) / scale
        actor_loss = -normed[:, 1:].mean()
        if c.actor_entropy:
            actor_loss = actor_loss - c.actor_entropy * ent[:, :-1].mean()
        if not torch.isfinite(actor_loss):
            raise FloatingPointError(f"actor loss is {actor_loss.item()}")
        actor_norm = _own_step(actor_loss, self.actor, opts["actor"], c.grad_clip)

        logits = self.critic(feat[:, :-1].detach())
        critic_loss = twohot_loss(logits, ret.detach(), self.critic.bins).mean()
        if not torch.isfinite(critic_loss):
            raise FloatingPointError(f"critic loss is {critic_loss.item()}")
        critic_norm = _own_step(critic_loss, self.critic, opts["critic"], c.grad_clip)
        self.updates += 1
        with torch.no_grad():
            _, std = self.actor(feat[:64, :-1])  # a subset: the statistic does not need every row
            low, _ = self.retnorm.stats()
            return {
                "reward_mean": reward.mean().item(), "reward_std": reward.std().item(),
                "reward_imagined_mean": reward[:, 1:].mean().item(),
                "align_offset_mean": offsets.float().mean().item(),
                "return_mean": ret.mean().item(), "value_mean": value.mean().item(),
                "normed_return_mean": normed.mean().item(), "normed_return_std": normed.std().item(),
                "return_low": low.item(), "return_high": self.retnorm.high_ema.item(),
                "return_scale": float(scale), "actor_loss": actor_loss.item(), "actor_entropy": ent.mean().item(),
                "actor_std": std.mean().item(), "action_abs": action.abs().mean().item(),
                "actor_grad_norm": actor_norm, "critic_loss": critic_loss.item(),
                "critic_mean": twohot_mean(logits.detach(), self.critic.bins).mean().item(),
                "critic_grad_norm": critic_norm, "seconds": time.perf_counter() - t0,
            }


__all__ = ["Actor", "Critic", "ReturnNormalizer", "ActorCritic", "lambda_returns", "make_adam", "imagine"]
