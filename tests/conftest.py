"""Shared pytest setup: headless rendering and the optional ``../shared`` folder."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


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
