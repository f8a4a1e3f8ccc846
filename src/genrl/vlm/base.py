"""The one interface every video-language model (VLM) backend implements, and shared pre-processing.

An :class:`Embedder` maps clips of ``n_frames`` RGB frames and text prompts into one ``dim``-dimensional space,
both L2-normalized (paper section 3; official ``tools/genrl_utils.py`` ``ViCLIPGlobalInstance``). Downstream code reads
``dim`` and ``n_frames`` from the embedder and never assumes 512 or 8.

Usage::

    from genrl.vlm import make_embedder
    vlm = make_embedder("default")
    e_v = vlm.embed_video(frames)           # uint8 [N, k, H, W, 3] -> float32 [N, dim]
    e_t = vlm.embed_text(["walking"])       # -> float32 [1, dim]
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Longest text prompt accepted, in characters. Every text tower reads at most 256 tokens (MiniVLM 256, X-CLIP/CLIP
# 77, SigLIP 64, InternVideo2 40), i.e. about 1,000 characters of English; longer input is a mistake (a file pasted
# as the prompt), and WordPiece tokenizers turn words over 100 characters into one [UNK] token without a warning.
MAX_PROMPT_CHARS = 2000


class PromptError(ValueError):
    """A text or video prompt the embedder cannot use (empty text, too long, unreadable video...)."""


class MissingWeightsError(FileNotFoundError):
    """A backend's local weights/code path does not exist; the message says what to download and where."""


@runtime_checkable
class Embedder(Protocol):
    """A video-language model: clips and texts -> one shared, L2-normalized embedding space.

    Attributes:
        id: stable string naming the model *and its weights*; keys cached dataset embeddings.
        n_frames: frames per clip ``k`` (1 for image-language models).
        dim: embedding size.
        max_text_tokens: the text tower's token limit (``None`` when unlimited).
    """

    id: str
    n_frames: int
    dim: int
    max_text_tokens: int | None

    def embed_video(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 ``[N, k, H, W, 3]`` RGB clips -> float32 ``[N, dim]`` on the CPU, L2-normalized."""
        ...

    def embed_text(self, texts: Sequence[str]) -> torch.Tensor:
        """``N`` prompts -> float32 ``[N, dim]`` on the CPU, L2-normalized. Raises :class:`PromptError`."""
        ...


def l2_normalize(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Divide the last dimension by its L2 norm (float32 out)."""
    x = x.float()
    return x / x.norm(dim=-1, keepdim=True).clamp_min(eps)


def check_texts(texts: Sequence[str] | str, max_tokens: int | None = None,
                count_tokens: Callable[[str], int] | None = None, truncate: bool = False) -> list[str]:
    """Validate prompts: a list of non-empty, valid UTF-8 strings of at most :data:`MAX_PROMPT_CHARS` characters,
    each within the model's token limit.

    Args:
        texts: the prompts (a single ``str`` is refused, to avoid embedding it character by character).
        max_tokens: the text tower's limit, counted by ``count_tokens``; ``None`` = unlimited.
        truncate: ``False`` (default) raises on a prompt over ``max_tokens``; ``True`` warns (saying how many
            tokens are kept) and lets the backend's tokenizer truncate it to ``max_tokens``. Prompts over
            :data:`MAX_PROMPT_CHARS` characters are refused either way.

    Returns:
        The prompts with surrounding whitespace stripped.

    Raises:
        PromptError: not a list of strings, an empty/whitespace-only prompt, one that is not valid UTF-8 (a
            command-line argument of undecodable bytes arrives as a str with lone surrogates), one over
            :data:`MAX_PROMPT_CHARS` characters, or one over ``max_tokens`` (without ``truncate``).
    """
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise PromptError(f"text prompts must be a list of strings, got {type(texts).__name__}")
    if len(texts) == 0:
        raise PromptError("no text prompts given (empty list)")
    out = []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise PromptError(f"text prompt {i} is a {type(text).__name__}, expected str")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise PromptError(f"text prompt {i} is not valid UTF-8 ({text[:60]!r}); pass the prompt as UTF-8 "
                              "text") from None
        text = text.strip()
        if not text:
            raise PromptError(f"text prompt {i} is empty or whitespace only")
        if len(text) > MAX_PROMPT_CHARS:
            raise PromptError(f"text prompt {i} has {len(text)} characters, over the limit of {MAX_PROMPT_CHARS} "
                              f"({text[:60]!r}...); shorten it")
        if max_tokens is not None and count_tokens is not None:
            n = count_tokens(text)
            if n > max_tokens:
                if not truncate:
                    raise PromptError(f"text prompt {i} has {n} tokens, over this model's limit of {max_tokens} "
                                      f"({text[:60]!r}...); shorten it or pass truncate=True")
                warnings.warn(f"text prompt {i} has {n} tokens; truncated to {max_tokens}: the model reads only its "
                              f"first {max_tokens} tokens", stacklevel=2)
        out.append(text)
    return out


def check_clips(frames: np.ndarray | torch.Tensor, n_frames: int) -> torch.Tensor:
    """Validate a batch of clips and return it as a uint8 torch tensor ``[N, k, H, W, 3]``.

    Raises:
        PromptError: wrong dtype, rank, frame count or channel count.
    """
    if isinstance(frames, np.ndarray):
        frames = torch.from_numpy(np.ascontiguousarray(frames))
    if not isinstance(frames, torch.Tensor):
        raise PromptError(f"clips must be a numpy array or torch tensor, got {type(frames).__name__}")
    if frames.dtype != torch.uint8:
        raise PromptError(f"clips must be uint8 RGB in [0, 255], got dtype {frames.dtype}")
    if frames.ndim != 5 or frames.shape[-1] != 3:
        raise PromptError(f"clips must have shape [N, k, H, W, 3], got {tuple(frames.shape)}")
    if frames.shape[1] != n_frames:
        raise PromptError(f"this model embeds clips of k={n_frames} frames, got {frames.shape[1]} "
                          f"(shape {tuple(frames.shape)})")
    if frames.shape[0] == 0:
        raise PromptError("no clips given (N = 0)")
    return frames


def resize_frames(frames: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """uint8 ``[M, H, W, 3]`` -> float32 ``[M, 3, h, w]`` in [0, 1], bilinear (antialiased when shrinking).

    Upsampling matches torchvision's ``Resize(size, bilinear)`` on float tensors (official
    ``ViCLIPGlobalInstance.instantiate``: 64 -> 224).
    """
    h, w = (size, size) if isinstance(size, int) else size
    x = frames.permute(0, 3, 1, 2).float().div_(255.0)
    if x.shape[-2:] == (h, w):
        return x
    shrink = h < x.shape[-2] or w < x.shape[-1]
    return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=shrink).clamp_(0, 1)


def normalize_image(x: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN,
                    std: Sequence[float] = IMAGENET_STD) -> torch.Tensor:
    """``(x - mean) / std`` per channel for float ``[..., 3, H, W]`` in [0, 1]."""
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x - m) / s


