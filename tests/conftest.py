"""Shared pytest setup: headless rendering and the optional ``../shared`` folder."""

import importlib.util
import os
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture
def load_script():
    """``load_script("table_budget")`` -> the module of ``scripts/table_budget.py`` (scripts are not a package)."""
    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    return load


@pytest.fixture
def shared_dir() -> Path:
    """``../shared`` beside the checkout (reference material and real data); skips the test if absent."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not found (tests that read real shared data need the ../shared folder)")
    return SHARED


@pytest.fixture
def crash_after_save():
    """``with crash_after_save(module, step): run()`` — the trainer in ``module`` (which imported
    ``save_checkpoint``) writes its checkpoint of ``step`` and then dies with ``KeyboardInterrupt``, as a
    Ctrl-C or a killed job would; the context expects that interrupt and restores ``save_checkpoint``."""
    import contextlib

    @contextlib.contextmanager
    def crash(module, at_step: int):
        real_save = module.save_checkpoint

        def save_then_crash(path, modules, opts, step, *args, **kwargs):
            real_save(path, modules, opts, step, *args, **kwargs)
            if step == at_step:
                raise KeyboardInterrupt("simulated crash")

        module.save_checkpoint = save_then_crash
        try:
            with pytest.raises(KeyboardInterrupt):
                yield
        finally:
            module.save_checkpoint = real_save

    return crash


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A 2-episode walker dataset, a tiny random MiniVLM, and a tiny MFWM pre-trained on them for a few steps
    (``root/walker``, ``root/vlm``, ``root/mfwm``); returns ``(root, embedder)``."""
    import torch

    from genrl.data.collect import collect
    from genrl.mfwm.pretrain import PretrainConfig, pretrain
    from genrl.vlm.config import minivlm_preset
    from genrl.vlm.embed import embed_dataset
    from genrl.vlm.minivlm import MiniVLM, MiniVLMEmbedder, save_minivlm

    root = tmp_path_factory.mktemp("tiny_run")
    collect("walker", root / "walker", frames=1000, workers=1, experts_dir=root / "none", progress=False)
    torch.manual_seed(0)
    cfg = minivlm_preset("tiny")
    save_minivlm(MiniVLM(cfg), root / "vlm", half=False)
    vlm = MiniVLMEmbedder(root / "vlm")
    embed_dataset(root / "walker", vlm, progress=False)
    pretrain(PretrainConfig(dataset=str(root / "walker"), out=str(root / "mfwm"), embedder_id=vlm.id,
                            n_frames=vlm.n_frames, preset="tiny", steps=10, save_every=10, log_every=10,
                            report_every=10), progress=False)
    return root, vlm
