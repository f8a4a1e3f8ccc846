"""Helpers of the parity tests: build the official GenRL code (``../shared/reference/official_code``) at a tiny
size, beside ours with the same weights, and feed both the same random draws.

The official code is only ever imported here and by ``genrl import-official`` (which needs it to unpickle). Its heavy
imports are stubbed: ``cv2`` (imported at module level by ``tools/genrl_utils.py``, used only to read video files),
and ``wandb`` / ``torchvision`` (never reached by the code paths tested; stubbed so an accidental import fails loudly
instead of pulling a CUDA build of torch), by ``genrl.mfwm.import_official.placeholder_modules`` during the import
only. Configuration is composed as the official ``train.py`` does (its ``conf/defaults/genrl.yaml`` +
``conf/env/dmc_pixels.yaml`` + ``train.yaml``, ``agent/genrl.yaml`` under ``agent``),
then instantiated with ``hydra.utils.instantiate`` like its ``make_dreamer_agent``.

Fixed noise (:class:`NoiseTape`): our code draws categorical samples by inverting the CDF with one uniform number
per variable and actions as ``mean + std * randn``; the official code uses ``torch.multinomial`` and
``Normal.rsample``. The tape replaces the random numbers on both sides by the same pre-drawn values (the official
categorical sampler is swapped for an inverse-CDF one on the same probabilities, which is the same distribution),
per *role* (``post``, ``prior``, ``action``), so that calls made in different orders or batchings still get the same
numbers.
"""

from __future__ import annotations

import contextlib
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genrl.mfwm.import_official import placeholder_modules

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
OFFICIAL = SHARED / "reference" / "official_code"

# tiny sizes shared by both sides (the connector's RSSM must have the world model's sizes: ours shares them)
TINY = dict(depth=4, deter=32, hidden=32, stoch=4, discrete=4, units=32, layers=2, emb=16, action=3, batch=3,
            length=16, horizon=16)


def require_official() -> Path:
    """The official code folder, or skip the test with the reason."""
    if not (OFFICIAL / "agent" / "genrl.py").is_file():
        pytest.skip(f"official GenRL code not found at {OFFICIAL} (the parity tests need ../shared/reference)")
    pytest.importorskip("hydra", reason="hydra-core is a test dependency (pip install -e .[test])")
    pytest.importorskip("omegaconf", reason="omegaconf is a test dependency (pip install -e .[test])")
    return OFFICIAL


def official_modules() -> types.SimpleNamespace:
    """Import the official modules (stubs first; the official folder goes to the front of ``sys.path``)."""
    root = require_official()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    with placeholder_modules("cv2", "wandb", "torchvision"):
        import agent.dreamer as dreamer
        import agent.dreamer_utils as common
        import agent.genrl as genrl_agent
        import agent.video_utils as video_utils
        import tools.genrl_utils as genrl_utils
    return types.SimpleNamespace(dreamer=dreamer, common=common, genrl=genrl_agent, video=video_utils,
                                 utils=genrl_utils)


def official_config(**over):
    """The official configuration at the tiny sizes (precision 32, CPU)."""
    from omegaconf import OmegaConf

    root = require_official()
    s = {**TINY, **over}
    top = OmegaConf.load(root / "train.yaml")
    for key in ("defaults", "hydra"):
        top.pop(key, None)
    cfg = OmegaConf.merge(OmegaConf.load(root / "conf/defaults/genrl.yaml"),
                          OmegaConf.load(root / "conf/env/dmc_pixels.yaml"), top)
    cfg.agent = OmegaConf.load(root / "agent/genrl.yaml")
    sizes = {"hidden": s["hidden"], "deter": s["deter"], "stoch": s["stoch"], "discrete": s["discrete"]}
    cfg.rssm.update(sizes)
    cfg.agent.connector_rssm.update(sizes)
    cfg.encoder.cnn_depth = cfg.decoder.cnn_depth = s["depth"]
    for head in ("reward_head", "actor", "critic"):
        cfg[head].layers, cfg[head].units = s["layers"], s["units"]
    cfg.batch_size, cfg.batch_length, cfg.imag_horizon = s["batch"], s["length"], s["horizon"]
    cfg.precision, cfg.device, cfg.workdir, cfg.task = 32, "cpu", "unused", "stickman_walk"
    return cfg


