"""Training sequence sampler: batches of ``B`` windows of ``L`` consecutive steps, as torch tensors.

Sampling follows the official replay (``tools/replay.py`` ``ReplayBuffer.__iter__``): the episode index is uniform over
episodes (not length-weighted) and the start index is uniform in ``[0, T_ep - L]``; episodes shorter than ``L`` are
skipped. A window never spans two episodes.

Storage: every kept key is held in **one contiguous array** ``[N, ...]`` (all kept episodes concatenated, ``N`` =
total steps) plus the episode start offsets, so a batch is a single gather (``np.take`` on precomputed indices)
per key. Everything is loaded eagerly once (a lazily opened ``.npz`` would decompress on every access). With
``memmap_dir`` the concatenated arrays are written once to ``<memmap_dir>/<key>.npy`` and opened with
``np.load(mmap_mode="r")``, for datasets larger than RAM: 1 M frames of ``uint8 [3, 64, 64]`` are 12.3 GB.

Batch (``sample()``), ``B`` = ``batch_size``, ``L`` = ``length``:

=================  ========================  =========  ==================================================
key                shape                     dtype      meaning
=================  ========================  =========  ==================================================
``observation``    ``[B, L, 3, 64, 64]``     uint8      frames; the model converts them to float itself
``action``         ``[B, L, A]``             float32    as stored (action that led to the entry)
``reward``         ``[B, L, 1]``             float32    as stored
``is_first``       ``[B, L]``                bool       True only at index 0 of windows that start at t = 0
``is_terminal``    ``[B, L]``                bool       as stored
``embedding``      ``[B, L, dim]``           as given   optional per-step VLM embeddings
=================  ========================  =========  ==================================================

``is_first`` is computed from the episode offsets, not gathered: it is True at window index 0 iff the window
starts at an episode start, and False elsewhere (a window never contains another episode's start).

Example::

    from genrl.data.sampler import SequenceSampler
    sampler = SequenceSampler(episodes, batch_size=16, length=32, seed=0)   # episodes: list of episode dicts
    batch = sampler.sample()            # dict of torch tensors, batch["observation"]: uint8 [16, 32, 3, 64, 64]
    for batch in sampler:               # endless iterator of batches
        ...
    sampler = SequenceSampler.from_files(sorted(Path("data").glob("**/*.npz")), 16, 32, seed=0,
                                         memmap_dir="/scratch/replay")       # larger than RAM
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch

DEFAULT_KEYS = ("observation", "action", "reward", "is_first", "is_terminal")
EMBEDDING_KEY = "embedding"
WEIGHTINGS = ("episode", "frames")


class SequenceSampler:
    """Uniform windows of ``length`` steps from a fixed set of episodes, ``batch_size`` windows per batch.

    Args:
        episodes: episode dicts (keys and layout of :mod:`genrl.data.episode`; only ``keys`` are read). An iterable
            is consumed once; if it is not a sequence and ``lengths`` is not given it is first turned into a list.
        batch_size: ``B``, windows per batch.
        length: ``L``, steps per window.
        seed: seed of the ``np.random.Generator`` drawing the windows (same seed + same episodes => same batches).
        keys: keys to keep (default ``observation, action, reward, is_first, is_terminal``, plus ``embedding`` when
            ``embeddings`` is given). ``is_first`` is computed from the offsets and needs no stored array.
        embeddings: optional per-episode arrays ``[T_ep, dim]`` (float16/float32), aligned with ``episodes``,
            returned under ``"embedding"``.
        weighting: ``"episode"`` (official: episode uniform over episodes, then start uniform) or ``"frames"``
            (uniform over all valid windows, i.e. episodes weighted by ``T_ep - L + 1``).
        memmap_dir: if given, the concatenated arrays are written there once as ``<key>.npy`` (overwriting) and
            memory-mapped read-only instead of being held in RAM.
        lengths: optional episode lengths, in order, so that a generator of episodes can be consumed once without
            holding every episode in memory (used by :meth:`from_files`).

    Raises:
        ValueError: bad arguments, a missing key, arrays of one episode that disagree in length, trailing shapes or
            dtypes that differ between episodes, or no episode at least ``length`` long.
    """

    def __init__(self, episodes: Iterable[Mapping[str, np.ndarray]], batch_size: int, length: int, seed: int = 0,
                 keys: Sequence[str] | None = None, embeddings: Iterable[np.ndarray] | None = None,
                 weighting: str = "episode", memmap_dir: str | os.PathLike | None = None,
                 lengths: Sequence[int] | None = None):
        if batch_size < 1 or length < 1:
            raise ValueError(f"batch_size and length must be >= 1, got batch_size={batch_size}, length={length}")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        if keys is None:
            keys = DEFAULT_KEYS + ((EMBEDDING_KEY,) if embeddings is not None else ())
        keys = tuple(dict.fromkeys(keys))
        if EMBEDDING_KEY in keys and embeddings is None:
            raise ValueError(f"key {EMBEDDING_KEY!r} requested but no embeddings were given")
        self.batch_size, self.length, self.seed, self.weighting = int(batch_size), int(length), seed, weighting
        self.keys = keys
        self.memmap_dir = Path(memmap_dir) if memmap_dir is not None else None
        self._rng = np.random.default_rng(seed)

        if lengths is None:
            if not isinstance(episodes, Sequence):
                episodes = list(episodes)
            lengths = [_episode_length(ep, i) for i, ep in enumerate(episodes)]
        lengths = np.asarray(lengths, np.int64)
        if lengths.size == 0:
            raise ValueError("no episodes given")
        keep = lengths >= self.length
        if not keep.any():
            raise ValueError(f"no episode is at least length={self.length} steps long (the longest of "
                             f"{lengths.size} episodes has {int(lengths.max())} steps)")
        self.num_skipped = int((~keep).sum())
        self.episode_lengths = lengths[keep]
        self.offsets = np.concatenate([[0], np.cumsum(self.episode_lengths)[:-1]]).astype(np.int64)
        total = int(self.episode_lengths.sum())
        self._stored = tuple(k for k in keys if k != "is_first")
        self._arrays: dict[str, np.ndarray] = {}
        self._fill(episodes, embeddings, lengths, keep, total)

        self._configure(self.batch_size, self.length)

    def _configure(self, batch_size: int, length: int) -> None:
        """Window tables for ``length``: stored episode ``e`` admits starts ``offsets[e] + [0, T_e - L]``."""
        valid = np.flatnonzero(self.episode_lengths >= length)
        if valid.size == 0:
            raise ValueError(f"no episode is at least length={length} steps long (the longest of "
                             f"{self.num_episodes} stored episodes has {int(self.episode_lengths.max())} steps)")
        self.batch_size, self.length = int(batch_size), int(length)
        self._valid = valid
        self._num_starts = self.episode_lengths[valid] - length + 1
        self._cum_starts = np.cumsum(self._num_starts)
        self._window = np.arange(length, dtype=np.int64)

    def view(self, batch_size: int | None = None, length: int | None = None,
             seed: int | None = None) -> "SequenceSampler":
        """Another sampler over the same store (no copy) with its own batch size, length and random stream.

        E.g. ``wm = SequenceSampler(eps, 16, 48); behavior = wm.view(length=32, seed=1)``. A longer ``length`` only
        uses the stored episodes that are long enough (raises ``ValueError`` if none is).
        """
        other = copy.copy(self)
        other._configure(self.batch_size if batch_size is None else batch_size,
                         self.length if length is None else length)
        other.seed = self.seed if seed is None else seed
        other._rng = np.random.default_rng(other.seed)
        return other

    @classmethod
    def from_files(cls, paths: Sequence[str | os.PathLike], batch_size: int, length: int, seed: int = 0,
                   keys: Sequence[str] | None = None, embeddings: Iterable[np.ndarray] | None = None,
                   weighting: str = "episode", memmap_dir: str | os.PathLike | None = None) -> "SequenceSampler":
        """Build from ``.npz`` episode files, each decompressed exactly once and never all held at once.

        Lengths come from the ``observation`` headers (no decompression), so the store is preallocated and each
        file is copied into it as it is read. Other arguments as the constructor.
        """
        from genrl.data.episode import episode_length, load_episode

        paths = list(paths)
        wanted = set(keys if keys is not None else DEFAULT_KEYS) - {EMBEDDING_KEY}
        lengths = [episode_length(p) for p in paths]
        episodes = (load_episode(p, keys=wanted) if n >= length else {} for p, n in zip(paths, lengths))
        return cls(episodes, batch_size, length, seed=seed, keys=keys, embeddings=embeddings, weighting=weighting,
                   memmap_dir=memmap_dir, lengths=lengths)

    @classmethod
    def from_dataset(cls, dataset, batch_size: int, length: int, seed: int = 0, embedder_id: str | None = None,
                     keys: Sequence[str] | None = None, weighting: str = "episode",
                     memmap_dir: str | os.PathLike | None = None, names: Sequence[str] | None = None
                     ) -> "SequenceSampler":
        """Build from a :class:`genrl.data.dataset.Dataset` (every manifest episode, in name order, or ``names``).

        Args:
            dataset: the dataset.
            embedder_id: if given, the per-step embeddings stored under this id are added as ``"embedding"``
                (float16 ``[B, L, dim]``; with explicit ``keys``, list ``"embedding"`` among them; a missing file
                raises ``DatasetError`` naming it).
            names: the episodes to use (e.g. the training split, :func:`genrl.data.split.split_names`); an unknown
                name raises ``KeyError``. Default: all.
            Other arguments as the constructor.
        """
        names = dataset.names() if names is None else list(names)
        unknown = sorted(set(names) - set(dataset.names()))
        if unknown:
            raise KeyError(f"{dataset.root}: episodes not in the manifest: {unknown[:5]}")
        if not names:
            raise ValueError(f"{dataset.root}: no episodes to sample from")
        embeddings = None
        if embedder_id is not None:
            embeddings = (dataset.load_embedding(embedder_id, n) for n in names)
        return cls.from_files([dataset.episode_path(n) for n in names], batch_size, length, seed=seed, keys=keys,
                              embeddings=embeddings, weighting=weighting, memmap_dir=memmap_dir)

    def _fill(self, episodes, embeddings, lengths, keep, total) -> None:
        emb_iter = iter(embeddings) if embeddings is not None else None
        ep_iter = iter(episodes)
        cursor = 0
        for i, n in enumerate(lengths):
            try:
                ep = next(ep_iter)
            except StopIteration:
                raise ValueError(f"{len(lengths)} lengths given but only {i} episodes") from None
            emb = None
            if emb_iter is not None:
                try:
                    emb = next(emb_iter)
                except StopIteration:
                    raise ValueError(f"fewer embeddings than episodes (none for episode {i})") from None
            if not keep[i]:
                continue
            for key in self._stored:
                arr = np.asarray(emb if key == EMBEDDING_KEY else _get(ep, key, i))
                if arr.ndim == 0 or arr.shape[0] != n:
                    raise ValueError(f"episode {i}: {key!r} has {arr.shape[0] if arr.ndim else 0} steps, "
                                     f"expected {n} (length of the episode)")
                if key not in self._arrays:
                    self._arrays[key] = self._allocate(key, (total,) + arr.shape[1:], arr.dtype)
                store = self._arrays[key]
                if arr.shape[1:] != store.shape[1:] or arr.dtype != store.dtype:
                    raise ValueError(f"episode {i}: {key!r} is {arr.dtype} {list(arr.shape[1:])} per step, earlier "
                                     f"episodes have {store.dtype} {list(store.shape[1:])}")
                store[cursor:cursor + n] = arr
            cursor += int(n)
        if emb_iter is not None and next(emb_iter, None) is not None:
            raise ValueError("more embeddings than episodes")
        if self.memmap_dir is not None:
            for key, arr in list(self._arrays.items()):
                arr.flush()
                del arr
                self._arrays[key] = np.load(self.memmap_dir / f"{key}.npy", mmap_mode="r")

    def _allocate(self, key: str, shape: tuple, dtype: np.dtype) -> np.ndarray:
        if self.memmap_dir is None:
            return np.empty(shape, dtype)
        self.memmap_dir.mkdir(parents=True, exist_ok=True)
        return np.lib.format.open_memmap(self.memmap_dir / f"{key}.npy", mode="w+", dtype=dtype, shape=shape)

    # ------------------------------------------------------------------ sampling

    def sample_starts(self) -> tuple[np.ndarray, np.ndarray]:
        """Draw one batch of windows: ``(episode index [B], start within the episode [B])``, both int64.

        Episode indices refer to the stored episodes (input episodes at least the constructor's ``length`` long,
        in input order).
        """
        if self.weighting == "episode":
            slot = self._rng.integers(0, len(self._valid), self.batch_size)
            start = self._rng.integers(0, self._num_starts[slot])
        else:
            window = self._rng.integers(0, int(self._cum_starts[-1]), self.batch_size)
            slot = np.searchsorted(self._cum_starts, window, side="right")
            start = window - (self._cum_starts[slot] - self._num_starts[slot])
        return self._valid[slot].astype(np.int64), start.astype(np.int64)

    def gather(self, episode: np.ndarray, start: np.ndarray) -> dict[str, torch.Tensor]:
        """The batch of the windows ``(episode, start)`` (as returned by :meth:`sample_starts`)."""
        index = (self.offsets[episode] + start)[:, None] + self._window      # [B, L] global step indices
        flat = index.reshape(-1)
        shape = index.shape
        batch = {}
        for key in self.keys:
            if key == "is_first":
                first = np.zeros(shape, bool)
                first[:, 0] = start == 0
                batch[key] = torch.from_numpy(first)
            else:
                arr = self._arrays[key]
                batch[key] = torch.from_numpy(np.take(arr, flat, axis=0).reshape(shape + arr.shape[1:]))
        return batch

    def sample(self) -> dict[str, torch.Tensor]:
        """One batch: dict of CPU tensors ``[B, L, ...]`` (dtypes as stored; see the module docstring)."""
        return self.gather(*self.sample_starts())

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        """Endless batches (continues the sampler's random stream)."""
        while True:
            yield self.sample()

    # ------------------------------------------------------------------ info

    @property
    def rng(self) -> np.random.Generator:
        """The generator drawing the windows (save/restore ``rng.bit_generator.state`` to resume a stream)."""
        return self._rng

    @property
    def num_frames(self) -> int:
        """Steps stored (episodes shorter than ``length`` are not stored)."""
        return int(self.episode_lengths.sum())

    @property
    def num_episodes(self) -> int:
        """Episodes stored (at least ``length`` long)."""
        return len(self.episode_lengths)

    @property
    def nbytes(self) -> int:
        """Bytes of the stored arrays (in RAM, or on disk with ``memmap_dir``)."""
        return int(sum(a.nbytes for a in self._arrays.values()))

    def __repr__(self) -> str:
        where = f"memmap {self.memmap_dir}" if self.memmap_dir is not None else "RAM"
        return (f"SequenceSampler({self.num_episodes} episodes, {self.num_frames} frames, "
                f"{self.nbytes / 2**30:.2f} GiB in {where}, batch {self.batch_size}x{self.length}, "
                f"weighting={self.weighting!r}, skipped {self.num_skipped} short episodes)")


def _get(ep: Mapping[str, np.ndarray], key: str, i: int) -> np.ndarray:
    if key not in ep:
        raise ValueError(f"episode {i}: missing key {key!r} (has {sorted(ep)})")
    return ep[key]


def _episode_length(ep: Mapping[str, np.ndarray], i: int) -> int:
    """Length of an episode dict; every array with a leading axis of per-step data must agree."""
    lengths = {k: len(v) for k, v in ep.items() if not k.endswith("_names") and np.ndim(v) > 0}
    if not lengths:
        raise ValueError(f"episode {i}: no arrays")
    n = lengths.get("observation", next(iter(lengths.values())))
    bad = {k: m for k, m in lengths.items() if m != n}
    if bad:
        raise ValueError(f"episode {i}: arrays disagree in length: observation has {n} steps, {bad}")
    return n
