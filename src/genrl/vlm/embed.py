"""Embedding a dataset with a VLM (``genrl embed DATASET --vlm NAME``; official ``envs/main.py``
``ViClipWrapper.process_episode``).

For every step ``t`` of every episode the stored embedding is that of the ``k``-frame clip *ending* at ``t``
(frames ``t-k+1 .. t``), the convention the connector's training assumes. For the first ``k-1`` steps, where the
clip would start before the episode, the missing frames are copies of frame 0 (a still start), so every step has a
real, normalized embedding; the official code stores zero vectors there instead (official
``ViClipWrapper.process_episode``), which ``genrl data import`` keeps as they are for official files.

Embeddings go to ``DATASET/embeddings/<embedder id>/<episode>.npy`` (float16), one file per episode, written
atomically: re-running the command skips finished episodes (resume), and switching VLM never rewrites episodes.
``genrl embed DATASET --nproc N`` splits the episodes between N processes (:func:`embed_dataset`).
"""

from __future__ import annotations

import time

import numpy as np
from tqdm import tqdm

from genrl.data.dataset import Dataset
from genrl.utils.distributed import barrier, group_info, shard, sum_ints
from genrl.vlm.base import Embedder, sliding_clips


def embed_episode(frames_chw: np.ndarray, embedder: Embedder, chunk: int = 256) -> np.ndarray:
    """Embeddings of every step of one episode.

    Args:
        frames_chw: uint8 ``[T, 3, H, W]`` (episode ``observation``).
        chunk: clips per call to the embedder (bounds memory: ``chunk * k`` frames at a time).

    Returns:
        float32 ``[T, dim]``, row t = embedding of frames ``max(0, t-k+1) .. t`` (edge-padded).
    """
    frames = np.ascontiguousarray(frames_chw.transpose(0, 2, 3, 1))
    T = len(frames)
    out = []
    for lo in range(0, T, chunk):
        clips = sliding_clips(frames, embedder.n_frames, np.arange(lo, min(T, lo + chunk)))
        out.append(embedder.embed_video(clips).numpy())
    return np.concatenate(out).astype(np.float32)


def embed_dataset(dataset: Dataset | str, embedder: Embedder, overwrite: bool = False, chunk: int = 256,
                  progress: bool = True) -> dict:
    """Embed every episode of ``dataset`` that has no embedding under ``embedder.id`` yet.

    Several processes: called in every process of an initialized ``torch.distributed`` group (``genrl embed
    --nproc N``, or torchrun), the episodes to do are listed by every rank before any is written, then split
    (:func:`genrl.utils.distributed.shard`: each in exactly one rank's share); each rank writes its own files
    (atomically: a re-run, under any N, resumes); the ranks advance one episode per round, so that rank 0's single
    progress bar counts the frames of all ranks.

    Args:
        overwrite: re-embed episodes that already have embeddings.

    Returns:
        ``{"embedder": id, "episodes": embedded now, "skipped": already done, "frames": embedded now,
        "seconds": wall-clock, "frames_per_second": ...}`` (episodes and frames: totals over the ranks).

    Raises:
        KeyError / EpisodeError / DatasetError: from the dataset (missing or corrupt episode, shape mismatch).
    """
    ds = dataset if isinstance(dataset, Dataset) else Dataset(dataset)
    dp = group_info()
    todo = [n for n in ds.names() if overwrite or not ds.has_embedding(embedder.id, n)]
    barrier()  # every rank has listed what to do before any file is written
    mine = shard(todo, dp.rank, dp.world_size)
    rounds = len(shard(todo, 0, dp.world_size))  # rank 0 has the largest share
    total = sum(ds.length(n) for n in todo)
    t0 = time.time()
    frames = 0
    with tqdm(total=total, unit="frame", desc=f"embed {embedder.id}", disable=not (progress and dp.is_main)) as bar:
        for i in range(rounds):
            n = 0
            if i < len(mine):
                ep = ds.load(mine[i], keys=set())
                emb = embed_episode(ep["observation"], embedder, chunk)
                ds.save_embedding(embedder.id, mine[i], emb)
                n = len(emb)
            frames += n
            bar.update(sum_ints([n])[0])
    episodes, frames = sum_ints([len(mine), frames])
    seconds = time.time() - t0
    return {"embedder": embedder.id, "episodes": episodes, "skipped": len(ds.names()) - len(todo),
            "frames": frames, "seconds": round(seconds, 1),
            "frames_per_second": round(frames / seconds, 1) if seconds > 0 and frames else None}