def official_spaces(emb: int, action: int):
    """``(obs_space, act_spec)`` as the official env wrappers give them (dm_env specs, picklable)."""
    from dm_env import specs

    obs = {"observation": specs.Array((3, 64, 64), np.uint8, "observation"),
           "is_first": specs.Array((), bool, "is_first"), "is_last": specs.Array((), bool, "is_last"),
           "is_terminal": specs.Array((), bool, "is_terminal"),
           "clip_video": specs.Array((emb,), np.float32, "clip_video")}
    return obs, specs.BoundedArray((action,), np.float32, -1.0, 1.0, "action")


def build_official_agent(seed: int = 0, imag: bool = True, **over):
    """A tiny official ``GenRLAgent`` (with its "imag" actor-critic when ``imag``), gradients off as after
    ``train.py``'s ``load_snapshot``."""
    import hydra

    official_modules()
    s = {**TINY, **over}
    cfg = official_config(**over)
    obs_space, act_spec = official_spaces(s["emb"], s["action"])
    torch.manual_seed(seed)
    agent_cfg = cfg.agent
    rest = cfg.copy()
    del rest.agent
    agent = hydra.utils.instantiate(agent_cfg, cfg=rest, obs_space=obs_space, act_spec=act_spec)
    if imag:
        agent.instantiate_imag_behavior()
    agent.requires_grad_(False)
    return agent


