"""The GenRL reward: latent trajectory matching against a prompt's target sequence (paper eq. 2, appendix E;
official ``tools/genrl_utils.py`` ``video_text_reward``/``compute_reward``).

1. **Target** (:func:`build_target`, official ``video_text_reward``): the prompt embedding (text: through the aligner;
   video: without it unless asked) is repeated for ``H + 2`` steps and rolled out by the connector taking the *mode*
   of every prior (paper appendix B: "we use the mode ... to improve stability"); the first state is dropped
   (``skip_first_target``), leaving ``H + 1`` target states per row. Each row has its own sampled initial ``z`` (the
   connector's learned initial state is sampled). Computed once per run with a fixed seed and stored in the behavior
   checkpoint (:class:`PromptTarget` buffers), so a resumed run uses the very same target.
2. **Per-state score** (:func:`score_pairs`, official ``compute_reward``): ``u = g(z_imag)``, ``v = g(z_target)`` with
   ``g`` the first Linear layer of the world model's image decoder applied to the flat one-hot ``z`` (``h`` is
   ignored), and

   * ``"cosine"``: ``<u, v> / (|u| |v|)`` (paper eq. 2);
   * ``"max_cosine"``: ``<u, v> / max(|u|, |v|)^2 = cos(u, v) * min(|u|,|v|) / max(|u|,|v|)`` (official code).

   **Default: ``max_cosine``.** The paper's published numbers were produced by the official configuration, which
   uses ``max_cosine``; it is a cosine that also penalises a norm mismatch between the two projections, so two
   states pointing in the same direction but with different magnitudes (e.g. very different pixel energy after
   decoding) are not rewarded fully. Plain ``cosine`` is the paper's equation and is one ``--score cosine`` away.
3. **Best-matching temporal alignment** (:func:`best_offsets`, paper appendix E, official ``align_sequence``): the
   first ``b`` target states are compared with every ``b``-step window of the imagined trajectory (offsets
   ``k = 0 .. T - b``, *including* the last one, which the official loop ``range(T - n_frames)`` skips); the best
   offset ``k*`` per trajectory re-indexes the target, ``tau(t) = clamp(t - k*, 0, T_target - 1)``: imagined states
   before ``k*`` are compared with the first target state, later ones with the correspondingly shifted target.

The reward of imagined state ``t`` is ``r_t = score(g(z_t), g(z*_{tau(t)}))``, float32 ``[N, H + 1]``, differentiable
with respect to the imagined ``z`` (straight-through samples), hence with respect to the actions through the world
model's dynamics (official ``ActorCritic.update``). No reward normalisation (the official
``StreamNorm`` with momentum 1 is the identity).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from genrl.behavior.config import SCORES
from genrl.mfwm.model import MFWM
from genrl.worldmodel.model import WorldModel

_EPS = 1e-8


def score_pairs(u: torch.Tensor, v: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-state score of paired projections ``u, v [..., P]`` -> float32 ``[...]`` in ``[-1, 1]``.

    Args:
        kind: ``"cosine"`` or ``"max_cosine"`` (see the module docstring).

    Raises:
        ValueError: unknown ``kind``.
    """
    u, v = u.float(), v.float()
    dot = (u * v).sum(-1)
    nu, nv = u.norm(dim=-1), v.norm(dim=-1)
    if kind == "cosine":
        return dot / (nu * nv).clamp_min(_EPS)
    if kind == "max_cosine":
        return dot / torch.maximum(nu, nv).square().clamp_min(_EPS)
    raise ValueError(f"unknown score {kind!r}; valid scores: {SCORES}")


def score_matrix(u: torch.Tensor, v: torch.Tensor, kind: str) -> torch.Tensor:
    """All-pairs scores of ``u [N, T, P]`` against ``v [N, J, P]`` -> float32 ``[N, T, J]`` (same rules as
    :func:`score_pairs`)."""
    u, v = u.float(), v.float()
    dot = torch.einsum("ntp,njp->ntj", u, v)
    nu, nv = u.norm(dim=-1)[:, :, None], v.norm(dim=-1)[:, None, :]
    if kind == "cosine":
        return dot / (nu * nv).clamp_min(_EPS)
    if kind == "max_cosine":
        return dot / torch.maximum(nu, nv).square().clamp_min(_EPS)
    raise ValueError(f"unknown score {kind!r}; valid scores: {SCORES}")


