"""Tests of the transformers backends (X-CLIP, CLIP, SigLIP) on tiny random models, and InternVideo2's error paths.

Every model is built here from a tiny random config and a locally built tokenizer (no download), saved with
``save_pretrained`` and loaded back through the backend class, once per module.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys

import numpy as np
import pytest
import torch

from genrl.data.dataset import INTERNVIDEO2_ID
from genrl.vlm.base import IMAGENET_MEAN, IMAGENET_STD, MissingWeightsError, PromptError
from genrl.vlm.hf import CLIP_MEAN, CLIP_STD, CLIPEmbedder, SiglipEmbedder, XCLIPEmbedder, prepare_pixels, \
    read_pixel_config, weights_id
from genrl.vlm.internvideo2 import InternVideo2Embedder, preprocess_clips

transformers = pytest.importorskip("transformers")

LETTERS = "abcdefghijklmnopqrstuvwxyz"
SMALL = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2)
SAFE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+=-]{0,199}$")
LONG_TEXT = "a robot walking fast " * 8


def clip_tokenizer():
    """A character-level CLIP BPE tokenizer (no merges); ``<|endoftext|>`` has the highest id, as in CLIP."""
    vocab = {"<|startoftext|>": 0}
    for c in LETTERS:
        vocab[c] = len(vocab)
    for c in LETTERS:
        vocab[c + "</w>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return transformers.CLIPTokenizer(vocab=vocab, merges=[]), len(vocab)


def bpe_tokenizer():
    """A tiny BPE trained on a few sentences, ``</s>`` appended (SigLIP style), wrapped in a fast tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=80, special_tokens=["<pad>", "</s>", "<unk>"])
    tok.train_from_iterator([LETTERS, "a robot walking fast", "standing up", "doing flips", "running"], trainer)
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", pad_token="<pad>",
                                                unk_token="<unk>")
    return fast, tok.get_vocab_size()


