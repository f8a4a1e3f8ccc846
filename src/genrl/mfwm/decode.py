"""Prompt decoding: the MFWM's reading of a prompt before any behavior is learned (paper section 5).

* Text: ``VLM text embedding -> aligner -> connector rollout (mode) -> decoder``.
* Video: ``VLM video embedding of k frames -> [aligner] -> connector -> decoder``. The official code passes video
  prompts through the aligner too (``tools/genrl_utils.py`` ``video_video_reward``, ``denoise=True``);
  :func:`decode_prompt` makes it a flag (``use_aligner``), defaulting to ``False`` for videos: the aligner is trained
  to map *noisy* vision embeddings to clean ones, and a video embedding already lives in the vision region.

Usage::

    genrl decode runs/walker_mfwm --prompt "lying on the back" --out lying.gif
    genrl decode runs/walker_mfwm --video ../shared/data/video_prompts/guy_walking.gif --out walk.gif
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genrl.mfwm.model import MFWM
from genrl.utils.io import write_video
from genrl.vlm.base import Embedder, load_video_prompt


def prompt_embedding(embedder: Embedder, prompt: str | None = None, video: str | Path | None = None
                     ) -> tuple[torch.Tensor, dict]:
    """Embedding ``[1, D]`` of a text or video prompt, and info (which frames of the video were used).

    Raises:
        ValueError: neither or both of ``prompt`` / ``video`` given. PromptError / FileNotFoundError: bad prompt.
    """
    if (prompt is None) == (video is None):
        raise ValueError("give exactly one of a text prompt or a video file")
    if prompt is not None:
        return embedder.embed_text([prompt]), {"prompt": prompt}
    frames, idx = load_video_prompt(video, embedder.n_frames)
    return embedder.embed_video(frames[None]), {"video": str(video), "frames_used": idx.tolist(),
                                                "frame_size": list(frames.shape[1:3])}


def matching_embedder(model_cfg: dict, embedder: Embedder) -> Embedder:
    """The embedder to read prompts for an MFWM trained on ``model_cfg["embedder_id"]``'s embeddings.

    ``embedder`` itself when its id and dimension match. When ``embedder`` is a packaged MiniVLM (``--vlm default``)
    but the model was trained with another packaged MiniVLM (an older default, e.g. the shipped walker and cheetah
    models), that one is loaded instead and named on stdout. Any other mismatch is refused: embeddings of another
    VLM would be meaningless to the connector.

    Raises:
        ValueError: id or dimension differ and no packaged MiniVLM has the model's id.
    """
    if embedder.id == model_cfg["embedder_id"] and embedder.dim == model_cfg["embed_dim"]:
        return embedder
    from genrl.vlm.minivlm import MiniVLMEmbedder, packaged_minivlms

    packaged = packaged_minivlms()
    if isinstance(embedder, MiniVLMEmbedder) and embedder.id in packaged and model_cfg["embedder_id"] in packaged:
        key = model_cfg["embedder_id"]
        if key not in _PACKAGED:
            print(f"this model was trained with the packaged MiniVLM {key!r}: prompts are embedded by it")
            _PACKAGED[key] = MiniVLMEmbedder(packaged[key], batch_size=embedder.batch_size,
                                             device=str(embedder.device))
        return _PACKAGED[key]
    raise ValueError(f"this model was trained with VLM {model_cfg['embedder_id']!r} ({model_cfg['embed_dim']}-d)"
                     f" but the prompt embedder is {embedder.id!r} ({embedder.dim}-d); use the same --vlm")


_PACKAGED: dict[str, Embedder] = {}  # packaged MiniVLMs loaded by matching_embedder, by id


@torch.no_grad()
def decode_prompt(model: MFWM, emb: torch.Tensor, horizon: int = 32, use_aligner: bool = True,
                  samples: int = 1) -> np.ndarray:
    """Decoded frames uint8 ``[samples, horizon, H, W, 3]`` of the connector rollout (mode) of ``emb [1, D]``.

    ``samples > 1`` draws several initial states (the learned initial ``z`` is sampled).
    """
    model.eval()
    states = model.imagine_prompt(emb.expand(samples, -1), horizon, use_aligner=use_aligner, sample=False)
    return model.decode_states(states).cpu().numpy()


def write_decoded(frames: np.ndarray, out: str | Path, fps: float = 10.0, scale: int = 2) -> Path:
    """Write ``[S, T, H, W, 3]`` rollouts side by side as one video/GIF (``.gif`` or ``.mp4``)."""
    tiled = np.concatenate(list(frames), axis=2)  # [T, H, S*W, 3]
    return write_video(out, tiled, fps=fps, scale=scale)