def alignment_enabled(b: int, horizon: int) -> bool:
    """Whether window size ``b`` aligns at all: ``1 <= b < horizon`` (``b <= 0`` or ``b >= horizon`` = none)."""
    return 1 <= b < horizon


@torch.no_grad()
def best_offsets(agent: torch.Tensor, target: torch.Tensor, b: int, kind: str) -> torch.Tensor:
    """Best-matching offset ``k*`` per trajectory (paper appendix E, step 1).

    ``S_k = (1/b) sum_{j<b} score(agent_{k+j}, target_j)`` for every ``k = 0 .. T - b`` (all valid offsets),
    ``k* = argmax_k S_k`` (first maximum on ties).

    Args:
        agent: imagined projections float ``[N, T, P]``.
        target: target projections float ``[N, J, P]`` with ``J >= b``.
        b: window size, ``1 <= b <= min(T, J)``.
        kind: score (``"cosine"`` / ``"max_cosine"``).

    Returns:
        int64 ``[N]`` offsets in ``[0, T - b]``.

    Raises:
        ValueError: ``b`` outside ``[1, min(T, J)]``.
    """
    T, J = agent.shape[1], target.shape[1]
    if not 1 <= b <= min(T, J):
        raise ValueError(f"alignment window b={b} must be in [1, min(T={T}, J={J})]")
    m = score_matrix(agent, target[:, :b], kind)  # [N, T, b]
    ks = torch.arange(T - b + 1, device=agent.device)
    js = torch.arange(b, device=agent.device)
    windows = m[:, ks[:, None] + js[None, :], js[None, :].expand(len(ks), b)]  # [N, K, b]
    return windows.mean(-1).argmax(-1)


def aligned_indices(offsets: torch.Tensor, length: int, target_length: int) -> torch.Tensor:
    """Target index per imagined step: ``tau(t) = clamp(t - k*, 0, target_length - 1)``, int64 ``[N, length]``
    (paper appendix E, step 2)."""
    t = torch.arange(length, device=offsets.device)
    return (t[None, :] - offsets[:, None]).clamp(0, target_length - 1)


class PromptTarget(nn.Module):
    """The cached target latent sequence of one prompt (buffers, saved in the behavior checkpoint).

    Args:
        rows: target trajectories ``M`` (one per imagination start; row ``n`` of a batch uses ``n % M``).
        length: target states per row ``H + 1``.
        stoch, discrete, deter: latent sizes of the world model.

    Buffers:
        stoch: float32 ``[M, length, stoch, discrete]`` one-hot modes. deter: float32 ``[M, length, deter]``.
    """

    def __init__(self, rows: int, length: int, stoch: int, discrete: int, deter: int):
        super().__init__()
        self.register_buffer("stoch", torch.zeros(rows, length, stoch, discrete))
        self.register_buffer("deter", torch.zeros(rows, length, deter))

    def set(self, states: dict[str, torch.Tensor]) -> "PromptTarget":
        """Copy ``states`` (``stoch [M, L, S, D]``, ``deter [M, L, deter]``) in. Raises ``ValueError`` on a shape
        mismatch."""
        for key in ("stoch", "deter"):
            buf = getattr(self, key)
            if tuple(states[key].shape) != tuple(buf.shape):
                raise ValueError(f"target {key} has shape {tuple(states[key].shape)}, expected {tuple(buf.shape)}")
            buf.copy_(states[key].detach().float())
        return self


