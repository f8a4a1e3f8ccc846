"""Dataset folders: manifest, atomic writes, validation, domains, embeddings, official import, ``genrl data``."""

import argparse
import json

import numpy as np
import pytest

from genrl.app import data_cmd
from genrl.data.dataset import INTERNVIDEO2_ID, SIGLIP_ID, Dataset, DatasetError, check_domain, check_name
from genrl.data.importer import import_episodes
from genrl.data.episode import EpisodeError, save_episode

T = 12


def make_episode(length=T, action_dim=6, seed=0):
    rng = np.random.default_rng(seed)
    is_first = np.zeros(length, bool)
    is_first[0] = True
    is_last = np.zeros(length, bool)
    is_last[-1] = True
    action = rng.uniform(-1, 1, (length, action_dim)).astype(np.float32)
    action[0] = 0
    return {
        "observation": rng.integers(0, 256, (length, 3, 64, 64), dtype=np.uint8),
        "action": action,
        "reward": rng.normal(size=(length, 1)).astype(np.float32),
        "discount": np.ones((length, 1), np.float32),
        "is_first": is_first, "is_last": is_last, "is_terminal": np.zeros(length, bool),
        "state": rng.normal(size=(length, 5)).astype(np.float32),
    }


@pytest.fixture
def ds(tmp_path):
    return Dataset.create(tmp_path / "walker", "walker", action_dim=6)


def test_round_trip_and_manifest(ds, tmp_path):
    ep = make_episode()
    ds.add("ep0", ep, {"source": "expert", "task": "walker_run", "seed": 0})
    ds.add("ep1", make_episode(seed=1), {"source": "random", "seed": 1})
    again = Dataset(ds.root)
    assert again.names() == ["ep0", "ep1"] and again.has("ep0") and not again.has("nope")
    assert again.meta("ep0") == {"source": "expert", "task": "walker_run", "seed": 0, "length": T}
    loaded = again.load("ep0")
    assert set(loaded) == set(ep)
    for key in ep:
        assert loaded[key].dtype == ep[key].dtype and np.array_equal(loaded[key], ep[key]), key
    manifest = json.loads((ds.root / "manifest.json").read_text())
    assert manifest["format"] == "genrl-dataset/1" and manifest["domain"] == "walker"
    assert manifest["action_dim"] == 6 and manifest["image_size"] == 64
    assert again.frames() == 2 * T
    rows = again.composition()
    assert [(r.subset, r.episodes, r.frames) for r in rows] == [("walker expl", 1, T), ("walker run", 1, T)]
    assert sum(r.fraction for r in rows) == pytest.approx(1.0)
    # same domain: create returns the existing dataset; another domain is refused
    assert Dataset.create(ds.root, "walker", 6).names() == ["ep0", "ep1"]
    with pytest.raises(DatasetError, match="holds walker episodes"):
        Dataset.create(ds.root, "stickman", 10)


def test_open_without_manifest(tmp_path):
    with pytest.raises(DatasetError, match="manifest.json"):
        Dataset(tmp_path)


def test_atomic_write_failure(ds, monkeypatch):
    ds.add("ep0", make_episode(), {"source": "random"})
    before = (ds.root / "manifest.json").read_text()

    def boom(f, **arrays):
        f.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(OSError, match="disk full"):
        ds.add("ep1", make_episode(seed=1), {"source": "random"})
    files = sorted(p.name for p in (ds.root / "episodes").iterdir())
    assert files == ["ep0.npz"]  # no partial file, nothing under the final name
    assert (ds.root / "manifest.json").read_text() == before
    assert Dataset(ds.root).names() == ["ep0"]


def test_corrupt_file_and_skip_bad(ds):
    ds.add("good", make_episode(), {"source": "random"})
    ds.add("bad", make_episode(seed=1), {"source": "random"})
    path = ds.episode_path("bad")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(EpisodeError, match="bad.npz"):
        ds.load("bad")
    with pytest.raises(EpisodeError, match="bad.npz"):
        ds.load_all()
    with pytest.warns(RuntimeWarning, match="bad.npz"):
        out = ds.load_all(skip_bad=True)
    assert [name for name, _ in out] == ["good"]
    path.unlink()  # a missing file is also named
    with pytest.raises(EpisodeError, match="bad.npz: file is missing"):
        ds.load("bad")


def test_wrong_dtype_shape_length(ds):
    ep = make_episode()
    ep["action"] = ep["action"].astype(np.float64)
    with pytest.raises(EpisodeError, match="'action' must be float32"):
        ds.add("x", ep, {})
    ep = make_episode()
    ep["reward"] = ep["reward"][:-1]
    with pytest.raises(EpisodeError, match=r"x\.npz: 'reward' has 11 entries"):
        ds.add("x", ep, {})
    assert ds.names() == [] and not ds.episode_path("x").exists()
    # a worker-written file with a bad dtype is refused at register (headers only) and at load
    ep = make_episode()
    ep["observation"] = ep["observation"].astype(np.float32)
    np.savez_compressed(ds.episode_path("w"), **ep)
    with pytest.raises(EpisodeError, match=r"w\.npz: 'observation' must be uint8"):
        ds.register("w", {"source": "random"})
    save_episode(ds.episode_path("w"), make_episode())
    assert ds.register("w", {"source": "random"}) == T and ds.has("w")
    # manifest length disagrees with the file
    save_episode(ds.episode_path("w"), make_episode(length=T + 3))
    with pytest.raises(EpisodeError, match=r"w\.npz: has 15 entries but the manifest says 12"):
        ds.load("w")


