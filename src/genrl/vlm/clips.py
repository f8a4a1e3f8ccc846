"""Captioned k-frame clips from datasets: the training and evaluation data of the MiniVLM.

Episodes are split by name into *train* and *held-out* (a stable hash of the episode name, ~10 % held out), so
evaluation clips come from episodes the model never saw. Each clip is the ``k`` frames ending at step ``t``
(the official ``envs/main.py`` ``ViClipWrapper.process_episode`` convention) with its caption facts from
:mod:`genrl.vlm.captions`, its task rewards (mean over the clip's steps) and a few paraphrased captions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from genrl.data.dataset import Dataset
from genrl.data.split import is_heldout  # noqa: F401  (re-exported: the split rule of the MiniVLM's clips)
from genrl.vlm import captions as cap


@dataclass
class ClipSet:
    """Clips of several domains in flat arrays.

    Attributes:
        frames: uint8 ``[F, H, W, 3]``, all kept episodes' frames concatenated (HWC).
        ends: int64 ``[C]``, index into ``frames`` of each clip's last frame.
        starts: int64 ``[C]``, index into ``frames`` of each clip's episode start (for edge padding).
        domain: int64 ``[C]``, index into ``domains``.
        signature: int64 ``[C]``, id of the clip's fact set (clips with equal ids are positives of each other).
        captions: ``[C]`` lists of caption ids (into ``texts``).
        texts: the unique caption strings.
        rewards: per domain, float32 ``[C_d, K_d]`` task rewards (mean over the clip) with ``task_names[d]``;
            ``reward_rows[c]`` is clip c's row in its domain's table.
    """

    k: int
    domains: list[str]
    frames: np.ndarray
    ends: np.ndarray
    starts: np.ndarray
    domain: np.ndarray
    signature: np.ndarray
    captions: list[list[int]]
    texts: list[str]
    facts: list[tuple[str, ...]]
    rewards: dict[str, np.ndarray] = field(default_factory=dict)
    task_names: dict[str, list[str]] = field(default_factory=dict)
    reward_rows: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ends)

    def clip_frames(self, idx: np.ndarray) -> np.ndarray:
        """uint8 ``[len(idx), k, H, W, 3]`` for clip indices ``idx`` (frames before the episode start = frame 0)."""
        offs = np.arange(-self.k + 1, 1)
        rows = self.ends[idx][:, None] + offs[None]
        rows = np.maximum(rows, self.starts[idx][:, None])
        return self.frames[rows]


def build_clips(dataset_dirs: Sequence[str | Path], k: int = 8, stride: int = 4, split: str = "train",
                paraphrases: int = 4, max_episodes: int | None = None, seed: int = 0,
                heldout_fraction: float = 0.1, progress: bool = True) -> ClipSet:
    """Load ``split`` episodes of each dataset and caption their clips.

    Args:
        dataset_dirs: dataset folders (one domain each; several folders may share a domain).
        k: frames per clip. stride: steps between consecutive clip ends within an episode.
        split: ``"train"`` or ``"heldout"`` (episodes chosen by :func:`is_heldout`); captions use the
            captioner's templates of the same split.
        paraphrases: captions drawn per clip. max_episodes: per dataset, evenly spaced subset (None = all).

    Raises:
        ValueError: bad ``split``, or a dataset whose episodes lack the ``physics`` descriptors.
    """
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    rng = np.random.default_rng(seed)
    domains: list[str] = []
    frames, ends, starts, dom, facts_list, caps = [], [], [], [], [], []
    rewards: dict[str, list[np.ndarray]] = {}
    task_names: dict[str, list[str]] = {}
    reward_rows: list[int] = []
    text_ids: dict[str, int] = {}
    offset = 0
    for d in dataset_dirs:
        ds = Dataset(d)
        names = [n for n in ds.names() if is_heldout(n, heldout_fraction) == (split == "heldout")]
        if max_episodes is not None and len(names) > max_episodes:
            names = [names[i] for i in np.linspace(0, len(names) - 1, max_episodes).round().astype(int)]
        if ds.domain not in domains:
            domains.append(ds.domain)
        di = domains.index(ds.domain)
        for name in tqdm(names, desc=f"clips {Path(d).name} ({split})", disable=not progress, leave=False):
            ep = ds.load(name, keys={"physics", "physics_names", "task_rewards", "task_names"})
            if "physics" not in ep:
                raise ValueError(f"{ds.episode_path(name)}: no 'physics' descriptors; captions need them "
                                 "(collect with `genrl collect`)")
            obs = ep["observation"].transpose(0, 2, 3, 1)
            T = len(obs)
            pnames = [str(x) for x in ep["physics_names"]]
            t_end = np.arange(k - 1, T, stride)
            if "task_rewards" in ep:
                tn = [str(x) for x in ep["task_names"]]
                if task_names.setdefault(ds.domain, tn) != tn:
                    raise ValueError(f"{ds.episode_path(name)}: task_names differ from other {ds.domain} episodes")
                cs = np.cumsum(np.concatenate([np.zeros((1, len(tn)), np.float32), ep["task_rewards"]]), axis=0)
                lo = np.maximum(t_end - k + 1, 0)
                table = rewards.setdefault(ds.domain, [])
                base = sum(len(x) for x in table)
                table.append((cs[t_end + 1] - cs[lo]) / (t_end + 1 - lo)[:, None])
                reward_rows.extend(range(base, base + len(t_end)))
            else:
                reward_rows.extend([-1] * len(t_end))
            for t in t_end:
                keys = cap.fact_keys(ds.domain, cap.clip_physics(ep["physics"], pnames, int(t), k))
                facts_list.append(tuple(sorted(cap.facts_of_keys(keys))))
                ids = []
                for text in cap.captions_for_keys(ds.domain, keys, paraphrases, rng, split=split):
                    ids.append(text_ids.setdefault(text, len(text_ids)))
                caps.append(ids)
            frames.append(obs)
            ends.append(offset + t_end)
            starts.append(np.full(len(t_end), offset))
            dom.append(np.full(len(t_end), di))
            offset += T
    if not ends:
        raise ValueError(f"no {split} episodes found in {list(map(str, dataset_dirs))}")
    sig_ids: dict[tuple, int] = {}
    signature = np.array([sig_ids.setdefault((int(d), f), len(sig_ids))
                          for d, f in zip(np.concatenate(dom), facts_list)], np.int64)
    return ClipSet(k=k, domains=domains, frames=np.concatenate(frames), ends=np.concatenate(ends).astype(np.int64),
                   starts=np.concatenate(starts).astype(np.int64), domain=np.concatenate(dom).astype(np.int64),
                   signature=signature, captions=caps, texts=list(text_ids), facts=facts_list,
                   rewards={d: np.concatenate(v) for d, v in rewards.items()}, task_names=task_names,
                   reward_rows=np.asarray(reward_rows, np.int64))
