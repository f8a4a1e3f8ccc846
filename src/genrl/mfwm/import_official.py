"""``genrl import-official``: convert a snapshot of the official GenRL code into a genrl pre-training run folder.

The official code (mazpie/genrl, ``train.py`` ``Workspace.save_snapshot``) saves whole pickled objects with
``torch.save``: either the ``GenRLAgent`` itself (the released snapshots such as ``genrl_stickman_500k_2.pt``) or a
dict ``{"agent", "_global_step", "_global_episode"}``. Reading one means unpickling, which **runs code from the
file**: convert only files you trust. This module is the one place genrl ever unpickles; the result is a normal run
folder (``config.json`` + ``checkpoint/`` of safetensors, weights only) that ``genrl decode``, ``behave``,
``reward-check`` and ``pretrain --init`` accept, with InternVideo2 recorded as its VLM.

Unpickling needs the official classes, so the folder given as ``--official-code`` (a checkout of mazpie/genrl, e.g.
``../shared/reference/official_code``) is put on ``sys.path`` for ``torch.load`` only; genrl never imports it
otherwise. Its ``tools/genrl_utils.py`` imports OpenCV at module level (used only to read video prompts): when
``cv2`` is not installed, a placeholder module that fails on any use stands in for it. The pickled configuration is
an OmegaConf object, so ``omegaconf`` must be installed (``pip install omegaconf``).

What is converted (names: :mod:`genrl.mfwm.official_map`): the world model (encoder, RSSM, decoder), the connector
and the aligner; the configuration maps to a :class:`~genrl.worldmodel.config.WorldModelConfig` (for the paper's
snapshots: the ``paper`` preset). The reward head is dropped unless asked for (GenRL never uses it: it is trained on
the collection task's reward, a waste in the official ``agent/dreamer.py`` ``WorldModel``), so the config equals the
``paper`` preset and ``genrl pretrain DATA --vlm internvideo2 ... --preset paper --init RUN`` continues training it.
Optimizer states and the actor-critics are not converted.

Usage::

    genrl import-official models/genrl_stickman_500k_2.pt --official-code ../shared/reference/official_code \\
        --out runs/stickman_official
    genrl decode runs/stickman_official --vlm internvideo2 --vlm-path ... --prompt "doing flips" --out flips.gif
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
import types
from pathlib import Path
from typing import Any, Iterator

import torch

from genrl.data.layout import INTERNVIDEO2_ID, KNOWN_DOMAINS
from genrl.mfwm.model import MFWM
from genrl.mfwm.official_map import OfficialFormatError, connector_settings, mfwm_state, world_model_config
from genrl.mfwm.pretrain import write_weights_run
from genrl.worldmodel.config import to_dict

__all__ = ["TRUST_WARNING", "placeholder_modules", "load_official_agent", "import_official"]

TRUST_WARNING = ("official snapshots are pickles: loading one runs code from the file; convert only files you "
                 "trust")


@contextlib.contextmanager
def placeholder_modules(*names: str) -> Iterator[list[str]]:
    """Stand-in modules for the official code's imports that are not installed, only while it is imported.

    For each of ``names`` that cannot be imported (and is not already in ``sys.modules``) a placeholder module goes
    into ``sys.modules``; any attribute use raises ``AttributeError`` naming the module. On exit the placeholders
    leave ``sys.modules`` again (modules imported meanwhile keep their reference), so later probes such as
    ``importlib.util.find_spec`` (transformers checks for torchvision that way) see the packages as absent.
    Used by :func:`load_official_agent` (``cv2``) and the parity tests (``cv2``, ``wandb``, ``torchvision``).

    Yields:
        the names that got a placeholder.
    """
    placed = []
    for name in names:
        if name in sys.modules:
            continue
        try:
            __import__(name)
        except ImportError:
            mod = types.ModuleType(name)

            def missing(attr: str, _name: str = name) -> Any:
                raise AttributeError(f"{_name} is not installed (a placeholder stands in for it while the official "
                                     f"code is imported); {_name}.{attr} was used")

            mod.__getattr__ = missing  # type: ignore[method-assign]
            sys.modules[name] = mod
            placed.append(name)
    try:
        yield placed
    finally:
        for name in placed:
            sys.modules.pop(name, None)


def load_official_agent(snapshot: str | Path, official_code: str | Path) -> tuple[Any, int | None]:
    """Unpickle an official snapshot (trusted files only: see the module docstring).

    Args:
        snapshot: the ``.pt`` file (a pickled ``GenRLAgent`` or a ``{"agent", "_global_step", ...}`` dict).
        official_code: a checkout of the official code (the folder holding ``agent/genrl.py``).

    Returns:
        ``(agent, step)``: the official agent on the CPU, and ``_global_step`` (update steps) or None.

    Raises:
        FileNotFoundError: no snapshot file, or no ``agent/genrl.py`` under ``official_code``.
        OfficialFormatError: omegaconf is missing, or the file holds no GenRL agent with a connector.
    """
    snapshot, code = Path(snapshot), Path(official_code)
    if not snapshot.is_file():
        raise FileNotFoundError(f"official snapshot {snapshot} not found")
    if not (code / "agent" / "genrl.py").is_file():
        raise FileNotFoundError(f"--official-code {code}: no agent/genrl.py there (give a checkout of mazpie/genrl)")
    try:
        import omegaconf  # noqa: F401  (the pickled config is an OmegaConf DictConfig)
    except ImportError:
        raise OfficialFormatError("unpickling an official snapshot needs omegaconf (pip install omegaconf)") from None
    if str(code.resolve()) not in sys.path:
        sys.path.insert(0, str(code.resolve()))
    with placeholder_modules("cv2"):
        payload = torch.load(snapshot, map_location="cpu", weights_only=False)
    agent, step = payload, None
    if isinstance(payload, dict):
        if "agent" not in payload:
            raise OfficialFormatError(f"{snapshot}: a dict without an 'agent' entry (keys {sorted(payload)})")
        agent, step = payload["agent"], payload.get("_global_step")
    if not (hasattr(agent, "wm") and hasattr(agent.wm, "connector") and hasattr(agent, "cfg")):
        raise OfficialFormatError(f"{snapshot}: not an official GenRL agent with a connector "
                                  f"(got {type(agent).__name__})")
    return agent, (int(step) if step is not None else None)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def import_official(snapshot: str | Path, official_code: str | Path, out: str | Path, domain: str | None = None,
                    reward_head: bool = False) -> dict:
    """Convert an official snapshot into a genrl run folder ``out``; returns its ``config.json`` contents.

    Args:
        snapshot, official_code: as :func:`load_official_agent`.
        out: the new run folder (must not hold a run yet).
        domain: the embodiment (default: from the snapshot's ``cfg.task``, e.g. ``stickman_walk`` -> ``stickman``).
        reward_head: keep the world model's reward head.

    Raises:
        FileNotFoundError / OfficialFormatError: see :func:`load_official_agent` and
            :mod:`genrl.mfwm.official_map` (settings genrl cannot represent, missing tensors), an unknown domain,
            a VLM other than InternVideo2, or ``out`` already holding a run.
    """
    out = Path(out)
    if (out / "config.json").exists():
        raise OfficialFormatError(f"{out} already holds a run (config.json); give another --out")
    agent, step = load_official_agent(snapshot, official_code)
    cfg = agent.cfg
    task = str(cfg.get("task", ""))
    domain = domain or task.split("_", 1)[0]
    if domain not in KNOWN_DOMAINS:
        raise OfficialFormatError(f"domain {domain!r} (from the snapshot's task {task!r}) is not one of "
                                  f"{list(KNOWN_DOMAINS)}; give --domain")
    if str(cfg.get("viclip_model", "internvideo2")) != "internvideo2":
        raise OfficialFormatError(f"the snapshot's viclip_model is {cfg.get('viclip_model')!r}; genrl maps "
                                  "internvideo2 only")
    wm_cfg = world_model_config(cfg, reward_head=reward_head)
    extra = connector_settings(cfg)
    embed_dim, n_frames, action_dim = int(agent.viclip_emb_dim), int(agent.n_frames), int(agent.act_dim)
    model = MFWM(wm_cfg, action_dim, embed_dim, n_frames, extra["aligner_noise"])
    model.load_state_dict(mfwm_state(agent.state_dict(), wm_cfg, embed_dim))  # strict: every tensor mapped
    snapshot = Path(snapshot)
    run_cfg = {"domain": domain, "action_dim": action_dim, "embedder_id": INTERNVIDEO2_ID, "embed_dim": embed_dim,
               "n_frames": n_frames, "aligner_noise": extra["aligner_noise"], "world_model": to_dict(wm_cfg),
               "pretrain": {"dataset": None, "holdout": 0.0},
               "imported_from": {"snapshot": str(snapshot.resolve()), "sha256": _sha256(snapshot), "task": task,
                                 "official_step": step, "reward_head": reward_head,
                                 "official_code": str(Path(official_code).resolve())}}
    write_weights_run(out, model, step or 0, run_cfg)
    return run_cfg
