"""Metrics logger (JSON lines, truncate on resume, TensorBoard, image/video fallbacks), means, NaN guard."""

import builtins
import json
import math

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from genrl.utils import metrics as metrics_mod
from genrl.utils.guards import check_finite, guarded_step
from genrl.utils.metrics import Mean, MeanTracker, MetricsLogger


def read_lines(logdir):
    return [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]


def test_jsonl_lines(tmp_path):
    with MetricsLogger(tmp_path, use_tensorboard=False) as log:
        log.log(1, {"loss": 0.5, "acc": np.float32(0.25)})
        log.log(2, {"loss": torch.tensor(0.125)}, prefix="eval")
        log.log(3, {"x": 1}, prefix="")
        # flushed after every line (flush_every=1): readable while the logger is open
        assert len(read_lines(tmp_path)) == 3
    lines = read_lines(tmp_path)
    assert [r["step"] for r in lines] == [1, 2, 3]
    assert lines[0]["train/loss"] == 0.5 and lines[0]["train/acc"] == 0.25
    assert lines[1]["eval/loss"] == 0.125 and "train/loss" not in lines[1]
    assert lines[2]["x"] == 1.0
    assert all(isinstance(r["time"], float) for r in lines)
    with pytest.raises(ValueError, match="closed"):
        log.log(4, {"loss": 1.0})
    with MetricsLogger(tmp_path, use_tensorboard=False) as log:
        with pytest.raises(TypeError, match="train/vec"):
            log.log(4, {"vec": np.zeros(3)})


def test_truncate_after_on_resume(tmp_path):
    with MetricsLogger(tmp_path, use_tensorboard=False) as log:
        for step in range(1, 6):
            log.log(step, {"loss": float(step)})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 6, "train/lo')  # crash mid-line
    with MetricsLogger(tmp_path, use_tensorboard=False) as log:
        assert log.truncate_after(3) == 2
        log.log(4, {"loss": 40.0})
    lines = read_lines(tmp_path)
    assert [r["step"] for r in lines] == [1, 2, 3, 4] and lines[-1]["train/loss"] == 40.0
    with MetricsLogger(tmp_path, use_tensorboard=False, resume_step=2) as log:
        log.log(3, {"loss": 30.0})
    assert [r["step"] for r in read_lines(tmp_path)] == [1, 2, 3]


