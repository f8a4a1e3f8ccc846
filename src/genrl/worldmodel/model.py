"""The GenRL world model: encoder + RSSM + image decoder (+ optional reward head), its loss and optimiser.

Sources: official ``agent/dreamer.py`` ``WorldModel.loss``/``preprocess`` and ``agent/dreamer_utils.py`` ``Optimizer``
(except weight decay: norms and biases are not decayed, the official code decays every parameter);
paper section 3, eq. 1.

Loss (float32; ``B, T`` averaged)::

    L = kl_scale * [(1 - balance) max(free, KL[q || sg(p)]) + balance max(free, KL[sg(q) || p])]
        + sum_{C,H,W} (x_hat - x)^2                      # pixels in [-0.5, 0.5], decoder sees z only
        + twohot NLL of the dataset reward on sg(feat)   # only with cfg.reward_head

Usage::

    wm = WorldModel(preset("small"), action_dim=6)
    opt = make_optimizer(wm, wm.cfg)
    loss, post, metrics = wm.loss(batch)       # batch: observation uint8 [B,T,3,64,64], action, is_first
    opt.zero_grad(set_to_none=True)
    loss.backward()
    metrics["model_grad_norm"] = clip_and_step(opt, wm.parameters(), wm.cfg.grad_clip)
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
import torch.nn as nn

from genrl.worldmodel.config import WorldModelConfig, use_bf16
from genrl.worldmodel.dists import OneHotDist, kl_balance_loss, twohot_bins, twohot_loss, twohot_mean
from genrl.worldmodel.nets import Decoder, Encoder, mlp
from genrl.worldmodel.rssm import RSSM, State


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images ``[..., 3, H, W]`` in the ``[-0.5, 0.5]`` space -> uint8 ``[..., H, W, 3]`` (clipped, rounded)."""
    x = ((images.detach().float() + 0.5) * 255.0).clamp(0.0, 255.0).round().to(torch.uint8)
    return x.movedim(-3, -1)


