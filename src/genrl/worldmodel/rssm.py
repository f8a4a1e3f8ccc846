"""Recurrent state-space model with categorical latents (paper section 3, eq. 1; official
``agent/dreamer_utils.py`` ``EnsembleRSSM`` with ``ensemble: 1``, ``single_obs_posterior: true``).

States are dicts of tensors with any leading shape ``[...]`` (``[B]`` for one step, ``[B, T]`` for sequences)::

    {"deter": float32 [..., deter],        # GRU state h
     "stoch": float32 [..., S, D],         # one-hot sample (or mode) of z, with straight-through gradients
     "logit": float32 [..., S, D]}         # unimixed log-probabilities of z

Transition (prior): ``[z_{t-1} flat, a_t] -> img_in -> GRU(h_{t-1}) -> h_t -> prior_head -> p(z_t | h_t)``.
Posterior: ``embed_t -> post_head -> q(z_t | embed_t)`` (not conditioned on ``h``; ``single_obs_posterior``); the
posterior state carries the prior's ``h_t``. Action convention: ``action[:, t]`` is the action that *produced*
observation ``t``, so the filter step for ``t`` uses ``(post_{t-1}, action_t)``.

Usage::

    rssm = RSSM(cfg, action_dim=6, embed_dim=1536)
    post, prior = rssm.observe(embed, action, is_first)     # dicts of [B, T, ...]
    start = {k: v[:, -1] for k, v in post.items()}
    future = rssm.imagine(next_actions, start)               # dict of [B, H, ...]
    feat = rssm.get_feat(future)                             # [B, H, S*D + deter]
"""

from __future__ import annotations

import torch
import torch.nn as nn

from genrl.worldmodel.config import WorldModelConfig
from genrl.worldmodel.dists import OneHotDist
from genrl.worldmodel.nets import LayerNormGRU

State = dict[str, torch.Tensor]


def _head(inp: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inp, hidden), nn.LayerNorm(hidden), nn.SiLU(), nn.Linear(hidden, out))


