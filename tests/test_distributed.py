"""Data-parallel pre-training and sharded embedding over 2 CPU processes (gloo), tiny preset.

* DDP update = the 1-process update on the combined batch (:mod:`genrl.mfwm.parallel`);
* ``genrl pretrain --nproc 2`` (torchrun) resumes as 1 process and the reverse, one writer;
* sharded ``embed_dataset`` writes every episode exactly once, the same values as 1 process.

Multi-process parts run under ``torch.multiprocessing.spawn`` (workers are module-level functions) or as a
``python -m genrl ... --nproc 2`` subprocess (torchrun picks its own free port).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from genrl.data.dataset import Dataset
from genrl.mfwm.model import MFWM
from genrl.mfwm.pretrain import CKPT, PretrainConfig, build_model, pretrain, rank_batch_size
from genrl.utils.checkpoint import load_checkpoint
from genrl.utils.distributed import process_group, rank_seed, shard
from genrl.worldmodel.config import preset

STEPS, B, T = 3, 4, 16  # updates, combined batch (tiny preset), sequence length


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _join_group(rank: int, world: int, port: int) -> None:
    """The environment torchrun would give rank ``rank`` of ``world``."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)


def _deterministic() -> None:
    """Latent samples -> straight-through modes: the only random numbers of an update (the LAFITE noise is off,
    aligner_noise=0), which each rank would otherwise draw from its own generator."""
    from genrl.worldmodel.dists import OneHotDist

    OneHotDist.sample = OneHotDist.mode


def _model() -> tuple[MFWM, dict]:
    torch.manual_seed(0)
    model = MFWM(preset("tiny", grad_clip=0.5), action_dim=6, embed_dim=16, n_frames=4, aligner_noise=0.0)
    return model, model.optimizers()


def _batches() -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    out = []
    for _ in range(STEPS):
        first = torch.zeros(B, T, dtype=torch.bool)
        first[:, 0] = True
        emb = torch.randn(B, T, 16, generator=g)
        out.append({"observation": torch.randint(0, 256, (B, T, 3, 64, 64), generator=g, dtype=torch.uint8),
                    "action": torch.rand(B, T, 6, generator=g) * 2 - 1, "is_first": first,
                    "embedding": emb / emb.norm(dim=-1, keepdim=True)})
    return out


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    from safetensors.torch import save_file

    from genrl.mfwm.parallel import DataParallelMFWM

    _join_group(rank, world, port)
    _deterministic()
    with process_group("cpu"):
        model, opts = _model()
        par = DataParallelMFWM(model, torch.device("cpu"))
        n = B // world
        metrics = [par.train_step({k: v[rank * n:(rank + 1) * n] for k, v in batch.items()}, opts)
                   for batch in _batches()]
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, f"{out}/rank{rank}.safetensors")
    with open(f"{out}/rank{rank}.json", "w") as f:
        json.dump(metrics, f)


