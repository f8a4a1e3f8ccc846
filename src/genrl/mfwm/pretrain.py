"""MFWM pre-training: ``genrl pretrain DATASET --vlm NAME --preset small`` (paper section 3.1; official
``train.py`` with ``train_world_model``/``train_connector``).

Trains the world model, connector and aligner together on windows of a dataset and its stored per-step VLM
embeddings (``genrl embed``). Outputs in ``--out``:

* ``checkpoint/``: safetensors weights + optimizers + RNG + step + ``config.json`` (every ``save_every`` steps,
  atomically); re-running the same command resumes from it.
* ``metrics.jsonl`` + TensorBoard events (``tensorboard --logdir OUT``); a progress bar with steps/s and losses.
* ``reports/step_<N>.png`` (+ ``.gif``): rows of ground truth, reconstruction, 16-step open-loop prediction and
  connector rollout from the real clip embedding (see :func:`make_report`).

Data-parallel over N processes (``genrl pretrain ... --nproc N``, or ``torchrun``): see :func:`pretrain`.

The run skeleton (resume check, bar, logger, NaN/Inf guard, cadence) is :class:`genrl.utils.runtime.Runtime`: a
NaN/Inf loss stops training with a message and the last good checkpoint is kept; Ctrl-C saves a checkpoint of the
updates done and stops.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch

from genrl.data.dataset import Dataset, DatasetError
from genrl.data.sampler import SequenceSampler
from genrl.data.split import split_names
from genrl.mfwm.config import PretrainConfig, world_model_config  # torch-free: the CLI builds `genrl pretrain` from it
from genrl.mfwm.model import MFWM
from genrl.mfwm.parallel import DataParallelMFWM
from genrl.utils.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from genrl.utils.device import resolve_device
from genrl.utils.distributed import (DistInfo, barrier, device_for_rank, env_info, launched, process_group,
                                     rank_seed)
from genrl.utils.io import atomic_path, write_json
from genrl.utils.runtime import Hook, LoopConfig, Runtime, config_differences
from genrl.worldmodel.config import from_dict, to_dict

CKPT = "checkpoint"


def snapshot_dir(out: str | Path, step: int) -> Path:
    """Folder of the weights-only snapshot taken after ``step`` updates of the run in ``out``."""
    return Path(out) / "snapshots" / f"step_{step:07d}"


def write_weights_run(folder: str | Path, model: MFWM, step: int, run_cfg: dict) -> Path:
    """Write a weights-only run folder (``config.json`` + ``checkpoint/`` without optimizers, both atomic) that
    every command taking a pre-training run accepts; returns ``Path(folder)``."""
    folder = Path(folder)
    save_checkpoint(folder / CKPT, {"mfwm": model}, {}, step, run_cfg)
    write_json(folder / "config.json", run_cfg)
    return folder


def save_snapshot(out: str | Path, model: MFWM, step: int, run_cfg: dict) -> Path:
    """Write a weights-only snapshot (a loadable run folder: ``config.json`` + ``checkpoint/``) of ``model``."""
    return write_weights_run(snapshot_dir(out, step), model, step, run_cfg)


def build_model(run_config: dict) -> MFWM:
    """An MFWM from a run's ``config.json`` (as written by :func:`pretrain`)."""
    return MFWM(from_dict(run_config["world_model"]), run_config["action_dim"], run_config["embed_dim"],
                run_config["n_frames"], run_config.get("aligner_noise", 0.5))


def load_pretrained(run_dir: str | Path) -> tuple[MFWM, dict]:
    """Load the latest checkpoint of a pre-training run (eval mode) and its config (plus ``"step"``: updates done).

    Args:
        run_dir: a run folder, or the name of a shipped model (:mod:`genrl.mfwm.shipped`; float16 weights are
            loaded into the float32 model).

    Raises:
        FileNotFoundError: no such folder or shipped model, or no checkpoint in it. CheckpointError:
            corrupt/mismatching files.
    """
    from genrl.mfwm.shipped import resolve_run

    run_dir = resolve_run(run_dir)
    ckpt = run_dir / CKPT
    if not has_checkpoint(ckpt):
        raise FileNotFoundError(f"no checkpoint in {ckpt} (train one with `genrl pretrain`)")
    cfg = json.loads((Path(run_dir) / "config.json").read_text())
    model = build_model(cfg)
    state = load_checkpoint(ckpt, {"mfwm": model}, {}, restore_global_rng=False)  # weights only
    model.eval()
    return model, {**cfg, "step": int(state["step"])}


def tile(rows: list[np.ndarray]) -> np.ndarray:
    """Rows of ``[T, H, W, 3]`` frames (same T) -> one image ``[R*H, T*W, 3]``."""
    return np.concatenate([np.concatenate(list(r), axis=1) for r in rows], axis=0)