class WorldModel(nn.Module):
    """Encoder, RSSM and decoder (and optionally a reward head) trained with the world-model loss.

    Args:
        cfg: sizes, loss weights and precision.
        action_dim: environment action size ``A``.

    Attributes:
        cfg: the config.
        encoder: :class:`~genrl.worldmodel.nets.Encoder` (``embed_dim = 32 * cnn_depth``).
        rssm: :class:`~genrl.worldmodel.rssm.RSSM` with a posterior on the image embedding.
        decoder: :class:`~genrl.worldmodel.nets.Decoder` (input: flat one-hot ``z`` only).
        reward: ``None`` unless ``cfg.reward_head``; else an MLP ``feat -> reward_bins`` twohot logits
            (zero-initialised output layer) trained on ``sg(feat)``; its bin centres are the buffer
            ``reward_support`` (float32 ``[reward_bins]``, symlog space).
    """

    def __init__(self, cfg: WorldModelConfig, action_dim: int):
        super().__init__()
        self.cfg = cfg
        self.action_dim = int(action_dim)
        self.encoder = Encoder(cfg)
        self.rssm = RSSM(cfg, self.action_dim, self.encoder.embed_dim)
        self.decoder = Decoder(cfg)
        self.reward: nn.Sequential | None = None
        if cfg.reward_head:
            self.reward = mlp(self.rssm.feat_dim, cfg.reward_units, cfg.reward_layers, out=cfg.reward_bins)
            nn.init.zeros_(self.reward[-1].weight)
            nn.init.zeros_(self.reward[-1].bias)
            self.register_buffer("reward_support", twohot_bins(cfg.reward_bins), persistent=False)

    # ----------------------------------------------------------------------------------------------- helpers
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def embed_dim(self) -> int:
        return self.encoder.embed_dim

    @property
    def feat_dim(self) -> int:
        return self.rssm.feat_dim

    def autocast(self) -> torch.autocast:
        """bfloat16 autocast context on this model's device, enabled per ``cfg.precision`` (see ``use_bf16``)."""
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16,
                              enabled=use_bf16(self.cfg.precision, self.device.type))

    def compile_convnets(self) -> None:
        """``torch.compile`` the encoder and the decoder in place (``nn.Module.compile``: state-dict keys unchanged).

        Inductor fuses each ChannelLayerNorm with its SiLU and the casts around them; eager bf16 LayerNorm over
        16-32 channels is 2-2.5x slower than fp32 on CPU (``benchmarks/RESULTS.md``). The first call per input
        shape compiles (~30 s on 2 cores, needs a C++ compiler on CPU); outputs match eager within float
        rounding. Shapes vary (training batch, single-frame acting), so dynamic shapes are allowed.
        """
        self.encoder.compile()
        self.decoder.compile()

    @staticmethod
    def preprocess(observation: torch.Tensor) -> torch.Tensor:
        """uint8 ``[..., 3, H, W]`` -> float32 ``x / 255 - 0.5``; float inputs are taken as already preprocessed."""
        if observation.dtype == torch.uint8:
            return observation.float() / 255.0 - 0.5
        return observation.float()

    to_uint8 = staticmethod(to_uint8)

    def decode(self, stoch: torch.Tensor) -> torch.Tensor:
        """One-hot latents ``[..., S, D]`` -> float32 pixel means ``[..., 3, 64, 64]`` (nominally in [-0.5, 0.5])."""
        with self.autocast():
            out = self.decoder(stoch.reshape(*stoch.shape[:-2], stoch.shape[-2] * stoch.shape[-1]))
        return out.float()

    def reward_mean(self, feat: torch.Tensor) -> torch.Tensor:
        """Predicted reward float32 ``[...]`` for features ``[..., feat_dim]``. Raises ``RuntimeError`` without head."""
        if self.reward is None:
            raise RuntimeError("this world model has no reward head (cfg.reward_head=False)")
        with self.autocast():
            logits = self.reward(feat)
        return twohot_mean(logits, self.reward_support)

    def observe(self, batch: dict[str, torch.Tensor], state: State | None = None,
                sample: bool = True) -> tuple[State, State]:
        """Encode and filter a batch (no losses): ``(post, prior)`` dicts of ``[B, T, ...]``."""
        dev = self.device
        obs = self.preprocess(batch["observation"].to(dev))
        with self.autocast():
            embed = self.encoder(obs)
            return self.rssm.observe(embed, batch["action"].to(dev).float(), batch["is_first"].to(dev), state,
                                     sample)

    # ----------------------------------------------------------------------------------------------- training
    def loss(self, batch: dict[str, torch.Tensor], state: State | None = None
             ) -> tuple[torch.Tensor, State, dict[str, float]]:
        """World-model loss of one batch.

        Args:
            batch: ``observation`` uint8 ``[B, T, 3, 64, 64]``, ``action`` float ``[B, T, A]``, ``is_first`` bool
                ``[B, T]``; ``reward`` float ``[B, T, 1]`` (or ``[B, T]``) required iff ``cfg.reward_head``.
            state: RSSM state before the first step (default zeros).

        Returns:
            ``(loss, post, metrics)``: float32 scalar loss; posterior states ``[B, T, ...]`` still attached to the
            graph (detach before re-using them); float metrics ``kl_loss, image_loss, image_mse, model_kl,
            prior_ent, post_ent, model_loss`` (+ ``reward_loss``). ``image_mse`` is the per-pixel squared error in
            ``[0, 1]`` image units.

        Raises:
            KeyError: a required batch key is missing.
        """
        cfg = self.cfg
        dev = self.device
        for key in ("observation", "action", "is_first") + (("reward",) if self.reward is not None else ()):
            if key not in batch:
                raise KeyError(f"world-model batch needs key {key!r}; got {sorted(batch)}")
        obs = self.preprocess(batch["observation"].to(dev))
        with self.autocast():
            embed = self.encoder(obs)
            post, prior = self.rssm.observe(embed, batch["action"].to(dev).float(), batch["is_first"].to(dev), state)
            recon = self.decoder(self.rssm.stoch_flat(post))
        sq_err = (recon.float() - obs) ** 2
        image_loss = sq_err.sum(dim=(-3, -2, -1)).mean()
        kl_loss, kl = kl_balance_loss(post["logit"], prior["logit"], cfg.kl_free, cfg.kl_balance)
        loss = cfg.kl_scale * kl_loss + image_loss
        reward_loss = None
        if self.reward is not None:
            feat = self.rssm.get_feat(post).detach()
            with self.autocast():
                logits = self.reward(feat)
            target = batch["reward"].to(dev).float().reshape(feat.shape[:-1])
            reward_loss = twohot_loss(logits, target, self.reward_support).mean()
            loss = loss + reward_loss
        with torch.no_grad():
            metrics = {
                "kl_loss": kl_loss.item(),
                "image_loss": image_loss.item(),
                "image_mse": sq_err.mean().item(),
                "model_kl": kl.mean().item(),
                "prior_ent": OneHotDist(prior["logit"]).entropy().mean().item(),
                "post_ent": OneHotDist(post["logit"]).entropy().mean().item(),
                "model_loss": loss.item(),
            }
            if reward_loss is not None:
                metrics["reward_loss"] = reward_loss.item()
        return loss, post, metrics

    # ----------------------------------------------------------------------------------------------- reports
    @torch.no_grad()
    def open_loop(self, batch: dict[str, torch.Tensor], context: int, horizon: int) -> dict[str, torch.Tensor]:
        """Open-loop video prediction for reports (modes, no sampling), aligned on the ``horizon`` predicted steps.

        Filters the first ``context`` steps, then imagines ``horizon`` steps with the batch's real actions
        ``action[:, context : context + horizon]`` (``is_first`` is ignored after the context) and decodes. For
        comparison the posterior is also filtered through the predicted steps (the filter is causal, so the context
        part is identical) and decoded.

        Returns:
            uint8 ``[B, horizon, 64, 64, 3]`` each: ``truth`` (observations ``context .. context + horizon - 1``),
            ``recon`` (decoded posteriors of those steps, i.e. with image context) and ``pred`` (decoded open-loop
            priors).

        Raises:
            ValueError: ``context < 1``, ``horizon < 0`` or the batch is shorter than ``context + horizon``.
        """
        steps = batch["observation"].shape[1]
        if context < 1 or horizon < 0 or context + horizon > steps:
            raise ValueError(f"open_loop needs 1 <= context and context + horizon <= T = {steps}; "
                             f"got context={context}, horizon={horizon}")
        end = context + horizon
        post, _ = self.observe({k: batch[k][:, :end] for k in ("observation", "action", "is_first")}, sample=False)
        recon = to_uint8(self.decode(post["stoch"][:, context:]))
        start = {k: v[:, context - 1] for k, v in post.items()}
        action = batch["action"][:, context:end].to(self.device).float()
        with self.autocast():
            prior = self.rssm.imagine(action, start, sample=False) if horizon > 0 else {"stoch": post["stoch"][:, :0]}
        pred = to_uint8(self.decode(prior["stoch"]))
        truth = batch["observation"][:, context:end].to(self.device)
        truth = truth.movedim(-3, -1) if truth.dtype == torch.uint8 else to_uint8(truth)
        return {"truth": truth, "recon": recon, "pred": pred}


