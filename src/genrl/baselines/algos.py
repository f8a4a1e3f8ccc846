"""IQL, TD3+BC and offline TD3 on pixels with one shared encoder and update code (paper section 4.1, appendix D).

* **IQL** (Kostrikov et al. 2021): ``V`` fits an upper expectile (``expectile = 0.7``) of the target twin-Q
  minimum; both Qs regress ``r + gamma (1 - done) V(s')``; the actor maximizes the advantage-weighted
  log-likelihood of the dataset actions, weights ``exp(temperature * (Q - V))`` (temperature 3) clipped at 100.
* **TD3+BC** (Fujimoto & Gu 2021): TD3's critic (target policy smoothing noise 0.2 clipped at 0.5, clipped double
  Q) and, every ``policy_delay = 2`` updates, the actor loss ``-lambda Q1(s, pi(s)) + (pi(s) - a)^2`` with
  ``lambda = alpha / mean|Q1|`` (alpha 2.5), then the target networks.
* **TD3** (Fujimoto et al. 2018), offline: TD3+BC without the behavior-cloning term (``-Q1(s, pi(s))``).

All: ``gamma = 0.99``, Polyak ``tau = 0.005``, Adam ``lr = 3e-4`` (the original papers' values). Following DrQ-v2,
the encoder is trained by the critic-side losses only (Q, and V for IQL); the actor reads detached features and
target critics read the online encoder's features (no target encoder).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# the config, its presets and make_config live in the torch-free config module (the CLI reads them)
from genrl.baselines.config import ALGOS, PRESETS, AgentConfig, make_config
from genrl.baselines.nets import Actor, PixelEncoder, TwinCritic, ValueHead


def _soft_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    with torch.no_grad():
        for t, o in zip(target.parameters(), online.parameters()):
            t.lerp_(o, tau)


class BaselineAgent(nn.Module):
    """Encoder, actor, twin critic (+ target), IQL value or TD3 target actor, and their updates.

    Args:
        cfg: :class:`AgentConfig`. action_dim: ``A``. image_size: frame side ``H = W`` (64).
    """

    def __init__(self, cfg: AgentConfig, action_dim: int, image_size: int = 64):
        super().__init__()
        self.cfg = cfg
        self.action_dim = int(action_dim)
        sizes = dict(feature_dim=cfg.feature_dim, hidden=cfg.hidden_dim, layers=cfg.hidden_layers,
                     layernorm=cfg.layernorm)
        self.encoder = PixelEncoder(3 * cfg.frame_stack, image_size, cfg.encoder_channels, cfg.encoder_strides)
        rd = self.encoder.repr_dim
        self.actor = Actor(rd, action_dim, **sizes)
        self.critic = TwinCritic(rd, action_dim, **sizes)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        if cfg.algo == "iql":
            self.value = ValueHead(rd, **sizes)
        else:
            self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """``{"critic": Adam(encoder + critic [+ value]), "actor": Adam(actor)}`` (names used in checkpoints)."""
        critic_params = list(self.encoder.parameters()) + list(self.critic.parameters())
        if self.cfg.algo == "iql":
            critic_params += list(self.value.parameters())
        return {"critic": torch.optim.Adam(critic_params, lr=self.cfg.lr),
                "actor": torch.optim.Adam(self.actor.parameters(), lr=self.cfg.lr)}

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """Deterministic action (the actor's mean) for uint8 ``[N, 3S, H, W]`` stacks -> float32 ``[N, A]``."""
        return self.actor(self.encoder(obs))

    def update(self, batch: dict[str, torch.Tensor], opts: dict[str, torch.optim.Optimizer], step: int) -> dict:
        """One gradient step on a batch of :meth:`~genrl.baselines.replay.FrameStackReplay.batch` (as tensors).

        Args:
            batch: ``obs``/``next_obs`` uint8 ``[B, 3S, H, W]``, ``action`` ``[B, A]``, ``reward``/``done`` ``[B]``.
            opts: from :meth:`make_optimizers`.
            step: index of this update (0-based); TD3's delayed actor updates run when ``step % delay == 0``.

        Returns:
            ``{name: float}`` losses and diagnostics (``critic_loss``, ``q_mean``, ``actor_loss``, ...).
        """
        if self.cfg.algo == "iql":
            return self._update_iql(batch, opts)
        return self._update_td3(batch, opts, step)

    def _update_iql(self, b: dict[str, torch.Tensor], opts: dict) -> dict:
        c = self.cfg
        h = self.encoder(b["obs"])
        with torch.no_grad():
            h_next = self.encoder(b["next_obs"])
            target_q = torch.min(*self.critic_target(h, b["action"]))
            next_v = self.value(h_next)
            y = b["reward"] + c.gamma * (1.0 - b["done"]) * next_v
        v = self.value(h)
        diff = target_q - v
        value_loss = (torch.abs(c.expectile - (diff < 0).float()) * diff.pow(2)).mean()
        q1, q2 = self.critic(h, b["action"])
        critic_loss = 0.5 * (F.mse_loss(q1, y) + F.mse_loss(q2, y))
        opts["critic"].zero_grad(set_to_none=True)
        (critic_loss + value_loss).backward()
        opts["critic"].step()
        weights = torch.exp(c.temperature * diff.detach()).clamp(max=c.max_weight)
        log_prob, mean = self.actor.log_prob(h.detach(), b["action"])
        actor_loss = -(weights * log_prob).mean()
        opts["actor"].zero_grad(set_to_none=True)
        actor_loss.backward()
        opts["actor"].step()
        _soft_update(self.critic_target, self.critic, c.tau)
        return {"critic_loss": critic_loss.item(), "value_loss": value_loss.item(), "actor_loss": actor_loss.item(),
                "q_mean": q1.mean().item(), "v_mean": v.mean().item(), "adv_mean": diff.mean().item(),
                "weight_mean": weights.mean().item(), "reward_mean": b["reward"].mean().item(),
                "actor_data_mse": F.mse_loss(mean.detach(), b["action"]).item()}

    def _update_td3(self, b: dict[str, torch.Tensor], opts: dict, step: int) -> dict:
        c = self.cfg
        h = self.encoder(b["obs"])
        with torch.no_grad():
            h_next = self.encoder(b["next_obs"])
            noise = (torch.randn_like(b["action"]) * c.policy_noise).clamp(-c.noise_clip, c.noise_clip)
            next_a = (self.actor_target(h_next) + noise).clamp(-1.0, 1.0)
            y = b["reward"] + c.gamma * (1.0 - b["done"]) * torch.min(*self.critic_target(h_next, next_a))
        q1, q2 = self.critic(h, b["action"])
        critic_loss = 0.5 * (F.mse_loss(q1, y) + F.mse_loss(q2, y))
        opts["critic"].zero_grad(set_to_none=True)
        critic_loss.backward()
        opts["critic"].step()
        out = {"critic_loss": critic_loss.item(), "q_mean": q1.mean().item(), "reward_mean": b["reward"].mean().item()}
        if step % c.policy_delay == 0:
            hd = h.detach()
            pi = self.actor(hd)
            self.critic.requires_grad_(False)  # the actor step needs dQ/da only
            q = self.critic.first(hd, pi)
            self.critic.requires_grad_(True)
            bc = F.mse_loss(pi, b["action"])
            if c.algo == "td3bc":
                lam = c.bc_alpha / q.abs().mean().detach().clamp_min(1e-6)
                actor_loss = -lam * q.mean() + bc
                out["lambda"] = lam.item()
            else:
                actor_loss = -q.mean()
            opts["actor"].zero_grad(set_to_none=True)
            actor_loss.backward()
            opts["actor"].step()
            _soft_update(self.critic_target, self.critic, c.tau)
            _soft_update(self.actor_target, self.actor, c.tau)
            out.update({"actor_loss": actor_loss.item(), "actor_data_mse": bc.item()})
        return out


class PixelPolicy:
    """Evaluation wrapper (:class:`genrl.envs.rollout.BatchPolicy`): keeps a frame stack per environment.

    On ``is_first`` the stack is filled with the reset frame (the replay pads episode starts the same way);
    otherwise the oldest frame is dropped. Actions are the deterministic actor mean, float32 ``[N, A]`` in
    ``[-1, 1]``.

    Args:
        agent: a trained :class:`BaselineAgent`. device: where it lives.
    """

    def __init__(self, agent: BaselineAgent, device: str | torch.device = "cpu"):
        self.agent = agent
        self.device = torch.device(device)
        self.stack: np.ndarray | None = None

    def reset(self, n: int) -> None:
        self.stack = None

    def act(self, images: np.ndarray, is_first: np.ndarray) -> np.ndarray:
        """uint8 ``[N, H, W, 3]`` + bool ``[N]`` -> float32 ``[N, A]``."""
        frames = np.asarray(images, np.uint8).transpose(0, 3, 1, 2)  # [N, 3, H, W]
        s = self.agent.cfg.frame_stack
        if self.stack is None or self.stack.shape[0] != len(frames):
            self.stack = np.repeat(frames[:, None], s, axis=1)
        else:
            self.stack = np.concatenate([self.stack[:, 1:], frames[:, None]], axis=1)
            first = np.asarray(is_first, bool)
            self.stack[first] = np.repeat(frames[first][:, None], s, axis=1)
        obs = torch.from_numpy(self.stack.reshape(len(frames), -1, *frames.shape[2:])).to(self.device)
        was_training = self.agent.training
        self.agent.eval()
        action = self.agent.act(obs).float().cpu().numpy()
        self.agent.train(was_training)
        return np.clip(action, -1.0, 1.0).astype(np.float32)


__all__ = ["ALGOS", "PRESETS", "AgentConfig", "BaselineAgent", "PixelPolicy", "make_config"]
