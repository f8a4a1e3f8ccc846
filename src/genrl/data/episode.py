"""Episode files: one compressed ``.npz`` per episode, compatible with the official GenRL files (official
``tools/replay.py``).

Keys (``T`` = entries including the reset entry, 501 for a full DMC episode):

==================  ======================  ========  ===============================================
key                 shape                   dtype     meaning
==================  ======================  ========  ===============================================
``observation``     ``[T, 3, 64, 64]``      uint8     CHW RGB frames (official layout)
``action``          ``[T, A]``              float32   action that *led to* entry t (zeros at t = 0)
``reward``          ``[T, 1]``              float32   reward of the collecting task (0 at t = 0)
``discount``        ``[T, 1]``              float32   1 - is_terminal
``is_first``        ``[T]``                 bool      True at t = 0
``is_last``         ``[T]``                 bool      True at the last entry
``is_terminal``     ``[T]``                 bool      always False for DMC
``state``           ``[T, D]``              float32   ours: proprioceptive state (optional on read)
``physics``         ``[T, P]``              float32   ours: ``info["physics"]`` descriptors (optional)
``physics_names``   ``[P]``                 str       ours: names of the ``physics`` columns
``task_rewards``    ``[T, K]``              float32   ours: every task's reward (optional)
``task_names``      ``[K]``                 str       ours: names of the ``task_rewards`` columns
==================  ======================  ========  ===============================================

Official files may carry extra keys (``clip_video`` [T, 512], ``clip_img`` [T, 768]); they are returned as they
are by :func:`load_episode` (:func:`genrl.data.importer.import_episodes` moves ``clip_video`` into the dataset's
embedding store). No pickled objects are
ever loaded (``allow_pickle=False``).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Mapping

import numpy as np

from genrl.utils.io import atomic_path

REQUIRED = {
    "observation": np.uint8, "action": np.float32, "reward": np.float32, "discount": np.float32,
    "is_first": np.bool_, "is_last": np.bool_, "is_terminal": np.bool_,
}
OPTIONAL = {"state": np.float32, "physics": np.float32, "task_rewards": np.float32}


class EpisodeError(ValueError):
    """An episode file is unreadable or does not follow the format; the message names the file and the problem."""


def validate_episode(ep: Mapping[str, np.ndarray], where: str = "episode") -> int:
    """Check keys, dtypes, shapes and lengths of an episode dict. Returns its length ``T``.

    Raises:
        EpisodeError: naming ``where`` (usually the file) and the first problem found.
    """
    missing = sorted(set(REQUIRED) - set(ep))
    if missing:
        raise EpisodeError(f"{where}: missing keys {missing} (has {sorted(ep)})")
    obs = ep["observation"]
    if obs.ndim != 4 or obs.shape[1] != 3 or obs.dtype != np.uint8:
        raise EpisodeError(f"{where}: 'observation' must be uint8 [T, 3, H, W], got {obs.dtype} {list(obs.shape)}")
    length = obs.shape[0]
    if length < 2:
        raise EpisodeError(f"{where}: episode has {length} entries; at least 2 are needed")
    for key, dtype in {**REQUIRED, **OPTIONAL}.items():
        if key not in ep:
            continue
        arr = ep[key]
        if arr.shape[:1] != (length,):
            raise EpisodeError(f"{where}: {key!r} has {arr.shape[0] if arr.ndim else 0} entries, "
                               f"'observation' has {length}")
        if arr.dtype != dtype:
            raise EpisodeError(f"{where}: {key!r} must be {np.dtype(dtype).name}, got {arr.dtype}")
        if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
            raise EpisodeError(f"{where}: {key!r} contains NaN or Inf")
    for key in ("reward", "discount"):
        if ep[key].shape != (length, 1):
            raise EpisodeError(f"{where}: {key!r} must have shape [T, 1] = [{length}, 1], got {list(ep[key].shape)}")
    if ep["action"].ndim != 2:
        raise EpisodeError(f"{where}: 'action' must be [T, A], got {list(ep['action'].shape)}")
    for flag in ("is_first", "is_last", "is_terminal"):
        if ep[flag].shape != (length,):
            raise EpisodeError(f"{where}: {flag!r} must have shape [T] = [{length}], got {list(ep[flag].shape)}")
    if not ep["is_first"][0]:
        raise EpisodeError(f"{where}: 'is_first' must be True at index 0")
    for cols, names in (("physics", "physics_names"), ("task_rewards", "task_names")):
        if cols in ep:
            if names not in ep or ep[cols].ndim != 2 or len(ep[names]) != ep[cols].shape[1]:
                raise EpisodeError(f"{where}: {cols!r} [T, N] needs {names!r} with N names")
    return length


def save_episode(path: str | os.PathLike, episode: Mapping[str, np.ndarray]) -> Path:
    """Validate and write an episode as a compressed ``.npz``, atomically (temp file + rename).

    Raises:
        EpisodeError: the episode does not follow the format (nothing is written).
    """
    path = Path(path)
    validate_episode(episode, str(path))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **{k: np.asarray(v) for k, v in episode.items()})
    return path


def load_episode(path: str | os.PathLike, keys: set[str] | None = None) -> dict[str, np.ndarray]:
    """Read and validate an episode file eagerly (every array decompressed once, into RAM).

    Args:
        path: ``.npz`` file (ours or the official format).
        keys: if given, only these keys (plus the required ones) are loaded.

    Raises:
        EpisodeError: unreadable/corrupt file, pickled content, or a format problem (message names the file).
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            names = data.files if keys is None else [k for k in data.files if k in keys or k in REQUIRED]
            ep = {k: data[k] for k in names}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise EpisodeError(f"{path}: cannot read episode ({type(err).__name__}: {err})") from err
    validate_episode(ep, str(path))
    return ep


