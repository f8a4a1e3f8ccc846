"""Settings of ``genrl pretrain`` (:func:`genrl.mfwm.pretrain.pretrain`), in a torch-free module: the command's
options are generated from :class:`PretrainConfig` (:mod:`genrl.app.config_args`).

Usage::

    from genrl.mfwm.config import PretrainConfig, world_model_config
    cfg = PretrainConfig(dataset="runs/data/walker", out="runs/wm", embedder_id="minivlm-...", preset="small")
    world_model_config(cfg)          # the WorldModelConfig it trains: preset + overrides
"""

from __future__ import annotations

from dataclasses import dataclass, field

from genrl.worldmodel.config import WorldModelConfig, preset


@dataclass
class PretrainConfig:
    """Settings of ``genrl pretrain``; each field's text below is its ``--help``.

    Attributes:
        dataset: dataset folder (one domain) with stored VLM embeddings of ``embedder_id`` (``genrl embed``).
        out: run folder (config.json, checkpoint/, metrics.jsonl + TensorBoard, reports/, snapshots/).
        embedder_id: id of the VLM whose stored embeddings are used (the CLI takes it from ``--vlm``).
        n_frames: that VLM's clip length k (the CLI takes it from ``--vlm``).
        preset: world-model preset (network sizes and batch; ``genrl.worldmodel.config.PRESETS``).
        overrides: world-model config field -> value on top of the preset (``--set FIELD=VALUE``).
        steps: total updates.
        save_every: checkpoint period in updates.
        log_every: train metrics period in updates.
        report_every: period in updates of the report pictures (``reports/step_N.png``) and numbers.
        seed: RNG seed (torch, numpy, window sampling).
        threads: torch CPU threads (None: torch's default).
        aligner_noise: LAFITE noise of the aligner inputs (official ``clip_lafite_noise``).
        memmap: memory-map the sampler's arrays under ``out/memmap`` instead of holding them in RAM.
        holdout: fraction of episodes never trained on (chosen by name, ``genrl.data.split.is_heldout``), for
            held-out metrics (``genrl pretrain-eval``); 0 trains on everything.
        device: ``auto`` (CUDA when available, else CPU), ``cpu`` or ``cuda``.
        snapshot_at: updates after which a weights-only copy of the model is kept in ``out/snapshots/step_N/``
            (a run folder of its own, without optimizers), for compute-quality curves.
        init: a pre-training run folder or shipped model (e.g. ``walker``) whose weights start a new run (its
            world-model shape fields must match, its training fields -- lr, batch shape, precision, KL -- may differ
            and the new run uses its own; another domain's model is a warm start, one of another action size gives
            every tensor but the action-input layer, one of another VLM gives the world model only);
            fresh optimizers, the update count continues from its step (so ``steps`` is the total). Ignored on resume.
        freeze_world_model: train only the connector and aligner, on the frozen world model's posteriors (no
            world-model update, ~3x faster per update): for a new VLM on a trained model (``init`` of another
            ``embedder_id`` copies the world model and starts the connector and aligner fresh).
        nproc: data-parallel processes on this machine: ``genrl pretrain`` re-runs itself under ``torchrun
            --standalone --nproc-per-node N`` (one process per GPU with ``--device cuda``; gloo on CPU); the batch
            is split, ``batch_size`` must be a multiple of N. Under ``torchrun`` leave it out: the launch's process
            count is used (and recorded in config.json). 1: one process.
        compile: ``torch.compile`` the encoder and decoder (inductor fuses the LayerNorm + SiLU pairs; needs a C++
            compiler on CPU, ~30 s of compiling at the start). Measured 1.11-1.16x per update in bf16 on a 2-core
            AMX CPU, none in fp32 (``benchmarks/bench_precision.py``). Same weights and checkpoints either way.
    """

    dataset: str
    out: str
    embedder_id: str
    n_frames: int = 8
    preset: str = "small"
    overrides: dict = field(default_factory=dict)
    steps: int = 20000
    save_every: int = 500
    log_every: int = 25
    report_every: int = 1000
    seed: int = 0
    threads: int | None = None
    aligner_noise: float = 0.5
    memmap: bool = False
    holdout: float = 0.05
    device: str = "auto"
    snapshot_at: tuple[int, ...] = ()
    init: str | None = None
    freeze_world_model: bool = False
    nproc: int = 1
    compile: bool = False


def world_model_config(cfg: PretrainConfig) -> WorldModelConfig:
    """The world-model config a pre-training run trains: ``cfg.preset`` with ``cfg.overrides``.

    Raises:
        ValueError: unknown preset or field, or a value of the wrong type (one line).
    """
    return preset(cfg.preset, **cfg.overrides)


__all__ = ["PretrainConfig", "world_model_config"]