def randomize_(module: torch.nn.Module, seed: int, scale: float = 0.3) -> None:
    """Perturb every parameter (zero-initialised output layers and unit LayerNorms would hide mapping errors)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))


def batch(seed: int = 0, **over) -> dict[str, torch.Tensor]:
    """A replay-like batch ``[B, T]`` with an episode start in the middle of row 1; ``clip_video`` holds unit
    embeddings that are constant within each chunk of 8 steps (each chunk's window embedding)."""
    s = {**TINY, **over}
    B, T = s["batch"], s["length"]
    g = torch.Generator().manual_seed(seed)
    is_first = torch.zeros(B, T, dtype=torch.bool)
    is_first[:, 0] = True
    is_first[1, 5] = True
    chunks = F.normalize(torch.randn(B, T // 8, s["emb"], generator=g), dim=-1)
    return {"observation": torch.randint(0, 256, (B, T, 3, 64, 64), generator=g, dtype=torch.uint8),
            "action": torch.rand(B, T, s["action"], generator=g) * 2 - 1,
            "reward": torch.randn(B, T, 1, generator=g),
            "is_first": is_first, "is_terminal": torch.zeros(B, T, dtype=torch.bool),
            "clip_video": chunks.repeat_interleave(8, dim=1)}


class NoiseTape:
    """Pre-drawn random numbers per role, handed out in call order.

    ``uniform(role, shape)``: categorical uniforms ``[..., S, 1]``; a role holding one big tensor ``[B, T, S, 1]``
    serves it whole to a ``[B, T, S, 1]`` request and slice ``[:, k]`` to the ``k``-th ``[B, S, 1]`` request.
    ``normal(role, shape)``: action noise, one tensor per call. An empty role falls back to fresh random numbers.
    """

    def __init__(self):
        self.seqs: dict[str, list[torch.Tensor]] = {}
        self.whole: dict[str, torch.Tensor] = {}
        self.calls: dict[str, int] = {}
        self.role: str | None = None

    def put(self, role: str, values: list[torch.Tensor]) -> "NoiseTape":
        self.seqs[role] = list(values)
        return self

    def put_whole(self, role: str, values: torch.Tensor) -> "NoiseTape":
        self.whole[role] = values
        self.calls[role] = 0
        return self

    def take(self, role: str, shape) -> torch.Tensor:
        shape = tuple(shape)
        if role in self.whole:
            full = self.whole[role]
            if shape == tuple(full.shape):
                return full
            k = self.calls[role]
            self.calls[role] += 1
            out = full[:, k]
            assert tuple(out.shape) == shape, (role, shape, tuple(out.shape))
            return out
        seq = self.seqs.get(role)
        if seq:
            out = seq.pop(0)
            assert tuple(out.shape) == shape, (role, shape, tuple(out.shape))
            return out
        return torch.rand(shape) if role != "action" else torch.randn(shape)

    @contextlib.contextmanager
    def as_role(self, role: str):
        prev, self.role = self.role, role
        try:
            yield
        finally:
            self.role = prev


def inverse_cdf_onehot(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """One-hot ``[..., D]`` of ``index = #{j : cdf_j <= u * cdf_D}`` (the same rule as our sampler)."""
    cdf = probs.cumsum(-1)
    index = (cdf <= u * cdf[..., -1:]).sum(-1).clamp(max=probs.shape[-1] - 1)
    return F.one_hot(index, probs.shape[-1]).to(probs.dtype)


@contextlib.contextmanager
def fixed_noise(tape: NoiseTape, off):
    """Route the random draws of both implementations through ``tape``.

    Ours: ``torch.rand`` inside :meth:`genrl.worldmodel.dists.OneHotDist.sample` (role set by wrapping
    ``RSSM.posterior`` as ``post`` and ``RSSM.prior_from_deter`` as ``prior``) and ``torch.randn_like`` inside
    ``Actor.sample`` (role ``action``). Official: its ``OneHotDist.sample`` becomes an inverse-CDF draw on its own
    (unimixed) probabilities with the tape's uniforms (roles from wrapping ``EnsembleRSSM.get_post_stoch`` and
    ``get_stoch_stats_from_deter_state``), and ``Normal.rsample``'s standard normals come from role ``action``.
    """
    import torch.distributions.normal as normal_mod

    from genrl.behavior import actor_critic as ours_ac
    from genrl.worldmodel import dists as ours_dists
    from genrl.worldmodel.rssm import RSSM

    patches: list[tuple[object, str, object]] = []

    def patch(obj, name, value):
        patches.append((obj, name, getattr(obj, name)))
        setattr(obj, name, value)

    def with_role(fn, role):
        def wrapped(*args, **kwargs):
            with tape.as_role(role):
                return fn(*args, **kwargs)
        return wrapped

    # ours
    real_rand, real_randn_like = torch.rand, torch.randn_like

    def our_sample(self):
        with torch.no_grad():
            u = tape.take(tape.role or "prior", self.probs.shape[:-1] + (1,))
            onehot = inverse_cdf_onehot(self.probs, u)
        return onehot + self.probs - self.probs.detach()

    patch(ours_dists.OneHotDist, "sample", our_sample)
    patch(RSSM, "posterior", with_role(RSSM.posterior, "post"))
    patch(RSSM, "prior_from_deter", with_role(RSSM.prior_from_deter, "prior"))
    real_actor_sample = ours_ac.Actor.sample

    def actor_sample(self, feat):
        torch.randn_like = lambda x: tape.take("action", x.shape).to(x)
        try:
            return real_actor_sample(self, feat)
        finally:
            torch.randn_like = real_randn_like

    patch(ours_ac.Actor, "sample", actor_sample)
    # official
    rssm_cls, dist_cls = off.common.EnsembleRSSM, off.common.OneHotDist

    def off_sample(self, sample_shape=(), seed=None):
        probs = self.probs
        u = tape.take(tape.role or "prior", probs.shape[:-1] + (1,))
        return inverse_cdf_onehot(probs.detach(), u) + probs - probs.detach()

    patch(dist_cls, "sample", off_sample)
    patch(rssm_cls, "get_post_stoch", with_role(rssm_cls.get_post_stoch, "post"))
    patch(rssm_cls, "get_stoch_stats_from_deter_state", with_role(rssm_cls.get_stoch_stats_from_deter_state, "prior"))
    patch(normal_mod, "_standard_normal", lambda shape, dtype, device: tape.take("action", shape).to(dtype))
    try:
        yield tape
    finally:
        for obj, name, value in reversed(patches):
            setattr(obj, name, value)
        torch.rand, torch.randn_like = real_rand, real_randn_like


def assert_close(ours: torch.Tensor, theirs: torch.Tensor, what: str, atol: float = 1e-5, rtol: float = 1e-5):
    """``torch.testing.assert_close`` on float32 copies with a message naming the compared quantity."""
    ours, theirs = torch.as_tensor(ours).detach().float(), torch.as_tensor(theirs).detach().float()
    assert ours.shape == theirs.shape, f"{what}: shapes {tuple(ours.shape)} vs {tuple(theirs.shape)}"
    torch.testing.assert_close(ours, theirs, atol=atol, rtol=rtol, msg=lambda m: f"{what}: {m}")


def build_ours(agent, wd: float | None = None, lr: float | None = None):
    """Our MFWM (fp32, with the reward head) and "imag" actor-critic carrying the official agent's weights, through
    the package's documented mapping (:mod:`genrl.mfwm.official_map`)."""
    from dataclasses import replace

    from genrl.behavior.actor_critic import ActorCritic
    from genrl.behavior.config import BehaviorConfig
    from genrl.mfwm.model import MFWM
    from genrl.mfwm.official_map import actor_critic_state, connector_settings, mfwm_state, world_model_config

    cfg = replace(world_model_config(agent.cfg, reward_head=True), precision="fp32")
    if wd is not None:
        cfg = replace(cfg, weight_decay=wd)
    if lr is not None:
        cfg = replace(cfg, lr=lr)
    model = MFWM(cfg, agent.act_dim, agent.viclip_emb_dim, agent.n_frames, **connector_settings(agent.cfg))
    model.load_state_dict(mfwm_state(agent.state_dict(), cfg, agent.viclip_emb_dim))
    c = agent.cfg
    bcfg = BehaviorConfig(actor_layers=c.actor.layers, actor_units=c.actor.units, critic_layers=c.critic.layers,
                          critic_units=c.critic.units, batch_size=c.batch_size, batch_length=c.batch_length,
                          horizon=c.imag_horizon, gamma=c.discount, lam=c.discount_lambda,
                          actor_lr=c.actor_opt.lr, critic_lr=c.critic_opt.lr, adam_eps=c.actor_opt.eps,
                          grad_clip=c.actor_opt.clip, weight_decay=c.actor_opt.wd, actor_min_std=c.actor.min_std,
                          slow_critic_every=c.slow_target_update)
    ac = ActorCritic(bcfg, model.wm.feat_dim, model.wm.action_dim)
    missing, unexpected = ac.load_state_dict(actor_critic_state(agent.state_dict(), c.actor.layers), strict=False)
    assert missing == ["updates"] and not unexpected, (missing, unexpected)
    return model, ac


def unimixed(raw_logits: torch.Tensor, unimix: float = 0.01) -> torch.Tensor:
    """Log-probabilities of the official ``OneHotDist`` (``0.99 softmax + 0.01 / D``) from its raw logits."""
    return torch.log((1 - unimix) * torch.softmax(raw_logits.float(), -1) + unimix / raw_logits.shape[-1])


class FakeText:
    """Stands in for InternVideo2's text tower: ``get_txt_feat`` returns a fixed unit embedding ``[1, D]``."""

    def __init__(self, emb):
        self.emb = emb

    def get_txt_feat(self, text):
        return self.emb


def official_range_reward(fn):
    """Our reward restricted to the official alignment offsets ``0 .. T - b - 1`` (built from our own functions)."""
    from genrl.behavior.reward import aligned_indices, best_offsets, score_pairs

    def reward(stoch):
        agent = fn.project(stoch)
        target = fn.target_proj[torch.arange(len(stoch)) % len(fn.target_proj)]
        k = best_offsets(agent.detach()[:, :-1], target, fn.align_b, fn.score)
        idx = aligned_indices(k, stoch.shape[1], fn.length)
        aligned = torch.gather(target, 1, idx[..., None].expand(-1, -1, target.shape[-1]))
        return score_pairs(agent, aligned, fn.score), k
    return reward
