"""State-dict name mapping and configuration mapping from the official GenRL code (mazpie/genrl) to genrl.

Pure functions on names, shapes and plain mappings: nothing here imports the official code. Used by
``genrl import-official`` (:mod:`genrl.mfwm.import_official`) and by the parity tests
(``tests/test_official_parity.py``), so both rely on one documented mapping.

Module mapping (official agent's ``state_dict()`` -> ours; each row maps ``.weight`` and ``.bias``)::

    official (GenRLAgent)                            genrl (MFWM / ActorCritic)
    wm.encoder._conv_model.{i}[.norm]                wm.encoder.net.{i}[.norm]          Conv2d / channel LayerNorm
    wm.rssm._img_in.0 | _img_in.1._layer             wm.rssm.img_in.0 | img_in.1        Linear | LayerNorm
    wm.rssm._cell._layer | _cell._norm               wm.rssm.gru.linear | gru.norm      LayerNorm GRU
    wm.rssm._ensemble_img_out.0.0 | .0.1._layer      wm.rssm.prior_head.0 | .1          prior MLP (ensemble 1)
    wm.rssm._ensemble_img_dist.0                     wm.rssm.prior_head.3               prior logits
    wm.rssm._obs_out.0 | _obs_out.1._layer           wm.rssm.post_head.0 | .1           posterior MLP
    wm.rssm._obs_dist                                wm.rssm.post_head.3                posterior logits
    wm.heads.decoder._conv_in.0                      wm.decoder.linear_in               reward projection g
    wm.heads.decoder._conv_model.{i}[.norm]          wm.decoder.net.{i}[.norm]          ConvTranspose2d / LN
    wm.heads.reward.dense{k} | norm{k}._layer        wm.reward.{3k} | {3k+1}            (optional reward head)
    wm.heads.reward._out._out                        wm.reward.{3L}
    wm.connector.<rssm rows above, no posterior>     connector.rssm.<same>              input columns: see below
    wm.connector.initial_state_pred.{0,3,6}          connector.init_net.{0,3,6}         learned initial deter
    wm.connector.initial_state_pred.{1,4}._layer     connector.init_net.{1,4}
    wm.connector.aligner.{down,mid,up}.{j}.layer     aligner.{down,mid,up}.{j}.linear   ResidualLinear
    ... .norm_layer._layer | .res_proj               ... .norm | .skip
    _imag_behavior.actor.dense{k} | norm{k}._layer   actor.net.{3k} | {3k+1}
    _imag_behavior.actor._out._out | _out._std       actor.mean_out | actor.std_out
    _imag_behavior.critic.* / _target_critic.*       critic.net.* / slow_critic.net.*   (twohot output: _out._out)
    _imag_behavior.ema_vals[0] / [1]                 retnorm.low_ema / high_ema

The connector's "action" is ``[sqrt(D) e, temporal one-hot (8)]`` in the official code (``agent/video_utils.py``,
``VideoSSM.get_action``); with ``temporal_embeds: False`` (the shipped config) the one-hot is multiplied by zero, so
the 8 matching input columns of ``_img_in.0`` and ``initial_state_pred.0`` never affect anything and are dropped
(ours takes the ``D``-d embedding only).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from genrl.worldmodel.config import WorldModelConfig

__all__ = ["OfficialFormatError", "world_model_config", "connector_settings", "mfwm_state", "actor_critic_state",
           "mfwm_pairs"]


class OfficialFormatError(ValueError):
    """An official agent/configuration that genrl cannot represent (the message names the field and value)."""


def _get(cfg: Mapping, path: str, default: Any = KeyError) -> Any:
    node: Any = cfg
    for part in path.split("."):
        try:
            node = node[part]
        except (KeyError, TypeError, AttributeError):
            if default is KeyError:
                raise OfficialFormatError(f"official config has no field {path!r}") from None
            return default
    return node


def _require(cfg: Mapping, path: str, expected: Any, why: str) -> None:
    value = _get(cfg, path, None)
    if isinstance(expected, (list, tuple)):
        ok = value is not None and list(value) == list(expected)
    else:
        ok = value == expected
    if not ok:
        raise OfficialFormatError(f"official config field {path}={value!r}, genrl needs {expected!r} ({why})")


def world_model_config(cfg: Mapping, reward_head: bool = False) -> WorldModelConfig:
    """Our :class:`WorldModelConfig` for an official agent's configuration (``agent.cfg``, an OmegaConf mapping).

    Sizes from ``encoder.cnn_depth``, ``rssm.{deter,hidden,stoch,discrete}``, ``reward_head.{layers,units}``; KL
    from ``kl`` and ``loss_scales.kl``; Adam from ``model_opt``; batch from ``batch_size``/``batch_length``;
    unimix 0.01 (hard-coded in the official ``OneHotDist``); precision ``auto`` (the official fp16 AMP has no CPU
    path; source: ``conf/defaults/genrl.yaml``, ``agent/dreamer.py`` ``WorldModel``).

    Args:
        cfg: the official configuration (``agent.cfg`` of a ``GenRLAgent``).
        reward_head: keep the (unused by GenRL) reward head.

    Raises:
        OfficialFormatError: a setting genrl's model does not implement (ensembles, continuous latents, posterior on
            ``h``, decoder on ``feat``, other kernels, a KL the other way round, ...), named with its value.
    """
    _require(cfg, "rssm.ensemble", 1, "one prior head")
    _require(cfg, "rssm.norm", "layer", "LayerNorm RSSM")
    _require(cfg, "rssm.single_obs_posterior", True, "the posterior sees only the image embedding")
    _require(cfg, "decoder_inputs", "stoch", "the decoder sees only z")
    _require(cfg, "image_dist", "mse", "MSE image loss")
    _require(cfg, "encoder.cnn_kernels", [4, 4, 4, 4], "encoder kernels")
    _require(cfg, "decoder.cnn_kernels", [5, 5, 6, 6], "decoder kernels")
    _require(cfg, "encoder.norm", "layer", "channel LayerNorm")
    _require(cfg, "decoder.norm", "layer", "channel LayerNorm")
    _require(cfg, "kl.forward", False, "KL[q || p] balancing of the world model")
    _require(cfg, "kl.free_avg", False, "free nats per entry")
    _require(cfg, "pred_discount", False, "no continue head")
    if not _get(cfg, "rssm.discrete"):
        raise OfficialFormatError("official config field rssm.discrete is 0/False: genrl has categorical latents only")
    if _get(cfg, "encoder.cnn_depth") != _get(cfg, "decoder.cnn_depth"):
        raise OfficialFormatError("official encoder.cnn_depth and decoder.cnn_depth differ; genrl shares one depth")
    opt = _get(cfg, "model_opt")
    return WorldModelConfig(
        cnn_depth=int(_get(cfg, "encoder.cnn_depth")), deter=int(_get(cfg, "rssm.deter")),
        hidden=int(_get(cfg, "rssm.hidden")), stoch=int(_get(cfg, "rssm.stoch")),
        discrete=int(_get(cfg, "rssm.discrete")), unimix=0.01, kl_free=float(_get(cfg, "kl.free")),
        kl_balance=float(_get(cfg, "kl.balance")), kl_scale=float(_get(cfg, "loss_scales.kl", 1.0)),
        reward_head=bool(reward_head), reward_layers=int(_get(cfg, "reward_head.layers")),
        reward_units=int(_get(cfg, "reward_head.units")), reward_bins=255, lr=float(opt["lr"]),
        eps=float(opt["eps"]), grad_clip=float(opt["clip"]), weight_decay=float(opt["wd"]),
        batch_size=int(_get(cfg, "batch_size")), batch_length=int(_get(cfg, "batch_length")), precision="auto")


def connector_settings(cfg: Mapping) -> dict:
    """``{"aligner_noise": float}`` after checking the official connector matches ours (``agent/genrl.yaml``).

    Raises:
        OfficialFormatError: the connector's RSSM sizes differ from the world model's (ours shares them), temporal
            embeddings on, no aligner (``denoising_ae``), no learned initial state, no embedding rescaling, additive
            embedding noise, or a connector KL other than ``KL[connector || sg(posterior)]`` without free nats.
    """
    for key in ("deter", "hidden", "stoch", "discrete"):
        if _get(cfg, f"connector_rssm.{key}") != _get(cfg, f"rssm.{key}"):
            raise OfficialFormatError(f"official connector_rssm.{key}={_get(cfg, f'connector_rssm.{key}')!r} differs "
                                      f"from rssm.{key}={_get(cfg, f'rssm.{key}')!r}; genrl's connector shares the "
                                      "world model's sizes")
    _require(cfg, "connector.temporal_embeds", False, "no temporal one-hot inputs")
    _require(cfg, "connector.denoising_ae", True, "an aligner")
    _require(cfg, "connector.rescale_embeds", True, "sqrt(D) input scaling")
    _require(cfg, "connector_rssm.learn_initial", True, "a learned initial state")
    _require(cfg, "connector_kl.forward", True, "KL[connector prior || sg(posterior)]")
    _require(cfg, "connector_kl.free", 0.0, "no free nats in the connector KL")
    _require(cfg, "clip_add_noise", 0.0, "LAFITE noise only")
    return {"aligner_noise": float(_get(cfg, "clip_lafite_noise"))}


def _linear(ours: str, theirs: str) -> list[tuple[str, str]]:
    return [(f"{ours}.weight", f"{theirs}.weight"), (f"{ours}.bias", f"{theirs}.bias")]


def _mlp(ours: str, theirs: str, layers: int, out: str | None = "_out._out") -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for k in range(layers):
        pairs += _linear(f"{ours}.{3 * k}", f"{theirs}.dense{k}")
        pairs += _linear(f"{ours}.{3 * k + 1}", f"{theirs}.norm{k}._layer")
    if out is not None:
        pairs += _linear(f"{ours}.{3 * layers}", f"{theirs}.{out}")
    return pairs


def _rssm(ours: str, theirs: str, posterior: bool) -> list[tuple[str, str]]:
    pairs = (_linear(f"{ours}.img_in.0", f"{theirs}._img_in.0")
             + _linear(f"{ours}.img_in.1", f"{theirs}._img_in.1._layer")
             + [(f"{ours}.gru.linear.weight", f"{theirs}._cell._layer.weight")]
             + _linear(f"{ours}.gru.norm", f"{theirs}._cell._norm")
             + _linear(f"{ours}.prior_head.0", f"{theirs}._ensemble_img_out.0.0")
             + _linear(f"{ours}.prior_head.1", f"{theirs}._ensemble_img_out.0.1._layer")
             + _linear(f"{ours}.prior_head.3", f"{theirs}._ensemble_img_dist.0"))
    if posterior:
        pairs += (_linear(f"{ours}.post_head.0", f"{theirs}._obs_out.0")
                  + _linear(f"{ours}.post_head.1", f"{theirs}._obs_out.1._layer")
                  + _linear(f"{ours}.post_head.3", f"{theirs}._obs_dist"))
    return pairs


def _convs(ours: str, theirs: str, norms: tuple[int, ...], convs: tuple[int, ...]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for i in convs:
        pairs += _linear(f"{ours}.{i}", f"{theirs}.{i}")
    for i in norms:
        pairs += _linear(f"{ours}.{i}.norm", f"{theirs}.{i}.norm")
    return pairs


def mfwm_pairs(cfg: WorldModelConfig) -> list[tuple[str, str]]:
    """``(our MFWM state-dict key, official agent state-dict key)`` for every tensor of an MFWM built from ``cfg``
    (the table of the module docstring)."""
    pairs = _convs("wm.encoder.net", "wm.encoder._conv_model", (1, 4, 7, 10), (0, 3, 6, 9))
    pairs += _rssm("wm.rssm", "wm.rssm", posterior=True)
    pairs += _linear("wm.decoder.linear_in", "wm.heads.decoder._conv_in.0")
    pairs += _convs("wm.decoder.net", "wm.heads.decoder._conv_model", (1, 4, 7), (0, 3, 6, 9))
    if cfg.reward_head:
        pairs += _mlp("wm.reward", "wm.heads.reward", cfg.reward_layers)
    pairs += _rssm("connector.rssm", "wm.connector", posterior=False)
    for i in (0, 3, 6):
        pairs += _linear(f"connector.init_net.{i}", f"wm.connector.initial_state_pred.{i}")
    for i in (1, 4):
        pairs += _linear(f"connector.init_net.{i}", f"wm.connector.initial_state_pred.{i}._layer")
    for part, n in (("down", 2), ("mid", 2), ("up", 2)):
        for j in range(n):
            ours, theirs = f"aligner.{part}.{j}", f"wm.connector.aligner.{part}.{j}"
            pairs += _linear(f"{ours}.linear", f"{theirs}.layer")
            if not (part == "up" and j == 0):  # first up block: norm='none' (official UNetDenoiser)
                pairs += _linear(f"{ours}.norm", f"{theirs}.norm_layer._layer")
            if (part, j) in (("down", 1), ("up", 1)):  # the blocks that change the width have a projection
                pairs += _linear(f"{ours}.skip", f"{theirs}.res_proj")
    return pairs


def _fetch(state: Mapping[str, torch.Tensor], key: str) -> torch.Tensor:
    if key not in state:
        raise OfficialFormatError(f"official state dict has no tensor {key!r} (is this a GenRL agent with a "
                                  "connector and aligner?)")
    return state[key].detach().float().cpu().clone()


def mfwm_state(state: Mapping[str, torch.Tensor], cfg: WorldModelConfig, embed_dim: int) -> dict[str, torch.Tensor]:
    """Our MFWM ``state_dict`` (float32, CPU) from an official agent's ``state_dict()``.

    The connector's input layers drop their 8 temporal one-hot columns (module docstring).

    Args:
        state: the official ``GenRLAgent.state_dict()`` (keys ``wm.…``).
        cfg: the world-model config the MFWM is built with (:func:`world_model_config`).
        embed_dim: the VLM embedding size ``D``.

    Raises:
        OfficialFormatError: a tensor is missing or has a width genrl cannot take.
    """
    out = {ours: _fetch(state, theirs) for ours, theirs in mfwm_pairs(cfg)}
    flat = cfg.stoch * cfg.discrete
    for key, keep in (("connector.rssm.img_in.0.weight", flat + embed_dim), ("connector.init_net.0.weight", embed_dim)):
        w = out[key]
        if w.shape[1] != keep + 8:
            raise OfficialFormatError(f"official tensor for {key} has {w.shape[1]} input columns, expected {keep} + 8 "
                                      "(the connector input is [embedding, 8 temporal one-hot])")
        out[key] = w[:, :keep].contiguous()
    return out


def actor_critic_state(state: Mapping[str, torch.Tensor], layers: int, prefix: str = "_imag_behavior"
                       ) -> dict[str, torch.Tensor]:
    """Our :class:`genrl.behavior.actor_critic.ActorCritic` ``state_dict`` from an official agent's.

    Args:
        state: official ``state_dict()``. layers: MLP layers of actor and critic (official ``actor.layers``).
        prefix: the official behavior's attribute (``_imag_behavior``: the prompt-driven one).

    Returns:
        tensors for ``actor.*``, ``critic.*``, ``slow_critic.*`` and ``retnorm.{low,high}_ema``; ``updates`` is not a
        tensor in the official code (``ActorCritic._updates``) and is left to the caller.

    Raises:
        OfficialFormatError: a tensor is missing.
    """
    pairs = _mlp("actor.net", f"{prefix}.actor", layers, out=None)
    pairs += _linear("actor.mean_out", f"{prefix}.actor._out._out")
    pairs += _linear("actor.std_out", f"{prefix}.actor._out._std")
    pairs += _mlp("critic.net", f"{prefix}.critic", layers)
    pairs += _mlp("slow_critic.net", f"{prefix}._target_critic", layers)
    out = {ours: _fetch(state, theirs) for ours, theirs in pairs}
    ema = _fetch(state, f"{prefix}.ema_vals")
    out["retnorm.low_ema"], out["retnorm.high_ema"] = ema[0].clone(), ema[1].clone()
    return out
