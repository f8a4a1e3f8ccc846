"""Video-language backends built on Hugging Face ``transformers``, loaded from a local directory only.

* :class:`XCLIPEmbedder` — X-CLIP (``microsoft/xclip-base-patch32``): a true video model, ``k`` = 8 frames.
* :class:`CLIPEmbedder` — CLIP (``openai/clip-vit-base-patch16``): an image model; ``n_frames`` > 1 mean-pools frames.
* :class:`SiglipEmbedder` — SigLIP (``google/siglip-base-patch16-224``): same, with SigLIP's max-length text padding.

They are alternatives to the paper's InternVideo2 (:mod:`genrl.vlm.internvideo2`): every
backend implements :class:`genrl.vlm.base.Embedder`, so downstream code reads ``dim``/``n_frames`` from it.

Nothing is ever downloaded: ``from_pretrained(path, local_files_only=True)``. A missing or incomplete directory
raises :class:`~genrl.vlm.base.MissingWeightsError` naming the Hugging Face repo to fetch. Pixels are prepared here
with :func:`~genrl.vlm.base.resize_frames` and :func:`~genrl.vlm.base.normalize_image` (no torchvision/PIL), using
the size/mean/std saved in the directory's ``preprocessor_config.json`` (or ``processor_config.json``) and the
model's published defaults where the file is absent.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Sequence

import torch

from genrl.vlm.base import (IMAGENET_MEAN, IMAGENET_STD, BatchedEmbedder, MissingWeightsError, normalize_image,
                            resize_frames)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
HALF = (0.5, 0.5, 0.5)

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "spiece.model", "tokenizer_config.json")


def _as_hw(value: Any) -> tuple[int, int] | None:
    """``224`` or ``{"height": 224, "width": 224}`` -> ``(224, 224)``; anything else -> ``None``."""
    if isinstance(value, int):
        return value, value
    if isinstance(value, dict) and "height" in value and "width" in value:
        return int(value["height"]), int(value["width"])
    return None


def check_model_dir(path: str | Path, repo: str, what: str) -> Path:
    """Check that ``path`` holds a saved ``transformers`` model (config, weights, tokenizer).

    Args:
        path: the local directory.
        repo: the Hugging Face repo id it should be a download of (named in the error).
        what: the backend's name, for the message.

    Returns:
        ``path`` as a :class:`Path`.

    Raises:
        MissingWeightsError: the directory, ``config.json``, the weights or the tokenizer files are missing; the
            message names the path, the expected files and a ``huggingface-cli download`` command.
    """
    path = Path(path).expanduser()
    missing = []
    if not path.is_dir():
        missing.append("the directory itself")
    else:
        if not (path / "config.json").is_file():
            missing.append("config.json")
        if not any((path / f).is_file() for f in WEIGHT_FILES):
            missing.append("weights (" + " or ".join(WEIGHT_FILES) + ")")
        if not any((path / f).is_file() for f in TOKENIZER_FILES):
            missing.append("tokenizer files (" + " or ".join(TOKENIZER_FILES) + ")")
    if missing:
        raise MissingWeightsError(
            f"{what} weights not found at {path}: missing {', '.join(missing)}. Expected a local copy of the "
            f"Hugging Face repo {repo} (config.json, weights, tokenizer files, preprocessor_config.json). "
            f"Download it with:  huggingface-cli download {repo} --local-dir {path}")
    return path


def weights_id(prefix: str, path: Path, suffix: str = "") -> str:
    """Stable embedder id ``<prefix>-<dir name>-<8 hex of sha1(config.json)>[<suffix>]`` (a plain folder name).

    Different weights (a different ``config.json``) give a different id, so cached dataset embeddings never mix.
    """
    name = re.sub(r"[^A-Za-z0-9_.+=-]+", "_", path.resolve().name).strip("._") or "model"
    digest = hashlib.sha1((path / "config.json").read_bytes()).hexdigest()[:8]
    return f"{prefix}-{name[:80]}-{digest}{suffix}"


def read_pixel_config(path: Path, image_size: int, mean: Sequence[float],
                      std: Sequence[float]) -> dict[str, Any]:
    """Pixel preprocessing of a saved model: resize mode and size, optional center crop, mean and std.

    Reads ``preprocessor_config.json`` (or the ``image_processor`` entry of ``processor_config.json``); keys it lacks
    fall back to the arguments (``image_size`` square resize, no crop, the given mean/std).

    Returns:
        ``{"resize": (h, w) | None, "shortest_edge": int | None, "crop": (h, w) | None, "mean", "std"}``:
        exactly one of ``resize``/``shortest_edge`` is set.
    """
    cfg: dict[str, Any] = {}
    if (path / "preprocessor_config.json").is_file():
        cfg = json.loads((path / "preprocessor_config.json").read_text())
    elif (path / "processor_config.json").is_file():
        proc = json.loads((path / "processor_config.json").read_text())
        cfg = proc.get("image_processor") or proc.get("video_processor") or {}
    crop = _as_hw(cfg.get("crop_size")) if cfg.get("do_center_crop", False) else None
    size = cfg.get("size")
    resize, shortest = None, None
    if isinstance(size, dict) and "shortest_edge" in size:
        shortest = int(size["shortest_edge"])
    elif isinstance(size, int) and crop is not None:  # old CLIP-style configs: "size": 224 = shortest edge
        shortest = size
    else:
        resize = _as_hw(size) or (image_size, image_size)
    return {"resize": resize, "shortest_edge": shortest, "crop": crop,
            "mean": tuple(cfg.get("image_mean") or mean), "std": tuple(cfg.get("image_std") or std)}


def prepare_pixels(frames: torch.Tensor, pix: dict[str, Any]) -> torch.Tensor:
    """uint8 ``[M, H, W, 3]`` -> float32 ``[M, 3, h, w]``: bilinear resize, center crop, ``(x/255 - mean) / std``.

    ``pix`` comes from :func:`read_pixel_config`. Square inputs with the usual configs reduce to one resize to the
    model's image size (e.g. 64x64 env frames -> 224x224).
    """
    H, W = frames.shape[1:3]
    if pix["shortest_edge"] is not None:
        s = pix["shortest_edge"] / min(H, W)
        size = (max(1, round(H * s)), max(1, round(W * s)))
    else:
        size = pix["resize"]
    x = resize_frames(frames, size)
    if pix["crop"] is not None:
        ch, cw = pix["crop"]
        top, left = max(0, (x.shape[-2] - ch) // 2), max(0, (x.shape[-1] - cw) // 2)
        x = x[..., top:top + ch, left:left + cw]
    return normalize_image(x, pix["mean"], pix["std"])


def _features(out: Any) -> torch.Tensor:
    """The embedding tensor of a ``get_*_features`` call (a tensor in transformers 4, an output object in 5)."""
    if isinstance(out, torch.Tensor):
        return out
    return out.pooler_output


class _HFEmbedder(BatchedEmbedder):
    """Shared loading, tokenization and pixel preparation of the ``transformers`` backends (not public)."""

    repo = ""
    prefix = ""
    model_cls = ""
    default_mean: Sequence[float] = CLIP_MEAN
    default_std: Sequence[float] = CLIP_STD
    text_padding: str | bool = True

    def __init__(self, path: str | Path, batch_size: int = 16, device: str | torch.device = "cpu",
                 truncate: bool = False):
        super().__init__(batch_size=batch_size, device=device, truncate=truncate)
        import transformers

        self.path = check_model_dir(path, self.repo, type(self).__name__)
        self.model = getattr(transformers, self.model_cls).from_pretrained(
            self.path, local_files_only=True, dtype=torch.float32).to(self.device).eval()
        self.tokenizer = self._load_tokenizer()
        cfg = self.model.config
        self.max_text_tokens = int(cfg.text_config.max_position_embeddings)
        self.pixels = read_pixel_config(self.path, int(cfg.vision_config.image_size), self.default_mean,
                                        self.default_std)

    def _load_tokenizer(self):
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        except (ImportError, ValueError, TypeError) as err:
            if "sentencepiece" in str(err).lower() or "NoneType" in str(err):
                raise ImportError(f"cannot load the tokenizer in {self.path}: it needs the `sentencepiece` package "
                                  f"(pip install sentencepiece) ({err})") from err
            raise

    def _count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, truncation=False)["input_ids"])

    def _tokens(self, texts: list[str]) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(texts, padding=self.text_padding, truncation=True, max_length=self.max_text_tokens,
                             return_tensors="pt")
        keep = ("input_ids", "attention_mask") if self.text_padding is True else ("input_ids",)
        return {k: enc[k].to(self.device) for k in keep if k in enc}

    def _frames(self, clips: torch.Tensor) -> torch.Tensor:
        """uint8 ``[n, k, H, W, 3]`` -> float32 ``[n, k, 3, h, w]`` on the model's device."""
        n, k = clips.shape[:2]
        x = prepare_pixels(clips.reshape(n * k, *clips.shape[2:]), self.pixels)
        return x.reshape(n, k, *x.shape[1:]).to(self.device)