def test_partial_last_line_is_dropped_on_open(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2, "tr')
    with MetricsLogger(tmp_path, use_tensorboard=False) as log:
        log.log(2, {"loss": 1.0})
    assert [r["step"] for r in read_lines(tmp_path)] == [1, 2]


def test_tensorboard_scalars_image_and_video(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    monkeypatch.setattr(metrics_mod, "_moviepy_available", lambda: False)
    monkeypatch.setattr(metrics_mod, "_WARNED", set())
    frames = np.zeros((4, 8, 8, 3), np.uint8)
    frames[:, :, :, 0] = np.arange(4, dtype=np.uint8)[:, None, None] * 60  # distinct frames (GIF merges equal ones)
    with MetricsLogger(tmp_path) as log:
        log.log(1, {"loss": 0.5})
        log.log(2, {"loss": 0.25})
        log.log_image(2, "obs", np.zeros((8, 8, 3), np.uint8))
        with pytest.warns(RuntimeWarning, match="moviepy"):
            gif = log.log_video(2, "eval/rollout", frames, fps=10)
        with pytest.raises(ValueError, match="uint8"):
            log.log_image(2, "bad", np.zeros((8, 8), np.float32))
    events = list(tmp_path.glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    assert gif is not None and gif.name == "eval_rollout_00000002.gif" and gif.parent == tmp_path / "videos"
    assert np.asarray(imageio.mimread(gif)).shape[:3] == (4, 8, 8)

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("train/loss")] == [(1, 0.5), (2, 0.25)]
    assert "obs" in acc.Tags()["images"]


def test_resume_step_opens_one_event_file(tmp_path):
    pytest.importorskip("tensorboard")
    with MetricsLogger(tmp_path, resume_step=0) as log:  # what every trainer does, also on a fresh run
        log.log(1, {"loss": 0.5})
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 1


def test_without_tensorboard(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_tb(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tb)
    monkeypatch.setattr(metrics_mod, "_WARNED", set())
    with pytest.warns(RuntimeWarning, match="TensorBoard is unavailable"):
        log = MetricsLogger(tmp_path)
    with log:
        log.log(1, {"loss": 1.0})
        log.log_image(1, "a/b", np.full((4, 4, 3), 7, np.uint8))
        assert log.log_video(1, "v", np.zeros((2, 4, 4, 3), np.uint8), fps=5).is_file()
    assert read_lines(tmp_path)[0]["train/loss"] == 1.0
    assert not list(tmp_path.glob("events.out.tfevents.*"))
    assert (imageio.imread(tmp_path / "images" / "a_b_00000001.png")[..., :3] == 7).all()


def test_mean_and_tracker():
    m = Mean()
    assert math.isnan(m.result())
    m.update(1.0)
    m.update(torch.tensor(4.0), count=2)
    assert m.result() == 3.0
    m.reset()
    assert m.count == 0
    t = MeanTracker()
    t.update({"a": 1.0, "b": 2.0})
    t.update({"a": 3.0})
    assert t.result(reset=True) == {"a": 2.0, "b": 2.0}
    assert t.result() == {} and len(t) == 0


def test_check_finite():
    check_finite({"loss": 0.1, "t": torch.tensor([1.0, 2.0]), "name": "x"}, 5, "world model")
    with pytest.raises(FloatingPointError) as err:
        check_finite({"loss": float("nan"), "kl": 1.0, "grad": np.inf}, 42, "world model", checkpoint="out/ck")
    msg = str(err.value)
    assert msg.startswith("world model: non-finite metric(s) loss=nan, grad=inf at step 42;")
    assert "kl" not in msg and "last good checkpoint in out/ck is kept" in msg


def test_guarded_step_rewords_errors_from_inside_the_update():
    assert guarded_step(lambda: {"loss": 0.5}, 3, "behavior") == {"loss": 0.5}

    def raises():
        raise FloatingPointError("actor loss is nan")

    with pytest.raises(FloatingPointError) as err:
        guarded_step(raises, 7, "behavior", checkpoint="run/checkpoint")
    assert str(err.value) == ("behavior: actor loss is nan at step 7; stopping, the last good checkpoint in "
                              "run/checkpoint is kept (not overwritten)")
    with pytest.raises(FloatingPointError, match="pretrain: non-finite metric\\(s\\) kl=inf at step 2;"):
        guarded_step(lambda: {"kl": float("inf")}, 2, "pretrain")


def test_video_goes_to_tensorboard_when_moviepy_is_there(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    monkeypatch.setattr(metrics_mod, "_moviepy_available", lambda: True)
    calls = []
    with MetricsLogger(tmp_path) as log:
        monkeypatch.setattr(log._writer, "add_video", lambda tag, v, step, fps: calls.append((tag, v.shape, step, fps)))
        assert log.log_video(3, "roll", np.zeros((5, 6, 7, 3), np.uint8), fps=12) is None
    assert calls == [("roll", (1, 5, 3, 6, 7), 3, 12)]
    assert not (tmp_path / "videos").exists()


def test_step_timer_reports_the_interval_and_restarts():
    from genrl.utils.metrics import StepTimer

    timer = StepTimer()
    timer.add(0.1, 1.0)
    timer.add(0.3, 1.0)
    assert timer.result("starts_fraction") == {"seconds_per_update": 1.0, "starts_fraction": 0.2}
    assert timer.result() == {"seconds_per_update": 0.0, "data_fraction": 0.0}  # a new, empty interval
    timer.add(0.0, 2.0, {"loss": 1.0})
    timer.add(0.0, 2.0, {"loss": 3.0, "kl": 0.5})
    assert timer.result() == {"loss": 2.0, "kl": 0.5, "seconds_per_update": 2.0, "data_fraction": 0.0}
    assert timer.result() == {"seconds_per_update": 0.0, "data_fraction": 0.0}  # the means restart too


def test_log_config_writes_the_config_as_tensorboard_text(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with MetricsLogger(tmp_path) as log:
        log.log_config({"lr": 0.1, "shape": (2, 3)})
    assert not (tmp_path / "metrics.jsonl").read_text()  # text goes to TensorBoard only
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    (event,) = acc.Tensors("config/text_summary")
    assert event.step == 0 and json.loads(event.tensor_proto.string_val[0].decode()) == {"lr": 0.1, "shape": [2, 3]}
    with MetricsLogger(tmp_path / "no_tb", use_tensorboard=False) as log:
        log.log_config({"lr": 0.1})  # nothing to write to: no error


def test_one_eval_metric_namespace_and_old_names_read_back():
    from types import SimpleNamespace

    from genrl.utils.eval_metrics import EVAL_METRICS, canonical_metric_names, eval_metrics

    result = SimpleNamespace(mean_return=10.0, std_return=2.0, mean_normalized=0.5, stderr_normalized=0.1,
                             seconds=3.0)
    assert eval_metrics(result) == {"return_mean": 10.0, "return_std": 2.0, "normalized_mean": 0.5,
                                    "normalized_stderr": 0.1, "seconds": 3.0}
    assert tuple(eval_metrics(result)) == EVAL_METRICS
    result.mean_normalized = result.stderr_normalized = None  # a task without reference returns
    assert set(eval_metrics(result)) == {"return_mean", "return_std", "seconds"}
    old = {"step": 5, "eval/mean_return": 1.0, "eval/std_return": 0.5, "eval/mean_normalized": 0.2,
           "eval/stderr_normalized": 0.05, "eval/seconds": 4.0, "train/loss": 1.5}
    assert canonical_metric_names(old) == {"step": 5, "eval/return_mean": 1.0, "eval/return_std": 0.5,
                                           "eval/normalized_mean": 0.2, "eval/normalized_stderr": 0.05,
                                           "eval/seconds": 4.0, "train/loss": 1.5}
    assert canonical_metric_names({"eval/normalized_mean": 0.3}) == {"eval/normalized_mean": 0.3}


def test_the_dashboard_reads_old_eval_names(tmp_path):
    from genrl.app.report import _read_jsonl

    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 3, "eval/mean_normalized": 0.4}) + "\n"
                                            + json.dumps({"step": 6, "eval/normalized_mean": 0.6}) + "\n")
    assert [r["eval/normalized_mean"] for r in _read_jsonl(tmp_path / "metrics.jsonl")] == [0.4, 0.6]
