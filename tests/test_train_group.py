"""K behaviors per process (:mod:`genrl.behavior.train_group`): a group of behaviors trained on one MFWM writes K
ordinary behavior run folders; a one-member group is the single trainer; resume, interrupted saves, refusals."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import genrl.behavior.group as group_mod
import genrl.behavior.train_group as train_group
from genrl.behavior.group import GROUP_FILE, GroupCheckpoint
from genrl.behavior.multi import MultiActorCritic
from genrl.behavior.policy import load_behavior, load_policy
from genrl.behavior.train import BehaveConfig, behave
from genrl.behavior.train_group import drawing_from, group_configs, needs_embedder, train_behaviors
from genrl.utils.checkpoint import CheckpointError
from genrl.utils.runtime import ResumeMismatchError

TASKS = ["walker_stand", "walker_walk"]


def _base(root, out, **kw) -> BehaveConfig:
    base = dict(run=str(root / "mfwm"), out=str(out), task="walker_stand", preset="tiny", steps=4, eval_every=0,
                eval_episodes=0, log_every=1, save_every=2, seed=0, vlm="minivlm", vlm_path=str(root / "vlm"),
                device="cpu")
    base.update(kw)
    return BehaveConfig(**base)


def _group(root, out, tasks=TASKS, seeds=None, **kw) -> list[BehaveConfig]:
    return group_configs(_base(root, out, **kw), tasks, seeds=seeds)


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in (path / "metrics.jsonl").read_text().splitlines()]


def _train(lines: list[dict]) -> list[dict]:
    return [{k: v for k, v in x.items() if k.startswith("train/") and "seconds" not in k and "fraction" not in k}
            for x in lines if "train/reward_mean" in x]


def _same_behavior(a: Path, b: Path, exact: bool = False) -> None:
    _, ac_a, _, _ = load_behavior(a)
    _, ac_b, _, _ = load_behavior(b)
    for (name, x), y in zip(ac_a.state_dict().items(), ac_b.state_dict().values()):
        if exact:
            assert torch.equal(x, y), f"{a} vs {b}: {name}"
        else:
            torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-5, msg=lambda m: f"{a} vs {b} {name}: {m}")
    for x, y in zip(_train(_lines(a)), _train(_lines(b))):
        assert x.keys() == y.keys()
        for key in x:
            assert x[key] == pytest.approx(y[key], rel=1e-5, abs=1e-6), key


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and "tfevents" not in p.name}


# ------------------------------------------------------------------------------------------------ configs
def test_group_configs_pair_tasks_and_prompts(tmp_path):
    base = BehaveConfig(run="walker", out=str(tmp_path / "g"), task="walker_stand", seed=3)
    cfgs = group_configs(base, ["walker_stand", "walker_walk"])
    assert [Path(c.out).name for c in cfgs] == ["walker_stand", "walker_walk"]
    assert [c.seed for c in cfgs] == [3, 3] and all(c.prompt is None for c in cfgs)
    cfgs = group_configs(base, ["walker_walk"], prompts=["walk fast", "walk slowly", "walk fast"], seeds=[0, 1, 2])
    assert [Path(c.out).name for c in cfgs] == ["walker_walk-walk_fast-0", "walker_walk-walk_slowly",
                                                "walker_walk-walk_fast-2"]
    assert [c.seed for c in cfgs] == [0, 1, 2] and cfgs[1].prompt == "walk slowly"
    with pytest.raises(ValueError, match="got 2 prompts for 3 behaviors"):
        group_configs(base, ["walker_walk", "walker_run", "walker_stand"], prompts=["a", "b"])
    with pytest.raises(ValueError, match="not both"):
        group_configs(base, ["walker_walk"], prompts=["a"], videos=["v.mp4"])


def test_drawing_from_swaps_the_global_generator():
    torch.manual_seed(5)
    want_global = torch.rand(3)
    gen = torch.Generator().manual_seed(9)
    want_gen = torch.rand(4, generator=torch.Generator().manual_seed(9))
    torch.manual_seed(5)
    with drawing_from(gen):
        got_gen = torch.rand(4)
    assert torch.equal(got_gen, want_gen) and torch.equal(torch.rand(3), want_global)
    with drawing_from(torch.default_generator):  # the global generator itself: a no-op
        torch.rand(1)


# ------------------------------------------------------------------------------------------------ runs
@pytest.mark.parametrize("data_free", [False, True])
def test_one_member_group_is_the_single_run(tiny_run, tmp_path, data_free):
    root, vlm = tiny_run
    single = behave(_base(root, tmp_path / "single", data_free=data_free), progress=False, embedder=vlm)
    cfg = _base(root, tmp_path / "g" / "walker_stand", data_free=data_free)
    result = train_behaviors([cfg], tmp_path / "g", progress=False, embedder=vlm)
    member = result["members"][0]
    assert result["step"] == member["step"] == 4 and member["out"] == str(tmp_path / "g" / "walker_stand")
    assert member["train"].keys() == single["train"].keys()
    _same_behavior(tmp_path / "single", tmp_path / "g" / "walker_stand")
    assert _files(tmp_path / "single") == _files(tmp_path / "g" / "walker_stand")  # the same layout
    a, b = (json.loads((p / "config.json").read_text()) for p in (tmp_path / "single", tmp_path / "g" / "walker_stand"))
    assert {**a, "behave": {**a["behave"], "out": None}} == {**b, "behave": {**b["behave"], "out": None}}
    manifest = json.loads((tmp_path / "g" / GROUP_FILE).read_text())
    assert manifest["members"] == ["walker_stand"] and manifest["step"] == 4 and manifest["next"] is None


def test_data_free_members_equal_their_single_runs(tiny_run, tmp_path):
    root, vlm = tiny_run
    train_behaviors(_group(root, tmp_path / "g", seeds=[0, 1], data_free=True), tmp_path / "g", progress=False,
                    embedder=vlm)
    behave(_base(root, tmp_path / "walk", task="walker_walk", seed=1, data_free=True), progress=False, embedder=vlm)
    _same_behavior(tmp_path / "walk", tmp_path / "g" / "walker_walk")  # member 1: its own generator throughout
    behave(_base(root, tmp_path / "walk0", task="walker_walk", seed=0, data_free=True), progress=False, embedder=vlm)
    with pytest.raises(AssertionError):  # and the comparison tells seeds apart
        _same_behavior(tmp_path / "walk0", tmp_path / "g" / "walker_walk")


def test_two_member_group_writes_two_behavior_runs(tiny_run, tmp_path):
    from genrl.evaluation.compare import load_eval

    root, vlm = tiny_run
    out = tmp_path / "g"
    result = train_behaviors(_group(root, out, eval_episodes=1), out, progress=False, embedder=vlm)
    assert [Path(m["out"]).name for m in result["members"]] == TASKS
    assert sorted(p.name for p in out.iterdir()) == [GROUP_FILE, *sorted(TASKS)]
    for task in TASKS:
        run = out / task
        cfg = json.loads((run / "config.json").read_text())
        assert cfg["kind"] == "genrl-behavior" and cfg["task"] == task
        assert [x["step"] for x in _lines(run) if "train/reward_mean" in x] == [1, 2, 3, 4]
        assert [x["step"] for x in _lines(run) if "eval/return_mean" in x] == [4]
        assert (run / "evals" / "step_0000004.json").is_file() and (run / "videos" / "eval_0000004.mp4").is_file()
        final = load_eval(run / "eval.json")
        assert final.task == task and final.column == "genrl" and final.seed == 0
        policy, pcfg = load_policy(run)
        assert pcfg["task"] == task
        policy.reset(1)
        assert policy.act(np.zeros((1, 64, 64, 3), np.uint8), np.ones(1, bool)).shape == (1, 6)
    assert not needs_embedder(_group(root, out))
    _, stand, _, _ = load_behavior(out / "walker_stand")
    _, walk, _, _ = load_behavior(out / "walker_walk")
    assert not torch.equal(stand.actor.mean_out.weight, walk.actor.mean_out.weight)  # different prompts


def test_members_are_evaluated_at_the_cadence_of_a_single_run(tiny_run, tmp_path, monkeypatch):
    import genrl.behavior.train as train_mod

    root, vlm = tiny_run
    calls = []

    def fake_eval(model, ac, task, step, out, logger, episodes, seed, workers=1):
        calls.append((Path(out).name, step))
        return {"step": step, "episodes": episodes, "returns": [0.0], "normalized": [0.0], "mean_normalized": 0.0}

    monkeypatch.setattr(train_mod, "evaluate_and_log", fake_eval)
    monkeypatch.setattr(train_group, "evaluate_and_log", fake_eval)
    settings = dict(steps=6, eval_every=4, eval_episodes=1)
    behave(_base(root, tmp_path / "single", **settings), progress=False, embedder=vlm)
    single = [step for _, step in calls]
    calls.clear()
    train_behaviors(_group(root, tmp_path / "g", **settings), tmp_path / "g", progress=False, embedder=vlm)
    assert single == [4, 6] and calls == [(task, step) for step in single for task in TASKS]
    assert all((tmp_path / "g" / task / "eval.json").is_file() for task in TASKS)


def test_group_resume_continues_exactly_after_any_interruption(tiny_run, tmp_path, crash_after_save, monkeypatch):
    root, vlm = tiny_run

    def run(name):
        return train_behaviors(_group(root, tmp_path / name), tmp_path / name, progress=False, embedder=vlm)

    run("a")
    # 1. interrupted right after the group's save of step 2
    real_commit = GroupCheckpoint.commit

    def commit_then_crash(self, step):
        real_commit(self, step)
        if step == 2:
            raise KeyboardInterrupt("simulated crash")

    with monkeypatch.context() as mp, pytest.raises(KeyboardInterrupt):
        mp.setattr(GroupCheckpoint, "commit", commit_then_crash)
        run("b")
    assert json.loads((tmp_path / "b" / GROUP_FILE).read_text())["step"] == 2
    # 2. interrupted between two members' checkpoint writes of step 4: the group is still at step 2
    with crash_after_save(train_group, 4):
        run("b")
    assert json.loads((tmp_path / "b" / GROUP_FILE).read_text())["step"] == 2
    assert (tmp_path / "b" / "walker_stand" / "checkpoint.next").is_dir()
    # 3. interrupted after the commit point, one member's checkpoint swapped in: the next start finishes the save
    real_swap, swaps = group_mod._swap_in, []

    def swap_then_crash(ckpt):
        real_swap(ckpt)
        swaps.append(ckpt)
        if len(swaps) == 1:
            raise KeyboardInterrupt("simulated crash")

    with monkeypatch.context() as mp, pytest.raises(KeyboardInterrupt):
        mp.setattr(group_mod, "_swap_in", swap_then_crash)
        run("b")
    assert json.loads((tmp_path / "b" / GROUP_FILE).read_text())["next"] == 4
    result = run("b")  # resumes without the VLM: the targets are in the checkpoints
    assert result["step"] == 4 and json.loads((tmp_path / "b" / GROUP_FILE).read_text())["step"] == 4
    assert not any((tmp_path / "b").glob("*/checkpoint.*"))
    for task in TASKS:
        _same_behavior(tmp_path / "a" / task, tmp_path / "b" / task, exact=True)
        assert [x["step"] for x in _lines(tmp_path / "b" / task) if "train/reward_mean" in x] == [1, 2, 3, 4]
    # a longer group continues from the saved step
    cfgs = [replace(c, steps=6) for c in _group(root, tmp_path / "b")]
    assert train_behaviors(cfgs, tmp_path / "b", progress=False)["step"] == 6


def test_mismatched_or_inconsistent_groups_are_refused(tiny_run, tmp_path):
    root, vlm = tiny_run
    out = tmp_path / "g"
    train_behaviors(_group(root, out, steps=2), out, progress=False, embedder=vlm)
    with pytest.raises(ResumeMismatchError, match=r"walker_stand holds a run with other settings: "
                                                  r"behavior\.score='max_cosine' \(this run: 'cosine'\)"):
        train_behaviors(_group(root, out, steps=2, score="cosine"), out, progress=False)
    with pytest.raises(ResumeMismatchError, match="holds a group with other members"):
        train_behaviors(_group(root, out, tasks=["walker_stand", "walker_run"]), out, progress=False)
    with pytest.raises(ResumeMismatchError, match="holds a group with other members"):  # the order matters too
        train_behaviors(_group(root, out, tasks=TASKS[::-1]), out, progress=False)
    with pytest.raises(ValueError, match="must share steps"):
        cfgs = _group(root, out)
        train_behaviors([cfgs[0], replace(cfgs[1], steps=8)], out, progress=False)
    with pytest.raises(ValueError, match="share a run folder"):
        cfgs = _group(root, out)
        train_behaviors([cfgs[0], replace(cfgs[1], out=cfgs[0].out)], out, progress=False)
    with pytest.raises(ResumeMismatchError, match="not part of a group"):  # a single run's folder as a member
        train_behaviors([_base(root, out / "walker_stand")], tmp_path / "other", progress=False)
    with pytest.raises(ResumeMismatchError, match="holds a single run"):
        train_behaviors(_group(root, out / "walker_stand"), out / "walker_stand", progress=False)
    # a member trained further on its own: the group notices instead of mixing steps
    behave(_base(root, out / "walker_walk", task="walker_walk", steps=4), progress=False)
    with pytest.raises(CheckpointError, match=r"not at its step 2 \(checkpoint steps: .*walker_walk: 4\)"):
        train_behaviors(_group(root, out, steps=4), out, progress=False)


def test_nan_in_one_member_stops_the_group_and_names_it(tiny_run, tmp_path, monkeypatch):
    root, vlm = tiny_run
    real, calls = MultiActorCritic.update, []

    def nan_at_the_fourth_update(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 4:
            out[1]["reward_mean"] = float("nan")
        return out

    monkeypatch.setattr(MultiActorCritic, "update", nan_at_the_fourth_update)
    out = tmp_path / "g"
    with pytest.raises(FloatingPointError, match=r"behavior: non-finite metric\(s\) walker_walk/reward_mean=nan at "
                                                 r"step 3; stopping, the last good checkpoint in .*checkpoint is kept"):
        train_behaviors(_group(root, out, steps=6), out, progress=False, embedder=vlm)
    for task in TASKS:
        assert json.loads((out / task / "checkpoint" / "state.json").read_text())["step"] == 2
    assert json.loads((out / GROUP_FILE).read_text())["step"] == 2
