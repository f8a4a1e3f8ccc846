"""Video-language models: one :class:`Embedder` interface, backends, dataset embedding, the default MiniVLM.

The names below load on first use (PEP 562), so ``genrl.vlm.registry.NAMES`` (the CLI's ``--vlm`` choices) is
readable without importing torch.
"""

from __future__ import annotations

from genrl.utils.lazy import lazy_names

_LAZY = {"Embedder": "genrl.vlm.base", "MissingWeightsError": "genrl.vlm.base", "PromptError": "genrl.vlm.base",
         "load_video_prompt": "genrl.vlm.base", "NAMES": "genrl.vlm.registry", "make_embedder": "genrl.vlm.registry"}

__all__ = ["Embedder", "MissingWeightsError", "PromptError", "load_video_prompt", "make_embedder", "NAMES"]

__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__)
