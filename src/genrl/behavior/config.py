"""Configuration of behavior learning in imagination (paper section 3.2, appendix B; official ``agent/dreamer.py``
``ActorCritic``).

Usage::

    from genrl.behavior.config import behavior_preset
    cfg = behavior_preset("small", score="cosine")      # a BehaviorConfig
    cfg.starts                                           # imagination start states per update (B * T)

Presets:

* ``"paper"``: the official sizes (actor/critic 4 x 1024, 32 x 32 = 1024 start states per update).
* ``"small"``: CPU-trainable (actor/critic 2 x 256, 16 x 16 = 256 start states); about 0.47 s per actor-critic
  update on 2 idle CPU cores with the ``small`` world-model preset (``benchmarks/bench_behavior.py``). CPU runs
  last hundreds to a few thousand updates, not the paper's 50k, so its actor and critic learning rates are 1e-3
  (paper 3e-5: the actor barely moves in 500 updates) and its actor's standard deviation has a floor of 0.3
  (paper 0.1), which keeps imagined trajectories stochastic so the actor exploits the world model's errors less.
  On the shipped walker MFWM that lifted walker_stand from 0.13-0.39 (actor 1e-4 / critic 3e-4, min std 0.1) to
  0.48 +- 0.05 (2 seeds) after 1,000 updates and left lying down and walk unchanged
  (``docs/results/walker_curve.md``, 2026-12-02).
* ``"tiny"``: for tests only (actor/critic 2 x 32, 4 x 8 = 32 start states).

Everything else (horizon 16, gamma 0.99, lambda 0.95, the optimiser apart from the small preset's learning rates
and std floor, return normalisation, slow critic, reward and alignment settings) is the official value in every
preset.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from genrl.utils.presets import make, register

SCORES = ("cosine", "max_cosine")


@dataclass
class BehaviorConfig:
    """Actor-critic, reward and start-state settings.

    Attributes:
        actor_layers: hidden layers of the actor MLP (Linear + LayerNorm + SiLU each).
        actor_units: width of the actor MLP.
        critic_layers: hidden layers of the critic MLP (Linear + LayerNorm + SiLU each).
        critic_units: width of the critic MLP.
        batch_size: sequences per update ``B`` (offline: dataset windows; data-free: synthetic, see ``starts``).
        batch_length: steps per sequence ``T``; every posterior state of the ``B x T`` batch is one imagination
            start (official ``agent/dreamer.py`` ``WorldModel.imagine``), so an update imagines from ``starts = B * T``
            states.
        horizon: imagination horizon ``H`` (imagined steps after the start state; ``H + 1`` states per trajectory).
        gamma: discount per imagined step (constant: no continuation head, as the official ``WorldModel.imagine``).
        lam: lambda of the lambda-returns.
        actor_lr / critic_lr: Adam learning rates.
        adam_eps: Adam epsilon.
        grad_clip: global gradient-norm clipping threshold (actor and critic separately).
        weight_decay: decoupled multiplicative decay per step, ``theta <- (1 - weight_decay) theta``, on weight
            matrices only (as :func:`genrl.worldmodel.model.make_optimizer`).
        actor_min_std / actor_max_std: bounds of the actor's standard deviation
            ``sigma = (max - min) * sigmoid(raw + 2) + min``.
        actor_entropy: entropy bonus coefficient of the actor loss (0 in GenRL; official ``actor_ent``).
        critic_bins: twohot bins of the critic (uniform in symlog space over ``[critic_low, critic_high]``).
        critic_low / critic_high: bin range in symlog space.
        slow_critic_every: hard-copy the critic into the slow (target) critic at the first update and then every
            this many updates (official ``ActorCritic.update_slow_target``: 100). The slow critic provides the values of
            the lambda-returns.
        return_ema: EMA rate ``alpha`` of the return percentiles (``P <- alpha q + (1 - alpha) P``, ``P`` starts at 0,
            no bias correction).
        return_low / return_high: the percentiles (as fractions) of the return normalisation.
        return_min_scale: lower bound of the return scale ``max(min_scale, P_high - P_low)``.
        score: per-state reward ``"max_cosine"`` (default) or ``"cosine"`` (see :mod:`genrl.behavior.reward`).
        align_b: best-matching temporal alignment window ``b`` (paper appendix E): the first ``b`` target states
            are matched against every ``b``-step window of the imagined trajectory. 1 = match the initial target
            state only; ``b >= horizon`` (or ``b <= 0``) = no alignment (imagined step t vs target t).
        skip_first_target: roll the connector out ``H + 2`` steps and drop the first state (official
            ``tools/genrl_utils.py`` ``video_text_reward``).
        warmup_steps: data-free only: imagined steps that advance the synthetic start states (official
            ``imag_warmup_steps``).
        connector_fraction: data-free only: probability that a synthetic start takes the ``z`` of a connector
            sample (from a random unit embedding) instead of a uniformly random ``z``.
        random_action_fraction: data-free only: fraction of the synthetic starts warmed up with uniform random
            actions (the rest use the current policy).
    """

    actor_layers: int = 4
    actor_units: int = 1024
    critic_layers: int = 4
    critic_units: int = 1024
    batch_size: int = 32
    batch_length: int = 32
    horizon: int = 16
    gamma: float = 0.99
    lam: float = 0.95
    actor_lr: float = 3e-5
    critic_lr: float = 3e-5
    adam_eps: float = 1e-5
    grad_clip: float = 100.0
    weight_decay: float = 1e-6
    actor_min_std: float = 0.1
    actor_max_std: float = 1.0
    actor_entropy: float = 0.0
    critic_bins: int = 255
    critic_low: float = -20.0
    critic_high: float = 20.0
    slow_critic_every: int = 100
    return_ema: float = 0.01
    return_low: float = 0.05
    return_high: float = 0.95
    return_min_scale: float = 1.0
    score: str = "max_cosine"
    align_b: int = 8
    skip_first_target: bool = True
    warmup_steps: int = 5
    connector_fraction: float = 0.5
    random_action_fraction: float = 0.5

    def __post_init__(self) -> None:
        if self.score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {self.score!r}")
        for name in ("actor_layers", "actor_units", "critic_layers", "critic_units", "batch_size", "batch_length",
                     "horizon", "critic_bins", "slow_critic_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.horizon < 2:
            raise ValueError(f"horizon must be >= 2 (the actor objective uses returns 1 .. H-1), got {self.horizon}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if not 0.0 < self.actor_min_std <= self.actor_max_std:
            raise ValueError(f"need 0 < actor_min_std <= actor_max_std, got {self.actor_min_std}, "
                             f"{self.actor_max_std}")
        if not (0.0 <= self.gamma <= 1.0 and 0.0 <= self.lam <= 1.0):
            raise ValueError(f"gamma and lam must be in [0, 1], got {self.gamma}, {self.lam}")
        if not 0.0 <= self.return_low < self.return_high <= 1.0:
            raise ValueError(f"need 0 <= return_low < return_high <= 1, got {self.return_low}, {self.return_high}")
        for name in ("connector_fraction", "random_action_fraction", "return_ema"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.critic_low >= self.critic_high:
            raise ValueError(f"critic_low must be < critic_high, got {self.critic_low}, {self.critic_high}")

    @property
    def starts(self) -> int:
        """Imagination start states per update ``batch_size * batch_length``."""
        return self.batch_size * self.batch_length


# name -> overrides on the BehaviorConfig defaults (which are the paper's values); see genrl.utils.presets
PRESETS = register(BehaviorConfig, {
    "paper": {},
    "small": {"actor_layers": 2, "actor_units": 256, "critic_layers": 2, "critic_units": 256, "batch_size": 16,
              "batch_length": 16, "actor_lr": 1e-3, "critic_lr": 1e-3, "actor_min_std": 0.3},
    "tiny": {"actor_layers": 2, "actor_units": 32, "critic_layers": 2, "critic_units": 32, "batch_size": 4,
             "batch_length": 8},
}, what="behavior config")


def _check_fields(names: Any) -> None:
    valid = {f.name for f in fields(BehaviorConfig)}
    unknown = set(names) - valid
    if unknown:
        raise ValueError(f"unknown behavior config fields {sorted(unknown)}; valid fields: {sorted(valid)}")


def behavior_preset(name: str, **overrides: Any) -> BehaviorConfig:
    """The behavior config of preset ``name`` (``paper``, ``small``, ``tiny``) with ``overrides`` applied
    (:func:`genrl.utils.presets.make`).

    Raises:
        ValueError: unknown preset (the message lists the valid ones), unknown override field, a value of the
            wrong type (:func:`genrl.utils.fields.coerce_overrides`) or an invalid value.
    """
    return make(BehaviorConfig, name, **overrides)


REWARDS = ("genrl", "oracle")


@dataclass
class BehaveConfig:
    """Settings of ``genrl behave`` (:func:`genrl.behavior.train.behave`); the command's options are generated from
    these fields (:mod:`genrl.app.config_args`), each field's text below being its ``--help``.

    Attributes:
        run: pre-training run folder (``genrl pretrain --out``) or shipped model name (``genrl models``).
        out: behavior run folder (checkpoint/, metrics.jsonl, TensorBoard, evals/, videos/).
        task: task id, e.g. ``walker_stand``; its domain must be the world model's.
        prompt: text prompt (default: the task's Table 3 prompt, ``genrl.envs.registry.PROMPTS``).
        video: video prompt file (mp4/gif) instead of a text prompt.
        video_aligner: pass the video embedding through the aligner (the official behaviour; text prompts always
            use it).
        data_free: synthetic start states (paper 4.2); no dataset is opened for the starts.
        dataset: dataset of the offline start states and of the oracle's fit (default: the pre-training run's).
        reward: ``genrl``: the prompt's latent target (paper eq. 2); ``oracle``: a head fitted to the dataset's true
            reward of the task on the frozen latents (:mod:`genrl.behavior.oracle`), the ceiling of the same
            actor-critic, starts and budget; its fit report goes to ``out/oracle.json``.
        preset: behavior preset (actor-critic sizes and learning rates; ``genrl.behavior.config.PRESETS``).
        overrides: behavior config field -> value on top of the preset (``--set FIELD=VALUE``).
        steps: total actor-critic updates.
        eval_every: real-environment evaluation period in updates (0: only at the end).
        eval_episodes: episodes per evaluation (0: never evaluate).
        eval_workers: processes that step and render the evaluation episodes (``genrl.envs.rollout.evaluate``):
            1 = in this process; k = k worker processes; ``auto`` = min(episodes, CPUs); the scores do not depend
            on it. 1 by default (in-process, as before): workers pay a start-up of a few seconds per evaluation
            (``genrl.envs.vector``).
        log_every: train metrics period in updates.
        save_every: checkpoint period in updates.
        seed: RNG seed (torch, dataset windows, the target's initial states, evaluation environments).
        score: per-state reward ``max_cosine`` (the official code's) or ``cosine`` (the paper's eq. 2); None: the
            preset's (``max_cosine``).
        align_b: temporal alignment window b (1 = the initial target state only; >= horizon = no alignment);
            None: the preset's (8).
        threads: torch CPU threads (None: torch's default).
        vlm: the prompt embedder (must be the world model's); only needed before the first checkpoint.
        vlm_path: local weights folder of ``vlm``.
        device: ``auto`` (CUDA if available), ``cpu`` or ``cuda``.
    """

    run: str
    out: str
    task: str
    prompt: str | None = None
    video: str | None = None
    video_aligner: bool = False
    data_free: bool = False
    dataset: str | None = None
    preset: str = "small"
    overrides: dict = field(default_factory=dict)
    steps: int = 10000
    eval_every: int = 2500
    eval_episodes: int = 10
    eval_workers: int | Literal["auto"] = 1
    log_every: int = 50
    save_every: int = 500
    seed: int = 0
    score: Literal["max_cosine", "cosine"] | None = None
    align_b: int | None = None
    threads: int | None = None
    vlm: str = "default"
    vlm_path: str | None = None
    device: str = "auto"
    reward: Literal["genrl", "oracle"] = "genrl"


def resolve_behavior(cfg: BehaveConfig) -> BehaviorConfig:
    """The behavior config a ``genrl behave`` run trains with: its preset, then ``overrides``, then ``score`` and
    ``align_b`` when set.

    Raises:
        ValueError: as :func:`behavior_preset`.
    """
    extra = {k: v for k, v in (("score", cfg.score), ("align_b", cfg.align_b)) if v is not None}
    return behavior_preset(cfg.preset, **{**cfg.overrides, **extra})


def to_dict(cfg: BehaviorConfig) -> dict[str, Any]:
    """JSON-serialisable dict of all fields."""
    return asdict(cfg)


def from_dict(d: dict[str, Any]) -> BehaviorConfig:
    """Inverse of :func:`to_dict`. Raises ``ValueError`` on unknown fields (named) or invalid values."""
    _check_fields(d)
    return BehaviorConfig(**d)


__all__ = ["BehaveConfig", "BehaviorConfig", "PRESETS", "REWARDS", "SCORES", "behavior_preset", "from_dict",
           "resolve_behavior", "to_dict"]
