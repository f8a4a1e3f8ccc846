"""The VLM interface helpers, the MiniVLM (model, training, resume), dataset embedding and evaluation."""

from __future__ import annotations

import dataclasses
import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from genrl.data.collect import collect
from genrl.data.dataset import Dataset
from genrl.utils.runtime import ResumeMismatchError
from genrl.vlm import PromptError, make_embedder
from genrl.vlm.base import check_texts, load_video_prompt, pick_frames, resize_frames, sliding_clips
from genrl.vlm.clips import build_clips, is_heldout
from genrl.vlm.config import minivlm_preset
from genrl.vlm.embed import embed_dataset, embed_episode
from genrl.vlm.evaluate import PARAPHRASES, evaluate_vlm
from genrl.vlm.minivlm import WEIGHTS_DIR, MiniVLM, MiniVLMEmbedder, load_minivlm, save_minivlm
from genrl.vlm.train_minivlm import MiniVLMTrainConfig, multi_positive_infonce, train_minivlm

TINY = minivlm_preset("tiny")


@pytest.fixture(scope="module")
def walker_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("vlmdata") / "walker"
    collect("walker", out, frames=1000, workers=1, experts_dir=out.parent / "none", progress=False)
    return out


def test_text_validation():
    assert check_texts(["  walking "]) == ["walking"]
    with pytest.raises(PromptError, match="empty"):
        check_texts(["ok", "   "])
    with pytest.raises(PromptError, match="list of strings"):
        check_texts("walking")
    with pytest.raises(PromptError, match="limit of 3"):
        check_texts(["a b c d"], max_tokens=3, count_tokens=lambda t: len(t.split()))
    with pytest.warns(UserWarning, match="truncated"):
        check_texts(["a b c d"], max_tokens=3, count_tokens=lambda t: len(t.split()), truncate=True)
    # invalid UTF-8 on the command line arrives as lone surrogates (os.fsdecode): a one-line PromptError
    bad = b"walk \xff fast".decode("utf-8", "surrogateescape")
    with pytest.raises(PromptError, match="text prompt 0 is not valid UTF-8") as err:
        check_texts([bad])
    assert "\n" not in str(err.value)
    from genrl.vlm.base import MAX_PROMPT_CHARS
    assert check_texts(["x" * MAX_PROMPT_CHARS]) == ["x" * MAX_PROMPT_CHARS]
    with pytest.raises(PromptError, match=f"has 100000 characters, over the limit of {MAX_PROMPT_CHARS}"):
        check_texts(["x" * 100_000], max_tokens=3, count_tokens=len, truncate=True)
    with pytest.warns(UserWarning, match="reads only its first 3 tokens"):
        check_texts(["a b c d"], max_tokens=3, count_tokens=lambda t: len(t.split()), truncate=True)


def test_frames_helpers(tmp_path):
    frames = np.arange(5, dtype=np.uint8)[:, None, None, None] * np.ones((5, 2, 2, 3), np.uint8)
    clips = sliding_clips(frames, 3)
    assert clips.shape == (5, 3, 2, 2, 3)
    assert clips[0, :, 0, 0, 0].tolist() == [0, 0, 0]  # edge-padded with frame 0
    assert clips[4, :, 0, 0, 0].tolist() == [2, 3, 4]  # window ending at t
    assert pick_frames(100, 8).tolist() == [0, 14, 28, 42, 57, 71, 85, 99]
    assert pick_frames(3, 5).tolist() == [0, 0, 1, 2, 2]
    x = resize_frames(torch.full((2, 8, 8, 3), 255, dtype=torch.uint8), 16)
    assert x.shape == (2, 3, 16, 16) and torch.allclose(x, torch.ones_like(x))
    video = np.random.default_rng(0).integers(0, 255, (20, 24, 40, 3), dtype=np.uint8)
    iio.imwrite(tmp_path / "v.gif", video)
    got, idx = load_video_prompt(tmp_path / "v.gif", 8)
    assert got.shape == (8, 24, 40, 3) and idx.tolist() == pick_frames(20, 8).tolist()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_video_prompt(tmp_path / "missing.mp4", 8)
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    with pytest.raises(PromptError, match="cannot read"):
        load_video_prompt(tmp_path / "bad.mp4", 8)


def test_registry_errors(tmp_path):
    with pytest.raises(ValueError, match="valid names"):
        make_embedder("nope")
    with pytest.raises(ValueError, match="needs a local path"):
        make_embedder("xclip")
    with pytest.raises(FileNotFoundError, match="genrl vlm train"):
        make_embedder("default", str(tmp_path / "nothing"))


def test_infonce_prefers_aligned_pairs():
    torch.manual_seed(0)
    v = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    sig = torch.arange(8)
    scale = torch.tensor(np.log(10.0))
    aligned, top1 = multi_positive_infonce(v, v, sig, scale)
    shuffled, _ = multi_positive_infonce(v, v[torch.randperm(8)], sig, scale)
    assert top1.item() == 1.0 and aligned < shuffled
    # clips sharing a signature are positives: swapping texts within a group costs nothing extra
    sig2 = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    swap = torch.tensor([1, 0, 3, 2, 5, 4, 7, 6])
    a, _ = multi_positive_infonce(v, v, sig2, scale)
    b, _ = multi_positive_infonce(v, v[swap], sig2, scale)
    assert torch.allclose(a, b, atol=1e-5)


