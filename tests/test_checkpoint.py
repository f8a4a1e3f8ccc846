"""Checkpoints: bit-exact round trip and resume, corruption and mismatch errors, crash safety, no pickle."""

import json
import os
import random

import numpy as np
import pytest
import torch
from torch import nn

from genrl.utils import checkpoint as ckpt_mod
from genrl.utils.checkpoint import CheckpointError, has_checkpoint, load_checkpoint, read_config, save_checkpoint


def make_model(seed=0, hidden=16):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, hidden), nn.Tanh(), nn.Dropout(0.1), nn.Linear(hidden, 2))


def make_opt(model):
    return torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.9, 0.99))


def train(model, opt, rng, steps):
    """Steps that consume the torch RNG (data, dropout) and the numpy rng (batch weights)."""
    model.train()
    for _ in range(steps):
        x = torch.randn(8, 4)
        w = torch.from_numpy(rng.random(8).astype(np.float32))
        loss = ((model(x) - x[:, :2]) ** 2).sum(-1).mul(w).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.fixture(autouse=True)
def _no_pickle(monkeypatch):
    """torch.load (pickle) must never be used by checkpoint code."""
    def refuse(*a, **k):
        raise AssertionError("torch.load called")
    monkeypatch.setattr(torch, "load", refuse)


def test_round_trip_bit_exact(tmp_path):
    model, rng = make_model(), np.random.default_rng(1)
    opt = make_opt(model)
    random.seed(3)
    train(model, opt, rng, 3)
    cfg = {"lr": 1e-2, "dims": [4, 16, 2], "name": "mlp"}
    path = save_checkpoint(tmp_path / "ck", {"model": model}, {"model": opt}, step=3, config=cfg,
                           extra={"history": [1.5, 2.5]}, rng=rng)
    assert sorted(p.name for p in path.iterdir()) == [
        "config.json", "model.optim.json", "model.optim.safetensors", "model.safetensors", "state.json"]
    want_torch, want_np, want_py = torch.rand(5), rng.random(5), random.random()
    params = {k: v.clone() for k, v in model.state_dict().items()}
    opt_state = {pid: {k: v.clone() if torch.is_tensor(v) else v for k, v in st.items()}
                 for pid, st in opt.state_dict()["state"].items()}

    model2, rng2 = make_model(seed=9), np.random.default_rng(99)
    opt2 = make_opt(model2)
    train(model2, opt2, rng2, 1)  # different state everywhere, including the torch/python RNG
    random.random()
    state = load_checkpoint(tmp_path / "ck", {"model": model2}, {"model": opt2}, rng=rng2)

    assert state["step"] == 3 and state["extra"] == {"history": [1.5, 2.5]} and state["config"] == cfg
    for k, v in model2.state_dict().items():
        assert torch.equal(v, params[k]), k
    sd2 = opt2.state_dict()
    assert sd2["param_groups"][0]["betas"] == (0.9, 0.99)
    assert sd2["param_groups"][0]["lr"] == 1e-2
    for pid, st in opt_state.items():
        for k, v in st.items():
            got = sd2["state"][pid][k]
            assert (torch.equal(got, v) and got.dtype == v.dtype) if torch.is_tensor(v) else got == v, (pid, k)
    assert torch.equal(torch.rand(5), want_torch)
    assert np.array_equal(rng2.random(5), want_np)
    assert random.random() == want_py
    assert has_checkpoint(tmp_path / "ck") and not has_checkpoint(tmp_path / "nothing")
    assert read_config(tmp_path / "ck") == cfg


def test_resume_is_bit_identical_to_uninterrupted_run(tmp_path):
    torch.manual_seed(123)
    model, rng = make_model(), np.random.default_rng(5)
    opt = make_opt(model)
    torch.manual_seed(7)
    train(model, opt, rng, 10)
    reference = [p.detach().clone() for p in model.parameters()]

    torch.manual_seed(123)
    model, rng = make_model(), np.random.default_rng(5)
    opt = make_opt(model)
    torch.manual_seed(7)
    train(model, opt, rng, 5)
    save_checkpoint(tmp_path / "ck", {"model": model}, {"model": opt}, step=5, config={}, rng=rng)
    del model, opt
    torch.manual_seed(0)  # a fresh process would start from some other RNG state
    model2, rng2 = make_model(seed=42), np.random.default_rng(0)
    opt2 = make_opt(model2)
    assert load_checkpoint(tmp_path / "ck", {"model": model2}, {"model": opt2}, rng=rng2)["step"] == 5
    train(model2, opt2, rng2, 5)
    for a, b in zip(model2.parameters(), reference):
        assert torch.equal(a, b)