class XCLIPEmbedder(_HFEmbedder):
    """X-CLIP video-text model (``transformers.XCLIPModel``) from a local copy of ``microsoft/xclip-base-patch32``.

    Args:
        path: local directory (``config.json``, weights, tokenizer, ``preprocessor_config.json``).
        batch_size: clips/prompts per forward pass. device: torch device of the model.
        truncate: over-long prompts are truncated with a warning instead of raising :class:`PromptError`.

    Attributes:
        n_frames: ``config.vision_config.num_frames`` (8). dim: ``config.projection_dim`` (512).
        max_text_tokens: ``config.text_config.max_position_embeddings`` (77, special tokens included).
        id: ``"xclip-<dir name>-<config hash>"``.

    ``embed_video``: uint8 ``[N, k, H, W, 3]`` -> float32 ``[N, dim]``, via ``get_video_features(pixel_values=[N, k,
    3, h, w])`` after resize to the processor's size and its mean/std (ImageNet by default). ``embed_text``: the
    video-independent text embedding ``get_text_features`` (X-CLIP's video-conditioned prompt generator is not used,
    so text and video live in one space shared by all clips).

    Raises:
        MissingWeightsError: ``path`` missing or incomplete. PromptError: see :class:`BatchedEmbedder`.
    """

    repo = "microsoft/xclip-base-patch32"
    prefix = "xclip"
    model_cls = "XCLIPModel"
    default_mean = IMAGENET_MEAN
    default_std = IMAGENET_STD

    def __init__(self, path: str | Path, batch_size: int = 16, device: str | torch.device = "cpu",
                 truncate: bool = False):
        super().__init__(path, batch_size=batch_size, device=device, truncate=truncate)
        self.n_frames = int(self.model.config.vision_config.num_frames)
        self.dim = int(self.model.config.projection_dim)
        self.id = weights_id(self.prefix, self.path)

    def _video(self, clips: torch.Tensor) -> torch.Tensor:
        return _features(self.model.get_video_features(pixel_values=self._frames(clips)))

    def _text(self, texts: list[str]) -> torch.Tensor:
        return _features(self.model.get_text_features(**self._tokens(texts)))


