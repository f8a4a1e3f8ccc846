"""Video-language models: one :class:`Embedder` interface, backends, dataset embedding, the default MiniVLM."""

from genrl.vlm.base import Embedder, MissingWeightsError, PromptError, load_video_prompt
from genrl.vlm.registry import NAMES, make_embedder

__all__ = ["Embedder", "MissingWeightsError", "PromptError", "load_video_prompt", "make_embedder", "NAMES"]
