"""VLM rewards for the model-free baselines (paper section 4.1; Rocamonde et al. 2023; Fan et al. 2022).

Both baseline reward kinds are the cosine similarity between the prompt's text embedding and a visual embedding of
the step, from the *raw* VLM embeddings (the baselines have no connector and no aligner):

* ``"image"`` (image-language reward, Rocamonde et al. 2023; the paper used SigLIP-B): the embedding of the
  current frame alone (``k = 1``). With an image-language VLM (CLIP/SigLIP, ``n_frames == 1``) that is the frame
  itself; with a video VLM (``n_frames = k > 1``, e.g. the default MiniVLM) it is the embedding of a *static clip*,
  the frame repeated ``k`` times (the video VLM only accepts ``k``-frame clips; a static clip is a still image to
  it — the MiniVLM, whose video tower also reads frame differences, sees "no motion").
* ``"video"`` (video-language reward, Fan et al. 2022; the paper used InternVideo2): the embedding of the clip of
  the last ``k`` frames ending at the step, exactly the per-step embeddings stored by ``genrl embed``
  (:mod:`genrl.vlm.embed`; the first ``k - 1`` steps use clips edge-padded with frame 0).

Embeddings are computed once per dataset and VLM and cached in the dataset (``DIR/embeddings/<id>/``): the video
ones by ``genrl embed`` under ``embedder.id``, the image ones by :func:`ensure_image_embeddings` under
:func:`image_embedder_id` (``embedder.id`` when ``k == 1``, else ``f"{embedder.id}-image"``). Rewards for any
prompt are then a dot product away (:func:`label_rewards`), shared by every algorithm and seed.

Reward indexing: ``rewards[name][t]`` is the reward of *arriving* at entry ``t`` of the episode (the cosine of the
embedding of step ``t``); the transition ``(obs t, action t+1, obs t+1)`` of :mod:`genrl.baselines.replay` gets
``rewards[name][t + 1]``.
"""

from __future__ import annotations

import time
from typing import Mapping, Sequence

import numpy as np
from tqdm import tqdm

from genrl.data.dataset import Dataset, DatasetError
from genrl.vlm.base import Embedder

IMAGE = "image"
VIDEO = "video"
KINDS = (IMAGE, VIDEO)


