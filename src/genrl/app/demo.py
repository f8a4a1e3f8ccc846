"""The main job end to end: ``genrl demo [--domain walker] [--preset small|tiny] [--out DIR] [--from-scratch]``.

Stages, each resumable and skipped when already finished (state in ``OUT/demo_state.json``)::

    vlm       default VLM ready (the committed MiniVLM weights; trained on the collected data if they are absent)
    collect   the domain's dataset: exploration + task experts        (genrl collect)
    embed     per-step VLM embeddings of the dataset                  (genrl embed)
    pretrain  world model + connector + aligner                       (genrl pretrain)
    decode    text prompts (and one dataset clip as a video prompt) decoded to GIFs   (genrl decode)
    behave    behaviors from text prompts, data-free and offline, evaluated in the real env (genrl behave)
    report    OUT/report.html: scores, GIFs, loss curves, dataset, timings, versions, commands

**Default path: the shipped MFWM.** When the package ships a trained MFWM for the domain (:mod:`genrl.mfwm.shipped`,
e.g. ``walker``), ``embed`` and ``pretrain`` are skipped: the dataset is collected only for the offline start
states, and the behaviors are learned on the shipped model. ``--from-scratch`` (or a domain without a shipped
model) runs the full pipeline. The state and the report say which path ran.

Every long stage has a progress bar with an ETA. Each underlying stage checkpoints on its own (datasets episode by
episode, training every ``save_every`` updates and on Ctrl-C), so ``kill -9`` loses at most the current checkpoint
interval and re-running the same command continues. The device is CUDA when available, else CPU.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from genrl.utils.io import write_json
from genrl.utils.presets import make, register, table

STATE_FILE = "demo_state.json"
STAGES = ("vlm", "collect", "embed", "pretrain", "decode", "behave", "report")
DECODE_PROMPTS = ("standing upright", "lying on the back", "walking")


@dataclass(frozen=True)
class DemoPreset:
    """Sizes of one demo preset (the defaults are the ``small`` preset's, from scratch).

    Attributes:
        frames: dataset size in frames (agent steps).
        workers: collection processes.
        wm_preset: world-model preset of ``genrl pretrain``.
        pretrain_steps: MFWM updates (unused on the shipped model's path).
        behave_preset: actor-critic preset of ``genrl behave``.
        behave_steps: actor-critic updates per behavior.
        data_free_steps: actor-critic updates of a data-free behavior (None: ``behave_steps``). Data-free starts
            need more: on the 10k walker MFWM, stand 0.14 at 500 updates vs 0.40 at 1,000 (README).
        eval_episodes: real-environment episodes per behavior (the paper: 10).
        behaviors: ``(task, data_free)`` pairs learned from the tasks' Table 3 text prompts (set per domain by
            :func:`demo_preset`).
        save_every: checkpoint period (updates) of both trainings.
    """

    frames: int = 50_000
    workers: int = 2
    wm_preset: str = "small"
    pretrain_steps: int = 1800
    behave_preset: str = "small"
    behave_steps: int = 500
    data_free_steps: int | None = None
    eval_episodes: int = 10
    behaviors: tuple[tuple[str, bool], ...] = ()
    save_every: int = 250


# name -> overrides on the DemoPreset defaults (genrl.utils.presets): small (CPU, ~45 min goal on 2 cores) and tiny
# (the CI smoke test, minutes)
PRESETS = register(DemoPreset, {
    "small": {},
    "tiny": {"frames": 1_503, "workers": 1, "wm_preset": "tiny", "pretrain_steps": 30, "behave_preset": "tiny",
             "behave_steps": 20, "eval_episodes": 1, "save_every": 10},
}, what="demo")
# the default path, on the shipped MFWM: no pre-training, a smaller dataset (offline starts only), more behavior
# updates for data-free starts (on the 18k model offline behaviors score best at 500: README); applied on top of
# the preset
SHIPPED_PATH: dict[str, dict] = {"small": {"frames": 30_000, "pretrain_steps": 0, "behave_steps": 500,
                                           "data_free_steps": 1000}, "tiny": {}}


@dataclass
class DemoConfig:
    """Settings of ``genrl demo``; each field's text below is its ``--help``.

    Attributes:
        domain: embodiment (its Table 3 tasks are learned).
        preset: demo sizes (``small``: CPU, ~45 min on 2 cores; ``tiny``: the CI smoke test, minutes).
        out: output folder (every stage's outputs, demo_state.json, report.html).
        from_scratch: collect, embed and pre-train a new MFWM instead of starting from the shipped one (the default
            when the package ships one for the domain).
    """

    domain: str = "walker"
    preset: str = "small"
    out: str = "runs/demo"
    from_scratch: bool = False


def _behaviors(domain: str, shipped: bool = False) -> tuple[tuple[str, bool], ...]:
    if domain == "walker":
        if shipped:  # the shipped model's time goes to more behaviors
            return (("walker_stand", False), ("walker_lying_down", False), ("walker_walk", False),
                    ("walker_stand", True))
        return (("walker_stand", True), ("walker_lying_down", True), ("walker_stand", False))
    from genrl.envs.registry import PROMPTS, list_tasks

    tasks = [t for t in list_tasks(domain) if t in PROMPTS]
    if not tasks:
        raise ValueError(f"domain {domain!r} has no task with a text prompt")
    return ((tasks[0], True), (tasks[0], False))


def demo_preset(name: str, domain: str, shipped: bool = False) -> DemoPreset:
    """The ``small`` or ``tiny`` preset (:data:`PRESETS`) for ``domain``.

    ``shipped``: the default path, on the shipped MFWM (:data:`SHIPPED_PATH` on top of the preset); its
    ``pretrain_steps`` is then unused.

    Raises:
        ValueError: unknown preset name (the message lists the valid ones).
    """
    extra = SHIPPED_PATH.get(table(DemoPreset).resolve(name), {}) if shipped else {}
    return make(DemoPreset, name, **extra, behaviors=_behaviors(domain, shipped))


def demo_settings(cfg: DemoConfig) -> tuple[str | None, DemoPreset, dict]:
    """What a demo runs: ``(shipped model name or None, its DemoPreset, the settings stored in demo_state.json)``.

    Raises:
        ValueError: unknown domain or preset.
    """
    from genrl.envs.registry import domain as get_domain
    from genrl.mfwm.shipped import shipped_models

    get_domain(cfg.domain)  # validates the name
    model = None if cfg.from_scratch or cfg.domain not in shipped_models() else cfg.domain
    p = demo_preset(cfg.preset, cfg.domain, shipped=model is not None)
    path = f"shipped model {model!r}" if model else "from scratch"
    settings = {"domain": cfg.domain, "preset": cfg.preset, "path": path, **asdict(p)} | {
        "behaviors": [list(b) for b in p.behaviors]}
    return model, p, settings


def slug(text: str) -> str:
    """File-name-safe version of a prompt: ``"lying on the back"`` -> ``"lying_on_the_back"``."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:60] or "prompt"


class DemoState:
    """``OUT/demo_state.json``: per stage ``{"done", "seconds", "commands", ...}``, rewritten atomically."""

    def __init__(self, out: Path, settings: dict):
        self.path = out / STATE_FILE
        self.data = json.loads(self.path.read_text()) if self.path.is_file() else {"stages": {}}
        old = self.data.get("settings")
        if old is not None and old != settings:
            raise ValueError(f"{out} holds a demo with other settings ({old}); use another --out or the same "
                             f"--domain/--preset to resume")
        self.data["settings"] = settings
        self.save()

    def done(self, stage: str) -> bool:
        return bool(self.data["stages"].get(stage, {}).get("done"))

    def record(self, stage: str, seconds: float, **info) -> None:
        entry = self.data["stages"].setdefault(stage, {"seconds": 0.0})
        entry.update(info)
        entry["seconds"] = entry.get("seconds", 0.0) + seconds
        entry["done"] = True
        self.save()

    def save(self) -> None:
        write_json(self.path, self.data)


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _stage_vlm(ctx: dict) -> dict:
    from genrl.vlm.base import MissingWeightsError
    from genrl.vlm.registry import make_embedder

    try:
        vlm = make_embedder("default")
        return {"vlm": vlm.id, "vlm_path": None, "commands": ["(committed MiniVLM weights, no command needed)"]}
    except MissingWeightsError:
        from genrl.data.collect import collect
        from genrl.vlm.train_minivlm import MiniVLMTrainConfig, train_minivlm

        p, out = ctx["preset"], ctx["out"]
        collect(ctx["domain"], out / "data", frames=p.frames, workers=p.workers, progress=True)
        steps = 1500 if p.wm_preset != "tiny" else 20
        train_minivlm(MiniVLMTrainConfig(datasets=[str(out / "data")], out=str(out / "vlm"), steps=steps))
        vlm = make_embedder("default", str(out / "vlm"))
        return {"vlm": vlm.id, "vlm_path": str(out / "vlm"),
                "commands": [f"genrl vlm train --datasets {out / 'data'} --out {out / 'vlm'} --steps {steps}"]}


def _embedder(ctx: dict):
    from genrl.vlm.registry import make_embedder

    return make_embedder("default", ctx["state"].data["stages"]["vlm"].get("vlm_path"))


def _stage_collect(ctx: dict) -> dict:
    from genrl.data.collect import collect

    p, data = ctx["preset"], ctx["out"] / "data"
    summary = collect(ctx["domain"], data, frames=p.frames, workers=p.workers, progress=True)
    return {"summary": summary,
            "commands": [f"genrl collect {ctx['domain']} --out {data} --frames {p.frames} --workers {p.workers}"]}


def _stage_embed(ctx: dict) -> dict:
    from genrl.vlm.embed import embed_dataset

    if ctx["model"] is not None:
        return {"skipped": f"shipped model {ctx['model']!r}: no embeddings needed", "commands": []}
    summary = embed_dataset(ctx["out"] / "data", _embedder(ctx), progress=True)
    return {"summary": summary, "commands": [f"genrl embed {ctx['out'] / 'data'} --vlm default"]}


def _stage_pretrain(ctx: dict) -> dict:
    from genrl.mfwm.pretrain import PretrainConfig, pretrain

    p, out = ctx["preset"], ctx["out"]
    if ctx["model"] is not None:
        from genrl.mfwm.shipped import read_card

        card = read_card(ctx["model"])
        return {"skipped": f"shipped model {ctx['model']!r} ({card.get('step')} updates)", "model": ctx["model"],
                "card": card, "commands": ["genrl models    # the shipped model and its card"]}
    vlm = _embedder(ctx)
    cfg = PretrainConfig(dataset=str(out / "data"), out=str(out / "mfwm"), embedder_id=vlm.id,
                         n_frames=vlm.n_frames, preset=p.wm_preset, steps=p.pretrain_steps, save_every=p.save_every,
                         report_every=max(p.save_every, p.pretrain_steps // 4), device=ctx["device"])
    last = pretrain(cfg)
    return {"last": last, "commands": [f"genrl pretrain {out / 'data'} --out {out / 'mfwm'} --preset {p.wm_preset} "
                                       f"--steps {p.pretrain_steps} --save-every {p.save_every}"]}


def _stage_decode(ctx: dict) -> dict:
    import torch

    from genrl.data.dataset import Dataset
    from genrl.mfwm.decode import decode_prompt, prompt_embedding, write_decoded
    from genrl.mfwm.pretrain import load_pretrained

    out, run = ctx["out"], ctx["run"]
    model, _ = load_pretrained(run)
    model.to(ctx["device"])
    vlm = _embedder(ctx)
    files, commands = {}, []
    from genrl.envs.registry import PROMPTS

    # the fixed prompts, then each behavior's Table 3 prompt (shown beside its rollout in the report)
    prompts = list(dict.fromkeys([*DECODE_PROMPTS, *(PROMPTS[task] for task, _ in ctx["preset"].behaviors)]))
    for prompt in prompts:
        emb, _ = prompt_embedding(vlm, prompt=prompt)
        frames = decode_prompt(model, emb.to(ctx["device"]), horizon=32, samples=2)
        files[prompt] = str(write_decoded(frames, out / "decoded" / f"{slug(prompt)}.gif").relative_to(out))
        commands.append(f"genrl decode {run} --prompt \"{prompt}\" --out {out / 'decoded'}/{slug(prompt)}.gif")
    # the project ships no human video, so a dataset clip stands in for a video prompt (its stored VLM embedding)
    ds = Dataset(out / "data")
    name = ds.names()[-1]
    ep = ds.load(name, {"observation"})
    t = min(len(ep["observation"]) - 1, 200)
    clip = ep["observation"][t - vlm.n_frames + 1:t + 1].transpose(0, 2, 3, 1)
    emb = torch.as_tensor(vlm.embed_video(clip[None]), dtype=torch.float32)
    frames = decode_prompt(model, emb.to(ctx["device"]), horizon=32, samples=2, use_aligner=False)
    files["video clip (ground truth)"] = str(write_decoded(clip[None], out / "decoded" / "clip_truth.gif")
                                             .relative_to(out))
    files["video clip (decoded)"] = str(write_decoded(frames, out / "decoded" / "clip_decoded.gif").relative_to(out))
    return {"files": files, "commands": commands, "video_clip": {"episode": name, "step": t}}


def behavior_dir(task: str, data_free: bool) -> str:
    """Folder name of a demo behavior run, e.g. ``walker_stand-data_free``."""
    return f"{task}-{'data_free' if data_free else 'offline'}"


def _stage_behave(ctx: dict) -> dict:
    from genrl.behavior.train import BehaveConfig, behave

    p, out = ctx["preset"], ctx["out"]
    vlm = _embedder(ctx)
    runs, commands = {}, []
    for task, data_free in p.behaviors:
        name = behavior_dir(task, data_free)
        t0 = time.perf_counter()
        steps = p.data_free_steps if data_free and p.data_free_steps is not None else p.behave_steps
        cfg = BehaveConfig(run=str(ctx["run"]), out=str(out / "behave" / name), task=task, data_free=data_free,
                           dataset=None if data_free else str(out / "data"), preset=p.behave_preset,
                           steps=steps, eval_every=0, eval_episodes=p.eval_episodes,
                           save_every=p.save_every, device=ctx["device"])
        result = behave(cfg, embedder=vlm)
        runs[name] = {"task": task, "data_free": data_free, "eval": result["eval"],
                      "seconds": time.perf_counter() - t0}
        data = "--data-free " if data_free else f"--dataset {out / 'data'} "
        commands.append(f"genrl behave {ctx['run']} --task {task} {data}"
                        f"--preset {p.behave_preset} --steps {steps} --eval-every 0 "
                        f"--eval-episodes {p.eval_episodes} --out {out / 'behave' / name}")
    return {"runs": runs, "commands": commands}


def _stage_report(ctx: dict) -> dict:
    from genrl.app.report import write_report

    path = write_report(ctx["out"], ctx["state"].data)
    return {"file": str(path.relative_to(ctx["out"]))}


RUNNERS: dict[str, Callable[[dict], dict]] = {
    "vlm": _stage_vlm, "collect": _stage_collect, "embed": _stage_embed, "pretrain": _stage_pretrain,
    "decode": _stage_decode, "behave": _stage_behave, "report": _stage_report}


def run_demo(domain: str = "walker", preset: str = "small", out: str | Path = "runs/demo",
             from_scratch: bool = False) -> dict:
    """Run (or resume) every stage; returns the demo state (also in ``OUT/demo_state.json``).

    Args:
        from_scratch: pre-train a new MFWM even when one is shipped for ``domain`` (see the module docstring).

    Raises:
        ValueError: unknown domain/preset, or ``out`` holds a demo with other settings.
    """
    model, p, settings = demo_settings(DemoConfig(domain, preset, str(out), from_scratch))
    path = settings["path"]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = DemoState(out, settings)
    ctx = {"domain": domain, "preset": p, "out": out, "state": state, "device": _device(), "model": model,
           "run": model if model else out / "mfwm"}
    print(f"genrl demo: domain={domain} preset={preset} path={path} device={ctx['device']} out={out}", flush=True)
    for stage in STAGES:
        if state.done(stage) and stage != "report":
            print(f"[{stage}] done already ({state.data['stages'][stage]['seconds']:.0f} s) - skipped", flush=True)
            continue
        print(f"[{stage}] running", flush=True)
        t0 = time.perf_counter()
        info = RUNNERS[stage](ctx)
        state.record(stage, time.perf_counter() - t0, **info)
    if "report" in state.data["stages"]:  # the report lists its own time too: write it once more
        RUNNERS["report"](ctx)
    return state.data


__all__ = ["DemoConfig", "DemoPreset", "PRESETS", "SHIPPED_PATH", "STAGES", "behavior_dir", "demo_preset",
           "demo_settings", "run_demo", "slug"]