def npz_headers(path: str | os.PathLike) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{key: (shape, dtype)}`` of every array of an ``.npz``, read from the headers only (no decompression).

    Raises:
        EpisodeError: unreadable/corrupt file (message names the file).
    """
    path = Path(path)
    out = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for member in zf.namelist():
                if not member.endswith(".npy"):
                    continue
                with zf.open(member) as f:
                    major, _ = np.lib.format.read_magic(f)
                    read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                    shape, _, dtype = read(f)
                out[member[:-4]] = (tuple(int(s) for s in shape), np.dtype(dtype))
    except FileNotFoundError:
        raise EpisodeError(f"{path}: file is missing") from None
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise EpisodeError(f"{path}: cannot read the array headers ({type(err).__name__}: {err})") from err
    return out


def episode_length(path: str | os.PathLike) -> int:
    """Number of entries of an episode file, read from the ``observation`` array header (no decompression).

    Raises:
        EpisodeError: unreadable file or no ``observation`` array (message names the file).
    """
    heads = npz_headers(path)
    if "observation" not in heads:
        raise EpisodeError(f"{path}: no 'observation' array")
    return int(heads["observation"][0][0])


def episode_from_steps(frames: list[np.ndarray], actions: list[np.ndarray], rewards: list[float],
                       states: list[np.ndarray], infos: list[dict], terminal: bool = False) -> dict[str, np.ndarray]:
    """Assemble an episode dict from per-entry lists (entry 0 = reset; its action is zeros, reward 0).

    Args:
        frames: ``T`` images ``uint8 [H, W, 3]`` (HWC, as the environment returns them).
        actions: ``T`` actions ``[A]`` (``actions[0]`` must be the zero action of the reset entry).
        rewards: ``T`` rewards of the collecting task.
        states: ``T`` proprioceptive states ``[D]``.
        infos: ``T`` env info dicts with ``"physics"`` and ``"rewards"`` dicts (same keys every step).
        terminal: whether the last entry is terminal (never for DMC).
    """
    length = len(frames)
    physics_names = sorted(infos[0]["physics"])
    task_names = sorted(infos[0]["rewards"])
    is_last = np.zeros(length, bool)
    is_last[-1] = True
    is_terminal = np.zeros(length, bool)
    is_terminal[-1] = terminal
    return {
        "observation": np.stack(frames).transpose(0, 3, 1, 2).copy(),
        "action": np.asarray(actions, np.float32),
        "reward": np.asarray(rewards, np.float32)[:, None],
        "discount": (1.0 - is_terminal.astype(np.float32))[:, None],
        "is_first": np.arange(length) == 0,
        "is_last": is_last,
        "is_terminal": is_terminal,
        "state": np.asarray(states, np.float32),
        "physics": np.asarray([[i["physics"][k] for k in physics_names] for i in infos], np.float32),
        "physics_names": np.asarray(physics_names),
        "task_rewards": np.asarray([[i["rewards"][k] for k in task_names] for i in infos], np.float32),
        "task_names": np.asarray(task_names),
    }