@torch.no_grad()
def make_report(model: MFWM, batch: dict[str, torch.Tensor], n: int = 4, horizon: int = 16,
                context: int = 5) -> tuple[np.ndarray, dict[str, float]]:
    """Report picture and numbers on ``n`` sequences of ``batch``.

    Per sequence, 4 rows over ``horizon`` steps: ground truth (from step ``context``), reconstruction,
    open-loop prediction (``context`` observed steps, then the real actions), connector rollout (mode) from the
    embedding of the clip ending at the row's last frame (the connector has no image context).

    Returns:
        ``(image uint8 [4n*H, horizon*W, 3], {"recon_mse", "openloop_mse", "repeat_last_mse", "connector_mse"})``,
        MSEs per pixel in [0, 1] units.
    """
    model.eval()
    sub = {k: v[:n] for k, v in batch.items()}
    horizon = min(horizon, sub["observation"].shape[1] - context)
    ol = model.wm.open_loop(sub, context=context, horizon=horizon)
    truth, recon, pred = ol["truth"].cpu(), ol["recon"].cpu(), ol["pred"].cpu()  # uint8 [n, horizon, H, W, 3]
    emb = sub["embedding"].to(model.wm.device).float()
    last = context + horizon - 1
    conn = model.connector.rollout(emb[:, last][:, None].expand(-1, horizon, -1), sample=False)
    conn_img = model.decode_states(conn).cpu().numpy()
    f = lambda x: np.asarray(x, np.float32) / 255.0  # noqa: E731
    t = f(truth)
    # open-loop baseline: repeat the last observed (context) frame, uint8 [n, 1, 3, H, W] -> [n, 1, H, W, 3]
    ctx_frame = sub["observation"][:, context - 1:context].permute(0, 1, 3, 4, 2).numpy()
    repeat = np.repeat(f(ctx_frame), horizon, axis=1)
    numbers = {"recon_mse": float(((f(recon) - t) ** 2).mean()), "openloop_mse": float(((f(pred) - t) ** 2).mean()),
               "repeat_last_mse": float(((repeat - t) ** 2).mean()),
               "connector_mse": float(((f(conn_img) - t) ** 2).mean())}
    rows = []
    for i in range(len(truth)):
        rows += [np.asarray(truth[i]), np.asarray(recon[i]), np.asarray(pred[i]), conn_img[i]]
    model.train()
    return tile(rows), numbers


def _run_config(cfg: PretrainConfig, ds: Dataset, embed_dim: int) -> dict:
    wm_cfg = world_model_config(cfg)
    return {"domain": ds.domain, "action_dim": ds.action_dim, "embedder_id": cfg.embedder_id,
            "embed_dim": embed_dim, "n_frames": cfg.n_frames, "aligner_noise": cfg.aligner_noise,
            "world_model": to_dict(wm_cfg), "pretrain": asdict(cfg)}


# run-config keys that fix the model's shape and inputs: a resumed run or an --init model must agree on them
MODEL_KEYS = ("domain", "action_dim", "embedder_id", "embed_dim", "world_model")
# an --init model may come from another embodiment with the same shapes (a warm start, e.g. cheetah from walker);
# only the action size may differ (e.g. stickman's 10 actions from walker's 6): see _load_init
INIT_KEYS = ("world_model",)  # what --init must share with the new run (see _load_init)
# world-model fields that set how the weights are trained, not their shapes: an --init model may differ on them
# (e.g. continuing a model at a lower learning rate or with a larger batch); the changes are printed
INIT_FREE_FIELDS = ("lr", "eps", "grad_clip", "weight_decay", "batch_size", "batch_length", "precision",
                    "kl_free", "kl_balance", "kl_scale")


