"""The dataset folder's layout and naming rules (shared by :mod:`genrl.data.dataset` and
:mod:`genrl.data.embedding_store`); see :mod:`genrl.data.dataset` for the format itself."""

from __future__ import annotations

import re

from genrl.envs.registry import DOMAIN_MODULES

FORMAT = "genrl-dataset/1"
MANIFEST = "manifest.json"
EPISODES = "episodes"
EMBEDDINGS = "embeddings"
EMBEDDER_INFO = "embedder.json"
INTERNVIDEO2_ID = "internvideo2-stage2-1b-f8"
"""Id under which official ``clip_video`` arrays are stored: InternVideo2-Stage2-1B video embedding (512-d) of the
8-frame window ending at each entry (official ``envs/main.py`` ``ViClipWrapper.process_episode``). The official
sample has **8** leading zero rows (indices 0-7; the official ``process_episode`` now writes 7); imported values are
kept exactly as they are (only cast to float16)."""
SIGLIP_ID = "siglip-b16-224"
"""Id under which official ``clip_img`` arrays (768-d, unit norm, one per frame; SigLIP-B image embeddings, paper
section 4) are stored when importing."""
KNOWN_DOMAINS = tuple(DOMAIN_MODULES)  # the environment registry's domains
EMBEDDING_KEYS = {"clip_video": INTERNVIDEO2_ID, "clip_img": SIGLIP_ID}

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+=-]{0,199}$")


class DatasetError(ValueError):
    """A dataset folder, its manifest or its embeddings are missing or inconsistent (the message says which)."""


def check_name(name: str, what: str = "name") -> str:
    """Validate an episode name or embedder id as a plain file/folder name; returns it unchanged.

    Allowed: letters, digits and ``_ . + = -``, not starting with ``.`` or ``-``, no ``..``, at most 200 chars.

    Raises:
        DatasetError: empty, containing ``/`` or ``..``, or other characters.
    """
    if not isinstance(name, str) or not name:
        raise DatasetError(f"{what} must be a non-empty string, got {name!r}")
    if "/" in name or "\\" in name or ".." in name or not _SAFE_NAME.match(name):
        raise DatasetError(f"{what} {name!r} is not a plain folder/file name: use letters, digits and _ . + = - "
                           f"(no '/', no '..', not starting with '.' or '-', at most 200 characters)")
    return name


__all__ = ["DatasetError", "check_name", "FORMAT", "MANIFEST", "EPISODES", "EMBEDDINGS", "EMBEDDER_INFO",
           "INTERNVIDEO2_ID", "SIGLIP_ID", "KNOWN_DOMAINS", "EMBEDDING_KEYS"]