def test_other_optimizers_and_bit_generators(tmp_path):
    model = make_model()
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    adamw = torch.optim.AdamW([{"params": [model[0].weight], "lr": 1e-3},
                               {"params": [model[0].bias, model[3].weight, model[3].bias]}], lr=1e-2)
    rng = np.random.Generator(np.random.Philox(3))
    train(model, sgd, rng, 2)
    train(model, adamw, rng, 2)
    save_checkpoint(tmp_path / "ck", {"net": model}, {"sgd": sgd, "adamw": adamw}, 4, {}, rng=rng)
    want = rng.random(3)
    m2 = make_model(seed=5)
    sgd2 = torch.optim.SGD(m2.parameters(), lr=0.1, momentum=0.9)
    adamw2 = torch.optim.AdamW([{"params": [m2[0].weight], "lr": 1e-3},
                                {"params": [m2[0].bias, m2[3].weight, m2[3].bias]}], lr=1e-2)
    rng2 = np.random.Generator(np.random.Philox(0))
    load_checkpoint(tmp_path / "ck", {"net": m2}, {"sgd": sgd2, "adamw": adamw2}, rng=rng2)
    assert np.array_equal(rng2.random(3), want)
    buf = "momentum_buffer"
    assert torch.equal(sgd2.state_dict()["state"][0][buf], sgd.state_dict()["state"][0][buf])
    assert [g["lr"] for g in adamw2.param_groups] == [1e-3, 1e-2]
    with pytest.raises(CheckpointError, match="MT19937"):
        load_checkpoint(tmp_path / "ck", {"net": m2}, {"sgd": sgd2, "adamw": adamw2},
                        rng=np.random.Generator(np.random.MT19937(0)))


def _saved(tmp_path):
    model = make_model()
    opt = make_opt(model)
    train(model, opt, np.random.default_rng(0), 2)
    save_checkpoint(tmp_path / "ck", {"model": model}, {"model": opt}, 2, {"a": 1}, rng=np.random.default_rng(0))
    return tmp_path / "ck"


def _fresh():
    model = make_model(seed=1)
    return {"model": model}, {"model": make_opt(model)}


def test_truncated_file_is_named(tmp_path):
    path = _saved(tmp_path)
    f = path / "model.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    modules, opts = _fresh()
    before = {k: v.clone() for k, v in modules["model"].state_dict().items()}
    with pytest.raises(CheckpointError, match=r"model\.safetensors is corrupted.*bytes, expected"):
        load_checkpoint(path, modules, opts)
    assert all(torch.equal(v, before[k]) for k, v in modules["model"].state_dict().items()), "nothing loaded"


def test_flipped_bytes_and_missing_file_are_named(tmp_path):
    path = _saved(tmp_path)
    f = path / "model.optim.safetensors"
    data = bytearray(f.read_bytes())
    data[-5] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"model\.optim\.safetensors is corrupted.*sha256"):
        load_checkpoint(path, *_fresh())
    os.remove(path / "config.json")
    with pytest.raises(CheckpointError, match=r"config\.json is missing"):
        read_config(path)
    (path / "state.json").write_text("{ not json")
    with pytest.raises(CheckpointError, match=r"state\.json is corrupted"):
        load_checkpoint(path, *_fresh())
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "absent", *_fresh())


def test_unreadable_safetensors_with_matching_hash(tmp_path, monkeypatch):
    """A file that passes the hash check but does not parse still names the file."""
    path = _saved(tmp_path)
    f = path / "model.safetensors"
    f.write_bytes(b"garbage")
    state = json.loads((path / "state.json").read_text())
    state["files"]["model.safetensors"] = {"sha256": ckpt_mod._sha256(b"garbage"), "bytes": 7}
    (path / "state.json").write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match=r"model\.safetensors: not a readable safetensors"):
        load_checkpoint(path, *_fresh())