def _load_init(init: str, model: MFWM, run_cfg: dict) -> int:
    """Load the weights of run/shipped model ``init`` into ``model``; returns its update count.

    ``init`` may be another domain's model (a cross-embodiment warm start) when the world-model config agrees
    (``INIT_KEYS``); the domain change is printed. When the action size differs (e.g. stickman, 10 actions,
    from walker, 6), every tensor whose shape matches is copied and the few that take the action as input (the
    RSSM's action-input layer) keep their fresh initialization; their names are printed. When the VLM differs
    (``embedder_id``, e.g. a re-trained MiniVLM), only the world model is copied: the connector and aligner keep
    their fresh initialization and re-learn the new VLM's embeddings (pair it with ``freeze_world_model``).
    The training fields of the world-model config (``INIT_FREE_FIELDS``: learning rate, batch shape, precision,
    KL settings) may differ: the new run trains with its own (printed).

    Raises:
        DatasetError: the ``init`` model has another world-model shape config.
    """
    from genrl.mfwm.shipped import resolve_run

    folder = resolve_run(init)
    init_cfg = json.loads((folder / "config.json").read_text())
    old_wm, new_wm = dict(init_cfg.get("world_model") or {}), dict(run_cfg["world_model"])
    changed = [f"{k} {old_wm[k]} -> {new_wm[k]}" for k in INIT_FREE_FIELDS
               if k in old_wm and k in new_wm and old_wm[k] != new_wm[k]]
    for k in INIT_FREE_FIELDS:
        old_wm.pop(k, None)
        new_wm.pop(k, None)
    diffs = config_differences({**init_cfg, "world_model": old_wm}, {**run_cfg, "world_model": new_wm}, INIT_KEYS)
    if diffs:
        raise DatasetError(f"--init {init}: that model has {', '.join(diffs)}")
    if changed:
        print(f"--init {init}: training settings changed: {', '.join(changed)}")
    if init_cfg.get("domain") != run_cfg["domain"]:
        print(f"--init {init}: warm start from the {init_cfg.get('domain')} model on {run_cfg['domain']} data")
    same_vlm = all(init_cfg.get(k) == run_cfg[k] for k in ("embedder_id", "embed_dim"))
    if init_cfg.get("action_dim") == run_cfg["action_dim"] and same_vlm:
        state = load_checkpoint(folder / CKPT, {"mfwm": model}, {}, restore_global_rng=False)
        return int(state["step"])
    source = build_model({**run_cfg, "action_dim": init_cfg["action_dim"], "embed_dim": init_cfg["embed_dim"]})
    state = load_checkpoint(folder / CKPT, {"mfwm": source}, {}, restore_global_rng=False)
    target, fresh = model.state_dict(), []
    with torch.no_grad():
        for key, value in source.state_dict().items():
            if target[key].shape == value.shape and (same_vlm or key.startswith("wm.")):
                target[key].copy_(value)
            elif key.startswith("wm."):
                fresh.append(key)
    if init_cfg.get("action_dim") != run_cfg["action_dim"]:
        print(f"--init {init}: action size {init_cfg['action_dim']} -> {run_cfg['action_dim']}; freshly "
              f"initialized: {', '.join(fresh)}")
    if not same_vlm:
        print(f"--init {init}: VLM {init_cfg.get('embedder_id')!r} -> {run_cfg['embedder_id']!r}; the world model "
              "is copied, the connector and aligner start fresh")
    return int(state["step"])


def rank_batch_size(batch_size: int, world_size: int) -> int:
    """Sequences per process when ``world_size`` processes share a batch of ``batch_size``.

    Raises:
        ValueError: ``batch_size`` is not a multiple of ``world_size``.
    """
    if batch_size % world_size:
        raise ValueError(f"batch_size={batch_size} does not split over {world_size} processes; use a multiple of "
                         f"{world_size} (--set batch_size=...)")
    return batch_size // world_size


def pretrain(cfg: PretrainConfig, progress: bool = True) -> dict:
    """Train (or resume) an MFWM; returns the last logged metrics.

    Several processes: call it in every process of a ``torchrun`` launch (``genrl pretrain --nproc N`` starts
    one). Each rank samples ``batch_size / N`` sequences from its own stream, the gradients are averaged
    (:mod:`genrl.mfwm.parallel`), rank 0 alone writes ``config.json``, checkpoints, metrics, reports and snapshots.
    A checkpoint resumes under any N: the same weights, optimizers and update count; in a multi-process run the
    sampling and latent-noise streams restart from ``(seed, rank, step)`` (:func:`genrl.utils.distributed.rank_seed`),
    one process continues the checkpoint's streams (rank 0's, for a checkpoint of N > 1 processes).

    Raises:
        DatasetError: the dataset lacks embeddings of ``embedder_id`` (run ``genrl embed`` first), all its episodes
            are held out, or the ``init`` model has another shape. ResumeMismatchError (a ``ValueError``): ``out``
            holds a run of another dataset domain / embedder / world model. ValueError: ``nproc < 1``, or
            ``nproc > 1`` outside torchrun, or ``batch_size`` not a multiple of the process count.
            FloatingPointError: non-finite loss on any process (last checkpoint kept).
    """
    if cfg.nproc < 1:
        raise ValueError(f"nproc must be >= 1, got {cfg.nproc}")
    if cfg.nproc > 1 and not launched():
        raise ValueError(f"nproc={cfg.nproc}: pretrain() trains in the calling process only; start the processes "
                         f"with `genrl pretrain ... --nproc {cfg.nproc}` or torchrun")
    dp = env_info()
    device = device_for_rank(resolve_device(cfg.device), dp)
    with process_group(device):
        return _pretrain(cfg, progress, dp, device)


