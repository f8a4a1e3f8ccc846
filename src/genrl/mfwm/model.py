"""The multimodal-foundation world model (MFWM): world model + connector + aligner (paper section 3.1).

One update (:meth:`MFWM.train_step`) = one world-model step on the batch, then *one* connector + aligner step on
the detached posterior and the batch's stored VLM embeddings (the official code steps the connector twice by
accident in ``train.py``). The two parts have separate optimizers with the official hyper-parameters.

Prompt reading (paper section 5): ``text -> VLM -> aligner -> connector rollout (mode) -> decoder``;
see :meth:`MFWM.imagine_prompt`.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from genrl.mfwm.aligner import Aligner, aligner_loss
from genrl.mfwm.connector import Connector
from genrl.worldmodel.config import WorldModelConfig
from genrl.worldmodel.model import WorldModel, clip_and_step, make_optimizer


class MFWM(nn.Module):
    """World model, connector and aligner.

    Args:
        cfg: world-model config (sizes are shared by the connector).
        action_dim: the embodiment's action size.
        embed_dim: VLM embedding size ``D``. n_frames: VLM clip length ``k``.
        aligner_noise: LAFITE noise level of the aligner's training inputs (official ``clip_lafite_noise``).
    """

    def __init__(self, cfg: WorldModelConfig, action_dim: int, embed_dim: int, n_frames: int,
                 aligner_noise: float = 0.5):
        super().__init__()
        self.cfg, self.action_dim, self.embed_dim, self.n_frames = cfg, action_dim, embed_dim, n_frames
        self.aligner_noise = aligner_noise
        self.wm = WorldModel(cfg, action_dim)
        self.connector = Connector(cfg, embed_dim, n_frames)
        self.aligner = Aligner(embed_dim)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """``{"wm": ..., "connector": ...}`` (Adam lr 1e-4, eps 1e-8, decoupled decay 1e-6; official ``model_opt``)."""
        return {"wm": make_optimizer(self.wm, self.cfg),
                "connector": make_optimizer(nn.ModuleList([self.connector, self.aligner]), self.cfg)}

    def connector_loss(self, post: dict[str, torch.Tensor], emb: torch.Tensor,
                       generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Connector KL + aligner cosine distance on one batch (official ``VideoSSM.update``).

        The aligner sees every step's (window) embedding of ``emb [B, T, D]``, with its own LAFITE noise; the official
        code feeds it each chunk's last-window embedding repeated ``k`` times (the same windows over training,
        deliberate: README, "Parity with the official code"). Returns ``(loss, metrics)``.
        """
        emb = emb.to(self.wm.device).float()
        with self.wm.autocast():  # the world model's precision rule (cfg.precision) for the whole MFWM
            conn, metrics = self.connector.loss(post, emb)
            align = aligner_loss(self.aligner, emb, self.aligner_noise, generator)
        metrics["aligner_cosine_distance"] = float(align.detach())
        return conn + align, metrics

    def train_step(self, batch: dict[str, torch.Tensor], opts: dict[str, torch.optim.Optimizer],
                   wm_loss: Callable | None = None, connector_loss: Callable | None = None,
                   freeze_world_model: bool = False) -> dict[str, float]:
        """One world-model update then one connector+aligner update. ``batch`` needs ``embedding [B, T, D]``.

        ``wm_loss`` / ``connector_loss`` replace ``self.wm.loss`` / ``self.connector_loss`` (same arguments and
        results), e.g. by their ``DistributedDataParallel`` wrappers (:mod:`genrl.mfwm.parallel`).
        ``freeze_world_model``: skip the world-model update; the connector learns from the frozen model's
        posterior samples (:meth:`WorldModel.observe`, no decoder, no world-model gradients), e.g. for a new VLM.

        Returns the metrics (losses, KLs, gradient norms). Raises ``FloatingPointError`` on a non-finite loss
        before any parameter is changed.
        """
        if freeze_world_model:
            with torch.no_grad():
                post, _ = self.wm.observe(batch)
            metrics: dict[str, float] = {}
        else:
            loss, post, metrics = (wm_loss or self.wm.loss)(batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"world-model loss is {loss.item()} ({metrics})")
            opts["wm"].zero_grad(set_to_none=True)
            loss.backward()
            metrics["model_grad_norm"] = clip_and_step(opts["wm"], self.wm.parameters(), self.cfg.grad_clip)
        post = {k: v.detach() for k, v in post.items()}
        closs, cmetrics = (connector_loss or self.connector_loss)(post, batch["embedding"])
        if not torch.isfinite(closs):
            raise FloatingPointError(f"connector/aligner loss is {closs.item()} ({cmetrics})")
        opts["connector"].zero_grad(set_to_none=True)
        closs.backward()
        params = list(self.connector.parameters()) + list(self.aligner.parameters())
        cmetrics["connector_grad_norm"] = clip_and_step(opts["connector"], params, self.cfg.grad_clip)
        return {**metrics, **cmetrics}

    @torch.no_grad()
    def imagine_prompt(self, emb: torch.Tensor, horizon: int, use_aligner: bool = True,
                       sample: bool = False) -> dict[str, torch.Tensor]:
        """Latent trajectory of prompt embeddings: ``emb [N, D]`` (unit norm) -> states ``[N, horizon, ...]``.

        ``use_aligner`` maps the embedding through the aligner first (text prompts: always; video prompts: a
        choice, see ``genrl decode``). The embedding is repeated for every step (official ``video_imagine``).
        """
        e = F.normalize(emb.to(self.wm.device).float(), dim=-1)
        if use_aligner:
            e = self.aligner(e)
        return self.connector.rollout(e[:, None].expand(-1, horizon, -1), sample=sample)

    @torch.no_grad()
    def decode_states(self, states: dict[str, torch.Tensor]) -> torch.Tensor:
        """uint8 frames ``[N, T, H, W, 3]`` decoded from the states' ``stoch`` (decoder sees z only)."""
        return self.wm.to_uint8(self.wm.decode(states["stoch"]))