def test_shape_key_and_group_mismatches(tmp_path):
    path = _saved(tmp_path)
    wide = make_model(hidden=32)
    with pytest.raises(CheckpointError, match=r"0\.weight: checkpoint \(16, 4\) vs module \(32, 4\)"):
        load_checkpoint(path, {"model": wide}, {}, strict=False)
    with pytest.raises(CheckpointError, match=r"0\.weight"):
        load_checkpoint(path, {"model": wide}, {"model": make_opt(wide)})

    extra_layer = nn.Sequential(*make_model(), nn.Linear(2, 2))
    with pytest.raises(CheckpointError, match=r"keys missing from the checkpoint: \['4\.weight', '4\.bias'\]"):
        load_checkpoint(path, {"model": extra_layer}, {"model": make_opt(extra_layer)})
    load_checkpoint(path, {"model": extra_layer}, {}, strict=False)  # extra keys allowed, optimizer not asked for
    from safetensors.torch import load_file
    assert torch.equal(extra_layer[0].weight, load_file(str(path / "model.safetensors"))["0.weight"])
    with pytest.warns(UserWarning, match="not in checkpoint"):
        load_checkpoint(path, {"model": make_model(), "other": nn.Linear(1, 1)}, {}, strict=False)

    with pytest.raises(CheckpointError, match=r"names do not match.*'other'"):
        load_checkpoint(path, {"model": make_model(), "other": nn.Linear(1, 1)}, {"model": make_opt(make_model())})

    m = make_model()
    two_groups = torch.optim.Adam([{"params": list(m[0].parameters())}, {"params": list(m[3].parameters())}])
    with pytest.raises(CheckpointError, match=r"param group mismatch.*\[4\].*\[2, 2\]"):
        load_checkpoint(path, {"model": m}, {"model": two_groups})
    sgd = torch.optim.SGD(m.parameters(), lr=0.1)
    with pytest.raises(CheckpointError, match="torch.optim.adam.Adam state, the optimizer is a torch.optim.sgd.SGD"):
        load_checkpoint(path, {"model": m}, {"model": sgd})


def test_crash_during_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = _saved(tmp_path)
    model, opt = make_model(seed=3), None
    opt = make_opt(model)
    real = ckpt_mod.write_safetensors
    calls = []

    def crash_on_second(p, tensors):
        calls.append(p)
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated crash")  # after model.safetensors, before the optimizer file
        real(p, tensors)

    monkeypatch.setattr(ckpt_mod, "write_safetensors", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"model": model}, {"model": opt}, 99, {"a": 2})
    monkeypatch.setattr(ckpt_mod, "write_safetensors", real)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"], "no temporary folder left behind"
    assert load_checkpoint(path, *_fresh())["step"] == 2

    # a hard kill leaves the tmp folder of a dead process: the next save removes it
    stale = tmp_path / "ck.tmp-999999999"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"partial")
    assert load_checkpoint(path, *_fresh())["step"] == 2
    save_checkpoint(path, {"model": model}, {"model": opt}, 3, {"a": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]


def test_crash_between_renames_uses_old(tmp_path, monkeypatch):
    path = _saved(tmp_path)
    model = make_model(seed=3)
    opt = make_opt(model)
    real_rename = os.rename

    def crash_on_swap(src, dst):
        if ".tmp-" in str(src):
            raise KeyboardInterrupt("simulated crash between renames")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", crash_on_swap)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"model": model}, {"model": opt}, 7, {"a": 3})
    monkeypatch.setattr(os, "rename", real_rename)
    assert not path.exists() and (tmp_path / "ck.old").is_dir()
    assert has_checkpoint(path) and read_config(path) == {"a": 1}
    assert load_checkpoint(path, *_fresh())["step"] == 2
    save_checkpoint(path, {"model": model}, {"model": opt}, 8, {"a": 3})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]
    assert load_checkpoint(path, *_fresh())["step"] == 8


def test_save_refuses_foreign_folder_and_bad_values(tmp_path):
    model = make_model()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("precious")
    with pytest.raises(CheckpointError, match="not a checkpoint folder"):
        save_checkpoint(tmp_path / "run", {"model": model}, {}, 0, {})
    assert (tmp_path / "run" / "notes.txt").read_text() == "precious"
    with pytest.raises(CheckpointError, match="file name"):
        save_checkpoint(tmp_path / "ck", {"my.model": model}, {}, 0, {})
    with pytest.raises(CheckpointError, match=r"config\.fn: .* is not JSON-serializable"):
        save_checkpoint(tmp_path / "ck", {"model": model}, {}, 0, {"fn": print})
    assert not (tmp_path / "ck").exists()
    # numpy values and paths in config are converted
    save_checkpoint(tmp_path / "ck", {"model": model}, {}, 0, {"n": np.int64(3), "p": tmp_path / "x"})
    assert read_config(tmp_path / "ck") == {"n": 3, "p": str(tmp_path / "x")}


def test_tied_weights(tmp_path):
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(5, 3)
            self.out = nn.Linear(3, 5, bias=False)
            self.out.weight = self.emb.weight

    a = Tied()
    save_checkpoint(tmp_path / "ck", {"m": a}, {}, 1, {})
    b = Tied()
    load_checkpoint(tmp_path / "ck", {"m": b}, {})
    assert torch.equal(b.emb.weight, a.emb.weight) and b.out.weight is b.emb.weight
