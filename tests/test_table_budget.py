"""scripts/table_budget.py: a run's training seconds exclude its evaluations and a group member pays 1/K."""

import json
from pathlib import Path

import pytest


def _write_run(run: Path, method: str, task: str, seed: int, normalized: float) -> None:
    run.mkdir(parents=True)
    lines = [{"step": 100, "time": 1000.0, "train/loss": 1.0},
             {"step": 200, "time": 1010.0, "eval/seconds": 30.0},        # 30 s of evaluation inside the span
             {"step": 400, "time": 1060.0, "train/loss": 0.5}]
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    (run / "eval.json").write_text(json.dumps({"method": method, "reward": None if method.startswith("genrl") else "video",
                                               "task": task, "seed": seed, "mean_normalized": normalized}))


def test_train_seconds_excludes_evaluations_and_scales_to_all_updates(tmp_path, load_script):
    tb = load_script("table_budget")
    _write_run(tmp_path / "iql", "iql", "walker_walk", 0, 0.1)
    seconds, steps = tb.train_seconds(tmp_path / "iql" / "metrics.jsonl")
    assert steps == 400
    assert seconds == pytest.approx((60.0 - 30.0) * 400 / 300)


def test_group_members_share_the_group_time_and_rows_summarize(tmp_path, load_script):
    tb = load_script("table_budget")
    group = tmp_path / "genrl" / "s0"
    for task in ("walker_stand", "walker_walk"):
        _write_run(group / task, "genrl", task, 0, 0.5)
    (group / "group.json").write_text(json.dumps({"members": ["walker_stand", "walker_walk"]}))
    _write_run(tmp_path / "baselines" / "iql_video_walker_walk_s0", "iql", "walker_walk", 0, 0.1)
    _write_run(tmp_path / "baselines" / "iql_video_walker_walk_s1", "iql", "walker_walk", 1, 0.3)
    rows = tb.collect(tmp_path)
    by = {(r["column"], r["task"], r["seed"]): r for r in rows}
    assert by[("genrl", "walker_stand", 0)]["seconds"] == pytest.approx(40.0 / 2, abs=0.1)
    assert by[("iql-video", "walker_walk", 1)]["seconds"] == pytest.approx(40.0, abs=0.1)
    table = tb.summarize(rows)
    assert "| iql-video | walker_walk | 2 | 400 | 40 | 0.20 ± 0.10 |" in table
    assert "| genrl | walker_stand | 1 | 400 | 20 | 0.50 (one seed) |" in table


def test_train_seconds_needs_two_records(tmp_path, load_script):
    tb = load_script("table_budget")
    f = tmp_path / "metrics.jsonl"
    f.write_text(json.dumps({"step": 1, "time": 0.0, "train/loss": 1.0}) + "\n")
    with pytest.raises(ValueError, match="fewer than two training records"):
        tb.train_seconds(f)


def test_columns_are_genrl_compares(tmp_path, load_script):
    tb = load_script("table_budget")
    _write_run(tmp_path / "free", "genrl-data-free", "walker_stand", 0, 0.4)
    _write_run(tmp_path / "td3bc", "td3bc", "walker_stand", 0, 0.1)
    assert sorted(r["column"] for r in tb.collect(tmp_path)) == ["genrl-data-free", "td3bc-video"]