class RSSM(nn.Module):
    """The world model's latent dynamics, or a prior-only model for the connector.

    Args:
        cfg: sizes (``deter``, ``hidden``, ``stoch``, ``discrete``) and ``unimix``.
        action_dim: size of the transition input ``a`` (env actions, or the connector's VLM-embedding input).
        embed_dim: size of the observation embedding; ``None`` builds a prior-only model without ``post_head``
            (:meth:`obs_step` / :meth:`observe` then raise ``RuntimeError``).

    Attributes:
        img_in: ``Linear(S*D + action_dim -> hidden) + LayerNorm + SiLU``.
        gru: :class:`LayerNormGRU` ``(hidden -> deter)``.
        prior_head: ``Linear(deter -> hidden) + LN + SiLU + Linear(hidden -> S*D)``.
        post_head: ``Linear(embed -> hidden) + LN + SiLU + Linear(hidden -> S*D)`` or ``None`` (prior-only).
    """

    def __init__(self, cfg: WorldModelConfig, action_dim: int, embed_dim: int | None):
        super().__init__()
        self.cfg = cfg
        self.action_dim = int(action_dim)
        self.embed_dim = embed_dim
        self.stoch, self.discrete, self.deter = cfg.stoch, cfg.discrete, cfg.deter
        self.unimix = cfg.unimix
        flat = cfg.stoch * cfg.discrete
        self.img_in = nn.Sequential(nn.Linear(flat + self.action_dim, cfg.hidden), nn.LayerNorm(cfg.hidden), nn.SiLU())
        self.gru = LayerNormGRU(cfg.hidden, cfg.deter)
        self.prior_head = _head(cfg.deter, cfg.hidden, flat)
        self.post_head = _head(embed_dim, cfg.hidden, flat) if embed_dim is not None else None

    # ----------------------------------------------------------------------------------------------- helpers
    @property
    def feat_dim(self) -> int:
        """Size of :meth:`get_feat`'s output ``S*D + deter``."""
        return self.stoch * self.discrete + self.deter

    def initial(self, batch_size: int, device: torch.device | str | None = None) -> State:
        """All-zero state of ``[batch_size]`` (no learned initial state in the world model)."""
        return {
            "deter": torch.zeros(batch_size, self.deter, device=device),
            "stoch": torch.zeros(batch_size, self.stoch, self.discrete, device=device),
            "logit": torch.zeros(batch_size, self.stoch, self.discrete, device=device),
        }

    def stoch_flat(self, state: State) -> torch.Tensor:
        """``state["stoch"]`` flattened to ``[..., S*D]``."""
        stoch = state["stoch"]
        return stoch.reshape(*stoch.shape[:-2], self.stoch * self.discrete)

    def get_feat(self, state: State) -> torch.Tensor:
        """``cat(stoch flat, deter)`` float32 ``[..., S*D + deter]`` (stochastic part first)."""
        return torch.cat([self.stoch_flat(state).float(), state["deter"].float()], dim=-1)

    def _dist_from_raw(self, raw: torch.Tensor, sample: bool) -> tuple[torch.Tensor, torch.Tensor]:
        dist = OneHotDist(raw.reshape(*raw.shape[:-1], self.stoch, self.discrete), self.unimix)
        return (dist.sample() if sample else dist.mode()), dist.logits

    # ----------------------------------------------------------------------------------------------- prior
    def prior_from_deter(self, deter: torch.Tensor, sample: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Prior ``p(z | h)``: returns ``(stoch, logit)``, both float32 ``[..., S, D]``.

        Args:
            deter: ``[..., deter]``.
            sample: draw a straight-through sample (True) or take the straight-through mode (False).
        """
        return self._dist_from_raw(self.prior_head(deter), sample)

    def img_step(self, state: State, action: torch.Tensor, sample: bool = True) -> State:
        """One transition ``(z_{t-1}, h_{t-1}, a_t) -> prior state t``.

        Args:
            state: previous state ``[B, ...]`` (only ``stoch`` and ``deter`` are read).
            action: float ``[B, action_dim]``.
            sample: sample (True) or mode (False) of the prior.

        Raises:
            ValueError: the action's last dimension is not ``action_dim``.
        """
        if action.shape[-1] != self.action_dim:
            raise ValueError(f"expected actions [..., {self.action_dim}], got shape {tuple(action.shape)}")
        stoch = self.stoch_flat(state)
        x = self.img_in(torch.cat([stoch, action.to(stoch.dtype)], dim=-1))
        deter = self.gru(x, state["deter"])
        stoch, logit = self.prior_from_deter(deter, sample)
        return {"deter": deter, "stoch": stoch, "logit": logit}

    def imagine(self, action: torch.Tensor, state: State, sample: bool = True) -> State:
        """Open-loop prior rollout: ``action [B, T, A]`` from ``state [B, ...]`` -> prior states ``[B, T, ...]``.

        Step ``t`` applies ``action[:, t]`` to the state of step ``t - 1`` (``state`` for ``t = 0``).
        """
        priors = []
        for t in range(action.shape[1]):
            state = self.img_step(state, action[:, t], sample)
            priors.append(state)
        return _stack(priors)

    # ----------------------------------------------------------------------------------------------- posterior
    def posterior(self, embed: torch.Tensor, sample: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior ``q(z | embed)``: ``(stoch, logit)`` float32 ``[..., S, D]`` from ``embed [..., E]``.

        Raises:
            RuntimeError: prior-only model.
        """
        if self.post_head is None:
            raise RuntimeError("this RSSM was built prior-only (embed_dim=None): it has no posterior")
        return self._dist_from_raw(self.post_head(embed), sample)

    def obs_step(self, prev_state: State, action: torch.Tensor, embed: torch.Tensor,
                 is_first: torch.Tensor | None, sample: bool = True) -> tuple[State, State]:
        """One filter step: ``(post_{t-1}, action_t, embed_t) -> (post_t, prior_t)``.

        Args:
            prev_state: posterior state of step ``t - 1``, ``[B, ...]``.
            action: ``action_t`` ``[B, A]``, the action that produced observation ``t``.
            embed: encoder output of observation ``t``, ``[B, E]``.
            is_first: bool ``[B]``; where true, the previous state and the action are replaced by zeros
                (the initial state). ``None`` means no resets.
            sample: sample (True) or mode (False) of prior and posterior.

        Returns:
            ``(post, prior)``; the posterior carries the prior's ``deter``.

        Raises:
            RuntimeError: prior-only model.
        """
        if self.post_head is None:
            raise RuntimeError("this RSSM was built prior-only (embed_dim=None): obs_step/observe need a posterior")
        if is_first is not None:
            keep = (~is_first.bool()).to(action.device)
            prev_state = {k: v * _expand(keep, v).to(v.dtype) for k, v in prev_state.items()}
            action = action * _expand(keep, action).to(action.dtype)
        prior = self.img_step(prev_state, action, sample)
        stoch, logit = self.posterior(embed, sample)
        return {"deter": prior["deter"], "stoch": stoch, "logit": logit}, prior

    def observe(self, embed: torch.Tensor, action: torch.Tensor, is_first: torch.Tensor | None,
                state: State | None = None, sample: bool = True) -> tuple[State, State]:
        """Filter a sequence: ``embed [B, T, E]``, ``action [B, T, A]``, ``is_first`` bool ``[B, T]``.

        Equal in distribution to calling :meth:`obs_step` for each step (and equal exactly with
        ``sample=False``), but faster: since the posterior ``q(z_t | x_t)`` does not depend on ``h``, all posterior
        samples are drawn first, in one batch; then the transition inputs of every step are known and only the
        GRU recurrence remains sequential (:meth:`teacher_forced`). The prior ``z`` is not sampled (``prior["stoch"]``
        is its straight-through mode; only ``prior["logit"]`` enters the loss).

        Args:
            state: state before the first step (default: zeros, :meth:`initial`).

        Returns:
            ``(post, prior)`` dicts of ``[B, T, ...]``; the posterior carries the prior's ``deter``.

        Raises:
            ValueError: ``embed`` and ``action`` disagree on ``[B, T]``. RuntimeError: prior-only model.
        """
        if embed.shape[:2] != action.shape[:2]:
            raise ValueError(f"embed {tuple(embed.shape)} and action {tuple(action.shape)} disagree on [B, T]")
        if state is None:
            state = self.initial(embed.shape[0], embed.device)
        stoch, logit = self.posterior(embed, sample)
        keep = None if is_first is None else ~is_first.bool().to(embed.device)
        prior = self.teacher_forced(state, stoch, action, keep)
        return {"deter": prior["deter"], "stoch": stoch, "logit": logit}, prior

    def teacher_forced(self, state: State, stoch: torch.Tensor, inputs: torch.Tensor,
                       keep: torch.Tensor | None = None) -> State:
        """Priors of a sequence whose latents are given (teacher forcing).

        Step ``t`` transitions from ``(z_{t-1}, h_{t-1})`` with input ``inputs[:, t]``, where ``z_{-1}, h_{-1}``
        come from ``state`` and ``z_{t-1} = stoch[:, t - 1]`` afterwards. Used by :meth:`observe` (``stoch`` =
        posterior samples) and by the connector's training (official ``VideoSSM.update``).

        Args:
            state: state before the first step ``[B, ...]`` (``stoch``, ``deter``).
            stoch: one-hot latents ``[B, T, S, D]`` (only ``0 .. T-2`` are used as previous latents).
            inputs: transition inputs ``[B, T, action_dim]``.
            keep: optional bool ``[B, T]``; where False (episode start) the previous latent, deter and input are
                replaced by zeros.

        Returns:
            prior states ``{"deter": [B, T, deter], "stoch": mode [B, T, S, D], "logit": [B, T, S, D]}``.
        """
        if inputs.shape[-1] != self.action_dim:
            raise ValueError(f"expected inputs [..., {self.action_dim}], got shape {tuple(inputs.shape)}")
        prev = torch.cat([state["stoch"][:, None].to(stoch.dtype), stoch[:, :-1]], dim=1)
        prev = prev.reshape(*prev.shape[:2], self.stoch * self.discrete)
        inputs = inputs.to(prev.dtype)
        if keep is not None:
            mask = keep[..., None].to(prev.dtype)
            prev, inputs = prev * mask, inputs * mask
        x = self.img_in(torch.cat([prev, inputs], dim=-1))
        deter = self.gru.scan(x, state["deter"], keep)
        prior_stoch, prior_logit = self.prior_from_deter(deter, sample=False)
        return {"deter": deter, "stoch": prior_stoch, "logit": prior_logit}


def _expand(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return mask.reshape(*mask.shape, *([1] * (like.dim() - mask.dim())))


def _stack(states: list[State]) -> State:
    return {k: torch.stack([s[k] for s in states], dim=1) for k in states[0]}


__all__ = ["RSSM", "State"]