def check_kind(kind: str) -> str:
    """Validate a reward kind (``"image"`` or ``"video"``); returns it. Raises ``ValueError`` otherwise."""
    if kind not in KINDS:
        raise ValueError(f"unknown reward kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    return kind


def image_embedder_id(embedder: Embedder) -> str:
    """Dataset embedding id of the image (``k = 1`` / static-clip) embeddings of ``embedder``.

    ``embedder.id`` for an image VLM (``n_frames == 1``: its clip embedding *is* the image embedding, so e.g.
    SigLIP embeddings stored by ``genrl embed`` are reused), else ``f"{embedder.id}-image"``.
    """
    return embedder.id if embedder.n_frames == 1 else f"{embedder.id}-image"


def reward_embedder_id(embedder: Embedder, kind: str) -> str:
    """Dataset embedding id the reward ``kind`` reads: :func:`image_embedder_id` or ``embedder.id`` (video)."""
    return image_embedder_id(embedder) if check_kind(kind) == IMAGE else embedder.id


def static_clips(frames: np.ndarray, k: int) -> np.ndarray:
    """uint8 ``[N, H, W, 3]`` frames -> uint8 ``[N, k, H, W, 3]`` clips, each frame repeated ``k`` times."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [N, H, W, 3], got {frames.dtype} {list(frames.shape)}")
    return np.repeat(frames[:, None], int(k), axis=1)


def embed_images(frames: np.ndarray, embedder: Embedder, chunk: int = 256) -> np.ndarray:
    """Image embeddings of single frames (see the module docstring for video VLMs).

    Args:
        frames: uint8 ``[N, H, W, 3]`` RGB frames.
        embedder: any :class:`~genrl.vlm.base.Embedder`; each frame is given as a static clip of its ``n_frames``.
        chunk: frames per call to the embedder (bounds memory: ``chunk * k`` frames at a time).

    Returns:
        float32 ``[N, dim]``, L2-normalized.
    """
    out = [embedder.embed_video(static_clips(frames[lo:lo + chunk], embedder.n_frames)).numpy()
           for lo in range(0, len(frames), chunk)]
    return np.concatenate(out).astype(np.float32)


def ensure_image_embeddings(ds: Dataset, embedder: Embedder, chunk: int = 256, progress: bool = True) -> dict:
    """Compute and cache the image embeddings of every episode that lacks them (resumable, atomic per episode).

    Stored under :func:`image_embedder_id` as float16 ``[T, dim]`` (row t = embedding of entry t's frame).

    Returns:
        ``{"embedder": id, "episodes": embedded now, "skipped": already cached, "seconds": wall-clock}``.

    Raises:
        DatasetError / EpisodeError / KeyError: from the dataset (corrupt episode, dimension mismatch).
    """
    emb_id = image_embedder_id(embedder)
    todo = [n for n in ds.names() if not ds.has_embedding(emb_id, n)]
    t0 = time.time()
    total = sum(ds.length(n) for n in todo)
    with tqdm(total=total, unit="frame", desc=f"embed images {emb_id}", disable=not progress or not todo) as bar:
        for name in todo:
            frames = ds.load(name, keys=set())["observation"].transpose(0, 2, 3, 1)
            ds.save_embedding(emb_id, name, embed_images(np.ascontiguousarray(frames), embedder, chunk))
            bar.update(len(frames))
    return {"embedder": emb_id, "episodes": len(todo), "skipped": len(ds) - len(todo),
            "seconds": round(time.time() - t0, 1)}


def check_embeddings(ds: Dataset, embedder_id: str, dim: int, kind: str) -> None:
    """Require embeddings of ``embedder_id`` for every episode, of size ``dim``.

    Raises:
        DatasetError: some episodes lack them (the message says to run ``genrl embed``) or their size is not
            ``dim`` (another VLM's embeddings under that id).
    """
    done, total = ds.embedding_coverage(embedder_id)
    if done < total:
        how = ("run `genrl embed " + str(ds.root) + " --vlm NAME` with the same --vlm/--vlm-path first"
               if kind == VIDEO else "image embeddings named with --embeddings must be stored for every episode "
               "(`genrl data import`, `genrl embed`); without --embeddings they are computed automatically")
        raise DatasetError(f"{ds.root}: {done}/{total} episodes have {kind} embeddings {embedder_id!r}; {how} "
                           f"(stored ids: {ds.embeddings_ids()})")
    stored = ds.embedding_dim(embedder_id)
    if stored is not None and stored != dim:
        raise DatasetError(f"{ds.root / 'embeddings' / embedder_id}: embeddings of size {stored}, but the VLM "
                           f"{embedder_id!r} embeds to size {dim}")


def prompt_embedding(embedder: Embedder, prompt: str) -> np.ndarray:
    """float32 ``[dim]`` unit-norm text embedding of ``prompt``. Raises ``PromptError`` (a ``ValueError``)."""
    return embedder.embed_text([prompt])[0].numpy().astype(np.float32)


def label_rewards(ds: Dataset, embedder_id: str, text_emb: np.ndarray,
                  names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Per-step cosine rewards from cached embeddings.

    Args:
        ds: the dataset. embedder_id: embeddings to read (see :func:`reward_embedder_id`).
        text_emb: ``[dim]`` prompt embedding (any norm).
        names: episodes (default: all).

    Returns:
        ``{name: float32 [T]}`` with ``cos(text_emb, emb_t)`` in ``[-1, 1]``; rows stored as zero vectors (the
        official files' padding) get 0.

    Raises:
        DatasetError: missing/corrupt embeddings or a size that differs from ``text_emb``.
    """
    text = np.asarray(text_emb, np.float64).reshape(-1)
    text = text / max(np.linalg.norm(text), 1e-12)
    out = {}
    for name in ds.names() if names is None else names:
        emb = ds.load_embedding(embedder_id, name).astype(np.float64)
        if emb.shape[1] != text.shape[0]:
            raise DatasetError(f"{ds.embedding_path(embedder_id, name)}: embeddings of size {emb.shape[1]}, the "
                               f"prompt embedding has size {text.shape[0]} (another VLM?)")
        norms = np.maximum(np.linalg.norm(emb, axis=1), 1e-12)
        out[name] = ((emb @ text) / norms).astype(np.float32)
    return out


def normalize_rewards(rewards: Mapping[str, np.ndarray], mode: str) -> tuple[dict[str, np.ndarray], dict]:
    """Optionally standardize rewards over all steps of the dataset.

    Args:
        rewards: ``{name: float32 [T]}``.
        mode: ``"none"`` (raw cosines) or ``"standardize"`` (``(r - mean) / std`` over every step; an affine map,
            which leaves the optimal policy of a task without terminal states unchanged and gives the original
            papers' hyper-parameters, e.g. IQL's temperature, the reward scale they were tuned for).

    Returns:
        ``(rewards, {"mode", "mean", "std", "min", "max"})`` — the statistics are those of the raw rewards.

    Raises:
        ValueError: unknown mode.
    """
    if mode not in ("none", "standardize"):
        raise ValueError(f"unknown reward normalization {mode!r}; use 'none' or 'standardize'")
    flat = np.concatenate([np.asarray(r, np.float64) for r in rewards.values()]) if rewards else np.zeros(1)
    stats = {"mode": mode, "mean": float(flat.mean()), "std": float(flat.std()), "min": float(flat.min()),
             "max": float(flat.max())}
    if mode == "none":
        return {k: np.asarray(v, np.float32) for k, v in rewards.items()}, stats
    std = max(stats["std"], 1e-6)
    return {k: ((np.asarray(v, np.float64) - stats["mean"]) / std).astype(np.float32)
            for k, v in rewards.items()}, stats


def vlm_rewards(ds: Dataset, embedder: Embedder, prompt: str, kind: str, progress: bool = True,
                embedding_id: str | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Label every step of ``ds`` with the ``kind`` reward of ``prompt`` (computing image embeddings if needed).

    Args:
        embedding_id: read these stored embeddings instead of :func:`reward_embedder_id` (nothing is computed),
            e.g. ``"siglip-b16-224"``, the official ``clip_img`` SigLIP-B image embeddings imported by
            ``genrl data import``; they must come from the same model as ``embedder``, which embeds the prompt.

    Returns:
        ``({name: float32 [T]} raw cosines, info)`` with info ``{"kind", "prompt", "embedder_id",
        "reward_embedder_id", "dim", "n_frames"}``.

    Raises:
        ValueError: unknown kind; PromptError (a ValueError) for a bad prompt.
        DatasetError: missing video embeddings (run ``genrl embed``) or embeddings of another size.
    """
    emb_id = embedding_id or reward_embedder_id(embedder, kind)
    if kind == IMAGE and embedding_id is None:
        ensure_image_embeddings(ds, embedder, progress=progress)
    check_embeddings(ds, emb_id, embedder.dim, kind)
    rewards = label_rewards(ds, emb_id, prompt_embedding(embedder, prompt))
    return rewards, {"kind": kind, "prompt": prompt, "embedder_id": embedder.id, "reward_embedder_id": emb_id,
                     "dim": int(embedder.dim), "n_frames": int(embedder.n_frames)}


__all__ = ["IMAGE", "VIDEO", "KINDS", "check_kind", "image_embedder_id", "reward_embedder_id", "static_clips",
           "embed_images", "ensure_image_embeddings", "check_embeddings", "prompt_embedding", "label_rewards",
           "normalize_rewards", "vlm_rewards"]
