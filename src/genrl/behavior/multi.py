"""K behaviors per process: K independent actor-critics trained in one batched pass on a shared frozen world model
(issue 16, "K behaviors per process"; each behavior is exactly :meth:`genrl.behavior.actor_critic.ActorCritic.update`).

``genrl behave`` with several tasks or prompts trains one :class:`~genrl.behavior.actor_critic.ActorCritic` per
prompt. Run one by one, every behavior pays for its own start states (the posterior of a dataset batch: a CNN
pass), its own imagination and its own reward. :class:`MultiActorCritic` runs them together:

* the start states of an update are computed **once** and shared: ``[N, ...]`` is repeated into an imagination
  batch of ``[K*N, ...]``, behavior-major (rows ``k*N .. (k+1)*N - 1`` belong to behavior ``k``); per-behavior starts
  (a list of ``K`` states, e.g. data-free starts warmed up by each behavior's own actor) are concatenated instead;
* imagination runs the world model's transition once per step on the whole ``K*N`` batch; each behavior's actor
  acts on its own chunk with ``K`` separate actor calls (exactly the single-behavior code). Measured
  (``benchmarks/bench_multi_behavior.py --variants``; actor forward + backward over the horizon, K = 4, 2 x 256
  actors, 256 starts, horizon 16, 1 CPU thread, median CPU seconds): separate calls 0.37-0.41, stacked weights
  through ``torch.baddbmm`` 0.40-0.44, through ``torch.func.vmap`` + ``functional_call`` 0.43-0.45; stacking only
  wins where per-call overhead dominates (tiny preset: 0.007 vs 0.015);
* rewards: :class:`~genrl.behavior.reward.LatentReward` s of one world model, score, window and target length are
  scored in one call on the ``K*N`` batch against the row-stacked targets (each row against its own behavior's
  target); any other reward functions (e.g. the oracle's) score their own chunk;
* lambda-returns (row-wise, batched), return normalisation and the actor and critic losses per behavior; the sum of
  the ``2 K`` losses is differentiated **once** with ``torch.autograd.grad`` over every actor's and critic's
  parameters (the losses are separable: behavior ``k``'s loss depends on its own rows and modules only, the
  critics' on detached inputs, so each parameter's gradient is exactly its own loss's); then each actor and each
  critic is clipped by **its own** gradient norm and stepped by its own optimizer; slow critics, return
  normalisers and update counters stay per behavior.

Noise. Each behavior can draw its random numbers (the actor's standard normals, then the transition's
categorical uniforms, per imagined step: the order of a single :meth:`ActorCritic.update` on the global RNG) from
its own ``torch.Generator``: a batched update with generators seeded ``s_k`` equals ``K`` single updates each run
after ``torch.manual_seed(s_k)`` (``tests/test_multi_behavior.py``), and a behavior's draws do not depend on how
many others run with it. Without generators the global RNG is used (per step: ``K`` normal draws, then one uniform
draw for the whole batch). The single-behavior path is unchanged.

Speed. On CPU an update is compute-bound, and each behavior imagines its own trajectories, so the batched update
costs about ``K`` single updates (small presets, 1 thread, 2026-12-02 on a loaded machine: single 0.52 s CPU,
K = 4 batched 2.13 s, ratio 4.1; 3.8 counting the offline starts computed once instead of K times); what it saves
there is the ``K - 1`` posteriors, per-call overhead and ``K - 1`` copies of the world model in memory. The win is
on accelerators, where a single update at these sizes is bound by kernel launches. Call
:func:`keep_freed_memory` first on CPU: glibc otherwise page-faults every large activation back in each update.

Usage::

    multi = MultiActorCritic.create(cfg, wm.feat_dim, wm.action_dim, k=3)
    opts = multi.optimizers()                                   # one {"actor", "critic"} dict per behavior
    gens = behavior_generators([0, 1, 2], wm.device)
    start = offline_starts(wm, sampler.sample())                # once for all K behaviors
    metrics = multi.update(wm, [LatentReward(wm, t, ...) for t in targets], start, opts, gens)  # K dicts
"""

from __future__ import annotations

