"""Import official GenRL ``.npz`` episodes into a dataset (official ``tools/replay.py``), moving ``clip_video`` /
``clip_img`` embeddings into the dataset's embedding store.

Usage::

    import_episodes(["downloads/stickman_data"], "data/stickman", "stickman")
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

from genrl.data.dataset import (INTERNVIDEO2_ID, MANIFEST, SIGLIP_ID, Dataset, DatasetError, check_domain,
                                check_name)
from genrl.data.episode import EpisodeError, load_episode, npz_headers


def _official_files(sources: Sequence[str | os.PathLike]) -> list[Path]:
    files: list[Path] = []
    for src in sources:
        src = Path(src)
        if src.is_dir():
            files.extend(sorted(p for p in src.rglob("*.npz") if not p.name.startswith(".")))
        elif src.is_file():
            files.append(src)
        else:
            raise FileNotFoundError(f"{src}: no such file or folder")
    return files


def _import_name(path: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_.+=-]", "_", path.stem).lstrip(".-") or "episode"
    return check_name(re.sub(r"\.{2,}", ".", name)[:200], "episode name")


def import_episodes(sources: Sequence[str | os.PathLike], dataset: "Dataset | str | os.PathLike", domain: str,
                    embedder_id_for_clip_video: str = INTERNVIDEO2_ID, embedder_id_for_clip_img: str = SIGLIP_ID,
                    skip_bad: bool = False, meta: Mapping[str, Any] | None = None) -> list[str]:
    """Copy official GenRL ``.npz`` episodes into a dataset, moving VLM embeddings to the embeddings store.

    ``clip_video`` becomes the ``embedder_id_for_clip_video`` embeddings and ``clip_img`` the
    ``embedder_id_for_clip_img`` ones (float16; values kept as they are, including the official sample's 8
    leading zero rows); both keys are stripped from the episode file. Meta: ``{"source": "imported",
    "original": <file name>, **meta}``. Episode names are the original file stems; episodes already present
    (with their embeddings) are skipped, so an interrupted import resumes.

    Args:
        sources: files and/or folders (searched recursively, sorted).
        dataset: a :class:`Dataset` or a folder (created with the action dim / image size of the first file).
        domain: domain of the episodes; must match the dataset's.
        skip_bad: skip (with a warning) files that cannot be read or validated instead of raising.
        meta: extra meta for every imported episode (e.g. ``{"task": "stickman_walk"}``).

    Returns:
        Names of the episodes imported now (not the skipped ones).
    """
    files = _official_files(sources)
    if not isinstance(dataset, Dataset):
        if not files:
            raise FileNotFoundError(f"no .npz episodes found in {[str(s) for s in sources]}")
        root = Path(dataset)
        if (root / MANIFEST).exists():
            dataset = Dataset(root)
        else:
            heads = npz_headers(files[0])
            if "action" not in heads or "observation" not in heads:
                raise EpisodeError(f"{files[0]}: missing 'action' or 'observation'")
            dataset = Dataset.create(root, domain, heads["action"][0][-1], heads["observation"][0][-1])
    check_domain(dataset.domain, domain, f"dataset {dataset.root}", against="the imported episodes are")
    ids = {"clip_video": check_name(embedder_id_for_clip_video, "embedder id"),
           "clip_img": check_name(embedder_id_for_clip_img, "embedder id")}
    imported = []
    for path in files:
        name = _import_name(path)
        try:
            present = set(npz_headers(path)) & set(ids)
        except EpisodeError as err:
            if not skip_bad:
                raise
            warnings.warn(f"skipping bad episode: {err}", RuntimeWarning, stacklevel=2)
            continue
        if dataset.has(name) and all(dataset.has_embedding(ids[k], name) for k in present):
            continue
        try:
            ep = load_episode(path)
            embeds = {k: ep.pop(k) for k in list(ep) if k in ids}
            for key, arr in embeds.items():
                if arr.ndim != 2 or arr.shape[0] != ep["observation"].shape[0]:
                    raise EpisodeError(f"{path}: {key!r} has shape {list(arr.shape)}, expected "
                                       f"[{ep['observation'].shape[0]}, dim]")
            dataset.add(name, ep, {"source": "imported", "original": path.name, **(meta or {})})
            for key, arr in embeds.items():
                dataset.save_embedding(ids[key], name, arr)
        except (EpisodeError, DatasetError) as err:
            if not skip_bad:
                raise
            warnings.warn(f"skipping bad episode: {err}", RuntimeWarning, stacklevel=2)
            continue
        imported.append(name)
    return imported
