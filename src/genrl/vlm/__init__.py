"""Video-language models: one :class:`Embedder` interface, backends, dataset embedding, the default MiniVLM.

The names below load on first use (PEP 562), so ``genrl.vlm.registry.NAMES`` (the CLI's ``--vlm`` choices) is
readable without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"Embedder": "genrl.vlm.base", "MissingWeightsError": "genrl.vlm.base", "PromptError": "genrl.vlm.base",
         "load_video_prompt": "genrl.vlm.base", "NAMES": "genrl.vlm.registry", "make_embedder": "genrl.vlm.registry"}

__all__ = ["Embedder", "MissingWeightsError", "PromptError", "load_video_prompt", "make_embedder", "NAMES"]


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` on first access."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'genrl.vlm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
