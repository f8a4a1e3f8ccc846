"""Networks of the model-free baselines (paper appendix D): a DrQ-v2 pixel encoder and LayerNorm MLP heads.

* :class:`PixelEncoder` — the DrQ-v2 encoder (Yarats et al. 2021): 4 conv layers of 3x3 kernels with ``channels``
  filters and ReLU (strides ``(2, 1, 1, 1)`` in DrQ-v2), input scaled to ``x / 255 - 0.5``, flattened. No image
  augmentation (appendix D: random shifts hurt).
* heads, following DrQ-v2 (a trunk ``Linear -> LayerNorm -> tanh`` to ``feature_dim``) and the larger, deeper
  LayerNorm MLPs of Tarasov et al. (2023) and Cetin et al. (2024) that appendix D adopts: :class:`Actor`
  (deterministic tanh mean, plus a state-independent log-std used by IQL's weighted likelihood),
  :class:`TwinCritic` (two Q heads on a shared trunk) and :class:`ValueHead` (IQL's V).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.distributions import Normal


class PixelEncoder(nn.Module):
    """DrQ-v2 conv encoder: uint8 ``[B, C, H, W]`` (C = 3 x frame stack) -> float32 ``[B, repr_dim]``.

    Args:
        in_channels: ``3 * frame_stack``. image_size: ``H = W`` (64 in the paper).
        channels: filters per conv layer (DrQ-v2: 32). strides: one per layer (DrQ-v2: ``(2, 1, 1, 1)``).

    Raises:
        ValueError: the strides shrink the image below one pixel.
    """

    def __init__(self, in_channels: int, image_size: int = 64, channels: int = 32,
                 strides: tuple[int, ...] = (2, 1, 1, 1)):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        size = image_size
        for s in strides:
            layers += [nn.Conv2d(c, channels, 3, stride=s), nn.ReLU()]
            c = channels
            size = (size - 3) // s + 1
            if size < 1:
                raise ValueError(f"encoder strides {tuple(strides)} shrink {image_size}x{image_size} images below "
                                 "one pixel; use fewer/smaller strides")
        # channels-last weights and activations: ~1.3x faster convolutions on CPU (values are unchanged)
        self.convs = nn.Sequential(*layers).to(memory_format=torch.channels_last)
        self.repr_dim = channels * size * size

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """uint8 (or float in [0, 255]) ``[B, C, H, W]`` -> float32 ``[B, repr_dim]``."""
        x = (obs.float() / 255.0 - 0.5).contiguous(memory_format=torch.channels_last)
        return self.convs(x).flatten(1)


def mlp(in_dim: int, hidden: int, layers: int, out_dim: int, layernorm: bool = True) -> nn.Sequential:
    """``layers`` blocks ``Linear -> [LayerNorm] -> ReLU`` of width ``hidden``, then ``Linear(hidden, out_dim)``."""
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers):
        mods += [nn.Linear(d, hidden)] + ([nn.LayerNorm(hidden)] if layernorm else []) + [nn.ReLU()]
        d = hidden
    mods.append(nn.Linear(d, out_dim))
    return nn.Sequential(*mods)


def trunk(repr_dim: int, feature_dim: int) -> nn.Sequential:
    """DrQ-v2 trunk ``Linear(repr_dim, feature_dim) -> LayerNorm -> tanh``."""
    return nn.Sequential(nn.Linear(repr_dim, feature_dim), nn.LayerNorm(feature_dim), nn.Tanh())


class Actor(nn.Module):
    """Deterministic policy ``tanh(mlp(trunk(h)))`` in ``[-1, 1]^A``; IQL reads it as a Gaussian mean.

    Args:
        repr_dim: encoder output size. action_dim: ``A``. feature_dim / hidden / layers / layernorm: sizes.
    """

    LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0  # IQL's Gaussian policy (Kostrikov et al. 2021)

    def __init__(self, repr_dim: int, action_dim: int, feature_dim: int, hidden: int, layers: int,
                 layernorm: bool = True):
        super().__init__()
        self.trunk = trunk(repr_dim, feature_dim)
        self.net = mlp(feature_dim, hidden, layers, action_dim, layernorm)
        self.log_std = nn.Parameter(torch.zeros(action_dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """features ``[B, repr_dim]`` -> actions float32 ``[B, A]`` in ``[-1, 1]``."""
        return torch.tanh(self.net(self.trunk(h)))

    def log_prob(self, h: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log N(action; mean, std) summed over A -> [B], mean [B, A])`` with a state-independent std."""
        mean = self(h)
        std = self.log_std.clamp(self.LOG_STD_MIN, self.LOG_STD_MAX).exp()
        return Normal(mean, std).log_prob(action).sum(-1), mean


class TwinCritic(nn.Module):
    """Two Q heads on one trunk: ``(h [B, repr_dim], a [B, A]) -> (q1 [B], q2 [B])`` (clipped double Q)."""

    def __init__(self, repr_dim: int, action_dim: int, feature_dim: int, hidden: int, layers: int,
                 layernorm: bool = True):
        super().__init__()
        self.trunk = trunk(repr_dim, feature_dim)
        self.q1 = mlp(feature_dim + action_dim, hidden, layers, 1, layernorm)
        self.q2 = mlp(feature_dim + action_dim, hidden, layers, 1, layernorm)

    def forward(self, h: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([self.trunk(h), action], dim=-1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)

    def first(self, h: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Only ``q1 [B]`` (TD3's actor objective)."""
        return self.q1(torch.cat([self.trunk(h), action], dim=-1)).squeeze(-1)


class ValueHead(nn.Module):
    """IQL's state value ``V(h) -> [B]``."""

    def __init__(self, repr_dim: int, feature_dim: int, hidden: int, layers: int, layernorm: bool = True):
        super().__init__()
        self.trunk = trunk(repr_dim, feature_dim)
        self.net = mlp(feature_dim, hidden, layers, 1, layernorm)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(self.trunk(h)).squeeze(-1)


__all__ = ["PixelEncoder", "Actor", "TwinCritic", "ValueHead", "mlp", "trunk"]
