"""Shipped MFWMs (genrl.mfwm.shipped), pre-training snapshots and --init, and the oracle reward head."""

import json

import numpy as np
import pytest
import torch

from genrl.app.cli import main
from genrl.mfwm import shipped
from genrl.mfwm.decode import decode_prompt
from genrl.mfwm.pretrain import PretrainConfig, load_pretrained, pretrain, snapshot_dir


@pytest.fixture
def models_root(tiny_run, tmp_path, monkeypatch):
    """The tiny fixture's MFWM exported as shipped model ``tinywalker`` into a models folder on the search path."""
    root, _ = tiny_run
    folder = tmp_path / "models"
    shipped.export_model(root / "mfwm", "tinywalker", {"domain": "walker", "data": "tiny fixture"}, out_root=folder)
    monkeypatch.setenv(shipped.PATH_ENV, str(folder))
    return folder


def test_shipped_model_loads_by_name_in_fp16_and_decodes_like_fp32(tiny_run, models_root):
    root, vlm = tiny_run
    assert "tinywalker" in shipped.shipped_models()
    st = json.loads((models_root / "tinywalker" / "checkpoint" / "state.json").read_text())
    from safetensors import safe_open
    with safe_open(str(models_root / "tinywalker" / "checkpoint" / "mfwm.safetensors"), "pt") as f:
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}
    assert torch.float16 in dtypes and torch.float32 not in dtypes
    full, cfg_full = load_pretrained(root / "mfwm")
    half, cfg_half = load_pretrained("tinywalker")
    assert cfg_half["step"] == cfg_full["step"] == st["step"]
    assert next(half.parameters()).dtype == torch.float32  # cast back on load
    emb = torch.as_tensor(vlm.embed_text(["standing upright"]))
    frames = decode_prompt(half, emb, horizon=8, samples=2)  # the shipped model decodes a prompt by name
    assert frames.shape == (2, 8, 64, 64, 3) and frames.dtype == np.uint8
    torch.manual_seed(0)
    with torch.no_grad():
        states = full.imagine_prompt(emb.expand(2, -1), 8)
        torch.manual_seed(0)
        states_half = half.imagine_prompt(emb.expand(2, -1), 8)
    for key in states:  # the connector's first step from the same initial-state noise (later steps may take
        if states[key].is_floating_point() and key != "stoch":  # another mode where two classes nearly tie)
            torch.testing.assert_close(states_half[key][:, 0], states[key][:, 0], atol=0.02, rtol=0.02)
    diff = np.abs(full.decode_states(states).numpy().astype(np.int16)
                  - half.decode_states(states).numpy().astype(np.int16))
    assert diff.mean() < 0.5 and diff.max() <= 4, (diff.mean(), diff.max())  # same z: fp16 rounding only


def test_unknown_model_name_lists_the_shipped_ones(models_root, capsys):
    with pytest.raises(FileNotFoundError, match="shipped: .*tinywalker"):
        shipped.resolve_run("no_such_model")
    assert main(["decode", "no_such_model", "--prompt", "x", "--out", "x.gif"]) == 2
    assert "tinywalker" in capsys.readouterr().err


