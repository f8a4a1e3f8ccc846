"""End-to-end smoke test of the main job: ``genrl demo --preset tiny`` (issue "The main job end to end")."""

from __future__ import annotations

import json
import math
import re

import pytest

from genrl.app.cli import main
from genrl.app.demo import STAGES, demo_preset


def test_tiny_demo_runs_every_stage_writes_a_real_report_and_resumes(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--preset", "tiny", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    summary = json.loads(printed[printed.index("{\n"):])
    assert set(summary["scores"]) == {"walker_stand-data_free", "walker_lying_down-data_free", "walker_stand-offline"}
    state = json.loads((out / "demo_state.json").read_text())
    assert all(state["stages"][s]["done"] for s in STAGES)
    runs = state["stages"]["behave"]["runs"]
    assert set(runs) == {"walker_stand-data_free", "walker_lying_down-data_free", "walker_stand-offline"}
    for run in runs.values():
        ev = run["eval"]
        assert ev["episodes"] == 1 and math.isfinite(ev["mean_return"]) and math.isfinite(ev["mean_normalized"])
    page = (out / "report.html").read_text()
    # the scores table holds the real numbers, and every referenced file exists
    for run in runs.values():
        assert f"{run['eval']['mean_normalized']:.2f}" in page
    refs = re.findall(r'(?:src)="([^"]+)"', page)
    assert any(r.endswith(".gif") for r in refs) and any(r.endswith(".mp4") for r in refs)
    assert any(r.endswith(".png") for r in refs)
    for ref in refs:
        assert (out / ref).is_file(), ref
    assert "(not decoded)" not in page  # each behavior's prompt is decoded beside its rollout
    for prompt in ("standing_up_straight", "lying_down_horizontally"):
        assert f"decoded/{prompt}.gif" in refs, prompt
    for section in ("Scores in the real environment", "Dataset", "Timings", "Versions", "genrl pretrain"):
        assert section in page, section

    # re-running skips finished stages and keeps the results
    assert main(["demo", "--preset", "tiny", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("done already") == len(STAGES) - 1
    assert json.loads((out / "demo_state.json").read_text())["stages"]["behave"]["runs"] == runs
    # another preset in the same folder is refused
    assert main(["demo", "--preset", "small", "--out", str(out)]) == 2


def test_demo_presets():
    small = demo_preset("small", "walker")
    assert ("walker_stand", True) in small.behaviors and ("walker_lying_down", True) in small.behaviors
    assert any(not data_free for _, data_free in small.behaviors)
    with pytest.raises(ValueError, match="unknown demo preset"):
        demo_preset("huge", "walker")
