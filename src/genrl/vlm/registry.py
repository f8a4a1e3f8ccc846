"""Build an embedder by name: ``make_embedder("default")``, ``make_embedder("xclip", path="models/xclip")``.

========================  ===========================================  =====================================
name                      model                                        ``path``
========================  ===========================================  =====================================
``default`` / ``minivlm``  the project's MiniVLM (video k=8, text 384-d  optional: weights folder (default:
                          frozen MiniLM + projection)                  the packaged weights)
``xclip``                 X-CLIP (transformers ``XCLIPModel``, k=8)     local ``save_pretrained`` folder
``clip``                  CLIP (image-text; k=1, or mean-pooled k)     local ``save_pretrained`` folder
``siglip``                SigLIP (image-text; k=1, or mean-pooled k)   local ``save_pretrained`` folder
``internvideo2``          InternVideo2 stage-2 1B (the paper's VLM)    the official ``multi_modality`` code
                                                                       folder; ``checkpoint=`` the ``.pt``
========================  ===========================================  =====================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI reads NAMES without importing torch
    from genrl.vlm.base import Embedder

NAMES = ("default", "minivlm", "xclip", "clip", "siglip", "internvideo2")


def make_embedder(name: str, path: str | None = None, **kwargs: Any) -> Embedder:
    """Instantiate the embedder ``name`` (see the module table). ``kwargs`` go to the backend's constructor.

    Raises:
        ValueError: unknown name, or a backend that needs ``path`` was given none.
        FileNotFoundError (MissingWeightsError): the local weights are missing (the message says what to
            download and where).
    """
    if name in ("default", "minivlm"):
        from genrl.vlm.minivlm import MiniVLMEmbedder
        return MiniVLMEmbedder(path, **kwargs)
    if name not in NAMES:
        raise ValueError(f"unknown VLM {name!r}; valid names: {', '.join(NAMES)}")
    if path is None:
        raise ValueError(f"VLM {name!r} needs a local path to its weights (--vlm-path); see `genrl embed --help`")
    if name == "xclip":
        from genrl.vlm.hf import XCLIPEmbedder
        return XCLIPEmbedder(path, **kwargs)
    if name == "clip":
        from genrl.vlm.hf import CLIPEmbedder
        return CLIPEmbedder(path, **kwargs)
    if name == "siglip":
        from genrl.vlm.hf import SiglipEmbedder
        return SiglipEmbedder(path, **kwargs)
    from genrl.vlm.internvideo2 import InternVideo2Embedder
    return InternVideo2Embedder(path, **kwargs)
