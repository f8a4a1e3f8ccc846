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

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from genrl.utils.fields import coerce_overrides

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
        actor_lr / critic_lr: Adam learning rates. adam_eps: Adam epsilon.
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


PRESETS: dict[str, BehaviorConfig] = {
    "paper": BehaviorConfig(),
    "small": BehaviorConfig(actor_layers=2, actor_units=256, critic_layers=2, critic_units=256, batch_size=16,
                            batch_length=16, actor_lr=1e-3, critic_lr=1e-3, actor_min_std=0.3),
    "tiny": BehaviorConfig(actor_layers=2, actor_units=32, critic_layers=2, critic_units=32, batch_size=4,
                           batch_length=8),
}


def _check_fields(names: Any) -> None:
    valid = {f.name for f in fields(BehaviorConfig)}
    unknown = set(names) - valid
    if unknown:
        raise ValueError(f"unknown behavior config fields {sorted(unknown)}; valid fields: {sorted(valid)}")


def behavior_preset(name: str, **overrides: Any) -> BehaviorConfig:
    """A copy of ``PRESETS[name]`` with ``overrides`` applied.

    Raises:
        ValueError: unknown preset (the message lists the valid ones), unknown override field, a value of the
            wrong type (:func:`genrl.utils.fields.coerce_overrides`) or an invalid value.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown behavior preset {name!r}; valid presets: {sorted(PRESETS)}")
    _check_fields(overrides)
    return replace(PRESETS[name], **coerce_overrides(BehaviorConfig, overrides, "behavior config"))


def to_dict(cfg: BehaviorConfig) -> dict[str, Any]:
    """JSON-serialisable dict of all fields."""
    return asdict(cfg)


def from_dict(d: dict[str, Any]) -> BehaviorConfig:
    """Inverse of :func:`to_dict`. Raises ``ValueError`` on unknown fields (named) or invalid values."""
    _check_fields(d)
    return BehaviorConfig(**d)


__all__ = ["BehaviorConfig", "PRESETS", "SCORES", "behavior_preset", "to_dict", "from_dict"]
