"""Sequence sampler: shapes, contiguity, is_first, determinism, episode weighting, memmap (all synthetic, fast)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genrl.data.sampler import SequenceSampler


def make_episodes(lengths, action_dim=2, image=8, emb_dim=0):
    """Episodes whose ``action[:, 0]`` is the global step index and ``action[:, 1]`` the episode index."""
    episodes, embeddings, step = [], [], 0
    for e, n in enumerate(lengths):
        steps = np.arange(step, step + n)
        action = np.zeros((n, action_dim), np.float32)
        action[:, 0] = steps
        action[:, 1] = e
        obs = (steps % 251).astype(np.uint8)[:, None, None, None] * np.ones((1, 3, image, image), np.uint8)
        is_first = np.zeros(n, bool)
        is_first[0] = True
        is_last = np.zeros(n, bool)
        is_last[-1] = True
        episodes.append({
            "observation": obs, "action": action, "reward": steps.astype(np.float32)[:, None],
            "discount": np.ones((n, 1), np.float32), "is_first": is_first, "is_last": is_last,
            "is_terminal": np.zeros(n, bool),
        })
        embeddings.append(np.repeat(steps[:, None], emb_dim, 1).astype(np.float16))
        step += n
    return episodes, embeddings


def test_shapes_and_dtypes():
    eps, embs = make_episodes([40, 50, 60], emb_dim=4)
    sampler = SequenceSampler(eps, batch_size=5, length=12, seed=0, embeddings=embs)
    batch = sampler.sample()
    assert set(batch) == {"observation", "action", "reward", "is_first", "is_terminal", "embedding"}
    assert batch["observation"].shape == (5, 12, 3, 8, 8) and batch["observation"].dtype == torch.uint8
    assert batch["action"].shape == (5, 12, 2) and batch["action"].dtype == torch.float32
    assert batch["reward"].shape == (5, 12, 1) and batch["reward"].dtype == torch.float32
    assert batch["is_first"].shape == (5, 12) and batch["is_first"].dtype == torch.bool
    assert batch["is_terminal"].shape == (5, 12) and batch["is_terminal"].dtype == torch.bool
    assert batch["embedding"].shape == (5, 12, 4) and batch["embedding"].dtype == torch.float16
    assert sampler.num_frames == 150 and sampler.num_episodes == 3
    expected = 150 * (3 * 8 * 8 + 2 * 4 + 4 + 1 + 4 * 2)   # obs, action, reward, is_terminal, embedding
    assert sampler.nbytes == expected


def test_windows_are_contiguous_slices_of_one_episode():
    lengths = [20, 33, 7, 64, 20, 45]           # the 7-step episode is shorter than L and skipped
    eps, embs = make_episodes(lengths, emb_dim=3)
    sampler = SequenceSampler(eps, batch_size=64, length=16, seed=1, embeddings=embs, weighting="frames")
    assert sampler.num_episodes == 5 and sampler.num_skipped == 1
    starts = np.concatenate([[0], np.cumsum(lengths)])
    for _ in range(20):
        batch = sampler.sample()
        step = batch["action"][..., 0].numpy().astype(np.int64)
        episode = batch["action"][..., 1].numpy().astype(np.int64)
        assert (np.diff(step, axis=1) == 1).all()                      # contiguous
        assert (episode == episode[:, :1]).all()                        # one episode per window
        assert (episode != 2).all()                                     # the short episode is never used
        assert (step[:, 0] >= starts[episode[:, 0]]).all() and (step[:, -1] < starts[episode[:, 0] + 1]).all()
        # every key comes from the same steps
        assert (batch["reward"][..., 0].numpy() == step).all()
        assert (batch["observation"][:, :, 0, 0, 0].numpy() == step % 251).all()
        assert (batch["embedding"].float().numpy() == np.float16(step)[..., None]).all()
        # is_first: exactly at index 0 of windows starting at an episode start
        expected = np.zeros_like(step, bool)
        expected[:, 0] = step[:, 0] == starts[episode[:, 0]]
        assert (batch["is_first"].numpy() == expected).all()


def test_is_first_seen_both_ways():
    eps, _ = make_episodes([10, 11])
    sampler = SequenceSampler(eps, batch_size=200, length=9, seed=0)
    first = sampler.sample()["is_first"].numpy()
    assert not first[:, 1:].any()
    assert 0 < first[:, 0].sum() < 200


def test_deterministic_under_seed():
    eps, _ = make_episodes([30, 50, 70])
    a = SequenceSampler(eps, batch_size=8, length=10, seed=3)
    b = SequenceSampler(eps, batch_size=8, length=10, seed=3)
    c = SequenceSampler(eps, batch_size=8, length=10, seed=4)
    for (ba, bb, bc), _ in zip(zip(a, b, c), range(5)):
        for key in ba:
            assert torch.equal(ba[key], bb[key])
        assert not torch.equal(ba["action"], bc["action"])


def test_episode_weighting_is_uniform_over_episodes():
    lengths = [20, 200, 2000]
    eps, _ = make_episodes(lengths, image=2)
    sampler = SequenceSampler(eps, batch_size=3000, length=16, seed=0, keys=["action"])
    counts = np.bincount(sampler.sample()["action"][:, 0, 1].numpy().astype(int), minlength=3)
    assert np.all(np.abs(counts / counts.sum() - 1 / 3) < 0.04), counts
    frames = SequenceSampler(eps, batch_size=3000, length=16, seed=0, keys=["action"], weighting="frames")
    share = np.bincount(frames.sample()["action"][:, 0, 1].numpy().astype(int), minlength=3) / 3000
    expected = (np.array(lengths) - 15) / (np.array(lengths) - 15).sum()
    assert np.all(np.abs(share - expected) < 0.04), share
    # start within the episode is uniform over [0, T - L]: both ends are reachable
    ep, start = SequenceSampler(eps[:1], batch_size=2000, length=16, seed=0).sample_starts()
    assert start.min() == 0 and start.max() == 4


def test_errors():
    eps, _ = make_episodes([10, 12])
    with pytest.raises(ValueError, match=r"length=32.*longest of 2 episodes has 12 steps"):
        SequenceSampler(eps, batch_size=4, length=32)
    bad = dict(eps[0], reward=np.zeros((9, 1), np.float32))
    with pytest.raises(ValueError, match="disagree in length"):
        SequenceSampler([bad], batch_size=4, length=5)
    with pytest.raises(ValueError, match="embedding"):
        SequenceSampler(eps, batch_size=4, length=5, embeddings=[np.zeros((10, 4)), np.zeros((11, 4))])
    with pytest.raises(ValueError, match="missing key"):
        SequenceSampler(eps, batch_size=4, length=5, keys=["observation", "clip_video"])
    with pytest.raises(ValueError, match="weighting"):
        SequenceSampler(eps, batch_size=4, length=5, weighting="steps")


def test_memmap_matches_ram(tmp_path):
    eps, embs = make_episodes([25, 40, 3, 31], emb_dim=5)
    ram = SequenceSampler(eps, batch_size=6, length=8, seed=7, embeddings=embs)
    mm = SequenceSampler(iter(eps), batch_size=6, length=8, seed=7, embeddings=iter(embs), memmap_dir=tmp_path,
                         lengths=[len(e["action"]) for e in eps])
    assert isinstance(np.load(tmp_path / "observation.npy", mmap_mode="r"), np.memmap)
    assert mm.nbytes == ram.nbytes and mm.num_frames == ram.num_frames == 96
    for _ in range(5):
        a, b = ram.sample(), mm.sample()
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key


def test_from_files(tmp_path):
    from genrl.data.episode import save_episode

    eps, _ = make_episodes([30, 6, 40])
    paths = [save_episode(tmp_path / f"ep{i}.npz", ep) for i, ep in enumerate(eps)]
    files = SequenceSampler.from_files(paths, batch_size=4, length=10, seed=2)
    ram = SequenceSampler(eps, batch_size=4, length=10, seed=2)
    assert files.num_episodes == 2 and files.num_frames == 70
    a, b = files.sample(), ram.sample()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_from_dataset_with_embeddings(tmp_path):
    from genrl.data.dataset import Dataset

    ds = Dataset.create(tmp_path / "ds", "walker", action_dim=2)
    rng = np.random.default_rng(0)
    for e in range(2):
        n = 40
        ds.add(f"ep{e}", {
            "observation": rng.integers(0, 255, (n, 3, 64, 64), dtype=np.uint8),
            "action": np.stack([np.arange(n) + 1000 * e, np.zeros(n)], 1).astype(np.float32),
            "reward": np.zeros((n, 1), np.float32), "discount": np.ones((n, 1), np.float32),
            "is_first": np.arange(n) == 0, "is_last": np.arange(n) == n - 1, "is_terminal": np.zeros(n, bool)})
        ds.save_embedding("toy", f"ep{e}", np.tile((np.arange(n) + 1000 * e)[:, None] / 4096.0, (1, 8)))
    sampler = SequenceSampler.from_dataset(ds, batch_size=4, length=8, seed=0, embedder_id="toy")
    batch = sampler.sample()
    assert batch["embedding"].shape == (4, 8, 8) and batch["observation"].shape == (4, 8, 3, 64, 64)
    # embeddings stay aligned with the steps they belong to
    step = batch["action"][..., 0].numpy()
    np.testing.assert_allclose(batch["embedding"][..., 0].float().numpy(), step / 4096.0, rtol=1e-3)