def _pretrain(cfg: PretrainConfig, progress: bool, dp: DistInfo, device: torch.device) -> dict:
    if dp.distributed:
        cfg = replace(cfg, nproc=dp.world_size)  # config.json records the processes this run segment used
    rt = Runtime(cfg.out, threads=cfg.threads, checkpoint=CKPT, writer=dp.is_main)
    out = rt.out
    ds = Dataset(cfg.dataset)
    embed_dim = ds.embedding_dim(cfg.embedder_id)
    done, total = ds.embedding_coverage(cfg.embedder_id)
    if embed_dim is None or done < total:
        raise DatasetError(f"{ds.root}: {done}/{total} episodes have embeddings of {cfg.embedder_id!r}; run "
                           f"`genrl embed {ds.root} --vlm ...` first (stored ids: {ds.embeddings_ids()})")
    run_cfg = _run_config(cfg, ds, embed_dim)
    rt.check_resume(run_cfg, MODEL_KEYS)
    barrier()  # every rank has read the stored config.json before rank 0 replaces it
    rt.write_config(run_cfg)
    rt.seed(cfg.seed)
    wm_cfg = from_dict(run_cfg["world_model"])
    batch_size = rank_batch_size(wm_cfg.batch_size, dp.world_size)
    model = build_model(run_cfg).to(device)
    opts = model.optimizers()
    if cfg.compile:
        model.wm.compile_convnets()
    train, heldout = split_names(ds.names(), cfg.holdout)
    if not train:
        raise DatasetError(f"{ds.root}: all {len(heldout)} episodes are held out (holdout={cfg.holdout})")
    memmap = None  # one copy per rank (each rank writes its own arrays)
    if cfg.memmap:
        memmap = out / "memmap" / f"rank{dp.rank}" if dp.distributed else out / "memmap"
    sampler = SequenceSampler.from_dataset(ds, batch_size, wm_cfg.batch_length, seed=cfg.seed,
                                           embedder_id=cfg.embedder_id, names=train, memmap_dir=memmap)
    step = 0
    if rt.has_checkpoint():
        state = load_checkpoint(rt.ckpt, {"mfwm": model}, opts, rng=None if dp.distributed else sampler.rng,
                                restore_global_rng=not dp.distributed)
        step = int(state["step"])
    elif cfg.init is not None:
        step = _load_init(cfg.init, model, run_cfg)
    report_batches = sampler
    update = partial(model.train_step, freeze_world_model=True) if cfg.freeze_world_model else model.train_step
    if dp.distributed:
        sampler = sampler.view(seed=rank_seed(cfg.seed, dp.rank, step))
        torch.manual_seed(rank_seed(cfg.seed, dp.rank, step))
        report_batches = sampler.view(batch_size=wm_cfg.batch_size, seed=rank_seed(cfg.seed, dp.rank, step, 1))
        if cfg.freeze_world_model:
            raise ValueError("freeze_world_model trains in one process; leave --nproc out")
        update = DataParallelMFWM(model, device).train_step  # broadcasts rank 0's weights

    def report(at: int) -> None:
        image, numbers = make_report(model, report_batches.sample())
        rt.logger.log(at, numbers, prefix="report")
        rt.logger.log_image(at, "report", image)
        with atomic_path(out / "reports" / f"step_{at:07d}.png") as tmp:
            import imageio.v3 as iio
            iio.imwrite(tmp, image, extension=".png")

    def save(at: int) -> None:
        save_checkpoint(rt.ckpt, {"mfwm": model}, opts, at, run_cfg, rng=sampler.rng)

    def postfix(last: dict) -> dict:
        shown = {"conn": f"{last.get('connector_kl', 0):.2f}"}
        if "image_mse" in last:  # not with a frozen world model
            shown.update(img=f"{last['image_mse']:.4f}", kl=f"{last.get('model_kl', 0):.2f}")
        return shown

    model.train()
    loop = LoopConfig(steps=cfg.steps, log_every=cfg.log_every, save_every=cfg.save_every, what="pretrain",
                      desc="pretrain" if not dp.distributed else f"pretrain x{dp.world_size}", progress=progress)
    return rt.run(loop, lambda at, batch: update(batch, opts), data=lambda at: sampler.sample(),
                  save=save, start=step, postfix=postfix,
                  before_save=[Hook(report, every=cfg.report_every),
                               Hook(lambda at: save_snapshot(out, model, at, run_cfg), at=tuple(cfg.snapshot_at),
                                    final=None)])
