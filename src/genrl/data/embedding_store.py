"""VLM embeddings stored beside a dataset's episodes: ``DIR/embeddings/<embedder_id>/<name>.npy`` (float16
``[T, dim]``, one row per episode entry) and ``embedder.json`` (``{"id", "dim", "dtype"}``).

:class:`EmbeddingStore` is the embeddings half of :class:`genrl.data.dataset.Dataset` (a mixin: it relies on the
dataset's ``_root``, ``names()``, ``length(name)`` and ``len()``). Every write is atomic; every read is validated
against the episode length and the embedder's recorded size.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from genrl.data.layout import _SAFE_NAME, EMBEDDER_INFO, EMBEDDINGS, DatasetError, check_name
from genrl.utils.io import atomic_path, write_json


class EmbeddingStore:
    """Embedding methods of :class:`genrl.data.dataset.Dataset`."""

    _root: Path

    def embedding_path(self, embedder_id: str, name: str) -> Path:
        """``DIR/embeddings/<embedder_id>/<name>.npy`` (both validated as plain names)."""
        return (self._root / EMBEDDINGS / check_name(embedder_id, "embedder id")
                / f"{check_name(name, 'episode name')}.npy")

    def embeddings_ids(self) -> list[str]:
        """Embedder ids that have a folder under ``embeddings/``, sorted."""
        base = self._root / EMBEDDINGS
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if p.is_dir() and _SAFE_NAME.match(p.name)
                      and ".." not in p.name)

    def embedding_dim(self, embedder_id: str) -> int | None:
        """Embedding size recorded for ``embedder_id`` (``embedder.json``), or None if none is stored yet."""
        path = self._root / EMBEDDINGS / check_name(embedder_id, "embedder id") / EMBEDDER_INFO
        if not path.is_file():
            return None
        try:
            return int(json.loads(path.read_text())["dim"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DatasetError(f"{path}: cannot read the embedder info ({err})") from err

    def has_embedding(self, embedder_id: str, name: str) -> bool:
        """True if the embeddings of episode ``name`` by ``embedder_id`` are stored."""
        return self.embedding_path(embedder_id, name).is_file()

    def embedding_coverage(self, embedder_id: str) -> tuple[int, int]:
        """``(episodes with embeddings of embedder_id, episodes in the manifest)``."""
        return sum(self.has_embedding(embedder_id, n) for n in self.names()), len(self)

    def save_embedding(self, embedder_id: str, name: str, array: np.ndarray) -> Path:
        """Store ``[T, dim]`` embeddings of episode ``name`` as float16, atomically.

        Raises:
            KeyError: ``name`` is not in the manifest.
            DatasetError: not 2-D, ``T`` differs from the episode length, ``dim`` differs from the embeddings
                already stored for this id, or non-finite values (also after the float16 cast).
        """
        path = self.embedding_path(embedder_id, name)
        self.length(name)  # KeyError for an episode that is not in the manifest
        arr = np.asarray(array)
        if arr.ndim != 2:
            raise DatasetError(f"{path}: embeddings must be [T, dim], got shape {list(arr.shape)}")
        dim = self._check_embedding_shape(path, embedder_id, name, arr)
        arr16 = arr.astype(np.float16)
        if not np.all(np.isfinite(arr16)):
            raise DatasetError(f"{path}: embeddings contain NaN/Inf (or values beyond the float16 range)")
        if dim is None:
            write_json(path.parent / EMBEDDER_INFO, {"id": embedder_id, "dim": int(arr.shape[1]),
                                                     "dtype": "float16"})
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, arr16, allow_pickle=False)
        return path

    def _check_embedding_shape(self, path: Path, embedder_id: str, name: str, arr: np.ndarray) -> int | None:
        """Check ``arr [T, dim]`` against the episode length and the embedder's stored dim; returns that dim."""
        length = self.length(name)
        if arr.shape[0] != length:
            raise DatasetError(f"{path}: {arr.shape[0]} embeddings for episode {name!r} of {length} entries")
        dim = self.embedding_dim(embedder_id)
        if dim is not None and arr.shape[1] != dim:
            raise DatasetError(f"{path}: embeddings of size {arr.shape[1]} but {embedder_id!r} stores size {dim}")
        return dim

    def load_embedding(self, embedder_id: str, name: str) -> np.ndarray:
        """Read the float16 ``[T, dim]`` embeddings of episode ``name`` (validated against the episode length).

        Raises:
            KeyError: ``name`` is not in the manifest.
            DatasetError: missing/corrupt file, wrong dtype/shape, length or dim mismatch (message names the file).
        """
        path = self.embedding_path(embedder_id, name)
        self.length(name)  # KeyError for an episode that is not in the manifest
        if not path.is_file():
            raise DatasetError(f"{path}: no {embedder_id!r} embeddings for episode {name!r} "
                               f"(present: {self.embeddings_ids()})")
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise DatasetError(f"{path}: cannot read embeddings ({type(err).__name__}: {err})") from err
        if arr.dtype != np.float16 or arr.ndim != 2:
            raise DatasetError(f"{path}: embeddings must be float16 [T, dim], got {arr.dtype} {list(arr.shape)}")
        self._check_embedding_shape(path, embedder_id, name, arr)
        return arr


__all__ = ["EmbeddingStore"]
