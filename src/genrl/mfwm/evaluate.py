"""Held-out evaluation of a pre-trained MFWM: ``genrl pretrain-eval RUN`` (issue "MFWM" quality checks).

Everything is measured on the episodes the run never trained on (``PretrainConfig.holdout``,
:func:`genrl.data.split.is_heldout`):

* world model: reconstruction MSE, 16-step open-loop MSE and the repeat-the-last-frame baseline (per pixel, [0, 1]
  units; :func:`genrl.mfwm.pretrain.make_report`);
* connector: MSE of the decoded rollout from the real clip embedding against the clip, with and without the aligner
  in front (the choice for video prompts; paper section 5, official ``VideoSSM.video_imagine``);
* aligner: ``cos(aligner(noisy e_v), e_v)`` on held-out vision embeddings (official ``VideoSSM.update``'s aligner loss),
  next to the
  ``cos(noisy e_v, e_v)`` it starts from;
* prompts: each text prompt is decoded (text -> aligner -> connector mode -> decoder) and every decoded frame is
  matched to its nearest held-out dataset frame (pixel MSE); the matched frames' physics descriptors (e.g. the
  walker's ``torso_height``, ``torso_upright``, ``com_vx``) say which posture the model drew. The VLM also scores
  each decoded clip against every prompt (a confusion matrix whose diagonal should win);
* video prompts (optional): decoded with and without the aligner, scored by the VLM against the video itself.

Outputs (``OUT`` = ``RUN/eval`` by default): ``heldout.json``, ``heldout.png`` (truth / reconstruction / open loop /
connector rows), ``prompts.png`` (one row per prompt, with its nearest dataset frames below) and
``video_prompts.png``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from genrl.data.dataset import Dataset, DatasetError
from genrl.data.sampler import SequenceSampler
from genrl.data.split import split_names
from genrl.mfwm.aligner import lafite_noise
from genrl.mfwm.decode import matching_embedder, prompt_embedding
from genrl.mfwm.model import MFWM
from genrl.mfwm.pretrain import load_pretrained, make_report, tile
from genrl.mfwm.shipped import is_shipped_name
from genrl.utils.io import atomic_path, write_json
from genrl.vlm.base import Embedder

DEFAULT_PROMPTS = ("standing upright", "lying on the back", "walking")


def _f(x) -> np.ndarray:
    return np.asarray(x, np.float32) / 255.0


@torch.no_grad()
def heldout_metrics(model: MFWM, sampler: SequenceSampler, batches: int = 4, context: int = 5,
                    horizon: int = 16) -> tuple[dict[str, float], np.ndarray]:
    """World-model and connector MSEs averaged over ``batches`` held-out batches, and the first batch's picture.

    Returns:
        ``({"recon_mse", "openloop_mse", "repeat_last_mse", "connector_mse", "connector_aligner_mse"}, image)``;
        MSEs per pixel in [0, 1] units, image uint8 ``[4n*64, horizon*64, 3]`` (see ``make_report``).
    """
    sums: dict[str, float] = {}
    image = None
    for i in range(batches):
        batch = sampler.sample()
        n = batch["observation"].shape[0]
        img, numbers = make_report(model, batch, n=n, horizon=horizon, context=context)
        image = img if image is None else image
        # the same connector rollout with the aligner in front (what the official code does to video prompts)
        emb = batch["embedding"].float()[:, context + horizon - 1]
        states = model.imagine_prompt(emb, horizon, use_aligner=True)
        truth = batch["observation"][:, context:context + horizon].permute(0, 1, 3, 4, 2).numpy()
        numbers["connector_aligner_mse"] = float(((_f(model.decode_states(states)) - _f(truth)) ** 2).mean())
        for k, v in numbers.items():
            sums[k] = sums.get(k, 0.0) + v / batches
    return sums, image


@torch.no_grad()
def aligner_metrics(model: MFWM, embeddings: torch.Tensor, seed: int = 0) -> dict[str, float]:
    """Aligner quality on unit vision embeddings ``[N, D]`` at the model's training noise level.

    Returns:
        ``{"aligner_cos_noisy": cos(aligner(noisy e), e), "noisy_cos": cos(noisy e, e),
        "aligner_cos_clean": cos(aligner(e), e)}`` (means).
    """
    e = F.normalize(embeddings.float(), dim=-1)
    noisy = lafite_noise(e, model.aligner_noise, torch.Generator().manual_seed(seed))
    cos = lambda a: float((a * e).sum(-1).mean())  # noqa: E731
    return {"aligner_cos_noisy": cos(model.aligner(noisy)), "noisy_cos": cos(noisy),
            "aligner_cos_clean": cos(model.aligner(e))}


class FrameBank:
    """Random frames of some episodes with their physics descriptors, for nearest-neighbour posture lookup.

    Args:
        ds: dataset. names: episodes to draw from. n: frames kept. seed: RNG seed.

    Attributes:
        frames: uint8 ``[n, 64, 64, 3]``. physics: float32 ``[n, P]``. physics_names: ``P`` names (empty if the
        episodes carry no ``physics``).
    """

    def __init__(self, ds: Dataset, names: Sequence[str], n: int = 3000, seed: int = 0):
        rng = np.random.default_rng(seed)
        per_ep = max(1, n // max(1, len(names)))
        frames, physics, self.physics_names = [], [], []
        for name in names:
            ep = ds.load(name, {"observation", "physics", "physics_names"})
            idx = rng.choice(len(ep["observation"]), size=min(per_ep, len(ep["observation"])), replace=False)
            frames.append(ep["observation"][idx].transpose(0, 2, 3, 1))
            if "physics" in ep:
                physics.append(ep["physics"][idx])
                self.physics_names = [str(s) for s in ep["physics_names"]]
        self.frames = np.concatenate(frames)
        self.physics = np.concatenate(physics).astype(np.float32) if physics else np.zeros((len(self.frames), 0))
        self._flat = torch.from_numpy(_f(self.frames).reshape(len(self.frames), -1))

    def nearest(self, images: np.ndarray) -> np.ndarray:
        """Indices into the bank of the nearest frame (pixel MSE) of each of ``images`` uint8 ``[M, 64, 64, 3]``."""
        q = torch.from_numpy(_f(images).reshape(len(images), -1))
        d = (q ** 2).sum(1, keepdim=True) - 2 * q @ self._flat.T + (self._flat ** 2).sum(1)[None]
        return d.argmin(dim=1).numpy()


def _clip_embedding(embedder: Embedder, frames: np.ndarray) -> torch.Tensor:
    """VLM embedding of decoded frames ``[T, 64, 64, 3]``: mean of the non-overlapping k-frame clips, unit norm."""
    k = embedder.n_frames
    clips = [frames[s:s + k] for s in range(0, len(frames) - k + 1, k)] or [frames[-k:]]
    return F.normalize(embedder.embed_video(np.stack(clips)).float().mean(0), dim=-1)


@torch.no_grad()
def prompt_metrics(model: MFWM, embedder: Embedder, prompts: Sequence[str], bank: FrameBank, horizon: int = 16,
                   samples: int = 4) -> tuple[dict, np.ndarray]:
    """Decode text prompts and read their postures off the nearest dataset frames.

    Returns:
        ``(report, image)``: ``report["prompts"][p]`` = mean physics descriptors of the nearest frames of the
        decoded rollouts of ``p``; ``report["vlm_confusion"][p][q]`` = cos(VLM(decoded clip of p), VLM(text q));
        image uint8: per prompt a row of decoded frames (first sample) above their nearest dataset frames.
    """
    out: dict = {"prompts": {}, "vlm_confusion": {}}
    texts = F.normalize(embedder.embed_text(list(prompts)).float(), dim=-1)
    rows = []
    for p in prompts:
        emb, _ = prompt_embedding(embedder, prompt=p)
        states = model.imagine_prompt(emb.expand(samples, -1), horizon, use_aligner=True)
        frames = model.decode_states(states).cpu().numpy()  # [samples, horizon, 64, 64, 3]
        idx = bank.nearest(frames.reshape(-1, *frames.shape[2:]))
        out["prompts"][p] = {n: float(bank.physics[idx, j].mean()) for j, n in enumerate(bank.physics_names)}
        clip_emb = torch.stack([_clip_embedding(embedder, f) for f in frames]).mean(0)
        out["vlm_confusion"][p] = {q: float(F.normalize(clip_emb, dim=-1) @ texts[j]) for j, q in enumerate(prompts)}
        rows += [frames[0], bank.frames[idx[:horizon]]]
    return out, tile(rows)


@torch.no_grad()
def video_prompt_metrics(model: MFWM, embedder: Embedder, videos: Sequence[str | Path], horizon: int = 16,
                         samples: int = 4) -> tuple[dict, np.ndarray | None]:
    """Decode video prompts with and without the aligner; score each by ``cos(VLM(decoded), VLM(video))``.

    Returns:
        ``({video name: {"no_aligner": cos, "aligner": cos}}, image or None)``; the image has two rows per video
        (without, with the aligner).
    """
    report, rows = {}, []
    for video in videos:
        emb, _ = prompt_embedding(embedder, video=video)
        target = F.normalize(emb.float()[0], dim=-1)
        scores = {}
        for key, use in (("no_aligner", False), ("aligner", True)):
            states = model.imagine_prompt(emb.expand(samples, -1), horizon, use_aligner=use)
            frames = model.decode_states(states).cpu().numpy()
            clip_emb = F.normalize(torch.stack([_clip_embedding(embedder, f) for f in frames]).mean(0), dim=-1)
            scores[key] = float(clip_emb @ target)
            rows.append(frames[0])
        report[Path(video).name] = scores
    return report, (tile(rows) if rows else None)


def _write_png(path: Path, image: np.ndarray) -> None:
    import imageio.v3 as iio

    with atomic_path(path) as tmp:
        iio.imwrite(tmp, image, extension=".png")


def evaluate_pretrained(run_dir: str | Path, embedder: Embedder, out: str | Path | None = None,
                        prompts: Sequence[str] = DEFAULT_PROMPTS, videos: Sequence[str | Path] = (),
                        batches: int = 4, batch_size: int = 16, dataset: str | Path | None = None,
                        seed: int = 0) -> dict:
    """All held-out metrics of a pre-training run (see the module docstring); writes JSON and pictures to ``out``
    (default ``RUN/eval``, or ``runs/eval_<name>`` for a shipped model).

    Raises:
        FileNotFoundError: no checkpoint in ``run_dir``. ValueError: ``embedder`` is not the run's VLM.
        DatasetError: the run kept no held-out episodes (``--holdout 0``) or they lack stored embeddings.
    """
    model, cfg = load_pretrained(run_dir)
    embedder = matching_embedder(cfg, embedder)
    ds = Dataset(dataset or cfg["pretrain"]["dataset"])
    _, heldout = split_names(ds.names(), cfg["pretrain"].get("holdout", 0.0))
    if not heldout:
        raise DatasetError(f"{run_dir} was trained on every episode of {ds.root} (holdout 0): no held-out data")
    if out is None:  # a shipped model's folder is part of the package: write beside the current folder instead
        out = Path("runs") / f"eval_{run_dir}" if is_shipped_name(run_dir) else Path(run_dir) / "eval"
    out = Path(out)
    torch.manual_seed(seed)
    sampler = SequenceSampler.from_dataset(ds, batch_size, 21, seed=seed, embedder_id=cfg["embedder_id"],
                                           names=heldout)
    report: dict = {"run": str(run_dir), "step": cfg["step"], "heldout_episodes": heldout}
    report["world_model"], image = heldout_metrics(model, sampler, batches=batches)
    _write_png(out / "heldout.png", image)
    emb = torch.cat([torch.from_numpy(ds.load_embedding(cfg["embedder_id"], n).astype(np.float32)) for n in heldout])
    report["aligner"] = aligner_metrics(model, emb, seed)
    bank = FrameBank(ds, heldout, seed=seed)
    report["prompt_postures"], image = prompt_metrics(model, embedder, prompts, bank)
    _write_png(out / "prompts.png", image)
    if videos:
        report["video_prompts"], image = video_prompt_metrics(model, embedder, videos)
        _write_png(out / "video_prompts.png", image)
    write_json(out / "heldout.json", report)
    return report


__all__ = ["DEFAULT_PROMPTS", "FrameBank", "aligner_metrics", "evaluate_pretrained", "heldout_metrics",
           "prompt_metrics", "video_prompt_metrics"]