def _unique_params(module_or_params: nn.Module | Iterable[torch.Tensor]) -> list[torch.Tensor]:
    params = module_or_params.parameters() if isinstance(module_or_params, nn.Module) else module_or_params
    seen: set[int] = set()
    out = []
    for p in params:
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def make_optimizer(module_or_params: nn.Module | Iterable[torch.Tensor], cfg: WorldModelConfig
                   ) -> torch.optim.AdamW:
    """Adam (``cfg.lr``, ``cfg.eps``, betas 0.9/0.999) with decoupled decay ``theta <- (1 - cfg.weight_decay) theta``.

    Implemented as ``torch.optim.AdamW`` with ``weight_decay = cfg.weight_decay / cfg.lr`` (AdamW multiplies by
    ``1 - lr * weight_decay`` before the Adam step, as the official ``Optimizer`` does), so the per-step factor is
    exactly ``1 - cfg.weight_decay`` at ``cfg.lr`` (changing the lr later scales the decay with it). Only parameters
    with two or more dimensions (weight matrices, conv kernels) are decayed; LayerNorm parameters and biases are not
    (deliberate deviation: the official ``Optimizer._apply_weight_decay`` multiplies every parameter).

    Raises:
        ValueError: no trainable parameters, or ``cfg.lr <= 0``.
    """
    params = _unique_params(module_or_params)
    if not params:
        raise ValueError("make_optimizer got no trainable parameters")
    if cfg.lr <= 0:
        raise ValueError(f"lr must be > 0, got {cfg.lr}")
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = []
    if decay:
        groups.append({"params": decay, "weight_decay": cfg.weight_decay / cfg.lr})
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return torch.optim.AdamW(groups, lr=cfg.lr, eps=cfg.eps, betas=(0.9, 0.999))


def clip_and_step(optimizer: torch.optim.Optimizer, params: nn.Module | Iterable[torch.Tensor],
                  max_norm: float) -> float:
    """Clip the global gradient norm of ``params`` to ``max_norm`` and step; returns the pre-clip norm.

    Gradients are not zeroed. A non-finite norm skips the step (as a GradScaler would) and is returned as is.
    """
    grads = [p for p in _unique_params(params) if p.grad is not None]
    if not grads:
        return 0.0
    norm = float(torch.nn.utils.clip_grad_norm_(grads, max_norm))
    if math.isfinite(norm):
        optimizer.step()
    return norm


__all__ = ["WorldModel", "make_optimizer", "clip_and_step", "to_uint8"]
