"""InternVideo2-Stage2-1B, the paper's video-language model, through the official InternVideo2 code.

The model code is not re-implemented: the user supplies the ``InternVideo2/multi_modality`` folder of the official
InternVideo repository (or GenRL's copy under ``third_party/InternVideo``) and the stage-2 checkpoint, and this
adapter loads them the way the official GenRL does (``tools/genrl_utils.py``
``ViCLIPGlobalInstance.instantiate``): the demo config ``demo/internvideo2_stage2_config.py`` with 8 frames
(temporal position embeddings interpolated from 4 at load), ``setup_internvideo2`` and the ``InternVideo2_Stage2``
model of ``demo/small_utils.py`` (GenRL) or ``demo/utils.py`` (upstream), fp32.

Setup::

    git clone https://github.com/OpenGVLab/InternVideo            # code: InternVideo/InternVideo2/multi_modality
    huggingface-cli download OpenGVLab/InternVideo2-Stage2_1B-224p-f4 InternVideo2-stage2_1b-224p-f4.pt \\
        --local-dir models                                         # gated: accept the licence on the HF page
    huggingface-cli download bert-large-uncased --local-dir models/bert-large-uncased   # text tower init/tokenizer
    pip install flash_attn einops timm                             # flash_attn is imported even in fp32

    vlm = InternVideo2Embedder("InternVideo/InternVideo2/multi_modality", "models/InternVideo2-stage2_1b-224p-f4.pt",
                               bert_path="models/bert-large-uncased", device="cuda")
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from genrl.data.dataset import INTERNVIDEO2_ID
from genrl.vlm.base import IMAGENET_MEAN, IMAGENET_STD, BatchedEmbedder, MissingWeightsError, normalize_image, \
    resize_frames

HF_REPO = "OpenGVLab/InternVideo2-Stage2_1B-224p-f4"
CHECKPOINT_NAME = "InternVideo2-stage2_1b-224p-f4.pt"
CODE_REPO = "https://github.com/OpenGVLab/InternVideo"
N_FRAMES = 8
IMAGE_SIZE = 224
DIM = 512
MAX_TEXT_TOKENS = 40


def preprocess_clips(clips: torch.Tensor, size: int = IMAGE_SIZE) -> torch.Tensor:
    """uint8 ``[N, k, H, W, 3]`` RGB -> float32 ``[N, k, 3, size, size]`` as InternVideo2 expects.

    ``x / 255``, bilinear resize to ``size`` x ``size`` (no crop), then ImageNet ``(x - mean) / std`` (official
    ``tools/genrl_utils.py`` ``ViCLIPGlobalInstance.instantiate`` ``preprocess_transf``).
    """
    n, k = clips.shape[:2]
    x = resize_frames(clips.reshape(n * k, *clips.shape[2:]), size)
    x = normalize_image(x, IMAGENET_MEAN, IMAGENET_STD)
    return x.reshape(n, k, 3, size, size)


def _missing(what: str, path: Path, how: str) -> MissingWeightsError:
    return MissingWeightsError(f"InternVideo2: {what} not found at {path}. {how}")


def check_internvideo2_files(code_dir: str | Path, checkpoint: str | Path) -> tuple[Path, Path]:
    """Check the official code folder and the checkpoint file exist.

    Returns:
        ``(code_dir, checkpoint)`` as paths.

    Raises:
        MissingWeightsError: ``code_dir`` is not the ``InternVideo2/multi_modality`` folder (it must contain
            ``demo/internvideo2_stage2_config.py`` and ``models/``), or ``checkpoint`` is not a file; the message
            says what to download from where and where to put it.
    """
    code_dir, checkpoint = Path(code_dir).expanduser(), Path(checkpoint).expanduser()
    config = code_dir / "demo" / "internvideo2_stage2_config.py"
    if not config.is_file() or not (code_dir / "models").is_dir():
        raise _missing("the official code (demo/internvideo2_stage2_config.py and models/)", code_dir,
                       f"Clone {CODE_REPO} (or use GenRL's third_party/InternVideo) and pass the folder "
                       f"InternVideo/InternVideo2/multi_modality as code_dir.")
    if not checkpoint.is_file():
        raise _missing("the stage-2 checkpoint", checkpoint,
                       f"Download {CHECKPOINT_NAME} from the gated Hugging Face repo {HF_REPO} (accept its licence "
                       f"first):  huggingface-cli download {HF_REPO} {CHECKPOINT_NAME} --local-dir "
                       f"{checkpoint.parent}  and pass that file as checkpoint.")
    return code_dir, checkpoint


def _import_official(code_dir: Path):
    """Import ``(Config, eval_dict_leaf, setup_internvideo2)`` from the official code (GenRL fork or upstream).

    Raises:
        ImportError: a package the official code imports is missing (``flash_attn``, ``einops``, ``timm``...);
            the message names it and how to install it.
    """
    added = [p for p in (str(code_dir / "demo"), str(code_dir)) if p not in sys.path]
    for p in added:
        sys.path.insert(0, p)
    try:
        if (code_dir / "demo" / "small_utils.py").is_file():  # GenRL's copy
            from small_config import Config, eval_dict_leaf  # type: ignore[import-not-found]
            from small_utils import setup_internvideo2  # type: ignore[import-not-found]
        else:  # upstream InternVideo
            from demo.config import Config, eval_dict_leaf  # type: ignore[import-not-found]
            from demo.utils import setup_internvideo2  # type: ignore[import-not-found]
    except ImportError as err:
        for p in added:
            sys.path.remove(p)
        name = getattr(err, "name", None) or str(err)
        hint = (" flash_attn is imported unconditionally by the official code (flash_attention_class.py) even "
                "though GenRL runs it in fp32 without flash attention: install it (pip install flash_attn "
                "--no-build-isolation, needs CUDA) or stub the module.") if "flash" in str(name) else ""
        raise ImportError(f"InternVideo2: the official code in {code_dir} could not be imported because "
                          f"{name!r} is missing ({err}). Install the packages of InternVideo2/multi_modality's "
                          f"requirements (e.g. pip install einops timm flash_attn).{hint}") from err
    return Config, eval_dict_leaf, setup_internvideo2


class InternVideo2Embedder(BatchedEmbedder):
    """InternVideo2-Stage2-1B via the official code: 8-frame clips and text -> 512-d.

    Args:
        code_dir: the official ``InternVideo2/multi_modality`` folder.
        checkpoint: ``InternVideo2-stage2_1b-224p-f4.pt``.
        batch_size: clips/prompts per forward pass (8: the 1B ViT is heavy). device: torch device.
        truncate: ``True`` truncates prompts over 40 tokens (as the official code silently does) with a warning;
            ``False`` (default) raises :class:`PromptError`.
        bert_path: optional local ``bert-large-uncased`` directory for the text tower's tokenizer/initialization;
            default: the official config's ``bert-large-uncased`` from the Hugging Face cache (offline).

    Attributes:
        id: :data:`genrl.data.dataset.INTERNVIDEO2_ID` (the key of the official ``clip_video`` embeddings).
        n_frames: 8. dim: 512. max_text_tokens: 40 (``[CLS]``/``[SEP]`` included, ``max_txt_l``).

    ``embed_video``: uint8 ``[N, 8, H, W, 3]`` -> :func:`preprocess_clips` -> ``get_vid_features`` -> float32
    ``[N, 512]``. ``embed_text``: ``get_txt_feat`` per prompt (padded/truncated to 40) -> float32 ``[N, 512]``.

    Raises:
        MissingWeightsError: code or checkpoint missing. ImportError: a dependency of the official code missing.
        PromptError: see :class:`BatchedEmbedder`.
    """

    id = INTERNVIDEO2_ID
    n_frames = N_FRAMES
    dim = DIM
    max_text_tokens = MAX_TEXT_TOKENS

    def __init__(self, code_dir: str | Path, checkpoint: str | Path, batch_size: int = 8,
                 device: str | torch.device = "cpu", truncate: bool = False, bert_path: str | Path | None = None):
        super().__init__(batch_size=batch_size, device=device, truncate=truncate)
        self.code_dir, self.checkpoint = check_internvideo2_files(code_dir, checkpoint)
        if bert_path is not None and not Path(bert_path).is_dir():
            raise MissingWeightsError(f"InternVideo2: bert_path {bert_path} does not exist; download it with  "
                                      f"huggingface-cli download bert-large-uncased --local-dir {bert_path}")
        Config, eval_dict_leaf, setup_internvideo2 = _import_official(self.code_dir)
        config = eval_dict_leaf(Config.from_file(str(self.code_dir / "demo" / "internvideo2_stage2_config.py")))
        config.model.vision_encoder.num_frames = N_FRAMES  # official: 4 -> 8, pos. embeddings interpolated at load
        config.num_frames = N_FRAMES
        config.num_frames_test = N_FRAMES
        config.model.text_encoder.config = str(self.code_dir / config.model.text_encoder.config)
        if bert_path is not None:
            config.model.text_encoder.pretrained = str(Path(bert_path).expanduser())
        config.pretrained_path = str(self.checkpoint)
        config.model.vision_encoder.pretrained = str(self.checkpoint)
        config.device = str(self.device)
        try:
            model, tokenizer = setup_internvideo2(config)
        except OSError as err:  # e.g. bert-large-uncased not in the offline Hugging Face cache
            raise MissingWeightsError(
                f"InternVideo2: loading failed ({err}). The text tower needs bert-large-uncased locally: "
                f"huggingface-cli download bert-large-uncased --local-dir models/bert-large-uncased  and pass "
                f"bert_path='models/bert-large-uncased'.") from err
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer

    def _count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text)["input_ids"])

    def _video(self, clips: torch.Tensor) -> torch.Tensor:
        x = preprocess_clips(clips).to(self.device)
        return self.model.get_vid_features(x).reshape(len(clips), -1)

    def _text(self, texts: list[str]) -> torch.Tensor:
        return torch.cat([self.model.get_txt_feat(t).reshape(1, -1) for t in texts])


__all__ = ["InternVideo2Embedder", "preprocess_clips", "check_internvideo2_files", "HF_REPO", "CODE_REPO"]