def save(path, model, tokenizer, preprocessor):
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    (path / "preprocessor_config.json").write_text(json.dumps(preprocessor))
    return path


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    """Tiny X-CLIP, CLIP and SigLIP models saved to disk: ``{"xclip": path, "clip": path, "siglip": path}``."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("vlm")
    tok, v = clip_tokenizer()
    text = dict(SMALL, vocab_size=v, max_position_embeddings=24, bos_token_id=0, eos_token_id=v - 1,
                pad_token_id=v - 1)
    vision = dict(SMALL, image_size=32, patch_size=16)
    xclip = transformers.XCLIPModel(transformers.XCLIPConfig(
        text_config=text, vision_config=dict(vision, num_frames=8, mit_hidden_size=16, mit_intermediate_size=20,
                                             mit_num_attention_heads=2),
        projection_dim=16, prompt_layers=1, prompt_num_attention_heads=2))
    clip = transformers.CLIPModel(transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=16))
    stok, sv = bpe_tokenizer()
    siglip = transformers.SiglipModel(transformers.SiglipConfig(
        text_config=dict(SMALL, vocab_size=sv, max_position_embeddings=24, pad_token_id=0, eos_token_id=1),
        vision_config=vision))
    return {
        "xclip": save(root / "xclip-tiny", xclip, tok, {
            "size": 32, "crop_size": 32, "do_center_crop": True, "image_mean": list(IMAGENET_MEAN),
            "image_std": list(IMAGENET_STD), "feature_extractor_type": "VideoMAEFeatureExtractor"}),
        "clip": save(root / "clip-tiny", clip, tok, {
            "size": {"shortest_edge": 32}, "crop_size": {"height": 32, "width": 32}, "do_center_crop": True,
            "image_mean": list(CLIP_MEAN), "image_std": list(CLIP_STD)}),
        "siglip": save(root / "siglip-tiny", siglip, stok, {
            "size": {"height": 32, "width": 32}, "image_mean": [0.5] * 3, "image_std": [0.5] * 3}),
    }


CLASSES = {"xclip": XCLIPEmbedder, "clip": CLIPEmbedder, "siglip": SiglipEmbedder}
REPOS = {"xclip": "microsoft/xclip-base-patch32", "clip": "openai/clip-vit-base-patch16",
         "siglip": "google/siglip-base-patch16-224"}


@pytest.fixture(scope="module")
def embedders(dirs):
    """Each backend loaded once from its directory (batch size 16)."""
    return {name: cls(dirs[name], batch_size=16) for name, cls in CLASSES.items()}


def clips(n, k, seed=0, size=20):
    return np.random.default_rng(seed).integers(0, 256, size=(n, k, size, size, 3), dtype=np.uint8)


def unit_rows(x, dim):
    assert x.dtype == torch.float32 and x.shape[1] == dim
    assert torch.allclose(x.norm(dim=-1), torch.ones(len(x)), atol=1e-5)


@pytest.mark.parametrize("name", list(CLASSES))
def test_attributes_and_shapes(embedders, name):
    emb = embedders[name]
    assert (emb.n_frames, emb.dim) == {"xclip": (8, 16), "clip": (1, 16), "siglip": (1, 32)}[name]
    assert emb.max_text_tokens == 24
    assert emb.id.startswith(f"{name}-{name}-tiny-") and SAFE_ID.match(emb.id)
    v = emb.embed_video(clips(3, emb.n_frames))
    t = emb.embed_text(["walking", "doing flips"])
    unit_rows(v, emb.dim)
    unit_rows(t, emb.dim)
    assert v.shape[0] == 3 and t.shape[0] == 2
    if name == "siglip":  # trained with max-length padding and no attention mask
        assert set(emb._tokens(["walking"])) == {"input_ids"}
        assert emb._tokens(["walking"])["input_ids"].shape == (1, 24)


@pytest.mark.parametrize("name", list(CLASSES))
def test_batching_and_distinct_inputs(embedders, name):
    emb = embedders[name]
    x = clips(5, emb.n_frames, seed=1)
    texts = ["walking", "running", "standing up", "doing flips", "a robot walking fast"]
    big_v, big_t = emb.embed_video(x), emb.embed_text(texts)
    emb.batch_size = 2
    try:
        small_v, small_t = emb.embed_video(x), emb.embed_text(texts)
    finally:
        emb.batch_size = 16
    assert torch.allclose(big_v, small_v, atol=1e-5) and torch.allclose(big_t, small_t, atol=1e-5)
    assert not torch.allclose(big_v[0], big_v[1], atol=1e-4)
    assert not torch.allclose(big_t[0], big_t[1], atol=1e-4)


@pytest.mark.parametrize("name", list(CLASSES))
def test_prompt_errors(embedders, name):
    emb = embedders[name]
    with pytest.raises(PromptError, match="empty"):
        emb.embed_text(["walking", "  "])
    with pytest.raises(PromptError, match="limit of 24"):
        emb.embed_text([LONG_TEXT])
    with pytest.raises(PromptError, match="frames"):
        emb.embed_video(clips(1, emb.n_frames + 1))
    emb.truncate = True
    try:
        with pytest.warns(UserWarning, match="truncated"):
            unit_rows(emb.embed_text([LONG_TEXT]), emb.dim)
    finally:
        emb.truncate = False


@pytest.mark.parametrize("name", list(CLASSES))
def test_missing_weights(tmp_path, name):
    with pytest.raises(MissingWeightsError, match=re.escape(REPOS[name])) as info:
        CLASSES[name](tmp_path / "nowhere")
    assert "huggingface-cli download" in str(info.value) and "nowhere" in str(info.value)
    (tmp_path / "config.json").write_text("{}")  # incomplete: no weights, no tokenizer
    with pytest.raises(MissingWeightsError, match="weights"):
        CLASSES[name](tmp_path)


@pytest.mark.parametrize("name", ["clip", "siglip"])
def test_image_models_mean_pool_frames(dirs, embedders, name):
    single = embedders[name]
    pooled = CLASSES[name](dirs[name], n_frames=4)
    assert pooled.n_frames == 4 and pooled.id == single.id + "-mean4"
    x = clips(2, 4, seed=2)
    per_frame = single.embed_video(x.reshape(8, 1, *x.shape[2:])).reshape(2, 4, -1)
    expected = per_frame.mean(dim=1)
    expected = expected / expected.norm(dim=-1, keepdim=True)
    assert torch.allclose(pooled.embed_video(x), expected, atol=1e-5)


def test_weights_id_follows_config(tmp_path):
    (tmp_path / "config.json").write_text('{"a": 1}')
    first = weights_id("clip", tmp_path)
    assert first == weights_id("clip", tmp_path) and SAFE_ID.match(first)
    (tmp_path / "config.json").write_text('{"a": 2}')
    assert weights_id("clip", tmp_path) != first


def test_pixel_config_and_crop(tmp_path):
    pix = read_pixel_config(tmp_path, 24, (0.5,) * 3, (0.5,) * 3)  # no processor file: model defaults
    assert pix["resize"] == (24, 24) and pix["crop"] is None and pix["mean"] == (0.5,) * 3
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"size": 32, "crop_size": 32,
                                                                   "do_center_crop": True}))
    pix = read_pixel_config(tmp_path, 24, (0.5,) * 3, (0.5,) * 3)
    assert pix["shortest_edge"] == 32 and pix["crop"] == (32, 32)
    out = prepare_pixels(torch.full((2, 40, 80, 3), 255, dtype=torch.uint8), pix)  # wide: resize 32x64, crop
    assert out.shape == (2, 3, 32, 32) and torch.allclose(out, torch.ones_like(out))


# ----------------------------------------------------------------------------------------------- InternVideo2


def test_internvideo2_preprocessing_by_hand():
    x = torch.from_numpy(clips(2, 8, seed=3, size=64))
    out = preprocess_clips(x)
    assert out.shape == (2, 8, 3, 224, 224) and out.dtype == torch.float32
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    src = x[1, 5].float() / 255  # [64, 64, 3]
    assert torch.allclose(out[1, 5, :, 0, 0], (src[0, 0] - mean) / std, atol=1e-5)  # corner = source corner
    # output pixel 112 -> source coordinate (112 + 0.5) * 64 / 224 - 0.5 = 31.642857 (align_corners=False)
    w = (112 + 0.5) * 64 / 224 - 0.5 - 31
    row = (1 - w) * src[31] + w * src[32]
    pixel = (1 - w) * row[31] + w * row[32]
    assert torch.allclose(out[1, 5, :, 112, 112], (pixel - mean) / std, atol=1e-5)


def test_internvideo2_missing_files(tmp_path):
    assert InternVideo2Embedder.id == INTERNVIDEO2_ID
    assert (InternVideo2Embedder.n_frames, InternVideo2Embedder.dim, InternVideo2Embedder.max_text_tokens) == (8, 512,
                                                                                                              40)
    with pytest.raises(MissingWeightsError, match="github.com/OpenGVLab/InternVideo"):
        InternVideo2Embedder(tmp_path / "code", tmp_path / "ckpt.pt")
    code = tmp_path / "multi_modality"
    (code / "demo").mkdir(parents=True)
    (code / "models").mkdir()
    (code / "demo" / "internvideo2_stage2_config.py").write_text("num_frames = 4\n")
    with pytest.raises(MissingWeightsError, match="OpenGVLab/InternVideo2-Stage2_1B-224p-f4"):
        InternVideo2Embedder(code, tmp_path / "ckpt.pt")


@pytest.mark.skipif(importlib.util.find_spec("flash_attn") is not None, reason="flash_attn is installed")
def test_internvideo2_missing_dependency(tmp_path):
    code = tmp_path / "multi_modality"
    (code / "demo").mkdir(parents=True)
    (code / "models").mkdir()
    (code / "demo" / "internvideo2_stage2_config.py").write_text("num_frames = 4\n")
    (code / "demo" / "small_config.py").write_text("Config = eval_dict_leaf = None\n")
    (code / "demo" / "small_utils.py").write_text("from flash_attn import flash_attn_func\n")
    (tmp_path / "ckpt.pt").write_bytes(b"")
    before = list(sys.path)
    with pytest.raises(ImportError, match="flash_attn"):
        InternVideo2Embedder(code, tmp_path / "ckpt.pt")
    assert sys.path == before
    sys.modules.pop("small_config", None)
