"""scripts/budget_curve.py: runs group by task, reward, start and overrides; each budget is the mean over seeds."""

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(seed: int, scores: dict[int, float], reward: str = "genrl", overrides: dict | None = None) -> dict:
    return {"run": f"s{seed}", "task": "walker_walk", "reward": reward, "data_free": False, "seed": seed,
            "overrides": overrides or {}, "evals": {str(k): {"mean_normalized": v} for k, v in scores.items()}}


def test_curves_average_seeds_and_keep_levers_apart(load_script):
    bc = load_script("budget_curve")
    runs = [_run(0, {1000: 0.2, 2000: 0.4}), _run(1, {1000: 0.4}), _run(0, {1000: 0.9}, reward="oracle"),
            _run(0, {1000: 0.1}, overrides={"horizon": 32})]
    cs = bc.curves(runs)
    assert set(cs) == {("walker_walk", "genrl", False, ""), ("walker_walk", "oracle", False, ""),
                       ("walker_walk", "genrl", False, "horizon=32")}
    (s1, m1, se1, n1), (s2, m2, se2, n2) = cs[("walker_walk", "genrl", False, "")]
    assert (s1, n1, s2, n2) == (1000, 2, 2000, 1)
    assert math.isclose(m1, 0.3) and math.isclose(se1, 0.1) and se2 is None and math.isclose(m2, 0.4)


def test_cli_writes_table_and_plot(tmp_path):
    src = tmp_path / "ab.json"
    src.write_text(json.dumps([_run(0, {500: 0.25}), _run(1, {500: 0.35})]))
    out = tmp_path / "curve"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "budget_curve.py"), str(src), "--out", str(out)],
                   check=True, capture_output=True)
    assert "| walker_walk | genrl | offline | - | 500 | 0.30 ± 0.05 | 2 |" in (tmp_path / "curve.md").read_text()
    assert (tmp_path / "curve.png").stat().st_size > 1000
