"""Configuration of the world model (paper section 3 and appendix B; official ``conf/defaults/genrl.yaml``,
``conf/env/dmc_pixels.yaml``).

Usage::

    from genrl.worldmodel.config import preset, to_dict, from_dict
    cfg = preset("small", batch_size=8)           # a WorldModelConfig: genrl.utils.presets.make(WorldModelConfig, ...)
    again = from_dict(json.loads(json.dumps(to_dict(cfg))))

Presets (overrides on the dataclass defaults, registered with :mod:`genrl.utils.presets`):

* ``"paper"``: the official sizes (CNN depth 48, GRU/hidden 1024, 32x32 latents, batch 48x48).
* ``"small"``: a CPU-trainable model (CNN depth 16, GRU/hidden 256, 32x32 latents, batch 16x32).
* ``"tiny"``: for tests only (CNN depth 4, GRU/hidden 32, 4x4 latents, batch 4x16, fp32).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from genrl.utils.presets import make, register

PRECISIONS = ("auto", "bf16", "fp32")


@dataclass
class WorldModelConfig:
    """Sizes, losses and optimiser settings of the world model.

    Attributes:
        image_size: side of the square RGB observations (the decoder always produces 64x64; only 64 is supported).
        cnn_depth: encoder/decoder width ``d``. Encoder: 4 Conv2d (kernel 4, stride 2, no padding) with
            ``d * (1, 2, 4, 8)`` channels, each followed by a channel-LayerNorm (eps 1e-3) and SiLU; the
            ``[8d, 2, 2]`` output is flattened to ``embed = 32 * d`` (1536 for ``d = 48``). Decoder: Linear
            ``stoch * discrete -> 32 d``, then ConvTranspose2d ``32d -> 4d -> 2d -> d -> 3`` (kernels 5, 5, 6, 6).
        deter: size of the deterministic GRU state ``h``.
        hidden: width of the RSSM's input and head MLP layers.
        stoch: number of categorical latent variables ``S``.
        discrete: classes per categorical variable ``D``.
        unimix: uniform mixture weight of the categoricals: ``p = (1 - unimix) softmax + unimix / D``.
        kl_free: free nats, applied element-wise (per batch/time entry) to the KL summed over the ``S`` variables.
        kl_balance: weight of the dynamics (prior) term ``KL[sg(q) || p]``; the representation term
            ``KL[q || sg(p)]`` gets ``1 - kl_balance``.
        kl_scale: weight of the whole KL loss in the model loss.
        reward_head: train a twohot reward head on the detached features (the official code does; GenRL never uses it).
        reward_layers: hidden layers of the reward head MLP (Linear + LayerNorm + SiLU each).
        reward_units: width of the reward head MLP.
        reward_bins: twohot bins of the reward head (symlog space, uniformly spaced in ``[-20, 20]``).
        lr: Adam learning rate.
        eps: Adam epsilon.
        grad_clip: global gradient-norm clipping threshold.
        weight_decay: decoupled multiplicative decay per step, ``theta <- (1 - weight_decay) theta`` (independent of
            ``lr``), applied to weight matrices/kernels only, never to LayerNorm parameters or biases.
        batch_size: sequences per training batch ``B``.
        batch_length: steps per training sequence ``T``.
        precision: ``"auto"`` (default) = bf16 on CUDA and on CPUs with native bf16 (AVX512-BF16 or AMX), fp32
            elsewhere (measured on a 2-core Cascade Lake without them: bf16 autocast was ~2x *slower*);
            ``"bf16"`` runs the encoder, RSSM and decoder under bfloat16 autocast (CPU and CUDA);
            ``"fp32"`` disables autocast. Distributions, KLs and losses are always computed in float32.
    """

    image_size: int = 64
    cnn_depth: int = 48
    deter: int = 1024
    hidden: int = 1024
    stoch: int = 32
    discrete: int = 32
    unimix: float = 0.01
    kl_free: float = 1.0
    kl_balance: float = 0.85
    kl_scale: float = 0.6
    reward_head: bool = False
    reward_layers: int = 4
    reward_units: int = 1024
    reward_bins: int = 255
    lr: float = 1e-4
    eps: float = 1e-8
    grad_clip: float = 1000.0
    weight_decay: float = 1e-6
    batch_size: int = 48
    batch_length: int = 48
    precision: str = "auto"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.image_size != 64:
            raise ValueError(f"only 64x64 images are supported (the decoder's kernels fix it), got {self.image_size}")
        for name in ("cnn_depth", "deter", "hidden", "stoch", "discrete", "reward_layers", "reward_units",
                     "reward_bins", "batch_size", "batch_length"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.unimix < 1.0:
            raise ValueError(f"unimix must be in [0, 1), got {self.unimix}")
        if not 0.0 <= self.kl_balance <= 1.0:
            raise ValueError(f"kl_balance must be in [0, 1], got {self.kl_balance}")

    @property
    def stoch_flat(self) -> int:
        """Size of the flattened one-hot latent ``S * D``."""
        return self.stoch * self.discrete

    @property
    def feat_dim(self) -> int:
        """Size of ``feat = cat(stoch_flat, deter)``."""
        return self.stoch * self.discrete + self.deter

    @property
    def embed_dim(self) -> int:
        """Size of the encoder output ``8 d * 2 * 2``."""
        return 32 * self.cnn_depth


# name -> overrides on the WorldModelConfig defaults (which are the paper's values); see genrl.utils.presets
PRESETS = register(WorldModelConfig, {
    "paper": {},
    "small": {"cnn_depth": 16, "deter": 256, "hidden": 256, "stoch": 32, "discrete": 32, "reward_units": 256,
              "batch_size": 16, "batch_length": 32},
    "tiny": {"cnn_depth": 4, "deter": 32, "hidden": 32, "stoch": 4, "discrete": 4, "reward_layers": 2,
             "reward_units": 32, "batch_size": 4, "batch_length": 16, "precision": "fp32"},
}, what="world-model config")


def preset(name: str, **overrides: Any) -> WorldModelConfig:
    """The world-model config of preset ``name`` (``paper``, ``small``, ``tiny``) with ``overrides`` applied
    (:func:`genrl.utils.presets.make`).

    Raises:
        ValueError: unknown preset name (the message lists the valid ones), unknown override fields or a value
            of the wrong type (:func:`genrl.utils.fields.coerce_overrides`).
    """
    return make(WorldModelConfig, name, **overrides)


def _check_fields(names: Any, what: str) -> None:
    valid = {f.name for f in fields(WorldModelConfig)}
    unknown = set(names) - valid
    if unknown:
        raise ValueError(f"unknown {what} fields {sorted(unknown)}; valid fields: {sorted(valid)}")


def to_dict(cfg: WorldModelConfig) -> dict[str, Any]:
    """JSON-serialisable dict of all fields."""
    return asdict(cfg)


def from_dict(d: dict[str, Any]) -> WorldModelConfig:
    """Inverse of :func:`to_dict`; missing fields take the defaults (paper values).

    Raises:
        ValueError: ``d`` has keys that are not fields (named in the message) or invalid values.
    """
    _check_fields(d, "world-model config")
    return WorldModelConfig(**d)


def cpu_has_native_bf16() -> bool:
    """True if ``/proc/cpuinfo`` lists ``avx512_bf16`` or ``amx_bf16`` (False when it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def use_bf16(precision: str, device_type: str) -> bool:
    """Resolve ``precision`` (``auto``/``bf16``/``fp32``) for a device type (``cpu``/``cuda``)."""
    if precision == "auto":
        return device_type == "cuda" or (device_type == "cpu" and cpu_has_native_bf16())
    return precision == "bf16"


__all__ = ["use_bf16", "cpu_has_native_bf16", "WorldModelConfig", "PRESETS", "PRECISIONS", "preset", "to_dict", "from_dict"]
