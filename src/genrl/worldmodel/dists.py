"""Distributions and losses of the world model, always computed in float32.

* :class:`OneHotDist`: ``S`` independent categoricals with ``D`` classes and a uniform mixture ("unimix"), with
  straight-through one-hot samples (official ``agent/dreamer_utils.py`` ``OneHotDist``).
* :func:`kl_categorical` / :func:`kl_balance_loss`: the KL between two such distributions and the balanced,
  free-nats KL loss of the world model (paper eq. 1; official ``EnsembleRSSM.kl_loss``).
* :func:`symlog`, :func:`symexp`, :func:`twohot`, :func:`twohot_loss`, :func:`twohot_mean`, :func:`twohot_bins`:
  the twohot regression used by the reward head and the critic (official ``agent/dreamer_utils.py``
  ``TwoHotDist``).

Usage::

    logit = unimix_logits(raw_logits, 0.01)     # [..., S, D] float32 log-probs
    dist = OneHotDist(logit)                    # already mixed: no second mixing
    z = dist.sample()                           # one-hot [..., S, D], gradients flow to raw_logits
    loss, kl = kl_balance_loss(post_logit, prior_logit, free=1.0, balance=0.85)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def unimix_logits(logits: torch.Tensor, unimix: float) -> torch.Tensor:
    """Log-probabilities of ``(1 - unimix) * softmax(logits) + unimix / D`` over the last axis.

    Args:
        logits: any float dtype ``[..., D]`` (raw, unnormalised).
        unimix: uniform mixture weight in ``[0, 1)``; 0 returns ``log_softmax(logits)``.

    Returns:
        float32 ``[..., D]`` normalised log-probabilities.
    """
    logits = logits.float()
    if unimix <= 0.0:
        return F.log_softmax(logits, dim=-1)
    probs = F.softmax(logits, dim=-1)
    probs = (1.0 - unimix) * probs + unimix / logits.shape[-1]
    return torch.log(probs)


class OneHotDist:
    """``S`` independent categoricals over logits ``[..., S, D]`` with one-hot, straight-through samples.

    Args:
        logits: ``[..., S, D]`` (any float dtype; converted to float32).
        unimix: uniform mixture applied on construction. Pass 0 (the default) for logits that are already mixed
            log-probabilities, such as the ``"logit"`` entries of RSSM states; mixing twice would change them.

    Attributes:
        logits: float32 ``[..., S, D]`` normalised log-probabilities (after unimix).
        probs: float32 ``[..., S, D]`` probabilities, ``>= unimix / D``.

    Source: official ``agent/dreamer_utils.py`` ``OneHotDist(unif_mix=0.99)``.
    """

    def __init__(self, logits: torch.Tensor, unimix: float = 0.0):
        if logits.dim() < 2:
            raise ValueError(f"OneHotDist needs logits [..., S, D], got shape {tuple(logits.shape)}")
        self.unimix = float(unimix)
        self.logits = unimix_logits(logits, self.unimix)
        self.probs = self.logits.exp()

    def sample(self) -> torch.Tensor:
        """One-hot sample float32 ``[..., S, D]`` plus the straight-through term ``probs - sg(probs)``.

        Sampling is exact by inversion of the CDF: one uniform number per variable, ``index = #{j : cdf_j <= u}``
        (``D`` times fewer random numbers and no logarithms, unlike Gumbel-max: ~8 % of an actor-critic update);
        the forward value is a one-hot.
        """
        with torch.no_grad():
            D = self.logits.shape[-1]
            cdf = self.probs.cumsum(-1)
            u = torch.rand(cdf.shape[:-1] + (1,), dtype=cdf.dtype, device=cdf.device) * cdf[..., -1:]
            index = (cdf <= u).sum(-1).clamp_(max=D - 1)
            onehot = F.one_hot(index, D).to(self.probs.dtype)
        return onehot + self.probs - self.probs.detach()

    def mode(self) -> torch.Tensor:
        """Argmax one-hot float32 ``[..., S, D]`` plus the straight-through term ``logits - sg(logits)``."""
        index = self.logits.detach().argmax(dim=-1)
        onehot = F.one_hot(index, self.logits.shape[-1]).to(self.logits.dtype)
        return onehot + self.logits - self.logits.detach()

    def entropy(self) -> torch.Tensor:
        """Entropy summed over the ``S`` variables, float32 ``[...]``."""
        return -(self.probs * self.logits).sum(dim=(-2, -1))

    def log_prob(self, onehot: torch.Tensor) -> torch.Tensor:
        """Log-probability of a one-hot ``[..., S, D]`` value, summed over the ``S`` variables: float32 ``[...]``."""
        return (onehot.float() * self.logits).sum(dim=(-2, -1))


def kl_categorical(lhs_logits: torch.Tensor, rhs_logits: torch.Tensor) -> torch.Tensor:
    """``KL[lhs || rhs]`` of ``S`` independent categoricals, summed over the variables.

    Args:
        lhs_logits, rhs_logits: ``[..., S, D]`` log-probabilities (e.g. unimixed state logits; re-normalised here,
            which changes neither the value nor the gradients of normalised inputs).

    Returns:
        float32 ``[...]``.
    """
    lhs = F.log_softmax(lhs_logits.float(), dim=-1)
    rhs = F.log_softmax(rhs_logits.float(), dim=-1)
    return (lhs.exp() * (lhs - rhs)).sum(dim=(-2, -1))


def kl_balance_loss(post_logits: torch.Tensor, prior_logits: torch.Tensor, free: float,
                    balance: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Balanced KL loss with free nats (paper eq. 1; official ``agent/dreamer_utils.py`` ``EnsembleRSSM.kl_loss``
    with ``forward: False``)::

        (1 - balance) * mean(max(free, KL[q || sg(p)])) + balance * mean(max(free, KL[sg(q) || p]))

    The clamp is applied element-wise (per batch/time entry) before averaging, so entries below ``free`` nats give
    no gradient.

    Args:
        post_logits: posterior ``q`` log-probabilities ``[..., S, D]``.
        prior_logits: prior ``p`` log-probabilities ``[..., S, D]``.
        free: free nats.
        balance: weight of the dynamics (prior) term.

    Returns:
        ``(loss, kl)``: float32 scalar loss and the raw ``KL[q || p]`` float32 ``[...]`` (detached, for logging).
    """
    rep = kl_categorical(post_logits, prior_logits.detach())
    dyn = kl_categorical(post_logits.detach(), prior_logits)
    rep_loss = torch.clamp(rep, min=free).mean()
    dyn_loss = torch.clamp(dyn, min=free).mean()
    loss = (1.0 - balance) * rep_loss + balance * dyn_loss
    return loss, rep.detach()