import copy
import time
from typing import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from genrl.behavior.actor_critic import ActorCritic, _apply_grads, lambda_returns
from genrl.behavior.config import BehaviorConfig
from genrl.behavior.reward import LatentReward
from genrl.worldmodel.dists import OneHotDist, twohot_loss, twohot_mean
from genrl.worldmodel.model import WorldModel
from genrl.worldmodel.rssm import RSSM, State

RewardFn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
# the keys (and order) of ActorCritic.update's metrics
METRIC_KEYS = ("reward_mean", "reward_std", "reward_imagined_mean", "align_offset_mean", "return_mean", "value_mean",
               "normed_return_mean", "normed_return_std", "return_low", "return_high", "return_scale", "actor_loss",
               "actor_entropy", "actor_std", "action_abs", "actor_grad_norm", "critic_loss", "critic_mean",
               "critic_grad_norm", "seconds")


def keep_freed_memory() -> bool:
    """Make glibc's ``malloc`` keep freed memory for reuse: no ``mmap`` for large blocks (``M_MMAP_MAX = 0``) and no
    heap trimming (``M_TRIM_THRESHOLD = -1``); the process then holds its peak memory.

    By default every block over 32 MiB is ``mmap``-ed and unmapped again when freed, so each update page-faults its
    large activations back in: at the small preset on CPU (1 thread) ~0.1 s of system time per single update
    (~15 %) and 0.7-1.0 s per ``K = 4`` batched update (its ``[K*N, H+1, F]`` tensors are 89 MB), ~0 with this.
    Process-wide and irreversible; call it once at the start of a training process.

    Returns:
        whether it was applied (False where the C library has no ``mallopt``, e.g. not glibc).
    """
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc malloc.h
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, -1))


def behavior_generators(seeds: Sequence[int], device: torch.device | str = "cpu") -> list[torch.Generator]:
    """One ``torch.Generator`` on ``device`` per behavior, seeded ``seeds[k]`` (their states are checkpointable with
    ``get_state`` / ``set_state``)."""
    return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]


