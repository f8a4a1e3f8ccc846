"""Configs of the default MiniVLM (:mod:`genrl.vlm.minivlm`) and of its training (``genrl vlm train``,
:mod:`genrl.vlm.train_minivlm`), in a torch-free module: the CLI builds ``genrl vlm train``'s options from
:class:`MiniVLMTrainConfig` (:mod:`genrl.app.config_args`).

Usage::

    from genrl.vlm.config import MiniVLMTrainConfig, minivlm_preset
    arch = minivlm_preset("tiny", dim=32)        # a MiniVLMConfig
    cfg = MiniVLMTrainConfig(datasets=["runs/data/walker"], out="runs/vlm", model=arch)

Presets of the architecture (overrides on the :class:`MiniVLMConfig` defaults, :mod:`genrl.utils.presets`):
``small`` (the packaged MiniVLM, trainable on a CPU) and ``tiny`` (tests only). There is no ``paper`` preset: the
paper uses InternVideo2, for which the MiniVLM stands in.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from genrl.utils.presets import make, register


@dataclass
class MiniVLMConfig:
    """Architecture of the MiniVLM.

    Attributes:
        n_frames: frames per clip ``k``.
        image_size: frames are resized to ``image_size`` x ``image_size`` pixels (the envs render 64).
        dim: size of the shared embedding space.
        channels: output channels of the 4 stride-2 conv layers of the per-frame CNN.
        width: width of the temporal transformer (frame features are projected to it).
        layers: temporal transformer layers.
        heads: attention heads of the temporal transformer and of the pooling.
        text_hidden: hidden size of the text projection MLP (384 -> text_hidden -> dim).
        init_temperature: initial softmax temperature of the contrastive loss (learned, as CLIP).
    """

    n_frames: int = 8
    image_size: int = 64
    dim: int = 256
    channels: tuple[int, ...] = (16, 32, 64, 128)
    width: int = 128
    layers: int = 2
    heads: int = 4
    text_hidden: int = 512
    init_temperature: float = 0.07

    @classmethod
    def from_dict(cls, d: dict) -> "MiniVLMConfig":
        """Build from a JSON dict; unknown keys raise ``ValueError`` naming them."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown MiniVLM config fields {sorted(unknown)}; expected some of {sorted(names)}")
        d = dict(d)
        if "channels" in d:
            d["channels"] = tuple(d["channels"])
        return cls(**d)


# name -> overrides on the MiniVLMConfig defaults (the packaged MiniVLM's architecture); see genrl.utils.presets
PRESETS = register(MiniVLMConfig, {
    "small": {},
    "tiny": {"n_frames": 4, "image_size": 32, "dim": 16, "channels": (8, 16, 16), "width": 32, "layers": 1,
             "heads": 2, "text_hidden": 32},
}, what="MiniVLM config")


def minivlm_preset(name: str, **overrides: Any) -> MiniVLMConfig:
    """The MiniVLM architecture of preset ``name`` (``small``, ``tiny``) with ``overrides`` applied
    (:func:`genrl.utils.presets.make`).

    Raises:
        ValueError: unknown preset or field, or a value of the wrong type (one line each).
    """
    return make(MiniVLMConfig, name, **overrides)


@dataclass
class MiniVLMTrainConfig:
    """Training hyper-parameters of ``genrl vlm train``.

    Attributes:
        datasets: dataset folders (any domains; each must carry ``physics`` descriptors).
        out: output folder (weights, config, checkpoint).
        steps: gradient steps.
        batch_size: clips per step (domain-balanced).
        lr: peak AdamW learning rate (linear warm-up over ``warmup`` steps, cosine decay to 10 %).
        warmup: steps of linear learning-rate warm-up.
        weight_decay: AdamW decay (not applied to norms, biases, positions, temperature).
        stride: steps between consecutive clip ends within an episode.
        paraphrases: captions kept per clip.
        max_episodes: per dataset, at most this many training episodes (None = all).
        heldout: fraction of episodes kept out of training for ``genrl vlm eval`` (:func:`~genrl.vlm.clips.is_heldout`).
        save_every: steps between resumable checkpoints.
        seed: RNG seed.
        threads: torch CPU threads (None: torch's default).
        model: architecture (``genrl vlm train``: ``--preset`` and ``--set``; :func:`minivlm_preset`).
    """

    datasets: list[str]
    out: str
    steps: int = 1500
    batch_size: int = 128
    lr: float = 1e-3
    warmup: int = 100
    weight_decay: float = 0.05
    stride: int = 4
    paraphrases: int = 4
    max_episodes: int | None = None
    heldout: float = 0.1
    save_every: int = 200
    seed: int = 0
    threads: int | None = None
    model: MiniVLMConfig = field(default_factory=MiniVLMConfig)


__all__ = ["MiniVLMConfig", "MiniVLMTrainConfig", "PRESETS", "minivlm_preset"]
