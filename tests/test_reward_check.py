"""genrl reward-check: rank statistics, window scoring, and the end-to-end check on a tiny run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from genrl.app.cli import main
from genrl.behavior.reward import LatentReward, PromptTarget
from genrl.data.dataset import Dataset
from genrl.evaluation.reward_check import (RewardCheckConfig, genrl_window_signal, posterior_windows, reward_check,
                                           to_markdown)
from genrl.utils.stats import average_ranks, spearman, top_fraction_score
from genrl.mfwm.pretrain import load_pretrained


def test_ranks_spearman_and_top_fraction():
    assert average_ranks(np.array([3.0, 1.0, 2.0, 2.0])).tolist() == [3.0, 0.0, 1.5, 1.5]
    a = np.array([0.1, 0.5, 0.5, 0.9, 0.2, 0.7])
    assert spearman(a, 2 * a + 1) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert np.isnan(spearman(a, np.ones(6)))
    b = np.array([0.3, 0.1, 0.6, 0.8, 0.2, 0.4])
    # hand-computed: ranks(a) = [0, 2.5, 2.5, 5, 1, 4], ranks(b) = [2, 0, 4, 5, 1, 3]
    ra, rb = np.array([0, 2.5, 2.5, 5, 1, 4]) - 2.5, np.array([2, 0, 4, 5, 1, 3]) - 2.5
    assert spearman(a, b) == pytest.approx((ra * rb).sum() / np.sqrt((ra ** 2).sum() * (rb ** 2).sum()))
    true = np.arange(20, dtype=float)
    assert top_fraction_score(true, true) == pytest.approx(1.0)  # picks the best windows
    assert top_fraction_score(-true, true) == pytest.approx(-1.0)  # picks the worst (symmetric here)
    assert np.isnan(top_fraction_score(true, np.ones(20)))


def test_genrl_signal_ranks_the_targets_own_window_first(tiny_run):
    root, _ = tiny_run
    model, _ = load_pretrained(root / "mfwm")
    ds = Dataset(root / "walker")
    stoch, index = posterior_windows(model, ds, ds.names(), 17)
    assert stoch.dtype == torch.uint8 and stoch.shape[1:] == (17, model.wm.cfg.stoch, model.wm.cfg.discrete)
    assert torch.all(stoch.sum(-1) == 1)  # one-hot modes
    assert len(index) == len(stoch) and index[1][1] == 17
    k = len(stoch) // 2
    cfg = model.wm.cfg
    target = PromptTarget(4, 17, cfg.stoch, cfg.discrete, cfg.deter)
    target.set({"stoch": stoch[k:k + 1].float().expand(4, -1, -1, -1),
                "deter": torch.zeros(4, 17, cfg.deter)})
    signal = genrl_window_signal(model, LatentReward(model.wm, target, "cosine", align_b=8), stoch)
    assert signal.shape == (len(stoch),)
    assert signal[k] == pytest.approx(1.0) and signal.argmax() == k
    assert np.median(signal) < signal[k] - 0.05


def test_reward_check_end_to_end_and_cli(tiny_run, tmp_path, capsys):
    root, vlm = tiny_run
    cfg = RewardCheckConfig(run=str(root / "mfwm"), dataset=str(root / "walker"), episodes="all",
                            tasks=("walker_stand", "walker_walk"))
    result = reward_check(cfg, vlm)
    assert result["episodes"] == 2 and result["windows"] >= 2 * (400 // 17)
    for task in ("walker_stand", "walker_walk"):
        row = result["tasks"][task]
        assert row["vlm_image"] is None  # no image embeddings stored: not computed here
        for key in ("genrl", "vlm_video"):
            assert -1 <= row[key]["spearman"] <= 1 and -1 <= row[key]["mean"] <= 1
    assert "| walker_walk | walk fast clean |" in to_markdown(result)
    with pytest.raises(ValueError, match="cheetah_run"):
        reward_check(RewardCheckConfig(run=cfg.run, dataset=cfg.dataset, episodes="all", tasks=("cheetah_run",)), vlm)
    with pytest.raises(ValueError, match="episodes"):
        reward_check(RewardCheckConfig(run=cfg.run, episodes="some"), vlm)
    out = tmp_path / "rc.json"
    assert main(["reward-check", str(root / "mfwm"), "--dataset", str(root / "walker"), "--episodes", "all",
                 "--tasks", "walker_stand", "--vlm", "minivlm", "--vlm-path", str(root / "vlm"),
                 "--out", str(out)]) == 0
    assert "walker_stand" in capsys.readouterr().out
    assert set(json.loads(out.read_text())["tasks"]) == {"walker_stand"} and out.with_suffix(".md").is_file()