class BehaviorNoise:
    """The random draws of one batched imagination, per behavior.

    Args:
        k: number of behaviors ``K``. n: rows per behavior ``N``.
        generators: ``K`` generators (behavior ``k`` draws from ``generators[k]``) or ``None`` (global RNG).

    ``normal(k, shape)``: standard normals float32 ``shape`` of behavior ``k``. ``uniform(shape, dtype, device)``:
    uniforms of the whole batch ``[K*N, ...]`` (behavior ``k``'s rows from its own generator).
    """

    def __init__(self, k: int, n: int, generators: Sequence[torch.Generator] | None = None):
        if generators is not None and len(generators) != k:
            raise ValueError(f"need one generator per behavior ({k}), got {len(generators)}")
        self.k, self.n, self.generators = k, n, generators

    def normal(self, k: int, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        gen = None if self.generators is None else self.generators[k]
        return torch.randn(shape, generator=gen, device=device)

    def uniform(self, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        if self.generators is None:
            return torch.rand(shape, dtype=dtype, device=device)
        chunk = (self.n,) + tuple(shape[1:])
        return torch.cat([torch.rand(chunk, generator=g, dtype=dtype, device=device) for g in self.generators])


def img_step(rssm: RSSM, state: State, action: torch.Tensor, noise: BehaviorNoise) -> State:
    """:meth:`genrl.worldmodel.rssm.RSSM.img_step` with ``sample=True`` whose categorical uniforms come from
    ``noise`` (the same inverse-CDF rule as :meth:`genrl.worldmodel.dists.OneHotDist.sample`; a test pins the
    equality). ``state [K*N, ...]``, ``action float [K*N, A]`` -> prior state ``[K*N, ...]``."""
    if action.shape[-1] != rssm.action_dim:
        raise ValueError(f"expected actions [..., {rssm.action_dim}], got shape {tuple(action.shape)}")
    stoch = rssm.stoch_flat(state)
    x = rssm.img_in(torch.cat([stoch, action.to(stoch.dtype)], dim=-1))
    deter = rssm.gru(x, state["deter"])
    raw = rssm.prior_head(deter)
    dist = OneHotDist(raw.reshape(*raw.shape[:-1], rssm.stoch, rssm.discrete), rssm.unimix)
    with torch.no_grad():
        D = dist.logits.shape[-1]
        cdf = dist.probs.cumsum(-1)
        u = noise.uniform(tuple(cdf.shape[:-1]) + (1,), cdf.dtype, cdf.device) * cdf[..., -1:]
        index = (cdf <= u).sum(-1).clamp_(max=D - 1)
        onehot = F.one_hot(index, D).to(dist.probs.dtype)
    return {"deter": deter, "stoch": onehot + dist.probs - dist.probs.detach(), "logit": dist.logits}


def imagine_multi(wm: WorldModel, behaviors: Sequence[ActorCritic], start: State, horizon: int,
                  noise: BehaviorNoise) -> tuple[State, torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`genrl.behavior.actor_critic.imagine` of ``K`` policies at once: behavior ``k``'s actor acts on rows
    ``k*N .. (k+1)*N - 1`` of ``start [K*N, ...]``; one world-model transition per step for the whole batch.

    Returns:
        ``(states [K*N, H+1, ...], feat float32 [K*N, H+1, F], action float32 [K*N, H, A], entropy [K*N, H])``.
    """
    n = noise.n
    state = {k: v.detach() for k, v in start.items()}
    states, feats, actions, ents = [state], [wm.rssm.get_feat(state)], [], []
    with wm.autocast():
        for _ in range(horizon):
            feat = feats[-1].detach()
            out = [b.actor.sample(feat[k * n:(k + 1) * n],
                                  noise.normal(k, (n, wm.action_dim), feat.device)) for k, b in enumerate(behaviors)]
            action, ent = torch.cat([a for a, _ in out]), torch.cat([e for _, e in out])
            state = img_step(wm.rssm, state, action, noise)
            states.append(state)
            feats.append(wm.rssm.get_feat(state))
            actions.append(action.float())
            ents.append(ent.float())
    stacked = {k: torch.stack([s[k] for s in states], 1) for k in ("deter", "stoch")}
    return stacked, torch.stack(feats, 1).float(), torch.stack(actions, 1), torch.stack(ents, 1)


def _split(x: torch.Tensor, k: int, n: int) -> tuple[torch.Tensor, ...]:
    """``x [K*N, ...]`` -> ``K`` views ``[N, ...]`` by ``unbind`` (its backward stacks the ``K`` gradients, where
    slicing would zero-fill and add a full-size ``[K*N, ...]`` gradient per chunk)."""
    return x.unflatten(0, (k, n)).unbind(0)


def _batchable(fns: Sequence[RewardFn]) -> bool:
    if not all(type(f) is LatentReward for f in fns):
        return False
    first = fns[0]
    return all(f.wm is first.wm and f.score == first.score and f.align_b == first.align_b
               and f.length == first.length for f in fns)


def multi_reward(fns: Sequence[RewardFn], stoch: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rewards of ``K`` behaviors' imagined latents ``stoch [K*N, T, S, D]`` -> ``(reward float32 [K*N, T], offsets
    int64 [K*N])``; behavior ``k``'s rows are scored by ``fns[k]`` exactly as ``fns[k](stoch[k*N:(k+1)*N])``.

    Compatible :class:`~genrl.behavior.reward.LatentReward` s (one world model, score, window, length) are
    evaluated in one call: a copy of the first one whose target rows are every behavior's rows
    ``arange(N) % M_k`` stacked, so imagined row ``i`` meets target row ``i``. Others: one call per chunk.
    """
    k = len(fns)
    if k > 1 and _batchable(fns):
        joint = copy.copy(fns[0])
        rows = torch.arange(n, device=stoch.device)
        joint.target_proj = torch.cat([f.target_proj[rows % f.target_proj.shape[0]] for f in fns])
        return joint(stoch)
    outs = [f(x) for f, x in zip(fns, _split(stoch, k, n))]
    return torch.cat([r for r, _ in outs]), torch.cat([o for _, o in outs])


class MultiActorCritic(nn.Module):
    """``K`` independent :class:`ActorCritic` s (same config and sizes) updated in one batched pass.

    Args:
        behaviors: the ``K >= 1`` actor-critics (each keeps its own actor, critic, slow critic, return normaliser
            and update counter; checkpoint and evaluate them one by one as single behaviors).
        names: labels of the behaviors in error messages (default ``"0" .. "K-1"``).

    Raises:
        ValueError: no behavior, configs or sizes that differ, or a wrong number of names.
    """

    def __init__(self, behaviors: Sequence[ActorCritic], names: Sequence[str] | None = None):
        super().__init__()
        if not behaviors:
            raise ValueError("MultiActorCritic needs at least one behavior")
        first = behaviors[0]
        sizes = lambda b: [tuple(p.shape) for p in b.parameters()]  # noqa: E731
        for i, b in enumerate(behaviors):
            if b.cfg != first.cfg or sizes(b) != sizes(first):
                raise ValueError(f"behavior {i} has another config or other sizes than behavior 0; the behaviors "
                                 f"of one batched update must share them")
        self.behaviors = nn.ModuleList(behaviors)
        self.names = [str(i) for i in range(len(behaviors))] if names is None else [str(x) for x in names]
        if len(self.names) != len(behaviors):
            raise ValueError(f"got {len(self.names)} names for {len(behaviors)} behaviors")

    @classmethod
    def create(cls, cfg: BehaviorConfig, feat_dim: int, action_dim: int, k: int,
               names: Sequence[str] | None = None) -> "MultiActorCritic":
        """``k`` freshly initialised behaviors (initialised one after another from the global RNG)."""
        return cls([ActorCritic(cfg, feat_dim, action_dim) for _ in range(k)], names)

    @property
    def cfg(self) -> BehaviorConfig:
        return self.behaviors[0].cfg

    def __len__(self) -> int:
        return len(self.behaviors)

    def optimizers(self) -> list[dict[str, torch.optim.Optimizer]]:
        """One :meth:`ActorCritic.optimizers` dict per behavior."""
        return [b.optimizers() for b in self.behaviors]

    def _start(self, start: State | Sequence[State]) -> tuple[State, int]:
        k = len(self.behaviors)
        if isinstance(start, dict):
            n = start["deter"].shape[0]
            return {key: v.detach().repeat(k, *([1] * (v.dim() - 1))) for key, v in start.items()}, n
        if len(start) != k:
            raise ValueError(f"got {len(start)} per-behavior start states for {k} behaviors")
        n = start[0]["deter"].shape[0]
        if any(s["deter"].shape[0] != n for s in start):
            raise ValueError("per-behavior start states must have the same number of rows")
        return {key: torch.cat([s[key].detach() for s in start]) for key in ("deter", "stoch", "logit")
                if key in start[0]}, n

    def update(self, wm: WorldModel, reward_fns: Sequence[RewardFn], start: State | Sequence[State],
               opts: Sequence[dict[str, torch.optim.Optimizer]],
               generators: Sequence[torch.Generator] | None = None) -> list[dict[str, float]]:
        """One actor and one critic update of every behavior from shared (or per-behavior) start states.

        Args:
            wm: the frozen world model. reward_fns: ``K`` reward functions (as for :meth:`ActorCritic.update`),
                ``reward_fns[k]`` scores behavior ``k``. start: shared states ``[N, ...]`` (repeated per behavior)
                or a list of ``K`` states ``[N, ...]``. opts: from :meth:`optimizers`. generators: ``K`` generators
                (:func:`behavior_generators`) or ``None`` (the global RNG).

        Returns:
            ``K`` metric dicts with :meth:`ActorCritic.update`'s keys; ``seconds`` is the wall time of the whole
            batched update (the same in every dict).

        Raises:
            ValueError: wrong numbers of reward functions, optimizers, generators or starts.
            FloatingPointError: a non-finite actor or critic loss, naming the behavior; raised before any actor,
                critic, optimizer state, return normaliser or update counter changes.
        """
        t0 = time.perf_counter()
        bs, c, K = list(self.behaviors), self.cfg, len(self.behaviors)
        if len(reward_fns) != K or len(opts) != K:
            raise ValueError(f"need {K} reward functions and optimizer dicts, got {len(reward_fns)} and {len(opts)}")
        start_all, n = self._start(start)
        noise = BehaviorNoise(K, n, generators)
        for b in bs:
            b._sync_slow_critic()
        states, feat, action, ent = imagine_multi(wm, bs, start_all, c.horizon, noise)
        reward, offsets = multi_reward(reward_fns, states["stoch"], n)  # [K*N, H+1]
        feats = _split(feat, K, n)
        value = torch.cat([b.slow_critic.mean(f) for b, f in zip(bs, feats)])
        ret = lambda_returns(reward, value, c.gamma, c.lam)  # [K*N, H], row-wise
        rets, ents = _split(ret, K, n), _split(ent, K, n)
        ema, normed, actor_losses, logits, critic_losses = [], [], [], [], []
        for i, b in enumerate(bs):
            low, high = b.retnorm.propose(rets[i])
            ema.append((low, high))
            scale = (high - low).clamp_min(b.retnorm.min_scale)
            normed.append((rets[i] - low) / scale)
            loss = -normed[-1][:, 1:].mean()
            if c.actor_entropy:
                loss = loss - c.actor_entropy * ents[i][:, :-1].mean()
            actor_losses.append(loss)
            logits.append(b.critic(feats[i][:, :-1].detach()))
            critic_losses.append(twohot_loss(logits[-1], rets[i].detach(), b.critic.bins).mean())
        losses = torch.stack(actor_losses + critic_losses)
        if not bool(torch.isfinite(losses).all()):  # one device sync; the message names the first bad loss
            bad = int((~torch.isfinite(losses.detach())).nonzero()[0, 0])
            what, i = ("actor", bad) if bad < K else ("critic", bad - K)
            raise FloatingPointError(f"behavior {self.names[i]}: {what} loss is {losses[bad].item()}")
        actor_params = [[p for p in b.actor.parameters() if p.requires_grad] for b in bs]
        critic_params = [[p for p in b.critic.parameters() if p.requires_grad] for b in bs]
        flat = [p for ps in actor_params + critic_params for p in ps]
        grads = list(torch.autograd.grad(losses.sum(), flat))
        norms: dict[str, list[float]] = {"actor": [], "critic": []}
        for what, groups in (("actor", actor_params), ("critic", critic_params)):
            for i, params in enumerate(groups):
                own, grads = grads[:len(params)], grads[len(params):]
                norms[what].append(_apply_grads(params, own, opts[i][what], c.grad_clip))
        with torch.no_grad():
            stats = []
            for i, b in enumerate(bs):
                b.retnorm.low_ema.copy_(ema[i][0])
                b.retnorm.high_ema.copy_(ema[i][1])
                b.updates += 1
                stats.append(_stats(b, slice(i * n, (i + 1) * n), reward, offsets, ret, value, normed[i], feat, ent,
                                    action, losses[i], losses[K + i], logits[i]))
            values = torch.stack([torch.stack(list(d.values())) for d in stats]).tolist()  # one device sync
        seconds = time.perf_counter() - t0
        out = []
        for i in range(K):
            got = {**dict(zip(stats[i], values[i])), "actor_grad_norm": norms["actor"][i],
                   "critic_grad_norm": norms["critic"][i], "seconds": seconds}
            out.append({key: got[key] for key in METRIC_KEYS})
        return out


def _stats(b: ActorCritic, rows: slice, reward, offsets, ret, value, normed, feat, ent, action, actor_loss,
           critic_loss, logits) -> dict[str, torch.Tensor]:
    """Behavior ``b``'s metrics on its ``rows`` as float32 scalar tensors, computed as :meth:`ActorCritic.update`
    computes them (after its steps: ``actor_std`` uses the updated actor)."""
    reward, ret, value = reward[rows], ret[rows], value[rows]
    _, std = b.actor(feat[rows][:64, :-1])
    low, scale = b.retnorm.stats()
    out = {"reward_mean": reward.mean(), "reward_std": reward.std(), "reward_imagined_mean": reward[:, 1:].mean(),
           "align_offset_mean": offsets[rows].float().mean(), "return_mean": ret.mean(), "value_mean": value.mean(),
           "normed_return_mean": normed.mean(), "normed_return_std": normed.std(), "return_low": low,
           "return_high": b.retnorm.high_ema, "return_scale": scale, "actor_loss": actor_loss,
           "actor_entropy": ent[rows].mean(), "actor_std": std.mean(), "action_abs": action[rows].abs().mean(),
           "critic_loss": critic_loss, "critic_mean": twohot_mean(logits.detach(), b.critic.bins).mean()}
    return {k: v.detach().float().reshape(()) for k, v in out.items()}


__all__ = ["MultiActorCritic", "METRIC_KEYS", "keep_freed_memory", "BehaviorNoise", "behavior_generators", "img_step",
           "imagine_multi", "multi_reward"]
