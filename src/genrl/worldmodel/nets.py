"""Building blocks of the world model: CNN encoder, transposed-CNN decoder, MLPs and the LayerNorm GRU.

Sources: official ``agent/dreamer_utils.py`` ``Encoder``, ``GRUCell`` (``norm=True``), ``Decoder``, ``MLP``,
``ImgChLayerNorm``. Default PyTorch initialisation everywhere, as there. All modules accept arbitrary leading batch
dimensions.

Shapes (paper preset, ``d = 48``)::

    Encoder: float [..., 3, 64, 64] in [-0.5, 0.5] -> [..., 1536]
    Decoder: float [..., 1024] (flat one-hot z)     -> [..., 3, 64, 64] pixel means in the [-0.5, 0.5] space
"""

from __future__ import annotations

import torch
import torch.nn as nn

from genrl.worldmodel.config import WorldModelConfig


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of each pixel of ``[N, C, H, W]`` (official ``ImgChLayerNorm``: eps 1e-3, affine)."""

    def __init__(self, channels: int, eps: float = 1e-3):
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def mlp(inp: int, units: int, layers: int, out: int | None = None, norm: bool = True) -> nn.Sequential:
    """``layers`` x [Linear(units) + LayerNorm (if ``norm``) + SiLU], then an optional Linear(units -> out).

    Linear layers keep their bias also when followed by a LayerNorm (as the official ``MLP`` does).
    """
    mods: list[nn.Module] = []
    size = inp
    for _ in range(layers):
        mods.append(nn.Linear(size, units))
        if norm:
            mods.append(nn.LayerNorm(units))
        mods.append(nn.SiLU())
        size = units
    if out is not None:
        mods.append(nn.Linear(size, out))
    return nn.Sequential(*mods)


class Encoder(nn.Module):
    """4 x [Conv2d(kernel 4, stride 2, no padding) + ChannelLayerNorm + SiLU], flattened channel-major.

    Channels ``3 -> d -> 2d -> 4d -> 8d`` (``d = cfg.cnn_depth``); spatial 64 -> 31 -> 14 -> 6 -> 2.

    Attributes:
        embed_dim: output size ``8 d * 2 * 2`` (1536 for ``d = 48``).

    Input: float ``[..., 3, 64, 64]`` in ``[-0.5, 0.5]`` (see :meth:`WorldModel.preprocess`). Output ``[..., embed_dim]``.
    """

    def __init__(self, cfg: WorldModelConfig):
        super().__init__()
        d = cfg.cnn_depth
        mods: list[nn.Module] = []
        c_in = 3
        for mult in (1, 2, 4, 8):
            mods += [nn.Conv2d(c_in, d * mult, 4, stride=2), ChannelLayerNorm(d * mult), nn.SiLU()]
            c_in = d * mult
        self.net = nn.Sequential(*mods)
        side = cfg.image_size
        for _ in range(4):
            side = (side - 4) // 2 + 1
        self.embed_dim = c_in * side * side

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        lead = images.shape[:-3]
        x = self.net(images.reshape(-1, *images.shape[-3:]))
        return x.reshape(*lead, self.embed_dim)


class Decoder(nn.Module):
    """Image decoder from the flat one-hot latent only (``decoder_inputs: stoch``; official ``Decoder``).

    ``Linear(S*D -> 32 d)`` (no norm/activation) -> reshape ``[32 d, 1, 1]`` -> ConvTranspose2d (stride 2, no padding)
    with kernels 5, 5, 6, 6 and channels ``4d, 2d, d, 3`` (spatial 1 -> 5 -> 13 -> 30 -> 64), ChannelLayerNorm + SiLU
    after all but the last.

    Attributes:
        linear_in: the first Linear layer; the GenRL reward projects latents through it (official
            ``tools/genrl_utils.py`` ``compute_reward``).

    Input float ``[..., S*D]``; output float ``[..., 3, 64, 64]`` pixel means in the ``[-0.5, 0.5]`` space.
    """

    def __init__(self, cfg: WorldModelConfig):
        super().__init__()
        d = cfg.cnn_depth
        self.in_channels = 32 * d
        self.linear_in = nn.Linear(cfg.stoch * cfg.discrete, self.in_channels)
        mods: list[nn.Module] = []
        c_in = self.in_channels
        for i, (c_out, kernel) in enumerate(((4 * d, 5), (2 * d, 5), (d, 6), (3, 6))):
            mods.append(nn.ConvTranspose2d(c_in, c_out, kernel, stride=2))
            if i < 3:
                mods += [ChannelLayerNorm(c_out), nn.SiLU()]
            c_in = c_out
        self.net = nn.Sequential(*mods)

    def project(self, stoch_flat: torch.Tensor) -> torch.Tensor:
        """``linear_in`` applied to ``[..., S*D]`` -> ``[..., 32 d]`` (the reward's latent projection)."""
        return self.linear_in(stoch_flat)

    def forward(self, stoch_flat: torch.Tensor) -> torch.Tensor:
        lead = stoch_flat.shape[:-1]
        x = self.linear_in(stoch_flat.reshape(-1, stoch_flat.shape[-1]))
        # The first transposed conv sees a 1x1 input: it is a matrix product with the same weights
        # [C_in, C_out, k, k], ~7x faster on CPU than the transposed-conv kernel (test: equals self.net).
        first = self.net[0]
        c_out, k = first.weight.shape[1], first.weight.shape[-1]
        x = torch.nn.functional.linear(x, first.weight.flatten(1).T).reshape(-1, c_out, k, k)
        x = self.net[1:](x + first.bias.to(x.dtype)[:, None, None])
        return x.reshape(*lead, *x.shape[1:])


class LayerNormGRU(nn.Module):
    """DreamerV2 LayerNorm GRU cell (official ``agent/dreamer_utils.py`` ``GRUCell``, ``norm=True``).

    ``g = LN(Linear_no_bias([x, h]))`` split into (reset, candidate, update); ``r = sigmoid(reset)``,
    ``c = tanh(r * candidate)``, ``u = sigmoid(update - 1)``, ``h' = u * c + (1 - u) * h``.

    Args:
        input_size: size of ``x``.
        hidden_size: size of ``h``.

    ``forward(x [..., input_size], h [..., hidden_size]) -> h' [..., hidden_size]`` in float32 (the recurrent state
    is kept in float32 also under bf16 autocast).
    """

    def __init__(self, input_size: int, hidden_size: int, update_bias: float = -1.0):
        super().__init__()
        self.hidden_size = hidden_size
        self.update_bias = update_bias
        self.linear = nn.Linear(input_size + hidden_size, 3 * hidden_size, bias=False)
        self.norm = nn.LayerNorm(3 * hidden_size)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        h = h.float()
        g = self.norm(self.linear(torch.cat([x, h.to(x.dtype)], dim=-1)))
        reset, cand, update = torch.split(g, self.hidden_size, dim=-1)
        reset = torch.sigmoid(reset)
        cand = torch.tanh(reset * cand)
        update = torch.sigmoid(update + self.update_bias)
        return (update * cand).float() + (1.0 - update).float() * h

    def scan(self, x: torch.Tensor, h: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Run the cell over a sequence whose inputs are all known in advance (teacher forcing).

        Same result as calling :meth:`forward` step by step (up to float rounding), but the input half of the
        linear layer, ``W_x x_t``, is computed for all steps in one matrix product; only ``W_h h_{t-1}``, the
        LayerNorm and the gates stay in the sequential loop.

        Args:
            x: inputs ``[B, T, input_size]``.
            h: state before the first step ``[B, hidden_size]``.
            keep: optional ``[B, T]`` (bool or float); where 0/False, ``h_{t-1}`` is replaced by zeros before
                step ``t`` (episode starts).

        Returns:
            float32 ``[B, T, hidden_size]``: ``h_1 .. h_T``.
        """
        weight = self.linear.weight
        w_x, w_h = weight[:, : weight.shape[1] - self.hidden_size], weight[:, weight.shape[1] - self.hidden_size:]
        gx = torch.nn.functional.linear(x, w_x)
        h = h.float()
        out = []
        for t in range(x.shape[1]):
            if keep is not None:
                h = h * keep[:, t, None].to(h.dtype)
            g = self.norm(gx[:, t] + torch.nn.functional.linear(h.to(gx.dtype), w_h))
            reset, cand, update = torch.split(g, self.hidden_size, dim=-1)
            cand = torch.tanh(torch.sigmoid(reset) * cand)
            update = torch.sigmoid(update + self.update_bias)
            h = (update * cand).float() + (1.0 - update).float() * h
            out.append(h)
        return torch.stack(out, dim=1)


__all__ = ["ChannelLayerNorm", "mlp", "Encoder", "Decoder", "LayerNormGRU"]
