"""Dataset collection: deterministic plan, expert/perturbed jobs, resume after an interruption."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from genrl.data.collect import collect, plan, run_job
from genrl.data.dataset import Dataset
from genrl.data.episode import load_episode
from genrl.data.experts import ExpertPolicy, find_experts


def _fake_experts(root, tasks=("walker_stand", "walker_walk")):
    """Tiny random SAC-shaped actors saved like trained experts (24-d walker state, 6-d action)."""
    torch.manual_seed(0)
    for task in tasks:
        for pct in (50, 100):
            policy = ExpertPolicy(24, 6, hidden=(8, 8))
            (root / task).mkdir(parents=True, exist_ok=True)
            save_file({k: v.contiguous() for k, v in policy.state_dict().items()},
                      str(root / task / f"actor_{pct:03d}.safetensors"))
    return root


def test_plan_is_deterministic_and_grows_at_the_end(tmp_path):
    experts = _fake_experts(tmp_path / "experts")
    assert set(find_experts("walker", experts)) == {"walker_stand", "walker_walk"}
    small, big = plan("walker", 10, experts_dir=experts), plan("walker", 20, experts_dir=experts)
    assert big[:10] == small
    sources = [j.source for j in big]
    assert sources.count("expert") == 10 and {"random", "smooth", "perturbed"} <= set(sources)
    experts_jobs = [j for j in big if j.source == "expert"]
    assert {j.task for j in experts_jobs} == {"stand", "walk"} and {j.snapshot for j in experts_jobs} == {50, 100}
    assert all(len(j.experts) == 2 for j in big if j.source == "perturbed")
    # no experts: exploration only
    assert {j.source for j in plan("walker", 6, experts_dir=tmp_path / "none")} == {"random", "smooth"}


def test_expert_and_perturbed_jobs_write_valid_episodes(tmp_path):
    experts = _fake_experts(tmp_path / "experts")
    jobs = plan("walker", 6, experts_dir=experts)
    out = tmp_path / "episodes"
    for job in (next(j for j in jobs if j.source == "expert"), next(j for j in jobs if j.source == "perturbed")):
        name, meta, length = run_job(job, str(out))
        ep = load_episode(out / f"{name}.npz")
        assert length == 501 and ep["observation"].shape == (501, 3, 64, 64)
        assert np.all(np.abs(ep["action"]) <= 1) and not ep["action"][0].any()
        assert "stand" in list(ep["task_names"]) and ep["task_rewards"].shape == (501, len(ep["task_names"]))
        assert meta["subset"].startswith("walker ")


def test_collect_resumes_and_completes(tmp_path):
    out = tmp_path / "ds"
    first = collect("walker", out, frames=600, workers=1, experts_dir=tmp_path / "none", progress=False)
    assert first["collected"] == 2 and first["frames"] == 1002
    ds = Dataset(out)
    # simulate a crash after the episode file was written but before the manifest was updated
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["episodes"][ds.names()[-1]]
    (out / "manifest.json").write_text(json.dumps(manifest))
    again = collect("walker", out, frames=600, workers=1, experts_dir=tmp_path / "none", progress=False)
    assert again["collected"] == 0 and again["skipped"] == 2 and Dataset(out).frames() == 1002
    rows = {r.subset: r.frames for r in Dataset(out).composition()}
    assert rows == {"walker expl": 1002}
    with pytest.raises(ValueError, match="walker"):
        collect("cheetah", out, frames=10, progress=False)
