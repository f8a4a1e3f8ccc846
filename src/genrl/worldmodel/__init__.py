"""World model of GenRL: CNN encoder, categorical RSSM, image decoder (paper section 3, eq. 1; official
``agent/dreamer.py`` ``WorldModel``).

Usage::

    from genrl.worldmodel import WorldModel, preset, make_optimizer, clip_and_step
    wm = WorldModel(preset("small"), action_dim=6)
    loss, post, metrics = wm.loss(batch)

Modules: :mod:`.config` (``WorldModelConfig``, presets), :mod:`.dists` (one-hot categoricals, KL balancing,
twohot), :mod:`.nets` (encoder, decoder, LayerNorm GRU, MLP), :mod:`.rssm` (``RSSM``), :mod:`.model`
(``WorldModel``, optimiser helpers).
"""

from __future__ import annotations

from genrl.utils.lazy import lazy_names

# The names load on first use (PEP 562), so ``genrl.worldmodel.config`` (the presets the CLI reads) imports without
# torch; ``from genrl.worldmodel import WorldModel`` works as before.
_MODULES = {
    "genrl.worldmodel.config": ("PRESETS", "WorldModelConfig", "from_dict", "preset", "to_dict"),
    "genrl.worldmodel.dists": ("OneHotDist", "kl_balance_loss", "kl_categorical", "symexp", "symlog", "twohot",
                               "twohot_bins", "twohot_loss", "twohot_mean", "unimix_logits"),
    "genrl.worldmodel.model": ("WorldModel", "clip_and_step", "make_optimizer", "to_uint8"),
    "genrl.worldmodel.nets": ("ChannelLayerNorm", "Decoder", "Encoder", "LayerNormGRU", "mlp"),
    "genrl.worldmodel.rssm": ("RSSM", "State"),
}
_LAZY = {name: module for module, names in _MODULES.items() for name in names}

__all__ = ["WorldModelConfig", "PRESETS", "preset", "to_dict", "from_dict", "OneHotDist", "unimix_logits",
           "kl_categorical", "kl_balance_loss", "symlog", "symexp", "twohot", "twohot_bins", "twohot_loss",
           "twohot_mean", "ChannelLayerNorm", "mlp", "Encoder", "Decoder", "LayerNormGRU", "RSSM", "State",
           "WorldModel", "make_optimizer", "clip_and_step", "to_uint8"]


__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__)
