"""Connector, aligner, MFWM pre-training (checkpoint/resume/reports) and prompt decoding at the tiny preset."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genrl.app.cli import main
from genrl.data.dataset import DatasetError
from genrl.mfwm.aligner import Aligner, aligner_loss, lafite_noise
from genrl.mfwm.connector import Connector, chunk_embeddings
from genrl.mfwm.decode import decode_prompt, matching_embedder, prompt_embedding
from genrl.mfwm.pretrain import PretrainConfig, load_pretrained, pretrain
from genrl.utils.runtime import ResumeMismatchError
from genrl.vlm.minivlm import MiniVLMEmbedder
from genrl.worldmodel.config import preset


@pytest.fixture
def embedded(tiny_run):
    """A 2-episode walker dataset embedded with a tiny random MiniVLM (the session's ``tiny_run``; its ``mfwm``
    folder is not used here)."""
    return tiny_run


def test_chunk_embeddings_use_the_clip_ending_at_each_chunk():
    emb = torch.arange(10, dtype=torch.float32)[None, :, None]
    assert chunk_embeddings(emb, 4)[0, :, 0].tolist() == [3, 3, 3, 3, 7, 7, 7, 7, 9, 9]


def test_aligner_shapes_noise_and_learning():
    torch.manual_seed(0)
    al = Aligner(32)
    assert al.down[1].linear.out_features == 16  # bottleneck = half the embedding size
    e = F.normalize(torch.randn(64, 32), dim=-1)
    noisy = lafite_noise(e, 0.5)
    assert torch.allclose(noisy.norm(dim=-1), torch.ones(64), atol=1e-5)
    assert 0.3 < (noisy * e).sum(-1).mean() < 0.95
    assert torch.allclose(al(e).norm(dim=-1), torch.ones(64), atol=1e-5)
    opt = torch.optim.Adam(al.parameters(), 3e-3)
    first = aligner_loss(al, e).item()
    for _ in range(200):
        loss = aligner_loss(al, e)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first
    assert aligner_loss(al, torch.zeros(4, 32)).item() == 0.0  # zero padding rows are ignored


def test_connector_rollout_and_loss_falls():
    torch.manual_seed(0)
    cfg = preset("tiny")
    conn = Connector(cfg, embed_dim=16, n_frames=4)
    emb = F.normalize(torch.randn(3, 8, 16), dim=-1)
    states = conn.rollout(emb, sample=False)
    assert states["deter"].shape == (3, 8, cfg.deter) and states["stoch"].shape == (3, 8, cfg.stoch, cfg.discrete)
    target = torch.zeros(3, 8, cfg.stoch, cfg.discrete)
    target[..., 0] = 1.0  # a posterior that always picks class 0
    logit = torch.log(target * 0.99 + 0.01 / cfg.discrete)
    post = {"stoch": target, "logit": logit, "deter": torch.zeros(3, 8, cfg.deter)}
    opt = torch.optim.Adam(conn.parameters(), 3e-3)
    first, _ = conn.loss(post, emb)
    for _ in range(60):
        loss, metrics = conn.loss(post, emb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first.item() and metrics["connector_kl"] >= 0


def _cfg(root, vlm, out, steps, **kw):
    return PretrainConfig(dataset=str(root / "walker"), out=str(out), embedder_id=vlm.id, n_frames=vlm.n_frames,
                          preset="tiny", steps=steps, save_every=3, log_every=1, report_every=3, seed=0, **kw)


def test_pretrain_checkpoints_reports_and_exact_resume(embedded, tmp_path, crash_after_save):
    root, vlm = embedded
    last = pretrain(_cfg(root, vlm, tmp_path / "a", 6), progress=False)
    for key in ("image_loss", "model_kl", "connector_kl", "aligner_cosine_distance", "seconds_per_update"):
        assert np.isfinite(last[key])
    lines = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if "train/image_loss" in x] == [1, 2, 3, 4, 5, 6]
    assert (tmp_path / "a" / "reports" / "step_0000006.png").is_file()
    report = [x for x in lines if "report/openloop_mse" in x]
    assert report and 0 <= report[-1]["report/recon_mse"] <= 1

    import genrl.mfwm.pretrain as pt

    with crash_after_save(pt, 3):
        pretrain(_cfg(root, vlm, tmp_path / "b", 6), progress=False)
    pretrain(_cfg(root, vlm, tmp_path / "b", 6), progress=False)
    a, _ = load_pretrained(tmp_path / "a")
    b, _ = load_pretrained(tmp_path / "b")
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name
    steps = [json.loads(x)["step"] for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
             if "train/image_loss" in x]
    assert steps == [1, 2, 3, 4, 5, 6]  # the resumed log continues without duplicates


def test_nan_loss_stops_pretraining_and_keeps_the_last_good_checkpoint(embedded, tmp_path, monkeypatch):
    from genrl.mfwm.model import MFWM

    root, vlm = embedded
    real, calls = MFWM.train_step, []

    def nan_at_the_fifth_update(self, batch, opts):
        calls.append(1)
        if len(calls) == 5:
            raise FloatingPointError("world-model loss is nan")  # as train_step does, before any parameter change
        return real(self, batch, opts)

    monkeypatch.setattr(MFWM, "train_step", nan_at_the_fifth_update)
    with pytest.raises(FloatingPointError) as err:
        pretrain(_cfg(root, vlm, tmp_path / "n", 6), progress=False)
    ckpt = tmp_path / "n" / "checkpoint"
    assert str(err.value) == (f"pretrain: world-model loss is nan at step 4; stopping, the last good checkpoint in "
                              f"{ckpt} is kept (not overwritten)")
    assert json.loads((ckpt / "state.json").read_text())["step"] == 3


def test_pretrain_refuses_missing_embeddings_and_other_domains(embedded, tmp_path):
    root, vlm = embedded
    cfg = _cfg(root, vlm, tmp_path / "x", 1)
    cfg.embedder_id = "some-other-vlm"
    with pytest.raises(DatasetError, match="genrl embed"):
        pretrain(cfg, progress=False)
    pretrain(_cfg(root, vlm, tmp_path / "y", 1), progress=False)
    with pytest.raises(ResumeMismatchError, match=r"holds a run with other settings: world_model\.deter="):
        pretrain(_cfg(root, vlm, tmp_path / "y", 2, overrides={"deter": 48}), progress=False)


def test_decode_prompts(embedded, tmp_path, shared_dir, monkeypatch, capsys):
    root, vlm = embedded
    pretrain(_cfg(root, vlm, tmp_path / "run", 2), progress=False)
    model, cfg = load_pretrained(tmp_path / "run")
    emb, info = prompt_embedding(vlm, prompt="lying on the back")
    frames = decode_prompt(model, emb, horizon=6, samples=2)
    assert frames.shape == (2, 6, 64, 64, 3) and frames.dtype == np.uint8
    assert matching_embedder(cfg, vlm) is vlm
    other = MiniVLMEmbedder(root / "vlm")
    other.id = "another-vlm"
    with pytest.raises(ValueError, match="trained with VLM"):
        matching_embedder(cfg, other)
    # a newer packaged default: the model's own packaged MiniVLM (found by id) reads the prompt instead
    import genrl.vlm.minivlm as minivlm
    monkeypatch.setattr(minivlm, "packaged_minivlms", lambda: {"another-vlm": root / "vlm", vlm.id: root / "vlm"})
    swapped = matching_embedder(cfg, other)
    assert swapped is not other and swapped.id == cfg["embedder_id"] == vlm.id
    assert "trained with the packaged MiniVLM" in capsys.readouterr().out
    torch.testing.assert_close(swapped.embed_text(["lying on the back"]), emb)
    gif = tmp_path / "walk.gif"
    video = str(shared_dir / "data" / "video_prompts" / "guy_walking.gif")
    code = main(["decode", str(tmp_path / "run"), "--video", video, "--out", str(gif), "--vlm-path",
                 str(root / "vlm"), "--horizon", "5", "--samples", "1"])
    assert code == 0 and gif.is_file()


def test_holdout_split_and_heldout_evaluation(embedded, tmp_path, shared_dir):
    """Pre-training skips the held-out episodes; pretrain-eval measures on exactly those and writes its pictures."""
    import zlib

    from genrl.data.dataset import Dataset
    from genrl.data.sampler import SequenceSampler
    from genrl.data.split import split_names
    from genrl.mfwm.evaluate import evaluate_pretrained

    root, vlm = embedded
    ds = Dataset(root / "walker")
    first = min(ds.names(), key=lambda n: zlib.crc32(n.encode()) % 1000)
    fraction = (zlib.crc32(first.encode()) % 1000 + 1) / 1000  # holds out exactly that episode
    train, heldout = split_names(ds.names(), fraction)
    assert heldout == [first] and len(train) == len(ds) - 1
    assert SequenceSampler.from_dataset(ds, 2, 8, names=train).num_episodes == len(train)
    with pytest.raises(KeyError, match="not in the manifest"):
        SequenceSampler.from_dataset(ds, 2, 8, names=["no-such-episode"])

    run = tmp_path / "run"
    pretrain(_cfg(root, vlm, run, 2, holdout=fraction), progress=False)
    report = evaluate_pretrained(run, vlm, batches=1, batch_size=2,
                                 videos=[shared_dir / "data" / "video_prompts" / "guy_walking.gif"])
    assert report["heldout_episodes"] == [first] and report["step"] == 2
    for key in ("recon_mse", "openloop_mse", "repeat_last_mse", "connector_mse", "connector_aligner_mse"):
        assert 0.0 <= report["world_model"][key] <= 1.0, key
    assert -1.0 <= report["aligner"]["aligner_cos_noisy"] <= 1.0
    posture = report["prompt_postures"]["prompts"]["standing upright"]
    assert "torso_height" in posture and np.isfinite(posture["torso_height"])
    assert set(report["prompt_postures"]["vlm_confusion"]["walking"]) == {"standing upright", "lying on the back",
                                                                         "walking"}
    assert set(report["video_prompts"]["guy_walking.gif"]) == {"aligner", "no_aligner"}
    for name in ("heldout.json", "heldout.png", "prompts.png", "video_prompts.png"):
        assert (run / "eval" / name).is_file(), name

    pretrain(_cfg(root, vlm, tmp_path / "all", 1, holdout=0.0), progress=False)
    with pytest.raises(DatasetError, match="no held-out data"):
        evaluate_pretrained(tmp_path / "all", vlm)