def test_domain_mismatch(ds):
    with pytest.raises(DatasetError, match="action dim 6.*wrong domain"):
        ds.add("s", make_episode(action_dim=10), {"source": "random"})
    with pytest.raises(DatasetError, match="domains cannot be mixed"):
        ds.add("s", make_episode(), {"source": "expert", "task": "stickman_walk"})
    assert ds.names() == []
    with pytest.raises(ValueError, match="holds walker episodes but the model was trained for stickman"):
        check_domain(ds.domain, "stickman", f"dataset {ds.root}")
    check_domain("walker", "walker", "x")
    for bad in ("", "a/b", "..", "../x", ".hidden"):
        with pytest.raises(DatasetError):
            check_name(bad, "embedder id")
    assert check_name("internvideo2-stage2-1b-f8") == "internvideo2-stage2-1b-f8"


def test_embeddings(ds):
    ds.add("ep0", make_episode(), {"source": "random"})
    emb = np.random.default_rng(0).normal(size=(T, 16)).astype(np.float32)
    ds.save_embedding("toy-vlm", "ep0", emb)
    assert ds.embeddings_ids() == ["toy-vlm"] and ds.has_embedding("toy-vlm", "ep0")
    out = ds.load_embedding("toy-vlm", "ep0")
    assert out.dtype == np.float16 and np.array_equal(out, emb.astype(np.float16))
    assert ds.embedding_dim("toy-vlm") == 16 and ds.embedding_coverage("toy-vlm") == (1, 1)
    with pytest.raises(DatasetError, match="13 embeddings for episode 'ep0' of 12 entries"):
        ds.save_embedding("toy-vlm", "ep0", np.zeros((T + 1, 16)))
    with pytest.raises(DatasetError, match="size 8 but 'toy-vlm' stores size 16"):
        ds.save_embedding("toy-vlm", "ep0", np.zeros((T, 8)))
    with pytest.raises(DatasetError, match="not a plain"):
        ds.save_embedding("../evil", "ep0", emb)
    np.save(ds.embedding_path("toy-vlm", "ep0"), np.zeros((T - 2, 16), np.float16))
    with pytest.raises(DatasetError, match="10 embeddings for episode 'ep0' of 12"):
        ds.load_embedding("toy-vlm", "ep0")


def test_import_official_and_info(shared_dir, tmp_path, capsys):
    src = shared_dir / "data" / "official_stickman_episode.npz"
    if not src.is_file():
        pytest.skip(f"{src} not found")
    out = tmp_path / "stickman"
    names = import_episodes([src], out, "stickman")
    ds = Dataset(out)
    assert names == ["official_stickman_episode"] and ds.domain == "stickman" and ds.action_dim == 10
    assert ds.meta(names[0])["source"] == "imported" and ds.meta(names[0])["original"] == src.name
    ep = ds.load(names[0])
    assert "clip_video" not in ep and "clip_img" not in ep and ep["observation"].shape == (501, 3, 64, 64)
    with np.load(src) as raw:
        video, img, obs = raw["clip_video"], raw["clip_img"], raw["observation"]
    assert np.array_equal(ep["observation"], obs)
    vid = ds.load_embedding(INTERNVIDEO2_ID, names[0])
    assert vid.shape == (501, 512) and np.allclose(vid, video, atol=2e-3)
    assert not vid[:8].any() and vid[8].any()  # official leading zero rows kept as they are
    assert np.allclose(ds.load_embedding(SIGLIP_ID, names[0]), img, atol=2e-3)
    assert ds.composition()[0] == ("stickman imported", 1, 501, 1.0)
    assert import_episodes([src.parent], ds, "stickman") == []  # resumes: nothing to redo
    with pytest.raises(DatasetError, match="holds stickman episodes"):
        import_episodes([src], ds, "walker")

    rc = data_cmd.cmd_info(argparse.Namespace(dir=str(out)))
    text = capsys.readouterr().out
    assert rc == 0
    assert "| subset | episodes | frames | share |" in text and "| stickman imported | 1 | 501" in text
    assert INTERNVIDEO2_ID in text and "1/1 episodes" in text


def test_cli_parser_and_info_errors(ds, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    data_cmd.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["data", "info", str(ds.root)])
    ds.add("ep0", make_episode(), {"source": "expert", "task": "run"})
    assert args.func(args) == 0
    assert "| walker run | 1 | 12 (12) | 100.0% |" in capsys.readouterr().out
    from genrl.app.cli import main
    assert main(["data", "info", str(tmp_path / "none")]) == 2
    assert "manifest.json" in capsys.readouterr().err


def test_info_check_names_truncated_and_pickled_files(ds, capsys):
    from genrl.app.cli import main

    for i in range(3):
        ds.add(f"ep{i}", make_episode(seed=i), {"source": "random", "seed": i})
    assert main(["data", "info", str(ds.root), "--check"]) == 0
    assert "3 episode file(s) OK" in capsys.readouterr().out
    truncated = ds.episode_path("ep1")
    truncated.write_bytes(truncated.read_bytes()[:500])
    pickled = make_episode(seed=2)
    pickled["observation"] = np.array([{"evil": "object"}] * T, dtype=object)  # an object array: pickled
    with open(ds.episode_path("ep2"), "wb") as f:
        np.savez(f, **pickled)
    assert main(["data", "info", str(ds.root)]) == 0  # the summary alone reads the manifest only
    capsys.readouterr()
    assert main(["data", "info", str(ds.root), "--check"]) == 2
    out = capsys.readouterr().out
    bad = [line for line in out.splitlines() if line.startswith("  ")]
    assert "2 of 3 episode file(s) are bad" in out and len(bad) == 2
    assert "ep1.npz" in bad[0] and "ep2.npz" in bad[1] and "allow_pickle" in bad[1]
    assert "ep0.npz" not in out