def symlog(x: torch.Tensor) -> torch.Tensor:
    """``sign(x) * log(1 + |x|)``."""
    return torch.sign(x) * torch.log1p(torch.abs(x))


def symexp(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`symlog`: ``sign(x) * (exp(|x|) - 1)``."""
    return torch.sign(x) * torch.expm1(torch.abs(x))


def twohot_bins(n: int = 255, low: float = -20.0, high: float = 20.0, device: torch.device | str | None = None
                ) -> torch.Tensor:
    """``n`` uniformly spaced bin centres in symlog space, float32 ``[n]``."""
    return torch.linspace(low, high, n, device=device, dtype=torch.float32)


def twohot(y: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Encode values ``y [...]`` (already in bin space) as twohot weights float32 ``[..., n]``.

    The weight is split linearly between the nearest bins below and above; values outside the bin range (or exactly
    on a bin) put all weight on a single bin. Source: official ``agent/dreamer_utils.py`` ``TwoHotDist.log_prob``.
    """
    y = y.float()
    n = bins.shape[0]
    below = (bins <= y[..., None]).sum(-1) - 1
    above = n - (bins > y[..., None]).sum(-1)
    below = below.clamp(0, n - 1)
    above = above.clamp(0, n - 1)
    equal = below == above
    dist_below = torch.where(equal, torch.ones_like(y), (bins[below] - y).abs())
    dist_above = torch.where(equal, torch.ones_like(y), (bins[above] - y).abs())
    total = dist_below + dist_above
    w_below = dist_above / total
    w_above = dist_below / total
    return F.one_hot(below, n) * w_below[..., None] + F.one_hot(above, n) * w_above[..., None]


def twohot_loss(logits: torch.Tensor, x: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of raw targets ``x [...]`` under twohot logits ``[..., n]``: float32 ``[...]``.

    The target is ``twohot(symlog(x))``; the loss is the cross-entropy against ``log_softmax(logits)``.
    """
    target = twohot(symlog(x.float()), bins)
    return -(target * F.log_softmax(logits.float(), dim=-1)).sum(-1)


def twohot_mean(logits: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Mean prediction ``symexp(sum_i softmax_i * bin_i)`` of twohot logits ``[..., n]``: float32 ``[...]``."""
    return symexp((F.softmax(logits.float(), dim=-1) * bins).sum(-1))


__all__ = ["OneHotDist", "unimix_logits", "kl_categorical", "kl_balance_loss", "symlog", "symexp", "twohot_bins",
           "twohot", "twohot_loss", "twohot_mean"]