def test_models_command_lists_cards(models_root, capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert '"name": "tinywalker"' in out and '"domain": "walker"' in out


def test_behave_from_a_shipped_name_records_the_name(tiny_run, models_root, tmp_path):
    from genrl.behavior.policy import load_behavior
    from genrl.behavior.train import BehaveConfig, behave

    root, vlm = tiny_run
    out = tmp_path / "stand"
    res = behave(BehaveConfig(run="tinywalker", out=str(out), task="walker_stand", dataset=str(root / "walker"),
                              preset="tiny", steps=4, eval_episodes=0, save_every=2), progress=False, embedder=vlm)
    assert res["step"] == 4
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["run"] == "tinywalker"
    _, _, cfg2, _ = load_behavior(out)  # resolves the name again and checks the fingerprint
    assert cfg2["world_model"]["sha256"] == cfg["world_model"]["sha256"]


def test_shipped_model_without_its_dataset_says_how_to_get_it(tiny_run, models_root, tmp_path):
    from genrl.behavior.train import BehaveConfig, behave

    cfg = json.loads((models_root / "tinywalker" / "config.json").read_text())
    cfg["pretrain"]["dataset"] = str(tmp_path / "gone")
    cfg["dataset_command"] = "genrl collect walker --out gone --frames 1000"
    (models_root / "tinywalker" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(FileNotFoundError, match="genrl collect walker --out gone"):
        behave(BehaveConfig(run="tinywalker", out=str(tmp_path / "b"), task="walker_stand", preset="tiny",
                            steps=1, eval_episodes=0), progress=False, embedder=tiny_run[1])


def test_snapshots_and_init_continue_the_update_count(tiny_run, models_root, tmp_path):
    root, vlm = tiny_run
    out = tmp_path / "cont"
    cfg = PretrainConfig(dataset=str(root / "walker"), out=str(out), embedder_id=vlm.id, n_frames=vlm.n_frames,
                         preset="tiny", steps=14, save_every=2, log_every=2, report_every=100,
                         snapshot_at=(12,), init="tinywalker")
    pretrain(cfg, progress=False)
    _, info = load_pretrained(out)
    assert info["step"] == 14  # 10 updates of the shipped model + 4 here
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert min(x["step"] for x in lines) > 10
    snap, sinfo = load_pretrained(snapshot_dir(out, 12))
    assert sinfo["step"] == 12
    assert not list(snapshot_dir(out, 12).glob("checkpoint/*.optim.*"))  # weights only
    bad = PretrainConfig(dataset=str(root / "walker"), out=str(tmp_path / "bad"), embedder_id=vlm.id,
                         n_frames=vlm.n_frames, preset="tiny", overrides={"deter": 16}, steps=12, init="tinywalker")
    from genrl.data.dataset import DatasetError
    with pytest.raises(DatasetError, match="--init tinywalker: that model has world_model"):
        pretrain(bad, progress=False)


def test_init_may_change_the_training_settings(tiny_run, models_root, tmp_path, capsys):
    """--init with another learning rate / batch (not shapes) continues the model and records the new settings."""
    root, vlm = tiny_run
    out = tmp_path / "lowlr"
    pretrain(PretrainConfig(dataset=str(root / "walker"), out=str(out), embedder_id=vlm.id, n_frames=vlm.n_frames,
                            preset="tiny", overrides={"lr": 3e-5, "batch_size": 2}, steps=12, save_every=2,
                            log_every=2, report_every=100, init="tinywalker"), progress=False)
    printed = capsys.readouterr().out
    assert "training settings changed:" in printed and "lr 0.0001 -> 3e-05" in printed
    assert "batch_size 4 -> 2" in printed
    _, info = load_pretrained(out)
    assert info["step"] == 12
    assert json.loads((out / "config.json").read_text())["world_model"]["lr"] == 3e-5


def test_init_from_another_domain_is_a_warm_start(tiny_run, models_root, tmp_path, capsys):
    root, vlm = tiny_run
    cfg_file = models_root / "tinywalker" / "config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["domain"] = "cheetah"  # the same shapes, another embodiment (as cheetah and walker: 6 actions)
    cfg_file.write_text(json.dumps(cfg))
    out = tmp_path / "warm"
    pretrain(PretrainConfig(dataset=str(root / "walker"), out=str(out), embedder_id=vlm.id, n_frames=vlm.n_frames,
                            preset="tiny", steps=12, save_every=2, log_every=2, report_every=100,
                            init="tinywalker"), progress=False)
    assert "warm start from the cheetah model on walker data" in capsys.readouterr().out
    assert load_pretrained(out)[1]["step"] == 12
    cfg["world_model"] = {**cfg["world_model"], "deter": cfg["world_model"]["deter"] * 2}
    cfg_file.write_text(json.dumps(cfg))  # a model of another world-model shape is refused
    from genrl.data.dataset import DatasetError
    with pytest.raises(DatasetError, match="that model has world_model"):
        pretrain(PretrainConfig(dataset=str(root / "walker"), out=str(tmp_path / "bad2"), embedder_id=vlm.id,
                                n_frames=vlm.n_frames, preset="tiny", steps=12, init="tinywalker"), progress=False)


def test_init_of_another_vlm_then_frozen_world_model_trains_only_the_connector(tiny_run, tmp_path, capsys):
    """A model of another VLM gives its world model only; --freeze-world-model then leaves it untouched."""
    root, vlm = tiny_run
    src = root / "mfwm"
    cfg = json.loads((src / "config.json").read_text())
    other = tmp_path / "other_vlm"
    other.mkdir()
    (other / "checkpoint").symlink_to((src / "checkpoint").resolve())
    (other / "config.json").write_text(json.dumps({**cfg, "embedder_id": "an-older-vlm"}))
    source, src_cfg = load_pretrained(src)
    start = src_cfg["step"]
    out = tmp_path / "new_vlm"

    def run(steps: int):
        pretrain(PretrainConfig(dataset=str(root / "walker"), out=str(out), embedder_id=vlm.id,
                                n_frames=vlm.n_frames, preset="tiny", steps=steps, save_every=2, log_every=2,
                                report_every=100, init=str(other), freeze_world_model=True), progress=False)
        return load_pretrained(out)

    first, first_cfg = run(start + 4)
    assert "VLM 'an-older-vlm' -> " in capsys.readouterr().out
    assert first_cfg["step"] == start + 4 and first_cfg["embedder_id"] == vlm.id
    second, _ = run(start + 8)  # resumes
    was, a, b = source.state_dict(), first.state_dict(), second.state_dict()
    for key in was:
        if key.startswith("wm."):  # copied, then frozen: bit-identical
            assert torch.equal(a[key], was[key]) and torch.equal(b[key], was[key]), key
        elif was[key].is_floating_point() and was[key].numel() > 1:  # not the old VLM's connector / aligner
            assert not torch.equal(a[key], was[key]), key
    moved = [k for k in a if not k.startswith("wm.") and a[k].is_floating_point() and not torch.equal(a[k], b[k])]
    assert len(moved) >= 4, moved  # the connector and aligner are training
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = [m for m in metrics if "train/connector_kl" in m]
    assert train and not any("train/image_mse" in m for m in train), metrics[:2]  # no world-model update


def test_init_across_action_sizes_copies_every_tensor_that_fits(tiny_run, tmp_path, capsys):
    """A model of another action size (stickman 10 from walker 6) warm-starts all but the action-input layer."""
    from genrl.mfwm.pretrain import CKPT, _load_init, build_model
    from genrl.utils.checkpoint import save_checkpoint

    root, vlm = tiny_run
    cfg = json.loads((root / "mfwm" / "config.json").read_text())
    other = {**cfg, "domain": "stickman", "action_dim": 10}
    torch.manual_seed(1)
    source = build_model(other)
    src_folder = tmp_path / "stick"
    src_folder.mkdir()
    (src_folder / "config.json").write_text(json.dumps(other))
    save_checkpoint(src_folder / CKPT, {"mfwm": source}, {}, step=7, config=other)
    torch.manual_seed(2)
    model = build_model(cfg)
    fresh_before = {k: v.clone() for k, v in model.state_dict().items()}
    assert _load_init(str(src_folder), model, cfg) == 7
    out = capsys.readouterr().out
    assert "action size 10 -> 6" in out
    src, got = source.state_dict(), model.state_dict()
    differing = [k for k in got if got[k].shape != src[k].shape]
    assert differing and all(k.split(".")[-1] in ("weight", "bias") for k in differing)
    for k in got:
        if k in differing:
            assert torch.equal(got[k], fresh_before[k]), k  # kept its fresh initialization
            assert k in out
        else:
            assert torch.equal(got[k], src[k]), k
    assert len(differing) <= 2  # only the layer(s) that read the action


def test_oracle_head_learns_a_reward_of_the_latents():
    from genrl.behavior.oracle import OracleReward, fit_head

    gen = torch.Generator().manual_seed(0)

    def data(n):  # 4 categorical variables of 8 classes; the reward is a noisy function of two of them
        idx = torch.randint(0, 8, (n, 4), generator=gen)
        z = torch.nn.functional.one_hot(idx, 8).to(torch.uint8)
        r = idx[:, 0].float() / 7 + 0.5 * (idx[:, 1] == 3).float() + 0.05 * torch.randn(n, generator=gen)
        return z, r

    (z, r), (zc, rc) = data(2000), data(500)
    head, report = fit_head(z, r, zc, rc, steps=400, batch_size=256)
    assert report["check_spearman"] > 0.9 and report["check_mse"] < 0.1 * rc.var().item(), report
    stoch = zc[:6].float().reshape(2, 3, 4, 8).requires_grad_(True)
    reward, offsets = OracleReward(head)(stoch)
    assert reward.shape == (2, 3) and offsets.tolist() == [0, 0]
    reward.sum().backward()
    assert stoch.grad is not None and stoch.grad.abs().sum() > 0  # differentiable for dynamics backprop


def test_oracle_on_the_shipped_walker_ranks_the_tiny_fixture_better_than_chance(tiny_run):
    from genrl.behavior.oracle import fit_oracle
    from genrl.data.dataset import Dataset

    if "walker" not in shipped.shipped_models():
        pytest.skip("no shipped walker MFWM in this checkout (src/genrl/mfwm/weights/walker)")
    root, _ = tiny_run  # the tiny MFWM's 4x4 latents collapse to a few states: the shipped model reads the frames
    model, _ = load_pretrained("walker")
    _, report = fit_oracle(model, Dataset(root / "walker"), "walker_stand", steps=300, batch_size=256, heldout=0.5)
    assert report["check_steps"] > 400 and report["fit_steps"] > 400
    assert report["check_spearman"] > 0.3, report


def test_behave_with_the_oracle_reward_resumes_and_evaluates(tiny_run, tmp_path):
    from genrl.behavior.policy import load_behavior
    from genrl.behavior.train import BehaveConfig, behave

    root, vlm = tiny_run
    out = tmp_path / "oracle"
    cfg = BehaveConfig(run=str(root / "mfwm"), out=str(out), task="walker_stand", preset="tiny", steps=2,
                       eval_episodes=0, save_every=2, reward="oracle")
    behave(cfg, progress=False, embedder=vlm)
    report = json.loads((out / "oracle.json").read_text())
    assert report["task"] == "walker_stand" and np.isfinite(report["check_mse"])
    cfg.steps = 4
    assert behave(cfg, progress=False)["step"] == 4  # resumed: the head comes back from the checkpoint
    load_behavior(out)
    with pytest.raises(ValueError, match="reward must be one of"):
        behave(BehaveConfig(run=str(root / "mfwm"), out=str(tmp_path / "x"), task="walker_stand", reward="true"),
               progress=False)


def test_every_packaged_model_has_a_consistent_card_and_loads():
    """Each model in the package (walker, cheetah, ...) loads by name; its card, config and weights agree."""
    from safetensors import safe_open
    packaged = shipped.shipped_models()
    assert {"walker", "cheetah"} <= set(packaged)
    for name, folder in packaged.items():
        card = shipped.read_card(name)
        model, cfg = load_pretrained(name)
        assert card["domain"] == cfg["domain"] and card["step"] == cfg["step"], name
        assert cfg["pretrain"]["dataset"] == f"runs/data/{cfg['domain']}", name
        with safe_open(str(folder / "checkpoint" / "mfwm.safetensors"), "pt") as f:
            assert all(f.get_tensor(k).dtype in (torch.float16, torch.int64, torch.bool) for k in f.keys()), name
        assert all(torch.isfinite(p).all() for p in model.parameters()), name
