"""``genrl import-official``: an official agent saved the way the official ``train.py`` saves snapshots becomes a
genrl run folder whose decoded prompt frames and rewards equal the official agent's own (skipped without
``../shared``)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

import official_support as S
from genrl.app.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    """A tiny randomised official agent pickled as ``Workspace.save_snapshot`` does, and the agent itself."""
    off = S.official_modules()
    agent = S.build_official_agent(seed=1, imag=False)
    S.randomize_(agent, 7)
    path = tmp_path_factory.mktemp("official") / "snapshot_1000.pt"
    payload = {"agent": agent, "_global_step": 1000, "_global_episode": 3}
    with path.open("wb") as f:
        torch.save(payload, f)
    return path, agent, off


def _fp32(model):
    """This CPU may resolve precision ``auto`` to bf16; the comparison is of the weights, so use fp32."""
    model.cfg = model.wm.cfg = replace(model.wm.cfg, precision="fp32")
    return model


def test_import_decodes_and_rewards_like_the_official_agent(snapshot, tmp_path, capsys):
    from genrl.behavior.reward import LatentReward, build_target
    from genrl.data.layout import INTERNVIDEO2_ID
    from genrl.mfwm.decode import decode_prompt
    from genrl.mfwm.pretrain import _load_init, load_pretrained
    from genrl.worldmodel.model import to_uint8

    path, agent, off = snapshot
    out = tmp_path / "run"
    assert main(["import-official", str(path), "--official-code", str(S.OFFICIAL), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "convert only files you trust" in captured.err and '"official_step": 1000' in captured.out
    model, cfg = load_pretrained(out)
    assert (cfg["domain"], cfg["embedder_id"], cfg["step"], cfg["embed_dim"]) == ("stickman", INTERNVIDEO2_ID, 1000,
                                                                                  agent.viclip_emb_dim)
    assert model.wm.reward is None and cfg["imported_from"]["sha256"]
    assert _load_init(str(out), model, cfg) == 1000  # what `genrl pretrain --init RUN` does with it
    _fp32(model)
    g = torch.Generator().manual_seed(3)
    emb = torch.nn.functional.normalize(torch.randn(1, agent.viclip_emb_dim, generator=g), dim=-1)
    rows, H, s = 3, agent.cfg.imag_horizon, agent.cfg.rssm.stoch
    init_u = torch.rand(rows, s, 1, generator=g)
    # decoded frames of a prompt: official video_imagine + decoder vs genrl's decode_prompt
    with torch.no_grad(), S.fixed_noise(S.NoiseTape().put("prior", [init_u]), off):
        ref = agent.wm.connector.video_imagine(emb[:, None].repeat(rows, 12, 1), None, sample=False,
                                               reset_every_n_frames=False, denoise=True)
        frames_o = to_uint8(agent.wm.heads["decoder"](agent.wm.decoder_input_fn(ref))["observation"].mean)
    with S.fixed_noise(S.NoiseTape().put("prior", [init_u]), off):
        frames = torch.from_numpy(decode_prompt(model, emb, 12, use_aligner=True, samples=rows))
    assert frames.shape == frames_o.shape == (rows, 12, 64, 64, 3)
    assert (frames.int() - frames_o.int()).abs().max() <= 1  # uint8 rounding of float32-equal frames
    assert frames.float().std() > 1.0  # not a blank picture
    # rewards of an imagined trajectory for that prompt (official offset range; the extra one: parity tests)
    agent.wm.viclip_model = S.FakeText(emb)
    D = agent.cfg.rssm.discrete
    stoch = torch.nn.functional.one_hot(torch.randint(0, D, (rows, H + 1, s), generator=g), D).float()
    seq = {"stoch": stoch.transpose(0, 1), "deter": torch.zeros(H + 1, rows, agent.cfg.rssm.deter)}
    with torch.no_grad(), S.fixed_noise(S.NoiseTape().put("prior", [init_u]), off):
        ref_r = off.utils.video_text_reward(agent, seq, score_fn="max_cosine", align_sequence=True,
                                            skip_first_target=True, task_prompt="p")[..., 0].T
    del agent.unconditional_target
    with torch.no_grad(), S.fixed_noise(S.NoiseTape().put("prior", [init_u]), off):
        target = build_target(model, emb, rows, H, use_aligner=True, skip_first=True)
        reward, _ = S.official_range_reward(LatentReward(model.wm, target, "max_cosine", 8))(stoch)
    S.assert_close(reward, ref_r, "imported model's reward")


def test_reward_head_kept_on_request_and_bad_input(snapshot, tmp_path, capsys):
    from genrl.mfwm.pretrain import load_pretrained

    path, agent, _ = snapshot
    out = tmp_path / "with_head"
    argv = ["import-official", str(path), "--official-code", str(S.OFFICIAL), "--out", str(out)]
    assert main(argv + ["--keep-reward-head"]) == 0
    model, _ = load_pretrained(out)
    feat = torch.randn(5, model.wm.feat_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        S.assert_close(_fp32(model).wm.reward_mean(feat), agent.wm.heads["reward"](feat).mean[:, 0], "reward head")
    capsys.readouterr()
    assert main(argv) == 2  # the folder holds a run now
    assert "already holds a run" in capsys.readouterr().err
    assert main(["import-official", str(path), "--official-code", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.splitlines()  # the trust note, then one error line
    assert len(err) == 2 and err[1].startswith("error: --official-code") and "no agent/genrl.py" in err[1]
    assert main(argv[:-1] + [str(tmp_path / "y"), "--domain", "dragon"]) == 2
    assert "give --domain" in capsys.readouterr().err
