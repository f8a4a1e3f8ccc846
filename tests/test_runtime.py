"""The run skeleton every trainer shares (:mod:`genrl.utils.runtime`), on its own with a dummy trainer: a linear model
fitted by SGD on random batches, checkpointed with its optimizer and data generator."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
import torch

import genrl.utils.runtime as runtime_mod
from genrl.utils.checkpoint import load_checkpoint, save_checkpoint
from genrl.utils.runtime import Hook, LoopConfig, ResumeMismatchError, Runtime, config_differences


def _lines(out):
    path = out / "metrics.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.is_file() else []


def _ckpt_step(out) -> int:
    return json.loads((out / "checkpoint" / "state.json").read_text())["step"]


def interrupt_at(n):
    """A fault for :func:`train`: Ctrl-C in the update that follows ``n`` finished updates."""
    def fault(step):
        if step == n:
            raise KeyboardInterrupt("simulated Ctrl-C")
    return fault


def train(out, steps=10, *, lr=0.05, log_every=2, save_every=4, fault=None, save_fault=None, hooks=(), after=(),
          finish=None, save_on_interrupt=True, events=None):
    """The dummy trainer. ``fault(step)`` runs inside every update (it may raise, or return metrics that override
    the update's); ``save_fault(step)`` after every save; ``events`` collects ``("data"|"save", step)``. Returns
    ``(runtime, model, last logged metrics)``."""
    events = [] if events is None else events
    rt = Runtime(out, threads=None)
    config = {"lr": lr, "model": {"inputs": 3, "bias": True}}
    rt.check_resume(config, ("lr", "model"))
    rt.write_config(config)
    rt.seed(0)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    rng = np.random.default_rng(0)
    start = int(load_checkpoint(rt.ckpt, {"model": model}, {"sgd": opt}, rng=rng)["step"]) if rt.has_checkpoint() \
        else 0

    def data(step):
        events.append(("data", step))
        return torch.from_numpy(rng.normal(size=(8, 3)).astype(np.float32))

    def update(step, x):
        extra = fault(step) if fault is not None else None
        loss = ((model(x) - x.sum(1, keepdim=True)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.item(), **(extra or {})}

    def save(step):
        events.append(("save", step))
        save_checkpoint(rt.ckpt, {"model": model}, {"sgd": opt}, step, config, rng=rng)
        if save_fault is not None:
            save_fault(step)

    loop = LoopConfig(steps=steps, log_every=log_every, save_every=save_every, what="dummy", desc="dummy",
                      progress=False, save_on_interrupt=save_on_interrupt)
    last = rt.run(loop, update, data=data, save=save, start=start, before_save=hooks, after_save=after,
                  postfix=lambda m: {"loss": f"{m['loss']:.3f}"}, finish=finish)
    return rt, model, last


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_resume_continues_at_the_right_step_with_the_uninterrupted_result(tmp_path):
    _, whole, last = train(tmp_path / "a")
    assert set(last) == {"loss", "seconds_per_update", "data_fraction"} and np.isfinite(last["loss"])
    events = []
    with pytest.raises(KeyboardInterrupt):  # killed while saving step 8 (the checkpoint is complete)
        train(tmp_path / "b", save_fault=interrupt_at(8), events=events)
    assert _ckpt_step(tmp_path / "b") == 8 and events.count(("save", 8)) == 1  # not saved a second time
    events.clear()
    rt, resumed, _ = train(tmp_path / "b", events=events)
    assert rt.step == 10 and events[0] == ("data", 8)  # continues with the ninth update
    assert _same(whole, resumed)
    assert [x["step"] for x in _lines(tmp_path / "b")] == [2, 4, 6, 8, 10]  # no duplicates, nothing lost
    assert [x["train/loss"] for x in _lines(tmp_path / "b")] == [x["train/loss"] for x in _lines(tmp_path / "a")]
    events.clear()
    rt, again, _ = train(tmp_path / "a", events=events)  # a finished run: nothing re-run
    assert rt.step == 10 and _same(whole, again) and events == []


def test_cadence_and_order_of_log_save_and_hooks(tmp_path):
    events = []
    log = lambda kind: (lambda step: events.append((kind, step)))  # noqa: E731
    hooks = [Hook(log("report"), every=5), Hook(log("snapshot"), at=(3, 12), final=None)]
    after = [Hook(log("eval"), every=5, resume=True), Hook(log("periodic"), every=6, final=False),
             Hook(log("off"), every=1, enabled=False)]
    train(tmp_path / "r", steps=12, log_every=3, save_every=4, hooks=hooks, after=after, finish=log("finish"),
          events=events)
    calls = [e for e in events if e[0] != "data"]
    at = lambda kind: [s for k, s in calls if k == kind]  # noqa: E731
    assert [x["step"] for x in _lines(tmp_path / "r")] == [3, 6, 9, 12]
    assert at("save") == [4, 8, 12] and at("report") == [5, 10, 12] and at("snapshot") == [3, 12]
    assert at("eval") == [5, 10, 12] and at("periodic") == [6] and at("off") == [] and at("finish") == [12]
    # after an update: log line, before-save hooks, checkpoint, after-save hooks; finish once at the end
    assert calls[-5:] == [("report", 12), ("snapshot", 12), ("save", 12), ("eval", 12), ("finish", 12)]
    assert Hook(log("x")).due(4, 4) and not Hook(log("x")).due(3, 4) and not Hook(log("x"), every=2).due(0, 4)


def test_a_resume_hook_runs_once_before_the_first_update(tmp_path):
    events = []

    def evaluate(step):
        if not events:
            events.append(("crash", step))
            raise KeyboardInterrupt("killed after the save of step 5, before its evaluation")
        events.append(("eval", step))

    after = [Hook(evaluate, every=5, resume=True)]
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "e", save_every=5, after=after)
    assert _ckpt_step(tmp_path / "e") == 5
    train(tmp_path / "e", save_every=5, after=after, events=events)
    assert events[:3] == [("crash", 5), ("eval", 5), ("data", 5)] and events[-1] == ("eval", 10)


def test_nan_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path):
    with pytest.raises(FloatingPointError) as err:
        train(tmp_path / "n", fault=lambda step: {"loss": float("nan")} if step == 5 else None)
    ckpt = tmp_path / "n" / "checkpoint"
    assert str(err.value) == (f"dummy: non-finite metric(s) loss=nan at step 5; stopping, the last good checkpoint "
                              f"in {ckpt} is kept (not overwritten)")
    assert _ckpt_step(tmp_path / "n") == 4

    def raises(step):
        if step == 6:
            raise FloatingPointError("loss is inf")

    with pytest.raises(FloatingPointError, match=r"^dummy: loss is inf at step 6; stopping, the last good"):
        train(tmp_path / "m", fault=raises)
    assert _ckpt_step(tmp_path / "m") == 4
    assert [x["step"] for x in _lines(tmp_path / "m")] == [2, 4, 6]


def test_keyboard_interrupt_in_an_update_saves_and_closes(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "k", fault=interrupt_at(6))
    assert _ckpt_step(tmp_path / "k") == 6  # the six finished updates (the periodic save was at 4)
    rt, _, _ = train(tmp_path / "k")
    assert rt.step == 10 and [x["step"] for x in _lines(tmp_path / "k")] == [2, 4, 6, 8, 10]
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "q", fault=interrupt_at(6), save_on_interrupt=False)
    assert _ckpt_step(tmp_path / "q") == 4


def test_sigterm_saves_like_ctrl_c_and_the_handler_is_restored(tmp_path):
    def sigterm_at(step):
        if step == 6:
            os.kill(os.getpid(), signal.SIGTERM)  # the handler raises KeyboardInterrupt in this (main) thread

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        train(tmp_path / "t", fault=sigterm_at)
    assert _ckpt_step(tmp_path / "t") == 6 and signal.getsignal(signal.SIGTERM) is before
    rt, _, _ = train(tmp_path / "t")
    assert rt.step == 10 and [x["step"] for x in _lines(tmp_path / "t")] == [2, 4, 6, 8, 10]


class _Bar:
    """A stand-in for tqdm that records whether it was closed."""

    made: list["_Bar"] = []

    def __init__(self, *args, **kwargs):
        self.closed = False
        _Bar.made.append(self)

    def update(self, n=1):
        pass

    def set_postfix(self, **kwargs):
        pass

    def close(self):
        self.closed = True


@pytest.mark.parametrize("exit_path", ["done", "nan", "interrupt", "hook error", "finish error", "finished run"])
def test_logger_and_bar_are_closed_on_every_exit_path(tmp_path, monkeypatch, exit_path):
    monkeypatch.setattr(runtime_mod, "tqdm", _Bar)
    _Bar.made.clear()
    made = []
    real_logger = runtime_mod.MetricsLogger

    def logger(*args, **kwargs):
        made.append(real_logger(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(runtime_mod, "MetricsLogger", logger)

    def boom(step):
        raise RuntimeError("hook failed")

    kw = {"nan": {"fault": lambda s: {"loss": float("inf")} if s == 3 else None},
          "interrupt": {"fault": interrupt_at(3)},
          "hook error": {"after": [Hook(boom, every=3)]}, "finish error": {"finish": boom}}.get(exit_path, {})
    if exit_path == "finished run":
        train(tmp_path / "x")
    expected = {"nan": FloatingPointError, "interrupt": KeyboardInterrupt, "hook error": RuntimeError,
                "finish error": RuntimeError}.get(exit_path)
    if expected is None:
        train(tmp_path / "x", **kw)
    else:
        with pytest.raises(expected):
            train(tmp_path / "x", **kw)
    assert made and all(log._closed for log in made)
    assert _Bar.made and all(bar.closed for bar in _Bar.made)


def test_a_mismatched_resume_raises_the_one_error_type(tmp_path):
    train(tmp_path / "a", steps=2)
    train(tmp_path / "a", steps=4)  # same settings (and more steps): resumes
    with pytest.raises(ResumeMismatchError) as err:
        train(tmp_path / "a", steps=4, lr=0.1)
    msg = str(err.value)
    assert isinstance(err.value, ValueError) and "\n" not in msg
    assert msg == (f"{tmp_path / 'a'} holds a run with other settings: lr=0.05 (this run: 0.1); use another --out, "
                   "or the same settings to resume")
    stored = {"lr": 0.05, "model": {"inputs": 3, "bias": True}, "steps": 2}
    assert config_differences(stored, {"lr": 0.05, "model": {"inputs": 4, "layers": [1, 2]}, "steps": 9},
                              ("lr", "model")) == ["model.inputs=3 (this run: 4)",
                                                   "model.layers=<unset> (this run: [1, 2])",
                                                   "model.bias=True (this run: <unset>)"]
    assert config_differences({"shape": [1, 2]}, {"shape": (1, 2)}, ("shape",)) == []  # compared as JSON
    rt = Runtime(tmp_path / "a")
    with pytest.raises(ResumeMismatchError, match=r"holds a run with other settings: x=<unset> \(this run: 1\); "
                                                  r"use another --out, or the same model to resume"):
        rt.check_resume({"x": 1}, ("x",), hint="the same model")
    Runtime(tmp_path / "fresh").check_resume({"x": 1}, ("x",))  # nothing in the folder: nothing to check


def test_config_goes_to_tensorboard_once(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(tmp_path / "t", steps=4)
    train(tmp_path / "t", steps=6)  # resumed: not written again
    texts = []
    for events in sorted((tmp_path / "t").glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events))
        acc.Reload()
        texts += [(e.step, e.tensor_proto.string_val[0].decode()) for tag in acc.Tags()["tensors"]
                  if tag.startswith("config") for e in acc.Tensors(tag)]
    assert len(texts) == 1 and texts[0][0] == 0
    assert json.loads(texts[0][1].replace("\n    ", "\n")) == {"lr": 0.05, "model": {"inputs": 3, "bias": True}}
