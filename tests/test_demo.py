"""End-to-end smoke test of the main job: ``genrl demo --preset tiny`` (issue "The main job end to end")."""

from __future__ import annotations

import json
import math
import re

import pytest

from genrl.app.cli import main
from genrl.app.demo import STAGES, demo_preset
from genrl.mfwm.shipped import shipped_models


def test_tiny_demo_from_scratch_runs_every_stage_writes_a_real_report_and_resumes(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--preset", "tiny", "--out", str(out), "--from-scratch"]) == 0
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
    for section in ("Scores in the real environment", "Dataset", "Timings", "Versions", "genrl pretrain",
                    "Path: <b>from scratch</b>"):
        assert section in page, section

    # re-running skips finished stages and keeps the results
    assert main(["demo", "--preset", "tiny", "--out", str(out), "--from-scratch"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("done already") == len(STAGES) - 1
    assert json.loads((out / "demo_state.json").read_text())["stages"]["behave"]["runs"] == runs
    # another preset (or path) in the same folder is refused
    assert main(["demo", "--preset", "small", "--out", str(out), "--from-scratch"]) == 2
    if "walker" in shipped_models():
        assert main(["demo", "--preset", "tiny", "--out", str(out)]) == 2


def test_tiny_demo_default_path_learns_on_the_shipped_model(tmp_path, capsys):
    if "walker" not in shipped_models():
        pytest.skip("no shipped walker MFWM in this checkout (src/genrl/mfwm/weights/walker)")
    out = tmp_path / "demo"
    assert main(["demo", "--preset", "tiny", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "path=shipped model 'walker'" in printed
    summary = json.loads(printed[printed.index("{\n"):])
    expected = {"walker_stand-offline", "walker_lying_down-offline", "walker_walk-offline", "walker_stand-data_free"}
    assert set(summary["scores"]) == expected
    state = json.loads((out / "demo_state.json").read_text())
    assert state["settings"]["path"] == "shipped model 'walker'"
    assert "skipped" in state["stages"]["pretrain"] and "skipped" in state["stages"]["embed"]
    assert not (out / "mfwm").exists() and not (out / "data" / "embeddings").exists()
    for run in state["stages"]["behave"]["runs"].values():
        assert math.isfinite(run["eval"]["mean_normalized"])
        cfg = json.loads((out / "behave" / f"{run['task']}-{'data_free' if run['data_free'] else 'offline'}"
                          / "config.json").read_text())
        assert cfg["run"] == "walker"
    page = (out / "report.html").read_text()
    assert "Path: <b>shipped model &#x27;walker&#x27;</b>" in page
    for ref in re.findall(r'(?:src)="([^"]+)"', page):
        assert (out / ref).is_file(), ref


def test_demo_presets():
    small = demo_preset("small", "walker")
    assert ("walker_stand", True) in small.behaviors and ("walker_lying_down", True) in small.behaviors
    assert any(not data_free for _, data_free in small.behaviors)
    shipped = demo_preset("small", "walker", shipped=True)
    assert {b for b, _ in shipped.behaviors} == {"walker_stand", "walker_lying_down", "walker_walk"}
    assert ("walker_stand", True) in shipped.behaviors
    with pytest.raises(ValueError, match="unknown demo preset"):
        demo_preset("huge", "walker")
