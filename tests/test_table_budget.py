"""scripts/table_budget.py: a run's training seconds exclude its evaluations and a group member pays 1/K."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("table_budget", ROOT / "scripts" / "table_budget.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _write_run(run: Path, method: str, task: str, seed: int, normalized: float) -> None:
    run.mkdir(parents=True)
    lines = [{"step": 100, "time": 1000.0, "train/loss": 1.0},
             {"step": 200, "time": 1010.0, "eval/seconds": 30.0},        # 30 s of evaluation inside the span
             {"step": 400, "time": 1060.0, "train/loss": 0.5}]
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    (run / "eval.json").write_text(json.dumps({"method": method, "reward": "video" if method != "genrl" else None,
                                               "task": task, "seed": seed, "mean_normalized": normalized}))
    (run / "config.json").write_text(json.dumps({"data_free": False}))


def test_train_seconds_excludes_evaluations_and_scales_to_all_updates(tmp_path):
    tb = _module()
    _write_run(tmp_path / "iql", "iql", "walker_walk", 0, 0.1)
    seconds, steps = tb.train_seconds(tmp_path / "iql" / "metrics.jsonl")
    assert steps == 400
    assert seconds == pytest.approx((60.0 - 30.0) * 400 / 300)


def test_group_members_share_the_group_time_and_rows_summarize(tmp_path):
    tb = _module()
    group = tmp_path / "genrl" / "s0"
    for task in ("walker_stand", "walker_walk"):
        _write_run(group / task, "genrl", task, 0, 0.5)
    (group / "group.json").write_text(json.dumps({"members": ["walker_stand", "walker_walk"]}))
    _write_run(tmp_path / "baselines" / "iql_video_walker_walk_s0", "iql", "walker_walk", 0, 0.1)
    _write_run(tmp_path / "baselines" / "iql_video_walker_walk_s1", "iql", "walker_walk", 1, 0.3)
    rows = tb.collect(tmp_path)
    by = {(r["column"], r["task"], r["seed"]): r for r in rows}
    assert by[("GenRL", "walker_stand", 0)]["seconds"] == pytest.approx(40.0 / 2, abs=0.1)
    assert by[("IQL-video", "walker_walk", 1)]["seconds"] == pytest.approx(40.0, abs=0.1)
    table = tb.summarize(rows)
    assert "| IQL-video | walker_walk | 2 | 400 | 40 | 0.20 ± 0.10 |" in table
    assert "| GenRL | walker_stand | 1 | 400 | 20 | 0.50 (one seed) |" in table


def test_train_seconds_needs_two_records(tmp_path):
    tb = _module()
    f = tmp_path / "metrics.jsonl"
    f.write_text(json.dumps({"step": 1, "time": 0.0, "train/loss": 1.0}) + "\n")
    with pytest.raises(ValueError, match="fewer than two training records"):
        tb.train_seconds(f)


def test_column_names():
    tb = _module()
    assert tb.column({"method": "genrl-data-free"}) == "GenRL data-free"
    assert tb.column({"method": "genrl", "video_prompt": "walk.gif"}) == "GenRL video prompt"
    assert tb.column({"method": "td3bc", "reward": "image"}) == "TD3+BC-image"
