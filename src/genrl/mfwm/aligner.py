"""Representation aligner ``f(e_l) -> e_v`` (paper section 3.1; official ``agent/video_utils.py``
``UNetDenoiser``).

Language embeddings are treated as "noisy" vision embeddings (multimodality gap), so the aligner is trained to map
*noisy vision embeddings* back to the clean ones; it never sees text during training. At inference, text
embeddings (and, optionally, video embeddings) go through it before the connector.

Architecture: a residual MLP U-Net (official ``UNetDenoiser(D, D/2, n_layers=2)``): two down blocks
``D -> D -> D/2``, two middle blocks at ``D/2`` (the bottleneck, half the embedding size), two up blocks on
skip-concatenations back to ``D``. The output is L2-normalized by :meth:`Aligner.forward`.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class ResidualLinear(nn.Module):
    """``y = act(norm(Linear(x))) + P(x)`` with ``P`` = identity if ``in == out`` else a Linear (official
    ``ResidualLinear``)."""

    def __init__(self, d_in: int, d_out: int, norm: bool = True, act: bool = True):
        super().__init__()
        self.linear = nn.Linear(d_in, d_out)
        self.norm = nn.LayerNorm(d_out) if norm else nn.Identity()
        self.act = nn.SiLU() if act else nn.Identity()
        self.skip = nn.Identity() if d_in == d_out else nn.Linear(d_in, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.linear(x))) + self.skip(x)


class Aligner(nn.Module):
    """Residual MLP U-Net, float ``[..., D] -> [..., D]`` L2-normalized (official ``UNetDenoiser`` + ``F.normalize``).

    Args:
        dim: VLM embedding size ``D`` (bottleneck ``D // 2``).
    """

    def __init__(self, dim: int):
        super().__init__()
        half = dim // 2
        self.dim = dim
        self.down = nn.ModuleList([ResidualLinear(dim, dim), ResidualLinear(dim, half)])
        self.mid = nn.Sequential(ResidualLinear(half, half), ResidualLinear(half, half))
        self.up = nn.ModuleList([ResidualLinear(2 * half, dim, norm=False, act=False), ResidualLinear(2 * dim, dim)])

    def raw(self, e: torch.Tensor) -> torch.Tensor:
        """Unnormalized output ``[..., D]``."""
        d0 = self.down[0](e)
        d1 = self.down[1](d0)
        x = self.mid(d1)
        x = self.up[0](torch.cat([x, d1], -1))
        return self.up[1](torch.cat([x, d0], -1))

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        """Aligned embeddings, L2-normalized, same shape as ``e``."""
        return F.normalize(self.raw(e).float(), dim=-1)


def lafite_noise(e: torch.Tensor, level: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """``normalize((1 - level) * e + level * eps / |eps|)`` with ``eps ~ N(0, I)`` per row (official
    ``VideoSSM.update``, ``clip_lafite_noise``).

    Args:
        e: float ``[..., D]`` (unit-norm embeddings). level: noise mix in [0, 1] (0.5 in the official config).
    """
    eps = torch.randn(e.shape, generator=generator, device=e.device, dtype=torch.float32)
    noisy = (1 - level) * e.float() + level * F.normalize(eps, dim=-1)
    return F.normalize(noisy, dim=-1)


def aligner_loss(aligner: Aligner, e: torch.Tensor, level: float = 0.5,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """``1 - mean cos(aligner(noisy e), e)`` over all rows (official ``VideoSSM.update``); ``e`` is ``[..., D]``,
    detached.

    Rows whose embedding is all zeros (official files' padding) are excluded.
    """
    e = e.detach().float()
    valid = e.norm(dim=-1) > 1e-6
    if not bool(valid.any()):
        return e.sum() * 0.0
    e = F.normalize(e[valid], dim=-1)
    out = aligner(lafite_noise(e, level, generator))
    return 1.0 - (out * e).sum(-1).mean()
