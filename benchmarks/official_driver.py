"""Drive the official GenRL code (mazpie/genrl at 4cd8394, MIT; ``../shared/reference/official_code``) on CPU for
the side-by-side benchmark (``benchmarks/bench_vs_official.py``). Never imported by the ``genrl`` package.

The approach is that of ``tests/official_support.py`` (written again here without pytest, so that a benchmark does
not depend on the test helpers) and of ``../shared/reference/official_throughput.md`` sections 2-3:

* heavy imports are stubbed: ``cv2`` (``tools/genrl_utils.py`` imports it at module level, only to read video
  files), ``wandb`` and ``torchvision`` (never reached; a stub fails loudly instead of pulling in a CUDA torch);
* the configuration is composed as the official ``train.py`` does (``conf/defaults/genrl.yaml`` +
  ``conf/env/dmc_pixels.yaml`` + ``train.yaml`` without its ``defaults``/``hydra`` keys, ``agent/genrl.yaml`` under
  ``agent``), sizes set from one table shared with our side, ``precision=32`` (GradScaler and CUDA autocast off),
  and instantiated with ``hydra.utils.instantiate`` as its ``make_dreamer_agent`` does;
* bf16: :func:`patch_bf16_autocast` replaces the attribute ``torch.cuda.amp.autocast`` (every autocast region of
  the official code goes through it: WM update, detached connector update, actor and critic updates) by a CPU
  bfloat16 autocast that ignores ``enabled``; precision stays 32, so no loss scaling;
* the text tower for ``video_text_reward``: :class:`FakeText` returns a fixed unit embedding ``[1, D]``.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

OFFICIAL = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "official_code"


def official_root(path: str | Path | None = None) -> Path | None:
    """The official code folder (``path`` or the default ``../shared/reference/official_code``), or ``None`` when
    it is absent or lacks ``agent/genrl.py``."""
    root = Path(path) if path else OFFICIAL
    return root if (root / "agent" / "genrl.py").is_file() else None


def missing_dependencies() -> list[str]:
    """Python packages the driver needs that are not importable (``hydra``, ``omegaconf``, ``dm_env``)."""
    out = []
    for name in ("hydra", "omegaconf", "dm_env"):
        try:
            __import__(name)
        except ImportError:
            out.append(name)
    return out


def _stub(name: str) -> None:
    try:
        __import__(name)
    except ImportError:
        mod = types.ModuleType(name)

        def missing(attr, _name=name):
            raise AttributeError(f"{_name} is stubbed by benchmarks/official_driver.py (attribute {attr!r} was used)")

        mod.__getattr__ = missing
        sys.modules[name] = mod


def load_official(root: Path) -> types.SimpleNamespace:
    """Import the official modules (stubs first; ``root`` goes to the front of ``sys.path``)."""
    for name in ("cv2", "wandb", "torchvision"):
        _stub(name)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    import agent.dreamer as dreamer
    import agent.dreamer_utils as common
    import agent.genrl as genrl_agent
    import tools.genrl_utils as genrl_utils
    return types.SimpleNamespace(dreamer=dreamer, common=common, genrl=genrl_agent, utils=genrl_utils)


def official_config(root: Path, sizes: dict, batch_length: int, imag_reward: bool = False):
    """The official configuration with ``sizes`` (keys ``depth deter hidden stoch discrete units layers batch
    horizon``; the connector RSSM gets the world model's sizes, as ours shares them), ``batch_length``, precision 32,
    CPU; with ``imag_reward`` the "imag" actor-critic is built with the official default reward arguments
    (``video_text_reward``, max_cosine, align_sequence, skip_first_target) and a fixed task prompt."""
    from omegaconf import OmegaConf

    top = OmegaConf.load(root / "train.yaml")
    for key in ("defaults", "hydra"):
        top.pop(key, None)
    cfg = OmegaConf.merge(OmegaConf.load(root / "conf/defaults/genrl.yaml"),
                          OmegaConf.load(root / "conf/env/dmc_pixels.yaml"), top)
    cfg.agent = OmegaConf.load(root / "agent/genrl.yaml")
    rssm = {k: sizes[k] for k in ("hidden", "deter", "stoch", "discrete")}
    cfg.rssm.update(rssm)
    cfg.agent.connector_rssm.update(rssm)
    cfg.encoder.cnn_depth = cfg.decoder.cnn_depth = sizes["depth"]
    for head in ("reward_head", "actor", "critic"):
        cfg[head].layers, cfg[head].units = sizes["layers"], sizes["units"]
    cfg.batch_size, cfg.batch_length, cfg.imag_horizon = sizes["batch"], batch_length, sizes["horizon"]
    cfg.precision, cfg.device, cfg.workdir, cfg.task = 32, "cpu", "unused", "stickman_walk"
    if imag_reward:
        cfg.agent.imag_reward_fn = "video_text_reward"
        cfg.agent.imag_reward_args.task_prompt = "benchmark prompt"
    return cfg


def official_spaces(emb: int, action: int):
    """``(obs_space, act_spec)`` as the official env wrappers give them: ``observation`` uint8 (3, 64, 64),
    ``is_first/is_last/is_terminal`` bool, ``clip_video`` float32 (emb,); actions in [-1, 1]."""
    from dm_env import specs

    obs = {"observation": specs.Array((3, 64, 64), np.uint8, "observation"),
           "is_first": specs.Array((), bool, "is_first"), "is_last": specs.Array((), bool, "is_last"),
           "is_terminal": specs.Array((), bool, "is_terminal"),
           "clip_video": specs.Array((emb,), np.float32, "clip_video")}
    return obs, specs.BoundedArray((action,), np.float32, -1.0, 1.0, "action")


def build_agent(root: Path, sizes: dict, batch_length: int, imag_reward: bool = False, seed: int = 0):
    """An official ``GenRLAgent`` built through ``hydra.utils.instantiate`` (as ``make_dreamer_agent``)."""
    import hydra

    load_official(root)
    cfg = official_config(root, sizes, batch_length, imag_reward)
    obs_space, act_spec = official_spaces(sizes["emb"], sizes["action"])
    torch.manual_seed(seed)
    agent_cfg = cfg.agent
    rest = cfg.copy()
    del rest.agent
    return hydra.utils.instantiate(agent_cfg, cfg=rest, obs_space=obs_space, act_spec=act_spec)


def patch_bf16_autocast() -> None:
    """Make every ``torch.cuda.amp.autocast(enabled=...)`` of the official code a CPU bfloat16 autocast."""
    def cpu_bf16_autocast(*args, **kwargs):
        return torch.autocast(device_type="cpu", dtype=torch.bfloat16)

    torch.cuda.amp.autocast = cpu_bf16_autocast


class FakeText:
    """Stands in for InternVideo2's text tower: ``get_txt_feat`` returns a fixed unit embedding ``[1, D]``."""

    def __init__(self, emb: torch.Tensor):
        self.emb = emb

    def get_txt_feat(self, text):
        return self.emb


def random_batch(B: int, T: int, emb: int, action: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A replay-like batch in the official layout: uniform uint8 frames, actions in [-1, 1], zero reward
    ``[B, T, 1]``, ``is_first`` at t = 0 only, no terminals, unit-norm ``clip_video [B, T, emb]``."""
    g = torch.Generator().manual_seed(seed)
    is_first = torch.zeros(B, T, dtype=torch.bool)
    is_first[:, 0] = True
    return {"observation": torch.randint(0, 256, (B, T, 3, 64, 64), generator=g, dtype=torch.uint8),
            "action": torch.rand(B, T, action, generator=g) * 2 - 1,
            "reward": torch.zeros(B, T, 1), "is_first": is_first,
            "is_terminal": torch.zeros(B, T, dtype=torch.bool),
            "clip_video": F.normalize(torch.randn(B, T, emb, generator=g), dim=-1)}


@torch.no_grad()
def posterior_starts(agent, data: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The world model's posterior states ``[B, T, ...]`` of ``data`` (fp32, no gradients): the imagination starts
    of ``update_imag_behavior`` (which flattens them itself)."""
    wm = agent.wm
    d = wm.preprocess(data)
    post, _ = wm.rssm.observe(wm.encoder(d), d["action"], d["is_first"])
    return {k: v.detach() for k, v in post.items()}


__all__ = ["OFFICIAL", "official_root", "missing_dependencies", "load_official", "official_config",
           "official_spaces", "build_agent", "patch_bf16_autocast", "FakeText", "random_batch", "posterior_starts"]
