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


# sha256 of the first 200 jobs (fields, episode name and manifest entry) of each non-kitchen domain's plan for seeds 0
# and 1, with the packaged experts' layout (walker run/stand/walk and cheetah run, snapshots 25/50/100), computed with
# the code before the kitchen's scripted episodes were added: those plans must never change (re-collecting a
# dataset must keep its episode names).
PLAN_DIGESTS = {
    "walker": ("6bd6e0621e1f051da5effbdfd6069a592129b6c1079b8b01b2ba09c70a35e972",
               "0f1d39b0cfd5bf2876c8a15f10b2c30f047d06c557773a21641ad3c76bf23128"),
    "cheetah": ("e2980443dae9701c243282c96f97dc99cfcf4607cba4848a1038094762c5e16f",
                "c49fd16cf8c50cadb9c0e70ce8ce1f36f1faaa8d52449eb5562d4e0ac02bd689"),
    "quadruped": ("a8aa55606dfb7da038c00b36a3d93cd3c93a3b2d15d3531868b044482948f492",
                  "d7dbbb89f1d62b8ba1b11b0f1d8149c7a770c3aeeb5711eaf6ea39991559a451"),
    "stickman": ("bf3b1d578828dcad9161054147c56b53d5317273c487a6afea1f5ef4503f814e",
                 "d69762419308767372afc96d8798cbeecb53cefea75bff87291031854312172b"),
}


def test_plans_of_the_other_domains_are_unchanged(tmp_path):
    import hashlib
    from pathlib import Path

    for task in ("walker_run", "walker_stand", "walker_walk", "cheetah_run"):
        (tmp_path / task).mkdir()
        for pct in (25, 50, 100):
            (tmp_path / task / f"actor_{pct:03d}.safetensors").write_bytes(b"")  # plan() only lists the files
    for domain, digests in PLAN_DIGESTS.items():
        for seed, expected in enumerate(digests):
            h = hashlib.sha256()
            for j in plan(domain, 200, seed=seed, experts_dir=tmp_path):
                row = [j.index, j.domain, j.task, j.source, j.noise, j.snapshot,
                       [f"{Path(p).parent.name}/{Path(p).name}" for p in j.experts], j.seed, j.name, j.meta()]
                h.update(json.dumps(row, sort_keys=True).encode())
            assert h.hexdigest() == expected, f"the {domain} collection plan (seed {seed}) changed"
