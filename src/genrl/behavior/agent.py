"""The GenRL agent acting in the real environment: pixels -> world-model posterior -> actor (paper section 4).

At evaluation time the policy learned in imagination acts from pixels through the world model (official
``agent/dreamer.py`` ``DreamerAgent.act``): each agent step the image is encoded and filtered by the RSSM posterior,
and the actor maps the latent features to an action (the actor's *mean*). :class:`WorldModelPolicy` implements
:class:`genrl.envs.rollout.BatchPolicy`, so it plugs into :func:`genrl.envs.rollout.evaluate`.

Action convention (same as :meth:`genrl.worldmodel.rssm.RSSM.obs_step` and the training batches): the action
given to the filter step of observation ``t`` is the action that *produced* observation ``t`` (the previous action
taken); on ``is_first`` the previous state and action are zeroed by ``obs_step``.

Deliberate difference: by default the posterior *mode* is used (``sample=False``); the official evaluation samples
the posterior (``eval_state_mean: False``). Pass ``sample=True`` for that behaviour.

Usage::

    policy = WorldModelPolicy(wm, act_fn=lambda feat: actor(feat).mean)
    result = evaluate(policy, "walker_walk", episodes=10)
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from genrl.worldmodel.model import WorldModel
from genrl.worldmodel.rssm import State


class WorldModelPolicy:
    """Batched pixel policy that filters observations with the world model and acts with ``act_fn``.

    Args:
        wm: the trained :class:`~genrl.worldmodel.model.WorldModel` (switched to ``eval()`` mode by the caller if
            needed; it is not modified here).
        act_fn: latent features float32 ``[N, feat_dim]`` -> actions ``[N, A]`` (e.g. the actor's mean); outputs
            are clipped to ``[-1, 1]``.
        device: torch device for inference (default: the world model's device).
        sample: sample the prior/posterior (True) or take their modes (False, default).

    Attributes:
        state: the current posterior state (dict of ``[N, ...]`` tensors) or None before :meth:`reset`.
        prev_action: float32 ``[N, A]``, the last action taken (the action that produced the next observation).
        last_feat: float32 ``[N, feat_dim]`` features of the last :meth:`act` call (for inspection/tests).
    """

    def __init__(self, wm: WorldModel, act_fn: Callable[[torch.Tensor], torch.Tensor],
                 device: str | torch.device | None = None, sample: bool = False):
        self.wm = wm
        self.act_fn = act_fn
        self.device = torch.device(device) if device is not None else wm.device
        self.sample = bool(sample)
        self.action_dim = wm.action_dim
        self.state: State | None = None
        self.prev_action: torch.Tensor | None = None
        self.last_feat: torch.Tensor | None = None

    def reset(self, n: int) -> None:
        """Start ``n`` episodes: zero state (``wm.rssm.initial(n)``) and zero previous actions ``[n, A]``."""
        if n < 1:
            raise ValueError(f"WorldModelPolicy.reset: n must be >= 1, got {n}")
        self.state = self.wm.rssm.initial(n, self.device)
        self.prev_action = torch.zeros(n, self.action_dim, device=self.device)
        self.last_feat = None

    @torch.no_grad()
    def act(self, images: np.ndarray, is_first: np.ndarray) -> np.ndarray:
        """One filter step and one action per environment.

        Args:
            images: uint8 ``[N, 64, 64, 3]`` (HWC, as the environments return them).
            is_first: bool ``[N]``; True on each episode's reset frame (state and previous action are zeroed).

        Returns:
            float32 ``[N, A]`` in ``[-1, 1]``.

        Raises:
            RuntimeError: :meth:`act` before :meth:`reset`.
            ValueError: ``images`` is not uint8 ``[N, H, W, 3]`` with ``N`` the batch size of :meth:`reset`, or
                ``act_fn`` returned a shape other than ``[N, A]``.
        """
        if self.state is None or self.prev_action is None:
            raise RuntimeError("WorldModelPolicy.act called before reset(n)")
        n = self.prev_action.shape[0]
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[0] != n or images.shape[-1] != 3:
            raise ValueError(f"WorldModelPolicy.act: images must be uint8 [N={n}, H, W, 3], "
                             f"got {images.dtype} {images.shape}")
        obs = torch.from_numpy(images).to(self.device).permute(0, 3, 1, 2)  # [N, 3, H, W] uint8
        first = torch.as_tensor(np.asarray(is_first, dtype=bool).reshape(n), device=self.device)
        with self.wm.autocast():
            embed = self.wm.encoder(self.wm.preprocess(obs))
            post, _ = self.wm.rssm.obs_step(self.state, self.prev_action, embed, first, self.sample)
        feat = self.wm.rssm.get_feat(post).float()
        action = torch.as_tensor(self.act_fn(feat)).float()
        if tuple(action.shape) != (n, self.action_dim):
            raise ValueError(f"WorldModelPolicy: act_fn must return [N={n}, A={self.action_dim}] for feat "
                             f"{tuple(feat.shape)}, got shape {tuple(action.shape)}")
        action = action.clamp(-1.0, 1.0).to(self.device)
        self.state, self.prev_action, self.last_feat = post, action, feat
        return action.cpu().numpy().astype(np.float32)


__all__ = ["WorldModelPolicy"]
