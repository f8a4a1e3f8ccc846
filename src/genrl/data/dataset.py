"""Dataset folders: episodes of one domain, a JSON manifest, and VLM embeddings stored beside the episodes.

Layout of a dataset folder ``DIR``::

    DIR/manifest.json                         domain, action dim, image size, every episode's source + length
    DIR/episodes/<name>.npz                   one episode each (format of :mod:`genrl.data.episode`)
    DIR/embeddings/<embedder_id>/<name>.npy   float16 [T, dim]: one VLM embedding per entry of episode <name>
    DIR/embeddings/<embedder_id>/embedder.json {"id", "dim", "dtype"} of that embedding model

The manifest (``{"format": "genrl-dataset/1", "domain", "action_dim", "image_size", "episodes": {name: meta}}``)
is the list of episodes of the dataset: an ``.npz`` under ``episodes/`` that it does not name is ignored (an
orphan, e.g. written by a worker that crashed before the main process registered it). Every episode's ``meta``
holds at least ``length`` (entries, including the reset entry) and, by convention, ``source`` (``"random"``,
``"perturbed"``, ``"expert"``, ``"imported"``), ``task``, ``policy``, ``noise``, ``seed``, ``snapshot``; it may
carry a ``subset`` label that overrides the composition label (:func:`subset_label`).

Embeddings are keyed by the embedding model's id (a free string such as ``internvideo2-stage2-1b-f8`` that must be a
plain folder name), so switching VLM adds a folder and never rewrites episodes. ``clip_video`` of the official
files is imported as the embeddings of :data:`INTERNVIDEO2_ID` and ``clip_img`` as :data:`SIGLIP_ID`
(:func:`genrl.data.importer.import_episodes`).

Writes and crashes:
    * every file is written to a temporary file beside it and renamed (:func:`genrl.utils.io.atomic_path`), so a
      crash never leaves a truncated file under a final name; at most the episode in progress is lost. A hard kill
      can leave ``.<stem>.*.partial.npz`` temporaries, which are never read (:meth:`Dataset.clean_partials`).
    * **only the main process writes the manifest.** Collection workers write ``episodes/<name>.npz`` themselves
      (with :func:`genrl.data.episode.save_episode`) and hand the name back; the main process then calls
      :meth:`Dataset.register`. Re-running a collection skips names for which :meth:`Dataset.has` is true.

Loading validates keys, shapes, dtypes and lengths (against the manifest too); problems raise
:class:`~genrl.data.episode.EpisodeError` naming the file, or, with ``load_all(skip_bad=True)``, are skipped with a
warning. A dataset holds one domain: adding an episode of another action size or domain is refused, and
:func:`check_domain` refuses to use a dataset with a model of another domain.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np

from genrl.data.embedding_store import EmbeddingStore
from genrl.data.episode import REQUIRED, EpisodeError, load_episode, npz_headers, save_episode, validate_episode
from genrl.data.layout import (EMBEDDING_KEYS, EPISODES, FORMAT, INTERNVIDEO2_ID, KNOWN_DOMAINS,
                               MANIFEST, SIGLIP_ID, DatasetError, check_name)
from genrl.utils.io import write_json


class SubsetRow(NamedTuple):
    """One row of :meth:`Dataset.composition` (paper Table 4)."""

    subset: str
    episodes: int
    frames: int
    fraction: float


def check_domain(dataset_domain: str, expected_domain: str, what: str = "the dataset",
                 against: str = "the model was trained for") -> None:
    """Refuse to mix domains.

    Example message: ``dataset data/walker holds walker episodes but the model was trained for stickman``.

    Args:
        dataset_domain: domain of the data (``Dataset.domain``).
        expected_domain: domain required by the caller (e.g. the model's).
        what: how to name the data in the message (e.g. ``f"dataset {ds.root}"``).
        against: what requires ``expected_domain``.

    Raises:
        DatasetError (a ``ValueError``): the domains differ.
    """
    if dataset_domain != expected_domain:
        raise DatasetError(f"{what} holds {dataset_domain} episodes but {against} {expected_domain}; "
                           f"use a {expected_domain} dataset (domains cannot be mixed)")


def subset_label(domain: str, meta: Mapping[str, Any]) -> str:
    """Composition label of an episode from its meta (rows of paper Table 4).

    * ``meta["subset"]`` if present (explicit label);
    * ``source == "expert"`` (replay of an agent that learned a task): ``"{domain} {task}"``, e.g. ``walker run``;
    * ``source == "perturbed"`` (expert actions with noise): ``"{domain} {task} perturbed"``;
    * ``source == "random"`` (uniform random / exploration): ``"{domain} expl"``;
    * ``source == "imported"``: ``"{domain} {task} imported"`` or ``"{domain} imported"``;
    * otherwise ``"{domain} {source or 'unknown'}"``.

    ``task`` may be the full task id (``walker_run``) or the short name (``run``); underscores become spaces.
    """
    if meta.get("subset"):
        return str(meta["subset"])
    source = meta.get("source") or "unknown"
    task = meta.get("task")
    short = None
    if task:
        short = str(task)
        if short.startswith(domain + "_"):
            short = short[len(domain) + 1:]
        short = short.replace("_", " ")
    if source == "expert":
        return f"{domain} {short}" if short else f"{domain} expert"
    if source == "perturbed":
        return f"{domain} {short} perturbed" if short else f"{domain} perturbed"
    if source == "random":
        return f"{domain} expl"
    if source == "imported":
        return f"{domain} {short} imported" if short else f"{domain} imported"
    return f"{domain} {source}"


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class Dataset(EmbeddingStore):
    """A dataset folder (see the module docstring for the layout). Open with ``Dataset(root)``, make with
    :meth:`Dataset.create`.

    The manifest is read once when opening (:meth:`reload` re-reads it) and rewritten atomically by every
    :meth:`add` / :meth:`register` (main process only).
    """

    def __init__(self, root: str | os.PathLike):
        self._root = Path(root)
        self.reload()

    # ------------------------------------------------------------------ creation / manifest
    @classmethod
    def create(cls, root: str | os.PathLike, domain: str, action_dim: int, image_size: int = 64) -> "Dataset":
        """Create an empty dataset, or open the existing one at ``root`` if it has the same domain and sizes.

        Raises:
            DatasetError: ``root`` already holds a dataset of another domain / action size / image size, or
                ``root`` exists and is not a folder.
        """
        root = Path(root)
        check_name(domain, "domain")
        if int(action_dim) < 1 or int(image_size) < 1:
            raise DatasetError(f"action_dim and image_size must be positive, got {action_dim}, {image_size}")
        if (root / MANIFEST).exists():
            ds = cls(root)
            check_domain(ds.domain, domain, f"dataset {root}", against="episodes are being added for")
            if ds.action_dim != int(action_dim) or ds.image_size != int(image_size):
                raise DatasetError(f"dataset {root} ({ds.domain}) has action dim {ds.action_dim} and image size "
                                   f"{ds.image_size}, not {action_dim} and {image_size}")
            return ds
        if root.exists() and not root.is_dir():
            raise DatasetError(f"{root} exists and is not a folder")
        (root / EPISODES).mkdir(parents=True, exist_ok=True)
        write_json(root / MANIFEST, {"format": FORMAT, "domain": domain, "action_dim": int(action_dim),
                                     "image_size": int(image_size), "episodes": {}})
        return cls(root)

    def reload(self) -> None:
        """Re-read ``manifest.json``.

        Raises:
            DatasetError: no manifest (the message says what a dataset folder contains), bad JSON or format.
        """
        path = self._root / MANIFEST
        if not path.is_file():
            raise DatasetError(
                f"{self._root} is not a genrl dataset: {path} not found. A dataset folder contains manifest.json, "
                f"episodes/<name>.npz and optionally embeddings/<embedder_id>/<name>.npy; make one with "
                f"`genrl data import SRC --out DIR --domain D` or by collecting data")
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise DatasetError(f"{path}: cannot read the manifest ({err})") from err
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise DatasetError(f"{path}: not a {FORMAT} manifest (format={manifest.get('format')!r})"
                               if isinstance(manifest, dict) else f"{path}: not a {FORMAT} manifest")
        for key in ("domain", "action_dim", "image_size", "episodes"):
            if key not in manifest:
                raise DatasetError(f"{path}: manifest lacks {key!r}")
        for name, meta in manifest["episodes"].items():
            if not isinstance(meta, dict) or not isinstance(meta.get("length"), int):
                raise DatasetError(f"{path}: episode {name!r} has no integer 'length' in its meta")
        self._manifest = manifest

    def _write_manifest(self) -> None:
        self._manifest["episodes"] = dict(sorted(self._manifest["episodes"].items()))
        write_json(self._root / MANIFEST, self._manifest)

    # ------------------------------------------------------------------ properties
    @property
    def root(self) -> Path:
        return self._root

    @property
    def domain(self) -> str:
        return self._manifest["domain"]

    @property
    def action_dim(self) -> int:
        return int(self._manifest["action_dim"])

    @property
    def image_size(self) -> int:
        return int(self._manifest["image_size"])

    def __len__(self) -> int:
        return len(self._manifest["episodes"])

    def __repr__(self) -> str:
        return f"Dataset({str(self._root)!r}, domain={self.domain!r}, episodes={len(self)}, frames={self.frames()})"

    def require_domain(self, expected: str, against: str = "the model was trained for") -> None:
        """:func:`check_domain` for this dataset."""
        check_domain(self.domain, expected, f"dataset {self._root}", against)

    # ------------------------------------------------------------------ episodes
    def episode_path(self, name: str) -> Path:
        """``DIR/episodes/<name>.npz`` (validates ``name``). Workers write here, then the main process registers."""
        return self._root / EPISODES / f"{check_name(name, 'episode name')}.npz"

    def names(self) -> list[str]:
        """Sorted names of the episodes listed in the manifest."""
        return sorted(self._manifest["episodes"])

    def meta(self, name: str) -> dict[str, Any]:
        """The manifest entry of an episode (a copy). Raises ``KeyError`` if it is not listed."""
        try:
            return dict(self._manifest["episodes"][name])
        except KeyError:
            raise KeyError(f"episode {name!r} is not in dataset {self._root}") from None

    def length(self, name: str) -> int:
        """Entries of an episode (from the manifest)."""
        return int(self.meta(name)["length"])

    def has(self, name: str) -> bool:
        """True if ``name`` is in the manifest and its file exists (used to resume collection)."""
        return name in self._manifest["episodes"] and self.episode_path(name).is_file()

    def _check_episode_shapes(self, where: str, length: int, action_shape: Sequence[int],
                              obs_shape: Sequence[int]) -> None:
        if len(action_shape) != 2 or action_shape[1] != self.action_dim:
            raise DatasetError(f"{where}: action has shape {list(action_shape)} but dataset {self._root} holds "
                               f"{self.domain} episodes with action dim {self.action_dim} (wrong domain?)")
        if tuple(obs_shape[2:]) != (self.image_size, self.image_size):
            raise DatasetError(f"{where}: observation frames are {list(obs_shape[2:])}, dataset {self._root} "
                               f"holds {self.image_size}x{self.image_size} frames")

    def _check_meta(self, name: str, meta: Mapping[str, Any] | None) -> None:
        meta = meta or {}
        where = f"{self.episode_path(name)}"
        if meta.get("domain") not in (None, self.domain):
            raise DatasetError(f"{where}: meta says domain {meta['domain']!r} but dataset {self._root} holds "
                               f"{self.domain} episodes (domains cannot be mixed)")
        task = str(meta.get("task") or "")
        prefix = task.split("_")[0]
        if prefix in KNOWN_DOMAINS and prefix != self.domain:
            raise DatasetError(f"{where}: task {task!r} belongs to domain {prefix} but dataset {self._root} holds "
                               f"{self.domain} episodes (domains cannot be mixed)")
        try:
            json.dumps(dict(meta))
        except TypeError as err:
            raise DatasetError(f"meta of episode {name!r} is not JSON-serializable ({err})") from err

    def _set_meta(self, name: str, meta: Mapping[str, Any] | None, length: int) -> None:
        entry = dict(meta or {})
        entry["length"] = int(length)
        self._manifest["episodes"][name] = entry
        self._write_manifest()

    def add(self, name: str, episode: Mapping[str, np.ndarray], meta: Mapping[str, Any] | None = None) -> Path:
        """Validate and write an episode (atomically), then list it in the manifest (atomically).

        Args:
            name: episode name (plain file name, without ``.npz``); an existing episode of that name is replaced.
            episode: dict in the format of :mod:`genrl.data.episode`.
            meta: JSON-serializable description (``source``, ``task``, ``policy``, ``noise``, ``seed``, ...);
                ``length`` is added.

        Raises:
            EpisodeError: the episode does not follow the format (nothing is written).
            DatasetError: action dim / frame size differ from the dataset's, or ``meta`` names another domain
                (``domain`` key, or a ``task`` id such as ``walker_walk``).
        """
        path = self.episode_path(name)
        self._check_meta(name, meta)
        length = validate_episode(episode, str(path))
        self._check_episode_shapes(str(path), length, episode["action"].shape, episode["observation"].shape)
        save_episode(path, episode)
        self._set_meta(name, meta, length)
        return path

    def register(self, name: str, meta: Mapping[str, Any] | None = None) -> int:
        """List an episode already written to :meth:`episode_path` (e.g. by a worker) in the manifest.

        Keys, dtypes, lengths and sizes are checked from the array headers (no decompression; values are checked
        on :meth:`load`). Returns the episode length.

        Raises:
            EpisodeError: missing/corrupt file or format problem (message names the file).
            DatasetError: action dim / frame size differ from the dataset's, or ``meta`` names another domain
                (``domain`` key, or a ``task`` id such as ``walker_walk``).
        """
        path = self.episode_path(name)
        self._check_meta(name, meta)
        heads = npz_headers(path)
        missing = sorted(set(REQUIRED) - set(heads))
        if missing:
            raise EpisodeError(f"{path}: missing keys {missing} (has {sorted(heads)})")
        length = heads["observation"][0][0] if heads["observation"][0] else 0
        for key, dtype in REQUIRED.items():
            shape, got = heads[key]
            if got != np.dtype(dtype):
                raise EpisodeError(f"{path}: {key!r} must be {np.dtype(dtype).name}, got {got}")
            if not shape or shape[0] != length:
                raise EpisodeError(f"{path}: {key!r} has shape {list(shape)}, 'observation' has {length} entries")
        if length < 2 or len(heads["observation"][0]) != 4:
            raise EpisodeError(f"{path}: 'observation' must be [T>=2, 3, H, W], got {list(heads['observation'][0])}")
        self._check_episode_shapes(str(path), length, heads["action"][0], heads["observation"][0])
        self._set_meta(name, meta, length)
        return length

    def remove(self, name: str) -> None:
        """Drop an episode from the manifest and delete its file and embeddings."""
        self._manifest["episodes"].pop(name, None)
        self._write_manifest()
        self.episode_path(name).unlink(missing_ok=True)
        for emb in self.embeddings_ids():
            self.embedding_path(emb, name).unlink(missing_ok=True)

    def load(self, name: str, keys: set[str] | None = None) -> dict[str, np.ndarray]:
        """Read and validate one episode (eagerly). ``keys``: only these (plus the required ones).

        Raises:
            KeyError: ``name`` is not in the manifest.
            EpisodeError: missing/corrupt file, format problem, or a length/size that differs from the manifest
                (the message names the file).
        """
        length = self.length(name)
        path = self.episode_path(name)
        if not path.is_file():
            raise EpisodeError(f"{path}: file is missing (listed in {self._root / MANIFEST})")
        ep = load_episode(path, keys)
        got = ep["observation"].shape[0]
        if got != length:
            raise EpisodeError(f"{path}: has {got} entries but the manifest says {length}")
        try:
            self._check_episode_shapes(str(path), got, ep["action"].shape, ep["observation"].shape)
        except DatasetError as err:
            raise EpisodeError(str(err)) from None
        return ep

    def load_all(self, skip_bad: bool = False, keys: set[str] | None = None
                 ) -> list[tuple[str, dict[str, np.ndarray]]]:
        """Load every episode of the manifest, sorted by name.

        Args:
            skip_bad: if True, an unreadable/invalid episode is skipped with a ``RuntimeWarning`` that names the
                file and the problem; otherwise its :class:`EpisodeError` is raised.
            keys: as in :meth:`load`.
        """
        out = []
        for name in self.names():
            try:
                out.append((name, self.load(name, keys)))
            except EpisodeError as err:
                if not skip_bad:
                    raise
                warnings.warn(f"skipping bad episode: {err}", RuntimeWarning, stacklevel=2)
        return out

    def orphans(self) -> list[str]:
        """Names of ``episodes/*.npz`` files that the manifest does not list (e.g. a worker's last episode)."""
        listed = self._manifest["episodes"]
        return sorted(p.stem for p in (self._root / EPISODES).glob("*.npz")
                      if not p.name.startswith(".") and p.stem not in listed)

    def clean_partials(self) -> list[Path]:
        """Delete temporaries left by a hard-killed writer (``.*.partial.*``). Only call when no writer runs."""
        found = [p for p in self._root.rglob(".*.partial.*") if p.is_file()]
        for p in found:
            p.unlink()
        return found

    # ------------------------------------------------------------------ statistics
    def frames(self) -> int:
        """Total entries of all episodes (from the manifest)."""
        return sum(int(m["length"]) for m in self._manifest["episodes"].values())

    def composition(self) -> list[SubsetRow]:
        """Episodes and frames per subset (label from :func:`subset_label`), sorted by label, as paper Table 4."""
        groups: dict[str, list[int]] = {}
        for meta in self._manifest["episodes"].values():
            row = groups.setdefault(subset_label(self.domain, meta), [0, 0])
            row[0] += 1
            row[1] += int(meta["length"])
        total = max(self.frames(), 1)
        return [SubsetRow(label, n, f, f / total) for label, (n, f) in sorted(groups.items())]

    def disk_size(self) -> int:
        """Bytes of every file under the dataset folder."""
        return _dir_size(self._root)


__all__ = ["Dataset", "DatasetError", "EpisodeError", "SubsetRow", "check_domain", "check_name", "subset_label",
           "INTERNVIDEO2_ID", "SIGLIP_ID", "EMBEDDING_KEYS", "FORMAT"]
