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

from genrl.worldmodel.config import PRESETS, WorldModelConfig, from_dict, preset, to_dict
from genrl.worldmodel.dists import (OneHotDist, kl_balance_loss, kl_categorical, symexp, symlog, twohot,
                                    twohot_bins, twohot_loss, twohot_mean, unimix_logits)
from genrl.worldmodel.model import WorldModel, clip_and_step, make_optimizer, to_uint8
from genrl.worldmodel.nets import ChannelLayerNorm, Decoder, Encoder, LayerNormGRU, mlp
from genrl.worldmodel.rssm import RSSM, State

__all__ = ["WorldModelConfig", "PRESETS", "preset", "to_dict", "from_dict", "OneHotDist", "unimix_logits",
           "kl_categorical", "kl_balance_loss", "symlog", "symexp", "twohot", "twohot_bins", "twohot_loss",
           "twohot_mean", "ChannelLayerNorm", "mlp", "Encoder", "Decoder", "LayerNormGRU", "RSSM", "State",
           "WorldModel", "make_optimizer", "clip_and_step", "to_uint8"]
