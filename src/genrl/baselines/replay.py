"""Offline replay of pixel transitions with a frame stack, held in RAM as uint8 (paper appendix D).

Every episode's frames are copied once into one ``uint8 [N, 3, H, W]`` array (100k 64x64 frames = 1.2 GB);
frame stacks are assembled on the fly from indices, so nothing is duplicated.

Transitions follow the episode convention of :mod:`genrl.data.episode` (``action[t]`` is the action that *led to*
entry ``t``; entry 0 holds a zero action and ``is_first``): the transition from entry ``t`` is

    ``(obs = stack(t), action = action[t + 1], reward = reward[t + 1], next_obs = stack(t + 1),
    done = is_terminal[t + 1])``

where ``reward[t + 1]`` is the reward of arriving at entry ``t + 1`` (:mod:`genrl.baselines.rewards`) and
``stack(t)`` is frames ``t - S + 1 .. t`` (oldest first, channels concatenated: ``[3 S, H, W]``). A transition never
crosses an episode boundary: entries where ``is_first`` is set start a new segment, stacks never reach before
their segment's first frame (the missing frames repeat frame 0 of the segment, as the evaluation policy does on
reset), no transition goes from the last entry of a segment into the next one, and none leaves a terminal entry.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from tqdm import tqdm

from genrl.data.dataset import Dataset


class FrameStackReplay:
    """Uniformly sampled transitions with frame stacks (see the module docstring).

    Args:
        observations: per episode uint8 ``[T, 3, H, W]`` (the episode ``observation`` layout).
        actions: per episode float32 ``[T, A]``.
        is_first, is_terminal: per episode bool ``[T]``.
        rewards: per episode float32 ``[T]`` (reward of arriving at each entry) or None (all zero until
            :meth:`set_rewards`).
        names: episode names, for :meth:`set_rewards` by name (default ``"0", "1", ...``).
        frame_stack: frames per observation ``S`` (paper: 3).
        seed: seed of the sampling generator :attr:`rng` (checkpointed by the trainer).

    Raises:
        ValueError: inconsistent lengths/shapes, an episode whose first entry is not ``is_first``, or no
            transition at all (every episode shorter than 2 entries).
    """

    def __init__(self, observations: Sequence[np.ndarray], actions: Sequence[np.ndarray],
                 is_first: Sequence[np.ndarray], is_terminal: Sequence[np.ndarray],
                 rewards: Sequence[np.ndarray] | None = None, names: Sequence[str] | None = None,
                 frame_stack: int = 3, seed: int = 0):
        names = [str(i) for i in range(len(observations))] if names is None else list(names)
        if not (len(actions) == len(is_first) == len(is_terminal) == len(names) == len(observations)):
            raise ValueError("observations, actions, is_first, is_terminal and names must have one entry per episode")
        if not observations:
            raise ValueError("no episodes given")
        self._fill(names, [len(o) for o in observations], tuple(observations[0].shape[1:]), actions[0].shape[1],
                   lambda i: (observations[i], actions[i], is_first[i], is_terminal[i]), frame_stack, seed)
        if rewards is not None:
            self.set_rewards(dict(zip(names, rewards)))

    def _fill(self, names: list[str], lengths: list[int], frame_shape: tuple[int, ...], action_dim: int,
              episode: Callable[[int], tuple[np.ndarray, ...]], frame_stack: int, seed: int,
              progress: bool = False) -> None:
        """Allocate the arrays once and copy episode ``i = episode(i)`` (obs, action, is_first, is_terminal) in."""
        if frame_stack < 1:
            raise ValueError(f"frame_stack must be >= 1, got {frame_stack}")
        self.frame_stack = int(frame_stack)
        n = int(sum(lengths))
        self.obs = np.empty((n,) + tuple(frame_shape), np.uint8)
        self.action = np.empty((n, int(action_dim)), np.float32)
        self.first = np.empty(n, bool)
        self.terminal = np.empty(n, bool)
        self.reward = np.zeros(n, np.float32)
        self.offsets: dict[str, tuple[int, int]] = {}
        lo = 0
        for i, name in enumerate(tqdm(names, desc="load episodes", unit="ep", disable=not progress)):
            length = lengths[i]
            obs, act, first, term = episode(i)
            for key, arr, shape in (("actions", act, (length, self.action.shape[1])), ("is_first", first, (length,)),
                                    ("is_terminal", term, (length,)),
                                    ("observations", obs, (length,) + self.obs.shape[1:])):
                if tuple(arr.shape) != shape:
                    raise ValueError(f"episode {name!r}: {key} has shape {list(arr.shape)}, expected {list(shape)}")
            if length and not first[0]:
                raise ValueError(f"episode {name!r}: entry 0 must have is_first=True")
            self.obs[lo:lo + length] = obs
            self.action[lo:lo + length] = act
            self.first[lo:lo + length] = first
            self.terminal[lo:lo + length] = term
            self.offsets[name] = (lo, length)
            lo += length
        # start[i]: first entry of the segment holding entry i (segments begin at is_first)
        self.start = np.maximum.accumulate(np.where(self.first, np.arange(n), 0))
        valid = np.zeros(n, bool)
        valid[:-1] = ~self.first[1:] & ~self.terminal[:-1]
        self.sources = np.flatnonzero(valid)  # transition t -> t + 1 for each of these t
        if len(self.sources) == 0:
            raise ValueError("no transitions: every episode has fewer than 2 entries")
        self.rng = np.random.default_rng(seed)

    @classmethod
    def from_dataset(cls, ds: Dataset, rewards: Mapping[str, np.ndarray] | None = None, frame_stack: int = 3,
                     seed: int = 0, names: Sequence[str] | None = None, progress: bool = False) -> "FrameStackReplay":
        """Load episodes of a :class:`~genrl.data.dataset.Dataset` into RAM (all of them by default), one at a
        time into arrays allocated once from the manifest lengths (peak memory ~ the frames once).

        Raises:
            EpisodeError / KeyError: from the dataset. ValueError: see the class.
        """
        names = ds.names() if names is None else list(names)
        if not names:
            raise ValueError(f"dataset {ds.root} has no episodes")

        def episode(i: int) -> tuple[np.ndarray, ...]:
            ep = ds.load(names[i], keys=set())
            return ep["observation"], ep["action"], ep["is_first"], ep["is_terminal"]

        replay = cls.__new__(cls)
        replay._fill(names, [ds.length(n) for n in names], (3, ds.image_size, ds.image_size), ds.action_dim,
                     episode, frame_stack, seed, progress)
        if rewards is not None:
            replay.set_rewards(rewards)
        return replay

    def __len__(self) -> int:
        """Number of transitions."""
        return len(self.sources)

    @property
    def frames(self) -> int:
        """Number of stored entries (frames)."""
        return len(self.obs)

    @property
    def action_dim(self) -> int:
        return int(self.action.shape[1])

    @property
    def obs_shape(self) -> tuple[int, int, int]:
        """Shape of one stacked observation: ``(3 S, H, W)``."""
        return (self.obs.shape[1] * self.frame_stack,) + tuple(self.obs.shape[2:])

    def set_rewards(self, rewards: Mapping[str, np.ndarray]) -> None:
        """Set the reward of arriving at each entry: ``{name: float32 [T]}`` for every episode.

        Raises:
            KeyError: an episode without rewards. ValueError: wrong length or non-finite values.
        """
        for name, (lo, length) in self.offsets.items():
            if name not in rewards:
                raise KeyError(f"no rewards for episode {name!r}")
            r = np.asarray(rewards[name], np.float32).reshape(-1)
            if len(r) != length:
                raise ValueError(f"episode {name!r}: {len(r)} rewards for {length} entries")
            if not np.all(np.isfinite(r)):
                raise ValueError(f"episode {name!r}: rewards contain NaN/Inf")
            self.reward[lo:lo + length] = r

    def stack_indices(self, entries: np.ndarray) -> np.ndarray:
        """int64 ``[B, S]`` entry indices of the frame stacks ending at ``entries [B]`` (clipped to the segment)."""
        entries = np.asarray(entries, np.int64)
        idx = entries[:, None] + np.arange(-self.frame_stack + 1, 1)[None, :]
        return np.maximum(idx, self.start[entries][:, None])

    def stacked(self, entries: np.ndarray) -> np.ndarray:
        """uint8 ``[B, 3 S, H, W]`` stacked observations ending at ``entries [B]`` (oldest frame first)."""
        frames = self.obs[self.stack_indices(entries)]  # [B, S, 3, H, W]
        return frames.reshape(len(frames), -1, *frames.shape[3:])

    def batch(self, transitions: np.ndarray) -> dict[str, np.ndarray]:
        """Transitions by index (``0 <= i < len(self)``).

        Returns:
            ``{"obs": uint8 [B, 3S, H, W], "action": float32 [B, A], "reward": float32 [B],
            "next_obs": uint8 [B, 3S, H, W], "done": float32 [B]}``.
        """
        src = self.sources[np.asarray(transitions, np.int64)]
        nxt = src + 1
        return {"obs": self.stacked(src), "action": self.action[nxt], "reward": self.reward[nxt],
                "next_obs": self.stacked(nxt), "done": self.terminal[nxt].astype(np.float32)}

    def sample(self, batch_size: int) -> dict[str, np.ndarray]:
        """``batch_size`` transitions drawn uniformly (with replacement) with :attr:`rng`; see :meth:`batch`."""
        return self.batch(self.rng.integers(0, len(self.sources), size=int(batch_size)))


def to_torch(batch: Mapping[str, np.ndarray], device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """numpy batch -> torch tensors on ``device`` (uint8 observations stay uint8; the encoder scales them)."""
    return {k: torch.from_numpy(np.ascontiguousarray(v)).to(device, non_blocking=True) for k, v in batch.items()}


__all__ = ["FrameStackReplay", "to_torch"]