@torch.no_grad()
def build_target(model: MFWM, emb: torch.Tensor, rows: int, horizon: int, use_aligner: bool = True,
                 skip_first: bool = True, seed: int = 0) -> PromptTarget:
    """Roll a prompt embedding out into target latent states (official ``video_text_reward``).

    Args:
        model: the (frozen) MFWM.
        emb: prompt embedding float ``[1, D]`` or ``[D]`` (unit norm; re-normalised).
        rows: target trajectories (the number of imagination starts per update).
        horizon: imagination horizon ``H``; the target has ``H + 1`` states.
        use_aligner: map the embedding through the aligner first (text: always; video: optional).
        skip_first: roll out ``H + 2`` steps and drop the first state (official ``skip_first_target``).
        seed: seed of the sampled initial ``z`` of each row (the global torch RNG is left untouched).

    Returns:
        :class:`PromptTarget` on the model's device, with the connector's mode states ``[rows, H + 1, ...]``.
    """
    emb = emb.reshape(1, -1).to(model.wm.device)
    steps = horizon + 2 if skip_first else horizon + 1
    devices = [model.wm.device] if model.wm.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        if devices:
            torch.cuda.manual_seed(seed)
        states = model.imagine_prompt(emb.expand(rows, -1), steps, use_aligner=use_aligner, sample=False)
    if skip_first:
        states = {k: v[:, 1:] for k, v in states.items()}
    cfg = model.wm.cfg
    target = PromptTarget(rows, horizon + 1, cfg.stoch, cfg.discrete, cfg.deter).to(model.wm.device)
    return target.set(states)


class LatentReward:
    """``r_t = score(g(z_t), g(z*_{tau(t)}))`` of imagined trajectories against a cached target.

    Args:
        wm: the (frozen) world model; ``g = wm.decoder.project``.
        target: the prompt's :class:`PromptTarget` (``M`` rows of ``L`` states).
        score: ``"max_cosine"`` or ``"cosine"``.
        align_b: alignment window ``b`` (see :func:`alignment_enabled`); the imagination horizon is ``L - 1``.

    Call: ``reward, offsets = fn(stoch)`` with imagined one-hot latents float ``[N, T, S, D]`` (``T <= L`` when not
    aligning) -> float32 ``[N, T]`` rewards (differentiable in ``stoch``) and int64 ``[N]`` offsets ``k*`` (zeros
    without alignment). Imagined row ``n`` is compared with target row ``n % M``.

    Raises:
        ValueError: unknown ``score``.
    """

    def __init__(self, wm: WorldModel, target: PromptTarget, score: str = "max_cosine", align_b: int = 8):
        if score not in SCORES:
            raise ValueError(f"unknown score {score!r}; valid scores: {SCORES}")
        self.wm, self.score, self.align_b = wm, score, int(align_b)
        self.length = target.stoch.shape[1]
        with torch.no_grad():
            self.target_proj = self.project(target.stoch).float()  # [M, L, P], the decoder is frozen

    def project(self, stoch: torch.Tensor) -> torch.Tensor:
        """``g``: one-hot latents ``[..., S, D]`` -> decoder first-layer projections float32 ``[..., P]``."""
        with self.wm.autocast():
            out = self.wm.decoder.project(stoch.reshape(*stoch.shape[:-2], -1))
        return out.float()

    def __call__(self, stoch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        N, T = stoch.shape[:2]
        agent = self.project(stoch)  # [N, T, P]
        rows = torch.arange(N, device=agent.device) % self.target_proj.shape[0]
        target = self.target_proj[rows]  # [N, L, P]
        if alignment_enabled(self.align_b, self.length - 1):
            offsets = best_offsets(agent.detach(), target, min(self.align_b, T), self.score)
        else:
            offsets = torch.zeros(N, dtype=torch.long, device=agent.device)
        idx = aligned_indices(offsets, T, self.length)  # [N, T]
        aligned = torch.gather(target, 1, idx[..., None].expand(-1, -1, target.shape[-1]))
        return score_pairs(agent, aligned, self.score), offsets


__all__ = ["score_pairs", "score_matrix", "best_offsets", "aligned_indices", "alignment_enabled", "PromptTarget",
           "build_target", "LatentReward"]