def test_minivlm_save_load_and_video_embeddings(tmp_path):
    torch.manual_seed(0)
    model = MiniVLM(TINY)
    save_minivlm(model, tmp_path / "w", half=False)
    emb = MiniVLMEmbedder(tmp_path / "w", batch_size=3)
    assert (emb.n_frames, emb.dim) == (4, 16) and emb.id.startswith("genrl-minivlm-")
    clips = np.random.default_rng(0).integers(0, 255, (7, 4, 64, 64, 3), dtype=np.uint8)
    e = emb.embed_video(clips)
    assert e.shape == (7, 16) and e.dtype == torch.float32
    assert torch.allclose(e.norm(dim=-1), torch.ones(7), atol=1e-5)
    assert not torch.allclose(e[0], e[1])
    big = MiniVLMEmbedder(tmp_path / "w", batch_size=64).embed_video(clips)
    assert torch.allclose(e, big, atol=1e-5)  # batching does not change results
    with pytest.raises(PromptError, match="k=4"):
        emb.embed_video(clips[:, :3])
    loaded, meta = load_minivlm(tmp_path / "w")
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    (tmp_path / "w" / "config.json").write_text(json.dumps({"config": {"dim": 99}}))
    with pytest.raises(ValueError, match="does not match"):
        load_minivlm(tmp_path / "w")


def test_clips_captions_and_rewards(walker_data):
    clips = build_clips([walker_data], k=4, stride=50, split="train", heldout_fraction=0.0, progress=False)
    assert clips.domains == ["walker"] and len(clips) > 10
    assert clips.clip_frames(np.arange(3)).shape == (3, 4, 64, 64, 3)
    assert all(len(c) >= 1 for c in clips.captions) and all(clips.texts)
    table = clips.rewards["walker"]
    assert table.shape == (len(clips), len(clips.task_names["walker"]))
    assert set(PARAPHRASES.values()).isdisjoint(clips.texts)
    names = Dataset(walker_data).names()
    assert all(not is_heldout(n, 0.0) for n in names) and all(is_heldout(n, 1.0) for n in names)


def test_train_loss_falls_and_resume_is_exact(walker_data, tmp_path, crash_after_save):
    def cfg(out, steps):
        return MiniVLMTrainConfig(datasets=[str(walker_data)], out=str(out), steps=steps, batch_size=16, lr=3e-3,
                                  warmup=1, stride=10, save_every=4, heldout=0.0, model=TINY)

    card = train_minivlm(cfg(tmp_path / "a", 40), progress=False)
    hist = [json.loads(x) for x in (tmp_path / "a" / "history.jsonl").read_text().splitlines()]
    assert hist[-1]["loss"] < hist[0]["loss"] and card["steps"] == 40
    import genrl.vlm.train_minivlm as tm

    with crash_after_save(tm, 8):
        train_minivlm(cfg(tmp_path / "b", 12), progress=False)
    assert not (tmp_path / "b" / "model.safetensors").exists()
    train_minivlm(cfg(tmp_path / "b", 12), progress=False)  # resumes from step 8
    train_minivlm(cfg(tmp_path / "c", 12), progress=False)
    other = cfg(tmp_path / "b", 16)
    other.model = dataclasses.replace(TINY, dim=8)
    with pytest.raises(ResumeMismatchError, match=r"holds a run with other settings: model\.dim=16 \(this run: 8\)"):
        train_minivlm(other, progress=False)
    wb, _ = load_minivlm(tmp_path / "b")
    wc, _ = load_minivlm(tmp_path / "c")
    for a, b in zip(wb.state_dict().values(), wc.state_dict().values()):
        assert torch.equal(a, b)


def test_embed_dataset_resumes(walker_data, tmp_path):
    torch.manual_seed(0)
    save_minivlm(MiniVLM(TINY), tmp_path / "w", half=False)
    vlm = MiniVLMEmbedder(tmp_path / "w")
    ds = Dataset(walker_data)
    first = embed_dataset(ds, vlm, progress=False)
    assert first["episodes"] == len(ds) and first["frames"] == ds.frames()
    name = ds.names()[0]
    arr = ds.load_embedding(vlm.id, name)
    assert arr.shape == (ds.length(name), 16) and arr.dtype == np.float16
    obs = ds.load(name)["observation"]
    still = np.repeat(obs[:1].transpose(0, 2, 3, 1)[None], 4, axis=1)  # clip of frame 0 only
    assert np.allclose(arr[0], vlm.embed_video(still)[0].numpy(), atol=2e-3)
    assert np.allclose(arr[10], embed_episode(obs[7:11], vlm)[-1], atol=2e-3)  # frames 7..10 end at t = 10
    again = embed_dataset(ds, vlm, progress=False)
    assert again["episodes"] == 0 and again["skipped"] == len(ds)


def test_evaluate_report(walker_data, tmp_path):
    torch.manual_seed(0)
    save_minivlm(MiniVLM(TINY), tmp_path / "w", half=False)
    report = evaluate_vlm(MiniVLMEmbedder(tmp_path / "w"), [str(walker_data)], n=40, top=5, stride=25,
                          heldout_fraction=1.0, progress=False)
    r = report["retrieval"]
    assert r["clips"] == 40 and 0 <= r["video_to_text_top1"] <= r["video_to_text_top5"] <= 1
    tasks = {row["task"] for row in report["table3_prompts"]}
    assert {"walker_walk", "walker_stand", "walker_run"} <= tasks
    for row in report["table3_prompts"]:
        assert row["mean_reward"] <= row["max_reward"] + 1e-6


def test_packaged_default_vlm_loads():
    vlm = make_embedder("default")
    meta = json.loads((WEIGHTS_DIR / "config.json").read_text())
    assert vlm.id == meta["id"] and (vlm.n_frames, vlm.dim) == (8, 256)
    clips = np.random.default_rng(0).integers(0, 255, (2, 8, 64, 64, 3), dtype=np.uint8)
    e = vlm.embed_video(clips)
    assert e.shape == (2, 256) and torch.allclose(e.norm(dim=-1), torch.ones(2), atol=1e-5)