def pick_frames(n_available: int, k: int) -> np.ndarray:
    """Indices of ``k`` frames spread evenly over ``n_available`` (first and last included; repeats if short)."""
    if n_available < 1:
        raise PromptError("the video has no frames")
    return np.linspace(0, n_available - 1, k).round().astype(np.int64)


def load_video_prompt(path: str | Path, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Read an mp4/gif (any length and size) and pick ``k`` evenly spaced frames.

    Returns:
        ``(frames uint8 [k, H, W, 3], indices int64 [k])`` — the indices say which frames were used.

    Raises:
        FileNotFoundError: no such file. PromptError: unreadable or empty video.
    """
    import imageio.v3 as iio

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video prompt {path} does not exist")
    try:
        video = iio.imread(path)
    except Exception as err:  # imageio raises many types for bad files
        raise PromptError(f"cannot read video prompt {path}: {err}") from err
    video = np.asarray(video)
    if video.ndim == 3:  # a single image
        video = video[None]
    if video.ndim != 4 or video.shape[-1] not in (3, 4):
        raise PromptError(f"video prompt {path}: expected frames [T, H, W, 3], got shape {video.shape}")
    video = video[..., :3]
    if video.dtype != np.uint8:
        video = np.clip(video, 0, 255).astype(np.uint8)
    idx = pick_frames(len(video), k)
    return np.ascontiguousarray(video[idx]), idx


def sliding_clips(frames: np.ndarray, k: int, starts: np.ndarray | None = None) -> np.ndarray:
    """Clips of ``k`` frames *ending* at each step t (official ``envs/main.py`` ``ViClipWrapper.process_episode``),
    edge-padded at the start.

    Args:
        frames: uint8 ``[T, H, W, 3]`` (one episode).
        starts: optional subset of end steps ``t``; default all ``0..T-1``.

    Returns:
        uint8 ``[len(starts), k, H, W, 3]``. For ``t < k - 1`` the missing frames before the episode start are
        copies of frame 0 (the official code stores zero vectors there instead; see ``genrl.vlm.embed``).
    """
    T = len(frames)
    ends = np.arange(T) if starts is None else np.asarray(starts)
    idx = ends[:, None] + np.arange(-k + 1, 1)[None, :]
    return frames[np.clip(idx, 0, T - 1)]


class BatchedEmbedder:
    """Base class: batching, validation and normalization around two backend hooks.

    Subclasses set ``id``, ``n_frames``, ``dim``, ``max_text_tokens`` and implement ``_video(clips uint8
    [n, k, H, W, 3]) -> [n, dim]`` and ``_text(list[str]) -> [n, dim]``; optionally ``_count_tokens(text)``.
    """

    id: str = ""
    n_frames: int = 1
    dim: int = 0
    max_text_tokens: int | None = None

    def __init__(self, batch_size: int = 64, device: str | torch.device = "cpu", truncate: bool = False):
        self.batch_size = int(batch_size)
        self.device = torch.device(device)
        self.truncate = truncate

    def _count_tokens(self, text: str) -> int:  # pragma: no cover - overridden by token-limited backends
        return 0

    def _video(self, clips: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _text(self, texts: list[str]) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def embed_video(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 ``[N, k, H, W, 3]`` -> float32 ``[N, dim]`` (CPU, L2-normalized). Raises :class:`PromptError`."""
        clips = check_clips(frames, self.n_frames)
        out = [self._video(clips[i:i + self.batch_size]).float().cpu() for i in range(0, len(clips), self.batch_size)]
        return l2_normalize(torch.cat(out))

    @torch.no_grad()
    def embed_text(self, texts: Sequence[str]) -> torch.Tensor:
        """``N`` prompts -> float32 ``[N, dim]`` (CPU, L2-normalized). Raises :class:`PromptError`."""
        texts = check_texts(texts, self.max_text_tokens, self._count_tokens, self.truncate)
        out = [self._text(texts[i:i + self.batch_size]).float().cpu() for i in range(0, len(texts), self.batch_size)]
        return l2_normalize(torch.cat(out))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, n_frames={self.n_frames}, dim={self.dim})"
