"""Imagination start states: offline (dataset posteriors) or data-free (synthetic) (paper 4.2, appendix F.1;
official ``agent/dreamer.py`` ``WorldModel.imagine``, data-free branch of ``train.py`` ``Workspace.train``).

* :func:`offline_starts`: every posterior state of a ``[B, T]`` dataset batch, flattened to ``B * T`` starts
  (the official 32 x 32 = 1024), detached.
* :func:`data_free_starts`: no data at all. Each start begins at ``h = 0`` with a ``z`` that is, with probability
  ``connector_fraction`` (0.5), the ``z`` of a connector sample driven by random unit embeddings (through the
  aligner, sampled priors, a fresh embedding per sequence *and* step), else a uniformly random one-hot ``z``
  (``logit`` = uniform); then ``warmup_steps`` (5) imagined steps are taken with uniform random actions for a
  ``random_action_fraction`` (0.5) share of the starts and with the current policy for the rest. Deliberate
  difference from the official code: every start gets its own initial state (the official ``train.py``
  ``Workspace.train`` warms the same 512 initial states up twice, an official bug), and any count ``n`` works (no
  divisibility constraint).

Everything runs under ``torch.no_grad`` and uses the global torch RNG.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from genrl.mfwm.model import MFWM
from genrl.worldmodel.model import WorldModel
from genrl.worldmodel.rssm import State


@torch.no_grad()
def offline_starts(wm: WorldModel, batch: dict[str, torch.Tensor]) -> State:
    """Posterior states of a dataset batch as imagination starts (official ``agent/dreamer.py`` ``WorldModel.imagine``).

    Args:
        wm: the (frozen) world model.
        batch: ``observation`` uint8 ``[B, T, 3, 64, 64]``, ``action`` float ``[B, T, A]``, ``is_first`` bool
            ``[B, T]``.

    Returns:
        float32 states ``{"deter": [B*T, deter], "stoch": [B*T, S, D], "logit": [B*T, S, D]}`` on the model's
        device (posterior ``z`` sampled, as the official ``agent/dreamer_utils.py`` ``observe`` does).
    """
    post, _ = wm.observe(batch, sample=True)
    return {k: v.reshape(-1, *v.shape[2:]).float() for k, v in post.items()}


def _uniform_latents(n: int, stoch: int, discrete: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    index = torch.randint(0, discrete, (n, stoch), device=device)
    onehot = F.one_hot(index, discrete).float()
    logit = torch.full((n, stoch, discrete), -math.log(discrete), device=device)
    return onehot, logit


@torch.no_grad()
def connector_latents(model: MFWM, n: int) -> torch.Tensor:
    """``n`` connector samples' ``z`` float32 ``[n, S, D]`` from random unit embeddings (official ``train.py``
    ``Workspace.train``).

    Sequences of ``2 k`` steps (``k`` = the VLM's frames per clip), a fresh ``normalize(N(0, I))`` embedding per
    sequence and step, passed through the aligner, sampled priors; all steps are used.
    """
    steps = 2 * model.n_frames
    seqs = max(1, math.ceil(n / steps))
    emb = F.normalize(torch.randn(seqs, steps, model.embed_dim, device=model.wm.device), dim=-1)
    states = model.connector.rollout(model.aligner(emb), sample=True)
    return states["stoch"].reshape(-1, *states["stoch"].shape[2:])[:n].float()


@torch.no_grad()
def data_free_starts(model: MFWM, n: int, policy: Callable[[torch.Tensor], torch.Tensor] | None,
                     warmup_steps: int = 5, connector_fraction: float = 0.5,
                     random_action_fraction: float = 0.5) -> State:
    """Synthetic imagination starts that need no dataset (paper appendix F.1; official ``train.py``
    ``Workspace.train``).

    Args:
        model: the (frozen) MFWM (world model + connector + aligner).
        n: number of starts.
        policy: ``feat [m, F] -> action [m, A]`` in ``[-1, 1]`` (the current actor, sampled) for the policy share
            of the warm-up; ``None`` uses random actions for every start.
        warmup_steps: imagined steps before the states are returned (0 returns the mixed initial states).
        connector_fraction: probability of a connector ``z`` (else uniform random ``z``).
        random_action_fraction: share of starts warmed up with ``U(-1, 1)`` actions (the first ones).

    Returns:
        float32 states ``{"deter": [n, deter], "stoch": [n, S, D], "logit": [n, S, D]}`` on the model's device.

    Raises:
        ValueError: ``n < 1``.
    """
    if n < 1:
        raise ValueError(f"need at least one start state, got n={n}")
    wm = model.wm
    dev = wm.device
    cfg = wm.cfg
    state = wm.rssm.initial(n, dev)
    z, logit = _uniform_latents(n, cfg.stoch, cfg.discrete, dev)
    if connector_fraction > 0:
        conn = connector_latents(model, n)
        use = (torch.rand(n, device=dev) < connector_fraction)[:, None, None]
        z = torch.where(use, conn, z)
    state = {"deter": state["deter"], "stoch": z, "logit": logit}
    n_rand = n if policy is None else int(round(n * random_action_fraction))
    with wm.autocast():
        for _ in range(warmup_steps):
            action = torch.rand(n, wm.action_dim, device=dev) * 2.0 - 1.0
            if n_rand < n:
                feat = wm.rssm.get_feat({k: v[n_rand:] for k, v in state.items()})
                action[n_rand:] = policy(feat).float()
            state = wm.rssm.img_step(state, action, sample=True)
    return {k: v.float() for k, v in state.items()}


@torch.no_grad()
def episode_posterior_modes(wm: WorldModel, episode: dict) -> torch.Tensor:
    """Posterior ``z`` modes of a whole episode filtered from its first frame -> uint8 one-hot ``[T, S, D]`` (CPU).

    Args:
        episode: a loaded episode with ``observation`` uint8 ``[T, 3, H, W]``, ``action`` ``[T, A]`` and
            ``is_first`` ``[T]`` (numpy, as :meth:`genrl.data.dataset.Dataset.load` returns them).
    """
    batch = {k: torch.from_numpy(np.asarray(episode[k]))[None] for k in ("observation", "action", "is_first")}
    post, _ = wm.observe(batch, sample=False)
    return post["stoch"][0].round().to(torch.uint8).cpu()


__all__ = ["offline_starts", "data_free_starts", "connector_latents", "episode_posterior_modes"]