def test_two_process_updates_equal_one_process_on_the_combined_batch(tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from genrl.worldmodel.dists import OneHotDist

    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    monkeypatch.setattr(OneHotDist, "sample", OneHotDist.mode)
    model, opts = _model()
    init = {k: v.clone() for k, v in model.state_dict().items()}
    ref = [model.train_step(batch, opts) for batch in _batches()]
    half, half_opts = _model()  # what one rank alone would do on its half (no gradient averaging)
    for batch in _batches():
        half.train_step({k: v[:B // 2] for k, v in batch.items()}, half_opts)
    r0, r1 = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")
    moved = alone = 0.0
    for name, want in model.state_dict().items():
        assert torch.equal(r0[name], r1[name]), f"ranks differ on {name}"
        torch.testing.assert_close(r0[name], want, rtol=1e-4, atol=2e-6, msg=lambda m: f"{name}: {m}")
        moved = max(moved, float((want - init[name]).abs().max()))
        alone = max(alone, float((half.state_dict()[name] - want).abs().max()))
    assert moved > 1e-4 and alone > 1e-5  # the updates moved the weights; a rank alone would not match
    got = json.loads((tmp_path / "rank0.json").read_text())
    assert got == json.loads((tmp_path / "rank1.json").read_text())  # metrics averaged over the ranks
    for want, have in zip(ref, got):
        for key in ("image_loss", "kl_loss", "connector_kl", "model_grad_norm", "connector_grad_norm"):
            assert have[key] == pytest.approx(want[key], rel=1e-4), key


# ------------------------------------------------------------------------------------------------ genrl pretrain


def _cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "genrl", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _pretrain_args(root, out, steps: int, nproc: int) -> list[str]:
    return ["pretrain", str(root / "walker"), "--out", str(out), "--vlm", "default", "--vlm-path", str(root / "vlm"),
            "--preset", "tiny", "--steps", str(steps), "--save-every", "2", "--log-every", "1", "--report-every", "2",
            "--device", "cpu", "--threads", "1", "--nproc", str(nproc)]


def _cfg(root, vlm, out, steps) -> PretrainConfig:
    return PretrainConfig(dataset=str(root / "walker"), out=str(out), embedder_id=vlm.id, n_frames=vlm.n_frames,
                          preset="tiny", steps=steps, save_every=2, log_every=1, report_every=2, device="cpu",
                          threads=1)


def _train_steps(out) -> list[int]:
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return [x["step"] for x in lines if "train/image_loss" in x]


def _adam_steps(out) -> int:
    """The update count of the checkpoint in ``out``, checked against its optimizers' step counts."""
    model = build_model(json.loads((out / "config.json").read_text()))
    opts = model.optimizers()
    state = load_checkpoint(out / CKPT, {"mfwm": model}, opts, restore_global_rng=False)
    assert {int(s["step"]) for opt in opts.values() for s in opt.state.values()} == {int(state["step"])}
    return int(state["step"])


def test_pretrain_two_processes_resume_as_one_and_the_reverse(tiny_run, tmp_path):
    root, vlm = tiny_run
    a = tmp_path / "a"
    proc = _cli(*_pretrain_args(root, a, 4, 2))
    assert proc.stdout.count('"image_loss"') == 1  # one rank prints
    assert json.loads((a / "config.json").read_text())["pretrain"]["nproc"] == 2
    assert _train_steps(a) == [1, 2, 3, 4]  # one writer: one line per update
    assert sorted(p.name for p in (a / "reports").glob("*.png")) == ["step_0000002.png", "step_0000004.png"]
    assert _adam_steps(a) == 4
    pretrain(_cfg(root, vlm, a, 6), progress=False)  # 2 -> 1 process
    assert _train_steps(a) == [1, 2, 3, 4, 5, 6] and _adam_steps(a) == 6

    b = tmp_path / "b"
    pretrain(_cfg(root, vlm, b, 2), progress=False)
    _cli(*_pretrain_args(root, b, 4, 2))  # 1 -> 2 processes
    assert _train_steps(b) == [1, 2, 3, 4] and _adam_steps(b) == 4
    for line in (b / "metrics.jsonl").read_text().splitlines():
        assert all(np.isfinite(v) for k, v in json.loads(line).items() if isinstance(v, float))


def test_pretrain_checks_nproc_and_batch_split(tiny_run, tmp_path):
    root, vlm = tiny_run
    cfg = _cfg(root, vlm, tmp_path / "x", 1)
    cfg.nproc = 2
    with pytest.raises(ValueError, match="torchrun"):
        pretrain(cfg, progress=False)
    assert rank_batch_size(16, 4) == 4
    with pytest.raises(ValueError, match="batch_size=6 does not split over 4 processes"):
        rank_batch_size(6, 4)
    assert len({rank_seed(0, r, s) for r in range(3) for s in (0, 10)}) == 6


# ------------------------------------------------------------------------------------------------ genrl embed


def _small_dataset(src: Dataset, root, lengths=(20, 17, 24, 16, 21)) -> Dataset:
    """Episodes cut from the first steps of one episode of ``src`` (5 short episodes: uneven shares of 2 ranks)."""
    ep = src.load(src.names()[0])
    steps = len(ep["observation"])
    ds = Dataset.create(root, src.domain, src.action_dim)
    for i, n in enumerate(lengths):
        ds.add(f"ep{i}", {k: (v[:n] if np.ndim(v) and len(v) == steps else v) for k, v in ep.items()})
    return ds


def _embed_worker(rank: int, world: int, port: int, data: str, vlm_dir: str, out: str) -> None:
    from genrl.vlm.embed import embed_dataset
    from genrl.vlm.minivlm import MiniVLMEmbedder

    _join_group(rank, world, port)
    written = []
    real = Dataset.save_embedding

    def save(self, embedder_id, name, array):
        written.append(name)
        return real(self, embedder_id, name, array)

    Dataset.save_embedding = save
    with process_group("cpu"):
        stats = embed_dataset(data, MiniVLMEmbedder(vlm_dir), progress=rank == 0)
    with open(f"{out}/rank{rank}.json", "w") as f:
        json.dump({"written": written, "stats": stats}, f)


def test_sharded_embedding_writes_every_episode_exactly_once(tiny_run, tmp_path):
    from genrl.vlm.embed import embed_episode

    root, vlm = tiny_run
    ds = _small_dataset(Dataset(root / "walker"), tmp_path / "data")
    want = {n: embed_episode(ds.load(n)["observation"], vlm).astype(np.float16) for n in ds.names()}
    ds.save_embedding(vlm.id, "ep3", want["ep3"])  # done before: the sharded run resumes
    mp.spawn(_embed_worker, args=(2, _free_port(), str(ds.root), str(root / "vlm"), str(tmp_path)), nprocs=2,
             join=True)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert not set(r0["written"]) & set(r1["written"])
    assert sorted(r0["written"] + r1["written"]) == ["ep0", "ep1", "ep2", "ep4"]  # each once, ep3 skipped
    assert len(r0["written"]) == 2 and len(r1["written"]) == 2
    for stats in (r0["stats"], r1["stats"]):
        assert stats["episodes"] == 4 and stats["skipped"] == 1 and stats["frames"] == 20 + 17 + 24 + 21
    for name, arr in want.items():
        np.testing.assert_allclose(ds.load_embedding(vlm.id, name), arr, atol=2e-3)
    assert not list((ds.root / "embeddings").rglob("*.partial*"))
    assert shard(list(range(7)), 0, 3) + shard(list(range(7)), 1, 3) + shard(list(range(7)), 2, 3) == \
        [0, 3, 6, 1, 4, 2, 5]
    shutil.rmtree(tmp_path / "data")
