"""Latent connector ``p(s_{t:t+k} | e)``: VLM embedding -> world-model latent trajectory (paper eq. 2;
official ``agent/video_utils.py`` ``VideoSSM``).

A second sequence model with the world model's sizes (paper appendix: "same hyperparameters and architecture as
the sequential dynamics") that takes the rescaled VLM embedding ``sqrt(D) * e`` in place of the action and has a
learned initial state computed from the embedding. Prior path only: it never sees images.

Training (official ``VideoSSM.update``): embedding chunks of ``k`` steps (each step of chunk j gets the embedding of the
window ending at the chunk's last step), teacher forcing with the *detached* world-model posterior sample
``z_{t-1}``, loss ``KL[p_conn(s_t | s_{t-1}, e) || sg(q(s_t | x_t))]`` (the paper's direction), no free bits. The
official code's 8 always-zero "temporal one-hot" inputs are dropped (they carry nothing), so the input is ``D``-d.
The connector is updated exactly once per batch (the official ``train.py`` updates it twice per batch by
accident: once inside ``WorldModel.update``, once more when ``train_connector`` is set).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from genrl.worldmodel.config import WorldModelConfig
from genrl.worldmodel.dists import kl_categorical
from genrl.worldmodel.rssm import RSSM


def chunk_embeddings(emb: torch.Tensor, k: int) -> torch.Tensor:
    """Per-step embeddings ``[B, T, D]`` -> chunked ``[B, T, D]``: step t gets the embedding at index
    ``min(k * (t // k) + k - 1, T - 1)`` (the clip ending at its chunk's last step; official ``VideoSSM.update``)."""
    T = emb.shape[1]
    idx = torch.clamp((torch.arange(T, device=emb.device) // k) * k + k - 1, max=T - 1)
    return emb[:, idx]


class Connector(nn.Module):
    """Embedding-conditioned prior-only RSSM with a learned initial state.

    Args:
        cfg: the world model's config (deter/hidden/stoch/discrete/unimix are shared).
        embed_dim: VLM embedding size ``D``. n_frames: VLM clip length ``k`` (chunk size).
        rescale: multiply embeddings by ``sqrt(D)`` (official ``rescale_embeds``: ~unit-variance coordinates).
        kl_balance: weight of the trained KL term (0.8 officially; the other 0.2 has no gradient).
    """

    def __init__(self, cfg: WorldModelConfig, embed_dim: int, n_frames: int, rescale: bool = True,
                 kl_balance: float = 0.8):
        super().__init__()
        self.cfg, self.embed_dim, self.n_frames = cfg, embed_dim, n_frames
        self.scale = math.sqrt(embed_dim) if rescale else 1.0
        self.kl_balance = kl_balance
        self.rssm = RSSM(cfg, action_dim=embed_dim, embed_dim=None)
        h = cfg.hidden
        self.init_net = nn.Sequential(nn.Linear(embed_dim, h), nn.LayerNorm(h), nn.SiLU(),
                                      nn.Linear(h, h), nn.LayerNorm(h), nn.SiLU(), nn.Linear(h, cfg.deter))

    def inputs(self, emb: torch.Tensor) -> torch.Tensor:
        """Connector inputs ``sqrt(D) * e`` (same shape)."""
        return emb * self.scale

    def initial(self, a0: torch.Tensor) -> dict[str, torch.Tensor]:
        """Learned initial state from the first (scaled) input ``a0 [B, D]``; ``z`` is always sampled
        (official ``VideoSSM.initial``)."""
        deter = self.init_net(a0)
        stoch, logit = self.rssm.prior_from_deter(deter, sample=True)
        return {"deter": deter, "stoch": stoch, "logit": logit}

    def rollout(self, emb: torch.Tensor, sample: bool = False,
                init_stoch: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Open-loop latent trajectory from per-step embeddings (official ``VideoSSM.video_imagine``).

        Args:
            emb: float ``[B, T, D]`` embeddings (unit norm; repeat one prompt embedding T times for a prompt).
            sample: sample ``z_t`` (True) or take the mode (False, used for prompt targets).
            init_stoch: optional ``[B, S, D]`` overriding the initial ``z`` (e.g. a world-model state).

        Returns:
            states ``{"deter": [B, T, deter], "stoch": [B, T, S, Dc], "logit": [B, T, S, Dc]}``; step t is one
            transition after step t-1 (the first one after the learned initial state).
        """
        a = self.inputs(emb)
        state = self.initial(a[:, 0])
        if init_stoch is not None:
            state = {**state, "stoch": init_stoch}
        out = []
        for t in range(a.shape[1]):
            state = self.rssm.img_step(state, a[:, t], sample=sample)
            out.append(state)
        return {k: torch.stack([s[k] for s in out], 1) for k in out[0]}

    def loss(self, post: dict[str, torch.Tensor], emb: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Teacher-forced connector KL against the detached world-model posterior (paper eq. 2; official
        ``VideoSSM.update``).

        Args:
            post: world-model posterior ``{"stoch": [B, T, S, Dc], "logit": [B, T, S, Dc], ...}`` (detached here).
            emb: per-step VLM embeddings ``[B, T, D]`` of the same batch (window ending at each step).

        Returns:
            ``(loss, {"connector_kl": mean KL})``; rows/steps whose embedding is all zeros (official padding) are
            excluded from the mean.
        """
        stoch = post["stoch"].detach()
        post_logit = post["logit"].detach().float()
        chunked = chunk_embeddings(emb, self.n_frames)
        a = self.inputs(chunked)
        # step 0 starts from the learned initial state, step t > 0 from the posterior z_{t-1} (one GRU scan)
        prior_logit = self.rssm.teacher_forced(self.initial(a[:, 0]), stoch, a)["logit"].float()
        kl = kl_categorical(prior_logit, post_logit)  # [B, T]
        valid = (chunked.float().norm(dim=-1) > 1e-6).float()
        mean_kl = (kl * valid).sum() / valid.sum().clamp_min(1.0)
        return self.kl_balance * mean_kl, {"connector_kl": float(mean_kl.detach())}
