"""Configs of the VLM-reward baselines (paper section 4.1, appendix D): :class:`AgentConfig` (the agent's
hyper-parameters) with its presets, and :class:`BaselineConfig` (the settings of ``genrl baseline``).

Torch-free, so ``genrl baseline --help`` builds its options from these dataclasses without importing the agent.

Usage::

    from genrl.baselines.config import make_config
    cfg = make_config("iql", "small", hidden_dim=512)      # an AgentConfig

Presets (overrides on the :class:`AgentConfig` defaults, :mod:`genrl.utils.presets`): ``paper`` (DrQ-v2 encoder,
3 x 1024 LayerNorm heads; GPU), ``small`` (CPU-sized; called ``cpu`` before 2026-12, which still works with a
deprecation warning), ``tiny`` (tests only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from genrl.utils.presets import make, register

ALGOS = ("iql", "td3bc", "td3")


@dataclass
class AgentConfig:
    """Hyper-parameters of a baseline agent (paper appendix D: "standard hyperparameters from the original papers").

    Attributes:
        algo: ``"iql"``, ``"td3bc"`` or ``"td3"``.
        frame_stack: frames per observation ``S`` (appendix D: 3).
        encoder_channels: filters of each conv layer (DrQ-v2: 32).
        encoder_strides: stride of each 3x3 conv layer (DrQ-v2: ``(2, 1, 1, 1)``; the ``small`` preset uses
            ``(2, 2, 2, 1)``, ~4x fewer encoder FLOPs).
        feature_dim: trunk output size of every head (DrQ-v2: 50).
        hidden_dim: width of the head MLPs (DrQ-v2: 1024; "larger networks", Tarasov et al. 2023).
        hidden_layers: hidden layers of each head MLP ("deeper networks": 3).
        layernorm: LayerNorm after every hidden linear layer (Tarasov et al. 2023; Cetin et al. 2024).
        lr: Adam learning rate of every optimizer (3e-4 in all three papers).
        gamma: discount (0.99).
        tau: Polyak factor of the target networks (0.005).
        expectile: IQL's expectile of the value loss (0.7, locomotion setting).
        temperature: IQL's inverse temperature ``beta`` of the advantage weights (3.0).
        max_weight: IQL's clip of the advantage weights (100).
        policy_noise: TD3 target policy smoothing noise std (0.2, in action units of [-1, 1]).
        noise_clip: TD3 clip of that noise (0.5).
        policy_delay: TD3 actor/target update period in critic updates (2).
        bc_alpha: TD3+BC's ``alpha`` in ``lambda = alpha / mean|Q|`` (2.5).
    """

    algo: str = "iql"
    frame_stack: int = 3
    encoder_channels: int = 32
    encoder_strides: tuple[int, ...] = (2, 1, 1, 1)
    feature_dim: int = 50
    hidden_dim: int = 1024
    hidden_layers: int = 3
    layernorm: bool = True
    lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    expectile: float = 0.7
    temperature: float = 3.0
    max_weight: float = 100.0
    policy_noise: float = 0.2
    noise_clip: float = 0.5
    policy_delay: int = 2
    bc_alpha: float = 2.5

    def __post_init__(self) -> None:
        if self.algo not in ALGOS:
            raise ValueError(f"unknown algorithm {self.algo!r}; valid: {', '.join(ALGOS)}")
        self.encoder_strides = tuple(int(s) for s in self.encoder_strides)
        if not 0 < self.expectile < 1:
            raise ValueError(f"expectile must be in (0, 1), got {self.expectile}")
        if self.policy_delay < 1 or self.frame_stack < 1:
            raise ValueError("policy_delay and frame_stack must be >= 1")


# name -> overrides on the AgentConfig defaults (which are the paper's setting); see genrl.utils.presets
PRESETS = register(AgentConfig, {
    # DrQ-v2 encoder, 3 x 1024 LayerNorm heads: the paper's setting (GPU; ~7 h for 500k steps on a V100).
    "paper": {},
    # CPU-sized: strided encoder (4x fewer FLOPs, 16x smaller flattened features) and 2 x 256 heads.
    "small": {"encoder_strides": (2, 2, 2, 1), "hidden_dim": 256, "hidden_layers": 2},
    # tests only
    "tiny": {"encoder_channels": 8, "encoder_strides": (2, 2, 2, 1), "feature_dim": 16, "hidden_dim": 32,
             "hidden_layers": 1},
}, what="agent config", aliases={"cpu": "small"})


def make_config(algo: str, preset: str = "small", **overrides: Any) -> AgentConfig:
    """An :class:`AgentConfig` for ``algo`` from a preset (``paper``, ``small``, ``tiny``; ``cpu`` is a deprecated
    name of ``small``) and field overrides (:func:`genrl.utils.presets.make`).

    Raises:
        ValueError: unknown algo, preset or field (the message lists the valid ones), or a value of the wrong type.
    """
    return make(AgentConfig, preset, **{**overrides, "algo": algo})


@dataclass
class BaselineConfig:
    """Settings of ``genrl baseline`` (:func:`genrl.baselines.train.train_baseline`); the command's options are
    generated from these fields (:mod:`genrl.app.config_args`), each field's text below being its ``--help``.

    Attributes:
        algo: the offline RL algorithm.
        reward: ``image``: the VLM embedding of the current frame (a static clip for a video VLM); ``video``: of
            the clip of the last k frames (needs ``genrl embed DATASET`` with the same VLM first).
        task: task evaluated, e.g. ``walker_walk`` (its domain must be the dataset's).
        dataset: dataset folder of the task's domain.
        out: run folder (config.json, checkpoint/, metrics.jsonl + TensorBoard, eval.json, eval.mp4).
        prompt: reward prompt (default: the paper's Table 3 prompt of the task).
        steps: gradient steps (paper: 500k on a GPU; 20k on a CPU).
        batch_size: transitions per gradient step.
        seed: torch/sampling seed; it also picks the evaluation episodes.
        eval_every: updates between evaluations during training (0: only the final one, which always runs).
        eval_episodes: episodes per evaluation (the paper: 20).
        eval_max_steps: cap on the agent steps of evaluation episodes, for smoke tests only (the scores are then
            not comparable with the paper's).
        eval_workers: processes that step and render the evaluation episodes (``genrl.envs.rollout.evaluate``):
            1 = in this process; k = k worker processes; ``auto`` = min(episodes, CPUs); the scores do not depend
            on it. 1 by default (in-process, as before): workers pay a start-up of a few seconds per evaluation
            (``genrl.envs.vector``).
        save_every: checkpoint period in updates.
        log_every: train metrics period in updates.
        threads: torch CPU threads (None: torch's default).
        preset: agent network sizes (``genrl.baselines.config.PRESETS``; ``cpu`` is a deprecated name of ``small``).
        overrides: agent config field -> value on top of the preset (``--set FIELD=VALUE``).
        reward_norm: ``standardize``: z-score the cosine rewards over the dataset; ``none``: use them raw.
        device: ``auto`` (CUDA if available), ``cpu`` or ``cuda``.
        embedding_id: read these stored dataset embeddings instead of the VLM's own, e.g. ``siglip-b16-224``
            (official ``clip_img`` imported by ``genrl data import``; it must be of the same model as the VLM).
    """

    algo: Literal["iql", "td3bc", "td3"]
    reward: Literal["image", "video"]
    task: str
    dataset: str
    out: str
    prompt: str | None = None
    steps: int = 20000
    batch_size: int = 256
    seed: int = 0
    eval_every: int = 5000
    eval_episodes: int = 10
    eval_max_steps: int | None = None
    eval_workers: int | Literal["auto"] = 1
    save_every: int = 1000
    log_every: int = 100
    threads: int | None = None
    preset: str = "small"
    overrides: dict = field(default_factory=dict)
    reward_norm: Literal["standardize", "none"] = "standardize"
    device: str = "auto"
    embedding_id: str | None = None


__all__ = ["ALGOS", "PRESETS", "AgentConfig", "BaselineConfig", "make_config"]