class _ImageTextEmbedder(_HFEmbedder):
    """An image-text model used on clips: per-frame image embeddings, normalized, mean-pooled over ``n_frames``."""

    def __init__(self, path: str | Path, n_frames: int = 1, batch_size: int = 16, device: str | torch.device = "cpu",
                 truncate: bool = False):
        if int(n_frames) < 1:
            raise ValueError(f"n_frames must be >= 1, got {n_frames}")
        super().__init__(path, batch_size=batch_size, device=device, truncate=truncate)
        self.n_frames = int(n_frames)
        self.dim = self._dim()
        self.id = weights_id(self.prefix, self.path, "" if self.n_frames == 1 else f"-mean{self.n_frames}")

    def _dim(self) -> int:
        return int(self.model.config.projection_dim)

    def _video(self, clips: torch.Tensor) -> torch.Tensor:
        x = self._frames(clips)
        n, k = x.shape[:2]
        e = _features(self.model.get_image_features(pixel_values=x.reshape(n * k, *x.shape[2:]))).float()
        e = e / e.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        return e.reshape(n, k, -1).mean(dim=1)

    def _text(self, texts: list[str]) -> torch.Tensor:
        return _features(self.model.get_text_features(**self._tokens(texts)))


class CLIPEmbedder(_ImageTextEmbedder):
    """CLIP image-text model (``transformers.CLIPModel``) from a local copy of ``openai/clip-vit-base-patch16``.

    Args:
        path: local directory (``config.json``, weights, tokenizer, ``preprocessor_config.json``).
        n_frames: frames per clip ``k`` (default 1). With ``k > 1`` the L2-normalized per-frame image embeddings
            are averaged over the clip (then re-normalized by :meth:`embed_video`).
        batch_size: clips/prompts per forward pass. device: torch device of the model.
        truncate: over-long prompts are truncated with a warning instead of raising :class:`PromptError`.

    Attributes:
        dim: ``config.projection_dim`` (512 for ViT-B/16). max_text_tokens: 77 (special tokens included).
        id: ``"clip-<dir name>-<config hash>"``, plus ``"-mean<k>"`` when ``k > 1``.

    Pixels: shortest-edge resize + center crop to 224 with the CLIP mean/std (from the processor config).

    Raises:
        MissingWeightsError: ``path`` missing or incomplete. ValueError: ``n_frames < 1``. PromptError: see
        :class:`BatchedEmbedder`.
    """

    repo = "openai/clip-vit-base-patch16"
    prefix = "clip"
    model_cls = "CLIPModel"


class SiglipEmbedder(_ImageTextEmbedder):
    """SigLIP image-text model (``transformers.SiglipModel``) from a local ``google/siglip-base-patch16-224``.

    Same arguments and pooling as :class:`CLIPEmbedder`. Text is padded to ``max_length`` (64 tokens), as SigLIP
    was trained (its text tower pools the last position). Pixels: plain resize to 224x224, mean = std = 0.5.
    ``dim`` = ``config.vision_config.hidden_size`` (768 for the base model; the paper's ``clip_img`` size).
    ``id``: ``"siglip-<dir name>-<config hash>"`` (+ ``"-mean<k>"``). The real tokenizer needs ``sentencepiece``.

    Raises:
        MissingWeightsError: ``path`` missing or incomplete. ImportError: ``sentencepiece`` missing for the
        tokenizer. ValueError: ``n_frames < 1``. PromptError: see :class:`BatchedEmbedder`.
    """

    repo = "google/siglip-base-patch16-224"
    prefix = "siglip"
    model_cls = "SiglipModel"
    default_mean = HALF
    default_std = HALF
    text_padding = "max_length"

    def _dim(self) -> int:
        return int(self.model.config.vision_config.hidden_size)


__all__ = ["XCLIPEmbedder", "CLIPEmbedder", "SiglipEmbedder", "check_model_dir", "weights_id", "read_pixel_config",
           "prepare_pixels"]
